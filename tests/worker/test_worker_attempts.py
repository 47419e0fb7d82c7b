"""Attempt history written by real worker processes on every backend: a failure with its traceback
and the worker's name (inline and --fork), and a SIGKILLed worker's run recorded as rescued by the
worker that gave the job back, followed by the run that completed it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.backends.owners import HOSTNAME
from qadmin.job import JobState, NewJob, utcnow
from qadmin.model import Outcome
from tests.worker.test_worker_processes import HOLD_RECORD, client, lines, procs, running, wait_for  # noqa: F401 - procs is a fixture
from tests.worker.test_worker_rescue import FAST


@pytest.mark.parametrize("fork", [False, True], ids=["inline", "fork"])
def test_a_failed_run_keeps_its_worker_time_and_traceback(any_url: str, procs, fork: bool) -> None:
    backend = open_backend(any_url)
    backend.init()
    try:
        job = backend.enqueue(NewJob("qadmin.examples.ChargeCard", [3, 100], queue="att", max_attempts=1))
        p = procs(any_url)
        done = p.run("worker", "--burst", "--queue", "att", *(["--fork"] if fork else []))
        assert done.returncode == 0, done.stderr
        (attempt,) = backend.attempts(job.id, utcnow())
    finally:
        backend.close()
    assert attempt.number == 1 and attempt.outcome is Outcome.FAILED
    assert attempt.worker is not None and attempt.worker.startswith(f"host:{HOSTNAME} pid:")
    assert attempt.error == "PaymentDeclined: card declined: expired card"
    assert attempt.backtrace is not None and "in perform" in attempt.backtrace
    assert attempt.started_at is not None and attempt.runtime is not None and 0 <= attempt.runtime < 30


def test_a_killed_workers_run_is_recorded_as_rescued(any_url: str, tmp_path: Path, procs) -> None:
    out, gate = tmp_path / "ran.txt", tmp_path / "gate"
    with client(any_url) as c:
        job = c.enqueue(HOLD_RECORD, str(out), "once", str(gate), queue="q")
    p = procs(any_url)
    victim = p.start("worker", "--heartbeat-interval", "0.5")
    wait_for(running(gate), 30, "the worker to start the job", p.logs)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    gate.touch()
    rescuer = p.start("worker", *FAST)
    wait_for(lambda: lines(out), 60, "the rescued job to run", p.logs)
    backend = open_backend(any_url)
    try:
        wait_for(lambda: backend.get(job.id, utcnow()).state is JobState.FINISHED, 30, "the job to finish", p.logs)
        attempts = backend.attempts(job.id, utcnow())
    finally:
        backend.close()
    dead, alive = f"host:{HOSTNAME} pid:{victim.pid}", f"host:{HOSTNAME} pid:{rescuer.pid}"
    assert [(a.number, a.outcome, a.worker) for a in attempts] == [
        (1, Outcome.RESCUED, dead),
        (2, Outcome.COMPLETED, alive),
    ], p.logs()
    assert attempts[0].error is not None and f"given back by {alive}" in attempts[0].error
