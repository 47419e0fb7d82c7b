"""qadmin's index of Resque's `failed` list (`redis/failed_index.py`): counts and one queue's
failures read through it must equal what a full read of the list gives, whoever changed the list
and however (qadmin's fail path and retries, Ruby's RPUSH, resque-web's LSET "__delete__" + LREM
and in-place requeue, LTRIM, DEL, a hand-edited index). Real redis-server throughout."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis

from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend
from qadmin.backends.redis import failed_index as fi
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.ops import Ops
from tests.backends.test_redis_backend import failure

pytestmark = pytest.mark.redis
FAILED = frozenset({JobState.FAILED})
NOOP = "qadmin.examples.noop"
T = TypeVar("T")


@pytest.fixture
def b(redis_url: str) -> Iterator[RedisBackend]:
    backend = RedisBackend(redis_url, BackendOptions())
    yield backend
    backend.close()


def full_read(fn: Callable[[], T]) -> T:
    """What `fn` answers with the index unused: the list read whole, as before the index."""
    mp = pytest.MonkeyPatch()
    mp.setattr(fi.FailedIndex, "counts", lambda self: None)
    try:
        return fn()
    finally:
        mp.undo()


def failed_counts(b: RedisBackend) -> dict[str, int]:
    return {q: c["failed"] for q, c in b.counter.counts(utcnow(), None, states=FAILED).items() if c["failed"]}


def first_page(b: RedisBackend, queue: str, sort: str = "id", limit: int = 20) -> list[str]:
    page = b.find(JobFilter(states=FAILED, queues=(queue,)), utcnow(), limit=limit, sort=sort)
    return [str(j.id) for j in page.jobs]


def check(b: RedisBackend, queues: tuple[str, ...] = ("q", "r")) -> None:
    """Counts, stats, first pages both ways, ids and counts of a queue: as a full read gives them."""
    assert failed_counts(b) == full_read(lambda: failed_counts(b))
    assert b.stats(utcnow()).queues == full_read(lambda: b.stats(utcnow())).queues
    for q in queues:
        for sort in ("id", "-failed_at", "-id"):
            assert first_page(b, q, sort) == full_read(lambda q=q, sort=sort: first_page(b, q, sort)), (q, sort)
        selection = JobFilter(states=FAILED, queues=(q,))
        ids = [i for chunk in b.iter_ids(selection, utcnow()) for i in chunk]
        assert ids == full_read(lambda s=selection: [i for c in b.iter_ids(s, utcnow()) for i in c])
        assert b.count(selection, utcnow()) == len(ids)
        for job_id in ids[:3] + ids[-2:]:  # a lookup by id searches its queue's failures only
            assert b.get(job_id, utcnow()) == full_read(lambda i=job_id: b.get(i, utcnow()))


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows so small that every read finds the index part built: counts and pages come from
    the index for its part and from the list for the rest."""
    monkeypatch.setattr(fi, "INDEX_WINDOW", 7)
    monkeypatch.setattr(fi, "REBUILD_CALLS", 2)
    monkeypatch.setattr(fi, "FIRST_READ", 2)
    monkeypatch.setattr(fi, "READ_WINDOW", 5)
    monkeypatch.setattr(fi, "SCRUB_WINDOW", 3)


def ruby_failures(r: redis.Redis, start: int, n: int, queue: str = "q") -> None:
    """Failure entries appended as Ruby's Resque appends them: RPUSH of its JSON."""
    r.rpush("resque:failed", *[failure(i, queue) for i in range(start, start + n)])


def test_counts_and_pages_after_qadmin_failures(b: RedisBackend, r: redis.Redis) -> None:
    now = utcnow()
    for i in range(30):
        b.enqueue(NewJob(NOOP, [i], queue="q" if i % 3 else "r"))
    for _ in range(30):
        job = b.claim(["q", "r"], "w1", now, 60.0, lambda j: True)
        assert job is not None
        b.fail(job, "w1", now, "RuntimeError: nope\n  at x", None)
    check(b)
    assert failed_counts(b) == {"q": 20, "r": 10}
    assert r.exists("resque:qadmin:failed:index")


def test_raw_rpush_by_ruby_is_indexed_from_the_tail_only(b: RedisBackend, r: redis.Redis) -> None:
    ruby_failures(r, 0, 300)
    check(b)
    gen = r.hget("resque:qadmin:failed:index", "gen")
    ruby_failures(r, 300, 50, "r")
    r.rpush("resque:failed", failure(7, "q"), failure(7, "q"))  # twins, as the same job failing twice at once
    check(b)
    assert r.hget("resque:qadmin:failed:index", "gen") == gen, "appends extend the index, never rebuild it"
    assert int(r.hget("resque:qadmin:failed:index", "n") or 0) == r.llen("resque:failed")


def test_resque_web_removal_lset_delete_and_lrem(b: RedisBackend, r: redis.Redis) -> None:
    ruby_failures(r, 0, 100)
    ruby_failures(r, 100, 100, "r")
    check(b)
    # resque-web's "Remove": LSET the entry to "__delete__", then LREM it (Resque::Failure::Redis.remove)
    for index in (150, 3, 0):
        r.lset("resque:failed", index, "__delete__")
        r.lrem("resque:failed", 1, "__delete__")
        check(b)
    # and a removal followed by as many appends: the length is back where it was
    r.lset("resque:failed", 10, "__delete__")
    r.lrem("resque:failed", 1, "__delete__")
    ruby_failures(r, 500, 1, "r")
    check(b)


def test_resque_requeue_in_place_is_found_by_the_scrub(b: RedisBackend, r: redis.Redis) -> None:
    ruby_failures(r, 0, 120)
    check(b)
    # Resque::Failure.requeue: `retried_at` added to the entry where it is; the length and the last
    # entry stay as they were
    raw = r.lindex("resque:failed", 5)
    assert raw is not None
    entry = json.loads(raw)
    entry["retried_at"] = "2026/11/22 09:00:00"
    r.lset("resque:failed", 5, json.dumps(entry, separators=(",", ":")))
    check(b)
    assert failed_counts(b) == {"q": 119}


def test_ltrim_del_and_a_new_list(b: RedisBackend, r: redis.Redis) -> None:
    ruby_failures(r, 0, 200)
    check(b)
    r.ltrim("resque:failed", 50, -1)
    check(b)
    r.ltrim("resque:failed", 0, 9)
    check(b)
    r.delete("resque:failed")
    check(b)
    assert failed_counts(b) == {}
    ruby_failures(r, 1000, 5, "r")
    check(b)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda r: r.delete("resque:qadmin:failed:index"),
        lambda r: r.hset("resque:qadmin:failed:index", "f:q", 7),
        lambda r: r.hset("resque:qadmin:failed:index", "n", 3),
        lambda r: r.hset("resque:qadmin:failed:index", "tail", "x"),
        lambda r: r.hdel("resque:qadmin:failed:index", "gen"),
        lambda r: r.set("resque:qadmin:failed:index", "poison"),
        lambda r: r.set("resque:qadmin:failed:index:keys", "poison"),
        lambda r: r.set("resque:qadmin:failed:index:gen", "not a number"),
        lambda r: r.zrem(f"resque:qadmin:failed:at:{int(r.hget('resque:qadmin:failed:index', 'gen'))}:q", 4),
        lambda r: r.delete(f"resque:qadmin:failed:at:{int(r.hget('resque:qadmin:failed:index', 'gen'))}:r"),
        lambda r: r.zadd(f"resque:qadmin:failed:at:{int(r.hget('resque:qadmin:failed:index', 'gen'))}:r", {"3": 3}),
    ],
)
def test_a_hand_edited_index_is_repaired(b: RedisBackend, r: redis.Redis, spoil: Callable[[Any], Any]) -> None:
    ruby_failures(r, 0, 60)
    ruby_failures(r, 60, 40, "r")
    check(b)
    spoil(r)
    check(b)
    assert failed_counts(b) == {"q": 60, "r": 40}


def test_a_position_that_lies_is_caught_by_the_read(b: RedisBackend, r: redis.Redis) -> None:
    """A zset member swapped for another queue's position (counts still sum up): the read checks
    each entry it returns and rebuilds instead of showing it."""
    ruby_failures(r, 0, 30)
    ruby_failures(r, 30, 30, "r")
    check(b)
    gen = int(r.hget("resque:qadmin:failed:index", "gen") or 0)
    r.zrem(f"resque:qadmin:failed:at:{gen}:q", 2)
    r.zadd(f"resque:qadmin:failed:at:{gen}:q", {"40": 40})
    check(b)


def test_qadmin_retry_and_delete_keep_the_index(b: RedisBackend, r: redis.Redis) -> None:
    ruby_failures(r, 0, 100)
    ruby_failures(r, 100, 100, "r")
    check(b)
    gen = r.hget("resque:qadmin:failed:index", "gen")
    ops = Ops(b)
    result = ops.retry(JobFilter(states=FAILED, queues=("r",)))
    assert result.changed == 100
    check(b)
    assert r.hget("resque:qadmin:failed:index", "gen") == gen, "marks in place move counts, not positions"
    assert failed_counts(b) == {"q": 100}
    # a delete removes entries: positions move, the index is dropped and rebuilt
    ids = [str(j.id) for j in b.find(JobFilter(states=FAILED, queues=("q",)), utcnow(), limit=3).jobs]
    assert ops.delete(JobFilter(ids=tuple(ids))).changed == 3
    check(b)
    assert failed_counts(b) == {"q": 97}


def test_retry_with_removal_drops_the_index(redis_url: str, r: redis.Redis) -> None:
    b = RedisBackend(redis_url, BackendOptions(), failed_on_retry="remove")
    try:
        ruby_failures(r, 0, 50)
        ruby_failures(r, 50, 50, "r")
        check(b)
        assert Ops(b).retry(JobFilter(states=FAILED, queues=("q",))).changed == 50
        check(b)
        assert failed_counts(b) == {"r": 50}
    finally:
        b.close()


def _append_failures(url: str, start: int, n: int) -> None:
    client = redis.Redis.from_url(url)
    for i in range(start, start + n, 10):
        client.rpush("resque:failed", *[failure(j, "q" if j % 2 else "r") for j in range(i, i + 10)])


def test_appends_from_another_process_while_a_retry_runs(b: RedisBackend, r: redis.Redis, redis_url: str) -> None:
    ruby_failures(r, 0, 3000, "billing")
    ruby_failures(r, 3000, 3000, "q")
    check(b, ("billing", "q"))
    writer = multiprocessing.get_context("spawn").Process(target=_append_failures, args=(redis_url, 10_000, 3000))
    writer.start()
    try:
        result = Ops(b).retry(JobFilter(states=FAILED, queues=("billing",)))
    finally:
        writer.join(60)
    assert writer.exitcode == 0
    assert result.changed == 3000
    check(b, ("billing", "q", "r"))
    assert failed_counts(b) == {"q": 3000 + 1500, "r": 1500}
    assert r.llen("resque:queue:billing") == 3000


def test_the_index_lives_in_qadmins_keys_only(b: RedisBackend, r: redis.Redis) -> None:
    ruby_failures(r, 0, 10)
    before = r.lrange("resque:failed", 0, -1)
    check(b)
    assert r.lrange("resque:failed", 0, -1) == before, "Resque's entries are never written to"
    assert all(k.startswith(b"resque:qadmin:") or not k.startswith(b"resque:qadmin") for k in r.keys("*"))
    assert {k for k in r.keys("resque:*") if not k.startswith(b"resque:qadmin:")} == {b"resque:failed"}


def test_a_partly_built_index_and_the_list_answer_together(
    b: RedisBackend, r: redis.Redis, small_windows: None
) -> None:
    ruby_failures(r, 0, 60)
    ruby_failures(r, 60, 40, "r")
    r.rpush("resque:failed", failure(70, "r"), failure(70, "r"))
    built = []
    for step in range(12):
        check(b)  # each read advances the index by a few windows: built part and list part meet anywhere
        built.append(int(r.hget("resque:qadmin:failed:index", "n") or 0))
        if step == 5:
            r.lset("resque:failed", 20, "__delete__")
            r.lrem("resque:failed", 1, "__delete__")
            ruby_failures(r, 200, 9, "q")
    assert min(built) < r.llen("resque:failed") == built[-1], built
    assert failed_counts(b) == {"q": 68, "r": 42}
