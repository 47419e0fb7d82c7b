"""The database's own worker verbs agree with the portable reference.

`SqlBackend` runs a worker's verbs and enqueue on the database's fast path (PostgreSQL:
`prepared_pg.PreparedPg`, libpq's prepared-statement call, one-statement claims and completions
in autocommit; SQLite: `sqlite_verbs.SqliteVerbs`, statements on the driver, claims read from a
snapshot) or, with `prepared=False`, on `verbs.CoreVerbs`, plain SQLAlchemy Core. The same
scenario, run both ways on two fresh databases of one server, claims the same jobs in the same
order and leaves the same rows, finished records and counters behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from qadmin.backends import BackendOptions
from qadmin.backends.base import WorkerSession
from qadmin.backends.sql import SqlBackend
from qadmin.backends.sql.prepared_pg import PreparedPg
from qadmin.backends.sql.sqlite_verbs import SqliteVerbs
from qadmin.backends.sql.verbs import CoreVerbs
from qadmin.job import Job, NewJob

NOOP = "qadmin.examples.noop"
HOUR = 3600.0
W = "host:agree pid:1"
T0 = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def runnable(job: Job) -> bool:
    return job.decodable and job.class_name == NOOP


def _news() -> list[NewJob]:
    past = T0 - timedelta(minutes=5)
    return [
        NewJob(NOOP, [0], queue="a", priority=5, run_at=past),
        NewJob(NOOP, [1], queue="b", priority=0, run_at=past),
        NewJob("some.other.App", [2], queue="a", priority=0, run_at=past),  # no worker here runs it
        NewJob(NOOP, [3], queue="a", priority=1, run_at=past),
        NewJob(NOOP, [4], queue="c", priority=2, run_at=past),
        NewJob(NOOP, [5], queue="paused", priority=0, run_at=past),
        NewJob(NOOP, [6], queue="b", priority=3, run_at=T0 + timedelta(hours=1)),  # not due yet
        NewJob(NOOP, [7], priority=4, run_at=past, max_attempts=3),
        NewJob(NOOP, [8], queue="a", priority=2, run_at=past),
        NewJob(NOOP, [9], queue="c", priority=0, run_at=past),
    ]


def _scenario(backend: SqlBackend) -> list[list[Any]]:
    """Enqueue, then a worker's session through every verb; what each claim gave, in order."""
    backend.init()
    at = [T0 + timedelta(seconds=i) for i in range(20)]
    backend.enqueue_many(_news(), T0)
    backend.enqueue(NewJob(NOOP, ["u"], queue="a", priority=1, unique="key"), T0)
    backend.pause("paused", T0)
    session = backend.session(W)
    assert isinstance(session, WorkerSession)
    claims: list[list[Any]] = []
    try:
        first = session.claim(["a", "b", "*"], at[1], HOUR, runnable, limit=3)
        claims.append([j.id for j in first])
        held = [j.id for j in first[1:]]  # as the worker does: what it holds is not claimed again
        nxt = session.complete_and_claim(first[0], at[2], 0.25, ["a", "b", "*"], HOUR, runnable, 2, held)
        claims.append([j.id for j in nxt])
        session.fail(first[1], at[3], "RuntimeError: once\x00more", at[3] + timedelta(seconds=30))
        session.fail(nxt[0], at[4], "ValueError: for good", None)
        session.complete(first[2], at[5], 0.5)
        claims.append([session.refresh(nxt[1], at[6]), session.refresh(first[2], at[6])])
        rest = session.claim(["*"], at[7], HOUR, runnable, limit=4, skip_ids=[nxt[1].id])
        claims.append([j.id for j in rest])
        session.release(rest[1:])
        # a repeated outcome changes and counts nothing
        session.complete(first[2], at[8], 0.5)
        session.fail(nxt[0], at[9], "ValueError: again", None)
        fused = session.complete_and_claim(nxt[1], at[10], 0.75, ["c"], HOUR, runnable, 3, [rest[0].id])
        claims.append([j.id for j in fused])
        claims.append([j.id for j in session.claim(["*"], at[11], HOUR, runnable, limit=10)])
        # the backend's one-shot verbs
        one = backend.claim(["*"], "host:other pid:2", at[12], HOUR, lambda j: j.decodable)
        claims.append([one.id if one is not None else None])
        if one is not None:
            backend.complete(one, "host:other pid:2", at[13], 0.1)
    finally:
        session.close()
    return claims


def _tables(backend: SqlBackend) -> dict[str, list[tuple[Any, ...]]]:
    """Every row qadmin wrote, ordered, as the database holds it."""
    store = backend.store
    out: dict[str, list[tuple[Any, ...]]] = {}
    with backend.engine.connect() as conn:
        for table in [store.jobs(), *store.aux.values()]:
            key = [c for c in table.primary_key.columns] or list(table.c)
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*key))]
    return out


@pytest.fixture(params=["postgres", "sqlite"])
def two_databases(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/prepared.db", f"sqlite:///{tmp_path}/reference.db"
        return
    request.applymarker(pytest.mark.postgres)
    server = request.getfixturevalue("postgres_server")
    if not server.running:
        server.start()
    names = [server.create_database(), server.create_database()]
    try:
        yield server.url_for(names[0]), server.url_for(names[1])
    finally:
        for name in names:
            server.drop_database(name)


def test_the_fast_verbs_and_the_reference_claim_and_leave_the_same(two_databases: tuple[str, str]) -> None:
    fast_url, reference_url = two_databases
    fast = SqlBackend(fast_url, BackendOptions())
    reference = SqlBackend(reference_url, BackendOptions(), prepared=False)
    try:
        assert isinstance(fast.verbs, (PreparedPg, SqliteVerbs)) and isinstance(reference.verbs, CoreVerbs)
        claims = _scenario(fast)
        assert claims == _scenario(reference)
        # ids in enqueue order (1-10, the unique job 11): queue a by priority, then b, then the
        # rest; a job another worker holds or this one was told to skip is passed over, its own
        # locks are its own to claim again
        assert claims == [[4, 11, 9], [1, 2], [True, False], [10, 5, 8], [5], [10, 5, 8], [3]]
        assert _tables(fast) == _tables(reference)
        stats = fast.stats(T0 + timedelta(minutes=1), HOUR)
        assert (stats.processed, stats.failed) == (6, 2)
        assert fast.stats(T0 + timedelta(minutes=1), HOUR) == reference.stats(T0 + timedelta(minutes=1), HOUR)
    finally:
        fast.close()
        reference.close()
