"""Alerts on the web: /api/alerts (the JSON of `qadmin alerts --json`), the overview's banner of
open incidents until they resolve, and the web process's checks (a thread, one per backend per
process, stopped with the app), with a real webhook receiver (tests/webhook.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from qadmin.alert_rules import AlertConfig, AlertRule
from qadmin.cli import main as cli
from qadmin.job import WorkerInfo, utcnow
from qadmin.ops import Ops
from qadmin.web import create_app
from qadmin.web.alert_thread import stop_alert_thread
from tests.faces.web.support import Web
from tests.webhook import SECRET_PATH, Receiver, receiver  # noqa: F401 - the fixture


def rules(url: str, *, where: tuple[str, ...] = ("scheduler",), every: float = 30.0) -> AlertConfig:
    rule = AlertRule("mail-unserved", "no_worker", url, queue="mail", duration=60.0)
    return AlertConfig(rules=(rule,), evaluate_in=where, every=every)


def test_api_alerts_and_the_overview_banner(ops: Ops, receiver: Receiver, tmp_path: Path) -> None:
    config = rules(receiver.url)
    web = Web(create_app(ops, {"TESTING": True, "QADMIN_ALERTS": config, "QADMIN_STATS_TTL": 0})).login()
    assert "qadmin_alerts" not in web.app.extensions  # "web" is not where these rules are checked
    body = web.get("/api/alerts").get_json()
    assert [(r["name"], r["state"]) for r in body["rules"]] == [("mail-unserved", "firing")]
    assert body["incidents"] == [] and SECRET_PATH not in json.dumps(body)
    assert "alert-incidents" not in web.get("/").get_data(as_text=True)
    ops.alerts.check(config)
    page = web.get("/").get_data(as_text=True)
    assert 'data-alert="mail-unserved"' in page and "no worker serves queue mail" in page
    assert 'data-alert="mail-unserved"' in web.get("/partials/overview").get_data(as_text=True)
    [incident] = web.get("/api/alerts").get_json()["incidents"]
    assert incident["rule"] == "mail-unserved" and incident["firing_sent_at"]
    # the same JSON as the CLI's
    toml = tmp_path / "qadmin.toml"
    toml.write_text(
        f'[backends.x]\nurl = "{ops.backend.safe_url}"\n[alerts.mail-unserved]\nkind = "no_worker"\n'
        f'queue = "mail"\nfor = "1m"\nwebhook = "{receiver.url}"\n',
        encoding="utf-8",
    )
    result = CliRunner(env={"QADMIN_CONFIG": str(toml), "QADMIN_URL": None}).invoke(cli, ["alerts", "--json"])
    cli_body = json.loads(result.output)
    api_body = web.get("/api/alerts").get_json()
    assert cli_body["incidents"] == api_body["incidents"]
    assert [r["state"] for r in cli_body["rules"]] == [r["state"] for r in api_body["rules"]]
    now = utcnow()
    ops.backend.register_worker(
        WorkerInfo(name="host:h pid:5", host="h", pid=5, queues=["mail"], started_at=now, heartbeat_at=now)
    )
    ops.alerts.check(config)
    assert "alert-incidents" not in web.get("/").get_data(as_text=True)
    assert receiver.messages() == [("mail-unserved", "firing"), ("mail-unserved", "resolved")]


def test_the_web_process_checks_the_rules_in_one_thread_stopped_with_the_app(ops: Ops, receiver: Receiver) -> None:
    config = rules(receiver.url, where=("web",), every=0.2)
    first = create_app(ops, {"TESTING": True, "QADMIN_ALERTS": config})
    second = create_app(ops, {"TESTING": True, "QADMIN_ALERTS": config})  # same process, same backend
    try:
        deadline = time.monotonic() + 10
        while not receiver.messages() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.messages() == [("mail-unserved", "firing")]
        time.sleep(0.6)  # several periods: still the one message
        assert receiver.messages() == [("mail-unserved", "firing")]
        threads = [app.extensions["qadmin_alerts"] for app in (first, second)]
        assert sum(t._where is not None for t in threads) == 1  # one of them checks
    finally:
        stop_alert_thread(first)
        stop_alert_thread(second)
    assert not any(t.thread.is_alive() for t in threads)
