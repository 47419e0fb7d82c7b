"""Batched claims (`qadmin worker --prefetch N`): several jobs locked per claim, every guarantee
kept: nothing runs twice, a stopping worker gives back what it did not run, and a killed
worker's prefetched jobs are stale locks, recovered like any other.

Real worker processes on every backend (SQLite, PostgreSQL, Redis); nothing here asserts a
duration.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.worker import Worker, WorkerOptions
from qadmin.worker import loop as worker_module
from tests.worker.test_worker_processes import (
    HOLD_RECORD,
    RECORD,
    assert_clean,
    client,
    count,
    lines,
    procs,
    running,
    wait_for,
)

__all__ = ["procs"]  # the fixture, shared with the worker process tests


def test_prefetching_workers_run_each_job_exactly_once(any_url: str, tmp_path: Path, procs) -> None:
    two_prefetching_workers_run_each_job_once(any_url, tmp_path, procs)


def two_prefetching_workers_run_each_job_once(url: str, tmp_path: Path, procs, *options: str) -> None:
    """600 jobs on two queues, two workers claiming 10 at a time: every job runs, none twice."""
    out = tmp_path / "ran.txt"
    with client(url) as c:
        c.enqueue_many(NewJob(RECORD, [str(out), f"job-{i}"], queue=("a", "b")[i % 2]) for i in range(600))
    p = procs(url)
    for _ in range(2):
        p.start("worker", "--burst", "--sleep", "0.2", "--prefetch", "10", *options)
    p.wait_all(timeout=120)
    ran = Counter(lines(out))
    assert len(ran) == 600, f"{600 - len(ran)} jobs never ran\n{p.logs()}"
    assert [t for t, n in ran.items() if n > 1] == [], "jobs ran twice"
    assert all(proc.returncode == 0 for proc, _ in p.started), p.logs()
    assert_clean(p.logs())
    assert count(url, "pending", "scheduled", "locked", "failed") == 0


def _first_held_then_quick(url: str, out: Path, gate: Path) -> None:
    with client(url) as c:
        later = 1 if c.backend.supports_priority else 0  # Resque queues refuse priorities: FIFO orders them alike
        c.enqueue(HOLD_RECORD, str(out), "first", str(gate), queue="q", priority=0)
        for i in range(4):
            c.enqueue(RECORD, str(out), f"next-{i}", queue="q", priority=later)


def test_sigterm_gives_back_the_prefetched_jobs_it_did_not_run(any_url: str, tmp_path: Path, procs) -> None:
    out, gate = tmp_path / "ran.txt", tmp_path / "gate"
    _first_held_then_quick(any_url, out, gate)
    p = procs(any_url)
    worker = p.start("worker", "--sleep", "0.1", "--prefetch", "5")
    # running the first job, not merely holding it: a signal before the run gives all five back
    wait_for(running(gate), 30, "the worker to start the first job", p.logs)
    assert count(any_url, "locked") == 5, "the worker did not lock all five jobs"
    worker.send_signal(signal.SIGTERM)
    gate.touch()
    assert worker.wait(30) == 0, p.logs()
    assert lines(out) == ["first"], p.logs()
    assert count(any_url, "locked") == 0
    assert count(any_url, "pending") == 4
    assert count(any_url, "finished") == 1


def test_a_killed_prefetching_workers_jobs_are_recovered_by_unlock_stale(any_url: str, tmp_path: Path, procs) -> None:
    out, gate = tmp_path / "ran.txt", tmp_path / "gate"
    _first_held_then_quick(any_url, out, gate)
    p = procs(any_url)
    worker = p.start("worker", "--sleep", "0.1", "--prefetch", "5")
    wait_for(running(gate), 30, "the worker to start the first job", p.logs)
    assert count(any_url, "locked") == 5, "the worker did not lock all five jobs"
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    gate.touch()
    # held by a dead process: nothing else takes them until they are unlocked
    assert p.run("worker", "--burst", "--sleep", "0.1").returncode == 0
    assert lines(out) == []
    done = p.run("unlock", "--stale", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == 5
    assert p.run("worker", "--burst", "--sleep", "0.1", "--prefetch", "3").returncode == 0
    assert sorted(lines(out)) == ["first", "next-0", "next-1", "next-2", "next-3"]
    assert count(any_url, "pending", "locked", "failed") == 0


def test_a_prefetched_job_whose_lock_was_lost_is_not_run(sqlite_url: str, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "ran.txt"
    backend = open_backend(sqlite_url)
    backend.init()
    try:
        for i in range(3):
            backend.enqueue(NewJob(RECORD, [str(out), f"job-{i}"], queue="q"))
        monkeypatch.setattr(worker_module, "PREFETCH_RENEW_AFTER", 0.0)
        w = Worker(
            backend,
            WorkerOptions(queues=["q"], burst=True, prefetch=3, name="host:x pid:1", imports=["qadmin.examples"]),
        )
        assert w.run_once()  # claims three, runs the first
        assert lines(out) == ["job-0"]
        # meanwhile an operator unlocks the two waiting jobs and another worker takes them
        now = utcnow()
        locked = backend.find(JobFilter(states=frozenset({JobState.LOCKED})), now, limit=10).jobs
        assert len(locked) == 2
        backend.unlock([j.id for j in locked], now)
        other = backend.claim(["q"], "host:y pid:2", now, 3600, lambda job: True)
        assert other is not None
        w.run_once()
        w.run_once()
        # this worker ran only the job it still held, never the other worker's
        assert sorted(lines(out)) == sorted(["job-0", f"job-{2 if other.args[1] == 'job-1' else 1}"])
    finally:
        backend.close()


@pytest.mark.parametrize("prefetch", [1, 4])
def test_prefetch_keeps_claim_order(sqlite_url: str, tmp_path: Path, prefetch: int) -> None:
    out = tmp_path / "ran.txt"
    backend = open_backend(sqlite_url)
    backend.init()
    try:
        for i, priority in enumerate([5, 1, 3, 0, 2, 4]):
            backend.enqueue(NewJob(RECORD, [str(out), f"p{priority}"], queue="q", priority=priority))
        Worker(backend, WorkerOptions(queues=["q"], burst=True, prefetch=prefetch, imports=["qadmin.examples"])).work()
        assert lines(out) == ["p0", "p1", "p2", "p3", "p4", "p5"]
    finally:
        backend.close()
