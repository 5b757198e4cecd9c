"""Everything the API's routes need, built once per served app."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.api.live import LiveHub
from appliance.api.ratelimit import LoginLimiter
from appliance.api.sessions import SessionManager
from appliance.api.users import UserStore
from appliance.api.view_forecast import Hindcast
from appliance.api.view_state import StateView
from appliance.clock import Clock, SystemClock
from appliance.config import SunboxConfig
from appliance.store import Store

if TYPE_CHECKING:
    from appliance.daemon import Daemon


def default_web_dir() -> Path:
    import ui.web

    return Path(ui.web.__file__).resolve().parent


@dataclass
class ApiContext:
    config: SunboxConfig
    store: Store
    clock: Clock  # the box's clock (virtual in a fast demo): data times
    wall: Clock  # the wall clock: sessions, login limits (security must not run at demo speed)
    daemon: Daemon
    users: UserStore
    sessions: SessionManager
    limiter: LoginLimiter
    state: StateView
    live: LiveHub
    hindcast: Hindcast
    web_dir: Path

    @classmethod
    def build(
        cls,
        config: SunboxConfig,
        store: Store,
        clock: Clock,
        daemon: Daemon,
        web_dir: Path | None = None,
        wall: Clock | None = None,
    ) -> ApiContext:
        wall = wall or SystemClock()
        api = config.api
        state = StateView(config, store, lambda: daemon.stats.cycles)
        return cls(
            config=config,
            store=store,
            clock=clock,
            wall=wall,
            daemon=daemon,
            users=UserStore(store, api.min_password_len),
            sessions=SessionManager(store, wall, api.session_ttl_h * 3600.0),
            limiter=LoginLimiter(api.login_max_failures, api.login_window_s, wall),
            state=state,
            live=LiveHub(
                daemon,
                store,
                state.json,
                min_interval_s=api.sse_min_interval_s,
                max_clients=api.sse_max_clients,
            ),
            hindcast=Hindcast(config, store, wall, daemon.weather),
            web_dir=web_dir or default_web_dir(),
        )
