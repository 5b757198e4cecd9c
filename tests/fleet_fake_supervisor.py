"""A fake balena Supervisor API on 127.0.0.1, faithful to the endpoints Sunbox uses.

Behaviour follows balena-supervisor (docs/API.md, src/device-api/v2.ts, src/lib/update-lock.ts):
every call but ``/ping`` needs ``?apikey=`` (or a Bearer header); ``POST /v1/update`` answers
204; an update is applied only when no user lockfile exists, unless ``force`` is true, in which
case the supervisor deletes the user's lockfile first and takes its own (empty, uid 65534 on a
device) while it swaps containers, then releases it; ``GET /v1/device`` reports
``update_pending`` while a lock blocks the update; ``PATCH /v2/device/tags`` takes a flat
``{key: string}`` object, rejects whitespace in keys with 400 and answers 202
``{"status": "success"}``; ``GET /v2/device/tags`` answers
``{"status", "tags": [{id, name, value}]}``.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeSupervisor:
    def __init__(self, lock_path: Path, api_key: str = "sv-key", commit: str = "a" * 32) -> None:
        self.lock_path = Path(lock_path)
        self.api_key = api_key
        self.commit = commit
        self.target = commit
        self.update_failed = False
        self.tags: dict[str, str] = {}
        self.tag_patches: list[dict[str, str]] = []
        self.update_calls: list[bool] = []
        self.forced_overrides = 0
        self.lock = threading.RLock()
        self.down = False  # answer 503 to everything (supervisor restarting, link trouble)
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeSupervisor:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = fake.handle(
                    self.command, self.path, self.headers.get("Authorization", ""), raw
                )
                body = (
                    b""
                    if payload is None
                    else (
                        payload.encode()
                        if isinstance(payload, str)
                        else json.dumps(payload).encode()
                    )
                )
                self.send_response(status)
                if payload is not None:
                    self.send_header(
                        "Content-Type",
                        "text/plain" if isinstance(payload, str) else "application/json",
                    )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server = self._server
        threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ------------------------------------------------------------------ device behaviour
    @property
    def update_pending(self) -> bool:
        return self.target != self.commit

    def new_release(self, commit: str) -> None:
        """The cloud's target state changes (a release pinned for this device)."""
        with self.lock:
            self.target = commit

    def try_apply(self, force: bool = False) -> bool:
        """One update attempt, as the supervisor's update loop makes; True if applied."""
        with self.lock:
            if not self.update_pending:
                return False
            if self.lock_path.exists():
                if not force:
                    self.update_failed = True  # "Updates are locked" until the lock goes
                    return False
                self.lock_path.unlink()  # force: remove the user's lock first
                self.forced_overrides += 1
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            self.lock_path.write_text("")  # the supervisor's own lock while it swaps containers
            self.commit = self.target
            self.update_failed = False
            self.lock_path.unlink()
            return True

    # ------------------------------------------------------------------ HTTP
    def handle(self, method: str, raw_path: str, auth: str, raw: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        path = parts.path
        if self.down:
            return 503, "supervisor unavailable"
        if path == "/ping":
            return 200, "OK"
        key = parse_qs(parts.query).get("apikey", [""])[0] or auth.removeprefix("Bearer ")
        if key != self.api_key:
            return 401, "Unauthorized"
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return 400, "Invalid JSON"
        with self.lock:
            if method == "POST" and path == "/v1/update":
                force = bool(isinstance(body, dict) and body.get("force"))
                self.update_calls.append(force)
                self.try_apply(force)
                return 204, None
            if method == "GET" and path == "/v1/device":
                return 200, {
                    "api_port": 48484,
                    "ip_address": "192.168.1.20",
                    "commit": self.commit,
                    "status": "Idle",
                    "download_progress": None,
                    "os_version": "balenaOS 6.0.13",
                    "supervisor_version": "16.7.3",
                    "update_pending": self.update_pending,
                    "update_downloaded": self.update_pending,
                    "update_failed": self.update_failed,
                }
            if method == "GET" and path == "/v2/state/status":
                return 200, {
                    "status": "success",
                    "appState": "applying" if self.update_pending else "applied",
                    "overallDownloadProgress": None,
                    "containers": [],
                    "images": [],
                    "release": self.commit,
                }
            if method == "GET" and path == "/v2/version":
                return 200, {"status": "success", "version": "16.7.3"}
            if method == "GET" and path == "/v2/device/tags":
                return 200, {
                    "status": "success",
                    "tags": [
                        {"id": i + 1, "name": k, "value": v}
                        for i, (k, v) in enumerate(self.tags.items())
                    ],
                }
            if method == "PATCH" and path == "/v2/device/tags":
                if not isinstance(body, dict) or any(not isinstance(v, str) for v in body.values()):
                    return 400, {
                        "status": "failed",
                        "message": "Invalid tags body, must be an object like "
                        "`{[tagKey: string]: string}`",
                    }
                if any(re.search(r"\s", k) for k in body):
                    return 400, {
                        "status": "failed",
                        "message": "Tag keys cannot contain whitespace",
                    }
                self.tags.update(body)
                self.tag_patches.append(dict(body))
                return 202, {"status": "success"}
        return 404, f"Cannot {method} {path}"
