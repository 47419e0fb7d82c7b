"""Cancelling a running job, with real processes on every backend: a worker process runs a long
job, `qadmin cancel ID` from another process asks its worker to stop it, the job stops within
seconds (a job waiting in small steps, and one in a blocking sleep; inline and with --fork), what
it would have done afterwards never happens, it is listed as cancelled (not finished, not failed),
and the worker goes on with the next job."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.job import JobId, JobState, utcnow
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
