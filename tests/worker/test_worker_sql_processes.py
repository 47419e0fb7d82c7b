"""Worker processes on SQLite and PostgreSQL, claiming the next job as they complete one
(`complete_and_claim`), with and without `--prefetch`: each job runs exactly once, and a
SIGKILLed worker loses nothing (its locks are recovered by `unlock --stale`).

Real processes on real databases; nothing here asserts a duration.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from qadmin.job import NewJob
from tests.worker.test_worker_processes import RECORD, assert_clean, client, count, lines, procs, wait_for

__all__ = ["procs"]  # the fixture, shared with the worker process tests


@pytest.mark.parametrize(
    "workers,prefetch",
    [
        (2, 1),
        (2, 5),
        pytest.param(4, 1, marks=pytest.mark.slow),
        pytest.param(4, 10, marks=pytest.mark.slow),
    ],
)
def test_workers_run_each_job_exactly_once(sql_url: str, tmp_path: Path, procs, workers: int, prefetch: int) -> None:
    workers_run_each_job_once(sql_url, tmp_path, procs, [["--prefetch", str(prefetch)]] * workers, n=500)


def workers_run_each_job_once(url: str, tmp_path: Path, procs, workers: list[list[str]], n: int) -> None:
    """`n` jobs over two queues and three priorities, one `qadmin worker --burst` process per
    entry of `workers` (its extra options): every job runs exactly once, nothing is left."""
    out = tmp_path / "ran.txt"
    with client(url) as c:
        c.enqueue_many(
            NewJob(RECORD, [str(out), f"job-{i}"], queue=("a", "b")[i % 2], priority=i % 3) for i in range(n)
        )
    p = procs(url)
    for options in workers:
        p.start("worker", "--burst", "--sleep", "0.2", *options)
    p.wait_all(timeout=180)
    ran = Counter(lines(out))
    assert len(ran) == n, f"{n - len(ran)} jobs never ran\n{p.logs()}"
    assert [t for t, k in ran.items() if k > 1] == [], "jobs ran twice"
    assert all(proc.returncode == 0 for proc, _ in p.started), p.logs()
    assert_clean(p.logs())
    assert count(url, "pending", "scheduled", "locked", "failed") == 0
    assert count(url, "finished") == n


@pytest.mark.parametrize("prefetch", [1, 5])
def test_a_sigkilled_worker_loses_nothing(sql_url: str, tmp_path: Path, procs, prefetch: int) -> None:
    n = 400
    out = tmp_path / "ran.txt"
    with client(sql_url) as c:
        c.enqueue_many(NewJob(RECORD, [str(out), f"job-{i}"]) for i in range(n))
    p = procs(sql_url)
    victim = p.start("worker", "--sleep", "0.2", "--prefetch", str(prefetch))
    survivor = p.start("worker", "--burst", "--sleep", "0.2", "--prefetch", str(prefetch))
    wait_for(lambda: len(lines(out)) >= 50, 60, "the workers to run some jobs", p.logs)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert survivor.wait(120) == 0, p.logs()
    # the killed worker's locks are stale (its process is gone): unlocked, its jobs run again
    done = p.run("unlock", "--stale", "--json")
    assert done.returncode == 0, done.stderr
    assert p.run("worker", "--burst", "--sleep", "0.1").returncode == 0
    ran = Counter(lines(out))
    assert len(ran) == n, f"{n - len(ran)} jobs were lost\n{p.logs()}"
    # at most the job it was running when killed ran again (it never recorded its completion)
    assert sum(k - 1 for k in ran.values()) <= 1, [t for t, k in ran.items() if k > 1]
    assert json.loads(done.stdout)["changed"] <= prefetch + 1
    assert count(sql_url, "pending", "scheduled", "locked", "failed") == 0
