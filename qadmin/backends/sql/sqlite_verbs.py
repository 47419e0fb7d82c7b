"""SQLite's worker verbs: the statements run under the one write lock go straight to the driver
(`DriverSql`), bound before the lock is taken, and a claim reads its candidates from a snapshot
without the lock. SQLite has one writer at a time: the less a claim does while holding the
lock, the more worker processes add up. `CoreVerbs` is what they must agree with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import chain
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.driver import DriverSql, wrapped
from qadmin.backends.sql.layout import InsertLayout
from qadmin.backends.sql.rows import Row, mark_locked
from qadmin.backends.sql.sqlite import SqliteDialect
from qadmin.backends.sql.state import WorkerState
from qadmin.backends.sql.statements import EARLIER, ByQueue, ClaimStatements, queue_steps, step_params, steps_key
from qadmin.backends.sql.values import BATCH, keyset
from qadmin.backends.sql.verbs import (
    CLAIM_SCAN,
    READ_AHEAD,
    CanRun,
    CoreVerbs,
    WorkerParts,
    by_steps,
    claim_params,
    finished_values,
    runnable,
)
from qadmin.errors import QadminError
from qadmin.job import Job, JobId, NewJob

Bound = tuple[str, list[Any]]


class SqliteInsert:
    """A layout's INSERTs in SQLite's `?` placeholders."""

    def __init__(self, layout: InsertLayout) -> None:
        self.layout = layout
        row = f"({', '.join('?' for _ in layout.columns)})"
        self.sql = layout.insert_head + row
        self.count_sql = f"SELECT count(*) FROM {layout.table} WHERE {layout.quote('id')} BETWEEN ? AND ?"
        #: rows per multi-row INSERT, within the 999 bound parameters of any SQLite build
        self.multi_rows = min(100, 999 // len(layout.columns))
        self.multi_sql = layout.insert_head + ", ".join(row for _ in range(self.multi_rows))


class SqliteVerbs:
    def __init__(self, parts: WorkerParts, dialect: SqliteDialect) -> None:
        self.store = parts.store
        self.statements = parts.statements
        self.rows = parts.rows
        self.dialect = dialect
        #: fail, release and refresh: one statement each, as the reference runs them
        self.core = CoreVerbs(parts)
        self._insert: SqliteInsert | None = None

    def _sql(self, layout: InsertLayout) -> SqliteInsert:
        if self._insert is None or self._insert.layout is not layout:
            self._insert = SqliteInsert(layout)
        return self._insert

    # --- enqueue -----------------------------------------------------------------------------
    def insert_one(self, state: WorkerState, layout: InsertLayout, values: dict[str, Any]) -> JobId:
        row = layout.driver_row(values)
        with state.held.hold() as (conn, _raw), self.dialect.driver_transaction(conn) as raw:
            job_id: JobId = DriverSql.run(raw, (self._sql(layout).sql, row)).lastrowid
        return job_id

    def insert_many(
        self, state: WorkerState, layout: InsertLayout, news: Sequence[NewJob], now: datetime
    ) -> list[JobId]:
        """INSERTs of many rows each in one write transaction (its ids are consecutive there)."""
        sql = self._sql(layout)
        rows = layout.driver_rows(news, now)
        per, multi_sql = sql.multi_rows, sql.multi_sql
        whole = len(rows) - len(rows) % per
        with state.held.hold() as (conn, _raw), self.dialect.driver_transaction(conn) as raw:
            try:
                # many rows per statement: a statement's own work (and the sqlite_sequence
                # update of an AUTOINCREMENT table) is done once for all its rows, which halves
                # SQLite's CPU time per row against `executemany`
                for start in range(0, whole, per):
                    raw.execute(multi_sql, list(chain.from_iterable(rows[start : start + per])))
                if whole < len(rows):  # the rest one by one: one statement text whatever the count
                    raw.executemany(sql.sql, rows[whole:])
                last = raw.execute("SELECT last_insert_rowid()").fetchone()[0]
                first = last - len(rows) + 1
                # one writer, one transaction: each row took the next rowid (SQLite picks
                # another only once rowids run out, which this check would catch)
                if raw.execute(sql.count_sql, (first, last)).fetchone()[0] != len(rows):
                    raise QadminError("enqueue_many: the inserted rows' ids are not consecutive")
            except (sa.exc.SQLAlchemyError, QadminError):
                raise
            except Exception as exc:
                raise wrapped(sql.sql, [], exc) from exc
        return list(range(first, last + 1))

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
        def step(queues: list[str], earlier: bool, limit: int, skip_ids: Sequence[JobId]) -> list[Job]:
            st = self.statements.get()
            params = claim_params(self.store, queues, worker, now, max_run_time)
            by_queue: ByQueue = ("queues" in params) and (EARLIER if earlier else True)
            skip = list(skip_ids)[-BATCH:]
            if skip:
                params["skip"] = skip
            return self._claim_optimistic(state, st, params, by_queue, bool(skip), can_run, limit)

        return by_steps(step, queues, limit, skip_ids)

    def _claim_optimistic(
        self,
        state: WorkerState,
        st: ClaimStatements,
        params: dict[str, Any],
        by_queue: ByQueue,
        skip: bool,
        can_run: CanRun,
        limit: int,
    ) -> list[Job]:
        """Read the candidates from a snapshot, without the write lock, and decide which the
        worker can run; then take the write lock only to lock them, each by an UPDATE guarded
        by the ready predicate (a row another worker took meanwhile is passed over)."""
        now = params["now"]
        batch = max(READ_AHEAD, 2 * limit)
        pick: Any = None
        with state.held.hold() as (conn, raw):
            for _ in range(CLAIM_SCAN // READ_AHEAD):
                if pick is None:  # the first page, the one nearly every claim stops at
                    rows: list[Any] = self._candidates(st, raw, params, by_queue, skip, batch)
                else:
                    with self.store.read() as reader:
                        rows = list(reader.execute(pick, params).all())
                out: list[Job] = []
                pending = iter(rows)
                while len(out) < limit:
                    # decode only as many as are wanted, and spares (`claim_spare`); more only
                    # if others took these meanwhile
                    found = runnable(self.rows, pending, now, can_run, limit - len(out) + state.claim_spare)
                    if not found:
                        break
                    locks = self._bind_locks(st, params, found)  # bound before the write lock
                    with self.dialect.driver_transaction(conn):
                        won, lost = _run_locks(raw, locks, params, limit - len(out))
                    out += won
                    state.claim_spare = min(lost, limit)
                if out or len(rows) < batch:
                    return out
                after = keyset(st.cols, tuple(getattr(rows[-1], c.name) for c in st.cols), False)
                pick = st.candidates_after(by_queue, skip, batch, after)
        return []

    def _candidates(
        self,
        st: ClaimStatements,
        raw: Any,
        params: dict[str, Any],
        by_queue: ByQueue,
        skip: bool,
        batch: int,
        leave: JobId | None = None,
    ) -> list[Row]:
        """The next `batch` ready rows in claim order (but `leave`), read on the driver in
        autocommit (a snapshot of its own, no write lock). A row's values are converted only
        when it is first looked at: most claims look at one."""
        pick = st.driver(("candidates", by_queue, skip, batch), st.candidates(by_queue, skip, batch))
        at = pick.columns.index("id")
        return [Row(pick.values, row) for row in self._snapshot(pick, raw, params) if row[at] != leave]

    def _steps_candidates(
        self,
        st: ClaimStatements,
        raw: Any,
        steps: list[list[str]],
        params: dict[str, Any],
        skip: list[JobId],
        batch: int,
        leave: JobId,
    ) -> list[Row]:
        """`_candidates` over several queue steps, in one read (the completion and the locks
        then take the write lock once for all)."""
        params = {**params, **step_params(steps)}
        params.pop("queues", None)
        if skip:
            params["skip"] = skip
        key = steps_key(steps)
        pick = st.driver(("candidates_steps", key, bool(skip), batch), st.candidates_steps(key, bool(skip), batch))
        at = pick.columns.index("id")
        return [Row(pick.values, row) for row in self._snapshot(pick, raw, params) if row[at] != leave]

    def _snapshot(self, pick: DriverSql, raw: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """`pick`'s rows, read outside any transaction on the held connection, whose busy timeout
        the last write may have left off (`begin_immediate`): a read that met a busy file runs
        again with it, waiting as reads always have."""
        try:
            return pick.fetch(raw, params)
        except sa.exc.OperationalError as exc:
            if not self.dialect.wait_when_busy(raw, exc):
                raise
        return pick.fetch(raw, params)

    @staticmethod
    def _bind_locks(st: ClaimStatements, params: dict[str, Any], jobs: list[Job]) -> list[tuple[Job, Bound]]:
        lock = st.driver("lock", st.lock())
        return [(job, lock.args({**params, "job_id": job.id})) for job in jobs]

    # --- outcomes ----------------------------------------------------------------------------
    def complete(self, state: WorkerState, job: Job, worker: str, now: datetime, runtime: float) -> None:
        st = self.statements.get()
        values = finished_values(self.store, job, worker, now, runtime)
        completion = self._bind_completion(st, values, job.meta.get("unique"))
        with state.held.hold() as (conn, raw):
            outcome = state.counters.outcome(
                now, processed=1, failed=0, conn=conn, on_driver=self.dialect.driver_transaction
            )
            with outcome as (_, tally):
                tally[0] = _run_completion(raw, completion)

    def _bind_completion(self, st: ClaimStatements, values: dict[str, Any], unique: Any) -> list[Bound]:
        """The statements that complete a job, bound before the write lock is taken
        (`_run_completion` runs them under it): delete the job if this worker still holds it,
        record it as finished, free its unique key."""
        bound = [
            st.driver("delete", st.delete_locked()).args({"job_id": values["job_id"], "owner": values["worker"]}),
            st.driver("finished", st.record_finished_bound()).args({f"v_{c}": v for c, v in values.items()}),
        ]
        if unique is not None:
            bound.append(
                st.driver("delete_unique", st.delete_unique()).args(
                    {"job_table": self.store.table_name, "key": unique, "job_id": values["job_id"]}
                )
            )
        return bound

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
        """Complete `job` and lock up to `limit` next jobs in one write transaction, the
        candidates read and decoded before it, from a snapshot. Harmless to repeat: a job
        already completed is neither recorded nor counted again, and rows a lost first attempt
        locked are this worker's own, which the ready predicate lets it claim again."""
        st = self.statements.get()
        steps = queue_steps(queues)
        params = claim_params(self.store, steps[0], worker, now, max_run_time)
        by_queue: ByQueue = ("queues" in params) and (EARLIER if len(steps) > 1 else True)
        skip = list(skip_ids)[-BATCH:]
        if skip:
            params["skip"] = skip
        values = finished_values(self.store, job, worker, now, runtime)
        # a row or two more than wanted, for rows another worker locks between this read and
        # the write; and one more, the completed job, still there and locked by this worker
        # (which `ready` accepts). Fewer than wanted found: the worker's next claim reads on
        batch = 2 * limit + 1
        with state.held.hold() as (conn, raw):
            if len(steps) == 1:
                rows = self._candidates(st, raw, params, by_queue, bool(skip), batch, leave=job.id)
            else:
                base = claim_params(self.store, ["*"], worker, now, max_run_time)
                rows = self._steps_candidates(st, raw, steps, base, skip, batch, job.id)
            pending = iter(rows)
            # decoded and bound before the write lock: other workers wait while it is held
            found = runnable(self.rows, pending, now, can_run, limit + state.claim_spare)
            completion = self._bind_completion(st, values, job.meta.get("unique"))
            locks = self._bind_locks(st, params, found)
            out: list[Job] = []
            lost = 0
            outcome = state.counters.outcome(
                now, processed=1, failed=0, conn=conn, on_driver=self.dialect.driver_transaction
            )
            with outcome as (_, tally):
                tally[0] = _run_completion(raw, completion)
                while locks:
                    won, taken = _run_locks(raw, locks, params, limit - len(out))
                    out += won
                    lost += taken
                    if len(out) == limit:
                        break
                    # others took some meanwhile: the next candidates (rarely decoded under the lock)
                    more = runnable(self.rows, pending, now, can_run, limit - len(out))
                    locks = self._bind_locks(st, params, more)
            state.claim_spare = min(lost, limit)
        # none found among the candidates read: the worker's next claim reads further
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


def _run_completion(raw: Any, bound: list[Bound]) -> int:
    """Run `_bind_completion`'s statements: the rest only if the first deleted the job."""
    if not DriverSql.run(raw, bound[0]).rowcount:
        return 0
    for statement in bound[1:]:
        DriverSql.run(raw, statement)
    return 1


def _run_locks(raw: Any, locks: list[tuple[Job, Bound]], params: dict[str, Any], wanted: int) -> tuple[list[Job], int]:
    """Lock the jobs of `locks` in turn until `wanted` are locked (spares left untouched): the
    jobs locked, and how many were found taken by another worker."""
    now, worker = params["now"], params["worker"]
    out: list[Job] = []
    lost = 0
    for job, bound in locks:
        if len(out) == wanted:
            break
        if DriverSql.run(raw, bound).rowcount == 1:
            out.append(mark_locked(job, worker, now))
        else:
            lost += 1
    return out, lost
