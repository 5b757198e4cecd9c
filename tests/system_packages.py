"""System packages some tests need (socat, mosquitto, chromium, docker-compose).

The test command (tests/run_all.py) installs them up front; ``require`` is the safety net when a
single test file is run by hand: it installs the Debian package if the binary is missing and
we are root, and fails loudly otherwise (a skipped test proves nothing).
"""

from __future__ import annotations

import os
import shutil
import subprocess

# binary -> Debian package
PACKAGES: dict[str, str] = {
    "socat": "socat",
    "mosquitto": "mosquitto",
    "chromium": "chromium",
    "docker-compose": "docker-compose",
}


def missing_packages() -> list[str]:
    return [pkg for binary, pkg in PACKAGES.items() if not _which(binary)]


def _which(binary: str) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    for prefix in ("/usr/sbin", "/usr/bin", "/sbin"):
        path = os.path.join(prefix, binary)
        if os.access(path, os.X_OK):
            return path
    return None


def install(packages: list[str]) -> None:
    if not packages:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"need Debian packages {packages}: run as root or install them")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, env=env
    )


def require(binary: str) -> str:
    """Path of ``binary``, installing its package first if needed."""
    path = _which(binary)
    if path:
        return path
    install([PACKAGES[binary]])
    path = _which(binary)
    if not path:
        raise RuntimeError(f"{binary} still missing after installing {PACKAGES[binary]}")
    return path
