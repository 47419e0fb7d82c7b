"""Jobs of dead qadmin workers rescued by live workers, with real processes on every backend.

A worker SIGKILLed in the middle of a job stops beating; another worker, told that a worker
silent for 3 s is dead, gives the job back and runs it: no operator acts. Live workers' locks,
however old, and foreign holders' locks (delayed_job's format without a qadmin heartbeat, a
Resque worker) are left alone.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.backends.owners import HOSTNAME
from qadmin.errors import BackendUnavailable
from qadmin.job import JobId, JobState, NewJob, utcnow
from qadmin.ops import Ops
from qadmin.web import create_app
from qadmin.worker import Worker, WorkerOptions
from tests.faces.web.support import Web
from tests.worker.test_worker_processes import HOLD_RECORD, client, count, lines, procs, running, wait_for  # noqa: F401 - procs is a fixture

#: what the rescuing worker is told: a worker silent for 3 s is dead; look every half second
FAST = ("--heartbeat-interval", "0.5", "--worker-timeout", "3", "--rescue-interval", "0.5", "--sleep", "0.1")
FOREIGN = "host:x pid:1"


def metrics(url: str) -> str:
    backend = open_backend(url)
    try:
        web = Web(create_app(Ops(backend, face="web"), {"TESTING": True})).login()
        response = web.get("/metrics")
        assert response.status_code == 200
        return str(response.get_data(as_text=True))
    finally:
        backend.close()


def test_a_killed_workers_job_is_rescued_and_runs_once_more(any_url: str, tmp_path: Path, procs) -> None:
    out, gate = tmp_path / "ran.txt", tmp_path / "gate"
    with client(any_url) as c:
        job = c.enqueue(HOLD_RECORD, str(out), "once", str(gate), queue="q")
    p = procs(any_url)
    victim = p.start("worker", "--heartbeat-interval", "0.5")
    wait_for(running(gate), 30, "the worker to start the job", p.logs)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    gate.touch()  # when it runs again, the job finishes
    assert count(any_url, "locked") == 1  # held by a dead process: nothing took it yet
    p.start("worker", *FAST)
    wait_for(lambda: lines(out), 60, "the rescued job to run", p.logs)
    backend = open_backend(any_url)
    try:
        wait_for(lambda: backend.get(job.id, utcnow()).state is JobState.FINISHED, 30, "the job to finish", p.logs)
        time.sleep(2)  # a few more rescue rounds: nothing more to give back, nothing runs twice
        assert lines(out) == ["once"], p.logs()
        assert count(any_url, "pending", "scheduled", "locked", "failed") == 0
        rescues = [e for e in backend.audit(20) if e.verb == "rescue"]
        assert len(rescues) == 1, rescues
        entry = rescues[0]
        dead = f"host:{HOSTNAME} pid:{victim.pid}"
        assert entry.face == "worker" and entry.changed == 1
        assert entry.actor == f"host:{HOSTNAME} pid:{p.started[1][0].pid}"
        assert list(entry.selection["dead_workers"]) == [dead]
        assert backend.stats(utcnow(), 3600).rescued == 1
    finally:
        backend.close()
    assert f"rescued 1 job of dead worker {dead}" in p.logs()
    assert "Traceback" not in p.logs()
    assert 'qadmin_jobs_rescued_total{backend="default"} 1' in metrics(any_url)
    shown = p.run("stats", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["rescued"] == 1, shown.stderr


def test_live_and_foreign_locks_are_not_rescued(any_url: str, tmp_path: Path, procs) -> None:
    out, gate = tmp_path / "ran.txt", tmp_path / "gate"
    with client(any_url) as c:
        long = c.enqueue(HOLD_RECORD, str(out), "long", str(gate), queue="q")
    p = procs(any_url)
    live = p.start("worker", "--heartbeat-interval", "0.5", "--queue", "q")
    wait_for(running(gate), 30, "the live worker to start its job", p.logs)
    backend = open_backend(any_url)
    try:
        now = utcnow()
        # delayed_job's lock owner format, never registered as a qadmin worker, locked 10 min ago
        foreign = backend.enqueue(
            NewJob(HOLD_RECORD, [str(out), "foreign", str(gate)], queue="f", run_at=now - timedelta(minutes=20))
        )
        assert backend.claim(["f"], FOREIGN, now - timedelta(minutes=10), 4 * 3600, lambda j: True)
        resque = _plant_resque_worker(any_url, now) if backend.kind == "redis" else None
        p.start("worker", *FAST)
        # the live job runs on for well past the rescuer's worker timeout, through many rescues
        time.sleep(6)
        now = utcnow()
        assert backend.get(long.id, now).locked_by == f"host:{HOSTNAME} pid:{live.pid}"
        assert backend.get(foreign.id, now).locked_by == FOREIGN
        if resque is not None:
            key, value = resque
            assert _redis(any_url).get(key) == value
        assert [e for e in backend.audit(20) if e.verb == "rescue"] == []
        assert backend.stats(now, 3600).rescued == 0
        gate.touch()
        wait_for(lambda: backend.get(long.id, utcnow()).state is JobState.FINISHED, 30, "the live job", p.logs)
    finally:
        backend.close()
    assert lines(out) == ["long"], p.logs()
    assert "rescued" not in p.logs()


def _redis(url: str):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(url)


def _plant_resque_worker(url: str, now) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    """A Ruby Resque worker silent for an hour, holding a job: Resque's own prune is its rule."""
    r = _redis(url)
    rid = "web2:11:r"
    r.sadd("resque:workers", rid)
    r.hset("resque:workers:heartbeat", rid, (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    value = json.dumps({"queue": "r", "run_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "payload": {"class": "A"}})
    r.set(f"resque:worker:{rid}", value)
    return f"resque:worker:{rid}", value.encode()


@pytest.mark.parametrize("error", [BackendUnavailable("down"), RuntimeError("a bug")])
def test_a_failed_rescue_is_logged_and_the_worker_goes_on(
    sqlite_url: str, tmp_path: Path, error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "ran.txt"
    with client(sqlite_url) as c:
        c.enqueue("qadmin.examples.record", str(out), "ran", queue="q")
    backend = open_backend(sqlite_url)
    try:
        options = WorkerOptions(burst=True, sleep=0.05, heartbeat_interval=3600, imports=["qadmin.examples"])
        worker = Worker(backend, options)

        def rescue(now: datetime) -> dict[str, list[JobId]]:
            raise error

        worker.session.rescue = rescue  # type: ignore[method-assign]
        with caplog.at_level(logging.WARNING, logger="qadmin.worker"):
            assert worker.work() == 0
    finally:
        backend.close()
    assert lines(out) == ["ran"]
    assert "could not look for jobs of dead workers" in caplog.text
