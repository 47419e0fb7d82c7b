"""Pipelined successes: a Redis worker that holds prefetched jobs sends each success and starts its
next job without reading the reply (`OwnConnection.send`, `SuccessWrites.PIPELINED`); the next other use of the connection or
of the deferred outcomes reads it. The default guarantee stays: a success is sent before the next
job starts, so a SIGKILL reruns at most the job in hand; a call that failed (error reply, dropped
connection) goes again with the next one, and nothing counts twice.

Real redis-server, real worker processes; nothing here asserts a duration."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend, RedisWorkerSession
from qadmin.backends.redis.claims import ClaimState
from qadmin.job import NewJob, WorkerInfo, utcnow
from qadmin.worker import Worker, WorkerOptions
from tests.worker.test_worker_processes import RECORD, SLEEP_RECORD, client, count, lines, procs, wait_for

__all__ = ["procs"]  # the fixture, shared with the worker process tests
pytestmark = pytest.mark.redis
NOOP = "qadmin.examples.noop"
HOUR = 3600.0
W = "host:x pid:1"

#: what the in-process worker did, in order: ("run", token) and ("send", tokens, replies unread)
EVENTS: list[tuple] = []


def note(token: str) -> None:
    EVENTS.append(("run", token))


NOTE = f"{__name__}.note"


def processed(r: redis.Redis) -> int:
    return int(r.get("resque:stat:processed") or 0)


def finished_tokens(r: redis.Redis) -> Counter:
    import json

    return Counter(
        str(json.loads(json.loads(rec)["payload"])["args"][0]) for rec in r.zrange("resque:qadmin:finished", 0, -1)
    )


def watch_sends(s: RedisWorkerSession, sent: list) -> None:
    """Record each pipelined send: the job ids it carried, and whether it went without a wait."""
    original = s.own.send

    def send(script, keys, args, dones):  # type: ignore[no-untyped-def]
        ok = original(script, keys, args, dones)
        sent.append(([d.job_id for d in dones], ok))
        return ok

    s.own.send = send  # type: ignore[method-assign]


def test_successes_go_before_the_next_job_and_are_settled_later(redis_url: str, r: redis.Redis) -> None:
    b = RedisBackend(redis_url, BackendOptions())
    try:
        b.enqueue_many([NewJob(NOTE, [f"t{i}"], queue="q") for i in range(95)])
        EVENTS.clear()
        w = Worker(b, WorkerOptions(queues=["q"], burst=True, prefetch=10, sleep=0.1, imports=[__name__]))
        s = w.session
        assert isinstance(s, RedisWorkerSession)
        original = s.own.send

        def send(script, keys, args, dones):  # type: ignore[no-untyped-def]
            ok = original(script, keys, args, dones)
            EVENTS.append(("send", [d.job_id for d in dones], ok, s.own.in_flight))
            return ok

        s.own.send = send  # type: ignore[method-assign]
        assert w.work() == 0
        runs = [e for e in EVENTS if e[0] == "run"]
        sends = [e for e in EVENTS if e[0] == "send"]
        assert len(runs) == 95
        # every job of a batch but its last: its success sent, reply unread, before the next job ran
        assert len(sends) >= 80 and all(ok for _, _, ok, _ in sends)
        for i, event in enumerate(EVENTS):
            if event[0] == "send":
                assert EVENTS[i + 1][0] == "run"
        assert max(unread for *_, unread in sends) >= 2  # several replies may wait, none was waited for
        assert not s.own.in_flight and not s._sending and not s._deferred and not s.held
        assert processed(r) == 95
        assert finished_tokens(r) == Counter({f"t{i}": 1 for i in range(95)})
        assert r.zcard("resque:qadmin:locked") == 0 and r.llen("resque:queue:q") == 0
    finally:
        b.close()


def test_a_failed_pipelined_call_is_written_again_and_counted_once(redis_backend: RedisBackend, r: redis.Redis) -> None:
    b = redis_backend
    s = b.session(W)
    sent: list = []
    watch_sends(s, sent)
    for i in range(10):
        b.enqueue(NewJob(NOOP, [f"t{i}"], queue="q"))
    got = s.claim(["q"], utcnow(), HOUR, lambda j: True, limit=10)
    assert len(got) == 10
    # an error reply: the script is gone (a restarted server); not run, so it goes again
    r.script_flush()
    s.complete(got[0], utcnow(), 0.0)
    s.complete(got[1], utcnow(), 0.0)
    assert s.own.in_flight == 2 and sent[-1] == ([str(got[1].id)], True)  # the first still in flight
    # another error reply: this user may not call scripts
    r.execute_command("ACL", "SETUSER", "default", "-evalsha")
    try:
        s.complete(got[2], utcnow(), 0.0)
    finally:
        r.execute_command("ACL", "SETUSER", "default", "+evalsha")
    s.complete(got[3], utcnow(), 0.0)
    assert [ids for ids, _ok in sent] == [[str(j.id)] for j in got[:4]] and s.own.in_flight == 4
    assert processed(r) == 0
    s.flush()  # reads the four errors, loads the script again, and writes the four again
    assert processed(r) == 4 and not s.own.in_flight and not s._deferred
    s.complete(got[4], utcnow(), 0.0)  # on a connection in step again
    assert sent[-1] == ([str(got[4].id)], True)
    s.flush()
    assert processed(r) == 5 and not s.own.in_flight and not s._deferred
    # a dropped connection before a send: the calls sent into it are lost, and go again
    r.client_kill_filter(_type="normal", skipme=True)
    s.complete(got[5], utcnow(), 0.0)
    s.complete(got[6], utcnow(), 0.0)
    s.flush()
    assert processed(r) == 7
    # a dropped connection between a call's run and the reading of its reply
    s.complete(got[7], utcnow(), 0.0)
    s.complete(got[7], utcnow(), 0.0)  # a repeat of a success in flight: recorded once
    wait_for(lambda: processed(r) == 8, 10, "the pipelined call to run")
    r.client_kill_filter(_type="normal", skipme=True)
    s.complete(got[8], utcnow(), 0.0)
    s.complete(got[9], utcnow(), 0.0)  # its last held job: written and read now
    s.flush()
    assert not s.own.in_flight and not s._deferred and not s.held
    assert processed(r) == 10
    assert finished_tokens(r) == Counter({f"t{i}": 1 for i in range(10)})
    assert r.zcard("resque:qadmin:locked") == 0


def test_a_heartbeat_while_a_reply_is_pending_counts_nothing_twice(redis_backend: RedisBackend, r: redis.Redis) -> None:
    b = redis_backend
    s = b.session(W)
    now = utcnow()
    s.register(WorkerInfo(name=W, host="x", pid=1, queues=["q"], started_at=now, heartbeat_at=now))
    for i in range(4):
        b.enqueue(NewJob(NOOP, [f"t{i}"], queue="q"))
    got = s.claim(["q"], now, HOUR, lambda j: True, limit=4)
    s.complete(got[0], utcnow(), 0.0)
    assert s.own.in_flight == 1
    written: list = []
    original = s.claims.call

    def claim_call(c, rid, now, picks, want, per, dones):  # type: ignore[no-untyped-def]
        written.append([d.job_id for d in dones])
        return original(c, rid, now, picks, want, per, dones)

    s.claims.call = claim_call  # type: ignore[method-assign]

    def beat() -> None:
        s.heartbeat(utcnow(), None, None, 1, 0)

    # the worker's thread is using the connection: the heartbeat leaves the success in flight alone
    with s.own.busy():
        t = threading.Thread(target=beat)
        t.start()
        t.join(10)
    assert written == [] and s.own.in_flight == 1
    # a repeat of it through another connection would be harmless: recorded only once
    done = s._deferred[0]
    keys, args = s.claims.args(ClaimState(()), s.rid(), utcnow(), [], 0, 0, [done])
    b.server.scripts.claim(keys=keys, args=args, client=b.client)
    # the connection free, the heartbeat reads the reply and settles the success
    t = threading.Thread(target=beat)
    t.start()
    t.join(10)
    assert not s.own.in_flight and not s._deferred and written == []
    assert processed(r) == 1 and r.get("resque:stat:processed:x-qadmin:1:q") == b"1"
    s.complete(got[1], utcnow(), 0.0)
    t = threading.Thread(target=beat)
    t.start()
    t.join(10)
    s.complete(got[2], utcnow(), 0.0)
    s.complete(got[3], utcnow(), 0.0)
    s.flush()
    assert processed(r) == 4 and finished_tokens(r) == Counter({f"t{i}": 1 for i in range(4)})
    s.unregister()


def test_heartbeats_racing_a_prefetching_worker_count_each_job_once(redis_url: str, r: redis.Redis) -> None:
    b = RedisBackend(redis_url, BackendOptions())
    stop = threading.Event()
    try:
        b.enqueue_many([NewJob(NOOP, [f"t{i}"], queue="q") for i in range(400)])
        w = Worker(
            b,
            WorkerOptions(
                queues=["q"], burst=True, prefetch=10, sleep=0.1, heartbeat_interval=3600, imports=["qadmin.examples"]
            ),
        )

        def beats() -> None:
            while not stop.is_set():
                w.session.heartbeat(utcnow(), None, None, 0, 0)

        t = threading.Thread(target=beats)
        w.register()
        t.start()
        try:
            assert w.work() == 0
        finally:
            stop.set()
            t.join(10)
        w.session.flush()
        assert processed(r) == 400
        assert finished_tokens(r) == Counter({f"t{i}": 1 for i in range(400)})
        assert r.zcard("resque:qadmin:locked") == 0
    finally:
        b.close()


def test_sigkill_mid_batch_reruns_only_the_job_in_hand(redis_url: str, tmp_path: Path, procs) -> None:
    out = tmp_path / "ran.txt"
    with client(redis_url) as c:
        for i in range(4):
            c.enqueue(RECORD, str(out), f"before-{i}", queue="q")
        c.enqueue(SLEEP_RECORD, str(out), "in-hand", 3.0, queue="q")
        for i in range(5):
            c.enqueue(RECORD, str(out), f"after-{i}", queue="q")
    p = procs(redis_url)
    worker = p.start("worker", "--sleep", "0.1", "--prefetch", "10")
    wait_for(lambda: len(lines(out)) == 4, 30, "the first four jobs to run", p.logs)
    time.sleep(0.5)  # into the 3 s job: the fourth success was sent before it started
    worker.kill()
    worker.wait(10)
    # those successes were sent and their replies never read: what the killed process sent counts
    assert count(redis_url, "finished") == 4 and count(redis_url, "locked") == 6
    done = p.run("unlock", "--stale", "--json")
    assert done.returncode == 0, done.stderr
    assert p.run("worker", "--burst", "--sleep", "0.1", "--prefetch", "10").returncode == 0
    ran = Counter(lines(out))
    assert ran == Counter([f"before-{i}" for i in range(4)] + ["in-hand"] + [f"after-{i}" for i in range(5)])
    assert count(redis_url, "finished") == 10
    assert count(redis_url, "pending", "locked", "failed") == 0
    r = redis.Redis.from_url(redis_url)
    assert int(r.get("resque:stat:processed")) == 10
