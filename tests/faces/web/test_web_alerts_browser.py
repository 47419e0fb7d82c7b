"""The alert banner end to end, in headless Chromium at phone width (390 px) against `qadmin web`'s
own server, on SQLite and on Redis: the web process's own checks ([alerts] evaluate_in = web) open
the incident, the overview's live refresh shows it without a reload, wrapped inside its box, and
takes it away when a live worker serves the queue again; the test's webhook receiver gets one
firing and one resolved message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qadmin.job import WorkerInfo, utcnow
from qadmin.ops import Ops
from qadmin.settings import resolve
from qadmin.web.serve import build
from tests.faces.web.support import LiveServer
from tests.webhook import Receiver, receiver  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def alert_server(
    demo_url: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:  # noqa: F811
    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    monkeypatch.delenv("QADMIN_CONFIG", raising=False)
    config = tmp_path / "qadmin.toml"
    config.write_text(
        f"""
[web]
refresh = "1s"

[alerts]
evaluate_in = ["web"]
every = "1s"
webhook = "{receiver.url}"

[alerts.an-unserved-queue-with-a-rather-long-name-that-must-wrap-on-a-phone]
kind = "no_worker"
queue = "mail"
for = "1m"
""",
        encoding="utf-8",
    )
    state = resolve(url=demo_url, config_file=str(config), environ={})
    with LiveServer(build(state, host="127.0.0.1", port=0)) as server:
        server.demo_url = demo_url  # type: ignore[attr-defined]
        yield server


def test_the_banner_shows_an_open_incident_until_it_resolves(browser, alert_server, receiver: Receiver) -> None:  # noqa: F811
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(15_000)
    ops = Ops.open(alert_server.demo_url, face="test")  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(alert_server.login_url)
        banner = page.locator(".alert-incidents .flash")
        expect(banner).to_have_count(1)  # opened by the server's own check, shown by the live refresh
        expect(banner).to_contain_text("no worker serves queue mail")
        # the banner wraps inside its box (the page's own width at 390 px is the layout's affair)
        assert banner.evaluate("e => e.scrollWidth <= e.clientWidth")
        now = utcnow()
        ops.backend.register_worker(
            WorkerInfo(name="host:h pid:9", host="h", pid=9, queues=["mail"], started_at=now, heartbeat_at=now)
        )
        expect(banner).to_have_count(0)
        rule = "an-unserved-queue-with-a-rather-long-name-that-must-wrap-on-a-phone"
        assert receiver.messages() == [(rule, "firing"), (rule, "resolved")]
    finally:
        ops.close()
        context.close()
