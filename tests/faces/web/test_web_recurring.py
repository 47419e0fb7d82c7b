"""The Recurring page and /api/recurring: each schedule with its next and last run; enable, disable
and run now change the backend, are audited with face "web", and need the CSRF token; an unknown
name is a 404. On real backends (SQLite, PostgreSQL and Redis)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from qadmin.backends import open_backend
from qadmin.cli import main as cli
from qadmin.ops import Ops
from qadmin.recurring import SOURCE_CONFIG, Schedule
from tests.faces.web.support import Web, make_web

NIGHTLY = Schedule(
    "nightly-report",
    "reports.Nightly",
    args=[7],
    queue="reports",
    cron="0 3 * * *",
    timezone="Europe/Paris",
    description="the night's numbers",
    source=SOURCE_CONFIG,
)
HEARTBEAT = Schedule("heartbeat", "ops.Ping", every=30.0)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def rec_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def rec_ops(rec_url: str) -> Iterator[Ops]:
    """Two schedules, on each backend."""
    url = rec_url
    backend = open_backend(url)
    backend.init()
    backend.close()
    ops = Ops.open(url, face="test")
    ops.recurring.save(NIGHTLY)
    ops.recurring.save(HEARTBEAT)
    yield ops
    ops.close()


@pytest.fixture
def rec_web(rec_ops: Ops) -> Web:
    return make_web(rec_ops).login()


def _row(html: str, name: str) -> str:
    found = re.search(rf'<tr[^>]*data-schedule="{re.escape(name)}".*?</tr>', html, re.S)
    assert found, f"no row for {name}"
    return found.group(0)


def _last_audit(ops: Ops) -> Any:
    return ops.audit(limit=1)[0]


# --- the page ---------------------------------------------------------------------------------------
def test_the_page_lists_each_schedule_with_its_next_and_last_run(rec_web: Web, rec_ops: Ops) -> None:
    html = rec_web.html("/")
    assert 'href="/recurring"' in html  # in the nav
    ran = rec_ops.recurring.run_now("heartbeat").job
    assert ran is not None
    html = rec_web.html("/recurring")
    nightly = _row(html, "nightly-report")
    for text in ("0 3 * * * (Europe/Paris)", "reports.Nightly", "reports", "the night&#39;s numbers", "qadmin.toml"):
        assert text in nightly, text
    expected = NIGHTLY.next_tick(rec_ops.clock()).strftime("%Y-%m-%d %H:%M")
    assert expected in nightly and "never" in nightly and "chip-enabled" in nightly
    heartbeat = _row(html, "heartbeat")
    assert "every 30s" in heartbeat and "api" in heartbeat and "never" not in heartbeat
    assert f'href="/jobs/{ran.id}"' in heartbeat  # the last job, linked
    confirmation = rec_web.post("/recurring/heartbeat/run-now").get_data(as_text=True)
    for page in (html, confirmation):  # the Content-Security-Policy allows neither
        assert " style=" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page)


def test_disable_then_enable_through_the_confirmation(rec_web: Web, rec_ops: Ops) -> None:
    asked = rec_web.post("/recurring/nightly-report/disable")
    assert asked.status_code == 200 and "data-recurring-change" in asked.get_data(as_text=True)
    assert rec_ops.recurring.get("nightly-report").schedule.enabled  # asking changed nothing
    done = rec_web.post("/recurring/nightly-report/disable", {"confirmed": "1"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/recurring")
    assert not rec_ops.recurring.get("nightly-report").schedule.enabled
    entry = _last_audit(rec_ops)
    assert (entry.verb, entry.face, entry.selection["schedule"], entry.changed) == (
        "recurring-disable",
        "web",
        "nightly-report",
        1,
    )
    row = _row(rec_web.html("/recurring"), "nightly-report")
    assert "chip-disabled" in row and "(disabled)" in row and "Enable…" in row
    again = rec_web.post("/recurring/nightly-report/disable").get_data(as_text=True)
    assert "already disabled: nothing to do" in again and "data-confirm-button" not in again
    rec_web.post("/recurring/nightly-report/enable", {"confirmed": "1"})
    assert rec_ops.recurring.get("nightly-report").schedule.enabled
    assert _last_audit(rec_ops).verb == "recurring-enable"


def test_run_now_enqueues_one_job_and_links_it(rec_web: Web, rec_ops: Ops) -> None:
    before = rec_ops.recurring.get("nightly-report")
    asked = rec_web.post("/recurring/nightly-report/run-now").get_data(as_text=True)
    assert "reports.Nightly" in asked and "reports" in asked and "[7]" in asked
    assert rec_ops.recurring.get("nightly-report").last_run_at == before.last_run_at  # a dry run
    done = rec_web.post("/recurring/nightly-report/run-now", {"confirmed": "1"})
    assert done.status_code == 303
    entry = _last_audit(rec_ops)
    assert (entry.verb, entry.face, entry.selection["schedule"]) == ("recurring-run-now", "web", "nightly-report")
    job_id = rec_ops.recurring.get("nightly-report").last_job_id
    assert job_id is not None and [a.verb for a in rec_ops.audit(limit=5, job_id=job_id)] == ["recurring-run-now"]
    job = rec_ops.show(job_id)
    assert (job.class_name, job.args, job.queue) == ("reports.Nightly", [7], "reports")
    page = rec_web.html("/recurring")
    assert re.search(rf'data-ran>.*href="/jobs/{job_id}"', page)
    assert "data-ran" not in rec_web.html("/recurring")  # said once
    assert rec_ops.recurring.get("nightly-report").last_run_at is not None


def test_changes_need_the_csrf_token(rec_web: Web, rec_ops: Ops) -> None:
    for verb in ("disable", "run-now"):
        refused = rec_web.client.post(f"/recurring/nightly-report/{verb}", data={"confirmed": "1"})
        assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    refused = rec_web.client.post("/api/recurring/nightly-report/disable", json={})
    assert refused.status_code == 400
    entry = rec_ops.recurring.get("nightly-report")
    assert entry.schedule.enabled and entry.last_run_at is None
    assert not [a for a in rec_ops.audit(limit=20) if a.verb.startswith("recurring-") and a.face == "web"]


def test_an_unknown_schedule_is_a_clear_404(rec_web: Web) -> None:
    for verb in ("enable", "run-now"):
        for data in ({}, {"confirmed": "1"}):
            answer = rec_web.post(f"/recurring/no-such/{verb}", data)
            assert answer.status_code == 404
            assert "no recurring schedule named &#39;no-such&#39;" in answer.get_data(as_text=True)


def test_read_only_shows_the_schedules_without_buttons(rec_ops: Ops) -> None:
    web = make_web(rec_ops, QADMIN_READ_ONLY=True).login()
    html = web.html("/recurring")
    assert "nightly-report" in html and "Run now" not in html and "/disable" not in html
    assert web.post("/recurring/nightly-report/disable", {"confirmed": "1"}).status_code == 403
    assert rec_ops.recurring.get("nightly-report").schedule.enabled


def test_reading_needs_a_login(rec_ops: Ops) -> None:
    web = make_web(rec_ops)
    assert web.get("/recurring").status_code in (302, 303, 401)
    assert web.get("/api/recurring").status_code == 401


# --- the JSON API -------------------------------------------------------------------------------------
def test_api_lists_the_same_json_as_to_dict(rec_web: Web, rec_ops: Ops) -> None:
    listed = rec_web.get("/api/recurring").get_json()
    assert {e["name"] for e in listed} == {"nightly-report", "heartbeat"}
    one = rec_web.get("/api/recurring/nightly-report").get_json()
    assert one == next(e for e in listed if e["name"] == "nightly-report")
    now = datetime.fromisoformat(one["next_run_at"]) - timedelta(seconds=1)
    assert one == rec_ops.recurring.get("nightly-report").to_dict(now.astimezone(UTC))
    assert (one["timing"], one["source"], one["last_run_at"]) == ("0 3 * * * (Europe/Paris)", "qadmin.toml", None)
    missing = rec_web.get("/api/recurring/no-such")
    assert missing.status_code == 404 and missing.get_json()["error"]["type"] == "ScheduleNotFound"


def test_api_enable_disable_with_dry_run(rec_web: Web, rec_ops: Ops) -> None:
    dry = rec_web.api_post("/api/recurring/heartbeat/disable", {"dry_run": True})
    assert dry.status_code == 200 and (dry.get_json()["dry_run"], dry.get_json()["verb"]) == (True, "disable")
    assert dry.get_json()["schedule"]["enabled"] is False
    assert rec_ops.recurring.get("heartbeat").schedule.enabled
    query_dry = rec_web.api_post("/api/recurring/heartbeat/disable?dry_run=1")
    assert query_dry.get_json()["dry_run"] is True and rec_ops.recurring.get("heartbeat").schedule.enabled
    done = rec_web.api_post("/api/recurring/heartbeat/disable").get_json()
    assert done["dry_run"] is False and done["schedule"]["enabled"] is False
    assert done["schedule"]["next_run_at"] is None
    assert not rec_ops.recurring.get("heartbeat").schedule.enabled
    assert (_last_audit(rec_ops).verb, _last_audit(rec_ops).face) == ("recurring-disable", "web")
    bearer = rec_web.client.post(
        "/api/recurring/heartbeat/enable", headers={"Authorization": f"Bearer {rec_web.token}"}
    )
    assert bearer.status_code == 200 and bearer.get_json()["schedule"]["enabled"] is True
    assert rec_ops.recurring.get("heartbeat").schedule.enabled


def test_api_run_now_with_dry_run(rec_web: Web, rec_ops: Ops) -> None:
    dry = rec_web.api_post("/api/recurring/nightly-report/run-now", {"dry_run": True}).get_json()
    assert dry["dry_run"] is True and dry["job"] is None
    assert dry["would_enqueue"] == {
        "class": "reports.Nightly",
        "args": [7],
        "kwargs": {},
        "queue": "reports",
        "priority": 0,
    }
    assert rec_ops.recurring.get("nightly-report").last_run_at is None
    done = rec_web.api_post("/api/recurring/nightly-report/run-now").get_json()
    assert done["dry_run"] is False and done["job"]["class"] == "reports.Nightly"
    assert done["schedule"]["last_run_at"] is not None
    assert str(rec_ops.show(done["job"]["id"]).id) == str(done["job"]["id"])
    assert _last_audit(rec_ops).verb == "recurring-run-now"
    assert rec_web.api_post("/api/recurring/no-such/run-now").status_code == 404
    assert rec_web.api_post("/api/recurring/heartbeat/run-now", {"dry_run": "maybe"}).status_code == 400


def test_openapi_describes_the_recurring_routes(rec_web: Web) -> None:
    spec = rec_web.get("/api/openapi.json").get_json()
    for path in ("/api/recurring", "/api/recurring/{name}"):
        assert "get" in spec["paths"][path]
    for verb in ("enable", "disable", "run-now"):
        assert "404" in spec["paths"][f"/api/recurring/{{name}}/{verb}"]["post"]["responses"]
    assert {"RecurringEntry", "RecurringChange", "RecurringRunNow"} <= set(spec["components"]["schemas"])


def test_api_json_is_the_cli_json(rec_web: Web, rec_url: str) -> None:
    def cli_json(*args: str) -> Any:
        result = CliRunner().invoke(cli, ["--url", rec_url, "recurring", *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def same(api: Any, cli_out: Any) -> None:
        # times are read at two moments: compare all but the next run, which moves with an `every` schedule
        strip = lambda e: {k: v for k, v in e.items() if k != "next_run_at"}  # noqa: E731
        assert [strip(e) for e in api] == [strip(e) for e in cli_out]

    same(rec_web.get("/api/recurring").get_json(), cli_json())
    api = rec_web.api_post("/api/recurring/nightly-report/disable", {"dry_run": True}).get_json()
    assert api.keys() == cli_json("disable", "nightly-report", "--dry-run").keys()
    api = rec_web.api_post("/api/recurring/nightly-report/run-now", {"dry_run": True}).get_json()
    assert api == cli_json("run-now", "nightly-report", "--dry-run")


@pytest.mark.redis
def test_a_schedule_ruby_defined_shows_and_is_operated_from_the_page(redis_url: str) -> None:
    """`Resque.set_schedule` as resque-scheduler's Ruby writes it (tests/backends/test_redis_recurring.py)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    config = {"class": "Reports::Weekly", "args": [1], "queue": "reports", "cron": "0 6 * * 1"}
    client.hset("resque:persistent_schedules", "weekly-ruby", json.dumps(config, separators=(",", ":")))
    client.sadd("resque:schedules_changed", "weekly-ruby")
    ops = Ops.open(redis_url, face="test")
    try:
        web = make_web(ops).login()
        row = _row(web.html("/recurring"), "weekly-ruby")
        assert "resque-scheduler" in row and "Reports::Weekly" in row and "0 6 * * 1" in row
        assert web.post("/recurring/weekly-ruby/disable", {"confirmed": "1"}).status_code == 303
        assert not ops.recurring.get("weekly-ruby").schedule.enabled
        assert web.post("/recurring/weekly-ruby/run-now", {"confirmed": "1"}).status_code == 303
        job = ops.show(ops.recurring.get("weekly-ruby").last_job_id)
        assert (job.class_name, job.args, job.queue) == ("Reports::Weekly", [1], "reports")
    finally:
        ops.close()
