"""Cancel on SQL: a waiting row removed and recorded as cancelled among the finished records, and
a running one's holder asked to stop through a row of `qadmin_cancels`, which its worker's
heartbeat reads (`WorkerSession.cancel_requested`) and its outcome deletes (`cancelled`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.cancel_requests import SETTLE_LIMIT, CancelRequest, settle
from qadmin.backends.sql.rows import NO_OWNERS, RowReader
from qadmin.backends.sql.selection import Selection
from qadmin.backends.sql.store import Store
from qadmin.backends.sql.values import parse_id
from qadmin.job import AuditEntry, Job, JobId, JobState

#: ids per transaction
CANCEL_BATCH = 500


class Cancelling:
    def __init__(
        self,
        store: Store,
        selection: Selection,
        rows: RowReader,
        record_audit: Callable[[AuditEntry, list[JobId]], None],
        job_of: Callable[[JobId], Job | None],
    ) -> None:
        self.store = store
        self.selection = selection
        self.rows = rows
        #: what settling a request needs: the audit log, and the job in any state (None: gone)
        self.record_audit = record_audit
        self.job_of = job_of

    def _waiting(self, now: datetime) -> Any:
        """Pending or scheduled, and unlocked: what a worker has not taken (as delete guards it)."""
        none: set[str] = set()
        return sa.or_(
            self.selection.state_clause(JobState.PENDING, now, False, none),
            self.selection.state_clause(JobState.SCHEDULED, now, False, none),
        )

    def _record(self, conn: sa.Connection, rows: Sequence[Any], now: datetime, actor: str, worker: str | None) -> None:
        if not rows:
            return
        f = self.store.aux["finished"]
        records = []
        for row in rows:
            job = self.rows.to_job(row, now, NO_OWNERS)
            records.append(
                {
                    "job_table": self.store.table_name,
                    "job_id": row.id,
                    "queue": job.queue,
                    "class_name": job.class_name,
                    "handler": job.raw,
                    "priority": job.priority,
                    "attempts": job.attempts,
                    "created_at": job.created_at,
                    "finished_at": now,
                    # how long a running job ran before its worker stopped it (its attempt's span)
                    "runtime": _ran(job, now) if worker is not None else None,
                    "worker": worker,
                    "cancelled_by": actor,
                }
            )
        conn.execute(sa.insert(f), records)

    def _take(self, conn: sa.Connection, ids: Sequence[JobId], guard: Any) -> list[Any]:
        """Delete the rows among `ids` still matching `guard`, giving back what they held."""
        t = self.store.jobs()
        if self.store.dialect.returning:
            return list(conn.execute(sa.delete(t).where(t.c.id.in_(ids), guard).returning(*t.c)).all())
        query = sa.select(t).where(t.c.id.in_(ids), guard)
        if self.store.dialect.row_locks:
            query = query.with_for_update()
        rows = list(conn.execute(query).all())
        if rows:
            conn.execute(sa.delete(t).where(t.c.id.in_([r.id for r in rows])))
        return rows

    def cancel(self, ids: Sequence[JobId], now: datetime, actor: str) -> list[JobId]:
        self.store.ensure_aux()
        t = self.store.jobs()
        w, c = self.store.aux["workers"], self.store.aux["cancels"]
        changed: list[JobId] = []
        int_ids = [parse_id(str(i)) for i in ids]
        qadmin_workers = sa.select(w.c.name).where(w.c.job_table == self.store.table_name)
        for start in range(0, len(int_ids), CANCEL_BATCH):
            chunk = int_ids[start : start + CANCEL_BATCH]
            with self.store.write() as conn:
                taken = self._take(conn, chunk, self._waiting(now))
                self._record(conn, taken, now, actor, None)
                changed.extend(r.id for r in taken)
                # running in a qadmin worker: asked to stop; any other holder cannot be told
                held = conn.execute(
                    sa.select(t.c.id).where(
                        t.c.id.in_(chunk), self.selection.locked(), t.c.locked_by.in_(qadmin_workers)
                    )
                ).all()
                for (job_id,) in held:
                    request = {"job_table": self.store.table_name, "job_id": str(job_id)}
                    conn.execute(sa.delete(c).where(*(c.c[k] == v for k, v in request.items())))
                    conn.execute(sa.insert(c).values(**request, requested_at=now, actor=actor))
                    changed.append(job_id)
        return changed

    def foreign_running(self, ids: Sequence[JobId]) -> list[JobId]:
        t = self.store.jobs()
        w = self.store.aux["workers"]
        int_ids = [parse_id(str(i)) for i in ids]
        out: list[JobId] = []
        with self.store.read() as conn:
            held = [self.selection.locked()]
            if self.store.has_aux("workers"):
                qadmin_workers = sa.select(w.c.name).where(w.c.job_table == self.store.table_name)
                held.append(sa.or_(t.c.locked_by.is_(None), t.c.locked_by.not_in(qadmin_workers)))
            for start in range(0, len(int_ids), CANCEL_BATCH):
                chunk = int_ids[start : start + CANCEL_BATCH]
                out.extend(r[0] for r in conn.execute(sa.select(t.c.id).where(t.c.id.in_(chunk), *held)))
        return out

    def requested(self, job: Job) -> bool:
        c = self.store.aux["cancels"]
        where = [c.c.job_table == self.store.table_name, c.c.job_id == str(job.id)]
        if job.locked_at is not None:
            # a request left from an earlier run of the job (it failed before the worker saw it)
            # is not meant for this one
            where.append(c.c.requested_at >= job.locked_at)
        with self.store.read() as conn:
            if not self.store.has_aux("cancels"):
                return False
            return conn.execute(sa.select(c.c.actor).where(*where).limit(1)).first() is not None

    def cancelled(self, job: Job, worker: str, now: datetime) -> bool:
        self.store.ensure_aux()
        t = self.store.jobs()
        c = self.store.aux["cancels"]
        mine = [c.c.job_table == self.store.table_name, c.c.job_id == str(job.id)]
        with self.store.write() as conn:
            request = conn.execute(sa.select(c.c.actor).where(*mine)).first()
            taken = self._take(conn, [parse_id(str(job.id))], t.c.locked_by == worker)
            self._record(conn, taken, now, request.actor if request is not None else "?", worker)
            conn.execute(sa.delete(c).where(*mine))
        return bool(taken)

    # --- requests no worker will act on (`backends/cancel_requests.py`) ---------------------------
    def _requests(self, where: list[Any], limit: int) -> list[CancelRequest]:
        if not self.store.has_aux("cancels"):
            self.store.jobs()
            self.store.look_for_aux()
            if not self.store.has_aux("cancels"):
                return []
        c = self.store.aux["cancels"]
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(c.c.job_id, c.c.requested_at, c.c.actor)
                .where(c.c.job_table == self.store.table_name, *where)
                .order_by(c.c.requested_at)
                .limit(limit)
            ).all()
        return [CancelRequest(parse_id(r.job_id), r.requested_at, r.actor) for r in rows]

    def request_for(self, job_id: JobId) -> CancelRequest | None:
        found = self._requests([self.store.aux["cancels"].c.job_id == str(job_id)], 1)
        return found[0] if found else None

    def settle(self, now: datetime, face: str, dry_run: bool = False) -> list[JobId]:
        c = self.store.aux["cancels"]

        def drop(request: CancelRequest) -> bool:
            mine = [c.c.job_table == self.store.table_name, c.c.job_id == str(request.job_id)]
            with self.store.write() as conn:
                return bool(conn.execute(sa.delete(c).where(*mine, c.c.requested_at == request.requested_at)).rowcount)

        requests = self._requests([], SETTLE_LIMIT)
        settled = settle(requests, self.job_of, drop, self.record_audit, now, face, dry_run=dry_run)
        return [r.job_id for r in settled]


def _ran(job: Job, now: datetime) -> float | None:
    return None if job.locked_at is None else max((now - job.locked_at).total_seconds(), 0.0)
