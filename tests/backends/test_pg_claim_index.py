"""PostgreSQL's claim index holds unlocked rows only (`tables.holds_unlocked_only`), so that a
claim's scan can mark the entries of the rows claimed before as dead; `?prepare=off` turns
server-side prepared statements off, for PgBouncer in transaction mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from qadmin.backends import BackendOptions, open_backend
from qadmin.backends.sql.backend import SqlBackend
from qadmin.backends.sql.tables import claim_index_name
from qadmin.job import NewJob, utcnow

NOOP = "qadmin.examples.noop"
HOUR = 3600.0


@pytest.fixture()
def pg_url(postgres_url: str) -> str:
    return postgres_url


def _open(url: str) -> Iterator[SqlBackend]:
    backend = open_backend(url, BackendOptions())
    assert isinstance(backend, SqlBackend)
    try:
        yield backend
    finally:
        backend.close()


def _indexes(backend: SqlBackend) -> set[str]:
    with backend.engine.connect() as conn:
        return {i["name"] for i in sa.inspect(conn).get_indexes("delayed_jobs")}


def _drain(backend: SqlBackend, worker: str, n: int) -> int:
    session = backend.session(worker)
    job = session.claim(["*"], utcnow(), HOUR, lambda _j: True)[0]
    done = 1
    while True:
        nxt = session.complete_and_claim(job, utcnow(), 0.0, ["*"], HOUR, lambda _j: True, 1)
        if not nxt:
            break
        job, done = nxt[0], done + 1
    session.close()
    return done


def test_the_claim_index_holds_unlocked_rows_only(pg_url: str) -> None:
    for backend in _open(pg_url):
        backend.init()
        with backend.engine.connect() as conn:
            definition = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %(name)s",
                {"name": claim_index_name("delayed_jobs")},
            ).scalar_one()
        assert "locked_at IS NULL" in definition
        backend.enqueue_many([NewJob(NOOP, [i]) for i in range(50)])
        assert _drain(backend, "host:a pid:1", 50) == 50


def test_an_earlier_claim_index_is_replaced(pg_url: str) -> None:
    for backend in _open(pg_url):
        backend.init()
        with backend.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX {claim_index_name('delayed_jobs')}")
            conn.exec_driver_sql(
                f"CREATE INDEX {claim_index_name('delayed_jobs')} ON delayed_jobs (priority, run_at NULLS FIRST, id) "
                "WHERE failed_at IS NULL AND substr(handler, 1, 1) = '{'"
            )
        backend.enqueue(NewJob(NOOP, [1]))
        backend.init()
        with backend.engine.connect() as conn:
            definition = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %(name)s", {"name": claim_index_name("delayed_jobs")}
            ).scalar_one()
        assert "locked_at IS NULL" in definition
        assert backend.verbs.statements.get().split_locked
        assert _drain(backend, "host:a pid:1", 1) == 1


@pytest.mark.parametrize("option", ["", "?prepare=off"])
def test_prepare_off_prepares_nothing(pg_url: str, option: str) -> None:
    for backend in _open(pg_url + option):
        backend.init()
        session = backend.session("host:a pid:1")
        layout = backend.layouts.get()
        for i in range(8):  # the verbs' enqueue, on the session's held connection
            backend.verbs.insert_one(session.state, layout, layout.values(NewJob(NOOP, [i]), utcnow()))
        for _ in range(8):
            session.claim(["*"], utcnow(), HOUR, lambda _j: False)
        with session.state.held.hold() as (conn, _raw):
            prepared = int(conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar_one())
        session.close()
        assert (prepared == 0) == (option != ""), prepared
