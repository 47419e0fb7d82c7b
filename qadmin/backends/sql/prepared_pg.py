"""PostgreSQL's worker verbs, `PreparedPg`: what a job costs the client and the server, cut to
one round trip each, on the worker's held connection in autocommit (no BEGIN, no COMMIT):

- enqueue on libpq's own prepared-statement call with the parameters spelt here (`PgInsert`),
  a third of the client time of psycopg's `execute`; `enqueue_many` one INSERT from arrays;
- a claim locks the next rows and reads them in one UPDATE … RETURNING over `FOR UPDATE SKIP
  LOCKED`, every queue step of the worker's list in the one statement;
- a completion deletes the job and records it finished in one statement, and the fused
  `complete_and_claim` does that and the next claim in one.

`CoreVerbs` (the portable reference, which `SqlBackend(..., prepared=False)` uses) must agree
with it: tests/backends/test_sql_prepared_agree.py runs both on the same scenario.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.driver import wrapped
from qadmin.backends.sql.layout import InsertLayout
from qadmin.backends.sql.postgres import PostgresDialect
from qadmin.backends.sql.rows import NO_OWNERS
from qadmin.backends.sql.state import Single, WorkerState
from qadmin.backends.sql.statements import (
    EARLIER,
    ByQueue,
    ClaimStatements,
    in_claim_order,
    queue_steps,
    step_params,
    steps_key,
)
from qadmin.backends.sql.values import BATCH
from qadmin.backends.sql.verbs import (
    CLAIM_SCAN,
    READ_AHEAD,
    CanRun,
    CoreVerbs,
    WorkerParts,
    by_steps,
    claim_params,
    finished_values,
)
from qadmin.job import Job, JobId, NewJob

_BINARY = bytes


class PgInsert:
    """A layout's INSERTs as `PreparedPg` sends them: one row on libpq's prepared-statement call
    (strings and bytes sent binary: the bytes of a text in the client encoding, or of a bytea,
    one spelling for both, and a NUL refused by the server as psycopg refuses it; numbers and
    timestamps as text), or many rows from arrays. A layout with columns of other types (a
    foreign table's jsonb handler, say) keeps psycopg's adaptation (`name` None)."""

    def __init__(self, layout: InsertLayout) -> None:
        self.layout = layout
        quote = layout.quote
        self.sql = layout.insert_head + f"({', '.join('%s' for _ in layout.columns)}) RETURNING {quote('id')}"
        kinds = [_pg_kind(layout.t.c[c].type) for c in layout.columns]
        self.name: bytes | None = None
        self.formats = [1 if k is _BINARY else 0 for k in kinds]
        self._kinds = kinds
        numbered = iter(range(1, len(layout.columns) + 1))
        self.dollar_sql = re.sub("%s", lambda _m: f"${next(numbered)}", self.sql)
        if None not in kinds:
            digest = hashlib.sha1(self.dollar_sql.encode()).hexdigest()[:16]
            self.name = f"qadmin_enqueue_{digest}".encode()

    def params(self, row: list[Any]) -> list[bytes | None] | None:
        """`row` (as `driver_row` gives it) as `run` sends it; None where a value is of
        another kind than its column takes on the fast path."""
        out: list[bytes | None] = []
        for value, kind in zip(row, self._kinds):
            cls = value.__class__
            if value is None:
                out.append(None)
            elif kind is _BINARY:
                if cls is str:
                    out.append(value.encode())
                elif cls is bytes:
                    out.append(value)
                else:
                    return None
            elif kind is int and cls is int:
                out.append(str(value).encode())
            elif kind is datetime and cls is datetime and value.tzinfo is None:
                out.append(value.isoformat(" ").encode())
            else:
                return None
        return out

    def arrays(self, news: Sequence[NewJob], now: datetime) -> tuple[str, dict[str, Any]]:
        """PostgreSQL: one INSERT of every row of `news`, from one array per column whose value
        varies from row to row (a column whose value is the same in every row, as the queue
        and priority of a batch mostly are, and `now`, go once), returning the ids."""
        q, t = self.layout.quote, self.layout.t

        def compile_type(column: str) -> str:
            return t.c[column].type.compile(dialect=self.layout.dialect)

        run_at = self.layout.procs[self.layout.columns.index("run_at")]
        naive_now = run_at(now) if run_at else now
        handler = self.layout.handler
        arrays: dict[str, list[Any]] = {"handler": [handler(n) for n in news]}
        columns: dict[str, list[Any]] = {"queue": [n.queue for n in news]}
        if self.layout.has_priority:
            columns["priority"] = [n.priority for n in news]
        if any(n.run_at is not None for n in news):
            columns["run_at"] = [
                naive_now if n.run_at is None else (run_at(n.run_at) if run_at else n.run_at) for n in news
            ]
        select = {"attempts": "0", "run_at": "%(now)s", **dict.fromkeys(self.layout.stamps, "%(now)s")}
        params: dict[str, Any] = {"now": naive_now}
        for name, values in columns.items():
            if _same(values):
                select[name] = f"%({name})s::{compile_type(name)}"
                params[name] = values[0]
            else:
                arrays[name] = values
        names = list(arrays)
        select.update({name: f"u.{q(name)}" for name in names})
        sql = (
            f"INSERT INTO {self.layout.table} ({', '.join(q(c) for c in self.layout.columns)}) "
            f"SELECT {', '.join(select[c] for c in self.layout.columns)} FROM unnest("
            + ", ".join(f"%({name})b::{compile_type(name)}[]" for name in names)
            + f") WITH ORDINALITY AS u({', '.join(q(n) for n in names)}, qadmin_ord) "
            f"ORDER BY u.qadmin_ord RETURNING {q('id')}"
        )
        return sql, {**arrays, **params}


class PreparedPg:
    def __init__(self, parts: WorkerParts) -> None:
        self.store = parts.store
        self.statements = parts.statements
        self.rows = parts.rows
        #: fail, release and refresh: one statement each, in autocommit on the held connection
        self.core = CoreVerbs(parts, single=self._single)
        self._insert: PgInsert | None = None
        dialect = parts.store.dialect
        #: `?prepare=off` (`postgres.server_prepares`): enqueue's INSERT goes unnamed
        self.server_prepares = dialect.server_prepares if isinstance(dialect, PostgresDialect) else True

    def insert_plan(self, layout: InsertLayout) -> PgInsert:
        if self._insert is None or self._insert.layout is not layout:
            self._insert = PgInsert(layout)
        return self._insert

    def _single(self, state: WorkerState) -> Single:
        return lambda: self._autocommit(state)

    @contextmanager
    def _autocommit(self, state: WorkerState) -> Iterator[sa.Connection]:
        """One statement that is a transaction by itself, without BEGIN and COMMIT, which would
        each cost a round trip: on the worker's held connection (in autocommit)."""
        with state.held.hold() as (conn, _raw):
            yield conn

    # --- enqueue -----------------------------------------------------------------------------
    def insert_one(self, state: WorkerState, layout: InsertLayout, values: dict[str, Any]) -> JobId:
        plan = self.insert_plan(layout)
        row = layout.driver_row(values)
        with state.held.hold() as (conn, raw):
            try:
                if not self.server_prepares:
                    return _insert_unnamed(raw, plan, row)
                return _insert(conn, raw, plan, row)
            except Exception as exc:
                raise wrapped(plan.sql, row, exc) from exc

    def insert_many(
        self, state: WorkerState, layout: InsertLayout, news: Sequence[NewJob], now: datetime
    ) -> list[JobId]:
        sql, params = self.insert_plan(layout).arrays(news, now)
        with state.held.hold() as (_conn, raw):  # autocommit: one round trip
            try:
                ids = [r[0] for r in raw.execute(sql, params).fetchall()]
            except Exception as exc:
                raise wrapped(sql, params, exc) from exc
        # the ids were drawn from the sequence in the order of the arrays (ORDER BY ordinality):
        # ascending is the order of `news`
        ids.sort()
        return ids

    # --- claim -------------------------------------------------------------------------------
    def claim(
        self,
        state: WorkerState,
        queues: Sequence[str],
        worker: str,
        now: datetime,
        max_run_time: float,
        can_run: CanRun,
        limit: int,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        steps = queue_steps(queues)
        st = self.statements.get()
        if len(steps) > 1:  # every step in one statement
            params = {**claim_params(self.store, ["*"], worker, now, max_run_time), **step_params(steps)}
            return self._claim_returning(state, st, params, steps_key(steps), list(skip_ids)[-BATCH:], can_run, limit)

        def step(queues: list[str], earlier: bool, limit: int, skip: Sequence[JobId]) -> list[Job]:
            params = claim_params(self.store, queues, worker, now, max_run_time)
            by_queue: ByQueue = ("queues" in params) and (EARLIER if earlier else True)
            return self._claim_returning(state, st, params, by_queue, list(skip)[-BATCH:], can_run, limit)

        return by_steps(step, queues, limit, skip_ids)

    def _claim_returning(
        self,
        state: WorkerState,
        st: ClaimStatements,
        params: dict[str, Any],
        by_queue: ByQueue,
        skip: list[JobId],
        can_run: CanRun,
        limit: int,
    ) -> list[Job]:
        """PostgreSQL: lock the next rows and read them in one statement (one round trip); rows
        the worker turns out not to run get their previous lock back at once, and are skipped."""
        now = params["now"]
        out: list[Job] = []
        skip = list(skip)
        for _ in range(CLAIM_SCAN // READ_AHEAD):
            want = limit - len(out)
            if skip:
                params["skip"] = skip[-BATCH:]
            with self._autocommit(state) as conn:
                rows = in_claim_order(
                    st, list(conn.execute(st.lock_returning(by_queue, bool(skip)), {**params, "n": want}).all())
                )
                unrunnable = []
                for row in rows:
                    # a further round must not find these again: the ready predicate accepts the
                    # rows this worker has just locked as its own
                    skip.append(row.id)
                    job = self.rows.to_job(row, now, NO_OWNERS)
                    if job.decodable and can_run(job):
                        out.append(Job(**{**job.__dict__, "stale": False}))
                    else:
                        unrunnable.append(
                            {**params, "job_id": row.id, "old_at": row.old_locked_at, "old_by": row.old_locked_by}
                        )
                if unrunnable:
                    conn.execute(st.unlock_back(), unrunnable)
            if len(out) >= limit or len(rows) < want:
                break
        return out

    # --- outcomes ----------------------------------------------------------------------------
    def complete(self, state: WorkerState, job: Job, worker: str, now: datetime, runtime: float) -> None:
        """Delete the job (if this worker still holds it) and record it finished, in one statement."""
        st = self.statements.get()
        values = finished_values(self.store, job, worker, now, runtime)
        unique = job.meta.get("unique")
        single = self._single(state) if unique is None else None
        with state.counters.outcome(now, processed=1, failed=0, single=single) as (conn, tally):
            tally[0] = len(conn.execute(st.complete_one(), values).all())
            if unique is not None:
                conn.execute(st.delete_unique(), {"job_table": self.store.table_name, "key": unique, "job_id": job.id})

    def complete_and_claim(
        self,
        state: WorkerState,
        job: Job,
        worker: str,
        now: datetime,
        runtime: float,
        queues: Sequence[str],
        max_run_time: float,
        can_run: CanRun,
        limit: int,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        """Complete `job` and lock up to `limit` next jobs in one statement. Harmless to repeat: a
        job already completed is neither recorded nor counted again, and rows a lost first
        attempt locked are this worker's own, which the ready predicate lets it claim again."""
        if job.meta.get("unique"):
            self.complete(state, job, worker, now, runtime)
            return self.claim(state, queues, worker, now, max_run_time, can_run, limit, skip_ids)
        st = self.statements.get()
        steps = queue_steps(queues)
        by_queue: ByQueue
        if len(steps) > 1:  # every step in the one statement
            params = {**claim_params(self.store, ["*"], worker, now, max_run_time), **step_params(steps)}
            by_queue = steps_key(steps)
        else:
            params = claim_params(self.store, steps[0], worker, now, max_run_time)
            by_queue = "queues" in params
        skip = list(skip_ids)[-BATCH:]
        if skip:
            params["skip"] = skip
        values = finished_values(self.store, job, worker, now, runtime)
        return self._complete_and_claim(state, st, params, values, by_queue, skip, can_run, limit)

    def _complete_and_claim(
        self,
        state: WorkerState,
        st: ClaimStatements,
        params: dict[str, Any],
        values: dict[str, Any],
        by_queue: ByQueue,
        skip: list[JobId],
        can_run: CanRun,
        limit: int,
    ) -> list[Job]:
        now = params["now"]
        out: list[Job] = []
        with state.counters.outcome(now, processed=1, failed=0, single=self._single(state)) as (conn, tally):
            finished = {f"f_{c}": v for c, v in values.items()}
            rows = conn.execute(
                st.complete_and_lock(by_queue, bool(skip)),
                {**params, **finished, "job_id": values["job_id"], "n": limit},
            ).all()
            done = tally[0] = rows[0].done
            locked = in_claim_order(st, [r for r in rows if r.id is not None])
            repeat = not done and st.split_locked
            if repeat:  # its rows may be what a lost first attempt locked: see `complete_and_lock`
                back = [
                    {**params, "job_id": r.id, "old_at": r.old_locked_at, "old_by": r.old_locked_by} for r in locked
                ]
                if back:
                    conn.execute(st.unlock_back(), back)
                locked = []
            unrunnable = []
            for row in locked:
                job = self.rows.to_job(row, now, NO_OWNERS)
                if job.decodable and can_run(job):
                    object.__setattr__(job, "stale", False)  # its lock is this claim's: see mark_locked
                    out.append(job)
                else:
                    unrunnable.append(
                        {**params, "job_id": row.id, "old_at": row.old_locked_at, "old_by": row.old_locked_by}
                    )
            if unrunnable:
                conn.execute(st.unlock_back(), unrunnable)
        if repeat:
            params.pop("skip", None)
            return self._claim_returning(state, st, params, by_queue, skip, can_run, limit)
        if unrunnable and len(locked) == limit:  # rows this worker cannot run took places: claim on past them
            skip = skip + [row.id for row in locked]  # the jobs just claimed too: see `_claim_returning`
            params.pop("skip", None)
            out += self._claim_returning(state, st, params, by_queue, skip, can_run, limit - len(out))
        return out

    def fail(
        self,
        state: WorkerState,
        job: Job,
        worker: str,
        now: datetime,
        error: str,
        retry_at: datetime | None,
        started_at: datetime | None = None,
    ) -> None:
        self.core.fail(state, job, worker, now, error, retry_at, started_at)

    def release(self, state: WorkerState, jobs: Sequence[Job], worker: str) -> None:
        self.core.release(state, jobs, worker)

    def refresh(self, state: WorkerState, job: Job, worker: str, now: datetime) -> bool:
        return self.core.refresh(state, job, worker, now)


def _insert(conn: sa.Connection, raw: Any, plan: PgInsert, row: list[Any]) -> JobId:
    """`plan.sql` for one row, its id back: on libpq's own prepared-statement call, with
    the parameters written here, which costs the client a third of psycopg's `execute` (its
    cursor, adaptation and result machinery, per call); psycopg's wait still drives the round
    trip, so Ctrl-C cancels it as ever. Values the fast path has no spelling for (anything but
    str, bytes, int and naive datetimes), or a connection not in UTF-8, go through `execute`."""
    params = plan.params(row) if plan.name is not None else None
    info = conn.connection.info
    ready = info.get(plan.name) if params is not None else False
    if ready is None:  # first use on this connection
        ready = info[plan.name] = raw.info.encoding == "utf-8" and _prepared(raw, plan, None)
    job_id: int
    if not ready:
        job_id = raw.execute(plan.sql, row, prepare=True).fetchone()[0]
        return job_id
    try:
        job_id = _prepared(raw, plan, params)
        return job_id
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != "26000":
            raise
    # the statement is gone (a DISCARD ALL, a pooler's reset): it inserted nothing, so
    # prepare it again and run it once more
    _prepared(raw, plan, None)
    job_id = _prepared(raw, plan, params)
    return job_id


def _insert_unnamed(raw: Any, plan: PgInsert, row: list[Any]) -> JobId:
    """`plan.sql` for one row without a prepared statement (`?prepare=off`): the same one round
    trip as `_insert`, the statement parsed with it."""
    params = plan.params(row) if plan.name is not None else None
    job_id: int
    if params is None or raw.info.encoding != "utf-8":
        job_id = raw.execute(plan.sql, row, prepare=False).fetchone()[0]
        return job_id
    job_id = _prepared(raw, plan, params, named=False)
    return job_id


def _prepared(raw: Any, plan: PgInsert, params: list[bytes | None] | None, named: bool = True) -> Any:
    """Prepare `plan`'s statement (params None; True once it exists) or run it (its id)."""
    global _PSYCOPG
    if _PSYCOPG is None:
        from psycopg import errors, generators, pq

        _PSYCOPG = (generators.execute, errors.error_from_result, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
    execute, error_from_result, tuples_ok, command_ok = _PSYCOPG
    pgconn = raw.pgconn
    with raw.lock:
        if params is None:
            pgconn.send_prepare(plan.name, plan.dollar_sql.encode())
        elif not named:
            pgconn.send_query_params(plan.dollar_sql.encode(), params, param_formats=plan.formats)
        else:
            pgconn.send_query_prepared(plan.name, params, plan.formats)
        result = raw.wait(execute(pgconn))[-1]
    if result.status == (command_ok if params is None else tuples_ok):
        return True if params is None else int(result.get_value(0, 0))
    error = error_from_result(result, encoding="utf-8")
    if params is None and error.sqlstate == "42P05":
        return True  # prepared on this connection by an earlier use whose mark was lost
    raise error


_PSYCOPG: tuple[Any, ...] | None = None


def _same(values: list[Any]) -> bool:
    """Whether every value is the first one (of its very type: True is not 1 to the database)."""
    first = values[0]
    kind = first.__class__
    return all(v.__class__ is kind and v == first for v in values)


def _pg_kind(column_type: Any) -> Any:
    """How `PgInsert` sends a column's values: binary bytes, text of an int or of a naive
    datetime; None for a type it leaves to psycopg."""
    impl = getattr(column_type, "impl_instance", column_type)
    if isinstance(impl, (sa.String, sa.LargeBinary)) and not isinstance(impl, sa.Enum):
        return _BINARY
    if isinstance(impl, sa.Integer):
        return int
    if isinstance(impl, sa.DateTime):
        return datetime
    return None
