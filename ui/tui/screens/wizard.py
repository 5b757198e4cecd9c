"""Commissioning wizard: site (with a check against the sun), array and tracker, battery,
devices, then the diff of the TOML file and save. Each step is validated by the config's own
pydantic models before the next one opens."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.widgets import ContentSwitcher, DataTable, Input, Label, Select, Static

from appliance.config import ConfigError, DeviceConfig, SiteConfig
from appliance.selftest.sun import SunCheck, check_site
from ui.tui.guard import guarded
from ui.tui.screens.assign import AssignScreen
from ui.tui.widgets import ConfirmScreen, SunboxScreen

STEPS = ("site", "array", "battery", "devices", "review")
STEP_TITLES = {
    "site": "Site",
    "array": "Array & tracker",
    "battery": "Battery",
    "devices": "Devices",
    "review": "Review & save",
}
STATUS_STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "skip": "dim"}


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    kind: str = "float"  # float | str | choice
    choices: tuple[str, ...] = ()
    optional: bool = False


FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "site": (
        FieldSpec("name", "Box name", "str"),
        FieldSpec("lat", "Latitude (deg, N +)"),
        FieldSpec("lon", "Longitude (deg, E +)"),
        FieldSpec("altitude_m", "Altitude (m)"),
        FieldSpec("tz", "Time zone (IANA)", "str"),
    ),
    "array": (
        FieldSpec("dc_kw", "Array size (kWp)"),
        FieldSpec("tracker", "Tracker", "choice", ("fixed", "single_axis", "dual_axis")),
        FieldSpec("tilt_deg", "Tilt (deg, fixed)"),
        FieldSpec("azimuth_deg", "Azimuth (deg, 180=S)"),
        FieldSpec("axis_azimuth_deg", "Axis azimuth (deg)"),
        FieldSpec("max_angle_deg", "Max tracker angle"),
        FieldSpec("inverter_ac_kw", "Inverter AC (kW)", optional=True),
        FieldSpec("losses_pct", "Losses (%)"),
    ),
    "battery": (
        FieldSpec("capacity_wh", "Capacity (Wh)"),
        FieldSpec("soc_min_pct", "BMS floor (% SoC)"),
        FieldSpec("soc_max_pct", "Max SoC (%)"),
        FieldSpec("reserve_pct", "Reserve (% SoC)"),
        FieldSpec("charge_max_w", "Max charge (W)"),
        FieldSpec("discharge_max_w", "Max discharge (W)"),
        FieldSpec("chemistry", "Chemistry", "choice", ("lifepo4", "nmc", "lead_acid")),
    ),
}


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def diff_text(diff: str) -> Text:
    out = Text()
    for line in diff.splitlines():
        style = (
            "green"
            if line.startswith("+") and not line.startswith("+++")
            else "red"
            if line.startswith("-") and not line.startswith("---")
            else "cyan"
            if line.startswith("@@")
            else "dim"
        )
        out.append(line + "\n", style=style)
    return out


def sun_text(res: SunCheck) -> Text:
    t = Text.assemble(("Sun check: ", "bold"))
    t.append(res.status.upper(), style=STATUS_STYLE.get(res.status, ""))
    t.append(f"  {res.detail}")
    return t


class WizardScreen(SunboxScreen):
    HELP = (
        "Tab moves between fields; Ctrl+N next step, Ctrl+B previous; devices: a add, d remove; "
        "review: Ctrl+S saves (asks first); Esc leaves (the draft is kept)"
    )
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+n", "next", "Next", priority=True),
        Binding("ctrl+b", "previous", "Previous", priority=True),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+k", "sun_check", "Sun check", priority=True),
        Binding("a", "add_device", "Add device"),
        Binding("d", "remove_device", "Remove device"),
    ]
    DEFAULT_CSS = """
    #wizard-steps { height: 1; padding: 0 1; }
    WizardScreen Grid { grid-size: 2; grid-columns: 22 1fr; height: auto; grid-gutter: 1 1;
                        grid-rows: 1;
                        padding: 0 1; }
    WizardScreen Grid Input, WizardScreen Grid Select { width: 40; }
    #sun-result { padding: 0 1; height: auto; }
    #devices-list { height: 1fr; }
    #review-status { padding: 0 1; height: auto; }
    #review-diff { padding: 0 1; height: auto; }
    ContentSwitcher { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.step = 0
        self.sun: SunCheck | None = None
        self.saved_path: str | None = None

    # ------------------------------------------------------------------ layout
    def compose_body(self) -> ComposeResult:
        config = self.tui.draft.config
        yield Static(id="wizard-steps")
        with ContentSwitcher(initial="step-site"):
            for name in ("site", "array", "battery"):
                section = getattr(config, name)
                with VerticalScroll(id=f"step-{name}"):
                    with Grid():
                        for spec in FIELDS[name]:
                            yield Label(spec.label)
                            value = getattr(section, spec.key)
                            wid = f"{name}-{spec.key}"
                            if spec.kind == "choice":
                                yield Select(
                                    [(c, c) for c in spec.choices],
                                    value=value,
                                    allow_blank=False,
                                    id=wid,
                                    compact=True,
                                )
                            elif spec.kind == "str":
                                yield Input(_shown(value), id=wid, compact=True)
                            else:
                                yield Input(_shown(value), type="number", id=wid, compact=True)
                    if name == "site":
                        yield Static(
                            Text("Sun check: Ctrl+K (also runs on Ctrl+N)", style="dim"),
                            id="sun-result",
                        )
            with VerticalScroll(id="step-devices"):
                yield DataTable(id="devices-list", cursor_type="row")
            with VerticalScroll(id="step-review"):
                yield Static(id="review-status")
                yield Static(id="review-diff")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#devices-list", DataTable).add_columns(
            "name", "role", "map", "where", "unit", "limits"
        )
        self.show_step()

    def show_step(self) -> None:
        name = STEPS[self.step]
        line = Text()
        for i, step in enumerate(STEPS):
            style = "bold reverse" if i == self.step else ("green" if i < self.step else "dim")
            line.append(f" {i + 1} {STEP_TITLES[step]} ", style=style)
            line.append(" ")
        self.query_one("#wizard-steps", Static).update(line)
        self.query_one(ContentSwitcher).current = f"step-{name}"
        if name == "devices":
            self.show_devices()
            self.query_one("#devices-list", DataTable).focus()
        elif name == "review":
            self.show_review()
            self.query_one("#step-review").focus()  # arrows / PgUp / PgDn scroll the diff
        else:
            self.query_one(f"#{name}-{FIELDS[name][0].key}").focus()

    # ------------------------------------------------------------------ values
    def values(self, section: str) -> dict[str, Any]:
        """The fields of a step, parsed; an empty optional field means 'back to the default'."""
        out: dict[str, Any] = {}
        for spec in FIELDS[section]:
            widget = self.query_one(f"#{section}-{spec.key}")
            if isinstance(widget, Select):
                out[spec.key] = str(widget.value)
                continue
            assert isinstance(widget, Input)
            text = widget.value.strip()
            if spec.kind == "str":
                out[spec.key] = text
            elif not text:
                if not spec.optional:
                    raise ValueError(f"{spec.label}: a number is needed")
                out[spec.key] = None
            else:
                try:
                    out[spec.key] = float(text)
                except ValueError:
                    raise ValueError(f"{spec.label}: '{text}' is not a number") from None
        return out

    def apply(self, section: str) -> None:
        """Write a step's values into the draft (ConfigError/ValueError: stay on the step)."""
        self.tui.draft.set_section(section, self.values(section))

    # ------------------------------------------------------------------ navigation
    @guarded
    async def action_next(self) -> None:
        name = STEPS[self.step]
        if name in FIELDS:
            self.apply(name)
        if name == "site":
            await self.run_sun_check()
        if self.step < len(STEPS) - 1:
            self.step += 1
            self.show_step()

    @guarded
    def action_previous(self) -> None:
        if self.step > 0:
            name = STEPS[self.step]
            if name in FIELDS:
                self.apply(name)
            self.step -= 1
            self.show_step()

    @guarded
    async def action_sun_check(self) -> None:
        await self.run_sun_check()

    async def run_sun_check(self) -> None:
        """Measured PV timing in the store vs the sun at the entered site (a worker thread: it
        models the array over a week)."""
        values = self.values("site")
        site = SiteConfig.model_validate({**self.tui.draft.config.site.model_dump(), **values})
        array = self.tui.draft.config.array
        store = self.tui.ctx.store
        now = self.tui.clock.now()
        days = self.tui.ctx.config.selftest.sun_check_days
        self.sun = await asyncio.to_thread(check_site, site, array, store, now, days)
        self.query_one("#sun-result", Static).update(sun_text(self.sun))
        severity = {"fail": "error", "warn": "warning"}.get(self.sun.status, "information")
        self.tui.say(f"sun check {self.sun.status.upper()}: {self.sun.detail}", severity)

    # ------------------------------------------------------------------ devices
    def show_devices(self) -> None:
        table = self.query_one("#devices-list", DataTable)
        table.clear()
        for d in self.tui.draft.config.devices:
            where = (
                f"{d.host}:{d.port}" if d.transport == "tcp" else f"{d.serial_port}@{d.baudrate}"
            )
            limits = ", ".join(f"{k} {v.min:g}..{v.max:g}" for k, v in d.limits.items())
            table.add_row(d.name, d.role, d.map, where, str(d.unit_id), limits, key=d.name)

    def _on_devices_step(self) -> bool:
        if STEPS[self.step] != "devices":
            self.tui.say("a / d work on the Devices step (Ctrl+N to get there)", "warning")
            return False
        return True

    @guarded
    def action_add_device(self) -> None:
        if not self._on_devices_step():
            return
        from appliance.devices.link import Endpoint

        draft = self.tui.draft
        first = draft.config.devices[0] if draft.config.devices else None
        endpoint = (
            Endpoint.of(first) if first is not None else Endpoint("tcp", host="127.0.0.1", port=502)
        )

        def done(dev: DeviceConfig | None) -> None:
            if dev is None:
                return
            try:
                draft.add_device(dev)
            except ConfigError as exc:
                self.tui.say(str(exc), "error")
                return
            self.tui.say(f"{dev.name} ({dev.role}) added to the draft")
            self.show_devices()

        self.app.push_screen(
            AssignScreen(
                None, endpoint, draft.config.battery, {d.name for d in draft.config.devices}
            ),
            done,
        )

    @guarded
    def action_remove_device(self) -> None:
        if not self._on_devices_step():
            return
        table = self.query_one("#devices-list", DataTable)
        devices = self.tui.draft.config.devices
        if not devices:
            return
        name = devices[max(0, min(table.cursor_row, len(devices) - 1))].name

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.tui.draft.remove_device(name)
            except ConfigError as exc:
                self.tui.say(str(exc), "error")
                return
            self.tui.say(f"{name} removed from the draft")
            self.show_devices()

        self.app.push_screen(ConfirmScreen(f"Remove device '{name}' from the config draft?"), done)

    # ------------------------------------------------------------------ review
    def show_review(self) -> None:
        draft = self.tui.draft
        status = self.query_one("#review-status", Static)
        try:
            config = draft.validate()
        except ConfigError as exc:
            status.update(Text(f"NOT VALID: {exc}", style="bold red"))
        else:
            t = Text()
            t.append("Valid: ", style="bold green")
            site, array, bat = config.site, config.array, config.battery
            t.append(
                f"{site.name} at {site.lat:g}, {site.lon:g} ({site.tz}); "
                f"{array.dc_kw:g} kWp {array.tracker}; "
                f"{bat.capacity_wh / 1000:g} kWh, reserve {bat.reserve_pct:g} %; "
                f"{len(config.devices)} device(s).\n"
            )
            if self.sun is not None:
                t.append_text(sun_text(self.sun))
                t.append("\n")
            t.append(f"File: {draft.path}" + ("" if draft.exists else " (new)") + ". ")
            t.append("Ctrl+S saves." if draft.changed() else "No changes to save.", style="bold")
            status.update(t)
        diff = draft.diff()
        self.query_one("#review-diff", Static).update(
            diff_text(diff) if diff else Text("(no changes)", style="dim")
        )

    @guarded
    def action_save(self) -> None:
        if STEPS[self.step] != "review":
            self.tui.say("Ctrl+S saves from the Review step (Ctrl+N to get there)", "warning")
            return
        draft = self.tui.draft
        draft.validate()
        if not draft.changed():
            self.tui.say("nothing changed: the file stays as it is")
            return

        def done(yes: bool | None) -> None:
            if not yes:
                self.tui.say("not saved")
                return
            try:
                backup = draft.save()
            except (ConfigError, OSError) as exc:
                self.tui.say(f"not saved: {exc}", "error")
                return
            self.saved_path = str(draft.path)
            kept = f" (previous kept as {backup.name})" if backup is not None else ""
            self.tui.say(f"saved {draft.path}{kept}; restart the daemon to apply it")
            self.show_review()

        self.app.push_screen(
            ConfirmScreen(f"Write {draft.path}? The diff on screen is what changes."), done
        )
