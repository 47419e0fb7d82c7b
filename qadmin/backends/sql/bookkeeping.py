"""qadmin's bookkeeping beside the jobs: paused queues, registered workers (and the lock holders
that are not qadmin's), and the audit log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from qadmin.backends.base import BackendOptions
from qadmin.backends.owners import owner_dead, parse_owner
from qadmin.backends.sql.selection import Selection
from qadmin.backends.sql.state import Counters
from qadmin.backends.sql.store import Store, inserted_id
from qadmin.backends.sql.values import as_utc, text_of
from qadmin.job import AuditEntry, JobId, WorkerInfo


class Bookkeeping:
    def __init__(self, store: Store, selection: Selection, options: BackendOptions) -> None:
        self.store = store
        self.dialect = store.dialect
        self.selection = selection
        self.options = options

    def paused_in(self, conn: sa.Connection) -> list[str]:
        if not self.store.has_aux("pauses"):
            return []
        p = self.store.aux["pauses"]
        return [
            r[0]
            for r in conn.execute(
                sa.select(p.c.queue).where(p.c.job_table == self.store.table_name).order_by(p.c.queue)
            )
        ]

    def paused(self) -> list[str]:
        with self.store.read() as conn:
            return self.paused_in(conn)

    def is_paused(self, queue: str) -> bool:
        return queue in self.paused()

    def pause(self, queue: str, now: datetime) -> bool:
        self.store.ensure_aux()
        p = self.store.aux["pauses"]
        with self.store.write() as conn:
            # two operators pausing at once: one pauses, the other is told it already was
            return self.dialect.insert_absent(
                conn, p, {"job_table": self.store.table_name, "queue": queue, "paused_at": now}
            )

    def resume(self, queue: str) -> bool:
        self.store.ensure_aux()
        p = self.store.aux["pauses"]
        with self.store.write() as conn:
            return (
                conn.execute(sa.delete(p).where(p.c.job_table == self.store.table_name, p.c.queue == queue)).rowcount
                > 0
            )

    def workers_in(self, conn: sa.Connection, now: datetime) -> list[WorkerInfo]:
        w = self.store.aux["workers"]
        out: list[WorkerInfo] = []
        beats: dict[str, datetime | None] = {}
        rows = (
            conn.execute(sa.select(w).where(w.c.job_table == self.store.table_name).order_by(w.c.name)).all()
            if self.store.has_aux("workers")
            else []
        )
        for r in rows:
            beats[r.name] = r.heartbeat_at
        for r in rows:
            out.append(
                WorkerInfo(
                    name=r.name,
                    host=r.host,
                    pid=r.pid,
                    queues=json.loads(r.queues or "[]"),
                    started_at=r.started_at,
                    heartbeat_at=r.heartbeat_at,
                    current_job=int(r.current_job) if r.current_job and r.current_job.isdigit() else r.current_job,
                    job_started_at=r.job_started_at,
                    processed=r.processed,
                    failed=r.failed,
                    stale=owner_dead(r.name, beats, now, self.options.worker_timeout),
                )
            )
        # lock holders that are not qadmin workers (delayed_job, DJJob) show as workers too
        t = self.store.jobs()
        known = {r.name for r in rows}
        foreign = conn.execute(
            sa.select(t.c.locked_by, sa.func.min(t.c.id), sa.func.min(t.c.locked_at))
            .where(self.selection.locked(), t.c.locked_by.is_not(None))
            .group_by(t.c.locked_by)
            .limit(1000)
        ).all()
        cutoff = now - timedelta(seconds=self.options.max_run_time)
        for locked_by, job_id, locked_at in foreign:
            owner = text_of(locked_by) or ""  # never empty: locked_by is not NULL
            if owner in known:
                continue
            host, pid = parse_owner(owner)
            locked_at = as_utc(locked_at)
            if not isinstance(locked_at, datetime):
                locked_at = None
            out.append(
                WorkerInfo(
                    name=owner,
                    host=host or "",
                    pid=pid or 0,
                    queues=[],
                    started_at=None,
                    heartbeat_at=None,
                    current_job=job_id,
                    job_started_at=locked_at,
                    stale=owner_dead(owner, {}, now, self.options.worker_timeout)
                    or (locked_at is not None and locked_at < cutoff),
                )
            )
        return out

    def workers(self, now: datetime) -> list[WorkerInfo]:
        with self.store.read() as conn:
            return self.workers_in(conn, now)

    def register_worker(self, info: WorkerInfo) -> None:
        self.store.ensure_aux()
        w = self.store.aux["workers"]
        with self.store.write() as conn:
            conn.execute(sa.delete(w).where(w.c.name == info.name))
            conn.execute(
                sa.insert(w).values(
                    name=info.name,
                    job_table=self.store.table_name,
                    host=info.host,
                    pid=info.pid,
                    queues=json.dumps(info.queues),
                    started_at=info.started_at,
                    heartbeat_at=info.heartbeat_at,
                    processed=0,
                    failed=0,
                )
            )

    def heartbeat(
        self,
        name: str,
        now: datetime,
        current_job: JobId | None,
        job_started_at: datetime | None,
        processed: int,
        failed: int,
    ) -> None:
        w = self.store.aux["workers"]
        with self.store.write() as conn:
            conn.execute(
                sa.update(w)
                .where(w.c.name == name)
                .values(
                    heartbeat_at=now,
                    current_job=None if current_job is None else str(current_job),
                    job_started_at=job_started_at,
                    processed=processed,
                    failed=failed,
                )
            )

    def unregister_worker(self, name: str, counters: Counters | None = None) -> None:
        """Remove the worker, give back the locks it still holds, and write `counters` (its
        session's buffered counts) in the same transaction."""
        t = self.store.jobs()
        w = self.store.aux["workers"]
        with self.store.write() as conn:
            conn.execute(sa.delete(w).where(w.c.name == name))
            # delayed_job's ClearLocks: a stopping worker gives back whatever it still holds
            conn.execute(
                sa.update(t)
                .where(t.c.locked_by == name, self.selection.locked())
                .values(locked_at=None, locked_by=None)
            )
            taken = counters.write_all(conn) if counters is not None else {}
        if counters is not None:
            counters.forget(taken)

    def record_audit(self, entry: AuditEntry, job_ids: Sequence[JobId]) -> None:
        self.store.ensure_aux()
        a, aj = self.store.aux["audit"], self.store.aux["audit_jobs"]
        with self.store.write() as conn:
            audit_id = inserted_id(
                conn.execute(
                    sa.insert(a).values(
                        job_table=self.store.table_name,
                        at=entry.at,
                        actor=entry.actor,
                        face=entry.face,
                        verb=entry.verb,
                        selection=json.dumps(entry.selection, ensure_ascii=False, default=str),
                        matched=entry.matched,
                        changed=entry.changed,
                        skipped=entry.skipped,
                        dry_run=entry.dry_run,
                    )
                )
            )
            self.dialect.insert_column(
                conn,
                aj,
                {"audit_id": audit_id, "job_table": self.store.table_name},
                "job_id",
                [str(i) for i in job_ids],
            )

    def audit(self, limit: int = 100, job_id: JobId | None = None) -> list[AuditEntry]:
        if not self.store.aux_ready:
            self.store.look_for_aux()
        if not (self.store.has_aux("audit") and self.store.has_aux("audit_jobs")):
            return []
        a, aj = self.store.aux["audit"], self.store.aux["audit_jobs"]
        query = sa.select(a).where(a.c.job_table == self.store.table_name)
        if job_id is not None:
            query = query.where(
                a.c.id.in_(
                    sa.select(aj.c.audit_id).where(aj.c.job_table == self.store.table_name, aj.c.job_id == str(job_id))
                )
            )
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(a.c.id.desc()).limit(limit)).all()
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                actor=r.actor,
                face=r.face,
                verb=r.verb,
                selection=json.loads(r.selection),
                matched=r.matched,
                changed=r.changed,
                skipped=r.skipped,
                dry_run=bool(r.dry_run),
            )
            for r in rows
        ]
