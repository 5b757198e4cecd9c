"""The balena multi-container app in images/: valid compose, the labels and volume we rely on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.config import load_config
from tests.conftest import REPO
from tests.system_packages import require

IMAGES = REPO / "images"


def compose() -> dict[str, Any]:
    data = yaml.safe_load((IMAGES / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_balena_compose_config_is_valid() -> None:
    binary = require("docker-compose")
    out = subprocess.run(
        [binary, "-f", str(IMAGES / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr


def test_balena_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: the same tool refuses a compose file with an unknown key."""
    binary = require("docker-compose")
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(
        (IMAGES / "docker-compose.yml").read_text().replace("restart: always", "restrat: always")
    )
    (tmp_path / "core").mkdir()
    out = subprocess.run(
        [binary, "-f", str(bad), "config", "-q"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0 and "restrat" in out.stderr


def test_balena_core_service_contract() -> None:
    data = compose()
    assert str(data["version"]).startswith("2.")  # balena reads compose 2.x only
    core = data["services"]["core"]
    labels = core["labels"]
    assert labels["io.balena.features.supervisor-api"] == "1"
    assert labels["io.balena.update.strategy"] in (
        "download-then-kill",
        "kill-then-download",
        "delete-then-download",
        "hand-over",
    )
    assert labels["io.balena.update.strategy"] == "download-then-kill"
    assert "sunbox-data:/data" in core["volumes"] and "sunbox-data" in data["volumes"]
    assert core.get("privileged") is not True
    assert any(d.startswith("/dev/ttyUSB") for d in core["devices"])
    assert core["command"] == [
        "sunbox",
        "run",
        "--config",
        "/data/sunbox.toml",
        "--data-dir",
        "/data",
    ]
    for name, service in data["services"].items():
        build = service["build"]
        template = IMAGES / build["context"] / build["dockerfile"]
        assert build["dockerfile"] == "Dockerfile.template", name
        text = template.read_text()
        assert text.startswith("#") and "FROM " in text and "%%BALENA_" in text
        # balena: named volumes only, no bind mounts.
        assert all(not v.split(":")[0].startswith(("/", ".")) for v in service.get("volumes", []))


def test_balena_yml_declares_the_app() -> None:
    data = yaml.safe_load((IMAGES / "balena.yml").read_text(encoding="utf-8"))
    assert data["type"] == "sw.application"
    types = data["data"]["supportedDeviceTypes"]
    assert "raspberrypi4-64" in types and "generic-amd64" in types
    assert data["data"]["defaultDeviceType"] in types


def test_balena_entrypoint_writes_an_empty_config_that_loads(tmp_path: Path) -> None:
    mount = tmp_path / "data"
    script = IMAGES / "core" / "entrypoint.sh"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SUNBOX_DATA_MOUNT": str(mount)}
    out = subprocess.run(
        ["sh", str(script), "echo", "started"], capture_output=True, text=True, env=env, timeout=30
    )
    assert out.returncode == 0 and out.stdout.strip() == "started"
    config_file = mount / "sunbox.toml"
    written = config_file.read_text()
    # Empty base + device variables = the site's config; alone it is the model defaults.
    config = load_config(config_file, environ={"SUNBOX_SITE__NAME": "box-7"})
    assert config.site.name == "box-7" and config.devices == []
    config_file.write_text('[site]\nname = "kept"\n')
    subprocess.run(["sh", str(script), "true"], check=True, env=env, timeout=30)
    assert config_file.read_text() != written  # a technician's file is kept


@pytest.mark.parametrize("path", ["prepare.sh", "core/entrypoint.sh"])
def test_balena_scripts_are_valid_sh(path: str) -> None:
    out = subprocess.run(
        ["sh", "-n", str(IMAGES / path)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
