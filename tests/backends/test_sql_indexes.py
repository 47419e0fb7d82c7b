"""The jobs table's indexes: which ones a new table gets on SQLite and PostgreSQL, that the
admin queries for the few failed and locked rows are planned onto the partial indexes that hold
only those rows (so that an enqueued row costs those indexes nothing), and that a table created
with the earlier, full index set keeps working as it is.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from qadmin.backends import BackendOptions, open_backend
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow

NOOP = "qadmin.examples.noop"
HOUR = 3600.0
FAILED = JobFilter(states=frozenset({JobState.FAILED}))
LOCKED = JobFilter(states=frozenset({JobState.LOCKED}))


def _indexes(backend: Any) -> dict[str, str]:
    """name -> the database's own definition of each index of the jobs table."""
    with backend.engine.connect() as conn:
        if backend.kind == "sqlite":
            rows = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                "tbl_name = 'delayed_jobs' AND sql IS NOT NULL"
            )
        else:
            rows = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'delayed_jobs' AND indexname NOT LIKE '%%pkey'"
            )
        return {name: re.sub(r"\s+", " ", sql) for name, sql in rows}


@pytest.fixture
def backend(sql_backend: Any) -> Any:
    return sql_backend


def test_a_new_table_has_the_index_set_of_its_database(backend: Any) -> None:
    indexes = _indexes(backend)
    # delayed_job's own index, as its migration creates it
    assert re.search(r"\(priority, run_at\)$", indexes["delayed_jobs_priority"])
    assert re.search(r"\(locked_at\) WHERE \(?locked_at IS NOT NULL\)?$", indexes["qadmin_delayed_jobs_locked_at"])
    assert "WHERE" in indexes["qadmin_delayed_jobs_claim"]
    assert re.search(r"\(queue, failed_at, locked_at, run_at, locked_by\)$", indexes["qadmin_delayed_jobs_state"])
    if backend.kind == "sqlite":
        # full: walked backwards it orders a listing of every state by -failed_at
        assert indexes["qadmin_delayed_jobs_failed_at"].endswith("(failed_at)")
        assert "qadmin_delayed_jobs_queue" in indexes
        assert len(indexes) == 6
    else:
        assert re.search(
            r"\(failed_at NULLS FIRST, id\) WHERE \(failed_at IS NOT NULL\)$", indexes["qadmin_delayed_jobs_failed_at"]
        )
        assert "qadmin_delayed_jobs_queue" not in indexes  # the state index leads with queue
        assert len(indexes) == 5
    backend.init()  # again: nothing added or changed
    assert _indexes(backend) == indexes


def _fill(backend: Any, pending: int = 20000, failed: int = 40, locked: int = 10) -> None:
    backend.enqueue_many([NewJob(NOOP, [i], queue=f"q{i % 5}") for i in range(pending)])
    t = backend.store.jobs()
    now = utcnow()
    # each failure and lock at its own time, as they come: what the planners' statistics see
    with backend.engine.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.id == sa.bindparam("i"))
            .values(failed_at=sa.bindparam("at", type_=t.c.failed_at.type), last_error="Boom\ntrace"),
            [{"i": i, "at": now - timedelta(seconds=i)} for i in range(1, failed + 1)],
        )
        conn.execute(
            sa.update(t)
            .where(t.c.id == sa.bindparam("i"))
            .values(locked_at=sa.bindparam("at", type_=t.c.locked_at.type), locked_by="host:gone pid:999999"),
            [{"i": i, "at": now - timedelta(hours=5, seconds=i)} for i in range(failed + 1, failed + locked + 1)],
        )
        conn.exec_driver_sql("ANALYZE")


def _plans(backend: Any, verb: Any) -> list[str]:
    """The plan of every statement on the jobs table that `verb` runs."""
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if executemany or "delayed_jobs" not in statement or statement.lstrip().upper().startswith("EXPLAIN"):
            return
        raw = conn.connection.dbapi_connection
        if backend.kind == "sqlite":
            rows = raw.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            plans.append(" ".join(r[-1] for r in rows))
        else:
            with raw.cursor() as cur:
                cur.execute("EXPLAIN " + statement, parameters)
                plans.append(" ".join(r[0] for r in cur.fetchall()))

    sa.event.listen(backend.engine, "before_cursor_execute", explain)
    try:
        verb()
    finally:
        sa.event.remove(backend.engine, "before_cursor_execute", explain)
    return plans


@pytest.mark.parametrize(
    "name,verb,index",
    [
        ("failed, newest first", lambda b, now: b.find(FAILED, now, limit=20, sort="-failed_at"), "failed_at"),
        ("failed count", lambda b, now: b.count(FAILED, now), "failed_at"),
        ("error groups", lambda b, now: b.error_groups(FAILED, now), "failed_at"),
        ("locked", lambda b, now: b.find(LOCKED, now, limit=20), "locked_at"),
        ("stale", lambda b, now: b.find(JobFilter(stale_only=True), now, limit=20), "locked_at"),
        ("lock holders", lambda b, now: b.workers(now), "locked_at"),
    ],
)
def test_the_few_failed_and_locked_rows_are_read_from_their_partial_indexes(
    backend: Any, name: str, verb: Any, index: str
) -> None:
    if name == "error groups" and backend.kind == "sqlite":
        # SQLite's failed_at index is a full one (see below): without a hint in the query, its
        # planner weighs it against a table scan evenly here, and picks by the order in which
        # the indexes were created
        pytest.skip("SQLite's full failed_at index: not a partial index's plan")
    _fill(backend)
    plans = _plans(backend, lambda: verb(backend, utcnow()))
    reads = [p for p in plans if f"qadmin_delayed_jobs_{index}" in p]
    assert reads, f"{name}: no statement read qadmin_delayed_jobs_{index}: {plans}"
    # and none walks the whole table instead
    assert not [p for p in plans if re.search(r"\bSCAN delayed_jobs\b(?! USING)|Seq Scan on delayed_jobs", p)], plans


def test_a_table_with_the_earlier_full_indexes_keeps_working(sql_url: str) -> None:
    """Tables created by an earlier qadmin have full indexes on failed_at and locked_at and one
    on queue: they are left as they are (no migration), and serve every query as before."""
    setup = open_backend(sql_url, BackendOptions())
    setup.init()
    with setup.engine.begin() as conn:
        for column in ("failed_at", "locked_at"):
            conn.exec_driver_sql(f"DROP INDEX qadmin_delayed_jobs_{column}")
            conn.exec_driver_sql(f"CREATE INDEX qadmin_delayed_jobs_{column} ON delayed_jobs ({column})")
        conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS qadmin_delayed_jobs_queue ON delayed_jobs (queue)")
    before = _indexes(setup)
    setup.close()
    backend = open_backend(sql_url, BackendOptions(max_run_time=4 * HOUR))
    try:
        backend.init()
        assert _indexes(backend) == before
        _fill(backend, pending=500, failed=3, locked=2)
        now = utcnow()
        assert [j.id for j in backend.find(FAILED, now, limit=10, sort="-failed_at").jobs] == [1, 2, 3]
        assert [j.id for j in backend.find(LOCKED, now, limit=10).jobs] == [4, 5]
        assert backend.count(JobFilter(queues=("q1",)), now) == 100
        job = backend.enqueue(NewJob(NOOP, ["after"], queue="q1"))
        assert backend.get(job.id, now).args == ["after"]
    finally:
        backend.close()


def test_sqlite_lists_every_state_by_latest_failure_off_the_failed_at_index(sqlite_url: str) -> None:
    """Why SQLite keeps a full index on failed_at: walked backwards it is the order of that
    listing (NULLs last), where a partial index would leave a sort of the whole table."""
    backend = open_backend(sqlite_url, BackendOptions())
    backend.init()
    try:
        _fill(backend, pending=2000, failed=20, locked=5)
        now = utcnow()
        plans = _plans(backend, lambda: backend.find(JobFilter(), now, limit=20, sort="-failed_at"))
        assert [p for p in plans if "qadmin_delayed_jobs_failed_at" in p and "TEMP B-TREE" not in p], plans
        page = backend.find(JobFilter(), now, limit=25, sort="-failed_at").jobs
        assert [j.id for j in page] == list(range(1, 21)) + [2000, 1999, 1998, 1997, 1996]
    finally:
        backend.close()


def test_postgresql_reads_the_newest_failures_first_off_the_failed_at_index(postgres_url: str) -> None:
    """The first page of failed jobs, newest first, is the first entries of the failed_at index
    walked backwards: no sort of every failed row, so the page costs the same however many failed."""
    backend = open_backend(postgres_url, BackendOptions())
    backend.init()
    try:
        _fill(backend, pending=2000, failed=300, locked=5)
        # failures sharing a time: the id tiebreak is the index's too
        t = backend.store.jobs()
        with backend.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.id.in_([7, 8, 9]))
                .values(failed_at=sa.select(t.c.failed_at).where(t.c.id == 7).scalar_subquery())
            )
            conn.exec_driver_sql("ANALYZE")
        now = utcnow()
        plans = _plans(backend, lambda: backend.find(FAILED, now, limit=20, sort="-failed_at"))
        assert len(plans) == 1, plans
        assert "Index Scan Backward using qadmin_delayed_jobs_failed_at" in plans[0], plans
        assert "Sort" not in plans[0], plans
        # and its pages are the listing's order, ties by id descending
        ids: list[int] = []
        cursor = None
        while True:
            page = backend.find(FAILED, now, limit=7, sort="-failed_at", cursor=cursor)
            ids += [int(j.id) for j in page.jobs]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert ids == [1, 2, 3, 4, 5, 6, 9, 8, 7] + list(range(10, 301))
    finally:
        backend.close()
