"""balena fleet, device side: energy-aware update lock, health tags, config from variables.

The daemon feeds ``UpdateLockController.step`` every control cycle and
``HealthReporter.maybe_report`` on its own schedule; ``SupervisorClient.from_env`` is None when
the box does not run under balena (the lock still works: it is only a file).
"""

from appliance.fleet.env_config import config_to_env, sunbox_variables
from appliance.fleet.health import HEALTH_TAG_KEYS, HealthReporter, HealthSnapshot, health_tags
from appliance.fleet.supervisor import SupervisorClient, SupervisorDevice, SupervisorError
from appliance.fleet.update_lock import (
    LockDecision,
    LockInputs,
    LockReason,
    UpdateLockController,
    UpdateLockFile,
    decide,
)

__all__ = [
    "HEALTH_TAG_KEYS",
    "HealthReporter",
    "HealthSnapshot",
    "LockDecision",
    "LockInputs",
    "LockReason",
    "SupervisorClient",
    "SupervisorDevice",
    "SupervisorError",
    "UpdateLockController",
    "UpdateLockFile",
    "config_to_env",
    "decide",
    "health_tags",
    "sunbox_variables",
]
