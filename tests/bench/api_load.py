"""Dashboard API under load: prints JSON figures (run: .venv/bin/python tests/bench/api_load.py).

Starts ``sunbox demo`` (simulated devices over Modbus TCP, the daemon, the API in the daemon's
own event loop) and hits ``GET /api/state`` from N keep-alive clients on loopback (default 100
for 20 s), logged in with a Bearer session (the same auth path as the dashboard's cookie).

- closed_loop: every client sends its next request as soon as the answer arrives (saturation):
  p50/p90/p99/max latency and requests per second. Goal: p99 <= 50 ms.
- paced_1hz: every client asks once a second, at a random phase (a room of phones polling).
- control_loop: the daemon's control cycles seen by the API's watcher during each phase and
  during a quiet phase before the load (same run): longest cycle, longest interval between
  cycles against the loop's wall period. The loop must keep its period under load.

Options: --clients N --duration S --speed X (demo clock, default 1 as on a real box; the control
period in wall time is max(2 s, 0.2 s * X) / X, so --speed 10 cycles every 0.2 s: a harder test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.api_demo import write_config  # noqa: E402
from tests.conftest import free_port  # noqa: E402

PASSWORD = re.compile(r"admin:\s+user '(\w+)', password (\S+)")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(q / 100.0 * (len(ordered) - 1)))))
    return ordered[k]


async def one_client(
    port: int,
    token: str,
    stop_at: float,
    pace_s: float | None,
    latencies: list[float],
    errors: list[str],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    # paced clients start at random phases: phones in a room are not synchronised
    next_at = time.perf_counter() + (random.uniform(0, pace_s) if pace_s else 0.0)
    try:
        while time.perf_counter() < stop_at:
            if pace_s is not None:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at += pace_s
            t0 = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(str(status))
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(repr(exc))
    finally:
        writer.close()


async def load(
    port: int, token: str, clients: int, duration_s: float, pace_s: float | None
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + duration_s
    t0 = time.perf_counter()
    await asyncio.gather(
        *(one_client(port, token, stop_at, pace_s, latencies, errors) for _ in range(clients))
    )
    wall = time.perf_counter() - t0
    ms = [v * 1000 for v in latencies]
    return {
        "requests": len(ms),
        "errors": len(errors),
        "rps": round(len(ms) / wall, 1),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms, default=float("nan")), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
    }


def loop_samples(url: str, token: str) -> dict[str, Any]:
    r = httpx.get(
        f"{url}/api/loop",
        params={"limit": 4000},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    r.raise_for_status()
    data: dict[str, Any] = r.json()
    return data


def loop_between(
    before: dict[str, Any], after: dict[str, Any], duration_s: float
) -> dict[str, Any]:
    last_seen = before["recent"][-1]["seen_s"] if before["recent"] else float("-inf")
    window = [s for s in after["recent"] if s["seen_s"] > last_seen]
    intervals = [s["interval_s"] for s in window if s["interval_s"] is not None]
    durations = [s["duration_s"] for s in window]
    period = after["period_wall_s"]
    return {
        "period_wall_s": round(period, 4),
        "cycles": len(window),
        "expected_cycles": round(duration_s / period, 1),
        "max_cycle_s": round(max(durations, default=float("nan")), 4),
        "p99_cycle_s": round(percentile(durations, 99), 4),
        "max_interval_s": round(max(intervals, default=float("nan")), 4),
        "p99_interval_s": round(percentile(intervals, 99), 4),
        "max_interval_over_period": round(max(intervals, default=float("nan")) / period, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--quiet", type=float, default=10.0, help="seconds of baseline before the load")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sunbox-bench-api-"))
    device_port, api_port = free_port(), free_port()
    cfg = write_config(tmp / "sunbox.toml", device_port)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance.cli",
            "demo",
            "--config",
            str(cfg),
            "--data-dir",
            str(tmp / "data"),
            "--port",
            str(api_port),
            "--speed",
            str(args.speed),
            "--start",
            "2026-06-21T09:00+03:00",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    url = f"http://127.0.0.1:{api_port}"
    try:
        admin = None
        assert proc.stdout is not None
        for line in proc.stdout:
            m = PASSWORD.search(line)
            if m:
                admin = (m.group(1), m.group(2))
            if "dashboard:" in line:
                break
        assert admin is not None, "no admin password printed"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).json().get("cycles", 0) > 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        r = httpx.post(
            f"{url}/api/login", json={"name": admin[0], "password": admin[1], "token": True}
        )
        token = r.json()["token"]

        start = loop_samples(url, token)
        time.sleep(args.quiet)
        quiet = loop_samples(url, token)
        closed = asyncio.run(load(api_port, token, args.clients, args.duration, None))
        after_closed = loop_samples(url, token)
        paced = asyncio.run(load(api_port, token, args.clients, args.duration, 1.0))
        after_paced = loop_samples(url, token)
        out = {
            "clients": args.clients,
            "duration_s": args.duration,
            "speed": args.speed,
            "endpoint": "GET /api/state",
            "goal_p99_ms": 50.0,
            "closed_loop": closed,
            "paced_1hz": paced,
            "control_loop": {
                "quiet": loop_between(start, quiet, args.quiet),
                "closed_loop": loop_between(quiet, after_closed, args.duration),
                "paced_1hz": loop_between(after_closed, after_paced, args.duration),
            },
            "cpu_count": os.cpu_count(),
        }
        print(json.dumps(out, indent=2))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
