"""A job's own timeout, given at enqueue, beside the worker's --max-run-time: a real worker process
fails a job over its timeout as it fails one over the max run time, whichever of the two is longer,
and a job without one keeps the worker's limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qadmin.backends import Backend
from qadmin.client import Client
from qadmin.errors import UsageError
from qadmin.job import JobState, NewJob, utcnow
from qadmin.job_input import parse_timeout
from qadmin.worker import job_max_run_time

SLEEP = "qadmin.examples.sleep_then_record"


@pytest.mark.parametrize("fork", [False, True], ids=["in-process", "fork"])
def test_a_job_over_its_timeout_fails_while_the_worker_allows_an_hour(
    backend: Backend, any_url: str, tmp_path: Path, fork: bool
) -> None:
    out = tmp_path / "ran.txt"
    client = Client(backend)
    slow = client.enqueue(SLEEP, str(out), "slow", 5, queue="t", timeout=1, max_attempts=1)
    quick = client.enqueue(SLEEP, str(out), "quick", 0.2, queue="t", max_attempts=1)
    # longer than the worker's max run time: the job's own timeout wins either way
    roomy = client.enqueue(SLEEP, str(out), "roomy", 1.5, queue="t", timeout=30, max_attempts=1)
    assert slow.meta["timeout"] == 1.0
    cmd = [sys.executable, "-m", "qadmin", "--url", any_url, "worker", "--burst", "--sleep", "0.1"]
    cmd += ["--queue", "t", "--import", "qadmin.examples", "--max-run-time", "1h"] + (["--fork"] if fork else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    now = utcnow()
    failed = backend.get(slow.id, now)
    assert failed.state is JobState.FAILED
    assert (failed.last_error or "").startswith("JobTimeout: execution expired (timeout 1s)")
    assert backend.get(quick.id, now).state is not JobState.FAILED
    assert backend.get(roomy.id, now).state is not JobState.FAILED
    ran = out.read_text(encoding="utf-8").split() if out.exists() else []
    assert sorted(ran) == ["quick", "roomy"]  # the slow one never got to record


def test_a_timeout_longer_than_the_workers_max_run_time_is_kept_and_a_job_without_one_keeps_the_workers() -> None:
    from qadmin.job import Job

    def job(meta: dict[str, object]) -> Job:
        return Job(id=1, queue="q", class_name="c", args=[], kwargs={}, state=JobState.PENDING, meta=meta)

    assert job_max_run_time(job({"timeout": 7200}), 3600) == 7200
    assert job_max_run_time(job({"timeout": 2.5}), 3600) == 2.5
    assert job_max_run_time(job({}), 3600) == 3600
    assert job_max_run_time(job({"timeout": True}), 3600) == 3600  # no number: the worker's limit
    assert job_max_run_time(job({"max_run_time": 60}), 3600) == 60  # delayed_job's, shorter only


def test_timeouts_are_read_once_for_every_face() -> None:
    assert parse_timeout("30s") == 30 and parse_timeout("2h") == 7200 and parse_timeout(1.5) == 1.5
    for bad in ("0", "-3", "soon"):
        with pytest.raises(UsageError, match="timeout"):
            parse_timeout(bad)
    with pytest.raises(UsageError, match="timeout"):
        Client.build("c", timeout=0)
    assert Client.build("c", timeout=30).timeout == 30.0
    assert NewJob("c").timeout is None
