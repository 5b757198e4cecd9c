"""Devices of a fleet: provision one with its site config, list all with their health tags.

A box's configuration is its balena device variables (``SUNBOX_<SECTION>__<KEY>``, produced by
``appliance.fleet.env_config.config_to_env``); its balena traffic is shaped by supervisor
config variables (``provisioning.bandwidth``); its rollout ring and site are device tags.
Pushing a config sets what changed and removes variables the config no longer has, so the
variables always describe exactly one validated config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from balena import Balena
from balena.exceptions import DeviceNotFound

from appliance.config import ENV_PREFIX, SunboxConfig
from appliance.fleet.env_config import config_to_env
from provisioning.bandwidth import MANAGED_CONFIG_VARS, profile, profile_name_for

RING_TAG = "ring"
SITE_TAG = "site"


class FleetError(Exception):
    """A fleet operation cannot go ahead; one line for the fleet manager."""


@dataclass(frozen=True)
class VarChanges:
    set: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class ProvisionResult:
    uuid: str
    device_id: int
    name: str
    registered: bool
    env: VarChanges
    profile: str
    config_vars: VarChanges
    ring: str | None


@dataclass(frozen=True)
class FleetDevice:
    """One row of the fleet list: balena's view plus the box's own health tags."""

    id: int
    uuid: str
    name: str
    online: bool
    running_release: str | None
    pinned_release: str | None
    last_seen: str | None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def ring(self) -> str | None:
        return self.tags.get(RING_TAG)


def check_uuid(uuid: str) -> str:
    """balena device UUIDs are 32 or 62 lowercase hex characters (the SDK needs the full one)."""
    if not re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{62}", uuid):
        raise FleetError(f"device UUID {uuid!r} must be the full 32 or 62 hex characters")
    return uuid


def device_id(sdk: Balena, fleet: str, uuid: str) -> int:
    """The id of device ``uuid``, which must belong to ``fleet``."""
    check_uuid(uuid)
    try:
        dev = sdk.models.device.get(
            uuid, {"$select": ["id"], "$expand": {"belongs_to__application": {"$select": ["slug"]}}}
        )
    except DeviceNotFound:
        raise FleetError(f"device {uuid} not found") from None
    apps = dev.get("belongs_to__application") or []
    slug = apps[0].get("slug") if apps else None
    if slug is None or slug.lower() != fleet.lower():
        raise FleetError(f"device {uuid} belongs to fleet {slug!r}, not {fleet!r}")
    return int(dev["id"])


def push_config(sdk: Balena, dev_id: int, config: SunboxConfig) -> VarChanges:
    """Make the device's SUNBOX_* variables describe exactly ``config``."""
    desired = config_to_env(config)
    existing = {
        v["name"]: v["value"]
        for v in sdk.models.device.env_var.get_all_by_device(dev_id)
        if v["name"].startswith(ENV_PREFIX) and "__" in v["name"]
    }
    changed = tuple(name for name, value in desired.items() if existing.get(name) != value)
    for name in changed:
        sdk.models.device.env_var.set(dev_id, name, desired[name])
    removed = tuple(sorted(set(existing) - set(desired)))
    for name in removed:
        sdk.models.device.env_var.remove(dev_id, name)
    return VarChanges(changed, removed)


def apply_profile(sdk: Balena, dev_id: int, name: str) -> VarChanges:
    """Set the bandwidth profile's config variables; drop managed ones it leaves out."""
    wanted = profile(name)
    existing = {
        v["name"]: v["value"] for v in sdk.models.device.config_var.get_all_by_device(dev_id)
    }
    changed = tuple(k for k, v in wanted.items() if existing.get(k) != v)
    for key in changed:
        sdk.models.device.config_var.set(dev_id, key, wanted[key])
    removed = tuple(k for k in MANAGED_CONFIG_VARS if k in existing and k not in wanted)
    for key in removed:
        sdk.models.device.config_var.remove(dev_id, key)
    return VarChanges(changed, removed)


def provision(
    sdk: Balena,
    fleet: str,
    config: SunboxConfig,
    *,
    uuid: str | None = None,
    device_type: str | None = None,
    ring: str | None = None,
    link_kind: str | None = None,
) -> ProvisionResult:
    """Register (or re-provision) a box: name, config variables, bandwidth profile, tags."""
    registered = False
    if uuid is None:
        uuid = str(sdk.models.device.generate_uuid())
    check_uuid(uuid)
    if not sdk.models.device.has(uuid):
        sdk.models.device.register(fleet, uuid, device_type)
        registered = True
    dev_id = device_id(sdk, fleet, uuid)
    sdk.models.device.rename(dev_id, config.site.name)
    env = push_config(sdk, dev_id, config)
    profile_name = link_kind or profile_name_for(config)
    config_vars = apply_profile(sdk, dev_id, profile_name)
    sdk.models.device.tags.set(dev_id, SITE_TAG, config.site.name)
    if ring:
        sdk.models.device.tags.set(dev_id, RING_TAG, ring)
    return ProvisionResult(
        uuid=uuid,
        device_id=dev_id,
        name=config.site.name,
        registered=registered,
        env=env,
        profile=profile_name,
        config_vars=config_vars,
        ring=ring,
    )


_LIST_OPTIONS: dict[str, Any] = {
    "$select": ["id", "uuid", "device_name", "is_online", "last_connectivity_event"],
    "$expand": {
        "device_tag": {"$select": ["tag_key", "value"]},
        "is_running__release": {"$select": ["commit"]},
        "is_pinned_on__release": {"$select": ["commit"]},
    },
}


def _commit(expanded: Any) -> str | None:
    if isinstance(expanded, list) and expanded:
        return str(expanded[0].get("commit"))
    return None


def list_fleet(sdk: Balena, fleet: str) -> list[FleetDevice]:
    """Every device of the fleet with its releases and tags, in one API request."""
    rows = sdk.models.device.get_all_by_application(fleet, _LIST_OPTIONS)
    return [
        FleetDevice(
            id=int(r["id"]),
            uuid=str(r["uuid"]),
            name=str(r.get("device_name") or ""),
            online=bool(r.get("is_online")),
            running_release=_commit(r.get("is_running__release")),
            pinned_release=_commit(r.get("is_pinned_on__release")),
            last_seen=r.get("last_connectivity_event"),
            tags={t["tag_key"]: t["value"] for t in r.get("device_tag") or []},
        )
        for r in rows
    ]
