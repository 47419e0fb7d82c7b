"""The Redis redis_backend reads and writes Resque's, php-resque's and resque-scheduler's data byte for
byte (docs/compatibility.md §1–§3, §7, §8). Data written by those systems is planted exactly as
docs/compatibility.md shows it, against a real redis-server."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import redis

from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend
from qadmin.backends.redis.entries import split_error
from qadmin.backends.redis.json_text import members, parse_time, with_members, without
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, WorkerInfo, utcnow
from qadmin.ops import Ops

pytestmark = pytest.mark.redis

# --- the layouts of docs/compatibility.md, verbatim ------------------------------------------
RUBY_FAILURE = (
    '{"failed_at":"2026/11/22 08:41:11 UTC","payload":{"class":"Archive","args":[36,"bad"]},'
    '"exception":"ArgumentError","error":"boom 36",'
    '"backtrace":["/srv/app/jobs/archive.rb:10:in `perform\'"],'
    '"worker":"web1:16495:file_serve","queue":"file_serve"}'
)
PHP_PAYLOAD = (
    '{"class":"My_Job","args":[{"path":"\\/data\\/in.csv","name":"\\u00e9"}],'
    '"id":"48816519aaa5034aeac8e18728917051","queue_time":1795336967.270938}'
)
PHP_FORK_PAYLOAD = (
    '{"class":"My_Job","args":[{"a":1}],"id":"674bf373172c6a426dbbc0a07d97df58","prefix":"tenant1",'
    '"queue_time":1795336978.384153}'
)
PHP_FAILURE = (
    '{"failed_at":"Sun Nov 22 08:42:47 UTC 2026","payload":' + PHP_PAYLOAD + ',"exception":"RuntimeException",'
    '"error":"boom \\/x","backtrace":["#0 {main}"],"worker":"web1:18616:default","queue":"default"}'
)
PHP_FORK_FAILURE = (
    '{"failed_at":"2026-11-22T08:42:58+00:00","payload":' + PHP_FORK_PAYLOAD + ',"exception":'
    '"RuntimeException","error":"boom","backtrace":["#0 {main}"],"worker":"web1:1:default",'
    '"queue":"default"}'
)
RUBY_WORKER_JOB = (
    '{"queue":"file_serve","run_at":"2026-11-22T08:41:11Z","payload":{"class":"Archive","args":[36,"bad"]}}'
)
ACTIVE_JOB = (
    '{"class":"ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper","args":[{"job_class":"GuestsCleanupJob",'
    '"job_id":"d8f5f5ff-51f8-43d0-a714-a703b4de944b","provider_job_id":null,"queue_name":"maintenance",'
    '"priority":null,"arguments":["guest",42,{"flag":true,"x":1,"_aj_symbol_keys":["flag"]}],"executions":0,'
    '"exception_executions":{},"locale":"en","timezone":null,"enqueued_at":"2026-11-22T08:43:10Z"}]}'
)
SCHEDULED_ITEM = '{"class":"Archive","args":[35,"tar"],"queue":"file_serve"}'
PHP_SCHEDULED_ITEM = '{"class":"My_Job","args":[{"b":1}],"queue":"default"}'
RUBY_DATE = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d UTC")


def plant_queue(r: redis.Redis, queue: str, *payloads: str) -> None:
    for p in payloads:
        r.rpush(f"resque:queue:{queue}", p)
    r.sadd("resque:queues", queue)


# --- what qadmin writes -----------------------------------------------------------------------
def test_an_enqueued_job_is_a_resque_payload_pushed_with_its_queue(redis_backend: RedisBackend, r: redis.Redis) -> None:
    job = redis_backend.enqueue(NewJob("Archive", [35, "tar/é"], queue="file_serve"))
    assert r.smembers("resque:queues") == {b"file_serve"}
    [raw] = r.lrange("resque:queue:file_serve", 0, -1)
    # Resque.encode({"class" => "Archive", "args" => [35, "tar/é"]}) to the byte: class and args in
    # that order, compact, raw UTF-8, "/" unescaped, and nothing of qadmin's
    # (docs/compatibility.md §1.1, §1.3)
    assert raw == '{"class":"Archive","args":[35,"tar/é"]}'.encode()
    assert job.queue == "file_serve" and str(job.id).startswith("file_serve:")


def test_kwargs_and_options_follow_class_and_args(redis_backend: RedisBackend, r: redis.Redis) -> None:
    redis_backend.enqueue(NewJob("x.y", [1], {"k": "v"}, queue="q", max_attempts=3))
    payload = json.loads(r.lindex("resque:queue:q", 0))
    assert list(payload)[:4] == ["class", "args", "kwargs", "max_attempts"]


def test_a_later_job_is_written_in_resque_scheduler_layout(redis_backend: RedisBackend, r: redis.Redis) -> None:
    at = utcnow() + timedelta(hours=1)
    job = redis_backend.enqueue(NewJob("Archive", [35, "tar"], queue="file_serve", run_at=at))
    ts = int(at.timestamp())
    [item] = r.lrange(f"resque:delayed:{ts}", 0, -1)
    assert item.startswith(b'{"class":"Archive","args":[35,"tar"],') and item.endswith(b',"queue":"file_serve"}')
    assert r.smembers(b"resque:timestamps:" + item) == {f"delayed:{ts}".encode()}
    assert r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True) == [(str(ts).encode(), float(ts))]
    assert not r.exists("resque:queue:file_serve")
    assert redis_backend.get(job.id, utcnow()).state is JobState.SCHEDULED


def test_a_permanent_failure_is_a_resque_failure_entry(redis_backend: RedisBackend, r: redis.Redis) -> None:
    redis_backend.register_worker(
        WorkerInfo(
            name="host:web1 pid:7",
            host="web1",
            pid=7,
            queues=["file_serve"],
            started_at=utcnow(),
            heartbeat_at=utcnow(),
        )
    )
    redis_backend.enqueue(NewJob("Archive", [36, "bad"], queue="file_serve"))
    now = utcnow()
    job = redis_backend.claim(["file_serve"], "host:web1 pid:7", now, 3600, lambda j: True)
    assert job is not None
    redis_backend.fail(
        job, "host:web1 pid:7", now, "ArgumentError: boom 36\n/srv/app/jobs/archive.rb:10:in `perform'", None
    )
    [raw] = r.lrange("resque:failed", 0, -1)
    entry = json.loads(raw)
    assert list(entry) == ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]
    assert RUBY_DATE.fullmatch(entry["failed_at"])
    assert entry["exception"] == "ArgumentError" and entry["error"] == "boom 36"
    assert entry["backtrace"] == ["/srv/app/jobs/archive.rb:10:in `perform'"]
    assert entry["worker"] == "web1-qadmin:7:file_serve" and entry["queue"] == "file_serve"
    assert entry["payload"]["class"] == "Archive" and entry["payload"]["args"] == [36, "bad"]
    assert entry["payload"]["attempts"] == 1
    assert r.get("resque:stat:processed") == b"1" and r.get("resque:stat:failed") == b"1"
    assert r.get("resque:stat:failed:web1-qadmin:7:file_serve") == b"1"
    # the error reads back the way the worker wrote it
    got = redis_backend.get(job.id, utcnow())
    assert got.state is JobState.FAILED
    assert got.last_error == "ArgumentError: boom 36\n/srv/app/jobs/archive.rb:10:in `perform'"


def test_a_registered_worker_is_a_resque_worker_while_busy(redis_backend: RedisBackend, r: redis.Redis) -> None:
    name = "host:web1 pid:9"
    now = datetime(2026, 11, 22, 8, 41, 11, tzinfo=UTC)
    redis_backend.register_worker(
        WorkerInfo(name=name, host="web1", pid=9, queues=["a", "b"], started_at=now, heartbeat_at=now)
    )
    rid = "web1-qadmin:9:a,b"  # a distinct host part keeps Resque's pruners away (rule 16)
    assert r.smembers("resque:workers") == {rid.encode()}
    assert r.get(f"resque:worker:{rid}:started") == b"2026-11-22 08:41:11 +0000"
    assert r.hget("resque:workers:heartbeat", rid) == b"2026-11-22T08:41:11+00:00"
    assert not r.exists(f"resque:worker:{rid}")  # absent while idle
    redis_backend.enqueue(NewJob("Archive", [36, "bad"], queue="b"))
    payload = r.lindex("resque:queue:b", 0).decode()
    job = redis_backend.claim(["a", "b"], name, now, 3600, lambda j: True)
    assert job is not None
    assert r.get(f"resque:worker:{rid}").decode() == (
        '{"queue":"b","run_at":"2026-11-22T08:41:11Z","payload":' + payload + "}"
    )
    redis_backend.complete(job, name, now, 0.1)
    assert not r.exists(f"resque:worker:{rid}")
    assert r.get("resque:stat:processed") == b"1" and r.get(f"resque:stat:processed:{rid}") == b"1"
    redis_backend.unregister_worker(name)
    for key in (f"resque:worker:{rid}:started", f"resque:stat:processed:{rid}"):
        assert not r.exists(key)
    assert not r.smembers("resque:workers") and not r.hgetall("resque:workers:heartbeat")


def test_qadmin_keeps_its_own_keys_out_of_resque_queues(redis_backend: RedisBackend, r: redis.Redis) -> None:
    ops = Ops(redis_backend)
    redis_backend.enqueue(NewJob("Archive", [1], queue="q"))
    redis_backend.claim(["q"], "w", utcnow(), 3600, lambda j: True)
    ops.pause("q")
    ops.retry(JobFilter(states=frozenset({JobState.FAILED})))
    queue_keys = {k.decode() for k in r.keys("resque:queue:*")}
    assert queue_keys <= {"resque:queue:q"}
    assert r.smembers("resque:queues") == {b"q"}
    private = {k for k in r.keys("*") if b"qadmin:" in k}
    assert private and all(k.startswith(b"resque:qadmin:") for k in private)


# --- what Ruby and PHP wrote ------------------------------------------------------------------
def test_resque_and_php_resque_data_lists_with_its_fields(redis_backend: RedisBackend, r: redis.Redis) -> None:
    plant_queue(r, "default", PHP_PAYLOAD, PHP_FORK_PAYLOAD)
    plant_queue(r, "maintenance", ACTIVE_JOB)
    for entry in (RUBY_FAILURE, PHP_FAILURE, PHP_FORK_FAILURE):
        r.rpush("resque:failed", entry)
    now = utcnow()
    # the same php-resque job is both pending and failed here: two entries, two ids
    jobs = {(j.id, j.state): j for j in redis_backend.find(JobFilter(), now, limit=100).jobs}
    assert len(jobs) == 6
    php = jobs["default:48816519aaa5034aeac8e18728917051", JobState.PENDING]
    [failed] = [j for (i, state), j in jobs.items() if state is JobState.FAILED and j.meta.get("id") == php.meta["id"]]
    # the failure entry is a stored job of its own: the pending one keeps the plain id
    assert failed.failed_at is not None and str(failed.id).startswith("default:48816519aaa5034aeac8e18728917051@f")
    assert php.state is JobState.PENDING and php.class_name == "My_Job"
    assert php.args == [{"path": "/data/in.csv", "name": "é"}]
    assert php.format == "php-resque" and php.raw == PHP_PAYLOAD
    assert php.created_at == datetime.fromtimestamp(1795336967.270938, UTC)
    aj = [j for j in jobs.values() if j.queue == "maintenance"][0]
    assert aj.created_at == datetime(2026, 11, 22, 8, 43, 10, tzinfo=UTC)
    failed = redis_backend.find(JobFilter(states=frozenset({JobState.FAILED})), now, limit=10).jobs
    by_class = {(j.class_name, j.failed_at) for j in failed}
    assert by_class == {
        ("Archive", datetime(2026, 11, 22, 8, 41, 11, tzinfo=UTC)),
        ("My_Job", datetime(2026, 11, 22, 8, 42, 47, tzinfo=UTC)),
        ("My_Job", datetime(2026, 11, 22, 8, 42, 58, tzinfo=UTC)),
    }
    ruby = [j for j in failed if j.class_name == "Archive"][0]
    assert ruby.last_error == "ArgumentError: boom 36\n/srv/app/jobs/archive.rb:10:in `perform'"
    assert ruby.meta["worker"] == "web1:16495:file_serve"
    assert redis_backend.count(JobFilter(states=frozenset({JobState.FAILED}), queues=("default",)), now) == 2
    groups = {g.error: g.count for g in redis_backend.error_groups(JobFilter(), now)}
    assert groups == {"ArgumentError: boom 36": 1, "RuntimeException: boom /x": 1, "RuntimeException: boom": 1}


def test_php_ids_address_php_jobs_wherever_they_are(redis_backend: RedisBackend, r: redis.Redis) -> None:
    r.rpush("resque:failed", PHP_FAILURE)
    job = redis_backend.get("default:48816519aaa5034aeac8e18728917051", utcnow())
    assert job.state is JobState.FAILED
    # a bare id (no queue) and a prefix find it too
    assert redis_backend.get("48816519aaa5034aeac8e18728917051", utcnow()).id == job.id
    assert redis_backend.get("default:48816519aa", utcnow()).id == job.id


def test_retry_requeues_the_whole_payload_and_marks_the_entry(redis_backend: RedisBackend, r: redis.Redis) -> None:
    r.rpush("resque:failed", RUBY_FAILURE, PHP_FAILURE)
    now = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
    result = Ops(redis_backend, clock=lambda: now).retry(JobFilter(states=frozenset({JobState.FAILED})))
    assert (result.matched, result.changed) == (2, 2)
    # unknown fields (php-resque id, queue_time) and PHP's escapes are kept (rule 6)
    assert r.lrange("resque:queue:default", 0, -1) == [PHP_PAYLOAD.encode()]
    assert r.lrange("resque:queue:file_serve", 0, -1) == [b'{"class":"Archive","args":[36,"bad"]}']
    assert r.smembers("resque:queues") == {b"default", b"file_serve"}
    # the entries stay, marked as resque-web marks them, every other byte untouched
    ruby, php = r.lrange("resque:failed", 0, -1)
    assert ruby.decode() == RUBY_FAILURE[:-1] + ',"retried_at":"2026/11/23 09:00:00 UTC"}'
    assert php.decode() == PHP_FAILURE[:-1] + ',"retried_at":"2026/11/23 09:00:00 UTC"}'
    assert redis_backend.count(JobFilter(states=frozenset({JobState.FAILED})), now) == 0
    # a retried entry is history, in no state: the job is the pending one (finished = completed)
    assert redis_backend.count(JobFilter(states=frozenset({JobState.FINISHED})), now) == 0
    assert redis_backend.count(JobFilter(states=frozenset(JobState)), now) == 2
    # the job's id now names the pending job
    assert redis_backend.get("default:48816519aaa5034aeac8e18728917051", now).state is JobState.PENDING


def test_retry_can_remove_the_failure_entry_instead(redis_url: str, r: redis.Redis) -> None:
    r.rpush("resque:failed", RUBY_FAILURE, PHP_FAILURE)
    redis_backend = RedisBackend(redis_url + "?failed_on_retry=remove", BackendOptions())
    ids = [j.id for j in redis_backend.find(JobFilter(states=frozenset({JobState.FAILED})), utcnow(), limit=5).jobs]
    assert len(redis_backend.retry(ids[:1], utcnow())) == 1
    assert r.lrange("resque:failed", 0, -1) == [PHP_FAILURE.encode()]
    assert redis_backend.retry(ids[1:], utcnow(), remove=False) == [ids[1]]
    assert r.llen("resque:failed") == 1 and b"retried_at" in r.lindex("resque:failed", 0)


@pytest.mark.parametrize(
    "old, expected_keys",
    [
        ('{"status":3,"updated":1795336970}', ["status", "updated"]),  # chrisboulton
        (
            '{"status":3,"updated":1795336970,"started":1795336968,"result":null}',
            ["status", "updated", "started", "result"],
        ),  # resque/php-resque
    ],
)
def test_retry_sets_an_existing_php_status_back_to_waiting(
    redis_backend: RedisBackend, r: redis.Redis, old: str, expected_keys: list[str]
) -> None:
    r.rpush("resque:failed", PHP_FAILURE, PHP_FORK_FAILURE)
    r.set("resque:job:48816519aaa5034aeac8e18728917051:status", old, ex=86400)
    redis_backend.retry(
        [j.id for j in redis_backend.find(JobFilter(states=frozenset({JobState.FAILED})), utcnow(), limit=5).jobs],
        utcnow(),
    )
    status = json.loads(r.get("resque:job:48816519aaa5034aeac8e18728917051:status"))
    assert list(status) == expected_keys and status["status"] == 1
    if "started" in status:
        assert status["started"] == 1795336968
    assert r.ttl("resque:job:48816519aaa5034aeac8e18728917051:status") == -1
    # PHP never creates a missing status key, and neither does qadmin (rule 6)
    assert not r.exists("resque:job:tenant1_674bf373172c6a426dbbc0a07d97df58:status")
    shown = redis_backend.get("default:48816519aaa5034aeac8e18728917051", utcnow())
    assert shown.meta["status"]["status"] == 1


def test_dequeue_matches_decoded_args_so_php_escapes_match(redis_backend: RedisBackend, r: redis.Redis) -> None:
    plant_queue(r, "default", PHP_PAYLOAD, '{"class":"My_Job","args":[{"path":"/other"}]}', PHP_FORK_PAYLOAD)
    result = Ops(redis_backend).dequeue("default", "My_Job", [{"path": "/data/in.csv", "name": "é"}])
    assert (result.matched, result.changed) == (1, 1)
    assert r.lrange("resque:queue:default", 0, -1) == [
        b'{"class":"My_Job","args":[{"path":"/other"}]}',
        PHP_FORK_PAYLOAD.encode(),
    ]


def test_a_ruby_workers_job_is_locked_and_unlocked_to_the_head(redis_backend: RedisBackend, r: redis.Redis) -> None:
    rid = "web1:16495:file_serve"
    r.sadd("resque:workers", rid)
    r.set(f"resque:worker:{rid}", RUBY_WORKER_JOB)
    r.set(f"resque:worker:{rid}:started", "2026-11-22 08:41:11 +0000")
    r.hset("resque:workers:heartbeat", rid, "2026-11-22T08:41:11+00:00")
    r.set(f"resque:stat:processed:{rid}", 5)
    plant_queue(r, "file_serve", '{"class":"Archive","args":[37,"next"]}')
    now = datetime(2026, 11, 22, 8, 42, 0, tzinfo=UTC)
    [held] = redis_backend.find(JobFilter(states=frozenset({JobState.LOCKED})), now, limit=5).jobs
    assert (held.class_name, held.args, held.locked_by) == ("Archive", [36, "bad"], rid)
    assert held.locked_at == datetime(2026, 11, 22, 8, 41, 11, tzinfo=UTC) and not held.stale
    [w] = redis_backend.workers(now)
    assert (w.name, w.host, w.pid, w.queues, w.processed, w.current_job) == (
        rid,
        "web1",
        16495,
        ["file_serve"],
        5,
        held.id,
    )
    # ten minutes without a heartbeat: the worker is dead, its job goes back to the head of its queue
    later = now + timedelta(minutes=10)
    result = Ops(redis_backend, clock=lambda: later).unlock(stale=True)
    assert (result.matched, result.changed) == (1, 1)
    assert r.lrange("resque:queue:file_serve", 0, -1) == [
        b'{"class":"Archive","args":[36,"bad"]}',
        b'{"class":"Archive","args":[37,"next"]}',
    ]
    for key in (f"resque:worker:{rid}", f"resque:worker:{rid}:started", f"resque:stat:processed:{rid}"):
        assert not r.exists(key)
    assert not r.sismember("resque:workers", rid) and not r.hexists("resque:workers:heartbeat", rid)


def test_delayed_items_of_ruby_and_php_schedulers_are_listed_and_moved(
    redis_backend: RedisBackend, r: redis.Redis
) -> None:
    r.rpush("resque:delayed:1795336967", SCHEDULED_ITEM, PHP_SCHEDULED_ITEM)
    r.sadd(b"resque:timestamps:" + SCHEDULED_ITEM.encode(), "delayed:1795336967")  # php writes no such set
    r.zadd("resque:delayed_queue_schedule", {"1795336967": 1795336967})
    before = datetime.fromtimestamp(1795336967 - 10, UTC)
    jobs = redis_backend.find(JobFilter(), before, limit=10).jobs
    assert {(j.queue, j.state, j.class_name) for j in jobs} == {
        ("file_serve", JobState.SCHEDULED, "Archive"),
        ("default", JobState.SCHEDULED, "My_Job"),
    }
    assert redis_backend.move_due(before) == 0
    after = datetime.fromtimestamp(1795336967, UTC)
    assert redis_backend.move_due(after) == 2
    # as resque-scheduler enqueues them: {"class","args"} on the item's queue (docs/compatibility.md §2.2)
    assert r.lrange("resque:queue:file_serve", 0, -1) == [b'{"class":"Archive","args":[35,"tar"]}']
    assert r.lrange("resque:queue:default", 0, -1) == [b'{"class":"My_Job","args":[{"b":1}]}']
    assert not r.exists("resque:delayed:1795336967") and not r.zcard("resque:delayed_queue_schedule")
    assert not r.keys("resque:timestamps:*")
    # the job kept its id through the move
    assert {j.id for j in jobs} == {j.id for j in redis_backend.find(JobFilter(), after, limit=10).jobs}


@pytest.mark.parametrize(
    "raw, where",
    [
        ("not json at all", "queue"),
        ('{"class":"Archive","args":[1,', "queue"),
        ('{"failed_at":"2026/11/22 08:41:11 UTC","exception":"X","error":"no payload","queue":"q"}', "failed"),
        ("{truncated failure", "failed"),
    ],
)
def test_undecodable_entries_list_as_such_and_can_be_deleted(
    redis_backend: RedisBackend, r: redis.Redis, raw: str, where: str
) -> None:
    ok = '{"class":"Archive","args":[2]}'
    if where == "queue":
        plant_queue(r, "q", raw, ok)
    else:
        r.rpush("resque:failed", raw, RUBY_FAILURE)
    now = utcnow()
    jobs = redis_backend.find(JobFilter(), now, limit=10).jobs
    bad = [j for j in jobs if j.undecodable]
    assert len(bad) == 1 and len(jobs) == 2
    assert bad[0].raw == raw
    assert bad[0].to_dict()["undecodable"]
    assert redis_backend.count(JobFilter(undecodable=True), now) == 1
    # a worker never claims it, and it stays where it is
    assert redis_backend.claim(["q"], "w", now, 3600, lambda j: j.decodable and j.args == [99]) is None
    result = Ops(redis_backend).delete(JobFilter(ids=(bad[0].id,)))
    assert result.changed == 1
    key = "resque:queue:q" if where == "queue" else "resque:failed"
    assert raw.encode() not in r.lrange(key, 0, -1) and r.llen(key) == 1
    if where == "failed":
        assert Ops(redis_backend).retry(JobFilter(undecodable=True, states=frozenset({JobState.FAILED}))).changed == 0


# --- pure helpers ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026/11/22 08:41:11 UTC", datetime(2026, 11, 22, 8, 41, 11, tzinfo=UTC)),
        ("Sun Nov 22 08:42:47 UTC 2026", datetime(2026, 11, 22, 8, 42, 47, tzinfo=UTC)),
        ("2026-11-22T08:42:58+00:00", datetime(2026, 11, 22, 8, 42, 58, tzinfo=UTC)),
        ("2026/11/22 08:41:11", datetime(2026, 11, 22, 8, 41, 11, tzinfo=UTC)),  # retried_at before Resque 3
        ("2026-11-22 08:41:11 +0000", datetime(2026, 11, 22, 8, 41, 11, tzinfo=UTC)),  # Time#to_s
        ("2026-11-22T08:41:11Z", datetime(2026, 11, 22, 8, 41, 11, tzinfo=UTC)),
        ("2026/11/22 09:41:11 CET", datetime(2026, 11, 22, 8, 41, 11, tzinfo=UTC)),
        ("Sun Nov 22 03:42:47 EST 2026", datetime(2026, 11, 22, 8, 42, 47, tzinfo=UTC)),
        (1795336967.5, datetime.fromtimestamp(1795336967.5, UTC)),
        ("yesterday", None),
    ],
)
def test_every_date_format_in_a_failed_list_parses(text: object, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_member_surgery_keeps_every_other_byte() -> None:
    text = PHP_FAILURE
    assert members(text) is not None and list(members(text) or {})[1] == "payload"
    assert with_members(text, {"retried_at": "x"}) == text[:-1] + ',"retried_at":"x"}'
    assert without('{"class":"A","args":[1],"queue":"q"}', ["queue"]) == '{"class":"A","args":[1]}'
    assert without(text, ["nope"]) is text
    assert members('{"a":1} trailing') is None and members("[1]") is None


@pytest.mark.parametrize(
    "error, expected",
    [
        ("KeyError: 'x'\nTraceback", ("KeyError", "'x'", ["Traceback"])),
        ("Resque::DirtyExit: Job still being processed", ("Resque::DirtyExit", "Job still being processed", [])),
        ("card declined: nope", ("", "card declined: nope", [])),
    ],
)
def test_errors_split_into_resque_fields(error: str, expected: tuple[str, str, list[str]]) -> None:
    assert split_error(error) == expected
