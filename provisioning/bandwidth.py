"""balena's own traffic, shaped per link kind with supervisor configuration variables.

balena's defaults (cloudlink VPN, hardware metrics every few seconds, logs streamed to the
cloud, polling every 15 min) exceed 190 MB a month, more than a village box's whole cellular
budget; with cloudlink, hardware metrics and logs off and daily polling it is about 1 MB a
month (figures as stated in issue 9). Without cloudlink the dashboard loses the web terminal
and instant updates: releases arrive at the next poll (the supervisor polls at 0.5-1.5x the
interval), which suits energy-aware updates anyway.

Variable names and meanings: balena-supervisor docs/configurations.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from appliance.config import LinkKind, SunboxConfig

HOUR_MS = 3_600_000

# Every variable a profile may set; applying a profile removes the ones it leaves out, so the
# device falls back to balena's defaults for them.
MANAGED_CONFIG_VARS = (
    "BALENA_SUPERVISOR_VPN_CONTROL",
    "BALENA_SUPERVISOR_HARDWARE_METRICS",
    "BALENA_SUPERVISOR_LOG_CONTROL",
    "BALENA_SUPERVISOR_POLL_INTERVAL",
    "BALENA_SUPERVISOR_CONNECTIVITY_CHECK",
    "BALENA_SUPERVISOR_INSTANT_UPDATE_TRIGGER",
)

_QUIET = {
    "BALENA_SUPERVISOR_VPN_CONTROL": "false",  # cloudlink off: its keepalives dominate traffic
    "BALENA_SUPERVISOR_HARDWARE_METRICS": "false",
    "BALENA_SUPERVISOR_LOG_CONTROL": "false",  # logs stay on the box
    "BALENA_SUPERVISOR_CONNECTIVITY_CHECK": "false",
    "BALENA_SUPERVISOR_INSTANT_UPDATE_TRIGGER": "false",  # nothing to trigger it without cloudlink
}

PROFILES: dict[str, dict[str, str]] = {
    # Home broadband or no metered link: balena's defaults.
    "unmetered": {},
    # 4G: quiet, polling every 6 h so a canary ring still updates within the day.
    "cellular": {**_QUIET, "BALENA_SUPERVISOR_POLL_INTERVAL": str(6 * HOUR_MS)},
    # Paid per MB: the issue's ~1 MB/month profile, daily polling.
    "satellite_broadband": {**_QUIET, "BALENA_SUPERVISOR_POLL_INTERVAL": str(24 * HOUR_MS)},
    # Short-burst data carries no IP: balena can only talk over another link (a technician's
    # hotspot, a later cellular link); stay quiet and poll daily for when one appears.
    "satellite_sbd": {**_QUIET, "BALENA_SUPERVISOR_POLL_INTERVAL": str(24 * HOUR_MS)},
}

# The most expensive IP link decides: balena cannot know which link carries its traffic.
_PRECEDENCE: tuple[LinkKind, ...] = ("satellite_broadband", "cellular", "satellite_sbd")


def profile_name_for(config: SunboxConfig) -> str:
    kinds = {link.kind for link in config.links if link.enabled}
    for kind in _PRECEDENCE:
        if kind in kinds:
            return kind
    return "unmetered"


def profile(name: str) -> Mapping[str, str]:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown bandwidth profile {name!r}; choose one of {', '.join(PROFILES)}"
        ) from None
