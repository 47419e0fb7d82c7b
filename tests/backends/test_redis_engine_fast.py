"""The Redis worker path in few round trips: batched claims (`session.claim(limit=n)`, the worker's
--prefetch), an outcome recorded in the same call as the next claim (`complete_and_claim`), and enqueue_many
in pipelined chunks. Every guarantee stays: nothing unrunnable claimed, paused queues left alone,
nothing run twice, nothing lost on SIGKILL. Real redis-server and real worker processes; nothing
here asserts a duration."""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend
from qadmin.backends.redis.entries import envelope
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, WorkerInfo, utcnow
from qadmin.worker import Worker, WorkerOptions
from tests.worker.test_prefetch import two_prefetching_workers_run_each_job_once
from tests.worker.test_worker_processes import RECORD, client, count, lines, procs, wait_for

__all__ = ["procs"]  # the fixture, shared with the worker process tests
pytestmark = pytest.mark.redis
NOOP = "qadmin.examples.noop"
HOUR = 3600.0


def only_noop(job) -> bool:
    return job.class_name == NOOP


# --- claim(limit=n) / complete_and_claim ---------------------------------------------------------------
def test_claim_many_takes_jobs_in_resque_order(redis_backend: RedisBackend, r: redis.Redis) -> None:
    b_jobs = [redis_backend.enqueue(NewJob(NOOP, [f"b{i}"], queue="b")) for i in range(3)]
    a_jobs = [redis_backend.enqueue(NewJob(NOOP, [f"a{i}"], queue="a")) for i in range(3)]
    got = redis_backend.session("w").claim(["a", "b"], utcnow(), HOUR, only_noop, limit=5)
    assert [j.id for j in got] == [j.id for j in a_jobs + b_jobs[:2]]
    assert all(j.state is JobState.LOCKED and j.locked_by == "w" for j in got)
    assert r.zcard("resque:qadmin:locked") == 5 and r.llen("resque:queue:b") == 1


def test_a_lock_written_in_lua_is_the_envelope_python_writes(redis_backend: RedisBackend, r: redis.Redis) -> None:
    odd = 'quote" back\\ nl\n tab\t bell\x07 \x1f del\x7f slash/ é € 𝄞'
    job = redis_backend.enqueue(NewJob(NOOP, [odd], {"k": odd}, queue="q é"))
    raw = r.lindex("resque:queue:q é", 0)
    worker = redis_backend.session("host:x pid:1")
    [got] = worker.claim(["q é"], utcnow(), HOUR, only_noop, limit=1)
    [member] = r.zrange("resque:qadmin:locked", 0, -1)
    env = json.loads(member)
    assert env["payload"].encode() == raw and got.id == job.id and got.args == [odd]
    assert member == envelope("host:x pid:1", None, "q é", env["locked_at"], env["n"], raw)
    worker.complete(got, utcnow(), 0.0)  # the envelope it remembered is the stored one
    assert r.zcard("resque:qadmin:locked") == 0 and r.get("resque:stat:processed") == b"1"


def test_claims_leave_undecodable_and_unknown_jobs_in_place(redis_backend: RedisBackend, r: redis.Redis) -> None:
    # more than a usual read of entries this worker cannot run, before the ones it can
    foreign = [b"not json", b'{"class":"Archive","args":[1]}'] * 8
    r.rpush("resque:queue:q", *foreign)
    r.sadd("resque:queues", "q")
    mine = [redis_backend.enqueue(NewJob(NOOP, [i], queue="q")) for i in range(3)]
    w = redis_backend.session("w")
    got = w.claim(["q"], utcnow(), HOUR, only_noop, limit=2)
    assert [j.id for j in got] == [j.id for j in mine[:2]]
    # the fused path chooses from what it read last, and still asks can_run before each lock
    now = utcnow()
    nothing = w.complete_and_claim(got[0], now, 0.01, ["q"], HOUR, lambda j: False, 2)
    assert nothing == []
    assert r.lrange("resque:queue:q", 0, len(foreign) - 1) == foreign
    left = w.complete_and_claim(got[1], now, 0.01, ["q"], HOUR, only_noop, 2)
    assert [j.id for j in left] == [mine[2].id]
    assert r.lrange("resque:queue:q", 0, -1) == foreign
    assert r.get("resque:stat:processed") == b"2"


def test_a_paused_queue_is_not_claimed_from_even_by_a_fused_claim(redis_backend: RedisBackend, r: redis.Redis) -> None:
    jobs = [redis_backend.enqueue(NewJob(NOOP, [i], queue="q")) for i in range(3)]
    w = redis_backend.session("w")
    [first] = w.claim(["q"], utcnow(), HOUR, only_noop, limit=1)
    # read along with that claim: the next job would be chosen from it, but the queue is paused now
    redis_backend.pause("q", utcnow())
    assert w.complete_and_claim(first, utcnow(), 0.01, ["q"], HOUR, only_noop, 1) == []
    assert r.llen("resque:queue:q") == 2 and r.zcard("resque:qadmin:locked") == 0
    r.set("resque:pause-all-workers", " TRUE ")
    redis_backend.resume("q")
    assert w.claim(["q"], utcnow(), HOUR, only_noop, limit=2) == []
    r.delete("resque:pause-all-workers")
    again = w.claim(["q"], utcnow(), HOUR, only_noop, limit=2)
    assert [j.id for j in again] == [j.id for j in jobs[1:]]


def test_complete_and_claim_repeated_counts_the_job_once(redis_backend: RedisBackend, r: redis.Redis) -> None:
    for i in range(3):
        redis_backend.enqueue(NewJob(NOOP, [i], queue="q"))
    w = redis_backend.session("w")
    [job] = w.claim(["q"], utcnow(), HOUR, only_noop, limit=1)
    now = utcnow()
    first = w.complete_and_claim(job, now, 0.01, ["q"], HOUR, only_noop, 1)
    # the worker repeats the call when the reply was lost (BackendUnavailable)
    again = w.complete_and_claim(job, now, 0.01, ["q"], HOUR, only_noop, 1)
    assert len(first) == 1 and len(again) == 1 and first[0].id != again[0].id
    assert r.get("resque:stat:processed") == b"1" and r.zcard("resque:qadmin:finished") == 1
    w.complete(first[0], now, 0.01)
    w.complete(first[0], now, 0.01)
    assert r.get("resque:stat:processed") == b"2" and r.zcard("resque:qadmin:finished") == 2
    assert r.zcard("resque:qadmin:locked") == 1 and r.llen("resque:queue:q") == 0


def test_a_registered_workers_successes_are_written_once_by_its_next_call(
    redis_backend: RedisBackend, r: redis.Redis
) -> None:
    now = utcnow()
    w = redis_backend.session("host:x pid:1", defer_successes=True)
    w.register(WorkerInfo(name="host:x pid:1", host="x", pid=1, queues=["q"], started_at=now, heartbeat_at=now))
    for i in range(6):
        redis_backend.enqueue(NewJob(NOOP, [i], queue="q"))
    got = w.claim(["q"], now, HOUR, only_noop, limit=3)
    for job in got[:2]:
        w.complete(job, utcnow(), 0.0)
        w.complete(job, utcnow(), 0.0)  # repeated: still counted once
    # the last of the batch goes with the next claim
    more = w.complete_and_claim(got[2], utcnow(), 0.0, ["q"], HOUR, only_noop, 3)
    assert r.get("resque:stat:processed") == b"3" and r.zcard("resque:qadmin:finished") == 3
    assert r.get("resque:stat:processed:x-qadmin:1:q") == b"3"
    assert [j.args for j in more] == [[3], [4], [5]]
    w.complete(more[0], utcnow(), 0.0)
    w.heartbeat(utcnow(), None, None, 4, 0)  # writes what waits
    assert r.get("resque:stat:processed") == b"4" and r.zcard("resque:qadmin:locked") == 2
    w.fail(more[1], utcnow(), "Boom: no", None)  # writes what waits first
    assert r.get("resque:stat:processed") == b"5" and r.zcard("resque:qadmin:finished") == 4
    w.complete(more[2], utcnow(), 0.0)  # its last held job: written now
    assert r.get("resque:stat:processed") == b"6"
    w.flush()
    assert r.get("resque:stat:processed") == b"6" and r.zcard("resque:qadmin:finished") == 5
    assert r.zcard("resque:qadmin:locked") == 0 and r.llen("resque:failed") == 1
    w.unregister()


def test_two_workers_with_stale_reads_never_take_the_same_job(redis_url: str) -> None:
    one, two = RedisBackend(redis_url, BackendOptions()), RedisBackend(redis_url, BackendOptions())
    try:
        one.enqueue_many([NewJob(NOOP, [i], queue="q") for i in range(40)])
        sessions = {"w1": one.session("w1"), "w2": two.session("w2")}
        held = {name: s.claim(["q"], utcnow(), HOUR, only_noop, limit=2) for name, s in sessions.items()}
        ran: list[str] = []
        # both read the same heads along with their claims: each lock takes what is still there
        while any(held.values()):
            for name, s in sessions.items():
                if held[name]:
                    job = held[name].pop(0)
                    ran.append(str(job.id))
                    if not held[name]:
                        held[name] = s.complete_and_claim(job, utcnow(), 0.0, ["q"], HOUR, only_noop, 2)
                    else:
                        s.complete(job, utcnow(), 0.0)
        assert len(ran) == 40 and len(set(ran)) == 40
        assert one.count(JobFilter(states=frozenset({JobState.LOCKED, JobState.PENDING})), utcnow()) == 0
    finally:
        one.close()
        two.close()


def test_refresh_renews_and_release_gives_back_in_order(redis_backend: RedisBackend, r: redis.Redis) -> None:
    jobs = [redis_backend.enqueue(NewJob(NOOP, [i], queue="q")) for i in range(4)]
    w = redis_backend.session("w")
    got = w.claim(["q"], utcnow(), HOUR, only_noop, limit=3)
    later = utcnow() + timedelta(minutes=5)
    assert w.refresh(got[0], later)
    assert redis_backend.get(got[0].id, later).locked_at == later
    w.release(got[1:])
    assert [json.loads(x)["args"] for x in r.lrange("resque:queue:q", 0, -1)] == [[1], [2], [3]]
    assert not w.refresh(got[1], later)  # no longer held
    redis_backend.unlock([got[0].id], later)
    assert not w.refresh(got[0], later)
    assert redis_backend.claim(["q"], "w", utcnow(), HOUR, only_noop).id == jobs[0].id


def test_due_scheduled_jobs_and_expired_locks_are_still_claimed(redis_backend: RedisBackend) -> None:
    now = utcnow()
    scheduled = redis_backend.enqueue(NewJob(NOOP, ["later"], queue="q", run_at=now + timedelta(seconds=30)))
    [mine] = [redis_backend.enqueue(NewJob(NOOP, ["now"], queue="q"))]
    assert [j.id for j in redis_backend.session("w1").claim(["*"], now, HOUR, only_noop, limit=5)] == [mine.id]
    # an hour and more later: the scheduled job is due and w1's lock has expired
    later = now + timedelta(hours=2)
    got = redis_backend.session("w2").claim(["*"], later, HOUR, only_noop, limit=5)
    assert sorted(str(j.id) for j in got) == sorted([str(mine.id), str(scheduled.id)])


def test_an_in_process_worker_records_every_outcome_once(
    redis_backend: RedisBackend, r: redis.Redis, tmp_path: Path
) -> None:
    out = tmp_path / "ran.txt"
    redis_backend.enqueue_many(
        [NewJob(RECORD, [str(out), f"job-{i}"], queue=("a", "b")[i % 3 == 0]) for i in range(50)]
    )
    for prefetch in (1, 4):
        w = Worker(
            redis_backend,
            WorkerOptions(
                queues=["a", "b"], burst=True, prefetch=prefetch, name=f"w{prefetch}", imports=["qadmin.examples"]
            ),
        )
        w.work()
        if prefetch == 1:
            redis_backend.enqueue_many([NewJob(RECORD, [str(out), f"more-{i}"], queue="b") for i in range(20)])
    ran = Counter(lines(out))
    assert len(ran) == 70 and max(ran.values()) == 1
    assert r.get("resque:stat:processed") == b"70" and r.zcard("resque:qadmin:finished") == 70
    assert r.zcard("resque:qadmin:locked") == 0 and not r.keys("resque:worker:*")


def test_scripts_are_loaded_again_after_the_server_forgot_them(redis_backend: RedisBackend, r: redis.Redis) -> None:
    redis_backend.enqueue(NewJob(NOOP, [1], queue="q"))
    r.script_flush()
    redis_backend.enqueue(NewJob(NOOP, [2], queue="q"))
    w = redis_backend.session("w")
    got = w.claim(["q"], utcnow(), HOUR, only_noop, limit=1)
    r.script_flush()
    more = w.complete_and_claim(got[0], utcnow(), 0.0, ["q"], HOUR, only_noop, 1)
    assert [j.args for j in got + more] == [[1], [2]] and r.get("resque:stat:processed") == b"1"


# --- enqueue ---------------------------------------------------------------------------------------
def test_enqueue_many_stores_what_enqueue_stores(redis_backend: RedisBackend, r: redis.Redis) -> None:
    now = utcnow()
    news = [
        NewJob(NOOP, [i], {"k": "é"}, queue=("a", "b")[i % 2], max_attempts=3 if i == 4 else None) for i in range(6)
    ]
    news.insert(3, NewJob(NOOP, ["later"], queue="a", run_at=now + timedelta(hours=1)))
    news.insert(5, NewJob(NOOP, ["once"], queue="b", unique="u1"))
    ids = redis_backend.enqueue_many(news)
    assert len(ids) == len(news) == len(set(map(str, ids)))
    for new, job_id in zip(news, ids):
        got = redis_backend.get(job_id, now)
        assert (got.class_name, got.args, got.queue) == (new.class_name, new.args, new.queue)
    one = redis_backend.enqueue(NewJob(NOOP, [0], {"k": "é"}, queue="a"))
    raw_many = json.loads(r.lindex("resque:queue:a", 0))
    raw_one = json.loads(r.lindex("resque:queue:a", -1))
    assert raw_many == raw_one == {"class": NOOP, "args": [0], "kwargs": {"k": "é"}}
    assert r.lindex("resque:queue:a", -1).decode() == one.raw
    assert [json.loads(x)["args"] for x in r.lrange("resque:queue:b", 0, -1)] == [[1], [3], ["once"], [5]]
    assert r.smembers("resque:queues") == {b"a", b"b"}
    assert redis_backend.enqueue_many([NewJob(NOOP, ["once"], queue="b", unique="u1")]) == [ids[5]]


# --- real worker processes -------------------------------------------------------------------------
def test_workers_deferring_acks_run_each_job_exactly_once(redis_url: str, tmp_path: Path, procs) -> None:
    two_prefetching_workers_run_each_job_once(redis_url, tmp_path, procs, "--defer-acks")


@pytest.mark.parametrize(("acks", "may_rerun"), [([], 1), (["--defer-acks"], 101)], ids=["acks-each", "defer-acks"])
def test_a_worker_killed_mid_stream_loses_nothing_and_reruns_only_unacknowledged_jobs(
    redis_url: str, tmp_path: Path, procs, acks, may_rerun
) -> None:
    """Without --defer-acks a SIGKILL reruns at most the job in hand; with it, at most the
    successes still waiting to be written (DEFER_MAX). Either way nothing is lost."""
    out = tmp_path / "ran.txt"
    with client(redis_url) as c:
        c.enqueue_many(NewJob(RECORD, [str(out), f"job-{i}"], queue="q") for i in range(3000))
    p = procs(redis_url)
    worker = p.start("worker", "--sleep", "0.1", "--prefetch", "10", *acks)
    wait_for(lambda: len(lines(out)) >= 300, 60, "the worker to run 300 jobs", p.logs)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    done = p.run("unlock", "--stale", "--json")
    assert done.returncode == 0, done.stderr
    assert p.run("worker", "--burst", "--sleep", "0.1").returncode == 0, p.logs()
    ran = Counter(lines(out))
    assert len(ran) == 3000, f"{3000 - len(ran)} jobs lost\n{p.logs()}"
    assert sum(n - 1 for n in ran.values()) <= may_rerun
    assert count(redis_url, "pending", "scheduled", "locked", "failed") == 0
