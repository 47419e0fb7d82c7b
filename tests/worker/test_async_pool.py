"""The async pool (`qadmin worker --pool async --concurrency N`) with real worker processes on
SQLite, PostgreSQL and Redis: `async def` jobs run at once on one process (their intervals
overlap, one pid), never more than N at once, each exactly once; the time limits and a cancel
reach them; a plain job still runs; SIGTERM lets the running jobs finish and loses none.

Jobs write `token pid start end` lines to a file. No test asserts a duration: waits have
generous limits and only bound a hang."""

from __future__ import annotations

import asyncio
import json
import signal
import textwrap
from pathlib import Path

from qadmin.backends import open_backend
from qadmin.job import JobId, JobState, NewJob, utcnow
from tests.worker.test_worker_processes import (  # noqa: F401 - procs is a fixture
    assert_clean,
    client,
    count,
    lines,
    procs,
    wait_for,
)

ASYNC_JOBS = textwrap.dedent("""
    import asyncio, os, time
    from pathlib import Path

    async def nap(path, token, seconds):
        Path(f"{path}.{token}.running").touch()
        start = time.time()
        await asyncio.sleep(seconds)
        with open(path, "a") as fh:
            fh.write(f"{token} {os.getpid()} {start} {time.time()}\\n")
        return {"token": token}

    class Nap:
        async def perform(self, path, token, seconds):
            await nap(path, token, seconds)

    def plain(path, token):
        with open(path, "a") as fh:
            fh.write(f"{token} {os.getpid()} sync\\n")
""")

#: a quick poll, and quick beats for the cancel's and SIGTERM's tests
FAST = ("--sleep", "0.1", "--heartbeat-interval", "0.5", "--import", "asyncjobs")


def jobs_module(tmp_path: Path) -> None:
    (tmp_path / "asyncjobs.py").write_text(ASYNC_JOBS)


def runs(path: Path) -> dict[str, tuple[str, float, float]]:
    """token -> (pid, start, end) of the async jobs that recorded, each once."""
    seen: dict[str, tuple[str, float, float]] = {}
    for line in lines(path):
        token, pid, *times = line.split()
        assert token not in seen, f"{token} ran twice"
        if times != ["sync"]:
            seen[token] = (pid, float(times[0]), float(times[1]))
    return seen


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    at_once = most = 0
    for _, step in edges:
        at_once += step
        most = max(most, at_once)
    return most


def state_of(url: str, job_id: JobId) -> JobState:
    backend = open_backend(url)
    try:
        return backend.get(job_id, utcnow()).state
    finally:
        backend.close()


def test_async_jobs_run_at_once_on_one_process_never_more_than_n(any_url: str, tmp_path: Path, procs) -> None:
    jobs_module(tmp_path)
    out = tmp_path / "ran.txt"
    with client(any_url) as c:
        c.enqueue_many(
            NewJob("asyncjobs.nap" if i % 2 else "asyncjobs.Nap", [str(out), f"a{i}", 1.0], queue="q") for i in range(9)
        )
        c.enqueue("asyncjobs.plain", str(out), "sync", queue="q")
    p = procs(any_url)
    worker = p.start("worker", "--pool", "async", "--concurrency", "3", "--burst", *FAST)
    p.wait_all(120)
    assert worker.returncode == 0, p.logs()
    ran = runs(out)
    assert sorted(ran) == sorted(f"a{i}" for i in range(9)), p.logs()
    assert {pid for pid, _, _ in ran.values()} == {str(worker.pid)}
    assert "sync" in {line.split()[0] for line in lines(out)}  # the plain job ran, once (runs() checks)
    intervals = [(start, end) for _, start, end in ran.values()]
    # overlapping intervals in one process: the jobs ran at once; and never more than --concurrency
    assert most_at_once(intervals) >= 2, intervals
    assert most_at_once(intervals) <= 3, intervals
    assert count(any_url, "finished") == 10
    assert count(any_url, "pending", "scheduled", "locked", "failed") == 0
    assert "async pool: up to 3 jobs at once" in p.logs()
    assert "asyncjobs.plain is not async" in p.logs()
    assert_clean(p.logs())


def test_an_async_job_over_its_time_limit_fails_as_timed_out(any_url: str, tmp_path: Path, procs) -> None:
    jobs_module(tmp_path)
    out = tmp_path / "ran.txt"
    with client(any_url) as c:
        own = c.enqueue("asyncjobs.nap", str(out), "own", 60, queue="q", timeout=1, max_attempts=1)
        worker_wide = c.enqueue("asyncjobs.Nap", str(out), "wide", 60, queue="q", max_attempts=1)
        quick = c.enqueue("asyncjobs.nap", str(out), "quick", 0.2, queue="q", timeout=30, max_attempts=1)
    p = procs(any_url)
    worker = p.start("worker", "--pool", "async", "-c", "4", "--burst", "--max-run-time", "2s", *FAST)
    p.wait_all(120)
    assert worker.returncode == 0, p.logs()
    backend = open_backend(any_url)
    try:
        now = utcnow()
        first, second = backend.get(own.id, now), backend.get(worker_wide.id, now)
        assert backend.get(quick.id, now).state is JobState.FINISHED
    finally:
        backend.close()
    assert first.state is JobState.FAILED and second.state is JobState.FAILED
    assert (first.last_error or "").startswith("JobTimeout: execution expired (timeout 1s)"), first.last_error
    assert (second.last_error or "").startswith("JobTimeout: execution expired (max run time 2s)"), second.last_error
    assert sorted(runs(out)) == ["quick"]  # the others never got past their await


def test_a_cancelled_running_async_job_stops_and_the_others_go_on(any_url: str, tmp_path: Path, procs) -> None:
    jobs_module(tmp_path)
    out = tmp_path / "ran.txt"
    with client(any_url) as c:
        doomed = c.enqueue("asyncjobs.nap", str(out), "doomed", 120, queue="q")
        other = c.enqueue("asyncjobs.nap", str(out), "other", 4, queue="q")
    p = procs(any_url)
    p.start("worker", "--pool", "async", "-c", "2", *FAST)
    for token in ("doomed", "other"):
        wait_for(Path(f"{out}.{token}.running").exists, 60, f"the {token} job to start", p.logs)

    done = p.run("cancel", str(doomed.id), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == 1
    wait_for(lambda: state_of(any_url, doomed.id) is JobState.CANCELLED, 30, "the job to be cancelled", p.logs)
    wait_for(lambda: state_of(any_url, other.id) is JobState.FINISHED, 60, "the other job to finish", p.logs)
    assert sorted(runs(out)) == ["other"], p.logs()  # the cancelled one never got past its await
    assert count(any_url, "cancelled") == 1
    assert count(any_url, "pending", "scheduled", "locked", "failed") == 0
    assert "CANCELLED" in p.logs()
    assert_clean(p.logs())


def test_sigterm_lets_the_running_async_jobs_finish_and_loses_none(any_url: str, tmp_path: Path, procs) -> None:
    jobs_module(tmp_path)
    out = tmp_path / "ran.txt"
    with client(any_url) as c:
        jobs = {f"j{i}": c.enqueue("asyncjobs.nap", str(out), f"j{i}", 2, queue="q") for i in range(6)}

    def started() -> list[str]:
        return sorted(token for token in jobs if Path(f"{out}.{token}.running").exists())

    p = procs(any_url)
    worker = p.start("worker", "--pool", "async", "-c", "3", *FAST)
    wait_for(lambda: len(started()) == 3, 60, "three jobs to start", p.logs)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, p.logs()
    ran = started()
    assert len(ran) == 3, p.logs()  # none claimed after the signal
    assert sorted(runs(out)) == ran, p.logs()
    backend = open_backend(any_url)
    try:
        now = utcnow()
        states = {token: backend.get(job.id, now).state for token, job in jobs.items()}
        assert states == {t: JobState.FINISHED if t in ran else JobState.PENDING for t in jobs}
        assert backend.workers(now) == []
    finally:
        backend.close()
    assert "stopping after the running jobs (3)" in p.logs()
    assert_clean(p.logs())


# --- in this process: the outcomes of async jobs are the worker loop's ------------------------
HOOKS: list[str] = []


async def returns(value: object) -> object:
    import asyncio

    await asyncio.sleep(0)
    return value


async def raises(message: str) -> None:
    import asyncio

    await asyncio.sleep(0)
    raise ValueError(message)


async def hands_off(seconds: float) -> None:
    from qadmin.waiting import Waiting

    raise Waiting(timeout=seconds)


def looks_sync() -> object:
    """Not `async def`, but returns a coroutine: the async pool cannot await it from a plain job."""
    return returns(1)


class Hooked:
    async def before(self, job: object) -> None:
        HOOKS.append("before")

    async def perform(self) -> None:
        HOOKS.append("perform")

    def success(self, job: object) -> None:
        HOOKS.append("success")

    async def after(self, job: object) -> None:
        HOOKS.append("after")


def test_async_outcomes_are_recorded_as_the_worker_loop_records_them(any_url: str) -> None:
    """A result kept, a failure retried with backoff, `qadmin.Waiting` parked, async hooks awaited,
    and a plain job that returns a coroutine failed with a message saying what to do."""
    from qadmin.backends import BackendOptions
    from qadmin.client import Client
    from qadmin.worker import AsyncWorker, WorkerOptions

    backend = open_backend(any_url, BackendOptions())
    backend.init()
    try:
        c = Client(backend)
        done = c.enqueue(f"{__name__}.returns", {"n": 1}, queue="q")
        failed = c.enqueue(f"{__name__}.raises", "boom", queue="q", max_attempts=3)
        waiting = c.enqueue(f"{__name__}.hands_off", 600, queue="q")
        hooked = c.enqueue(f"{__name__}.Hooked", queue="q")
        undeclared = c.enqueue(f"{__name__}.looks_sync", queue="q", max_attempts=1)
        HOOKS.clear()
        options = WorkerOptions(burst=True, sleep=0.1, rescue_interval=0, imports=(__name__,))
        worker = AsyncWorker(backend, options, concurrency=4)
        assert worker.work() == 0
        now = utcnow()
        finished = backend.get(done.id, now)
        assert finished.state is JobState.FINISHED and finished.kept_result == {"result": {"n": 1}}
        retried = backend.get(failed.id, now)
        assert retried.state is JobState.SCHEDULED and retried.attempts == 1
        assert (retried.last_error or "").startswith("ValueError: boom")
        assert backend.get(waiting.id, now).state is JobState.WAITING
        assert backend.get(hooked.id, now).state is JobState.FINISHED
        assert HOOKS == ["before", "perform", "success", "after"]
        refused = backend.get(undeclared.id, now)
        assert refused.state is JobState.FAILED
        assert (refused.last_error or "").startswith("TypeError: it returned an awaitable but is not `async def`")
        assert (worker.processed, worker.failed) == (4, 2)
    finally:
        backend.close()


def test_count_bounds_the_claims_of_the_async_pool(sqlite_url: str) -> None:
    """--count N runs N jobs even with more free slots; the rest stay pending, unlocked."""
    from qadmin.client import Client
    from qadmin.worker import AsyncWorker, WorkerOptions

    backend = open_backend(sqlite_url)
    backend.init()
    try:
        c = Client(backend)
        ids = [c.enqueue(f"{__name__}.returns", i, queue="q").id for i in range(5)]
        options = WorkerOptions(count=2, sleep=0.1, rescue_interval=0, imports=(__name__,))
        worker = AsyncWorker(backend, options, concurrency=4)
        assert worker.work() == 0
        now = utcnow()
        states = [backend.get(i, now).state for i in ids]
        assert states == [JobState.FINISHED] * 2 + [JobState.PENDING] * 3
    finally:
        backend.close()


def test_max_jobs_per_child_recycles_the_async_pools_process(sqlite_url: str, tmp_path: Path, procs) -> None:
    """Under the supervisor: never more jobs than --max-jobs-per-child in one process, even with
    more free slots; the recycled process is replaced and the queue drained."""
    from collections import Counter

    jobs_module(tmp_path)
    out = tmp_path / "ran.txt"
    with client(sqlite_url) as c:
        c.enqueue_many(NewJob("asyncjobs.nap", [str(out), f"r{i}", 0.1], queue="q") for i in range(7))
    p = procs(sqlite_url)
    run = p.run("worker", "--pool", "async", "-c", "5", "--burst", "--max-jobs-per-child", "3", *FAST, timeout=120)
    assert run.returncode == 0, run.stderr
    ran = runs(out)
    assert sorted(ran) == sorted(f"r{i}" for i in range(7))
    assert sorted(Counter(pid for pid, _, _ in ran.values()).values()) == [1, 3, 3], run.stderr
    assert "recycling after 3 jobs" in run.stderr


def test_the_async_pool_leaves_a_paused_queue_and_says_so(any_url: str, caplog) -> None:
    import logging

    from qadmin.client import Client
    from qadmin.worker import AsyncWorker, WorkerOptions

    backend = open_backend(any_url)
    backend.init()
    try:
        c = Client(backend)
        held = c.enqueue(f"{__name__}.returns", 1, queue="held")
        served = c.enqueue(f"{__name__}.returns", 2, queue="open")
        backend.pause("held", utcnow())
        options = WorkerOptions(burst=True, sleep=0.1, rescue_interval=0, imports=(__name__,))
        with caplog.at_level(logging.INFO, logger="qadmin.worker"):
            assert AsyncWorker(backend, options, concurrency=3).work() == 0
        now = utcnow()
        assert backend.get(held.id, now).state is JobState.PENDING
        assert backend.get(served.id, now).state is JobState.FINISHED
        assert "paused queue not served until resumed (`qadmin resume QUEUE`): held" in caplog.text
    finally:
        backend.close()


STARTS: list[str] = []


async def counts_its_starts(token: str, seconds: float) -> None:
    STARTS.append(token)
    await asyncio.sleep(seconds)


def test_a_running_async_job_is_never_claimed_again_by_its_own_pool(any_url: str) -> None:
    """delayed_job's claim hands a worker back the jobs it has locked itself; the pool claims again
    (for its free slots) while a job of its runs, so it must skip its running jobs or start them twice."""
    from qadmin.client import Client
    from qadmin.worker import AsyncWorker, WorkerOptions

    STARTS.clear()
    backend = open_backend(any_url)
    backend.init()
    try:
        job = Client(backend).enqueue(f"{__name__}.counts_its_starts", "once", 0.6)
        # claims every 0.05 s while the one job, holding one of three slots, runs for 0.6 s
        options = WorkerOptions(burst=True, sleep=0.05, rescue_interval=0, imports=(__name__,))
        assert AsyncWorker(backend, options, concurrency=3).work() == 0
        assert STARTS == ["once"]
        assert backend.get(job.id, utcnow()).state is JobState.FINISHED
    finally:
        backend.close()
