"""`qadmin run-now` and `qadmin kill`: preview, dry run, confirmation of a filter's matches,
skipped jobs reported, ids none of which can be acted on refused with exit 2, the audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from qadmin.backends import open_backend
from qadmin.job import NewJob, utcnow
from tests.faces.cli.test_cli import Cli, cli, one_error_line  # noqa: F401 - the fixture


@pytest.fixture
def jobs(cli: Cli) -> dict[str, Any]:
    """A pending job, a scheduled one that never ran and a retry waiting out its backoff."""
    b = open_backend(cli.url)
    now = utcnow()
    pending = b.enqueue(NewJob("qadmin.examples.noop", [1], queue="mail"))
    later = b.enqueue(NewJob("qadmin.examples.noop", [2], queue="mail", run_at=now + timedelta(hours=1)))
    failing = b.enqueue(NewJob("qadmin.examples.ChargeCard", [3, 100], queue="billing"))
    claimed = b.claim(["billing"], "w", utcnow(), 3600, lambda j: True)
    assert claimed is not None
    b.fail(claimed, "w", now, "PaymentDeclined: card declined\n  File x", now + timedelta(hours=1))
    b.close()
    return {"pending": str(pending.id), "later": str(later.id), "waiting": str(failing.id)}


def state_of(cli: Cli, job_id: str) -> str:
    return str(cli.json("show", job_id)["state"])


def test_run_now_makes_scheduled_jobs_pending_and_reports_the_others(cli: Cli, jobs: dict) -> None:
    result = cli("run-now", jobs["later"], jobs["pending"])
    assert result.exit_code == 0, result.output
    assert "Run now 1 of 1" in result.stdout and f"skipped {jobs['pending']}: is pending" in result.stdout
    assert state_of(cli, jobs["later"]) == "pending"
    out = cli.json("run-now", jobs["waiting"])
    assert out["changed"] == 1 and state_of(cli, jobs["waiting"]) == "pending"
    assert cli.json("show", jobs["waiting"])["attempts"] == 1
    assert [e["verb"] for e in cli.json("audit")][:2] == ["run_now", "run_now"]


def test_kill_fails_a_waiting_retry_and_skips_a_job_that_never_ran(cli: Cli, jobs: dict) -> None:
    before = cli.snapshot()
    one_error_line(cli("kill", jobs["later"]), 2, "cannot kill", "never ran")
    one_error_line(cli("kill", jobs["pending"], "--json"), 2, "cannot kill", "is pending")
    assert cli.snapshot() == before
    dry = cli.json("kill", jobs["waiting"], jobs["later"], "--dry-run")
    assert dry["dry_run"] and dry["matched"] == 1 and dry["skipped"] == 1
    assert cli.snapshot() == before
    result = cli("kill", jobs["waiting"], jobs["later"])
    assert result.exit_code == 0 and "Killed 1 of 1" in result.stdout and "never ran" in result.stdout
    shown = cli.json("show", jobs["waiting"])
    assert shown["state"] == "failed" and shown["attempts"] == 1 and shown["last_error"].startswith("PaymentDeclined")


def test_a_filter_asks_first_unless_yes(cli: Cli, jobs: dict) -> None:
    before = cli.snapshot()
    one_error_line(cli("run-now", "--queue", "mail"), 2, "without --yes")
    one_error_line(cli("run-now"), 2, "say which jobs to run-now")
    assert cli.snapshot() == before
    assert cli.json("run-now", "--queue", "mail", "--dry-run")["matched"] == 1
    assert cli.json("kill", "--class", "qadmin.examples.ChargeCard", "--yes")["changed"] == 1
    assert cli.json("run-now", "--queue", "mail", "--yes")["changed"] == 1
    assert state_of(cli, jobs["later"]) == "pending"
