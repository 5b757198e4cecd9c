"""Times and amounts in the words a villager reads on the screen: local time, Wh, P10."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def quantile_label(quantile: str) -> str:
    return quantile.upper()


def local_moment(moment: datetime, now: datetime, tz: ZoneInfo) -> str:
    """'14:30' today, 'tomorrow 14:30', else 'Wed 3 Apr 14:30' (site's local time)."""
    t = moment.astimezone(tz)
    today = now.astimezone(tz).date()
    hhmm = t.strftime("%H:%M")
    if t.date() == today:
        return hhmm
    if t.date() == today + timedelta(days=1):
        return f"tomorrow {hhmm}"
    return f"{t.strftime('%a')} {t.day} {t.strftime('%b')} {hhmm}"


def local_span(start: datetime, end: datetime, now: datetime, tz: ZoneInfo) -> str:
    """'10:15–12:40', 'tomorrow 10:15–12:40', or 'tomorrow 22:00–Wed 3 Apr 01:00'."""
    first = local_moment(start, now, tz)
    if start.astimezone(tz).date() == end.astimezone(tz).date():
        return f"{first}–{end.astimezone(tz).strftime('%H:%M')}"
    return f"{first}–{local_moment(end, now, tz)}"


def duration_words(seconds: float) -> str:
    minutes = int(round(seconds / 60.0))
    h, m = divmod(minutes, 60)
    if h and m:
        return f"{h} h {m} min"
    return f"{h} h" if h else f"{m} min"
