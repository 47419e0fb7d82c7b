"""`complete_and_claim` on SQL (complete a job and claim the next in one transaction or one
statement) and the bulk enqueue paths, on real SQLite and PostgreSQL databases.

The fused verb keeps every guarantee of `complete` followed by `claim_many`: claim order,
paused queues, rows the worker cannot run left alone, unique keys freed, and it is harmless to
repeat after a lost reply (nothing recorded or counted twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, utcnow

NOOP = "qadmin.examples.noop"
HOUR = 3600.0
W = "host:test pid:1"


def runnable(job: Job) -> bool:
    return job.decodable and job.class_name == NOOP


@pytest.fixture
def backend(sql_url: str) -> Iterator[Any]:
    b = open_backend(sql_url)
    b.init()
    try:
        yield b
    finally:
        b.close()


def _fused(
    backend: Any, job: Job, limit: int = 1, queues: tuple[str, ...] = ("*",), worker: str = W, can_run: Any = runnable
) -> list[Job]:
    session = backend.session(worker)
    try:
        return session.complete_and_claim(job, utcnow(), 0.01, list(queues), HOUR, can_run, limit)
    finally:
        session.close()  # writes the counters it holds


def _finished(backend: Any, job_id: Any) -> int:
    f = backend.store.aux["finished"]
    with backend.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(f).where(f.c.job_id == job_id)).scalar_one()


def _processed(backend: Any) -> int:
    return backend.stats(utcnow(), HOUR).processed


def test_jobs_come_in_claim_order_and_each_completed_once(backend: Any) -> None:
    now = utcnow()
    priorities = [5, 1, 3, 0, 2, 4, 1]
    for i, p in enumerate(priorities):
        backend.enqueue(NewJob(NOOP, [i], queue="q", priority=p, run_at=now - timedelta(seconds=100 - i)))
    expected = [i for i, _ in sorted(enumerate(priorities), key=lambda t: (t[1], t[0]))]
    job = backend.claim(["q"], W, utcnow(), HOUR, runnable)
    seen = [job.args[0]]
    while True:
        nxt = _fused(backend, job, queues=("q",))
        assert _finished(backend, job.id) == 1
        if not nxt:
            break
        assert len(nxt) == 1 and nxt[0].state is JobState.LOCKED and nxt[0].locked_by == W
        job = nxt[0]
        seen.append(job.args[0])
    assert seen == expected
    assert backend.count(JobFilter(), utcnow()) == 0
    assert _processed(backend) == len(priorities)


def test_a_limit_claims_several_in_order(backend: Any) -> None:
    backend.enqueue_many([NewJob(NOOP, [i], queue="q", priority=10 - i) for i in range(6)])
    first = backend.claim(["*"], W, utcnow(), HOUR, runnable)
    assert first.args == [5]
    nxt = _fused(backend, first, limit=3)
    assert [j.args[0] for j in nxt] == [4, 3, 2]
    locked = backend.find(JobFilter(states=frozenset({JobState.LOCKED})), utcnow(), limit=10).jobs
    assert sorted(j.id for j in locked) == sorted(j.id for j in nxt)


def test_a_paused_queue_is_not_claimed_from(backend: Any) -> None:
    backend.enqueue(NewJob(NOOP, [0], queue="a", priority=0))
    backend.enqueue(NewJob(NOOP, [1], queue="paused", priority=0))
    backend.enqueue(NewJob(NOOP, [2], queue="b", priority=5))
    first = backend.claim(["*"], W, utcnow(), HOUR, runnable)
    assert first.args == [0]
    backend.pause("paused", utcnow())
    nxt = _fused(backend, first, limit=5)
    assert [j.args[0] for j in nxt] == [2]
    pending = backend.find(JobFilter(states=frozenset({JobState.PENDING})), utcnow(), limit=10).jobs
    assert [j.args[0] for j in pending] == [1]


def test_rows_the_worker_cannot_run_are_left_as_they_were(backend: Any) -> None:
    backend.enqueue(NewJob(NOOP, [0], priority=0))
    backend.enqueue(NewJob("some.other.App", [1], priority=1))
    backend.enqueue(NewJob(NOOP, [2], priority=2))
    first = backend.claim(["*"], W, utcnow(), HOUR, runnable)
    nxt = _fused(backend, first, limit=1)
    assert [j.args[0] for j in nxt] == [2]
    other = backend.find(JobFilter(states=frozenset({JobState.PENDING})), utcnow(), limit=10).jobs
    assert [(j.class_name, j.locked_at, j.locked_by) for j in other] == [("some.other.App", None, None)]


def test_repeating_it_records_and_counts_the_job_once(backend: Any) -> None:
    backend.enqueue_many([NewJob(NOOP, [i]) for i in range(3)])
    first = backend.claim(["*"], W, utcnow(), HOUR, runnable)
    once = _fused(backend, first)
    # the reply was lost, as a dropped connection loses it: the worker asks again
    again = _fused(backend, first)
    assert _finished(backend, first.id) == 1
    assert _processed(backend) == 1
    # what the lost attempt locked is this worker's own: the repeat gets it back, no one else can
    assert [j.id for j in again] == [j.id for j in once]
    assert backend.claim(["*"], "host:other pid:2", utcnow(), HOUR, runnable).args == [2]


def test_a_job_whose_lock_was_taken_over_is_left_to_its_new_owner(backend: Any) -> None:
    backend.enqueue_many([NewJob(NOOP, [i]) for i in range(2)])
    first = backend.claim(["*"], W, utcnow(), HOUR, runnable)
    t = backend.store.jobs()
    with backend.engine.begin() as conn:
        conn.execute(sa.update(t).where(t.c.id == first.id).values(locked_by="host:other pid:2"))
    nxt = _fused(backend, first)
    assert [j.args[0] for j in nxt] == [1]
    assert _finished(backend, first.id) == 0
    assert backend.get(first.id, utcnow()).locked_by == "host:other pid:2"
    assert _processed(backend) == 0


def test_a_completed_unique_job_frees_its_key(backend: Any) -> None:
    job = backend.enqueue(NewJob(NOOP, [1], unique="k"))
    backend.enqueue(NewJob(NOOP, [2]))
    assert backend.enqueue(NewJob(NOOP, [1], unique="k")).id == job.id
    claimed = backend.claim(["*"], W, utcnow(), HOUR, runnable)
    assert claimed.id == job.id
    nxt = _fused(backend, claimed)
    assert [j.args[0] for j in nxt] == [2]
    assert backend.enqueue(NewJob(NOOP, [1], unique="k")).id != job.id


def test_an_empty_queue_gives_nothing_and_still_completes(backend: Any) -> None:
    backend.enqueue(NewJob(NOOP, [0]))
    first = backend.claim(["*"], W, utcnow(), HOUR, runnable)
    assert _fused(backend, first, limit=4) == []
    assert _finished(backend, first.id) == 1
    assert backend.count(JobFilter(), utcnow()) == 0


# --- bulk enqueue -----------------------------------------------------------------------------
def _news() -> list[NewJob]:
    later = utcnow() + timedelta(hours=1)
    return [
        NewJob(NOOP, [1]),
        NewJob(NOOP, [2, 'é ✓ " \\ \n'], {"k": {"nested": [1.5, None, True]}}, queue="other", priority=-3),
        NewJob("App::Job", [], queue="q", run_at=later, max_attempts=3),
        NewJob(NOOP, [], priority=7, max_attempts=1),
        NewJob(NOOP, [{"a": 1}], queue="q", run_at=later.replace(microsecond=123456)),
    ]


def _stored(backend: Any) -> list[tuple]:
    """The rows as the database holds them (on SQLite the very text of each timestamp)."""
    t = backend.store.jobs()
    columns = ", ".join(c.name for c in t.c if c.name != "id")
    with backend.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT {columns} FROM {t.name} ORDER BY id").all()
    return [tuple(r) for r in rows]


def _empty(backend: Any) -> None:
    with backend.engine.begin() as conn:
        conn.execute(sa.delete(backend.store.jobs()))


def test_enqueue_many_stores_the_rows_enqueue_stores(backend: Any) -> None:
    now = utcnow()
    news = _news()
    one_by_one = [backend.enqueue(n, now).id for n in news]
    expected = _stored(backend)
    _empty(backend)
    ids = backend.enqueue_many(news, now)
    assert _stored(backend) == expected
    assert len(set(ids)) == len(ids) and min(ids) > max(one_by_one)
    # ids in the order of the jobs given
    assert [backend.get(i, now).args for i in ids] == [n.args for n in news]
    # and both store what SQLAlchemy's own INSERT of the same values stores
    _empty(backend)
    with backend.engine.begin() as conn:
        conn.execute(sa.insert(backend.store.jobs()), [backend.layouts.get().values(n, now) for n in news])
    assert _stored(backend) == expected


def test_enqueue_many_keeps_the_order_of_mixed_unique_and_plain_jobs(backend: Any) -> None:
    existing = backend.enqueue(NewJob(NOOP, ["u1"], unique="u1"))
    news = [
        NewJob(NOOP, ["a"]),
        NewJob(NOOP, ["u1"], unique="u1"),
        NewJob(NOOP, ["b"]),
        NewJob(NOOP, ["u2"], unique="u2"),
    ]
    ids = backend.enqueue_many(news)
    assert ids[1] == existing.id
    assert [backend.get(i, utcnow()).args for i in ids] == [["a"], ["u1"], ["b"], ["u2"]]
    assert backend.enqueue(NewJob(NOOP, ["u2"], unique="u2")).id == ids[3]


def test_enqueue_many_in_several_batches(backend: Any) -> None:
    ids = backend.enqueue_many([NewJob(NOOP, [i]) for i in range(12_001)])
    assert len(ids) == 12_001 and ids == sorted(ids)
    assert backend.get(ids[7_777], utcnow()).args == [7_777]
    assert backend.count(JobFilter(), utcnow()) == 12_001


def test_on_a_djjob_table_enqueue_many_and_the_fused_claim_work_as_the_rest(sql_url: str) -> None:
    """DJJob's `jobs` layout: no priority, no updated_at; on PostgreSQL a BYTEA handler."""
    from qadmin.backends import BackendOptions
    from tests.interop.test_interop_djjob import JOBS_SQL

    probe = open_backend(sql_url)
    with probe.engine.begin() as conn:
        conn.exec_driver_sql(JOBS_SQL[probe.kind])
    probe.close()
    backend = open_backend(sql_url, BackendOptions(table="jobs"))
    try:
        now = utcnow()
        news = _news()
        [backend.enqueue(n, now) for n in news]
        expected = _stored(backend)
        _empty(backend)
        ids = backend.enqueue_many(news, now)
        assert _stored(backend) == expected
        assert [backend.get(i, now).args for i in ids] == [n.args for n in news]
        first = backend.claim(["*"], W, utcnow(), HOUR, lambda j: j.decodable)
        assert first.id == ids[0]
        nxt = _fused(backend, first, limit=2, can_run=lambda j: j.decodable)
        assert [j.id for j in nxt] == [ids[1], ids[3]]  # by run_at then id: the others run later
        assert _finished(backend, first.id) == 1
    finally:
        backend.close()
