"""The Redis redis_backend's admin verbs on many jobs: bulk retry in runs (`requeue_failed.lua`), the
merged count script, quick readings of failure entries, and previews that search once. Each
quick path is checked against the general one it stands for. Real redis-server throughout."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis

from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend
from qadmin.backends.redis.json_text import with_members
from qadmin.backends.redis.payloads import requeue_bytes
from qadmin.backends.redis.records import failed_rec, failed_slim
from qadmin.backends.redis.view import View
from qadmin.codecs import UNDECODABLE
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.ops import SAMPLE_SIZE, Ops
from tests.backends.test_redis_backend import Spy, failure

pytestmark = pytest.mark.redis
FAILED = frozenset({JobState.FAILED})
NOOP = "qadmin.examples.noop"


def odd_failures() -> list[bytes]:
    """Failure entries of every shape the writers produce, and some they should not."""
    entries = [failure(i, queue="q" if i % 2 else "r") for i in range(40)]
    entries += [
        # php-resque: escaped slashes, an embedded id, unicode escapes, keys in another order
        '{"failed_at":"Sun Nov 22 08:42:47 UTC 2026","payload":{"class":"App\\/Jobs\\/Mail","args":[{"to":"\\u00e9"}],'
        '"id":"48816519aaa5034aeac8e18728917051","queue_time":1795336967.27},"exception":"Exception","error":"x",'
        '"backtrace":[],"worker":"php:1:q","queue":"q"}',
        # qadmin's bookkeeping in the payload (dropped from the requeued job)
        '{"failed_at":"2026/11/22 08:41:11 UTC","payload":{"class":"Archive","args":[1],"attempts":3,'
        '"last_error":"boom"},"exception":"E","error":"y","backtrace":[],"worker":"w","queue":"q"}',
        # whitespace before the closing brace, raw UTF-8, an error mentioning retried_at
        '{"failed_at":"2026/11/22 08:41:11 UTC","payload":{"class":"Archive","args":["h\u00e9"]},'
        '"exception":"E","error":"\\"retried_at\\" was wrong","backtrace":[],"worker":"w","queue":"q" }',
        # queue not the last member; payload first
        '{"payload":{"class":"Archive","args":[2]},"queue":"r","failed_at":"2026/11/22 08:41:11 UTC",'
        '"exception":"E","error":"z"}',
        # already retried (history, in no state: not retried again), retried_at null (still failed)
        '{"failed_at":"2026/11/22 08:41:11 UTC","payload":{"class":"Archive","args":[3]},"exception":"E",'
        '"error":"z","backtrace":[],"worker":"w","queue":"q","retried_at":"2026/11/22 09:00:00 UTC"}',
        '{"failed_at":"2026/11/22 08:41:11 UTC","payload":{"class":"Archive","args":[4]},"exception":"E",'
        '"error":"z","backtrace":[],"worker":"w","queue":"r","retried_at":null}',
        # a queue name that needs escapes, and one with a payload that mentions a queue
        '{"failed_at":"2026/11/22 08:41:11 UTC","payload":{"class":"Archive","args":["\\",\\"queue\\":\\"x"]},'
        '"exception":"E","error":"z","backtrace":[],"worker":"w","queue":"we\\"ird"}',
        # no payload, a payload that is not an object, not JSON, not an object
        '{"failed_at":"2026/11/22 08:41:11 UTC","exception":"E","error":"gone","queue":"q"}',
        '{"failed_at":"2026/11/22 08:41:11 UTC","payload":"Archive","exception":"E","error":"s","queue":"q"}',
        '{"failed_at": not json,"queue":"q"}',
        '["a","list"]',
    ]
    return [e.encode("utf-8") for e in entries]


def test_bulk_retry_keeps_every_byte_of_every_entry_and_payload(redis_backend: RedisBackend, r: redis.Redis) -> None:
    entries = odd_failures() * 30  # equal entries too: each is retried once, in order
    r.rpush("resque:failed", *entries)
    r.set("resque:job:48816519aaa5034aeac8e18728917051:status", '{"status":4,"updated":1}')
    now = utcnow()
    result = Ops(redis_backend, clock=lambda: now).retry(JobFilter(states=FAILED))
    stamp = now.strftime("%Y/%m/%d %H:%M:%S UTC")
    expected_entries, expected_pushes = [], {}
    for raw in entries:
        rec = failed_rec("f", raw, 0)
        if rec.job.state is not JobState.FAILED or rec.payload is None:
            expected_entries.append(raw)
            continue
        seen = {} if b'"retried_at"' not in raw else None
        expected_entries.append(with_members(raw.decode(), {"retried_at": stamp}, obj=seen).encode())
        expected_pushes.setdefault(rec.job.queue, []).append(requeue_bytes(rec.payload))
    # entries with nothing to re-enqueue (no payload) are matched but skipped, as one at a time
    assert result.matched == sum(failed_rec("f", raw, 0).job.state is JobState.FAILED for raw in entries)
    assert result.changed == sum(len(v) for v in expected_pushes.values())
    assert r.lrange("resque:failed", 0, -1) == expected_entries
    for queue, pushes in expected_pushes.items():
        assert r.lrange(f"resque:queue:{queue}", 0, -1) == pushes
    assert {q.decode() for q in r.smembers("resque:queues")} == set(expected_pushes)
    status = json.loads(r.get("resque:job:48816519aaa5034aeac8e18728917051:status"))
    assert status["status"] == 1  # php-resque's status key follows, as before


def test_bulk_retry_with_removal_removes_exactly_the_retried_entries(redis_url: str, r: redis.Redis) -> None:
    entries = odd_failures() * 30
    r.rpush("resque:failed", *entries)
    b = RedisBackend(redis_url + "?failed_on_retry=remove", BackendOptions())
    result = Ops(b).retry(JobFilter(states=FAILED, queues=("q",)))
    kept = [
        raw
        for raw in entries
        if not (
            (rec := failed_rec("f", raw, 0)).job.state is JobState.FAILED
            and rec.payload is not None
            and rec.job.queue == "q"
        )
    ]
    assert result.changed == len(entries) - len(kept)
    assert r.lrange("resque:failed", 0, -1) == kept
    b.close()


def test_entries_that_changed_between_preview_and_apply_are_skipped(
    redis_backend: RedisBackend, r: redis.Redis
) -> None:
    r.rpush("resque:failed", *[failure(i) for i in range(3000)])
    ops = Ops(redis_backend)
    preview = ops.preview("retry", JobFilter(states=FAILED))
    assert preview.count == 3000
    # meanwhile: one entry is retried by resque-web, one removed, and a new failure shifts every index
    r.lset("resque:failed", 10, failure(10)[:-1] + ',"retried_at":"2026/11/23 10:00:00 UTC"}')
    r.lrem("resque:failed", 1, failure(2500))
    r.lpush("resque:failed", failure(99999, queue="new"))
    result = ops.apply(preview)
    assert (result.matched, result.changed) == (3000, 2998)
    skipped = {str(i) for i, _ in result.skipped}
    assert skipped == {str(preview.ids[10]), str(preview.ids[2500])}
    assert r.llen("resque:queue:q") == 2998 and not r.exists("resque:queue:new")
    assert r.lindex("resque:failed", 0) == failure(99999, queue="new").encode()
    assert redis_backend.count(JobFilter(states=FAILED), utcnow()) == 1


def test_merged_count_script_counts_as_the_listing_reads(redis_backend: RedisBackend, r: redis.Redis) -> None:
    r.rpush("resque:failed", *odd_failures())
    now = utcnow()
    redis_backend.enqueue_many(
        [NewJob(NOOP, [i], queue=f"d{i % 2}", run_at=now + timedelta(seconds=600 * (i % 3) - 300)) for i in range(12)]
    )
    # resque-scheduler items: the queue last, not last, missing, and one that is not JSON
    ts = int(now.timestamp()) - 60
    r.rpush(
        f"resque:delayed:{ts}",
        '{"queue":"d0","class":"Archive","args":[]}',
        '{"class":"Archive","args":[1]}',
        '{"class":"Archive","args":[2],"queue":"d\\u0031"}',
        "garbage",
    )
    r.zadd("resque:delayed_queue_schedule", {str(ts): ts})
    counts = redis_backend.counter.counts(now)
    by_listing: dict[tuple[str, str], int] = {}
    view = View(redis_backend.server, now)
    for _pos, rec in view.walk(JobFilter(states=frozenset(JobState)), "id", None):
        key = (rec.job.queue or "", rec.job.state.value)
        by_listing[key] = by_listing.get(key, 0) + 1
    by_script = {(q, s): n for q, c in counts.items() for s, n in c.items() if n and s != "stale"}
    assert by_script == by_listing


def test_quick_readings_of_failure_entries_equal_the_full_ones(redis_backend: RedisBackend, r: redis.Redis) -> None:
    entries = odd_failures()
    for i, raw in enumerate(entries):
        full, slim = failed_rec("f", raw, i).slim(), failed_slim("f", raw, i)
        assert (slim.job, slim.token, slim.payload, slim.kind, slim.index) == (
            full.job,
            full.token,
            full.payload,
            full.kind,
            full.index,
        )
    r.rpush("resque:failed", *entries)
    now = utcnow()
    for selection in (JobFilter(), JobFilter(queues=("q",)), JobFilter(states=FAILED | {JobState.FINISHED})):
        quick = redis_backend.error_groups(selection, now)
        # a filter that matches the same jobs but takes the general path
        general = redis_backend.error_groups(JobFilter(**{**selection.__dict__, "search": ""}), now)
        assert quick == general
        assert quick


def test_class_filters_still_find_payloads_written_with_escapes(redis_backend: RedisBackend, r: redis.Redis) -> None:
    r.rpush(
        "resque:queue:q",
        '{"class":"\\u0041rchive","args":[1]}',
        '{"class":"Archive","args":[2]}',
        '{"class":"Other","args":[3]}',
        '{"class":"App\\/Mail","args":[4]}',
    )
    r.sadd("resque:queues", "q")
    now = utcnow()
    assert sorted(j.args[0] for j in redis_backend.find(JobFilter(class_name="Archive"), now, limit=10).jobs) == [1, 2]
    assert [j.args[0] for j in redis_backend.find(JobFilter(class_name="App/Mail"), now, limit=10).jobs] == [4]


def test_the_undecodable_class_name_finds_every_undecodable_entry(redis_backend: RedisBackend, r: redis.Redis) -> None:
    # what the consoles show as an undecodable job's class: a filter on it (the TUI's "same class")
    # must find them all, though no payload holds that name
    r.rpush("resque:queue:q", "not json", '{"class":"Archive","args":[1]}', "{broken")
    r.sadd("resque:queues", "q")
    now = utcnow()
    selection = JobFilter(class_name=UNDECODABLE)
    assert sorted(j.raw for j in redis_backend.find(selection, now, limit=10).jobs) == ["not json", "{broken"]
    assert redis_backend.count(selection, now) == 2


def test_a_preview_searches_once_and_its_sample_comes_from_its_ids(redis_backend: RedisBackend, r: redis.Redis) -> None:
    same = '{"class":"Newsletter","args":[7,"weekly"]}'
    r.rpush(
        "resque:queue:mailers", *[same if i % 10 == 0 else f'{{"class":"Other","args":[{i}]}}' for i in range(3000)]
    )
    r.sadd("resque:queues", "mailers")
    spy = Spy(redis_backend.client)
    ops = Ops(redis_backend)
    preview = ops.preview("dequeue", JobFilter(queues=("mailers",), class_name="Newsletter", args=(7, "weekly")))
    scans = [c for c in spy.calls if c[0] == "LRANGE"]
    assert preview.count == 300 and len(set(map(str, preview.ids))) == 300  # equal entries, each its own id
    assert len(scans) == 3000 // 500 + 1  # one pass over the queue, none for the sample
    assert len(preview.sample) == SAMPLE_SIZE and all(j.args == [7, "weekly"] for j in preview.sample)
    result = ops.apply(preview)
    assert (result.matched, result.changed) == (300, 300)
    assert len([c for c in spy.calls if c[0] == "LRANGE"]) == len(scans)  # nor for the apply
    assert r.llen("resque:queue:mailers") == 2700 and same.encode() not in r.lrange("resque:queue:mailers", 0, -1)


def test_queue_names_are_read_without_counting(redis_backend: RedisBackend, r: redis.Redis) -> None:
    r.sadd("resque:queues", "a", "b")
    redis_backend.pause("c", utcnow())
    ops = Ops(redis_backend)
    assert ops.queue_names() == ["a", "b", "c"]


def test_stats_counts_live_workers_as_the_worker_list_does(redis_backend: RedisBackend, r: redis.Redis) -> None:
    from qadmin.job import WorkerInfo

    now = utcnow()
    redis_backend.register_worker(
        WorkerInfo(name="host:a pid:1", host="a", pid=1, queues=["q"], started_at=now, heartbeat_at=now)
    )
    redis_backend.register_worker(
        WorkerInfo(
            name="host:b pid:2", host="b", pid=2, queues=["q"], started_at=now, heartbeat_at=now - timedelta(hours=3)
        )
    )
    # Resque workers: one beating, one silent for an hour, each holding a job
    for rid, beat in (("web1:10:q", now), ("web2:11:q", now - timedelta(hours=1))):
        r.sadd("resque:workers", rid)
        r.hset("resque:workers:heartbeat", rid, beat.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
        r.set(
            f"resque:worker:{rid}",
            json.dumps(
                {
                    "queue": "q",
                    "run_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "payload": {"class": "Archive", "args": [rid]},
                }
            ),
        )
    # holders of qadmin locks that never registered: one fresh, one expired
    redis_backend.enqueue_many([NewJob(NOOP, [i], queue="q") for i in range(2)])
    redis_backend.claim(["q"], "host:c pid:3", now, 3600, lambda j: True)
    redis_backend.claim(["q"], "host:d pid:4", now - timedelta(hours=5), 3600, lambda j: True)
    listed = redis_backend.workers(now)
    assert len(listed) == 6 and 0 < sum(not w.stale for w in listed) < 6
    assert redis_backend.stats(now).workers == sum(not w.stale for w in listed)
