"""Users of qadmin.toml in headless Chromium against `qadmin web`'s own server: a viewer logs in by
name, sees who they are and no action, and an operator's pause is audited under their name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qadmin.access import hash_password
from qadmin.ops import Ops
from tests.faces.web.support import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "open-Sesame-2026"


@pytest.fixture
def users_live(demo_sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    from qadmin.settings import resolve
    from qadmin.web.serve import build

    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    made = hash_password(PASSWORD, cost=(2**14, 8, 1))
    config = tmp_path / "qadmin.toml"
    config.write_text(
        f'[users.vera]\npassword_hash = "{made}"\nrole = "viewer"\n'
        f'[users.olga]\npassword_hash = "{made}"\nrole = "operator"\n',
        encoding="utf-8",
    )
    state = resolve(url=demo_sqlite_url, config_file=str(config), environ={})
    with LiveServer(build(state, host="127.0.0.1", port=0)) as server:
        server.demo_url = demo_sqlite_url  # type: ignore[attr-defined]
        yield server


def _log_in(page: Any, live: LiveServer, name: str) -> None:
    page.goto(live.url)
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")


def test_a_viewer_sees_who_they_are_and_no_action_and_an_operator_acts(page: Any, users_live: LiveServer) -> None:
    from playwright.sync_api import expect

    assert users_live.login_url is None  # no start-up token once there are users
    _log_in(page, users_live, "vera")
    assert page.url == users_live.url
    expect(page.locator(".topbar .user")).to_have_text("vera")
    expect(page.locator(".topbar .role")).to_have_text("viewer")
    expect(page.locator("table.queues button", has_text="pause")).to_have_count(0)
    page.goto(users_live.url + "jobs?state=failed")
    expect(page.locator("table.jobs-table tbody tr").first).to_be_visible()
    expect(page.locator("table.jobs-table tbody input[name=id]")).to_have_count(0)
    expect(page.locator("[data-new-job]")).to_have_count(0)
    page.click("button:has-text('log out')")
    expect(page.locator("input[name=name]")).to_be_visible()

    _log_in(page, users_live, "olga")
    expect(page.locator(".topbar .role")).to_have_text("operator")
    page.locator("table.queues tr", has_text="email").locator("button", has_text="pause").click()
    page.click("[data-confirm-button]")
    expect(page.locator(".flash-success")).to_contain_text("Paused queue email")
    ops = Ops.open(users_live.demo_url, face="test")  # type: ignore[attr-defined]
    try:
        entry = ops.audit(limit=1)[0]
        assert (entry.verb, entry.face, entry.actor) == ("pause", "web", "olga@127.0.0.1 (operator)")
    finally:
        ops.close()
