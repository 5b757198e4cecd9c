"""Exactly-once, in order, through a lossy flapping link and a box that is SIGKILLed.

Real processes: a `sunbox hub` on 127.0.0.1, a box (tests/sync_box_driver.py) syncing to it
through a fault-injecting TCP proxy that drops connections before and after the hub sees a
request, answers 503 on its own, and goes offline for stretches (hours on the box's virtual
clock). The box is killed with SIGKILL at random moments and restarted until it reports done.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from appliance.store import Store
from appliance.sync.hub import HubStore
from appliance.sync.messages import decode_event, decode_job_result, decode_log
from tests.conftest import REPO, free_port

PER_STREAM = 1000
SUNBOX = [sys.executable, "-m", "appliance.cli"]


class ChaosProxy:
    """TCP proxy with faults: drop before forwarding, drop the reply, fake 503, offline."""

    def __init__(
        self,
        upstream_port: int,
        seed: int,
        p_drop_request: float = 0.12,
        p_drop_reply: float = 0.12,
        p_503: float = 0.06,
    ) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.rng = random.Random(seed)
        self.p_drop_request = p_drop_request
        self.p_drop_reply = p_drop_reply
        self.p_503 = p_503
        self.offline = False
        self.stats = {
            "connections": 0,
            "requests": 0,
            "dropped_requests": 0,
            "dropped_replies": 0,
            "fake_503": 0,
            "refused_offline": 0,
            "forwarded_replies": 0,
        }
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(5)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        if self.offline:
            self.stats["refused_offline"] += 1
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return

        async def client_to_hub() -> None:
            while True:
                chunk = await reader.read(65536)
                if not chunk or self.offline:
                    break
                if chunk.startswith((b"POST ", b"GET ")):
                    self.stats["requests"] += 1
                    roll = self.rng.random()
                    if roll < self.p_drop_request:
                        self.stats["dropped_requests"] += 1
                        break
                    if roll < self.p_drop_request + self.p_503:
                        self.stats["fake_503"] += 1
                        writer.write(
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"
                            b"connection: close\r\n\r\n"
                        )
                        await writer.drain()
                        break
                up_writer.write(chunk)
                await up_writer.drain()

        async def hub_to_client() -> None:
            while True:
                chunk = await up_reader.read(65536)
                if not chunk:
                    break
                if chunk.startswith(b"HTTP/1.1 "):
                    if self.rng.random() < self.p_drop_reply:
                        self.stats["dropped_replies"] += 1  # the hub has it; the box never hears
                        break
                    self.stats["forwarded_replies"] += 1
                writer.write(chunk)
                await writer.drain()

        tasks = [asyncio.ensure_future(client_to_hub()), asyncio.ensure_future(hub_to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except (ConnectionError, OSError):
            pass
        for t in tasks:
            t.cancel()
        for w in (writer, up_writer):
            try:
                w.close()
            except (ConnectionError, OSError):
                pass


def _wait_http(url: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def _box_clock_ms(box_dir: Path) -> int | None:
    db = box_dir / "sunbox.db"
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT value FROM kv WHERE key = 'driver.clock_ms'").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def _wait_box_hours(box_dir: Path, hours: float, box: subprocess.Popen[bytes]) -> None:
    """Until the box's virtual clock has moved ``hours`` (it keeps running meanwhile)."""
    deadline = time.monotonic() + 20
    start = _box_clock_ms(box_dir)
    while time.monotonic() < deadline and box.poll() is None:
        now = _box_clock_ms(box_dir)
        if start is None:
            start = now
        elif now is not None and now - start >= hours * 3_600_000:
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_exactly_once_in_order_through_faults_and_sigkill(tmp_path: Path) -> None:
    rng = random.Random(20240301)
    hub_port = free_port()
    hub_dir = tmp_path / "hub"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    hub = subprocess.Popen(
        [*SUNBOX, "hub", "--port", str(hub_port), "--data-dir", str(hub_dir)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    proxy = ChaosProxy(hub_port, seed=7)
    proxy.start()
    box_dir = tmp_path / "box"
    box_cmd = [
        sys.executable,
        str(REPO / "tests" / "sync_box_driver.py"),
        str(box_dir),
        f"http://127.0.0.1:{proxy.port}",
        str(PER_STREAM),
        "11",
    ]
    kills = 0
    offline_spells = 0
    try:
        _wait_http(f"http://127.0.0.1:{hub_port}/healthz")
        deadline = time.monotonic() + 120
        finished = False
        while not finished:
            assert time.monotonic() < deadline, f"box did not finish; proxy {proxy.stats}"
            box = subprocess.Popen(
                box_cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            if kills < 8:
                # let it run a random while (sometimes mid-import, sometimes mid-request)
                life_s = rng.uniform(0.2, 1.0)
                if kills in (1, 4, 6):
                    # the link drops out for two hours of the box's clock
                    time.sleep(0.3)
                    proxy.offline = True
                    offline_spells += 1
                    _wait_box_hours(box_dir, 2.0, box)
                    proxy.offline = False
                time.sleep(life_s)
                if box.poll() is None:
                    box.send_signal(signal.SIGKILL)
                    box.wait(10)
                    kills += 1
                    continue
            out, err = box.communicate(timeout=90)
            if box.returncode == 0:
                finished = True
            elif box.returncode != -signal.SIGKILL:
                raise AssertionError(f"box failed ({box.returncode}): {err.decode()[-2000:]}")
    finally:
        proxy.stop()
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(10)
        except subprocess.TimeoutExpired:
            hub.kill()

    print(f"kills={kills} offline_spells={offline_spells} proxy={proxy.stats}")
    assert kills >= 5
    assert proxy.stats["dropped_requests"] > 0 and proxy.stats["dropped_replies"] > 0
    assert proxy.stats["fake_503"] > 0
    assert offline_spells == 3
    failed = (
        proxy.stats["dropped_requests"] + proxy.stats["dropped_replies"] + proxy.stats["fake_503"]
    )
    assert failed / max(1, proxy.stats["requests"]) > 0.2  # a genuinely lossy link

    hub_store = HubStore.open_dir(hub_dir)
    rows = hub_store.items("box-under-test", limit=100_000)
    by_stream: dict[str, list[dict[str, object]]] = {}
    for row in rows:  # arrival order (row id)
        by_stream.setdefault(str(row["stream"]), []).append(row)
    for stream in ("alarm", "job", "log"):
        got = by_stream.get(stream, [])
        seqs = [int(str(r["seq"])) for r in got]
        assert len(got) == PER_STREAM, f"{stream}: {len(got)} items at the hub"
        assert seqs == list(range(1, PER_STREAM + 1)), f"{stream}: out of order or gaps"
        for r in got:
            payload = r["payload"]
            assert isinstance(payload, bytes)
            n = int(str(r["seq"]))
            if stream == "alarm":
                assert decode_event(payload).message == f"alarm {n}"
            elif stream == "job":
                assert decode_job_result(payload)["id"] == f"job-{n}"
            else:
                assert decode_log(payload) == [f"log {n}"]
    for stream, got in by_stream.items():  # daily summaries too: contiguous, once each
        assert [int(str(r["seq"])) for r in got] == list(range(1, len(got) + 1)), stream
    hub_store.close()

    box_store = Store.open_dir(box_dir)
    assert sum(box_store.outbox.depth_by_priority().values()) == 0
    delivered = box_store.query("SELECT count(*) AS n FROM outbox WHERE delivered_ms IS NOT NULL")[
        0
    ]["n"]
    assert delivered == len(rows)
    stamps = [
        r["t"]
        for r in box_store.query(
            "SELECT DISTINCT delivered_ms AS t FROM outbox ORDER BY delivered_ms"
        )
    ]
    longest_gap_h = max(b - a for a, b in zip(stamps, stamps[1:], strict=False)) / 3_600_000
    print(f"longest stretch without a delivery: {longest_gap_h:.1f} h (box clock)")
    assert longest_gap_h >= 1.0  # hours offline on the virtual clock
    retried = box_store.query("SELECT count(*) AS n FROM outbox WHERE attempts > 1")[0]["n"]
    print(
        f"hub items={len(rows)} retried={retried} "
        f"streams={ {k: len(v) for k, v in by_stream.items()} }"
    )
    assert retried > 0
    box_store.close()
