"""`WorkerSession.rescue`, on every backend: the jobs of qadmin workers whose heartbeat stopped
go back to their queues, once, counted and audited; live workers' and foreign holders' locks stay."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.filters import JobFilter
from qadmin.job import Job, JobId, JobState, NewJob, WorkerInfo, utcnow

NOOP = "qadmin.examples.noop"
HOUR = 3600.0
DEAD = "host:gone-host pid:78"
LIVE = "host:busy-host pid:79"
FOREIGN = "host:x pid:1"  # delayed_job's format, and no qadmin heartbeat
RESCUER = "host:rescuer pid:5"


@pytest.fixture
def backend(any_url: str) -> Iterator[Backend]:
    b = open_backend(any_url, BackendOptions(worker_timeout=60.0))
    b.init()
    try:
        yield b
    finally:
        b.close()


def register(b: Backend, name: str, beat: datetime) -> None:
    host, pid = name.split()[0].removeprefix("host:"), int(name.rsplit(":", 1)[1])
    b.register_worker(WorkerInfo(name=name, host=host, pid=pid, queues=["r"], started_at=beat, heartbeat_at=beat))


def hold(b: Backend, holder: str, at: datetime, word: str) -> Job:
    """A job enqueued and locked by `holder` at `at`."""
    job = b.enqueue(NewJob(NOOP, [word], queue="r", run_at=at - timedelta(minutes=1)))
    got = b.claim(["r"], holder, at, 4 * HOUR, lambda j: j.id == job.id)
    assert got is not None
    return got


def state(b: Backend, job_id: JobId, now: datetime) -> JobState:
    return b.get(job_id, now).state


def test_jobs_of_a_worker_whose_heartbeat_stopped_go_back_once_counted_and_audited(backend: Backend) -> None:
    now = utcnow()
    register(backend, DEAD, now - timedelta(minutes=10))
    register(backend, LIVE, now)
    dead = [hold(backend, DEAD, now - timedelta(minutes=10), w) for w in ("d1", "d2")]
    # a live worker's lock, however old: its heartbeats go on (a long job)
    live = hold(backend, LIVE, now - timedelta(hours=2), "live")
    # a holder without a qadmin heartbeat: left to its library's max run time
    foreign = hold(backend, FOREIGN, now - timedelta(hours=2), "foreign")

    session = backend.session(RESCUER)
    try:
        rescued = session.rescue(now)
        again = session.rescue(now)
    finally:
        session.close()

    assert {h: sorted(map(str, ids)) for h, ids in rescued.items()} == {DEAD: sorted(str(j.id) for j in dead)}
    assert again == {}
    for job in dead:
        assert state(backend, job.id, now) is JobState.PENDING
    assert state(backend, live.id, now) is JobState.LOCKED
    assert state(backend, foreign.id, now) is JobState.LOCKED
    assert backend.count(JobFilter(states=frozenset({JobState.PENDING})), now) == 2
    assert backend.stats(now, 4 * HOUR).rescued == 2
    entry = next(e for e in backend.audit(10) if e.verb == "rescue")
    assert (entry.actor, entry.face, entry.changed) == (RESCUER, "worker", 2)
    assert sorted(entry.selection["dead_workers"][DEAD]) == sorted(str(j.id) for j in dead)
    assert {str(e.id) for e in backend.audit(10, job_id=dead[0].id)} == {str(entry.id)}


def test_a_worker_that_beat_again_or_renewed_its_lock_keeps_its_jobs(backend: Backend) -> None:
    now = utcnow()
    register(backend, DEAD, now - timedelta(minutes=10))
    old = hold(backend, DEAD, now - timedelta(minutes=10), "old")
    renewed = hold(backend, DEAD, now - timedelta(minutes=10), "renewed")
    holder = backend.session(DEAD)
    assert holder.refresh(renewed, now)  # the lock renewed: the holder is alive after all
    holder.close()
    session = backend.session(RESCUER)
    try:
        assert set(map(str, session.rescue(now)[DEAD])) == {str(old.id)}
        assert state(backend, renewed.id, now) is JobState.LOCKED
        # and once it beats again, nothing of its goes back
        again = hold(backend, DEAD, now - timedelta(minutes=10), "again")
        backend.heartbeat(DEAD, now, None, None, 0, 0)
        assert session.rescue(now) == {}
        assert state(backend, again.id, now) is JobState.LOCKED
    finally:
        session.close()


def test_workers_rescuing_at_once_give_each_job_back_once(backend: Backend) -> None:
    now = utcnow()
    register(backend, DEAD, now - timedelta(minutes=10))
    dead = [hold(backend, DEAD, now - timedelta(minutes=10), f"j{i}") for i in range(6)]
    sessions = [backend.session(f"host:rescuer pid:{n}") for n in range(4)]
    start = threading.Barrier(len(sessions))
    results: list[dict[str, list[JobId]]] = []

    def rescue(n: int) -> None:
        start.wait()
        results.append(sessions[n].rescue(now))

    threads = [threading.Thread(target=rescue, args=(n,)) for n in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for s in sessions:
        s.close()
    given = [str(i) for r in results for ids in r.values() for i in ids]
    assert sorted(given) == sorted(str(j.id) for j in dead)  # each once, by whichever came first
    assert backend.count(JobFilter(states=frozenset({JobState.PENDING})), now) == len(dead)
    assert backend.stats(now, 4 * HOUR).rescued == len(dead)
    assert sum(e.changed for e in backend.audit(20) if e.verb == "rescue") == len(dead)


@pytest.mark.redis
def test_a_resque_worker_s_job_is_left_to_resque(redis_url: str) -> None:
    import redis

    b = open_backend(redis_url, BackendOptions(worker_timeout=60.0))
    r = redis.Redis.from_url(redis_url)
    now = utcnow()
    rid = "web2:11:r"  # silent for an hour: Resque prunes it when one of its workers starts
    r.sadd("resque:workers", rid)
    r.hset("resque:workers:heartbeat", rid, (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    held = json.dumps({"queue": "r", "run_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "payload": {"class": "A"}})
    r.set(f"resque:worker:{rid}", held)
    session = b.session(RESCUER)
    try:
        assert session.rescue(now) == {}
    finally:
        session.close()
        b.close()
    assert r.get(f"resque:worker:{rid}") == held.encode()
    assert r.llen("resque:queue:r") == 0
