"""HTTP(S) to a Sunbox hub: one POST per batch, acknowledged by the hub after it has stored it.

Bytes are counted as on the wire: request line, headers and body both ways (plus the link's
per-request overhead for TCP/TLS, which the carrier bills and we cannot see).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx

from appliance.config import LinkConfig
from appliance.sync.transports.base import Delivery, InboundFetch, TransportError
from appliance.sync.varint import DecodeError
from appliance.sync.wire import Batch, decode_inbound_list, encode_batch

USER_AGENT = "sunbox/1"
# Upper bound of an acknowledgement (status line, ~5 headers, small JSON body).
ACK_RESERVE_BYTES = 600
# Upper bound of the status line and headers of an inbound response (the body is capped).
INBOUND_HEADER_RESERVE_BYTES = 400


def request_bytes(request: httpx.Request, body_len: int) -> int:
    line = len(request.method) + 1 + len(request.url.raw_path) + len(" HTTP/1.1\r\n")
    headers = sum(len(k) + 2 + len(v) + 2 for k, v in request.headers.raw)
    return line + headers + 2 + body_len


def response_bytes(response: httpx.Response) -> int:
    line = len("HTTP/1.1 ") + 4 + len(response.reason_phrase) + 2
    headers = sum(len(k) + 2 + len(v) + 2 for k, v in response.headers.raw)
    return line + headers + 2 + response.num_bytes_downloaded


class HttpTransport:
    """Batches to ``POST {url}/v1/boxes/{box}/batches``; inbound from ``GET .../inbound``."""

    def __init__(
        self,
        link: LinkConfig,
        box: str,
        token: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not link.url:
            raise ValueError(f"link {link.name}: no url")
        self.link = link
        self.box = box
        self._token = token
        self._client = client
        self._own_client = client is None
        self._base = link.url.rstrip("/")
        self._box_path = f"/v1/boxes/{quote(box, safe='')}"

    async def open(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.link.timeout_s)
            self._own_client = True

    async def close(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _estimate_request(
        self, method: str, path: str, body_len: int, extra: dict[str, str]
    ) -> int:
        assert self._client is not None
        req = self._client.build_request(
            method,
            self._base + path,
            headers={**self._headers(), **extra},
            content=b"x" * body_len if body_len else None,
        )
        return request_bytes(req, body_len)

    def cost_upper_bound(self, batch_bytes: int) -> int:
        if self._client is None:
            raise TransportError("link not open")
        up = self._estimate_request(
            "POST",
            self._box_path + "/batches",
            batch_bytes,
            {"Content-Type": "application/octet-stream"},
        )
        return up + ACK_RESERVE_BYTES + self.link.overhead_bytes_per_request

    def inbound_cost_upper_bound(self, max_bytes: int) -> int:
        if self._client is None:
            raise TransportError("link not open")
        up = self._estimate_request(
            "GET", self._box_path + "/inbound?after=9999999999&max_bytes=9999999999", 0, {}
        )
        return up + INBOUND_HEADER_RESERVE_BYTES + max_bytes + self.link.overhead_bytes_per_request

    async def _send(self, request: httpx.Request, body_len: int) -> tuple[httpx.Response, int, int]:
        assert self._client is not None
        up = request_bytes(request, body_len) + self.link.overhead_bytes_per_request
        try:
            response = await self._client.send(request)
        except httpx.HTTPError as exc:
            raise TransportError(
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            ) from exc
        return response, up, response_bytes(response)

    async def send(self, batch: Batch) -> Delivery:
        if self._client is None:
            raise TransportError("link not open")
        body = encode_batch(batch)
        request = self._client.build_request(
            "POST",
            self._base + self._box_path + "/batches",
            content=body,
            headers={**self._headers(), "Content-Type": "application/octet-stream"},
        )
        response, up, down = await self._send(request, len(body))
        if response.status_code != 200:
            raise TransportError(
                f"hub answered {response.status_code}: {response.text[:200]}", up, down
            )
        try:
            ack = json.loads(response.content)
            if int(ack["batch"]) != batch.batch_id:
                raise ValueError(f"ack for batch {ack['batch']}, sent {batch.batch_id}")
            acked = {str(k): int(v) for k, v in dict(ack["acked"]).items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise TransportError(f"bad acknowledgement from hub: {exc}", up, down) from exc
        return Delivery(acked, up, down, int(ack.get("new", 0)), int(ack.get("dup", 0)))

    async def fetch_inbound(self, after_id: int, max_bytes: int) -> InboundFetch:
        if self._client is None:
            raise TransportError("link not open")
        request = self._client.build_request(
            "GET",
            self._base + self._box_path + "/inbound",
            params={"after": after_id, "max_bytes": max_bytes},
            headers=self._headers(),
        )
        response, up, down = await self._send(request, 0)
        if response.status_code != 200:
            raise TransportError(
                f"hub answered {response.status_code}: {response.text[:200]}", up, down
            )
        try:
            items = decode_inbound_list(response.content)
        except DecodeError as exc:
            raise TransportError(f"bad inbound list from hub: {exc}", up, down) from exc
        return InboundFetch(items, up, down)
