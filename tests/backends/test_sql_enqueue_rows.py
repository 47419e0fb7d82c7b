"""What the SQL enqueue paths write: `enqueue_many` (SQLite: many rows per INSERT, the rest one
by one; PostgreSQL: one INSERT from arrays) and `enqueue` (PostgreSQL: libpq's prepared-statement
call with parameters spelt by qadmin, psycopg for any value it has no spelling for) store the
same row for the same job, whatever its columns hold, and give back what a read gives back.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from qadmin.backends import BackendOptions, open_backend
from qadmin.client import Client
from qadmin.errors import QadminError
from qadmin.job import NewJob, utcnow

NOOP = "qadmin.examples.noop"
AT = datetime(2031, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)


class Level(enum.IntEnum):
    HIGH = -3


class Name(str):
    pass


@pytest.fixture
def backend(sql_url: str) -> Iterator[Any]:
    b = open_backend(sql_url, BackendOptions())
    b.init()
    try:
        yield b
    finally:
        b.close()


def _jobs(n: int) -> list[NewJob]:
    """n jobs varying every column enqueue writes, and every kind of value a payload holds."""
    out = []
    for i in range(n):
        out.append(
            Client.build(
                NOOP if i % 3 else "app.jobs.Ünïcode",
                (i, 'é✉ "quoted" \\ \n\t', None, True, 1.5, -(2**40), [1, [2, {"k": None}]], {"a": [i]}),
                {"key": i, "ß": "ü"} if i % 2 else None,
                queue=("émails ✉" if i % 4 == 0 else "q" * 255 if i % 4 == 1 else "default"),
                priority=(-5, 0, 2**31 - 1)[i % 3],
                run_at=(None, AT, AT - timedelta(days=3000))[i % 3],
                max_attempts=(None, 1, 7)[i % 3],
            )
        )
    return out


def _rows(backend: Any, ids: list[int]) -> list[dict[str, Any]]:
    t = backend.store.jobs()
    with backend.engine.connect() as conn:
        by_id = {r.id: dict(r._mapping) for r in conn.execute(sa.select(t).where(t.c.id.in_(ids)))}
    return [{k: v for k, v in by_id[i].items() if k != "id"} for i in ids]


@pytest.mark.parametrize("n", [1, 99, 100, 101, 257])
def test_enqueue_many_stores_what_enqueue_stores_in_the_order_given(backend: Any, n: int) -> None:
    news = _jobs(n)
    now = utcnow()
    ids = backend.enqueue_many(news, now)
    assert ids == sorted(ids) and len(set(ids)) == n
    one_by_one = [backend.enqueue(new, now).id for new in news]
    assert _rows(backend, ids) == _rows(backend, one_by_one)
    for job_id, new in zip(ids, news):
        job = backend.get(job_id, now)
        assert (job.class_name, job.args, job.kwargs, job.queue, job.priority, job.max_attempts) == (
            new.class_name,
            json_round_trip(new.args),
            new.kwargs,
            new.queue,
            new.priority,
            new.max_attempts,
        )
        assert job.run_at == (new.run_at or now)
        assert job.created_at == now and job.attempts == 0


@pytest.mark.parametrize("queue,priority,run_at", [("mail", 3, None), (None, 0, AT), ("mail", True, None)])
def test_a_batch_sharing_its_queue_priority_or_run_at_stores_what_enqueue_stores(
    backend: Any, queue: Any, priority: Any, run_at: Any
) -> None:
    """On PostgreSQL a value every row shares goes once, not as an array: the same rows."""
    news = [NewJob(NOOP, [i], queue=queue, priority=priority, run_at=run_at) for i in range(120)]
    if priority is True:  # True is not 1 to the database: not shared with the 1s beside it
        news[1::2] = [dataclasses.replace(n, priority=1) for n in news[1::2]]
    now = utcnow()
    try:
        ids = backend.enqueue_many(news, now)
    except QadminError:
        # PostgreSQL has no cast from a boolean to the integer column, either way of writing it
        assert backend.kind == "postgresql" and priority is True
        with pytest.raises(QadminError):
            backend.enqueue(news[0], now)
        return
    assert _rows(backend, ids) == _rows(backend, [backend.enqueue(new, now).id for new in news])
    assert backend.get(ids[0], now).queue == queue


def json_round_trip(args: list[Any]) -> list[Any]:
    import json

    return json.loads(json.dumps(args))


def test_enqueue_many_with_unique_jobs_among_plain_ones_keeps_the_order(backend: Any) -> None:
    news = _jobs(150)
    news[7] = dataclasses.replace(news[7], unique="u-7")
    news[120] = dataclasses.replace(news[120], unique="u-7")  # the same key: the same job
    ids = backend.enqueue_many(news)
    assert ids[120] == ids[7]
    now = utcnow()
    assert [backend.get(i, now).args[0] for i in ids[:7] + ids[8:120]] == list(range(7)) + list(range(8, 120))


def test_enqueue_gives_back_what_a_read_gives_back(backend: Any) -> None:
    now = utcnow()
    for new in _jobs(6):
        job = backend.enqueue(new, now)
        assert job == backend.get(job.id, now)
    if backend.kind == "postgresql":  # and on PostgreSQL through the prepared statement of its own
        plan = backend.verbs.insert_plan(backend.layouts.get())
        with backend.enqueuer.state.held.hold() as (conn, _raw):
            assert plan.name is not None and conn.connection.info[plan.name] is True


def test_values_without_a_fast_spelling_are_stored_as_the_same_row(backend: Any) -> None:
    now = utcnow()
    plain = backend.enqueue(Client.build(NOOP, (1,), queue="mail", priority=-3), now)
    odd = backend.enqueue(Client.build(NOOP, (1,), queue=Name("mail"), priority=Level.HIGH), now)
    naive = backend.enqueue(Client.build(NOOP, (1,), queue="mail", priority=-3, run_at=now.replace(tzinfo=None)), now)
    assert _rows(backend, [plain.id]) == _rows(backend, [odd.id]) == _rows(backend, [naive.id])


@pytest.mark.postgres
def test_postgresql_refuses_a_nul_in_a_text_column_and_stores_nothing(postgres_url: str) -> None:
    backend = open_backend(postgres_url, BackendOptions())
    backend.init()
    try:
        backend.enqueue(Client.build(NOOP, (0,)))
        for queue in ("bad\x00queue", Name("bad\x00queue")):
            with pytest.raises(QadminError):
                backend.enqueue(Client.build(NOOP, (1,), queue=queue))
        job = backend.enqueue(Client.build(NOOP, (2,)))  # the connection is still good
        with backend.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM delayed_jobs").scalar() == 2
        assert backend.get(job.id, utcnow()).args == [2]
    finally:
        backend.close()


@pytest.mark.postgres
def test_postgresql_enqueue_prepares_its_statement_again_when_it_is_gone(postgres_url: str) -> None:
    backend = open_backend(postgres_url, BackendOptions())
    backend.init()
    try:
        first = backend.enqueue(Client.build(NOOP, (1,)))
        with backend.enqueuer.state.held.hold() as (_conn, raw):
            raw.execute("DEALLOCATE ALL")  # as a pooler's reset does
        second = backend.enqueue(Client.build(NOOP, (2,)))
        assert second.id == first.id + 1
        with backend.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM delayed_jobs").scalar() == 2
    finally:
        backend.close()


def test_build_fills_every_field_of_new_job() -> None:
    """`Client.build` fills a NewJob's fields itself (its frozen __init__ costs more than the
    rest of build): every field, and nothing NewJob's own __init__ would do besides."""
    assert not hasattr(NewJob, "__post_init__")
    built = Client.build(NOOP, (1, 2), {"k": 3}, queue="q", priority=4, run_at=AT, max_attempts=5, unique="u")
    assert set(vars(built)) == {f.name for f in dataclasses.fields(NewJob)}
    assert built == NewJob(
        class_name=NOOP, args=[1, 2], kwargs={"k": 3}, queue="q", priority=4, run_at=AT, max_attempts=5, unique="u"
    )
    assert Client.build(NOOP) == NewJob(class_name=NOOP)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.queue = "other"  # type: ignore[misc]
