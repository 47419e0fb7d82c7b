"""Edit (issue #16): one pending, scheduled or failed job's args, kwargs, queue, priority and
run_at, on SQLite, PostgreSQL and Redis; foreign rows keep their format or are refused
(docs/compatibility.md §1.3, §2.1, §4, §5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.errors import InvalidTransition, JobNotFound, UsageError
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, utcnow
from qadmin.model import JobEdit

NOOP = "qadmin.examples.noop"
ALWAYS = lambda job: True  # noqa: E731 - a claim that takes whatever comes first
HOUR = 3600.0


def enqueue(b: Backend, *args: object, **kw: Any) -> Job:
    return b.enqueue(NewJob(NOOP, list(args), **kw))


# --- qadmin's own jobs ------------------------------------------------------------------------
def test_args_and_kwargs_of_a_pending_job_are_edited_and_claimed_so(backend: Backend) -> None:
    job = enqueue(backend, 1, kwargs={"a": 1}, queue="q")
    after = backend.edit(job.id, JobEdit(args=[2, "é/x"], kwargs={"b": [1]}), utcnow())
    assert after.args == [2, "é/x"] and after.kwargs == {"b": [1]} and after.state is JobState.PENDING
    got = backend.get(after.id, utcnow())
    assert got.args == [2, "é/x"] and got.kwargs == {"b": [1]}
    claimed = backend.claim(["q"], "w1", utcnow(), HOUR, ALWAYS)
    assert claimed is not None and claimed.args == [2, "é/x"] and claimed.kwargs == {"b": [1]}


def test_a_queue_change_moves_the_job_to_the_other_queue(backend: Backend) -> None:
    job = enqueue(backend, 1, queue="q")
    after = backend.edit(job.id, JobEdit(queue="other"), utcnow())
    assert after.queue == "other"
    assert backend.claim(["q"], "w1", utcnow(), HOUR, ALWAYS) is None
    claimed = backend.claim(["other"], "w1", utcnow(), HOUR, ALWAYS)
    assert claimed is not None and claimed.args == [1]


def test_run_at_makes_a_pending_job_scheduled_and_back(backend: Backend) -> None:
    job = enqueue(backend, 1, queue="q")
    later = utcnow() + timedelta(hours=2)
    scheduled = backend.edit(job.id, JobEdit(run_at=later), utcnow())
    assert scheduled.state is JobState.SCHEDULED
    got = backend.get(scheduled.id, utcnow())
    assert got.state is JobState.SCHEDULED and got.run_at is not None
    assert abs((got.run_at - later).total_seconds()) < 1
    assert backend.claim(["q"], "w1", utcnow(), HOUR, ALWAYS) is None
    due = backend.edit(scheduled.id, JobEdit(run_at=utcnow() - timedelta(seconds=5), queue="q2"), utcnow())
    assert due.state is JobState.PENDING and due.queue == "q2"
    claimed = backend.claim(["q2"], "w1", utcnow(), HOUR, ALWAYS)
    assert claimed is not None and claimed.args == [1]


def test_a_scheduled_jobs_args_change_and_it_stays_scheduled(backend: Backend) -> None:
    job = enqueue(backend, 1, queue="q", run_at=utcnow() + timedelta(hours=1))
    after = backend.edit(job.id, JobEdit(args=[5]), utcnow())
    assert after.state is JobState.SCHEDULED and after.args == [5]
    [only] = backend.find(JobFilter(), utcnow(), limit=5).jobs
    assert only.args == [5] and only.state is JobState.SCHEDULED


def test_priority_is_edited_where_the_backend_has_priorities(backend: Backend) -> None:
    job = enqueue(backend, 1, queue="q")
    if not backend.supports_priority:
        with pytest.raises(UsageError, match="no priorities"):
            backend.edit(job.id, JobEdit(priority=5), utcnow())
        return
    assert backend.edit(job.id, JobEdit(priority=5), utcnow()).priority == 5
    assert backend.get(job.id, utcnow()).priority == 5


def test_a_failed_jobs_args_are_edited_and_it_stays_failed(backend: Backend) -> None:
    job = enqueue(backend, 1, queue="q")
    claimed = backend.claim(["q"], "w1", utcnow(), HOUR, ALWAYS)
    assert claimed is not None
    backend.fail(claimed, "w1", utcnow(), "ValueError: boom", None)
    [failed] = backend.find(JobFilter(states=frozenset({JobState.FAILED})), utcnow(), limit=5).jobs
    after = backend.edit(failed.id, JobEdit(args=[7]), utcnow())
    assert after.state is JobState.FAILED and after.args == [7]
    [again] = backend.find(JobFilter(states=frozenset({JobState.FAILED})), utcnow(), limit=5).jobs
    assert again.args == [7] and again.last_error == "ValueError: boom"
    assert job.queue == again.queue


def test_a_locked_job_is_refused(backend: Backend) -> None:
    job = enqueue(backend, 1, queue="q")
    claimed = backend.claim(["q"], "w1", utcnow(), HOUR, ALWAYS)
    assert claimed is not None
    with pytest.raises((UsageError, JobNotFound, InvalidTransition)):
        backend.edit(job.id, JobEdit(args=[2]), utcnow())
    assert backend.get(job.id, utcnow()).args == [1]


def test_a_job_locked_after_it_was_read_is_refused(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The write is guarded: a worker that takes the job between the read and the write wins."""
    job = enqueue(backend, 1, queue="q")
    editor: Any = backend.editor  # type: ignore[attr-defined]
    original = type(editor)._rec if hasattr(type(editor), "_rec") else None
    taken: list[Job] = []

    def claim_first() -> None:
        if not taken:
            got = backend.claim(["q"], "w1", utcnow(), HOUR, ALWAYS)
            assert got is not None
            taken.append(got)

    if original is not None:  # Redis: the entry is read, then taken

        def rec_then_claim(self: Any, job_id: Any, now: Any) -> Any:
            rec = original(self, job_id, now)
            claim_first()
            return rec

        monkeypatch.setattr(type(editor), "_rec", rec_then_claim)
    else:  # SQL: the row is read, then taken
        values = type(editor)._values

        def values_then_claim(self: Any, *a: Any) -> Any:
            out = values(self, *a)
            claim_first()
            return out

        monkeypatch.setattr(type(editor), "_values", values_then_claim)
    with pytest.raises(InvalidTransition, match="changed since it was read"):
        backend.edit(job.id, JobEdit(args=[2]), utcnow())
    assert taken and taken[0].args == [1]


def test_a_deleted_job_is_refused(backend: Backend) -> None:
    job = enqueue(backend, 1, queue="q")
    backend.delete([job.id], utcnow())
    with pytest.raises(JobNotFound):
        backend.edit(job.id, JobEdit(args=[]), utcnow())


# --- Redis: Resque's own payloads --------------------------------------------------------------
@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def redis_b(redis_url: str) -> Iterator[Backend]:
    b = open_backend(redis_url, BackendOptions())
    try:
        yield b
    finally:
        b.close()


def test_redis_resque_args_are_rewritten_as_rubys_encoder_writes_them(redis_b: Backend, r: redis.Redis) -> None:
    r.rpush("resque:queue:file_serve", b'{"class":"Archive","args":[1]}', b'{"class":"Archive","args":[35,"tar"]}')
    r.sadd("resque:queues", "file_serve")
    job = next(j for j in redis_b.find(JobFilter(), utcnow(), limit=5).jobs if j.args == [35, "tar"])
    after = redis_b.edit(job.id, JobEdit(args=[36, "é/x", {"k": None}]), utcnow())
    # Ruby's JSON: compact, raw UTF-8, `/` unescaped; the entry keeps its place in the queue
    assert r.lrange("resque:queue:file_serve", 0, -1) == [
        b'{"class":"Archive","args":[1]}',
        '{"class":"Archive","args":[36,"é/x",{"k":null}]}'.encode(),
    ]
    assert redis_b.get(after.id, utcnow()).args == [36, "é/x", {"k": None}]
    with pytest.raises(UsageError, match="Resque has no keyword arguments"):
        redis_b.edit(after.id, JobEdit(kwargs={"a": 1}), utcnow())
    with pytest.raises(UsageError, match="no priorities"):
        redis_b.edit(after.id, JobEdit(priority=1), utcnow())


def test_redis_queue_and_run_at_changes_move_the_entry_in_resques_layout(redis_b: Backend, r: redis.Redis) -> None:
    r.rpush("resque:queue:a", b'{"class":"Archive","args":[1]}')
    r.sadd("resque:queues", "a")
    [job] = redis_b.find(JobFilter(), utcnow(), limit=5).jobs
    moved = redis_b.edit(job.id, JobEdit(queue="b"), utcnow())
    assert r.llen("resque:queue:a") == 0
    assert r.lrange("resque:queue:b", 0, -1) == [b'{"class":"Archive","args":[1]}']
    assert r.sismember("resque:queues", "b")
    ts = int(utcnow().timestamp()) + 3600
    later = redis_b.edit(moved.id, JobEdit(run_at=utcnow() + timedelta(hours=1)), utcnow())
    assert later.state is JobState.SCHEDULED
    item = b'{"class":"Archive","args":[1],"queue":"b"}'
    [stamp] = r.zrange("resque:delayed_queue_schedule", 0, -1)
    assert abs(int(stamp) - ts) <= 1
    assert r.lrange(b"resque:delayed:" + stamp, 0, -1) == [item]
    assert r.smembers(b"resque:timestamps:" + item) == {b"delayed:" + stamp}
    assert r.llen("resque:queue:b") == 0
    back = redis_b.edit(later.id, JobEdit(run_at=utcnow(), queue="c"), utcnow())
    assert back.state is JobState.PENDING
    assert r.lrange("resque:queue:c", 0, -1) == [b'{"class":"Archive","args":[1]}']
    assert not r.exists(b"resque:delayed:" + stamp, b"resque:timestamps:" + item)
    assert r.zcard("resque:delayed_queue_schedule") == 0


def test_redis_failed_entry_keeps_its_place_and_members(redis_b: Backend, r: redis.Redis) -> None:
    entry = {
        "failed_at": "2026/11/22 08:41:11 UTC",
        "payload": {"class": "Archive", "args": [36, "bad"]},
        "exception": "ArgumentError",
        "error": "boom 36",
        "backtrace": [],
        "worker": "web1:1:file_serve",
        "queue": "file_serve",
    }
    r.rpush("resque:failed", json.dumps(entry, separators=(",", ":")))
    [job] = redis_b.find(JobFilter(), utcnow(), limit=5).jobs
    after = redis_b.edit(job.id, JobEdit(args=[36, "good"]), utcnow())
    assert after.state is JobState.FAILED and after.args == [36, "good"]
    [raw] = r.lrange("resque:failed", 0, -1)
    assert (
        raw
        == json.dumps({**entry, "payload": {"class": "Archive", "args": [36, "good"]}}, separators=(",", ":")).encode()
    )
    with pytest.raises(UsageError, match="no run time"):
        redis_b.edit(after.id, JobEdit(run_at=utcnow()), utcnow())


# --- SQL: delayed_job and DJJob rows ------------------------------------------------------------
YAML = "--- !ruby/object:NewsletterJob\ntext: hello\n"


def test_sql_delayed_job_rows_refuse_args_and_take_queue_priority_run_at(sql_url: str) -> None:
    import sqlalchemy as sa

    b: Any = open_backend(sql_url, BackendOptions())
    b.init()
    try:
        now = utcnow()
        t = b.store.jobs()
        with b.engine.begin() as conn:
            conn.execute(
                sa.insert(t).values(
                    priority=0, attempts=0, handler=YAML, queue=None, run_at=now, created_at=now, updated_at=now
                )
            )
        [job] = b.find(JobFilter(), utcnow(), limit=5).jobs
        assert job.format == "delayed_job"
        with pytest.raises(UsageError, match=r"is a delayed_job \(YAML\) job: its arguments cannot be edited"):
            b.edit(job.id, JobEdit(args=[1]), utcnow())
        later = utcnow() + timedelta(hours=1)
        after = b.edit(job.id, JobEdit(queue="mail", priority=-3, run_at=later), utcnow())
        assert after.queue == "mail" and after.priority == -3 and after.state is JobState.SCHEDULED
        with b.engine.connect() as conn:
            row = conn.execute(sa.select(t)).one()
        assert row.handler == YAML and row.queue == "mail" and row.priority == -3
    finally:
        b.close()


def test_sql_djjob_rows_refuse_args_and_priority_and_take_queue_run_at(sql_url: str) -> None:
    import sqlalchemy as sa

    from tests.interop.test_interop_djjob import JOBS_SQL

    probe: Any = open_backend(sql_url)
    with probe.engine.begin() as conn:
        conn.exec_driver_sql(JOBS_SQL[probe.kind])
    probe.close()
    b: Any = open_backend(sql_url, BackendOptions(table="jobs"))
    try:
        now = utcnow().replace(microsecond=0)
        handler = 'O:8:"SendMail":1:{s:2:"to";s:3:"ann";}'
        value: Any = handler.encode() if b.kind == "postgresql" else handler
        t = b.store.jobs()
        with b.engine.begin() as conn:
            conn.execute(sa.insert(t).values(handler=value, queue="default", run_at=now, created_at=now))
        [job] = b.find(JobFilter(), utcnow(), limit=5).jobs
        with pytest.raises(UsageError, match=r"is a DJJob \(PHP serialize\) job: its arguments cannot be edited"):
            b.edit(job.id, JobEdit(kwargs={"to": "bob"}), utcnow())
        with pytest.raises(UsageError, match="no priority column"):
            b.edit(job.id, JobEdit(priority=1), utcnow())
        later = utcnow() + timedelta(hours=1, microseconds=123)
        after = b.edit(job.id, JobEdit(queue="mail", run_at=later), utcnow())
        assert after.queue == "mail" and after.state is JobState.SCHEDULED
        with b.engine.connect() as conn:
            row = conn.execute(sa.select(t)).one()
        assert (row.handler.decode() if isinstance(row.handler, bytes) else row.handler) == handler
        assert row.queue == "mail" and row.run_at.microsecond == 0
    finally:
        b.close()


def test_an_edited_unique_job_still_holds_its_key(backend: Backend) -> None:
    job = enqueue(backend, 1, queue="q", unique="report-1")
    after = backend.edit(job.id, JobEdit(args=[2], queue="q2"), utcnow())
    again = backend.enqueue(NewJob(NOOP, [3], queue="q", unique="report-1"))
    assert str(again.id) == str(after.id) and backend.count(JobFilter(), utcnow()) == 1
