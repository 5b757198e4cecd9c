"""``sunbox tui`` in a real terminal (a pseudo-terminal), and ``sunbox selftest`` from a shell."""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.config import demo_config_text
from appliance.store import Store
from tests.conftest import REPO, free_port
from tests.tui_helpers import publish_state


def demo_config(tmp: Path, host: str = "127.0.0.1") -> Path:
    path = tmp / "sunbox.toml"
    path.write_text(
        demo_config_text()
        .replace("port = 1502", f"port = {free_port()}")
        .replace('host = "127.0.0.1"', f'host = "{host}"'),
        encoding="utf-8",
    )
    return path


def test_tui_command_runs_in_a_terminal_and_quits_cleanly(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    store = Store.open_dir(tmp_path / "data")
    publish_state(store, at=datetime.now(UTC))
    store.close()
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="80", LINES="24")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance.cli",
            "tui",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "data"),
            "--store-only",
        ],
        cwd=REPO,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (b"SUNBOX" in seen and b"answering" in seen):
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                seen += os.read(master, 65536)
        assert b"SUNBOX" in seen and b"4/4" in seen, seen[-2000:]
        os.write(master, b"q")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"Traceback" not in seen
    log = (tmp_path / "data" / "tui.log").read_text()
    assert "Traceback" not in log


def test_tui_command_refuses_bad_options_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_config(tmp_path)
    args = ["tui", "--config", str(config), "--data-dir", str(tmp_path / "d"), "--refresh", "0.1"]
    assert main(args) == 2
    assert capsys.readouterr().err == "sunbox: --refresh must be within 0.5..60 seconds\n"
    assert main(["tui", "--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.toml: no such file" in err


def test_tui_selftest_command_reports_json_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_config(tmp_path)
    data = tmp_path / "data"
    store = Store.open_dir(data)
    publish_state(store, at=datetime.now(UTC), failing="room")  # a live daemon, room sensor dead
    store.close()
    args = ["selftest", "--json", "--config", str(config), "--data-dir", str(data)]
    assert main(args) == 1  # a check failed
    report = json.loads(capsys.readouterr().out)
    by_id = {c["id"]: c for c in report["checks"]}
    assert report["source"] == "the daemon's published state (store)"
    room = by_id["device:room"]
    assert room["status"] == "fail" and "timeout (3 failures in a row" in room["detail"]
    assert by_id["device:battery"]["status"] == "pass"
    assert by_id["daemon"]["status"] == "pass"
    saved = Path(report["saved"]["markdown"])
    assert saved.parent == data / "reports" and saved.exists()
    assert Path(report["saved"]["json"]).exists() and report["saved"]["outbox_id"] == 1
    # the fault self-test never writes to devices that are not a local simulator
    (tmp_path / "remote").mkdir()
    remote = demo_config(tmp_path / "remote", host="10.20.30.40")
    assert main(["selftest", "--faults", "--config", str(remote), "--data-dir", str(data)]) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("sunbox: device inverter is reached at 10.20.30.40:")
    assert "\n" not in line and line.endswith(
        "not on this machine: the fault self-test runs only against the local simulator"
    )
