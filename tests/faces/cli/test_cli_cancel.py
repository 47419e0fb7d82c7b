"""`qadmin cancel`: waiting jobs cancelled and listed as cancelled, a dry run that changes nothing,
a filter confirmed first, a job a foreign worker runs refused with exit 2 and the reason, and the
state filter of `qadmin jobs`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from qadmin.backends import open_backend
from qadmin.job import NewJob, utcnow
from tests.faces.cli.test_cli import Cli, cli, one_error_line  # noqa: F401 - the fixture


@pytest.fixture
def jobs(cli: Cli) -> dict[str, Any]:
    """A pending job, a scheduled one, one a delayed_job worker runs, and a failed one."""
    b = open_backend(cli.url)
    now = utcnow()
    pending = b.enqueue(NewJob("qadmin.examples.noop", [1], queue="mail"))
    later = b.enqueue(NewJob("qadmin.examples.noop", [2], queue="mail", run_at=now + timedelta(hours=1)))
    b.enqueue(NewJob("qadmin.examples.noop", [3], queue="ruby"))
    running = b.claim(["ruby"], "host:ruby-box pid:12", utcnow(), 3600, lambda j: True)
    b.enqueue(NewJob("qadmin.examples.noop", [4], queue="bad"))
    failing = b.claim(["bad"], "w", utcnow(), 3600, lambda j: True)
    assert running is not None and failing is not None
    b.fail(failing, "w", now, "ValueError: boom", None)
    b.close()
    return {"pending": str(pending.id), "later": str(later.id), "running": str(running.id), "failed": str(failing.id)}


def test_cancel_removes_waiting_jobs_and_lists_them_as_cancelled(cli: Cli, jobs: dict) -> None:
    before = cli.snapshot()
    dry = cli.json("cancel", jobs["pending"], jobs["later"], "--dry-run")
    assert dry["dry_run"] and dry["matched"] == 2 and dry["changed"] == 0
    assert cli.snapshot() == before
    result = cli("cancel", jobs["pending"], jobs["later"], jobs["failed"])
    assert result.exit_code == 0, result.output
    assert "Cancelled 2 of 2" in result.stdout and f"skipped {jobs['failed']}: is failed" in result.stdout
    listed = cli.json("jobs", "--state", "cancelled")
    assert sorted(str(j["id"]) for j in listed) == sorted([jobs["pending"], jobs["later"]])
    assert {j["state"] for j in listed} == {"cancelled"}
    shown = cli.json("show", jobs["pending"])
    assert shown["state"] == "cancelled" and shown["cancelled_by"]
    assert cli("jobs", "--state", "cancelled").exit_code == 0
    assert [e["verb"] for e in cli.json("audit")][:1] == ["cancel"]
    # history: not deleted, pruned with the finished records
    one_error_line(cli("delete", "--state", "cancelled", "--yes"), 2, "history")


def test_a_job_a_foreign_worker_runs_is_refused_with_the_reason(cli: Cli, jobs: dict) -> None:
    before = cli.snapshot()
    one_error_line(cli("cancel", jobs["running"]), 2, "cannot cancel", "cannot tell to stop")
    one_error_line(cli("cancel", jobs["running"], "--json"), 2, "cannot cancel", "delayed_job")
    assert cli.snapshot() == before
    assert cli.json("show", jobs["running"])["state"] == "locked"


def test_a_filter_asks_first_unless_yes(cli: Cli, jobs: dict) -> None:
    before = cli.snapshot()
    one_error_line(cli("cancel", "--queue", "mail"), 2, "without --yes")
    one_error_line(cli("cancel"), 2, "say which jobs to cancel")
    assert cli.snapshot() == before
    assert cli.json("cancel", "--queue", "mail", "--yes")["changed"] == 2
    assert len(cli.json("jobs", "--state", "cancelled")) == 2
