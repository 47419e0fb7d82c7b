"""The worker's automatic prune: a worker that is idle prunes by the retention settings when the
backend's marker says it is its turn; a prune that fails is logged and the worker goes on."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.errors import BackendUnavailable
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.worker import Worker, WorkerOptions

NOOP = "qadmin.examples.noop"
FAILED = JobFilter(states=frozenset({JobState.FAILED}))


@pytest.fixture
def backend(any_url: str) -> Iterator[Backend]:
    b = open_backend(any_url, BackendOptions(prune_every=3600.0))
    b.init()
    yield b
    b.close()


def old_failure(b: Backend) -> None:
    """A failure of 40 days ago, in a queue the test's workers do not serve."""
    when = utcnow() - timedelta(days=40)
    b.enqueue(NewJob(NOOP, ["old"], queue="elsewhere", run_at=when))
    job = b.claim(["elsewhere"], "host:h pid:1", when, 3600.0, lambda j: True)
    assert job is not None
    b.fail(job, "host:h pid:1", when, "RuntimeError: boom", None)


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def working(b: Backend) -> tuple[Worker, threading.Thread]:
    w = Worker(b, WorkerOptions(queues=["q"], sleep=0.05, heartbeat_interval=3600, imports=["qadmin.examples"]))
    thread = threading.Thread(target=w.work, daemon=True)
    thread.start()
    return w, thread


def test_an_idle_worker_prunes_once_and_says_so_in_the_audit_log(backend: Backend) -> None:
    old_failure(backend)
    w, thread = working(backend)
    try:
        wait_for(lambda: backend.count(FAILED, utcnow()) == 0)
        wait_for(lambda: bool(backend.audit(limit=1)))  # written just after the removal
        entry = backend.audit(limit=1)[0]
        assert (entry.verb, entry.face, entry.actor, entry.selection["failed"]) == ("prune", "worker", w.name, 1)
        # the next prune is an hour away: a failure of long ago stays until then
        old_failure(backend)
        backend.enqueue(NewJob(NOOP, ["now"], queue="q"))
        wait_for(lambda: backend.count(JobFilter(states=frozenset({JobState.PENDING})), utcnow()) == 0)
        assert backend.count(FAILED, utcnow()) == 1
    finally:
        w.stop()
        thread.join(20)


def test_a_burst_worker_leaves_pruning_to_the_workers_that_stay(backend: Backend) -> None:
    old_failure(backend)
    w = Worker(backend, WorkerOptions(queues=["q"], burst=True, heartbeat_interval=3600))
    assert w.work() == 0
    assert backend.count(FAILED, utcnow()) == 1


def test_a_prune_that_fails_is_logged_and_the_worker_goes_on(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    w = Worker(backend, WorkerOptions(queues=["q"], sleep=0.05, heartbeat_interval=3600, imports=["qadmin.examples"]))

    def broken(now: object) -> None:
        raise BackendUnavailable("the database went away mid-prune")

    w.session.prune_if_due = broken  # type: ignore[method-assign]
    thread = threading.Thread(target=w.work, daemon=True)
    with caplog.at_level(logging.WARNING, logger="qadmin.worker"):
        thread.start()
        try:
            wait_for(lambda: "automatic prune failed" in caplog.text)
            backend.enqueue(NewJob(NOOP, ["after"], queue="q"))
            wait_for(lambda: w.processed == 1)
        finally:
            w.stop()
            thread.join(20)
    assert not thread.is_alive()


def test_two_worker_processes_prune_once(any_url: str, tmp_path: Path) -> None:
    """`qadmin worker --concurrency 2`: two processes look at once when they start; one prunes."""
    b = open_backend(any_url)
    b.init()
    try:
        old_failure(b)
        env = {k: v for k, v in os.environ.items() if not k.startswith("QADMIN_")}
        cmd = [sys.executable, "-m", "qadmin", "--url", any_url, "worker", "--queue", "q", "--concurrency", "2"]
        log = tmp_path / "workers.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [*cmd, "--sleep", "0.1", "--import", "qadmin.examples"],
                cwd=tmp_path,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_for(lambda: b.count(FAILED, utcnow()) == 0, 60)
            wait_for(lambda: any(e.verb == "prune" for e in b.audit()), 60)
            wait_for(lambda: len({w.pid for w in b.workers(utcnow())}) >= 2, 60)
            time.sleep(1.0)  # both have looked by now: the loser found the marker taken
            prunes = [e for e in b.audit() if e.verb == "prune"]
            assert len(prunes) == 1, log.read_text()
            assert prunes[0].face == "worker"
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    finally:
        b.close()
