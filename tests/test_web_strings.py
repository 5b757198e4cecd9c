"""Every word the dashboard shows lives in ui/web/i18n/en.json (ready for Swahili and Dutch):
the page names its strings, the scripts ask for them by key, and no key is missing."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from appliance.api import messages

WEB = Path(__file__).resolve().parent.parent / "ui" / "web"


class _Page(HTMLParser):
    """Keys named by data-i18n*, and any text written straight into the page."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()
        self.loose_text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "title"):
            self._skip += 1
        for name, value in attrs:
            if name.startswith("data-i18n") and value:
                self.keys.add(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.loose_text.append(data.strip())


def test_page_and_scripts_use_only_catalogued_strings() -> None:
    catalogue = json.loads((WEB / "i18n" / "en.json").read_text(encoding="utf-8"))
    page = _Page()
    page.feed((WEB / "index.html").read_text(encoding="utf-8"))
    assert not page.loose_text, f"words written into index.html: {page.loose_text}"
    assert page.keys and page.keys <= set(catalogue), sorted(page.keys - set(catalogue))

    used: set[str] = set()
    literals: set[str] = set()
    prefixes: set[str] = set()
    for script in WEB.glob("*.js"):
        src = script.read_text(encoding="utf-8")
        literals |= set(re.findall(r"'([a-z_]+(?:\.[a-z_]+)+)'", src))
        used |= set(re.findall(r"\bt\('([a-z_.]+)'", src))
        prefixes |= set(re.findall(r"\bt\(`([a-z_.]+)\$\{", src))
        # NODES labels and similar: keys handed to t() through data
        used |= set(re.findall(r"label: '([a-z_.]+)'", src))
    assert used and used <= set(catalogue), sorted(used - set(catalogue))
    for prefix in prefixes:  # t(`jobs.state.${state}`): every state has its words
        assert any(k.startswith(prefix) for k in catalogue), prefix
    for state in (
        "pending",
        "admitted",
        "running",
        "suspended",
        "done",
        "failed",
        "cancelled",
        "rejected",
        "missed",
    ):
        assert f"jobs.state.{state}" in catalogue
    for mode in ("normal", "shed", "safe", "unknown"):
        assert f"mode.{mode}" in catalogue
    named = page.keys | used | literals
    dead = [k for k in catalogue if k not in named and not any(k.startswith(p) for p in prefixes)]
    assert not dead, f"strings nobody shows (translators would work for nothing): {dead}"
    placeholders = {k: set(re.findall(r"\{(\w+)\}", v)) for k, v in catalogue.items()}
    assert placeholders["jobs.energy_of"] == {"used", "asked"}


def test_server_messages_are_one_catalogue_and_fill_in() -> None:
    assert (
        messages.text("auth.rate_limited", seconds=42)
        == "too many failed logins: try again in 42 s"
    )
    assert messages.text("auth.required", lang="sw") == messages.text("auth.required")  # falls back
    for key, template in messages.EN.items():
        names = set(re.findall(r"\{(\w+)(?::[^}]*)?\}", template))
        values: dict[str, Any] = {n: 1 for n in names}
        filled = messages.text(key, **values)
        assert "{" not in filled, key
