"""`sunbox sim` as a technician runs it: a real subprocess, real Modbus, signals to stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from appliance.devices import victron
from tests.conftest import REPO, free_port
from tests.sim_helpers import read_block, read_models, write


def start_sim(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env = {k: v for k, v in env.items() if not k.startswith("SUNBOX_")}
    return subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "sim", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_listening(proc: subprocess.Popen[str], port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sunbox sim exited early: {proc.communicate()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("sunbox sim did not listen in time")


def stop(proc: subprocess.Popen[str], sig: int) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def test_sim_serves_sunspec_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    proc = start_sim(
        tmp_path,
        "--map",
        "sunspec",
        "--port",
        str(port),
        "--speed",
        "60",
        "--status-every",
        "0.5",
        "--data-dir",
        str(tmp_path / "data"),
    )
    try:
        wait_listening(proc, port)

        async def check() -> None:
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
            assert await client.connect()
            try:
                layout, models = await read_models(client, 1)
                assert layout.model_ids() == [1, 101, 160, 124, 802]
                assert models[1]["Mn"] == "Sunbox" and models[1]["Md"] == "SBX-SIM-3000"
                assert 0.0 <= float(models[802]["SoC"] or -1) <= 100.0
                await write(client, 247, 0, [6])  # soc_range over the wire
                _, models = await read_models(client, 1)
                assert models[802]["SoC"] == 180.0
            finally:
                client.close()

        asyncio.run(check())
        time.sleep(0.6)  # at least one status line with the fault in it
    finally:
        code, out, err = stop(proc, signal.SIGINT)
    assert code == 0, err
    assert f"tcp://127.0.0.1:{port}" in out
    assert "SunSpec models 1, 101, 160, 124, 802 at 40000" in out
    assert "fault soc_range" in out and "sunbox sim: stopped" in out
    assert "Traceback" not in err


def test_sim_serves_a_victron_gx_with_a_fault_from_the_command_line(tmp_path: Path) -> None:
    port = free_port()
    proc = start_sim(tmp_path, "--map", "victron", "--port", str(port), "--fault", "alarm")
    try:
        wait_listening(proc, port)

        async def check() -> None:
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
            assert await client.connect()
            try:
                vebus = victron.decode_registers(31, await read_block(client, 227, 31, 34))
                system = victron.decode_registers(840, await read_block(client, 100, 840, 4))
            finally:
                client.close()
            assert vebus[31] == 2.0  # Fault
            assert 0.0 <= float(system[843] or -1) <= 100.0

        asyncio.run(check())
    finally:
        code, out, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert "Victron VE.Bus (3-70)" in out and "unit 100" in out and "unit 227" in out


def test_sim_reports_mistakes_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[site]\nlat = 200\n")
    result = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "sim", "--config", str(bad)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert result.returncode == 2
    assert (
        "site.lat" in result.stderr and "200" in result.stderr and "Traceback" not in result.stderr
    )
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "appliance.cli", "sim", "--port", str(busy)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "cannot listen" in result.stderr
