"""Give a found (or hand-entered) device a name and a role; the result is a validated
``[[devices]]`` entry for the commissioning draft."""

from __future__ import annotations

from pydantic import ValidationError
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Footer, Input, Label, Select, Static

from appliance.config import BatteryConfig, DeviceConfig
from appliance.devices.link import Endpoint
from ui.tui.config_edit import field_error
from ui.tui.guard import guarded
from ui.tui.scanning import ROLES, ScanHit, device_for, unique_name

REG_TYPES = ("int16", "uint16", "int32", "uint32", "float32")


class AssignScreen(ModalScreen[DeviceConfig | None]):
    """Ctrl+S (or Enter in the last field) accepts; Esc cancels."""

    DEFAULT_CSS = """
    AssignScreen { align: center middle; }
    AssignScreen > Vertical { width: 76; max-width: 98%; height: auto; max-height: 95%;
                              border: thick $accent; background: $surface; padding: 0 1; }
    AssignScreen Grid { grid-size: 2; grid-columns: 20 1fr; grid-rows: 1; height: auto;
                        grid-gutter: 1 1; padding: 1 0; }
    AssignScreen #assign-error { color: $error; height: auto; }
    """
    BINDINGS = [
        Binding("ctrl+s", "accept", "Accept", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(
        self, hit: ScanHit | None, endpoint: Endpoint, battery: BatteryConfig, taken: set[str]
    ) -> None:
        super().__init__()
        self.hit = hit
        self.endpoint = endpoint
        self.battery = battery
        self.taken = taken

    def compose(self) -> ComposeResult:
        hit = self.hit
        role = hit.guess_role() if hit is not None else "room_sensor"
        title = (
            f"Unit {hit.unit_id} at {self.endpoint}: {hit.describe()}"
            if hit is not None
            else f"New device at {self.endpoint}"
        )
        with Vertical():
            yield Static(title, classes="title")
            with Grid():
                yield Label("Name")
                yield Input(unique_name(role, self.taken), id="assign-name", compact=True)
                yield Label("Role")
                yield Select(
                    [(r, r) for r in ROLES],
                    value=role,
                    allow_blank=False,
                    id="assign-role",
                    compact=True,
                )
                if hit is None:
                    yield Label("Unit id")
                    yield Input("1", type="integer", id="assign-unit", compact=True)
                if hit is None or hit.kind == "generic":
                    yield Label("Register address")
                    yield Input("0", type="integer", id="assign-address", compact=True)
                    yield Label("Register type")
                    yield Select(
                        [(t, t) for t in REG_TYPES],
                        value="int16",
                        allow_blank=False,
                        id="assign-type",
                        compact=True,
                    )
                    yield Label("Scale (x raw)")
                    yield Input("0.1", type="number", id="assign-scale", compact=True)
                else:
                    yield Label("Battery reserve")
                    yield Checkbox(
                        "the box may write the reserve",
                        value=True,
                        id="assign-reserve",
                        compact=True,
                    )
            yield Static(id="assign-error")
            yield Static(
                "Ctrl+S accepts, Esc cancels. Review and save in the wizard (w).", classes="help"
            )
        yield Footer()

    def _value(self, wid: str, default: str = "") -> str:
        found = self.query(f"#{wid}")
        return found.first(Input).value.strip() if found else default

    @guarded
    def action_accept(self) -> None:
        error = self.query_one("#assign-error", Static)
        role = str(self.query_one("#assign-role", Select).value)
        hit = self.hit
        try:
            if hit is None:
                hit = ScanHit(int(self._value("assign-unit", "1") or "0"), "generic")
            reserve = self.query("#assign-reserve")
            dev = device_for(
                hit,
                self.endpoint,
                name=self._value("assign-name"),
                role=role,
                battery=self.battery,
                allow_reserve=bool(reserve.first(Checkbox).value) if reserve else False,
                address=int(self._value("assign-address", "0") or "0"),
                reg_type=str(self.query_one("#assign-type", Select).value)
                if self.query("#assign-type")
                else "int16",
                scale=float(self._value("assign-scale", "1") or "1"),
            )
        except ValidationError as exc:
            error.update(field_error(exc))
            return
        except ValueError as exc:
            error.update(f"not a number: {exc}")
            return
        if dev.name in self.taken:
            error.update(f"a device named '{dev.name}' is already configured")
            return
        self.dismiss(dev)

    def action_cancel(self) -> None:
        self.dismiss(None)
