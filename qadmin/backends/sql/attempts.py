"""Attempt history on SQL (`qadmin_attempts`): a record per run that did not succeed, written in
the transaction of the outcome it goes with; read back with the job's finished record or lock
(`backends/history.py`), and pruned once the job it describes is gone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.history import ATTEMPTS_KEPT, kept_error, split_error
from qadmin.backends.sql.store import Store
from qadmin.job import JobId
from qadmin.model import Attempt, Outcome


@dataclass(frozen=True)
class Run:
    """One run to record: the job, how it ended, when it started and ended, where, its error."""

    job_id: JobId
    outcome: Outcome
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None
    error: str | None


def record(conn: sa.Connection, store: Store, runs: Sequence[Run]) -> None:
    """Write `runs`, each numbered after the job's last, in the caller's transaction (which holds
    the job's row: no other writer numbers a run of it meanwhile); the oldest beyond
    ATTEMPTS_KEPT are dropped."""
    a = store.aux["attempts"]
    table = store.table_name
    for run in runs:
        mine = sa.and_(a.c.job_table == table, a.c.job_id == run.job_id)
        # numbered in the INSERT itself: one statement (one round trip on PostgreSQL), not a read first
        following = sa.select(sa.func.coalesce(sa.func.max(a.c.number), 0) + 1).where(mine).scalar_subquery()
        error = kept_error(run.error)
        insert = sa.insert(a).values(
            job_table=table,
            job_id=run.job_id,
            number=following,
            outcome=run.outcome.value,
            started_at=run.started_at,
            finished_at=run.finished_at,
            worker=run.worker,
            error=None if error is None else store.dialect.clean_text(error),
        )
        if store.dialect.returning:
            number = int(conn.execute(insert.returning(a.c.number)).scalar_one())
        else:
            conn.execute(insert)
            number = int(conn.execute(sa.select(sa.func.max(a.c.number)).where(mine)).scalar_one())
        trim(conn, store, run.job_id, number)


class FailedWithRun:
    """For a database with writable CTEs: the failure's UPDATE of the job's row and the run's record
    in one statement, one round trip as the failure alone was. Built once per jobs table and kind
    (retried, or failed for good), then run with `params`; it returns the run's number, one row when
    the job's row was written (still locked by the worker), none when it was not."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._built: dict[tuple[int, bool], Any] = {}

    def statement(self, retried: bool) -> Any:
        t = self.store.jobs()
        key = (id(t), retried)
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = self._build(t, retried)
        return built

    def params(self, job_id: JobId, worker: str, error: str, when: datetime, run: Run) -> dict[str, Any]:
        kept = kept_error(run.error)
        clean = self.store.dialect.clean_text
        return {
            "job_id": job_id,
            "owner": worker,
            "error": clean(error),
            "when": when,
            "now": run.finished_at,
            "run_outcome": run.outcome.value,
            "run_started": run.started_at,
            "run_worker": run.worker,
            "run_error": None if kept is None else clean(kept),
        }

    def _build(self, t: sa.Table, retried: bool) -> Any:
        a = self.store.aux["attempts"]
        values: dict[str, Any] = {
            "attempts": t.c.attempts + 1,
            self.store.error_col().name: sa.bindparam("error", type_=self.store.error_col().type),
            "locked_at": None,
            "locked_by": None,
            ("run_at" if retried else "failed_at"): sa.bindparam("when", type_=t.c.run_at.type),
        }
        if "updated_at" in t.c:
            values["updated_at"] = sa.bindparam("now", type_=t.c.updated_at.type)
        update = (
            sa.update(t)
            .where(t.c.id == sa.bindparam("job_id"), t.c.locked_by == sa.bindparam("owner"))
            .values(**values)
            .returning(t.c.id)
        )
        failed = update.cte("failed")
        table = self.store.table_name
        mine = sa.and_(a.c.job_table == table, a.c.job_id == failed.c.id)
        following = sa.select(sa.func.coalesce(sa.func.max(a.c.number), 0) + 1).where(mine).scalar_subquery()
        row = {
            "job_table": sa.literal(table, a.c.job_table.type),
            "job_id": failed.c.id,
            "number": following,
            "outcome": sa.bindparam("run_outcome", type_=a.c.outcome.type),
            "started_at": sa.bindparam("run_started", type_=a.c.started_at.type),
            "finished_at": sa.bindparam("now", type_=a.c.finished_at.type),
            "worker": sa.bindparam("run_worker", type_=a.c.worker.type),
            "error": sa.bindparam("run_error", type_=a.c.error.type),
        }
        chosen = sa.select(*row.values()).select_from(failed)
        return sa.insert(a).from_select(list(row), chosen).returning(a.c.number).add_cte(failed)


def trim(conn: sa.Connection, store: Store, job_id: JobId, number: int) -> None:
    """Drop the runs of a job ATTEMPTS_KEPT and more before its run `number`."""
    if number > ATTEMPTS_KEPT:
        a = store.aux["attempts"]
        mine = sa.and_(a.c.job_table == store.table_name, a.c.job_id == job_id)
        conn.execute(sa.delete(a).where(mine, a.c.number <= number - ATTEMPTS_KEPT))


class Attempts:
    def __init__(self, store: Store) -> None:
        self.store = store

    def of(self, job_id: JobId) -> tuple[list[Attempt], int]:
        """The runs kept of a job, oldest first, and how many were recorded in all."""
        self.store.jobs()
        if not self.store.aux_ready:
            self.store.look_for_aux()
        if not self.store.has_aux("attempts"):  # no qadmin since attempts were kept has written here
            return [], 0
        a = self.store.aux["attempts"]
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(a).where(a.c.job_table == self.store.table_name, a.c.job_id == job_id).order_by(a.c.number)
            ).all()
        kept = [_attempt(row) for row in rows]
        return kept, (rows[-1].number if rows else 0)

    def orphans(self) -> Any:
        """What a prune removes: the records of jobs no longer anywhere (pruned or deleted)."""
        a = self.store.aux["attempts"]
        t = self.store.jobs()
        table = self.store.table_name
        gone = [~sa.exists().where(t.c.id == a.c.job_id)]
        for kind in ("finished", "waiting"):
            other = self.store.aux[kind]
            if self.store.has_aux(kind):
                gone.append(~sa.exists().where(other.c.job_table == table, other.c.job_id == a.c.job_id))
        return sa.and_(a.c.job_table == table, *gone)


def _attempt(row: Any) -> Attempt:
    error, backtrace = split_error(row.error)
    try:
        outcome = Outcome(row.outcome)
    except ValueError:  # written by a later qadmin
        outcome = Outcome.FAILED
    return Attempt(
        number=row.number,
        outcome=outcome,
        started_at=row.started_at,
        finished_at=row.finished_at,
        worker=row.worker,
        error=error,
        backtrace=backtrace,
    )
