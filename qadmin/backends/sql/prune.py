"""Pruning on SQL: failed rows of the jobs table, qadmin's finished records and dead workers'
registrations older than their retention, and the marker that lets one worker at a time prune.

Every removal runs in short batches, one transaction each, re-checking its condition as it
deletes: a prune of millions of rows never holds SQLite's one write lock for long, and a failed
row retried meanwhile (its `failed_at` cleared) is not removed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.attempts import Attempts
from qadmin.backends.sql.history import History
from qadmin.backends.sql.store import Store
from qadmin.job import JobId
from qadmin.model import PRUNE_IDS_SHOWN, PruneReport

#: rows per delete transaction: short enough that workers waiting on SQLite's write lock barely
#: notice, long enough that a million rows take a few thousand statements
PRUNE_BATCH = 2000
#: the `qadmin_counters` row that says when a worker of this table last pruned (epoch seconds)
PRUNE_MARKER = "last_prune"


class Prune:
    def __init__(self, store: Store, history: History | None = None) -> None:
        self.store = store
        self.history = history
        self.dialect = store.dialect

    def prune(
        self,
        now: datetime,
        *,
        failed_before: datetime | None,
        finished_before: datetime | None,
        workers_before: datetime | None,
        dry_run: bool = False,
    ) -> PruneReport:
        report = PruneReport(failed_before, finished_before, workers_before, dry_run=dry_run)
        t = self.store.jobs()
        if failed_before is not None:
            # what delayed_job and DJJob themselves call failed: `failed_at` set (a row waiting for
            # its next attempt has it NULL, and is never pruned)
            guard = sa.and_(t.c.failed_at.is_not(None), t.c.failed_at < failed_before)
            if dry_run:
                report.failed = self._count(t, guard)
                report.failed_ids = self._first_ids(t, guard)
            else:
                self._delete(t, t.c.id, guard, report.note_failed)
        if not self.store.aux_ready:
            self.store.look_for_aux()
        if finished_before is not None and self.store.has_aux("finished"):
            f = self.store.aux["finished"]
            guard = sa.and_(f.c.job_table == self.store.table_name, f.c.finished_at < finished_before)
            if dry_run:
                report.finished = self._count(f, guard)
            else:
                self._delete(f, f.c.id, guard, lambda ids: setattr(report, "finished", report.finished + len(ids)))
        if finished_before is not None and not dry_run and self.store.has_aux("results"):
            # the return values go with their finished records (not counted apart: part of them)
            r = self.store.aux["results"]
            guard = sa.and_(r.c.job_table == self.store.table_name, r.c.finished_at < finished_before)
            self._delete(r, r.c.id, guard, lambda ids: None)
        if (
            (failed_before is not None or finished_before is not None)
            and not dry_run
            and self.store.has_aux("attempts")
        ):
            # the runs of the jobs just pruned (or deleted before): part of them, not counted apart
            a = self.store.aux["attempts"]
            self._delete(a, a.c.id, Attempts(self.store).orphans(), lambda ids: None)
        if workers_before is not None and self.store.has_aux("workers"):
            w = self.store.aux["workers"]
            silent = sa.or_(
                w.c.heartbeat_at < workers_before,
                sa.and_(w.c.heartbeat_at.is_(None), w.c.started_at < workers_before),
            )
            guard = sa.and_(w.c.job_table == self.store.table_name, silent)
            if dry_run:
                with self.store.read() as conn:
                    report.worker_names = [r[0] for r in conn.execute(sa.select(w.c.name).where(guard))]
            else:
                self._delete(w, w.c.name, guard, report.worker_names.extend)
            report.workers = len(report.worker_names)
        if self.history is not None and not dry_run:
            # history buckets past their retention (not counted: no one asked for them by age)
            self.history.prune(now)
        return report

    def _count(self, table: sa.Table, guard: Any) -> int:
        with self.store.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(guard)).scalar_one())

    def _first_ids(self, table: sa.Table, guard: Any) -> list[JobId]:
        with self.store.read() as conn:
            return list(
                conn.execute(sa.select(table.c.id).where(guard).order_by(table.c.id).limit(PRUNE_IDS_SHOWN)).scalars()
            )

    def _delete(self, table: sa.Table, key: Any, guard: Any, removed: Callable[[list[Any]], None]) -> None:
        """Delete the rows matching `guard`, PRUNE_BATCH per transaction, the guard checked again
        by the DELETE itself; `removed` hears the keys of each batch's deleted rows."""
        while True:
            with self.store.write() as conn:
                keys = list(conn.execute(sa.select(key).where(guard).order_by(key).limit(PRUNE_BATCH)).scalars())
                if not keys:
                    return
                where = sa.and_(key.in_(keys), guard)
                if self.dialect.returning:
                    gone = list(conn.execute(sa.delete(table).where(where).returning(key)).scalars())
                else:
                    if self.dialect.row_locks:  # the rows stay as read until they are deleted
                        keys = list(conn.execute(sa.select(key).where(where).with_for_update()).scalars())
                    conn.execute(sa.delete(table).where(key.in_(keys)))
                    gone = keys
            removed(gone)
            if len(keys) < PRUNE_BATCH:
                return

    def take_turn(self, now: datetime, every: float) -> bool:
        """Whether this caller prunes now: True for the one that moves the table's marker (a
        guarded UPDATE, or the INSERT that creates it) past `every` seconds since the last prune."""
        self.store.ensure_aux()
        c = self.store.aux["counters"]
        stamp = int(now.timestamp())
        mine = sa.and_(c.c.job_table == self.store.table_name, c.c.name == PRUNE_MARKER)
        with self.store.write() as conn:
            if self.dialect.insert_absent(
                conn, c, {"job_table": self.store.table_name, "name": PRUNE_MARKER, "value": stamp}
            ):
                return True
            moved = conn.execute(sa.update(c).where(mine, c.c.value <= stamp - int(every)).values(value=stamp))
            return moved.rowcount == 1
