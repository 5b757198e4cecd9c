"""Client of the balena Supervisor HTTP API, as seen from inside our container.

The supervisor gives a service with the label ``io.balena.features.supervisor-api: '1'`` two
variables: BALENA_SUPERVISOR_ADDRESS (``http://127.0.0.1:48484``) and
BALENA_SUPERVISOR_API_KEY, sent as the ``apikey`` query parameter. We use the endpoints the
fleet needs and nothing else:

- ``GET /v1/device``: running release (commit), update pending/downloaded/failed;
- ``GET /v2/state/status``: whether the target state is applied;
- ``POST /v1/update`` ``{"force": bool}``: check for an update now; force overrides our lock;
- ``GET``/``PATCH /v2/device/tags``: device tags (health), the supervisor relays them to the
  balena API; PATCH takes a flat ``{key: value}`` object and answers 202.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

_WHITESPACE = re.compile(r"\s")


class SupervisorError(Exception):
    """The supervisor could not be reached or refused a request (one line, for events/CLI)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class SupervisorDevice:
    """``GET /v1/device``: what runs and whether an update waits."""

    commit: str | None
    status: str | None
    update_pending: bool
    update_downloaded: bool
    update_failed: bool
    os_version: str | None = None
    supervisor_version: str | None = None
    download_progress: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SupervisorDevice:
        progress = data.get("download_progress")
        return cls(
            commit=data.get("commit"),
            status=data.get("status"),
            update_pending=bool(data.get("update_pending")),
            update_downloaded=bool(data.get("update_downloaded")),
            update_failed=bool(data.get("update_failed")),
            os_version=data.get("os_version"),
            supervisor_version=data.get("supervisor_version"),
            download_progress=float(progress) if isinstance(progress, (int, float)) else None,
            raw=dict(data),
        )


def validate_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The supervisor's own rule: string values, keys without whitespace."""
    clean: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or _WHITESPACE.search(key):
            raise ValueError(f"tag key {key!r} must be a non-empty string without whitespace")
        if not isinstance(value, str):
            raise ValueError(f"tag {key!r} value must be a string, got {type(value).__name__}")
        clean[key] = value
    return clean


class SupervisorClient:
    """Async client; one instance per daemon, closed with ``aclose``."""

    def __init__(
        self,
        address: str,
        api_key: str,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not address.startswith(("http://", "https://")):
            raise ValueError(f"supervisor address {address!r} must be an http(s) URL")
        self.address = address.rstrip("/")
        self._api_key = api_key
        self._client = httpx.AsyncClient(
            base_url=self.address, timeout=timeout_s, transport=transport
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], timeout_s: float = 10.0
    ) -> SupervisorClient | None:
        """The client when running under balena (label set), else None."""
        address = environ.get("BALENA_SUPERVISOR_ADDRESS") or environ.get(
            "RESIN_SUPERVISOR_ADDRESS"
        )
        key = environ.get("BALENA_SUPERVISOR_API_KEY") or environ.get("RESIN_SUPERVISOR_API_KEY")
        if not address or not key:
            return None
        return cls(address, key, timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> SupervisorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ endpoints
    async def ping(self) -> bool:
        try:
            response = await self._client.get("/ping")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def device(self) -> SupervisorDevice:
        return SupervisorDevice.from_json(await self._json("GET", "/v1/device"))

    async def state_status(self) -> dict[str, Any]:
        return await self._json("GET", "/v2/state/status")

    async def version(self) -> str:
        return str((await self._json("GET", "/v2/version")).get("version", ""))

    async def update(self, force: bool = False) -> None:
        """Ask the supervisor to apply the target release now; ``force`` overrides our lock."""
        await self._request("POST", "/v1/update", {"force": bool(force)})

    async def get_tags(self) -> dict[str, str]:
        data = await self._json("GET", "/v2/device/tags")
        tags = data.get("tags", [])
        if not isinstance(tags, list):
            raise SupervisorError("supervisor GET /v2/device/tags: 'tags' is not a list")
        return {
            str(t["name"]): str(t.get("value", ""))
            for t in tags
            if isinstance(t, dict) and "name" in t
        }

    async def patch_tags(self, tags: Mapping[str, str]) -> None:
        await self._request("PATCH", "/v2/device/tags", validate_tags(tags))

    # ------------------------------------------------------------------ plumbing
    async def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = await self._request(method, path, body)
        try:
            data = response.json()
        except ValueError as exc:
            raise SupervisorError(f"supervisor {method} {path}: answer is not JSON") from exc
        if not isinstance(data, dict):
            raise SupervisorError(f"supervisor {method} {path}: answer is not a JSON object")
        return data

    async def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            response = await self._client.request(
                method, path, params={"apikey": self._api_key}, json=body
            )
        except httpx.HTTPError as exc:
            raise SupervisorError(
                f"supervisor {method} {path}: {type(exc).__name__}: {exc or 'no answer'}"
            ) from exc
        if response.status_code >= 400:
            raise SupervisorError(
                f"supervisor {method} {path}: HTTP {response.status_code}: {_message(response)}",
                response.status_code,
            )
        return response


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(data, dict):
        return str(data.get("message") or data.get("Error") or data)[:200]
    return str(data)[:200]
