"""Shared fixtures: free ports, data dirs and configs pointing the box at loopback simulators."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.config import SunboxConfig, demo_config_text, parse_config

REPO = Path(__file__).resolve().parent.parent
FIELD_DATA = REPO / "field_data"
ARTIFACTS = REPO / "test-artifacts"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


def demo_config_data() -> dict[str, Any]:
    import tomllib

    return tomllib.loads(demo_config_text())


def make_config(port: int | None = None, **sections: dict[str, Any]) -> SunboxConfig:
    """The built-in demo config with its devices moved to ``port`` and sections updated."""
    data = demo_config_data()
    if port is not None:
        for dev in data.get("devices", []):
            dev["port"] = port
    for name, values in sections.items():
        if isinstance(values, dict) and isinstance(data.get(name), dict):
            data[name].update(values)
        else:
            data[name] = values
    return parse_config(data, "test config")


@pytest.fixture
def config_factory() -> Callable[..., SunboxConfig]:
    return make_config


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
