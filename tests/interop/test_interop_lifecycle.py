"""Run now and kill on a delayed_job table made by the real gems: a job run now is taken by the
real Delayed::Worker at once; a killed retry is failed for good, and that worker never runs it."""

from __future__ import annotations

from tests.interop._support import DelayedJobApp, cli, delayed_job  # noqa: F401 - the fixture


def test_the_ruby_worker_runs_a_job_run_now_and_never_a_killed_one(delayed_job: DelayedJobApp) -> None:  # noqa: F811
    app, url = delayed_job, delayed_job.url
    later, retry_later = app.ids["later"], app.ids["retry_later"]
    before = app.rows()

    # a scheduled job that never ran has no retry to kill
    assert "never ran" in cli(url, "kill", str(later), expect=2)
    assert app.rows() == before

    ran = cli(url, "run-now", str(later), "--json")
    killed = cli(url, "kill", str(retry_later), "--json")
    assert (ran["changed"], killed["changed"]) == (1, 1)
    rows = app.rows()
    assert rows[later]["handler"] == before[later]["handler"] and rows[later]["failed_at"] is None
    dead = rows[retry_later]
    assert dead["failed_at"] is not None and dead["attempts"] == before[retry_later]["attempts"]
    assert (dead["handler"], dead["last_error"]) == (before[retry_later]["handler"], before[retry_later]["last_error"])

    app.work()
    left = app.rows()
    assert later not in left  # the real worker took it at once and it succeeded
    assert left[retry_later] == dead  # failed for good: the real worker never touched it
