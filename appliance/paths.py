"""Where the box finds its shipped data (register maps, field data)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def field_data_dir() -> Path:
    """``field_data/`` of the checkout, or ``$SUNBOX_FIELD_DATA`` (container images)."""
    override = os.environ.get("SUNBOX_FIELD_DATA")
    return Path(override) if override else REPO_ROOT / "field_data"
