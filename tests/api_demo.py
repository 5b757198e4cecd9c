"""A real box for the API and browser tests: ``sunbox demo`` (or ``run``) as a subprocess on free
ports, its printed admin password, and HTTP clients logged in the way the dashboard logs in."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from tests.conftest import REPO, demo_config_data, free_port

PASSWORD_LINE = re.compile(r"admin:\s+user '(\w+)', password (\S+)")


class Box:
    def __init__(self, proc: subprocess.Popen[str], port: int, data_dir: Path) -> None:
        self.proc = proc
        self.port = port
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.admin: tuple[str, str] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._ready = threading.Event()
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = PASSWORD_LINE.search(line)
            if m:
                self.admin = (m.group(1), m.group(2))
            if "dashboard:" in line:
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        if not self._ready.wait(timeout_s) or self.proc.poll() is not None:
            raise RuntimeError("box did not start:\n" + "\n".join(self.lines))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{self.url}/healthz", timeout=2)
                if r.status_code == 200 and r.json()["cycles"] > 0:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("box never became healthy:\n" + "\n".join(self.lines))

    def client(self, name: str | None = None, password: str | None = None) -> httpx.Client:
        """A cookie session as the browser has it, with the CSRF header set."""
        if name is None:
            assert self.admin is not None, "no admin password printed"
            name, password = self.admin
        c = httpx.Client(base_url=self.url, timeout=30)
        r = c.post("/api/login", json={"name": name, "password": password})
        r.raise_for_status()
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    def token(self, name: str | None = None, password: str | None = None) -> str:
        if name is None:
            assert self.admin is not None
            name, password = self.admin
        r = httpx.post(
            f"{self.url}/api/login", json={"name": name, "password": password, "token": True}
        )
        r.raise_for_status()
        token: str = r.json()["token"]
        return token

    def wait_for(self, client: httpx.Client, path: str, pred: Any, timeout_s: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            last = client.get(path).json()
            if pred(last):
                return last
            time.sleep(0.1)
        raise AssertionError(f"{path} never satisfied the condition; last: {str(last)[:500]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        return int(self.proc.returncode)


def write_config(path: Path, device_port: int, **sections: dict[str, Any]) -> Path:
    data = demo_config_data()
    for dev in data.get("devices", []):
        dev["port"] = device_port
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


@contextmanager
def running_box(
    tmp: Path,
    *,
    command: str = "demo",
    speed: float | None = None,
    start: str | None = None,
    extra_args: list[str] | None = None,
    **sections: dict[str, Any],
) -> Iterator[Box]:
    """``sunbox <command>`` with the demo devices on a free port and the API on another."""
    device_port, api_port = free_port(), free_port()
    cfg = write_config(tmp / "sunbox.toml", device_port, **sections)
    data_dir = tmp / "data"
    args = [
        sys.executable,
        "-m",
        "appliance.cli",
        command,
        "--config",
        str(cfg),
        "--data-dir",
        str(data_dir),
        "--port",
        str(api_port),
    ]
    if speed is not None:
        args += ["--speed", str(speed)]
    if start is not None:
        args += ["--start", start]
    args += extra_args or []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    box = Box(proc, api_port, data_dir)
    try:
        box.wait_ready()
        yield box
    finally:
        box.stop()
