"""The API's own parts, in-process on real SQLite: users, sessions, the login limiter, the
password rule, the SVG charts and the Prometheus exposition."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance.api import schema  # noqa: F401
from appliance.api.metrics import Exposition, parse
from appliance.api.passwords import PasswordRuleError, check_rule, generate_password
from appliance.api.ratelimit import LoginLimiter
from appliance.api.roles import Role
from appliance.api.series import bucket_means, local_day_after, local_midnight
from appliance.api.sessions import SessionManager
from appliance.api.svg import TimeChart
from appliance.api.users import UserError, UserStore
from appliance.clock import ManualClock
from appliance.store import Store

T0 = datetime(2026, 6, 21, 5, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "sunbox.db")


def test_users_sessions_and_the_last_admin(store: Store) -> None:
    wall = ManualClock(T0)
    users = UserStore(store, min_password_len=10)
    sessions = SessionManager(store, wall, ttl_s=3600)
    users.add_first_admin("Wanjiru", "long-rains-2026", T0)
    with pytest.raises(UserError) as exc:
        users.add_first_admin("other", "long-rains-2027", T0)
    assert exc.value.kind == "setup_done"
    assert users.verify("wanjiru", "long-rains-2026", T0) is not None
    assert users.verify("wanjiru", "wrong-password", T0) is None
    assert users.verify("nobody", "long-rains-2026", T0) is None
    new = sessions.create("wanjiru", Role.ADMIN, "127.0.0.1")
    assert (
        store.query("SELECT count(*) AS n FROM api_sessions WHERE id_hash = ?", (new.token,))[0][
            "n"
        ]
        == 0
    )
    got = sessions.lookup(new.token)
    assert got is not None and got.role is Role.ADMIN and got.csrf == new.session.csrf
    assert sessions.lookup("forged-token") is None
    with pytest.raises(UserError) as exc:
        users.set_role("wanjiru", Role.VIEWER, T0)
    assert exc.value.kind == "last_admin"
    with pytest.raises(UserError):
        users.remove("wanjiru")
    # a new password ends every session of the user (after the short cache)
    users.set_password("wanjiru", "short-rains-2026", T0)
    wall.advance(6)
    assert sessions.lookup(new.token) is None
    # and a session expires on the wall clock
    again = sessions.create("wanjiru", Role.ADMIN, "127.0.0.1")
    wall.advance(3599)
    assert sessions.lookup(again.token) is not None
    wall.advance(2)
    assert sessions.lookup(again.token) is None


def test_login_limiter_counts_per_address_and_per_name() -> None:
    wall = ManualClock(T0)
    lim = LoginLimiter(max_failures=5, window_s=300, wall=wall)
    for _ in range(4):
        lim.failed("10.0.0.1", "admin")
        wall.advance(10)
    assert lim.retry_after_s("10.0.0.1", "admin") is None
    lim.failed("10.0.0.1", "admin")
    assert lim.retry_after_s("10.0.0.1", "admin") == 300 - 40
    # the name is locked from every address, the address for every name
    assert lim.retry_after_s("10.0.0.2", "admin") == 260
    assert lim.retry_after_s("10.0.0.1", "juma") == 260
    assert lim.retry_after_s("10.0.0.2", "juma") is None
    wall.advance(261)
    assert lim.retry_after_s("10.0.0.1", "admin") is None
    # a success from an address forgets that address's failures only
    for _ in range(3):
        lim.failed("10.0.0.9", "juma")
        lim.failed("10.0.0.8", "juma")
    lim.succeeded("10.0.0.9", "juma")
    lim.failed("10.0.0.8", "juma")
    lim.failed("10.0.0.8", "juma")
    assert lim.retry_after_s("10.0.0.7", "juma") is not None


def test_password_rule_and_generated_passwords() -> None:
    for bad, words in (
        ("short1", "at least 10"),
        ("aaaaaaaaaaaa", "different"),
        ("xx-wanjiru-xx", "user name"),
        ("x" * 300, "at most"),
    ):
        with pytest.raises(PasswordRuleError, match=words):
            check_rule(bad, "wanjiru", 10)
    check_rule("long-rains-2026", "wanjiru", 10)
    pws = {generate_password() for _ in range(200)}
    assert len(pws) == 200
    for pw in list(pws)[:20]:
        assert len(pw) == 23 and not set(pw) & set("0O1lI")
        check_rule(pw, "admin", 10)
    # 20 characters from a 56-letter alphabet: > 110 bits
    assert 20 * math.log2(56) > 110


def test_time_chart_svg_marks_and_local_axis() -> None:
    zone = ZoneInfo("Africa/Nairobi")
    start = local_midnight(T0, zone)
    end = local_day_after(start, 2, zone)
    assert start == datetime(2026, 6, 20, 21, 0, tzinfo=UTC) and end - start == timedelta(hours=48)
    times = [start + timedelta(minutes=15 * k) for k in range(192)]
    p50 = [max(0.0, 1000 * math.sin(math.pi * ((k % 96) - 24) / 48)) for k in range(192)]
    lo: list[float | None] = [v * 0.6 for v in p50]
    hi: list[float | None] = [v * 1.3 for v in p50]
    lo[100] = None  # a gap breaks the band in two
    c = TimeChart(start, end, 0, 1500, zone, "PV <today>", "W")
    c.band(times, lo, hi, "forecast", "p10-p90", "P10-P90")
    p50_late: list[float | None] = [None] * 10 + list(p50[10:])
    drawn = c.line(times, p50_late, "p50", "p50", "P50", dashed=True)
    c.hline(300.0, "reserve", "reserve & more")
    svg = ET.fromstring(c.render())
    ns = "{http://www.w3.org/2000/svg}"
    assert drawn == 182
    assert len([p for p in svg.iter(f"{ns}polygon")]) == 2
    title = svg.find(f"{ns}title")
    assert title is not None and title.text == "PV <today>"  # escaped, then parsed back
    labels = [t.text for t in svg.iter(f"{ns}text") if "tick" in (t.get("class") or "")]
    assert "21/06" in labels and "06:00" in labels  # local midnight and morning, not UTC
    ref = next(e for e in svg.iter(f"{ns}line") if e.get("data-series") == "reserve")
    assert float(ref.get("y1", "nan")) == pytest.approx(c.y(300.0))


def test_exposition_round_trip_and_bucket_means() -> None:
    e = Exposition()
    e.gauge("sunbox_soc_pct", "SoC.", 61.25)
    e.declare("sunbox_jobs", "gauge", "Jobs.")
    e.sample("sunbox_jobs", 2, {"state": 'we"ird\\'})
    e.gauge("sunbox_missing", "Not known.", None)
    got = list(parse(e.text()))
    assert got == [("sunbox_soc_pct", {}, 61.25), ("sunbox_jobs", {"state": 'we\\"ird\\\\'}, 2.0)]
    pts = [(T0 + timedelta(seconds=s), float(s)) for s in range(0, 600, 10)]
    means = bucket_means(pts, T0, 300)
    assert means == [(T0, 145.0), (T0 + timedelta(seconds=300), 445.0)]


def test_users_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    from appliance.cli import main

    where = ["--data-dir", str(tmp_path)]
    monkeypatch.setattr("sys.stdin", io.StringIO("rainy-season-42\n"))
    assert main(["users", "add", "Baraka", "--role", "operator", "--password-stdin", *where]) == 0
    assert main(["users", "add", "zawadi", "--role", "admin", "--generate", *where]) == 0
    out = capsys.readouterr().out
    generated = re.search(r"password: (\S+)", out)
    assert "added baraka (operator)" in out and generated is not None
    assert main(["users", "list", "--json", *where]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["name"], u["role"]) for u in listed] == [("baraka", "operator"), ("zawadi", "admin")]
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "passwd", "baraka", "--password-stdin", *where]) == 1
    assert "at least 10 characters" in capsys.readouterr().err
    assert main(["users", "passwd", "baraka", "--generate", *where]) == 0
    new_pw = re.search(r"password: (\S+)", capsys.readouterr().out)
    assert new_pw is not None
    store = Store.open_dir(tmp_path)
    users = UserStore(store)
    assert users.verify("baraka", new_pw.group(1), T0) is not None
    assert users.verify("baraka", "rainy-season-42", T0) is None
    assert users.verify("zawadi", generated.group(1), T0) is not None
    store.close()
    assert main(["users", "remove", "zawadi", *where]) == 1
    assert "last admin" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["users", "add", "tumaini", *where]) == 1
    assert "--password-stdin" in capsys.readouterr().err
