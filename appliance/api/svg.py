"""Server-made SVG time charts: no chart library, no CDN (the box is offline), and a phone only
has to draw a picture. Each mark carries its class and ``data-series`` (for the page's CSS and
for tests) and its own colours, so an SVG also reads on its own.

Times on the x axis are labelled in the site's local time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

Number = float | None

PAD_L, PAD_R, PAD_T, PAD_B = 52, 12, 34, 30
# Okabe-Ito colours: distinct for colour-blind eyes and dark enough to read in sunlight.
PALETTE = {
    "forecast": "#E69F00", "p50": "#000000", "actual": "#0072B2", "soc": "#007A5A",
    "soc-plan": "#007A5A", "reserve": "#D55E00", "soc-min": "#9B0000", "pv-plan": "#C98A00",
    "jobs": "#0072B2", "charge": "#007A5A", "discharge": "#D55E00", "room": "#D55E00",
    "outdoor": "#0072B2", "setpoint": "#000000", "wanted": "#F0E442", "now": "#333333",
}  # fmt: skip


def colour(cls: str) -> str:
    return PALETTE.get(cls, "#111111")


def el(tag: str, attrs: dict[str, object], content: str | None = None) -> str:
    """One SVG element; attribute values and text are escaped."""
    a = " ".join(f"{k.replace('_', '-')}={quoteattr(str(v))}" for k, v in attrs.items())
    return f"<{tag} {a}/>" if content is None else f"<{tag} {a}>{escape(content)}</{tag}>"


def nice_step(span: float, target_ticks: int = 5) -> float:
    raw = span / max(1, target_ticks)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt_num(v: float) -> str:
    return f"{v:g}" if abs(v) < 1000 else f"{v / 1000:g}k"


def _pts(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


@dataclass
class TimeChart:
    start: datetime
    end: datetime
    y_lo: float
    y_hi: float
    zone: ZoneInfo
    title: str
    unit: str
    width: int = 720
    height: int = 300
    _parts: list[str] = field(default_factory=list)
    _under: list[str] = field(default_factory=list)
    _legend: list[tuple[str, str, str]] = field(default_factory=list)

    # ------------------------------------------------------------------ geometry
    def x(self, t: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        frac = (t - self.start).total_seconds() / span
        return PAD_L + min(1.0, max(0.0, frac)) * (self.width - PAD_L - PAD_R)

    def y(self, v: float) -> float:
        span = (self.y_hi - self.y_lo) or 1.0
        frac = (v - self.y_lo) / span
        return self.height - PAD_B - min(1.0, max(0.0, frac)) * (self.height - PAD_T - PAD_B)

    def _inside(self, t: datetime) -> bool:
        return self.start <= t <= self.end

    # ------------------------------------------------------------------ marks
    def band(
        self,
        times: Sequence[datetime],
        lo: Sequence[Number],
        hi: Sequence[Number],
        cls: str,
        name: str,
        label: str,
    ) -> None:
        """A filled band, broken where either edge is missing."""
        runs: list[list[tuple[datetime, float, float]]] = [[]]
        for t, a, b in zip(times, lo, hi, strict=False):
            if a is None or b is None or not self._inside(t):
                runs.append([])
            else:
                runs[-1].append((t, a, b))
        for r in (r for r in runs if r):
            upper = [(self.x(t), self.y(b)) for t, _, b in r]
            lower = [(self.x(t), self.y(a)) for t, a, _ in reversed(r)]
            self._parts.append(
                el(
                    "polygon",
                    {
                        "class": f"band {cls}",
                        "data-series": name,
                        "fill": colour(cls),
                        "fill-opacity": 0.35,
                        "stroke": "none",
                        "points": _pts(upper + lower),
                    },
                )
            )
        self._legend.append((f"band {cls}", colour(cls), label))

    def line(
        self,
        times: Sequence[datetime],
        values: Sequence[Number],
        cls: str,
        name: str,
        label: str,
        *,
        dashed: bool = False,
        step: bool = False,
    ) -> int:
        """A polyline per run of known values; returns the number of points drawn."""
        runs: list[list[tuple[float, float]]] = [[]]
        drawn = 0
        for t, v in zip(times, values, strict=False):
            if v is None or not math.isfinite(v) or not self._inside(t):
                runs.append([])
                continue
            x, y = self.x(t), self.y(v)
            if step and runs[-1]:
                runs[-1].append((x, runs[-1][-1][1]))
            runs[-1].append((x, y))
            drawn += 1
        for r in (r for r in runs if r):
            attrs: dict[str, object] = {
                "class": f"line {cls}",
                "data-series": name,
                "fill": "none",
                "stroke": colour(cls),
                "stroke-width": 2.5 if dashed else 3,
                "stroke-linejoin": "round",
                "points": _pts(r if len(r) > 1 else r * 2),
            }
            if dashed:
                attrs["stroke-dasharray"] = "7 5"
            self._parts.append(el("polyline", attrs))
        self._legend.append((f"line {cls}" + (" dashed" if dashed else ""), colour(cls), label))
        return drawn

    def hline(self, value: float, cls: str, label: str) -> None:
        y = self.y(value)
        self._parts.append(
            el(
                "line",
                {
                    "class": f"ref {cls}",
                    "data-series": cls,
                    "stroke": colour(cls),
                    "stroke-width": 2,
                    "stroke-dasharray": "6 4",
                    "x1": PAD_L,
                    "x2": self.width - PAD_R,
                    "y1": f"{y:.1f}",
                    "y2": f"{y:.1f}",
                },
            )
        )
        self._parts.append(
            el(
                "text",
                {
                    "class": f"ref-label {cls}",
                    "x": self.width - PAD_R - 4,
                    "y": f"{y - 4:.1f}",
                    "text-anchor": "end",
                    "font-size": 13,
                    "fill": colour(cls),
                },
                label,
            )
        )

    def vline(self, t: datetime, cls: str, label: str) -> None:
        if not self._inside(t):
            return
        x = self.x(t)
        self._parts.append(
            el(
                "line",
                {
                    "class": cls,
                    "data-series": cls,
                    "stroke": colour(cls),
                    "stroke-width": 1.5,
                    "x1": f"{x:.1f}",
                    "x2": f"{x:.1f}",
                    "y1": PAD_T,
                    "y2": self.height - PAD_B,
                },
            )
        )
        self._parts.append(
            el(
                "text",
                {
                    "class": f"vline-label {cls}",
                    "x": f"{x + 3:.1f}",
                    "y": PAD_T + 12,
                    "font-size": 12,
                },
                label,
            )
        )

    def shade(self, spans: Sequence[tuple[datetime, datetime]], cls: str, label: str) -> None:
        for a, b in spans:
            if b <= self.start or a >= self.end:
                continue
            x0, x1 = self.x(max(a, self.start)), self.x(min(b, self.end))
            self._under.append(
                el(
                    "rect",
                    {
                        "class": f"shade {cls}",
                        "data-series": cls,
                        "fill": colour(cls),
                        "fill-opacity": 0.3,
                        "x": f"{x0:.1f}",
                        "y": PAD_T,
                        "width": f"{max(0.0, x1 - x0):.1f}",
                        "height": self.height - PAD_T - PAD_B,
                    },
                )
            )
        self._legend.append((f"shade {cls}", colour(cls), label))

    # ------------------------------------------------------------------ frame
    def _y_axis(self) -> list[str]:
        out: list[str] = []
        step = nice_step(self.y_hi - self.y_lo)
        v = math.ceil(self.y_lo / step) * step
        while v <= self.y_hi + 1e-9:
            y = f"{self.y(v):.1f}"
            out.append(
                el(
                    "line",
                    {
                        "class": "grid",
                        "stroke": "#ccc",
                        "x1": PAD_L,
                        "x2": self.width - PAD_R,
                        "y1": y,
                        "y2": y,
                    },
                )
            )
            out.append(
                el(
                    "text",
                    {
                        "class": "tick",
                        "x": PAD_L - 6,
                        "y": f"{self.y(v) + 4:.1f}",
                        "text-anchor": "end",
                        "font-size": 12,
                    },
                    fmt_num(v),
                )
            )
            v += step
        unit = {"class": "unit", "x": 4, "y": PAD_T - 6, "font-size": 12}
        out.append(el("text", unit, self.unit))
        return out

    def _x_axis(self) -> list[str]:
        out: list[str] = []
        span_h = (self.end - self.start).total_seconds() / 3600
        every_h = 3 if span_h <= 30 else 6 if span_h <= 60 else 12
        t = self.start.astimezone(self.zone).replace(minute=0, second=0, microsecond=0)
        while t.hour % every_h:
            t += timedelta(hours=1)
        while t <= self.end:
            if t >= self.start:
                x = f"{self.x(t):.1f}"
                midnight = t.hour == 0
                cls = "grid day" if midnight else "grid"
                out.append(
                    el(
                        "line",
                        {
                            "class": cls,
                            "stroke": "#999" if midnight else "#ccc",
                            "x1": x,
                            "x2": x,
                            "y1": PAD_T,
                            "y2": self.height - PAD_B,
                        },
                    )
                )
                out.append(
                    el(
                        "text",
                        {
                            "class": cls.replace("grid", "tick"),
                            "x": x,
                            "y": self.height - PAD_B + 16,
                            "text-anchor": "middle",
                            "font-size": 12,
                        },
                        t.strftime("%d/%m" if midnight else "%H:%M"),
                    )
                )
            t = (t + timedelta(hours=every_h)).astimezone(self.zone)
        return out

    def _legend_svg(self) -> list[str]:
        out = []
        x = PAD_L
        for cls, fill, label in self._legend:
            out.append(
                el(
                    "rect",
                    {
                        "class": f"key {cls}",
                        "x": x,
                        "y": 8,
                        "width": 14,
                        "height": 10,
                        "fill": fill,
                    },
                )
            )
            out.append(
                el("text", {"class": "key-label", "x": x + 18, "y": 17, "font-size": 12}, label)
            )
            x += 26 + 7 * len(label)
        return out

    def render(self, empty_label: str | None = None) -> str:
        body = [*self._under, *self._y_axis(), *self._x_axis(), *self._parts, *self._legend_svg()]
        if empty_label:
            body.append(
                el(
                    "text",
                    {
                        "class": "empty",
                        "x": f"{self.width / 2:.0f}",
                        "y": f"{self.height / 2:.0f}",
                        "text-anchor": "middle",
                        "font-size": 16,
                    },
                    empty_label,
                )
            )
        head = {
            "xmlns": "http://www.w3.org/2000/svg",
            "class": "chart",
            "role": "img",
            "viewBox": f"0 0 {self.width} {self.height}",
            "aria-label": self.title,
            "font-family": "sans-serif",
        }
        attrs = " ".join(f"{k}={quoteattr(str(v))}" for k, v in head.items())
        return f"<svg {attrs}><title>{escape(self.title)}</title>{''.join(body)}</svg>"
