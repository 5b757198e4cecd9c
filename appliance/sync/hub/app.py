"""The hub's HTTP API (FastAPI): batches in, acknowledgements and inbound items out.

Box endpoints take the compact binary batch (``application/octet-stream``) and answer with a
small JSON acknowledgement; the rest is JSON for people and dashboards. The Iridium gateway
delivers SBD messages as RockBLOCK-style form posts (imei, data in hex) to ``/v1/sbd/rockblock``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from appliance.clock import Clock, SystemClock
from appliance.sync.hub.store import HubStore
from appliance.sync.messages import describe_payload
from appliance.sync.varint import DecodeError
from appliance.sync.wire import INBOUND_CODES, decode_batch, encode_inbound_list

MAX_BATCH_BYTES = 8 * 1024 * 1024
MAX_INBOUND_BYTES = 16 * 1024 * 1024
LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() or None if auth.lower().startswith("bearer ") else None


def create_hub_app(
    store: HubStore,
    clock: Clock | None = None,
    admin_token: str | None = None,
    mqtt_url: str | None = None,
    mqtt_prefix: str = "sunbox",
) -> FastAPI:
    """The hub as an ASGI app. With ``mqtt_url`` it also bridges boxes that speak MQTT."""
    hub_clock: Clock = clock or SystemClock()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        bridge = None
        task = None
        if mqtt_url:
            from appliance.sync.hub.mqtt_bridge import HubMqttBridge

            bridge = HubMqttBridge(store, mqtt_url, hub_clock, mqtt_prefix)
            await bridge.start()
            task = asyncio.create_task(bridge.push_loop())
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            if bridge is not None:
                await bridge.stop()

    app = FastAPI(title="Sunbox hub", version="1", lifespan=lifespan)

    def require_admin(request: Request) -> None:
        if admin_token is not None:
            if _bearer(request) != admin_token:
                raise HTTPException(401, "admin token required")
        elif (request.client.host if request.client else "") not in LOOPBACK:
            raise HTTPException(403, "without --admin-token only loopback clients may do this")

    async def require_box(request: Request, box: str) -> None:
        ok = await run_in_threadpool(
            store.check_token, box, _bearer(request), hub_clock.now(), "http"
        )
        if not ok:
            raise HTTPException(401, f"wrong token for box {box}")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "boxes": len(store.boxes())}

    @app.post("/v1/boxes/{box}/batches")
    async def post_batch(box: str, request: Request) -> dict[str, Any]:
        body = await request.body()
        if len(body) > MAX_BATCH_BYTES:
            raise HTTPException(413, f"batch of {len(body)} bytes exceeds {MAX_BATCH_BYTES}")
        await require_box(request, box)
        try:
            batch = decode_batch(body)
        except DecodeError as exc:
            raise HTTPException(400, f"bad batch: {exc}") from exc
        ack = await run_in_threadpool(store.ingest, box, batch, "http", hub_clock.now())
        return ack.as_dict()

    @app.get("/v1/boxes/{box}/inbound")
    async def get_inbound(
        box: str,
        request: Request,
        after: int = Query(0, ge=0),
        max_bytes: int = Query(1_000_000, ge=16, le=MAX_INBOUND_BYTES),
    ) -> Response:
        await require_box(request, box)
        items = await run_in_threadpool(store.inbound_for, box, after, max_bytes)
        return Response(encode_inbound_list(items), media_type="application/octet-stream")

    @app.post("/v1/boxes/{box}/inbound")
    async def post_inbound(
        box: str, request: Request, kind: str = Query(...), name: str = Query("", max_length=200)
    ) -> dict[str, Any]:
        require_admin(request)
        if kind not in INBOUND_CODES:
            raise HTTPException(422, f"kind must be one of {sorted(INBOUND_CODES)}")
        body = await request.body()
        if len(body) > MAX_INBOUND_BYTES:
            raise HTTPException(413, "inbound item too large")
        item_id = await run_in_threadpool(store.add_inbound, box, kind, name, body, hub_clock.now())
        return {"id": item_id, "box": box, "kind": kind, "size_bytes": len(body)}

    @app.get("/v1/boxes")
    def list_boxes() -> list[dict[str, Any]]:
        return store.boxes()

    @app.get("/v1/boxes/{box}/streams")
    def streams(box: str) -> dict[str, Any]:
        return store.stream_counts(box)

    @app.get("/v1/boxes/{box}/items")
    def items(
        box: str,
        stream: str | None = None,
        after_id: int = Query(0, ge=0),
        limit: int = Query(100, ge=1, le=10_000),
        decode: bool = True,
    ) -> list[dict[str, Any]]:
        out = []
        for row in store.items(box, stream, after_id, limit):
            payload = bytes(row.pop("payload"))
            if decode:
                try:
                    row["content"] = describe_payload(row["kind"], payload)
                except DecodeError as exc:
                    row["content"] = {"error": str(exc)}
            out.append(row)
        return out

    @app.get("/v1/boxes/{box}/telemetry")
    def telemetry(box: str, channel: str, start_ms: int = 0, end_ms: int = 2**62) -> dict[str, Any]:
        points = store.telemetry(box, channel, start_ms, end_ms)
        return {"box": box, "channel": channel, "points": points}

    @app.post("/v1/sbd/rockblock")
    async def rockblock(request: Request) -> dict[str, Any]:
        form = parse_qs((await request.body()).decode("ascii", errors="replace"))
        imei = (form.get("imei") or [""])[0]
        data_hex = (form.get("data") or [""])[0]
        if not imei.isdigit():
            raise HTTPException(400, "imei missing")
        try:
            batch = decode_batch(bytes.fromhex(data_hex))
        except (ValueError, DecodeError) as exc:
            raise HTTPException(400, f"bad SBD message: {exc}") from exc
        box = await run_in_threadpool(store.box_for_imei, imei)
        ack = await run_in_threadpool(store.ingest, box, batch, "sbd", hub_clock.now())
        return {"box": box, **ack.as_dict()}

    @app.put("/v1/sbd/devices/{imei}")
    def map_imei(
        imei: str, request: Request, box: str = Query(..., min_length=1)
    ) -> dict[str, str]:
        require_admin(request)
        store.map_imei(imei, box)
        return {"imei": imei, "box": box}

    return app
