"""One Modbus connection (a TCP endpoint or an RS485 bus) shared by the devices behind it.

pymodbus' own reconnect loop is switched off: the poller decides when to try again (per-device
exponential backoff), so a dead device never holds the others hostage. Timeouts are short
(<= 1 s) and there are no automatic retries; after any failure the connection is closed so a
late answer can never be mistaken for the next one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ExceptionResponse

from appliance.config import DeviceConfig


class ModbusIOError(Exception):
    """A request failed: timeout, lost connection, or an exception response (``code``)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Endpoint:
    transport: str  # tcp | rtu
    host: str = ""
    port: int = 0
    serial_port: str = ""
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1

    @classmethod
    def of(cls, dev: DeviceConfig) -> Endpoint:
        if dev.transport == "rtu":
            return cls("rtu", serial_port=dev.serial_port or "", baudrate=dev.baudrate, parity=dev.parity,
                       stopbits=dev.stopbits)
        return cls("tcp", host=dev.host, port=dev.port)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" if self.transport == "tcp" else f"{self.serial_port}@{self.baudrate}"


class ModbusLink:
    """Serialised access to one endpoint; counts requests (for diagnostics and benchmarks)."""

    def __init__(self, endpoint: Endpoint, timeout_s: float = 1.0) -> None:
        self.endpoint = endpoint
        self.timeout_s = min(timeout_s, 1.0)
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()
        self.requests = 0
        self.failures = 0

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        ep = self.endpoint
        if ep.transport == "rtu":
            return AsyncModbusSerialClient(
                ep.serial_port, baudrate=ep.baudrate, parity=ep.parity, stopbits=ep.stopbits, bytesize=8,
                timeout=self.timeout_s, retries=0, reconnect_delay=0,
            )
        return AsyncModbusTcpClient(ep.host, port=ep.port, timeout=self.timeout_s, retries=0, reconnect_delay=0)

    async def _connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        self.close()
        client = self._make_client()
        try:
            ok = await asyncio.wait_for(client.connect(), timeout=self.timeout_s + 0.5)
        except (TimeoutError, OSError) as exc:
            client.close()
            raise ModbusIOError(f"{self.endpoint}: cannot connect ({exc or 'timeout'})") from None
        if not ok:
            client.close()
            raise ModbusIOError(f"{self.endpoint}: cannot connect")
        self._client = client
        return client

    async def _call(self, what: str, coro_factory: object) -> object:
        async with self._lock:
            self.requests += 1
            try:
                client = await self._connected()
                # pymodbus enforces ``timeout`` per request itself (no extra task per call)
                response = await coro_factory(client)  # type: ignore[operator]
            except ModbusIOError:
                self.failures += 1
                raise
            except (TimeoutError, ModbusException, OSError, ConnectionError) as exc:
                self.failures += 1
                self.close()
                raise ModbusIOError(f"{self.endpoint}: {what}: {type(exc).__name__} {exc}".strip()) from None
            if isinstance(response, ExceptionResponse) or response.isError():
                self.failures += 1
                code = getattr(response, "exception_code", None)
                raise ModbusIOError(f"{self.endpoint}: {what}: exception code {code}", code=code)
            return response

    async def read_holding(self, device_id: int, address: int, count: int) -> list[int]:
        rr = await self._call(
            f"unit {device_id} read {address}+{count}",
            lambda c: c.read_holding_registers(address, count=count, device_id=device_id),
        )
        regs = list(rr.registers)  # type: ignore[attr-defined]
        if len(regs) != count:
            raise ModbusIOError(f"{self.endpoint}: unit {device_id} returned {len(regs)} of {count} registers")
        return regs

    async def read_input(self, device_id: int, address: int, count: int) -> list[int]:
        rr = await self._call(
            f"unit {device_id} read input {address}+{count}",
            lambda c: c.read_input_registers(address, count=count, device_id=device_id),
        )
        return list(rr.registers)  # type: ignore[attr-defined]

    async def read_coils(self, device_id: int, address: int, count: int) -> list[bool]:
        rr = await self._call(
            f"unit {device_id} read coils {address}+{count}",
            lambda c: c.read_coils(address, count=count, device_id=device_id),
        )
        return list(rr.bits)[:count]  # type: ignore[attr-defined]

    async def write_registers(self, device_id: int, address: int, values: list[int]) -> None:
        await self._call(
            f"unit {device_id} write {address}={values}",
            lambda c: c.write_registers(address, values, device_id=device_id),
        )

    async def write_coil(self, device_id: int, address: int, value: bool) -> None:
        await self._call(
            f"unit {device_id} write coil {address}={value}",
            lambda c: c.write_coil(address, value, device_id=device_id),
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
