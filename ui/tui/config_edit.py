"""The commissioning wizard's pen: edit the site's TOML file without losing its comments.

Changes are made to a tomlkit document (so the technician's and the installer's comments and
layout survive), every value first goes through the section's pydantic model (the same rules
the daemon applies at start), and the whole file is validated with ``parse_config`` before it
is shown as a diff and before it is written. Saving is atomic and keeps the previous file as
``<name>.bak``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import BaseModel, ValidationError
from tomlkit.items import AoT, Table

from appliance.config import (
    ArrayConfig,
    BatteryConfig,
    ConfigError,
    DeviceConfig,
    SiteConfig,
    SunboxConfig,
    demo_config_text,
    parse_config,
)

SECTIONS: dict[str, type[BaseModel]] = {
    "site": SiteConfig,
    "array": ArrayConfig,
    "battery": BatteryConfig,
}


def field_error(exc: ValidationError) -> str:
    """One line: the first field and its rule."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def device_table(dev: DeviceConfig) -> Table:
    """A ``[[devices]]`` entry as the demo config writes one: only what differs from defaults."""
    full = dev.model_dump(mode="json")
    data = dev.model_dump(mode="json", exclude_defaults=True)
    where = ("host", "port") if dev.transport == "tcp" else ("serial_port", "baudrate", "parity")
    always = ("name", "role", "transport", *where, "unit_id", "map")
    table = tomlkit.table()
    for key in always:
        table.add(key, full[key])
    for key, value in data.items():
        if key in always or key in ("limits", "points"):
            continue
        table.add(key, value)
    for key in ("points", "limits"):
        entries = data.get(key) or {}
        if not entries:
            continue
        sub = tomlkit.table()
        for name, spec in entries.items():
            inline = tomlkit.inline_table()
            inline.update(spec)
            sub.add(name, inline)
        table.add(key, sub)
    table.add(tomlkit.nl())
    return table


class ConfigDraft:
    """A config file being edited: the text on disk, the document being changed, the result."""

    def __init__(self, path: Path, text: str, exists: bool) -> None:
        self.path = path
        self.original = text if exists else ""
        self.exists = exists
        try:
            self.doc = tomlkit.parse(text)
        except tomlkit.exceptions.ParseError as exc:
            raise ConfigError(f"config error in {path}: not valid TOML ({exc})") from None
        self.config = self.validate()

    @classmethod
    def open(cls, path: Path) -> ConfigDraft:
        """The file at ``path``; a new file starts from the built-in demo config."""
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"config error: {path}: cannot read ({exc.strerror})") from None
            return cls(path, text, exists=True)
        return cls(path, demo_config_text(), exists=False)

    # ------------------------------------------------------------------ reading
    def text(self) -> str:
        return tomlkit.dumps(self.doc)

    def validate(self) -> SunboxConfig:
        """The whole draft through the daemon's own rules; ConfigError with one line."""
        return parse_config(self.doc.unwrap(), str(self.path))

    def diff(self) -> str:
        new = self.text()
        old_name = str(self.path) if self.exists else "/dev/null"
        lines = difflib.unified_diff(
            self.original.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=old_name,
            tofile=str(self.path),
        )
        return "".join(lines)

    def changed(self) -> bool:
        return self.text() != self.original

    # ------------------------------------------------------------------ editing
    def _section(self, name: str) -> Table:
        if name not in self.doc:
            self.doc.add(name, tomlkit.table())
        table = self.doc[name]
        if not isinstance(table, Table):
            raise ConfigError(f"config error in {self.path}: [{name}] is not a table")
        return table

    def set_section(self, name: str, values: Mapping[str, Any]) -> BaseModel:
        """Apply ``values`` (None removes the key: back to the default) to section ``name``.

        The section's model validates the merged section first; only keys whose value changes
        are written, so the diff shows what the technician changed and nothing else. Raises
        ConfigError (one line) and leaves the draft untouched when the values break a rule.
        """
        model = SECTIONS[name]
        merged = self._present(name)
        for key, value in values.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        try:
            checked = model.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(f"[{name}] {field_error(exc)}") from None
        effective = getattr(self.config, name)
        before = self.text()
        table = self._section(name)
        for key, value in values.items():
            if value is None:
                if key in table:
                    del table[key]
                continue
            new = getattr(checked, key)
            if key in table:
                if table[key] != new:
                    table[key] = new
            elif new != getattr(effective, key):
                table[key] = new
        try:
            self.config = self.validate()
        except ConfigError:
            self.doc = tomlkit.parse(before)
            raise
        return checked

    def _present(self, name: str) -> dict[str, Any]:
        section = self.doc.get(name)
        return dict(section.unwrap()) if isinstance(section, Table) else {}

    def _devices(self) -> AoT:
        if "devices" not in self.doc:
            self.doc.append("devices", tomlkit.aot())
        aot = self.doc["devices"]
        if not isinstance(aot, AoT):
            raise ConfigError(f"config error in {self.path}: devices must be [[devices]] tables")
        return aot

    def add_device(self, dev: DeviceConfig) -> None:
        """Append a device (validated against the whole config: unique names, references)."""
        before = self.text()
        if any(d.name == dev.name for d in self.config.devices):
            raise ConfigError(f"a device named '{dev.name}' is already configured")
        self._devices().append(device_table(dev))
        try:
            self.config = self.validate()
        except ConfigError:
            self.doc = tomlkit.parse(before)
            raise

    def remove_device(self, name: str) -> None:
        before = self.text()
        aot = self._devices()
        for i, table in enumerate(aot):
            if table.get("name") == name:
                del aot[i]
                break
        else:
            raise ConfigError(f"no device named '{name}'")
        try:
            self.config = self.validate()
        except ConfigError as exc:
            self.doc = tomlkit.parse(before)
            raise ConfigError(f"cannot remove '{name}': {exc}") from None

    # ------------------------------------------------------------------ saving
    def save(self) -> Path | None:
        """Validate, keep the old file as ``.bak``, write atomically; the backup's path or None."""
        self.validate()
        text = self.text()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        backup = None
        if self.path.is_file():
            backup = self.path.with_name(self.path.name + ".bak")
            backup.write_bytes(self.path.read_bytes())
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.original, self.exists = text, True
        return backup
