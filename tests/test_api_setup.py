"""First run of a real box (`sunbox run`): no users, no default password; the first visitor of
the dashboard creates the admin with a password they choose, and then the setup is gone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from appliance.api.users import UserStore
from appliance.store import Store
from tests.api_demo import running_box


def test_first_visitor_creates_the_admin_then_setup_is_gone(tmp_path: Path) -> None:
    # `run` talks to real hardware: nothing answers on the device port, so the box sits in
    # safe mode; the dashboard must still come up and let the owner in.
    with running_box(tmp_path, command="run") as box:
        assert box.admin is None and not any("password" in line for line in box.lines)
        assert any("first run" in line and "create the admin" in line for line in box.lines)
        with httpx.Client(base_url=box.url, timeout=30) as c:
            assert c.get("/api/info").json()["setup_needed"] is True
            assert c.get("/api/state").status_code == 401
            assert (
                c.post("/api/login", json={"name": "admin", "password": "admin"}).status_code == 401
            )
            r = c.post("/api/setup", json={"name": "amina", "password": "aaaaaaaaaaaa"})
            assert r.status_code == 422 and "different characters" in r.json()["detail"]
            r = c.post("/api/setup", json={"name": "amina", "password": "amina-likes-sun"})
            assert r.status_code == 422 and "user name" in r.json()["detail"]
            r = c.post(
                "/api/setup",
                json={"name": "Amina", "password": "kisumu-2026-sunrise"},
                headers={"Origin": box.url},
            )
            assert r.status_code == 201, r.text
            assert r.json()["role"] == "admin" and r.json()["user"] == "amina"
            c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            state = c.get("/api/state").json()
            assert state["mode"] == "safe"  # no device answers: fail closed, and say why
            assert state["mode_reason"]
            assert c.get("/api/info").json()["setup_needed"] is False
        with httpx.Client(base_url=box.url, timeout=30) as other:
            r = other.post(
                "/api/setup", json={"name": "mallory", "password": "taking-over-the-box"}
            )
            assert r.status_code == 404 and "log in" in r.json()["detail"]
            r = other.post("/api/login", json={"name": "amina", "password": "kisumu-2026-sunrise"})
            assert r.status_code == 200
        # `sunbox users add` (another process, same store) while the box runs: the user can log
        # in at once. Removed by another writer of the store (here this test's own connection,
        # as `sunbox users remove` would), the user loses the session within the 5 s cache.
        cli = [sys.executable, "-m", "appliance.cli", "users"]
        where = ["--config", str(tmp_path / "sunbox.toml"), "--data-dir", str(box.data_dir)]
        out = subprocess.run(
            [*cli, "add", "juma", "--role", "operator", "--password-stdin", *where],
            input="keeper-of-the-box\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0 and "added juma (operator)" in out.stdout, out.stderr
        with httpx.Client(base_url=box.url, timeout=30) as juma:
            login = {"name": "juma", "password": "keeper-of-the-box"}
            assert juma.post("/api/login", json=login).status_code == 200
            assert juma.get("/api/me").json()["role"] == "operator"
            writer = Store.open_dir(box.data_dir)
            UserStore(writer).remove("juma")
            writer.close()
            deadline = time.monotonic() + 8
            while juma.get("/api/me").status_code != 401:
                assert time.monotonic() < deadline, "session outlived the removed user"
                time.sleep(0.25)
        rc = box.stop()
    assert rc == 0
    assert any("stopped after" in line for line in box.lines)
