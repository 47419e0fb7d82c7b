"""Waiting jobs with real processes on every backend: a worker process runs a job that hands its
work to an external service (`qadmin.Waiting`); `qadmin complete ID` from another process
finishes it, `qadmin fail ID` fails it, and a short timeout fails it by itself (a live worker's
expiry), inline and with --fork."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qadmin.job import JobState
from tests.worker.test_worker_cancel import FAST, state_of
from tests.worker.test_worker_processes import (  # noqa: F401 - procs is a fixture
    client,
    count,
    lines,
    procs,
    wait_for,
)

WAIT = "qadmin.examples.record_then_wait"


@pytest.mark.parametrize("fork", [False, True], ids=["inline", "fork"])
def test_a_waiting_job_is_completed_from_another_process(any_url: str, tmp_path: Path, procs, fork: bool) -> None:
    out = tmp_path / "ran.txt"
    with client(any_url) as c:
        job = c.enqueue(WAIT, str(out), "handed", 3600, queue="q")
    p = procs(any_url)
    p.start("worker", *FAST, *(("--fork",) if fork else ()))
    wait_for(lambda: state_of(any_url, job.id) is JobState.WAITING, 30, "the job to wait", p.logs)
    assert lines(out) == ["handed"]
    listed = p.run("jobs", "--state", "waiting", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [str(j["id"]) for j in json.loads(listed.stdout)] == [str(job.id)]

    done = p.run("complete", str(job.id), "--result", '{"ok": 1}', "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] is True
    assert count(any_url, "finished") == 1
    again = p.run("complete", str(job.id))
    assert again.returncode == 2 and "cannot complete" in again.stderr
    assert lines(out) == ["handed"]  # never run again
    assert "Traceback" not in p.logs()


def test_a_waiting_job_failed_by_report_or_by_timeout(any_url: str, tmp_path: Path, procs) -> None:
    out = tmp_path / "ran.txt"
    with client(any_url) as c:
        reported = c.enqueue(WAIT, str(out), "reported", 3600, queue="q")
        late = c.enqueue(WAIT, str(out), "late", 1, queue="q")
    p = procs(any_url)
    p.start("worker", *FAST, "--rescue-interval", "0.5")
    wait_for(lambda: state_of(any_url, reported.id) is JobState.WAITING, 30, "the job to wait", p.logs)
    done = p.run("fail", str(reported.id), "--error", "RemoteError: the service said no")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: state_of(any_url, reported.id) is JobState.SCHEDULED, 10, "the retry", p.logs)
    # the other one's service never answers: past its second, a live worker fails it
    wait_for(lambda: state_of(any_url, late.id) is JobState.SCHEDULED, 30, "the timeout", p.logs)
    assert count(any_url, "finished") == 0
    assert "Traceback" not in p.logs()
