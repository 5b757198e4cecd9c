"""The whole test suite, as the README and .ci/run run it.

1. Installs the Debian packages some tests talk to for real (socat for RS485/SBD pty pairs,
   mosquitto for MQTT, chromium for the dashboard, docker-compose to validate the balena app)
   when they are missing — apt-get, as root, no recommends.
2. Runs pytest on two workers (CI has 2 cores), with per-test timeouts.
Extra arguments go to pytest, e.g. ``tests/run_all.py -k modbus``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.system_packages import install, missing_packages  # noqa: E402


def main(argv: list[str]) -> int:
    missing = missing_packages()
    if missing:
        print(f"installing system packages for the tests: {' '.join(missing)}", flush=True)
        install(missing)
    workers = os.environ.get("SUNBOX_TEST_WORKERS", "2")
    cmd = [sys.executable, "-m", "pytest", "-n", workers, "--dist", "loadfile", "-q", *argv]
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
