"""Cancelling a running job, with real processes on every backend: a worker process runs a long
job, `qadmin cancel ID` from another process asks its worker to stop it, the job stops within
seconds (a job waiting in small steps, and one in a blocking sleep; inline and with --fork), what
it would have done afterwards never happens, it is listed as cancelled (not finished, not failed),
and the worker goes on with the next job."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import JobId, JobState, utcnow
from qadmin.ops import Ops
from qadmin.worker import Worker, WorkerOptions
from tests.worker.test_worker_processes import (  # noqa: F401 - procs is a fixture
    HOLD_RECORD,
    RECORD,
    SLEEP_RECORD,
    client,
    count,
    lines,
    procs,
    running,
    wait_for,
)

FAST = ("--heartbeat-interval", "0.5", "--sleep", "0.1")


def state_of(url: str, job_id: JobId) -> JobState:
    backend = open_backend(url)
    try:
        return backend.get(job_id, utcnow()).state
    finally:
        backend.close()


@pytest.mark.parametrize("fork", [False, True], ids=["inline", "fork"])
def test_a_cancelled_running_job_stops_and_the_worker_goes_on(any_url: str, tmp_path: Path, procs, fork: bool) -> None:
    out, gate = tmp_path / "ran.txt", tmp_path / "gate"
    with client(any_url) as c:
        stepping = c.enqueue(HOLD_RECORD, str(out), "stepping", str(gate), queue="q")
        blocking = c.enqueue(SLEEP_RECORD, str(out), "blocking", 120, queue="q")
        c.enqueue(RECORD, str(out), "next", queue="q")
    p = procs(any_url)
    p.start("worker", *FAST, *(("--fork",) if fork else ()))
    wait_for(running(gate), 30, "the worker to start the job", p.logs)

    asked = time.monotonic()
    done = p.run("cancel", str(stepping.id), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == 1
    wait_for(lambda: state_of(any_url, stepping.id) is JobState.CANCELLED, 10, "the job to be cancelled", p.logs)
    assert time.monotonic() - asked < 10
    gate.touch()  # had the job gone on, it would record now

    # the next job, in a blocking sleep, is interrupted as well
    wait_for(lambda: state_of(any_url, blocking.id) is JobState.LOCKED, 30, "the sleeping job to start", p.logs)
    asked = time.monotonic()
    done = p.run("cancel", str(blocking.id))
    assert done.returncode == 0, done.stderr
    wait_for(lambda: state_of(any_url, blocking.id) is JobState.CANCELLED, 10, "the sleep to be cancelled", p.logs)
    assert time.monotonic() - asked < 10

    wait_for(lambda: lines(out), 30, "the worker to run the next job", p.logs)
    time.sleep(1)
    assert lines(out) == ["next"], p.logs()
    assert count(any_url, "cancelled") == 2
    assert count(any_url, "finished") == 1
    assert count(any_url, "pending", "scheduled", "locked", "failed") == 0
    listed = p.run("jobs", "--state", "cancelled", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(j["state"] for j in json.loads(listed.stdout)) == ["cancelled", "cancelled"]
    assert "Traceback" not in p.logs()
    assert "CANCELLED" in p.logs()


async def sleep_async_then_record(path: str, token: str, seconds: float) -> None:
    """An `async def` job: awaits, then records (what a cancel must keep from happening)."""
    import asyncio

    Path(f"{path}.running").touch()
    await asyncio.sleep(seconds)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(token + "\n")


def test_a_cancelled_async_job_stops(sqlite_url: str, tmp_path: Path) -> None:
    """An `async def` job's event loop is interrupted as a blocking job is (in this process: the
    worker's loop on the main thread, the cancel from another thread)."""
    out = tmp_path / "ran.txt"
    with client(sqlite_url) as c:
        job = c.enqueue(f"{__name__}.sleep_async_then_record", str(out), "async", 120, queue="q")
    backend = open_backend(sqlite_url)
    options = WorkerOptions(burst=True, heartbeat_interval=0.2, rescue_interval=0, imports=(__name__,))
    worker = Worker(backend, options)
    asked: list[float] = []

    def cancel_when_running() -> None:
        wait_for(Path(f"{out}.running").exists, 30, "the async job to start")
        asked.append(time.monotonic())
        ops = Ops(open_backend(sqlite_url), face="test")
        try:
            ops.cancel(JobFilter(ids=(job.id,)))
        finally:
            ops.close()

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    try:
        worker.work()
    finally:
        canceller.join(30)
        backend.close()
    assert time.monotonic() - asked[0] < 10
    assert not out.exists()
    assert state_of(sqlite_url, job.id) is JobState.CANCELLED
