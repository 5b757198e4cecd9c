"""The code stays typed and linted: mypy (strict defs, per pyproject) and ruff over the tree."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_mypy_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_ruff_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "appliance", "ui", "provisioning", "tests"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
