"""Edit on foreign tables: a delayed_job table made by the real gems (the YAML handler's
arguments refused and left byte for byte; queue, priority and run time changed, and the real
Delayed::Worker runs the job) and a DJJob table written by PHP (the serialized handler kept,
DJJob's own candidate query finds the job at its new queue and time)."""

from __future__ import annotations

from tests.interop._support import DelayedJobApp, cli, delayed_job  # noqa: F401 - the fixture
from tests.interop.test_interop_djjob import HOST, DJJobTable, djjob  # noqa: F401 - the fixture


def test_the_ruby_worker_runs_a_job_whose_run_time_queue_and_priority_were_edited(
    delayed_job: DelayedJobApp,  # noqa: F811
) -> None:
    app, url = delayed_job, delayed_job.url
    later = app.ids["later"]
    before = app.rows()

    refused = cli(url, "edit", str(later), "--args", '["other"]', expect=2)
    assert "delayed_job (YAML) job: its arguments cannot be edited" in refused
    assert app.rows() == before

    out = cli(url, "edit", str(later), "--at", "2000-01-01T00:00:00Z", "--queue", "mail", "--priority", "-1", "--json")
    assert out["changed"] and set(out["after"]) == {"queue", "priority", "run_at"}
    row = app.rows()[later]
    assert row["handler"] == before[later]["handler"]  # the Ruby object, untouched
    assert (row["queue"], row["priority"]) == ("mail", -1)

    app.work()
    assert later not in app.rows()  # due now: the real worker took it and it succeeded


def test_djjobs_candidate_query_finds_a_php_job_whose_run_time_and_queue_were_edited(
    djjob: DJJobTable,  # noqa: F811
) -> None:
    url, job_id = djjob.url, djjob.ids["retry_later"]  # waits two hours (a DJRetryException)
    worker = f"host::{HOST} pid::5252"
    before = djjob.rows()[job_id]
    refused = cli(url, "edit", str(job_id), "--kwargs", '{"name": "x"}', expect=2)
    assert "DJJob (PHP serialize) job: its arguments cannot be edited" in refused
    assert "no priority column" in cli(url, "edit", str(job_id), "--priority", "1", expect=2)
    assert job_id not in djjob.candidates("email", worker, mysql_now=True)

    out = cli(url, "edit", str(job_id), "--at", "2000-01-01T00:00:00.5Z", "--queue", "email", "--json")
    assert out["changed"] and set(out["after"]) == {"queue", "run_at"}
    row = djjob.rows()[job_id]
    assert row["handler_bytes"] == before["handler_bytes"] and row["queue"] == "email"
    assert "run_at" not in djjob.fractions()[job_id]  # DJJob's whole seconds
    assert job_id in djjob.candidates("email", worker, mysql_now=True)
