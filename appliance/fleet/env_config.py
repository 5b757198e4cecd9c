"""A site config as balena device variables: the inverse of ``config.env_overrides``.

On a balena device the configuration arrives as ``SUNBOX_<SECTION>__<KEY>`` variables and is
merged by ``load_config`` over ``/data/sunbox.toml`` with the same validation as a file. The
fleet manager's provisioning tool turns a site's TOML into exactly those variables here, so
``load_config(base, environ=config_to_env(cfg))`` gives back ``cfg``.

Rules that keep the round trip exact:
- sections recurse key by key; lists of tables go by index (``SUNBOX_DEVICES__0__PORT``);
- free-form tables (a device's ``limits`` and ``points``, whose keys are case-sensitive and may
  hold dots) travel whole, as one inline TOML table, because variable names lose case;
- every value is a TOML literal; a string goes bare when bare text reads back as the same
  string (``Africa/Nairobi``), quoted otherwise (``"18:00"``, ``"true"``);
- only what differs from the base is emitted (by default the empty base the image starts
  from); a base entry the target lacks cannot be removed by a variable and is an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_jsonable_python

from appliance.config import ENV_PREFIX, ConfigError, SunboxConfig, parse_config

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# balena variable names: letters, digits, underscore; not starting with a digit.
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def toml_value(value: Any) -> str:
    """One value as a TOML inline literal (what ``config._parse_env_value`` reads back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            text_key = str(key)
            name = text_key if _BARE_KEY.fullmatch(text_key) else _toml_string(text_key)
            items.append(f"{name} = {toml_value(item)}")
        return "{" + ", ".join(items) + "}"
    raise ConfigError(
        f"config error: cannot express {type(value).__name__} value {value!r} as TOML"
    )


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    """A TOML basic string: non-ASCII stays literal, control characters and DEL are escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def env_value(value: Any) -> str:
    """A variable's text: bare when bare text reads back as the same string, else TOML."""
    if isinstance(value, str) and value and value == value.strip() and _reads_back_as(value, value):
        return value
    return toml_value(value)


def _reads_back_as(raw: str, expected: Any) -> bool:
    import tomllib

    try:
        parsed = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = raw
    return bool(parsed == expected and type(parsed) is type(expected))


def env_name(path: list[str]) -> str:
    name = ENV_PREFIX + "__".join(part.upper() for part in path)
    if not _ENV_NAME.fullmatch(name):
        raise ConfigError(f"config error: '{'.'.join(path)}' cannot be a variable name ({name})")
    return name


def config_to_env(config: SunboxConfig, base: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Variables that turn ``base`` (raw TOML data; default empty) into ``config``."""
    base_config = parse_config(dict(base or {}), "base config")
    out: dict[str, str] = {}
    _walk_model(config, base_config, [], out)
    return dict(sorted(out.items()))


def _walk_model(
    model: BaseModel, base: BaseModel | None, path: list[str], out: dict[str, str]
) -> None:
    """Emit the fields of ``model`` that differ from ``base`` (or from the field defaults)."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if base is not None:
            base_value = getattr(base, name)
            required = False
        else:
            default = field.get_default(call_default_factory=True)
            required = default is PydanticUndefined
            base_value = None if required else default
        here = [*path, name]
        if isinstance(value, BaseModel):
            _walk_model(value, base_value if isinstance(base_value, BaseModel) else None, here, out)
        elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            _walk_model_list(value, base_value if isinstance(base_value, list) else [], here, out)
        elif isinstance(value, list) and not value and isinstance(base_value, list) and base_value:
            raise ConfigError(
                f"config error: {'.'.join(here)}: the base config has {len(base_value)} entries; "
                "a device variable cannot remove them (start from an empty /data/sunbox.toml)"
            )
        elif required or _jsonable(value) != _jsonable(base_value):
            if value is None:
                raise ConfigError(
                    f"config error: {'.'.join(here)}: cannot unset a base value through a variable"
                )
            out[env_name(here)] = env_value(_jsonable(value))


def _walk_model_list(
    items: list[BaseModel], base_items: list[Any], path: list[str], out: dict[str, str]
) -> None:
    if len(base_items) > len(items):
        raise ConfigError(
            f"config error: {'.'.join(path)}: the base config has {len(base_items)} entries "
            f"and the site {len(items)}; a device variable cannot remove entries"
        )
    for idx, item in enumerate(items):
        base_item = base_items[idx] if idx < len(base_items) else None
        _walk_model(
            item, base_item if isinstance(base_item, BaseModel) else None, [*path, str(idx)], out
        )


def _jsonable(value: Any) -> Any:
    return to_jsonable_python(value)


def sunbox_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``SUNBOX_<SECTION>__<KEY>`` variables of an environment (the ones config reads)."""
    return {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX) and "__" in k}
