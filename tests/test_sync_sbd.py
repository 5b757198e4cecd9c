"""Iridium SBD over a fake 9603 modem on a socat pty pair.

The fake speaks the modem's AT dialect (ISU AT Command Reference): AT, ATE0/1, AT&K0, AT+CSQ,
AT+SBDWB=<n> + binary + 2-byte checksum, AT+SBDIX, AT+SBDRB, AT+SBDD0/1/2. It enforces the
340-byte MO and 270-byte MT limits and the checksum, fails sessions on demand (MO status 13,
18) and loses signal (CSQ 0, MO status 32). Its "gateway" keeps the MO messages that got
through; the test hands them to the hub as the Iridium gateway would (RockBLOCK-style POST).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import serial
from fastapi.testclient import TestClient

from appliance.clock import ManualClock
from appliance.config import parse_config
from appliance.state import Event, EventKind, Severity
from appliance.store import Store
from appliance.store.outbox import Priority
from appliance.sync import SyncService
from appliance.sync.hub import HubStore, create_hub_app
from appliance.sync.messages import decode_daily_summary, decode_event
from appliance.sync.sbd_modem import ModemError, SbdModem, checksum
from appliance.sync.wire import InboundItem, decode_batch, encode_inbound
from tests.system_packages import require

IMEI = "300234010753370"


@dataclass
class Session:
    mo_status: int
    mt_status: int


class FakeIridium9603:
    """The modem end of the pty pair, run in a thread."""

    MO_MAX = 340
    MT_MAX = 270

    def __init__(self, path: str) -> None:
        self.ser = serial.Serial(path, 19200, timeout=0.05)
        self.echo = True
        self.signal = 4
        self.mo = b""
        self.mt = b""
        self.momsn = 0
        self.mtmsn = 0
        self.fail_sessions: list[int] = []  # MO status codes for the next sessions
        self.drop_signal_in_session = False
        self.gateway_mo: list[bytes] = []
        self.gateway_mt: list[bytes] = []
        self.sessions = 0
        self.commands: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.ser.close()

    def queue_mt(self, data: bytes) -> None:
        if not 1 <= len(data) <= self.MT_MAX:
            raise ValueError(f"MT message of {len(data)} bytes (gateway takes 1..{self.MT_MAX})")
        self.gateway_mt.append(data)

    def _send(self, text: str) -> None:
        self.ser.write(f"\r\n{text}\r\n".encode())

    def _read_exact(self, n: int, timeout_s: float) -> bytes | None:
        buf = b""
        deadline = time.monotonic() + timeout_s
        while len(buf) < n and time.monotonic() < deadline:
            buf += self.ser.read(n - len(buf))
        return buf if len(buf) == n else None

    def _run(self) -> None:
        line = b""
        while not self._stop.is_set():
            b = self.ser.read(1)
            if not b:
                continue
            if b in (b"\r", b"\n"):
                if line:
                    if self.echo:
                        self.ser.write(line + b"\r")
                    self._command(line.decode("ascii", errors="replace").strip())
                line = b""
            else:
                line += b

    def _command(self, cmd: str) -> None:
        self.commands.append(cmd)
        upper = cmd.upper()
        if upper in ("AT", "AT&K0", "AT&K3"):
            self._send("OK")
        elif upper in ("ATE0", "ATE1"):
            self.echo = upper == "ATE1"
            self._send("OK")
        elif upper == "AT+CSQ":
            self._send(f"+CSQ:{self.signal}")
            self._send("OK")
        elif upper.startswith("AT+SBDWB="):
            n = int(upper.split("=", 1)[1])
            if not 1 <= n <= self.MO_MAX:
                self._send("3")
                self._send("OK")
                return
            self._send("READY")
            data = self._read_exact(n + 2, 60.0)
            if data is None:
                self._send("1")
            elif data[-2:] != checksum(data[:-2]):
                self._send("2")
            else:
                self.mo = data[:-2]
                self._send("0")
            self._send("OK")
        elif upper == "AT+SBDIX":
            self._session()
        elif upper == "AT+SBDRB":
            self.ser.write(len(self.mt).to_bytes(2, "big") + self.mt + checksum(self.mt))
            self._send("OK")
        elif upper in ("AT+SBDD0", "AT+SBDD1", "AT+SBDD2"):
            if upper != "AT+SBDD1":
                self.mo = b""
            if upper != "AT+SBDD0":
                self.mt = b""
            self._send("0")
            self._send("OK")
        else:
            self._send("ERROR")

    def _session(self) -> None:
        self.sessions += 1
        if self.signal == 0 or self.drop_signal_in_session:
            self._send(f"+SBDIX: 32, {self.momsn}, 2, {self.mtmsn}, 0, 0")
        elif self.fail_sessions:
            code = self.fail_sessions.pop(0)
            self._send(f"+SBDIX: {code}, {self.momsn}, 2, {self.mtmsn}, 0, 0")
        else:
            if self.mo:
                self.momsn += 1
                self.gateway_mo.append(self.mo)
            mt_status, mt_len = 0, 0
            if self.gateway_mt:
                self.mt = self.gateway_mt.pop(0)
                self.mtmsn += 1
                mt_status, mt_len = 1, len(self.mt)
            queued = len(self.gateway_mt)
            self._send(f"+SBDIX: 0, {self.momsn}, {mt_status}, {self.mtmsn}, {mt_len}, {queued}")
        self._send("OK")


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    socat = require("socat")
    modem_path, dte_path = str(tmp_path / "modem"), str(tmp_path / "dte")
    proc = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={modem_path}", f"pty,raw,echo=0,link={dte_path}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not (Path(modem_path).exists() and Path(dte_path).exists()):
        assert time.monotonic() < deadline, "socat did not create the pty pair"
        time.sleep(0.05)
    yield modem_path, dte_path
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def modem(pty_pair: tuple[str, str]) -> Iterator[FakeIridium9603]:
    fake = FakeIridium9603(pty_pair[0])
    fake.start()
    yield fake
    fake.stop()


def _config(dte: str) -> object:
    return parse_config(
        {
            "site": {"name": "turkana-1", "tz": "Africa/Nairobi"},
            "links": [
                {
                    "name": "iridium",
                    "kind": "satellite_sbd",
                    "transport": "sbd",
                    "serial_port": dte,
                    "daily_budget_bytes": 20_000,
                    "cost_per_mb": 1000.0,
                    "modem_power_w": 1.5,
                    "max_priority": "daily_summary",
                    "timeout_s": 10,
                }
            ],
            "sync": {"backoff_min_s": 60, "backoff_max_s": 600},
        }
    )


def test_driver_speaks_the_modem_dialect_and_limits_are_enforced(
    modem: FakeIridium9603, pty_pair: tuple[str, str]
) -> None:
    driver = SbdModem(pty_pair[1], session_timeout_s=5)
    driver.open()
    try:
        assert modem.echo is False  # ATE0 at open
        assert driver.signal() == 4
        with pytest.raises(ModemError, match="340"):
            driver.write_mo(b"x" * 341)
        assert driver.command("AT+SBDWB=341") == ["3"]  # the modem refuses it too
        driver.write_mo(b"hello iridium")
        assert modem.mo == b"hello iridium"
        modem.queue_mt(b"\x01" * 270)
        with pytest.raises(ValueError):
            modem.queue_mt(b"\x01" * 271)
        result = driver.session()
        assert (
            result.mo_ok and result.momsn == 1 and result.mt_status == 1 and result.mt_length == 270
        )
        assert driver.read_mt() == b"\x01" * 270
        driver.clear_mo()
        assert modem.mo == b""
        modem.fail_sessions = [18]
        failed = driver.session()
        assert not failed.mo_ok and "RF drop" in failed.describe()
    finally:
        driver.close()


def test_alarms_and_summary_over_sbd_with_retries(
    modem: FakeIridium9603, pty_pair: tuple[str, str], tmp_path: Path
) -> None:
    config = _config(pty_pair[1])
    clock = ManualClock(datetime(2024, 7, 2, 3, 0, tzinfo=UTC))
    store = Store(tmp_path / "box.db")
    # yesterday's telemetry, for a summary with real figures
    t = datetime(2024, 7, 1, 0, 0, tzinfo=UTC) - timedelta(hours=3)  # local midnight (UTC+3)
    for i in range(24 * 60):
        store.telemetry.record(
            t + timedelta(minutes=i),
            {
                "pv_power_w": max(0.0, 2500.0 - abs(i - 720) * 4.0),
                "soc_pct": 40 + i / 48,
                "ac_load_power_w": 180.0,
                "battery_power_w": 500.0 if 480 < i < 960 else -150.0,
            },
        )
    service = SyncService(config, store, clock, seed=3)  # type: ignore[arg-type]
    configs: list[dict[str, object]] = []
    service.on_config(configs.append)
    long_alarm = Event(
        at=clock.now(),
        kind=EventKind.ALARM,
        source="bms",
        severity=Severity.ALARM,
        message="Cell 7 over-voltage 3.71 V; charging stopped. " * 20,
        data={"cell": 7, "voltage_v": 3.71, "history": list(range(200))},
    )
    for ev in (
        long_alarm,
        Event(
            at=clock.now(),
            kind=EventKind.ALARM,
            source="inverter",
            severity=Severity.ALARM,
            message="Inverter over-temperature 92 C",
            data={"temp_c": 92},
        ),
        Event(
            at=clock.now(),
            kind=EventKind.ALARM,
            source="box",
            severity=Severity.ALARM,
            message="Room sensor stale 600 s",
        ),
    ):
        service.enqueue_event(ev)
    service.enqueue_daily_summary(date(2024, 7, 1))
    telemetry = store.outbox.put(
        "telemetry",
        Priority.TELEMETRY,
        "telemetry",
        b"\x01\x00" + b"\x00" * 50,
        clock.now(),
        "turkana-1",
    )
    patch = encode_inbound(
        InboundItem(
            41,
            "config",
            "reserve",
            clock.now(),
            json.dumps({"battery": {"reserve_pct": 40}}).encode(),
        )
    )
    modem.queue_mt(patch)

    modem.fail_sessions = [13, 18]  # two failed sessions first
    outcomes = []
    for step in range(12):
        if step == 2:
            modem.signal = 0  # then no signal at all for a while
        if step == 4:
            modem.signal = 3
        report = asyncio.run(service.run_once(clock.now()))
        outcomes.append(report.links[0].reason if report.links else "idle")
        if sum(store.outbox.depth_by_priority()[p] for p in ("alarm", "daily_summary")) == 0:
            break
        clock.advance(900)
    depth = store.outbox.depth_by_priority()
    assert depth["alarm"] == 0 and depth["daily_summary"] == 0, outcomes
    assert depth["telemetry"] == 1  # this link does not carry telemetry
    assert store.outbox.pending()[0].id == telemetry.id
    assert any("MO status 13" in o for o in outcomes) and any("MO status 18" in o for o in outcomes)
    assert any("no Iridium signal" in o for o in outcomes) or any(
        "backing off" in o for o in outcomes
    )
    assert any(
        "CSQ 0" in service.ledger.state("iridium").last_error or "CSQ 0" in o for o in outcomes
    )

    # everything left as <= 340-byte messages, each frame exactly once
    assert modem.gateway_mo and all(len(m) <= 340 for m in modem.gateway_mo)
    frames = [f for m in modem.gateway_mo for f in decode_batch(m).frames]
    assert sorted((f.stream, f.seq) for f in frames) == [
        ("alarm", 1),
        ("alarm", 2),
        ("alarm", 3),
        ("summary", 1),
    ]
    alarms = {f.seq: decode_event(f.payload) for f in frames if f.stream == "alarm"}
    assert alarms[1].message.startswith("Cell 7 over-voltage 3.71 V") and alarms[1].source == "bms"
    assert alarms[2].data == {"temp_c": 92}
    summary = decode_daily_summary(next(f.payload for f in frames if f.stream == "summary"))
    assert summary.day == date(2024, 7, 1)
    assert summary.pv_energy_wh is not None and 20_000 < summary.pv_energy_wh < 30_000
    assert summary.soc_min_pct == pytest.approx(40.0, abs=0.05)
    assert summary.load_energy_wh == pytest.approx(180.0 * 24, rel=0.01)

    # the MT config patch came down in a session and reached the callback once
    assert configs == [{"battery": {"reserve_pct": 40}}]
    usage = service.ledger.usage("iridium", clock.now().astimezone(config.site.zone).date())  # type: ignore[attr-defined]
    assert usage.bytes_up == sum(len(m) for m in modem.gateway_mo)
    assert usage.bytes_down == len(patch)
    assert modem.sessions == 2 + len(modem.gateway_mo)  # no session is tried without signal

    # the gateway hands the messages to the hub; a repeat delivery is not stored twice
    hub = HubStore(tmp_path / "hub.db")
    client = TestClient(create_hub_app(hub, clock))
    assert client.put(f"/v1/sbd/devices/{IMEI}", params={"box": "turkana-1"}).status_code == 200
    for message in modem.gateway_mo + modem.gateway_mo[:1]:
        r = client.post(
            "/v1/sbd/rockblock",
            content=f"imei={IMEI}&momsn=1&data={message.hex()}",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200, r.text
    assert hub.stream_counts("turkana-1") == {
        "alarm": {"items": 3, "last_seq": 3},
        "summary": {"items": 1, "last_seq": 1},
    }
    bad = client.post(
        "/v1/sbd/rockblock",
        content=f"imei={IMEI}&data=zz",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert bad.status_code == 400
    store.close()
