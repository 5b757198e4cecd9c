"""Write fitted room parameters into a site's TOML config, keeping the user's comments.

The edit goes through tomlkit (formatting and comments survive), the result is validated by the
same pydantic models as at start-up, and only then replaces the file atomically: a mistake
leaves the original untouched.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from appliance.config import ConfigError, parse_config

Change = tuple[str, Any, Any]  # key, old value (None = absent), new value (None = removed)


def write_heat_values(path: Path | str, values: Mapping[str, float | None]) -> list[Change]:
    """Set (or, for None, remove) keys of ``[heat]`` in ``path``; returns what changed."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config error: {p}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"config error: {p}: cannot read ({exc.strerror})") from None
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"config error in {p}: not valid TOML ({exc})") from None
    if "heat" not in doc:
        doc["heat"] = tomlkit.table()
    heat: Any = doc["heat"]
    changes: list[Change] = []
    for key, new in values.items():
        old = heat.get(key)
        old_plain = None if old is None else _plain(old)
        if new is None:
            if key in heat:
                del heat[key]
                changes.append((key, old_plain, None))
        elif old_plain != new:
            heat[key] = new
            changes.append((key, old_plain, new))
    new_text = tomlkit.dumps(doc)
    data = tomllib.loads(new_text)
    parse_config(data, f"{p} (after writing fitted [heat] values)")
    written = data.get("heat", {})
    for key, new in values.items():
        if written.get(key) != new:
            raise ConfigError(f"config error in {p}: could not set heat.{key} (unusual layout)")
    if changes:
        _replace_atomically(p, new_text)
    return changes


def _plain(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def _replace_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
