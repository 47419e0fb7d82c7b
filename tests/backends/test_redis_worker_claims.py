"""The Redis worker's one call a job (`lua/claim.lua`) kept small: a worker alone reads and offers
only the entry it wants, spares come back once another worker took one first, a candidate pushed
deep is left for a later claim (never lost), Resque's worker key and the throughput hash are kept
as before, and nonces differ across forked workers. Real redis-server and real worker processes;
nothing here asserts a duration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend, RedisWorkerSession
from qadmin.backends.redis.steps import nonce as _nonce
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, WorkerInfo, utcnow
from tests.backends.test_redis_engine_fast import HOUR, NOOP, only_noop
from tests.worker.test_prefetch import two_prefetching_workers_run_each_job_once
from tests.worker.test_worker_processes import procs

__all__ = ["procs"]  # the fixture, shared with the worker process tests
pytestmark = pytest.mark.redis


def window(session: RedisWorkerSession, queues: list[str]) -> list[list[bytes]]:
    """The queue heads the worker's last call read, which its next call chooses from."""
    return session.claims.state(queues).windows


def test_a_worker_alone_reads_one_entry_ahead_and_offers_spares_after_losing_one(
    redis_url: str, r: redis.Redis
) -> None:
    one, two = RedisBackend(redis_url, BackendOptions()), RedisBackend(redis_url, BackendOptions())
    try:
        one.enqueue_many([NewJob(NOOP, [i], queue="q") for i in range(10)])
        w1 = one.session("w1")
        [job] = w1.claim(["q"], utcnow(), HOUR, only_noop)
        [job] = w1.complete_and_claim(job, utcnow(), 0.0, ["q"], HOUR, only_noop, 1)
        assert job.args == [1]
        assert window(w1, ["q"]) == [[r.lindex("resque:queue:q", 0)]]  # the next job, nothing more
        # another worker takes the entry w1 read: w1's next call loses it, claims the one after
        # in a second call, and reads spares from then on
        [taken] = two.session("w2").claim(["q"], utcnow(), HOUR, only_noop, limit=1)
        assert taken.args == [2]
        [job] = w1.complete_and_claim(job, utcnow(), 0.0, ["q"], HOUR, only_noop, 1)
        assert job.args == [3]
        assert len(window(w1, ["q"])[0]) > 1
        held = one.count(JobFilter(states=frozenset({JobState.LOCKED})), utcnow())
        assert held == 2 and r.llen("resque:queue:q") == 6
    finally:
        one.close()
        two.close()


def test_a_candidate_pushed_deep_is_left_for_a_later_claim(redis_backend: RedisBackend, r: redis.Redis) -> None:
    first, second = (redis_backend.enqueue(NewJob(NOOP, [name], queue="q")) for name in ("first", "second"))
    w = redis_backend.session("w")
    [job] = w.claim(["q"], utcnow(), HOUR, only_noop)
    assert job.id == first.id and window(w, ["q"]) == [[r.lindex("resque:queue:q", 0)]]
    # 300 jobs pushed back at the head (as releases push them) before the worker's next call:
    # the entry it chose is now far from the head
    redis_backend.enqueue_many([NewJob(NOOP, [i], queue="other") for i in range(300)])
    raws = r.lrange("resque:queue:other", 0, -1)
    r.delete("resque:queue:other")
    r.lpush("resque:queue:q", *raws)
    ran = [str(job.id)]
    held = w.complete_and_claim(job, utcnow(), 0.0, ["q"], HOUR, only_noop, 1)
    # it took one of those instead: the entry it chose waits, still in the queue, behind them
    assert [j.id for j in held] != [second.id] and r.llen("resque:queue:q") == 300
    assert b'"args":["second"]' in r.lindex("resque:queue:q", -1)
    while held:
        [job] = held
        ran.append(str(job.id))
        held = w.complete_and_claim(job, utcnow(), 0.0, ["q"], HOUR, only_noop, 1)
    assert len(ran) == 302 and len(set(ran)) == 302 and str(second.id) in ran
    assert r.llen("resque:queue:q") == 0 and r.zcard("resque:qadmin:locked") == 0
    assert r.get("resque:stat:processed") == b"302"


def test_resque_sees_the_job_in_hand_through_fused_calls(redis_backend: RedisBackend, r: redis.Redis) -> None:
    name = "host:web1 pid:9"
    now = utcnow()
    w = redis_backend.session(name)
    w.register(WorkerInfo(name=name, host="web1", pid=9, queues=["q"], started_at=now, heartbeat_at=now))
    rid = "web1-qadmin:9:q"
    for i in range(3):
        redis_backend.enqueue(NewJob(NOOP, [i], queue="q"))
    payloads = r.lrange("resque:queue:q", 0, -1)
    [job] = w.claim(["q"], utcnow(), HOUR, only_noop)
    for i in range(3):
        value = r.get(f"resque:worker:{rid}")
        assert value is not None and value.endswith(b',"payload":' + payloads[i] + b"}")
        held = w.complete_and_claim(job, utcnow(), 0.0, ["q"], HOUR, only_noop, 1)
        job = held[0] if held else None
    assert job is None and not r.exists(f"resque:worker:{rid}")  # idle again: the key is gone
    assert r.get("resque:stat:processed") == b"3" and r.get(f"resque:stat:processed:{rid}") == b"3"
    [tkey] = r.keys("resque:qadmin:throughput:*")
    assert r.hget(tkey, "processed") == b"3" and 0 < r.ttl(tkey) <= 7200


def test_forked_workers_draw_different_nonces() -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_fd, _nonce().encode())
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    theirs = os.read(read_fd, 64).decode()
    os.close(read_fd)
    ours = _nonce()
    assert len(theirs) == len(ours) == 8 and int(theirs, 16) >= 0 and theirs != ours


def test_two_workers_claiming_one_job_at_a_time_run_each_job_once(redis_url: str, tmp_path: Path, procs) -> None:
    two_prefetching_workers_run_each_job_once(redis_url, tmp_path, procs, "--prefetch", "1")
