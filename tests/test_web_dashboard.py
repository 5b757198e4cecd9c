"""The dashboard in real Chromium (Debian's, driven by Playwright): log in, watch the battery
move as the simulated sun charges it, submit jobs and read the box's decision, see the forecast
chart. Screenshots land in test-artifacts/ (web-*.png)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from tests.api_demo import Box, running_box
from tests.system_packages import require

pytestmark = pytest.mark.browser
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE: ViewportSize = {"width": 412, "height": 915}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    # 09:00 in Kisumu at 120x: the tracker is in the sun and the battery charges visibly
    with running_box(
        tmp_path_factory.mktemp("web"), speed=120, start="2026-06-21T09:00+03:00"
    ) as b:
        yield b


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = require("chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


def login(page: Page, box: Box, password: str | None = None) -> None:
    assert box.admin is not None
    page.goto(box.url)
    page.wait_for_selector("#view-login:not([hidden])")
    page.fill("#login-form input[name=name]", box.admin[0])
    page.fill("#login-form input[name=password]", password or box.admin[1])
    page.click("#login-form button[type=submit]")


def test_wrong_password_is_refused_with_a_reason(
    box: Box, browser: Browser, artifacts_dir: Path
) -> None:
    page = browser.new_page(viewport=PHONE)
    login(page, box, password="not-the-password")
    # (the page's CSP forbids eval, so waits use Playwright's locators, never wait_for_function)
    expect(page.locator("#login-result")).to_contain_text("wrong user name or password")
    assert page.is_hidden("#view-app")
    page.screenshot(path=str(artifacts_dir / "web-login-refused.png"))
    page.close()


def test_dashboard_live_jobs_and_forecast(box: Box, browser: Browser, artifacts_dir: Path) -> None:
    page = browser.new_page(viewport=PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    login(page, box)
    page.wait_for_selector("#view-app:not([hidden])")
    assert "admin" in page.inner_text("#who")

    # the battery's SoC changes on the page as the simulator runs (pushed over SSE)
    soc = page.locator("#soc-value")
    expect(soc).to_have_attribute("data-soc", re.compile(r"^\d+\.\d$"))
    first = soc.get_attribute("data-soc")
    shown = soc.inner_text()
    page.screenshot(path=str(artifacts_dir / "web-now-phone.png"), full_page=False)
    second = first
    deadline = time.monotonic() + 20
    while second == first and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        second = soc.get_attribute("data-soc")
    assert first is not None and second is not None and float(second) != float(first)
    assert soc.inner_text() != shown and soc.inner_text().endswith("%")
    assert page.inner_text("#mode") in ("Normal", "Saving energy", "Safe mode")
    assert page.inner_text("#flow").count("W") >= 4  # live numbers in the power flow
    reserve_style = page.get_attribute("#soc-reserve", "style")
    assert reserve_style is not None and "left: 30%" in reserve_style

    # the forecast chart renders: the P10-P90 band and the P50 line, drawn at a real size
    page.wait_for_selector("#chart-forecast svg polygon[data-series='p10-p90']", timeout=20_000)
    box_px = page.locator("#chart-forecast svg").bounding_box()
    assert box_px is not None and box_px["width"] > 300 and box_px["height"] > 120
    assert page.locator("#chart-forecast svg polyline[data-series='p50']").count() >= 1
    page.locator("#forecast").screenshot(path=str(artifacts_dir / "web-forecast.png"))

    # a job the sun can carry is admitted, with the box's reason
    page.fill("#job-form input[name=name]", "school-report")
    page.fill("#job-form input[name=energy_wh]", "150")
    page.fill("#job-form input[name=deadline_h]", "20")
    page.click("#job-form button[type=submit]")
    expect(page.locator("#job-result")).to_have_attribute(
        "data-decision", "admitted", timeout=20_000
    )
    admitted = page.inner_text("#job-result")
    assert admitted.startswith("admitted: planned")
    # ... and one it cannot carry is rejected, saying what the box could give
    page.fill("#job-form input[name=name]", "climate-model")
    page.fill("#job-form input[name=energy_wh]", "60000")
    page.fill("#job-form input[name=deadline_h]", "2")
    page.click("#job-form button[type=submit]")
    expect(page.locator("#job-result")).to_have_attribute(
        "data-decision", "rejected", timeout=20_000
    )
    rejected = page.inner_text("#job-result")
    assert rejected.startswith("rejected: at P10 the box can give") and "60000 Wh" in rejected
    page.wait_for_selector("#job-list li[data-state='rejected']")
    rows = page.inner_text("#job-list")
    assert "school-report" in rows and "climate-model" in rows and "60000 Wh" in rows
    # the admitted job is promised: no best-effort badge (the API says so per job)
    promised = page.locator("#job-list li[data-best-effort='false']", has_text="school-report")
    expect(promised).to_have_count(1)
    assert promised.locator(".badge[data-best-effort]").count() == 0
    page.locator("#jobs").screenshot(path=str(artifacts_dir / "web-jobs.png"))

    # events arrive live (the admission events above) and the other sections are filled
    page.wait_for_selector("#event-list li[data-kind='job']")
    page.wait_for_selector("#chart-soc svg line[data-series='reserve']", state="attached")
    page.wait_for_selector("#chart-heat svg")
    assert page.locator("#queue dd").count() == 5
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(artifacts_dir / "web-dashboard-desktop.png"), full_page=True)
    assert not errors, errors
    page.close()
