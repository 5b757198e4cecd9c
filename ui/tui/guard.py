"""No traceback ever reaches the screen: every handler runs under ``guarded``.

A failure becomes one line in the message bar (and a toast); the traceback goes to the log
file (``<data dir>/tui.log``) for whoever debugs it later. Errors the technician caused or can
act on (a refused login, a bad value, an unreachable device) keep their own words; anything
else is named by its type and points at the log.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pydantic import ValidationError

from appliance.config import ConfigError
from appliance.devices.link import ModbusIOError
from ui.tui.backend import BackendError

log = logging.getLogger("ui.tui")

F = TypeVar("F", bound=Callable[..., Any])

# Exceptions whose message is already written for a person.
SPOKEN: tuple[type[BaseException], ...] = (
    BackendError,
    ConfigError,
    ModbusIOError,
    ValueError,
    OSError,
)


def one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        return f"{loc}: {msg}" if loc else msg
    text = " ".join(str(exc).split()) if isinstance(exc, _spoken()) else ""
    if not text:
        said = " ".join(str(exc).split())[:160]
        text = f"unexpected {type(exc).__name__}: {said} (details in the log)"
    return text


def _spoken() -> tuple[type[BaseException], ...]:
    from appliance.selftest.faults import FaultTestRefused

    return (*SPOKEN, FaultTestRefused)


def report(owner: Any, exc: BaseException) -> None:
    """Tell the technician (through the app); log the traceback of what nobody foresaw."""
    if isinstance(exc, _spoken()):
        log.info("refused: %s", exc)
    else:
        log.error("TUI handler failed: %s", exc, exc_info=exc)
    app = getattr(owner, "app", owner)
    say = getattr(app, "say", None)
    if callable(say):
        say(one_line(exc), "error")


def guarded(fn: F) -> F:
    """Wrap a widget/screen/app method (sync or async) so exceptions become messages."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the whole point: nothing escapes to the screen
                report(self, exc)
                return None

        return cast(F, async_wrapper)

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            report(self, exc)
            return None

    return cast(F, wrapper)
