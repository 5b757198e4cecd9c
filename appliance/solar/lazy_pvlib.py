"""pvlib, imported on first use.

Importing pvlib loads pandas, scipy.optimize, h5py and requests: about 60 MB of resident memory
that the daemon does not need between forecasts (its clear-sky table is computed by a worker
process, see ``appliance.solar.chain``). The physics modules name ``pvlib`` through this proxy,
so importing them costs nothing until a chain actually runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def _load(self) -> ModuleType:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)


pvlib: Any = _LazyModule("pvlib")
