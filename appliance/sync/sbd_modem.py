"""AT-command driver for an Iridium 9603 / RockBLOCK short-burst-data modem on a serial port.

Follows the Iridium ISU AT Command Reference: ``AT+SBDWB`` writes a binary message (with a
2-byte checksum, the low 16 bits of the byte sum, high byte first) to the mobile-originated
buffer; ``AT+SBDIX`` runs a session with the gateway, sending that buffer and receiving one
mobile-terminated message if the gateway holds any; ``AT+SBDRB`` reads it; ``AT+SBDD0`` clears
the MO buffer so a message is never sent twice by accident. Blocking (pyserial): callers run it
in a worker thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import serial

MO_MAX_BYTES = 340
MT_MAX_BYTES = 270

# +SBDIX MO status codes (0-4 mean the message reached the gateway).
MO_STATUS_TEXT: dict[int, str] = {
    0: "transferred",
    1: "transferred, MT message too big",
    2: "transferred, location update rejected",
    10: "gateway reported the call did not complete in time",
    11: "MO queue at gateway full",
    12: "MO message has too many segments",
    13: "gateway reported the session did not complete",
    14: "invalid segment size",
    15: "access denied",
    16: "ISU locked",
    17: "gateway not responding",
    18: "connection lost (RF drop)",
    19: "link failure",
    32: "no network service",
    33: "antenna fault",
    34: "radio disabled",
    35: "ISU busy",
    36: "try later (traffic management)",
    37: "SBD service temporarily disabled",
    38: "try later (traffic management period)",
    64: "band violation",
    65: "PLL lock failure",
}


class ModemError(Exception):
    pass


@dataclass(frozen=True)
class SessionResult:
    """The six numbers of ``+SBDIX``."""

    mo_status: int
    momsn: int
    mt_status: int  # 0 none, 1 received, 2 mailbox check failed
    mtmsn: int
    mt_length: int
    mt_queued: int

    @property
    def mo_ok(self) -> bool:
        return 0 <= self.mo_status <= 4

    def describe(self) -> str:
        return MO_STATUS_TEXT.get(self.mo_status, f"status {self.mo_status}")


def checksum(data: bytes) -> bytes:
    return (sum(data) & 0xFFFF).to_bytes(2, "big")


class SbdModem:
    def __init__(
        self,
        port: str,
        baudrate: int = 19200,
        timeout_s: float = 10.0,
        session_timeout_s: float = 90.0,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.session_timeout_s = session_timeout_s
        self._serial: serial.Serial | None = None

    # ------------------------------------------------------------------ plumbing
    def open(self) -> None:
        try:
            self._serial = serial.Serial(
                self.port, self.baudrate, timeout=0.1, write_timeout=self.timeout_s
            )
        except serial.SerialException as exc:
            raise ModemError(f"cannot open {self.port}: {exc}") from exc
        self._serial.reset_input_buffer()
        self.command("AT")
        self.command("ATE0")  # no echo: binary replies (SBDRB) then start at the first byte
        self.command("AT&K0")  # no RTS/CTS flow control (3-wire RockBLOCK wiring)

    def close(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise ModemError("modem not open")
        return self._serial

    def _write(self, data: bytes) -> None:
        try:
            self._port().write(data)
            self._port().flush()
        except serial.SerialException as exc:
            raise ModemError(f"serial write failed: {exc}") from exc

    def _send_command(self, cmd: str) -> None:
        """Write a command line, first dropping stale input (the LF after a previous CR)."""
        try:
            self._port().reset_input_buffer()
        except serial.SerialException as exc:
            raise ModemError(f"serial failed: {exc}") from exc
        self._write(cmd.encode("ascii") + b"\r")

    def _read_exact(self, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            if time.monotonic() > deadline:
                raise ModemError(f"modem sent {len(buf)} of {n} bytes in time")
            try:
                buf += self._port().read(n - len(buf))
            except serial.SerialException as exc:
                raise ModemError(f"serial read failed: {exc}") from exc
        return bytes(buf)

    def _readline(self, deadline: float) -> str:
        """Next non-empty line without its CR/LF."""
        buf = bytearray()
        while True:
            if time.monotonic() > deadline:
                raise ModemError(f"no reply from modem in time (got {bytes(buf)!r})")
            try:
                chunk = self._port().read(1)
            except serial.SerialException as exc:
                raise ModemError(f"serial read failed: {exc}") from exc
            if not chunk:
                continue
            if chunk in (b"\r", b"\n"):
                line = buf.decode("ascii", errors="replace").strip()
                buf.clear()
                if line:
                    return line
            else:
                buf += chunk

    def command(self, cmd: str, timeout_s: float | None = None) -> list[str]:
        """Send ``cmd``; lines before the final OK (echo removed). ERROR raises ModemError."""
        self._send_command(cmd)
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        lines: list[str] = []
        while True:
            line = self._readline(deadline)
            if line == cmd:
                continue  # echo
            if line == "OK":
                return lines
            if line == "ERROR":
                raise ModemError(f"{cmd}: ERROR")
            lines.append(line)

    # ------------------------------------------------------------------ SBD
    def signal(self) -> int:
        """Signal quality 0..5 (``AT+CSQ``)."""
        for line in self.command("AT+CSQ", self.session_timeout_s):
            if line.startswith("+CSQ:"):
                return int(line.split(":", 1)[1].strip())
        raise ModemError("no +CSQ in reply")

    def write_mo(self, data: bytes) -> None:
        """Put ``data`` in the MO buffer (``AT+SBDWB``)."""
        if not 1 <= len(data) <= MO_MAX_BYTES:
            raise ModemError(f"SBD message of {len(data)} bytes (1..{MO_MAX_BYTES} allowed)")
        cmd = f"AT+SBDWB={len(data)}"
        self._send_command(cmd)
        deadline = time.monotonic() + self.timeout_s
        while True:
            line = self._readline(deadline)
            if line == cmd:
                continue
            if line == "READY":
                break
            if line in ("1", "2", "3", "ERROR"):
                self._drain_ok(deadline, line == "ERROR")
                raise ModemError(f"{cmd} refused ({line})")
        self._write(data + checksum(data))
        result = self._readline(deadline)
        self._drain_ok(deadline, False)
        if result != "0":
            meaning = {"1": "timeout", "2": "checksum mismatch", "3": "wrong size"}.get(
                result, result
            )
            raise ModemError(f"SBDWB failed: {meaning}")

    def _drain_ok(self, deadline: float, already_final: bool) -> None:
        if already_final:
            return
        while True:
            line = self._readline(deadline)
            if line in ("OK", "ERROR"):
                return

    def session(self) -> SessionResult:
        """Run an SBD session (``AT+SBDIX``): send the MO buffer, fetch one MT message."""
        for line in self.command("AT+SBDIX", self.session_timeout_s):
            if line.startswith("+SBDIX:"):
                parts = [int(p.strip()) for p in line.split(":", 1)[1].split(",")]
                if len(parts) != 6:
                    raise ModemError(f"bad +SBDIX line: {line}")
                return SessionResult(*parts)
        raise ModemError("no +SBDIX in reply")

    def read_mt(self) -> bytes:
        """The MT buffer (``AT+SBDRB``): length, message, checksum, then OK."""
        self._send_command("AT+SBDRB")
        deadline = time.monotonic() + self.timeout_s
        length = int.from_bytes(self._read_exact(2, deadline), "big")
        if length > MT_MAX_BYTES:
            raise ModemError(f"MT message of {length} bytes exceeds {MT_MAX_BYTES}")
        data = self._read_exact(length, deadline)
        if self._read_exact(2, deadline) != checksum(data):
            raise ModemError("MT checksum mismatch")
        self._drain_ok(deadline, False)
        return data

    def clear_mo(self) -> None:
        lines = self.command("AT+SBDD0")
        if lines and lines[0] != "0":
            raise ModemError("could not clear the MO buffer")
