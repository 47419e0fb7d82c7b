"""The worker's verbs (enqueue's inserts, claim, complete, fail, release, refresh) as one
interface, `WorkerVerbs`, and its portable reference, `CoreVerbs`: plain SQLAlchemy Core,
correct on any database. SQLite (`SqliteVerbs`) and PostgreSQL (`PreparedPg`) have faster ones
of their own that must agree with it (tests/backends/test_sql_prepared_agree.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from qadmin.backends.history import failure_outcome
from qadmin.backends.sql.attempts import FailedWithRun, Run, record, trim
from qadmin.backends.sql.layout import InsertLayout
from qadmin.backends.sql.rows import NO_OWNERS, RowReader, mark_locked
from qadmin.backends.sql.state import Single, WorkerState
from qadmin.backends.sql.statements import EARLIER, ByQueue, Prebuilt, queue_steps
from qadmin.backends.sql.store import Store, inserted_id
from qadmin.backends.sql.values import BATCH, keyset
from qadmin.job import Job, JobId, NewJob

#: candidate rows a claim reads ahead (delayed_job's read_ahead is 5)
READ_AHEAD = 5
#: rows a claim reads at most, in batches of READ_AHEAD, looking for one the worker can run
CLAIM_SCAN = 500

CanRun = Callable[[Job], bool]


@dataclass(frozen=True)
class WorkerParts:
    """What the worker's verbs are built from."""

    store: Store
    statements: Prebuilt
    rows: RowReader


class WorkerVerbs(Protocol):
    """The worker's verbs on one database. `state` is the calling worker's own (a session's, or a
    fresh one for the backend's one-shot verbs); the verbs keep none between calls."""

    def insert_one(self, state: WorkerState, layout: InsertLayout, values: dict[str, Any]) -> JobId: ...

    def insert_many(
        self, state: WorkerState, layout: InsertLayout, news: Sequence[NewJob], now: datetime
    ) -> list[JobId]: ...

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
    ) -> list[Job]: ...

    def complete(self, state: WorkerState, job: Job, worker: str, now: datetime, runtime: float) -> None: ...

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
    ) -> list[Job]: ...

    def fail(
        self,
        state: WorkerState,
        job: Job,
        worker: str,
        now: datetime,
        error: str,
        retry_at: datetime | None,
        started_at: datetime | None = None,
    ) -> None: ...

    def release(self, state: WorkerState, jobs: Sequence[Job], worker: str) -> None: ...

    def refresh(self, state: WorkerState, job: Job, worker: str, now: datetime) -> bool: ...


class CoreVerbs:
    """The reference: each verb a transaction of plain SQLAlchemy Core statements. `single`: how
    a verb of one statement runs (by default a write transaction; PostgreSQL's fast verbs give
    an autocommit statement on the worker's held connection)."""

    def __init__(self, parts: WorkerParts, single: Callable[[WorkerState], Single] | None = None) -> None:
        self.store = parts.store
        self.statements = parts.statements
        self.rows = parts.rows
        self._single = single or (lambda _state: self.store.write)
        self._failed_with_run = FailedWithRun(self.store)

    def insert_one(self, state: WorkerState, layout: InsertLayout, values: dict[str, Any]) -> JobId:
        with self._single(state)() as conn:
            job_id = inserted_id(conn.execute(sa.insert(layout.t), values))
        return job_id

    def insert_many(
        self, state: WorkerState, layout: InsertLayout, news: Sequence[NewJob], now: datetime
    ) -> list[JobId]:
        t = layout.t
        rows = [layout.values(n, now) for n in news]
        with self.store.write() as conn:
            if not self.store.engine.dialect.insert_executemany_returning:
                return [inserted_id(conn.execute(sa.insert(t), row)) for row in rows]
            result = conn.execute(sa.insert(t).returning(t.c.id, sort_by_parameter_order=True), rows)
            return [r[0] for r in result]

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
        def step(queues: list[str], earlier: bool, limit: int, skip: Sequence[JobId]) -> list[Job]:
            return self._claim_step(queues, earlier, worker, now, max_run_time, can_run, limit, skip)

        return by_steps(step, queues, limit, skip_ids)

    def _claim_step(
        self,
        queues: list[str],
        earlier: bool,
        worker: str,
        now: datetime,
        max_run_time: float,
        can_run: CanRun,
        limit: int,
        skip_ids: Sequence[JobId],
    ) -> list[Job]:
        """Read the candidates (row-locked, skipping rows others locked, where the database can)
        and lock each the worker can run by an UPDATE guarded by the ready predicate."""
        st = self.statements.get()
        params = claim_params(self.store, queues, worker, now, max_run_time)
        by_queue: ByQueue = ("queues" in params) and (EARLIER if earlier else True)
        skip = list(skip_ids)[-BATCH:]
        if skip:
            params["skip"] = skip
        out: list[Job] = []
        batch = max(READ_AHEAD, limit)
        with self.store.write() as conn:
            # read ahead in small batches, past rows this worker cannot run (other applications'
            # classes), so that a runnable job behind them is still reached in this claim
            pick = st.candidates(by_queue, bool(skip), batch)
            for _ in range(CLAIM_SCAN // READ_AHEAD):
                rows = conn.execute(pick, params).all()
                for row in rows:
                    job = self.rows.to_job(row, now, NO_OWNERS)
                    if not job.decodable or not can_run(job):
                        continue
                    if conn.execute(st.lock(), {**params, "job_id": row.id}).rowcount == 1:
                        out.append(mark_locked(job, worker, now))
                        if len(out) == limit:
                            return out
                if out or len(rows) < batch:
                    break
                after = keyset(st.cols, tuple(getattr(rows[-1], c.name) for c in st.cols), False)
                pick = st.candidates_after(by_queue, bool(skip), batch, after)
        return out

    def complete(self, state: WorkerState, job: Job, worker: str, now: datetime, runtime: float) -> None:
        st = self.statements.get()
        values = finished_values(self.store, job, worker, now, runtime)
        unique = job.meta.get("unique")
        single = self._single(state) if unique is None else None
        with state.counters.outcome(now, processed=1, failed=0, single=single) as (conn, tally):
            tally[0] = conn.execute(st.delete_locked(), {"job_id": job.id, "owner": worker}).rowcount
            if tally[0]:
                conn.execute(st.record_finished(), values)
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
        self.complete(state, job, worker, now, runtime)
        return self.claim(state, queues, worker, now, max_run_time, can_run, limit, skip_ids)

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
        """With the run's record (`qadmin_attempts`) in the same write: one statement where the
        database has writable CTEs (PostgreSQL: one round trip, as before), else one transaction."""
        t = self.store.jobs()
        values: dict[str, Any] = {
            "attempts": t.c.attempts + 1,
            self.store.error_col().name: self.store.dialect.clean_text(error),
            "locked_at": None,
            "locked_by": None,
        }
        if retry_at is not None:
            values["run_at"] = retry_at
        else:
            values["failed_at"] = now
        if "updated_at" in t.c:
            values["updated_at"] = now
        run = Run(job.id, failure_outcome(error, retry_at), started_at or job.locked_at, now, worker, error)
        if self.store.dialect.writable_ctes:
            self.store.ensure_aux()
            both = self._failed_with_run.statement(retry_at is not None)
            params = self._failed_with_run.params(job.id, worker, error, retry_at or now, run)
            with state.counters.outcome(now, processed=1, failed=1, single=self._single(state)) as (conn, tally):
                numbers = list(conn.execute(both, params).scalars())
                # counted only if written: a worker that lost its lock failed nothing here
                tally[0] = tally[1] = 1 if numbers else 0
                if numbers:
                    trim(conn, self.store, job.id, int(numbers[0]))
            return
        with state.counters.outcome(now, processed=1, failed=1) as (conn, tally):
            written = conn.execute(
                sa.update(t).where(t.c.id == job.id, t.c.locked_by == worker).values(**values)
            ).rowcount
            # counted only if written: a worker that lost its lock failed nothing here
            tally[0] = tally[1] = 1 if written else 0
            if written:
                record(conn, self.store, [run])

    def release(self, state: WorkerState, jobs: Sequence[Job], worker: str) -> None:
        if not jobs:
            return
        st = self.statements.get()
        with self.store.write() as conn:
            conn.execute(st.release(), [{"job_id": j.id, "owner": worker} for j in jobs])

    def refresh(self, state: WorkerState, job: Job, worker: str, now: datetime) -> bool:
        t = self.store.jobs()
        with self._single(state)() as conn:
            renewed = conn.execute(
                sa.update(t)
                .where(t.c.id == job.id, t.c.locked_by == worker, t.c.failed_at.is_(None))
                .values(locked_at=now)
            ).rowcount
        return renewed == 1


def by_steps(
    claim_step: Callable[[list[str], bool, int, Sequence[JobId]], list[Job]],
    queues: Sequence[str],
    limit: int,
    skip_ids: Sequence[JobId],
) -> list[Job]:
    """Up to `limit` jobs, the worker's queues served in the order given (`queue_steps`): a
    queue's jobs before the next's. `claim_step(queues, earlier, limit, skip)` claims from one."""
    steps = queue_steps(queues)
    out: list[Job] = []
    for i, step in enumerate(steps):
        taken = list(skip_ids) + [j.id for j in out]  # a `*` step would find them again
        out += claim_step(step, i < len(steps) - 1, limit - len(out), taken)
        if len(out) >= limit:
            break
    return out


def claim_params(
    store: Store, queues: Sequence[str], worker: str, now: datetime, max_run_time: float
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "now": now,
        "expired": now - timedelta(seconds=max_run_time),
        "worker": worker,
        "job_table": store.table_name,
    }
    if queues and "*" not in queues:
        params["queues"] = list(queues)
    return params


def finished_values(store: Store, job: Job, worker: str, now: datetime, runtime: float) -> dict[str, Any]:
    return {
        "job_table": store.table_name,
        "job_id": job.id,
        "queue": job.queue,
        "class_name": job.class_name,
        "handler": job.raw,
        "priority": job.priority,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "finished_at": now,
        "runtime": runtime,
        "worker": worker,
    }


def runnable(rows: RowReader, pending: Iterator[Any], now: datetime, can_run: CanRun, wanted: int) -> list[Job]:
    """Decode rows from `pending` until `wanted` the worker can run are found (rows it cannot run
    are passed over, and stay where they are)."""
    out: list[Job] = []
    if wanted <= 0:
        return out
    for row in pending:
        job = rows.to_job(row, now, NO_OWNERS)
        if job.decodable and can_run(job):
            out.append(job)
            if len(out) == wanted:
                break
    return out
