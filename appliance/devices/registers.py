"""Register maps as data: SunSpec models from the official JSON, Victron GX from its CSV.

Nothing here is typed in by hand: every address, type, scale and access right comes from the
files in field_data/modbus (see its SOURCES.md), so a new model or register is a data change.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from appliance.devices.codec import word_count
from appliance.paths import field_data_dir


@dataclass(frozen=True)
class PointDef:
    """One SunSpec point; ``offset`` counts from the model's ID register (ID = 0, L = 1)."""

    name: str
    offset: int
    size: int
    type: str
    sf: str | int | None = None
    units: str = ""
    writable: bool = False
    mandatory: bool = False
    label: str = ""
    symbols: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupDef:
    """A repeating group (e.g. the MPPT modules of model 160); offsets relative to its start."""

    name: str
    points: tuple[PointDef, ...]
    size: int


@dataclass(frozen=True)
class ModelDef:
    id: int
    name: str
    label: str
    points: tuple[PointDef, ...]
    fixed_size: int  # registers including ID and L
    group: GroupDef | None = None

    def point(self, name: str) -> PointDef:
        for p in self.points:
            if p.name == name:
                return p
        if self.group is not None:
            for p in self.group.points:
                if p.name == name:
                    return p
        raise KeyError(f"model {self.id} has no point {name!r}")

    def length_value(self, repeats: int = 0) -> int:
        """The L register: registers after ID and L."""
        return self.fixed_size - 2 + repeats * (self.group.size if self.group else 0)

    def repeats_for_length(self, length: int) -> int:
        extra = length - (self.fixed_size - 2)
        if self.group is None or self.group.size == 0 or extra <= 0:
            return 0
        return extra // self.group.size


def _points(raw_points: list[dict[str, object]], start: int) -> tuple[tuple[PointDef, ...], int]:
    out, offset = [], start
    for p in raw_points:
        type_name = str(p["type"])
        size = int(p.get("size", 1))  # type: ignore[call-overload]
        if type_name != "string":
            size = word_count(type_name)
        sf = p.get("sf")
        symbols = {int(s["value"]): str(s["name"]) for s in p.get("symbols", [])}  # type: ignore[attr-defined]
        out.append(
            PointDef(
                name=str(p["name"]),
                offset=offset,
                size=size,
                type=type_name,
                sf=sf if isinstance(sf, int | str) else None,
                units=str(p.get("units", "")),
                writable=str(p.get("access", "R")).upper() == "RW",
                mandatory=p.get("mandatory") == "M",
                label=str(p.get("label", "")),
                symbols=symbols,
            )
        )
        offset += size
    return tuple(out), offset


def sunspec_dir() -> Path:
    return field_data_dir() / "modbus" / "sunspec"


@cache
def sunspec_model(model_id: int) -> ModelDef:
    """The official definition of one SunSpec model."""
    path = sunspec_dir() / f"model_{model_id}.json"
    if not path.is_file():
        raise KeyError(f"no SunSpec model {model_id} in {sunspec_dir()}")
    doc = json.loads(path.read_text(encoding="utf-8"))
    grp = doc["group"]
    points, size = _points(grp["points"], 0)
    group = None
    if grp.get("groups"):
        sub = grp["groups"][0]
        gpoints, gsize = _points(sub["points"], 0)
        group = GroupDef(name=str(sub["name"]), points=gpoints, size=gsize)
    return ModelDef(id=int(doc["id"]), name=str(grp["name"]), label=str(grp.get("label", "")),
                    points=points, fixed_size=size, group=group)


def known_sunspec_models() -> list[int]:
    return sorted(int(m.group(1)) for p in sunspec_dir().glob("model_*.json")
                  if (m := re.match(r"model_(\d+)\.json", p.name)))


# --------------------------------------------------------------------------- Victron GX


@dataclass(frozen=True)
class VictronPoint:
    """One GX register: modbus value = round(dbus value x scale)."""

    service: str
    path: str
    register: int
    type: str  # int16, uint16, int32, uint32, string
    size: int
    scale: float
    unit: str
    writable: bool


VICTRON_SYSTEM_UNIT = 100  # com.victronenergy.system and .settings on a GX


@cache
def victron_points() -> dict[int, VictronPoint]:
    """All registers of the GX list, by register number (unique across services)."""
    path = field_data_dir() / "modbus" / "victron" / "attributes.csv"
    points: dict[int, VictronPoint] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if len(row) < 8:
                continue
            service, dbus_path, _dbus_type, unit, register, modbus_type, scale, access = row[:8]
            m = re.fullmatch(r"(\w+)\[(\d+)\]", modbus_type)
            if m and m.group(1) != "string":
                continue  # reserved / internal
            type_name, size = ("string", int(m.group(2))) if m else (modbus_type, word_count(modbus_type))
            points[int(register)] = VictronPoint(
                service=service.removeprefix("com.victronenergy."),
                path=dbus_path,
                register=int(register),
                type=type_name,
                size=size,
                scale=float(scale) if scale not in ("", "0") else 1.0,
                unit=unit,
                writable=access.strip().upper() == "W",
            )
    return points
