"""Who a simulated device is: its config, the plant it reports on, its identity strings."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from appliance import __version__
from appliance.config import DeviceConfig, SunboxConfig
from appliance.sim.plant import Plant

MANUFACTURER = "Sunbox"


@dataclass(frozen=True)
class DeviceContext:
    config: SunboxConfig
    plant: Plant
    name: str
    role: str
    unit_id: int

    @classmethod
    def of(cls, config: SunboxConfig, plant: Plant, device: DeviceConfig) -> DeviceContext:
        return cls(
            config=config, plant=plant, name=device.name, role=device.role, unit_id=device.unit_id
        )

    @property
    def identity(self) -> dict[str, str]:
        return device_identity(self.config, self.name, self.role)


def device_identity(config: SunboxConfig, name: str, role: str) -> dict[str, str]:
    """Manufacturer, model, version and serial a simulated device reports (SunSpec model 1).

    The serial is stable per site and device name, so a scan finds the same box every run.
    """
    if role == "battery":
        model = f"SBX-BAT-{round(config.battery.capacity_wh):d}"
    else:
        model = f"SBX-SIM-{round(config.array.ac_limit_w):d}"
    serial = f"SBX{zlib.crc32(f'{config.site.name}/{name}'.encode()):08X}"
    return {"manufacturer": MANUFACTURER, "model": model, "version": __version__, "serial": serial}
