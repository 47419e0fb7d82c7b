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
        last = conn.execute(sa.select(sa.func.max(a.c.number)).where(mine)).scalar()
        number = int(last or 0) + 1
        error = kept_error(run.error)
        conn.execute(
            sa.insert(a).values(
                job_table=table,
                job_id=run.job_id,
                number=number,
                outcome=run.outcome.value,
                started_at=run.started_at,
                finished_at=run.finished_at,
                worker=run.worker,
                error=None if error is None else store.dialect.clean_text(error),
            )
        )
        if number > ATTEMPTS_KEPT:
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
