"""The Redis redis_backend's own promises, beyond the shared contract: reliable reserve, guarded changes,
windowed reads, bulk speed, pauses, namespaces. Real redis-server throughout."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import redis

from qadmin.backends import BackendOptions, open_backend
from qadmin.backends.redis import RedisBackend
from qadmin.errors import BackendUnavailable, ConfigError, UsageError
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.ops import Ops
from tests.servers import free_port

pytestmark = pytest.mark.redis
NOOP = "qadmin.examples.noop"
FAILED = frozenset({JobState.FAILED})


def failure(i: int, queue: str = "q", cls: str = "Archive") -> str:
    return (
        '{"failed_at":"2026/11/22 08:41:11 UTC","payload":{"class":"' + cls + '","args":[' + str(i) + "]},"
        '"exception":"ArgumentError","error":"boom","backtrace":[],"worker":"web1:1:'
        + queue
        + '","queue":"'
        + queue
        + '"}'
    )


def plant_failures(r: redis.Redis, n: int, queue: str = "q") -> None:
    pipe = r.pipeline(transaction=False)
    for start in range(0, n, 10_000):
        pipe.rpush("resque:failed", *[failure(i, queue) for i in range(start, min(start + 10_000, n))])
    pipe.execute()


# --- layout ----------------------------------------------------------------------------------------
def test_the_namespace_is_a_setting(redis_url: str, r: redis.Redis) -> None:
    b = open_backend(redis_url, BackendOptions(namespace="resque:GitHub"))
    b.enqueue(NewJob(NOOP, [1], queue="mail"))
    assert r.smembers("resque:GitHub:queues") == {b"mail"} and r.llen("resque:GitHub:queue:mail") == 1
    assert not r.keys("resque:queue*")
    assert open_backend(redis_url, BackendOptions()).count(JobFilter(), utcnow()) == 0
    assert b.count(JobFilter(), utcnow()) == 1


def test_ids_are_validated() -> None:
    b = RedisBackend("redis://127.0.0.1:1/0", BackendOptions())
    assert b.parse_id(" mail:4f2a9c1b3d5e ") == "mail:4f2a9c1b3d5e"
    assert b.parse_id("4f2a9c1b3d5e") == "4f2a9c1b3d5e"
    for bad in ("", "mail:", "mail:xyz", "42", "mail:4f2a9c1b3d5e:extra!"):
        with pytest.raises(UsageError):
            b.parse_id(bad)


def test_bad_settings_and_unreachable_servers_are_clear_errors() -> None:
    with pytest.raises(ConfigError):
        RedisBackend("redis://127.0.0.1/0?failed_on_retry=sometimes", BackendOptions())
    b = RedisBackend(f"redis://127.0.0.1:{free_port()}/0", BackendOptions())
    with pytest.raises(BackendUnavailable):
        b.check()
    with pytest.raises(BackendUnavailable):
        b.find(JobFilter(), utcnow(), limit=5)


# --- reliable reserve ------------------------------------------------------------------------------
def test_a_claim_moves_exactly_the_entry_and_leaves_unrunnable_ones_in_place(
    redis_backend: RedisBackend, r: redis.Redis
) -> None:
    r.rpush("resque:queue:q", '{"class":"Archive","args":[1]}', "not json")
    r.sadd("resque:queues", "q")
    first = redis_backend.enqueue(NewJob(NOOP, [1], queue="q"))
    second = redis_backend.enqueue(NewJob(NOOP, [2], queue="q"))
    head = r.lrange("resque:queue:q", 0, 1)
    job = redis_backend.claim(["q"], "w1", utcnow(), 3600, lambda j: j.class_name == NOOP)
    assert job is not None and job.id == first.id
    # the Ruby job and the broken entry are still at the head, in order; nothing was popped and re-pushed
    assert r.lrange("resque:queue:q", 0, -1)[:2] == head and r.llen("resque:queue:q") == 3
    assert r.zcard("resque:qadmin:locked") == 1
    redis_backend.release(job, "w1")
    assert r.lrange("resque:queue:q", 0, 0)[0].decode() == job.raw  # back at the head, the same bytes
    assert redis_backend.claim(["q"], "w1", utcnow(), 3600, lambda j: j.class_name == NOOP).id == first.id
    assert redis_backend.claim(["q"], "w2", utcnow(), 3600, lambda j: j.class_name == NOOP).id == second.id


def test_concurrent_claims_never_share_a_job(redis_url: str) -> None:
    setup = RedisBackend(redis_url, BackendOptions())
    setup.enqueue_many([NewJob(NOOP, [i], queue="race") for i in range(200)])
    got: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        b = RedisBackend(redis_url, BackendOptions())
        while True:
            job = b.claim(["race"], f"w{n}", utcnow(), 3600, lambda j: True)
            if job is None:
                return
            with lock:
                got.append(str(job.id))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 200 and len(set(got)) == 200


def test_pause_keys_follow_resque_conventions(redis_backend: RedisBackend, r: redis.Redis) -> None:
    redis_backend.enqueue(NewJob(NOOP, [], queue="a"))
    ops = Ops(redis_backend)
    assert ops.pause("a") is True
    assert r.get("resque:pause:queue:a") == b"true"
    assert redis_backend.claim(["a"], "w", utcnow(), 3600, lambda j: True) is None
    ops.resume("a")
    # another tool paused every worker (Resque >= 2.3: value "true", case and spaces ignored)
    r.set("resque:pause-all-workers", " TRUE\n")
    assert redis_backend.paused() == ["*"] and redis_backend.is_paused("a")
    assert redis_backend.claim(["*"], "w", utcnow(), 3600, lambda j: True) is None
    assert redis_backend.resume("*") is True and not r.exists("resque:pause-all-workers")
    # a queue paused by resque-pause, not by qadmin
    r.set("resque:pause:queue:a", "true")
    assert redis_backend.paused() == ["a"]
    assert redis_backend.stats(utcnow()).paused == ["a"]
    assert redis_backend.claim(["*"], "w", utcnow(), 3600, lambda j: True) is None


# --- reading in windows ------------------------------------------------------------------------------
class Spy:
    """Records the commands a client sends directly (not through pipelines)."""

    def __init__(self, client: redis.Redis) -> None:
        self.calls: list[tuple[Any, ...]] = []
        original = client.execute_command

        def execute(*args: Any, **kw: Any) -> Any:
            self.calls.append(args)
            return original(*args, **kw)

        client.execute_command = execute  # type: ignore[method-assign]


def test_listings_read_windows_and_pages_are_gapless(redis_backend: RedisBackend, r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    pipe.rpush("resque:queue:big", *[f'{{"class":"Archive","args":[{i}]}}' for i in range(1234)])
    pipe.sadd("resque:queues", "big")
    pipe.rpush("resque:failed", *[failure(i) for i in range(777)])
    pipe.execute()
    spy = Spy(redis_backend.client)
    now = utcnow()
    seen: list[str] = []
    cursor = None
    while True:
        page = redis_backend.find(JobFilter(), now, limit=200, cursor=cursor)
        seen.extend(str(j.id) for j in page.jobs)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 1234 + 777 and len(set(seen)) == len(seen)
    lranges = [c for c in spy.calls if c[0] == "LRANGE"]
    assert lranges and all(c[3] != -1 and int(c[3]) - int(c[2]) < 1000 for c in lranges)
    newest = redis_backend.find(JobFilter(states=FAILED), now, limit=3, sort="-failed_at").jobs
    assert [j.args for j in newest] == [[776], [775], [774]]
    assert redis_backend.count(JobFilter(), now) == 1234 + 777
    assert redis_backend.count(JobFilter(class_name="Archive", args=(5,)), now) == 2


def test_a_verb_never_acts_on_an_entry_that_changed_since_it_was_listed(
    redis_backend: RedisBackend, r: redis.Redis
) -> None:
    redis_backend.enqueue_many([NewJob(NOOP, [i], queue="q") for i in range(3)])
    other = RedisBackend(str(redis_backend.safe_url), BackendOptions())
    ops = Ops(redis_backend)
    preview = ops.preview("dequeue", JobFilter(queues=("q",), class_name=NOOP))
    assert preview.count == 3
    taken = other.claim(["q"], "w", utcnow(), 3600, lambda j: True)  # a worker takes the head meanwhile
    result = ops.apply(preview)
    assert (result.matched, result.changed) == (3, 2)
    assert [i for i, _ in result.skipped] == [taken.id]
    assert other.get(taken.id, utcnow()).state is JobState.LOCKED


# --- bulk -----------------------------------------------------------------------------------------------
def test_bulk_retry_of_100000_failed_jobs(redis_backend: RedisBackend, r: redis.Redis) -> None:
    plant_failures(r, 100_000)
    started = time.monotonic()
    result = Ops(redis_backend).retry(JobFilter(states=FAILED))
    elapsed = time.monotonic() - started
    print(f"\nbulk retry of 100,000 failed Resque jobs: {elapsed:.1f}s")  # a figure, never asserted
    assert (result.matched, result.changed) == (100_000, 100_000)
    assert r.llen("resque:queue:q") == 100_000 and r.llen("resque:failed") == 100_000
    assert r.lindex("resque:queue:q", 99_999) == b'{"class":"Archive","args":[99999]}'
    assert redis_backend.count(JobFilter(states=FAILED), utcnow()) == 0


def test_bulk_removals_shift_nothing_they_should_not(redis_url: str, r: redis.Redis) -> None:
    plant_failures(r, 3000, "a")
    r.rpush("resque:failed", *[failure(i, "b") for i in range(500)])
    b = RedisBackend(redis_url + "?failed_on_retry=remove", BackendOptions())
    ops = Ops(b)
    result = ops.retry(JobFilter(states=FAILED, queues=("a",)))
    assert result.changed == 3000
    assert r.llen("resque:failed") == 500 and all(b'"queue":"b"' in e for e in r.lrange("resque:failed", 0, -1))
    # then delete some pending jobs from the middle of the list: exactly those go, order kept
    wanted = [f'{{"class":"Archive","args":[{i}]}}'.encode() for i in range(3000)]
    assert r.lrange("resque:queue:a", 0, -1) == wanted
    selection = JobFilter(queues=("a",), search='"args":[1')  # 1, 10-19, 100-199, 1000-1999
    expected = [w for w in wanted if b'"args":[1' in w]
    assert ops.delete(selection).changed == len(expected)
    assert r.lrange("resque:queue:a", 0, -1) == [w for w in wanted if w not in expected]


# --- stats and history -----------------------------------------------------------------------------------
def test_stats_counters_throughput_and_oldest_pending(redis_backend: RedisBackend, r: redis.Redis) -> None:
    r.rpush(
        "resque:queue:php",
        '{"class":"My_Job","args":[{}],"id":"48816519aaa5034aeac8e18728917051","queue_time":1795336967.270938}',
    )
    r.sadd("resque:queues", "php")
    r.set("resque:stat:processed", 40)
    r.set("resque:stat:failed", 2)
    redis_backend.enqueue_many([NewJob(NOOP, [i], queue="q") for i in range(3)])
    now = utcnow()
    for i in range(3):
        job = redis_backend.claim(["q"], "w", now, 3600, lambda j: True)
        if i == 0:
            redis_backend.fail(job, "w", now, "RuntimeError: x", None)
        else:
            redis_backend.complete(job, "w", now, 0.01)
    st = redis_backend.stats(now)
    assert (st.processed, st.failed) == (43, 3)
    assert st.queues["q"]["failed"] == 1 and st.queues["q"]["finished"] == 2 and st.queues["php"]["pending"] == 1
    assert st.oldest_pending_at is not None and st.oldest_pending_at.year == 2026
    minute, processed, failed = st.throughput[-1]
    assert (processed, failed) == (3, 1) and minute <= now
    assert {q.name: q.counts["pending"] for q in redis_backend.queues(now)}["php"] == 1


def test_counts_by_fast_path_equal_counts_by_scan(redis_backend: RedisBackend, r: redis.Redis) -> None:
    plant_failures(r, 50)
    redis_backend.enqueue_many(
        [NewJob(NOOP, [i], queue=f"q{i % 3}", run_at=utcnow() + timedelta(seconds=600 * (i % 2))) for i in range(30)]
    )
    now = utcnow()
    for states in (frozenset(), FAILED, frozenset({JobState.PENDING, JobState.SCHEDULED})):
        for queues in ((), ("q1",), ("q",)):
            fast = redis_backend.count(JobFilter(states=states, queues=queues), now)
            slow = sum(len(ids) for ids in redis_backend.iter_ids(JobFilter(states=states, queues=queues), now))
            assert fast == slow, (states, queues)


def test_audit_lives_in_private_keys(redis_backend: RedisBackend, r: redis.Redis) -> None:
    job = redis_backend.enqueue(NewJob(NOOP, [], queue="q"))
    ops = Ops(redis_backend, actor="ann", face="cli")
    ops.delete(JobFilter(ids=(job.id,)))
    [entry] = redis_backend.audit(5)
    assert (entry.verb, entry.actor, entry.changed) == ("delete", "ann", 1)
    assert [e.verb for e in redis_backend.audit(5, job_id=job.id)] == ["delete"]
    assert r.smembers("resque:queues") == {b"q"}
    assert all(k.startswith(b"resque:qadmin:") for k in r.keys("*audit*"))


def test_a_sentinel_url_reaches_the_monitored_master(redis_server: Any, redis_url: str, tmp_path: Any) -> None:
    import shutil
    import subprocess

    from tests.servers import wait_for_port

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\nsentinel monitor mymaster 127.0.0.1 {redis_server.port} 1\n"
    )
    proc = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        b = RedisBackend(f"redis+sentinel://127.0.0.1:{port}/mymaster/0", BackendOptions())
        b.check()
        b.enqueue(NewJob(NOOP, [1], queue="via-sentinel"))
        assert redis.Redis.from_url(redis_url).llen("resque:queue:via-sentinel") == 1
        b.close()
    finally:
        proc.terminate()
        proc.wait(10)
    with pytest.raises(ConfigError):
        RedisBackend("redis+sentinel://127.0.0.1:26379", BackendOptions())


def test_the_demo_fills_redis_with_jobs_in_every_state(redis_backend: RedisBackend) -> None:
    from qadmin.demo import fill

    counts = fill(redis_backend)
    assert all(counts[state] > 0 for state in ("pending", "scheduled", "locked", "failed", "finished")), counts
    stale = redis_backend.find(JobFilter(stale_only=True, states=frozenset({JobState.LOCKED})), utcnow(), limit=5).jobs
    assert len(stale) == 1
