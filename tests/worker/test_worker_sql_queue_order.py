"""The order of `worker --queue` on SQL is Resque's (issue 13.8): a queue's ready jobs run before
the next queue's, and within a queue the lowest priority number, then the earliest run_at.
Real worker processes on SQLite and PostgreSQL, one at a time so the order is the claim order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from qadmin.job import NewJob, utcnow
from tests.worker.test_worker_processes import RECORD, assert_clean, client, lines

__all__ = ["procs"]
from tests.worker.test_worker_processes import procs  # noqa: E402  (the fixture)


@pytest.mark.parametrize("options", [[], ["--prefetch", "3"]], ids=["one-by-one", "prefetch"])
def test_earlier_queues_first_then_priority_then_run_at(
    sql_url: str, tmp_path: Path, procs, options: list[str]
) -> None:
    out = tmp_path / "ran.txt"
    early = utcnow() - timedelta(hours=1)
    with client(sql_url) as c:
        # `default` jobs are older and of a lower priority number: claim order alone (priority,
        # run_at) would run every one of them first
        for i in range(4):
            c.backend.enqueue(
                NewJob(
                    RECORD,
                    [str(out), f"default-{i}"],
                    queue="default",
                    priority=-5,
                    run_at=early + timedelta(seconds=i),
                )
            )
        c.backend.enqueue(NewJob(RECORD, [str(out), "critical-late"], queue="critical", priority=3))
        c.backend.enqueue(NewJob(RECORD, [str(out), "critical-urgent"], queue="critical", priority=1))
        c.backend.enqueue(NewJob(RECORD, [str(out), "critical-old"], queue="critical", priority=3, run_at=early))
        c.backend.enqueue(NewJob(RECORD, [str(out), "other"], queue="other", priority=-9, run_at=early))
    p = procs(sql_url)
    p.start("worker", "--burst", "--queue", "critical", "--queue", "default", *options)
    p.wait_all(timeout=120)
    assert_clean(p.logs())
    assert lines(out) == [
        "critical-urgent",
        "critical-old",
        "critical-late",
        "default-0",
        "default-1",
        "default-2",
        "default-3",
    ], p.logs()

    # `*` after named queues: the named ones first, then every queue in claim order
    out.unlink()
    with client(sql_url) as c:
        c.backend.enqueue(NewJob(RECORD, [str(out), "default-late"], queue="default", priority=5))
        c.backend.enqueue(NewJob(RECORD, [str(out), "urgent"], queue="urgent", priority=9))
    p.start("worker", "--burst", "--queue", "urgent", "--queue", "*", *options)
    p.wait_all(timeout=120)
    assert lines(out) == ["urgent", "other", "default-late"], p.logs()
