"""Jobs of dead qadmin workers given back by the live ones (`WorkerSession.rescue`) on SQL.

A holder counts as dead only when it is a registered qadmin worker whose heartbeat stopped
(`owners.heartbeat_stopped`): a delayed_job or DJJob holder has no heartbeat here, and its lock
is left to its library's max run time. The give-back is `Changes.unlock_if`, whose guard is
checked again as each batch is written: a job is given back once however many workers rescue
at once, and a lock renewed or taken meanwhile (a newer `locked_at`, another holder, or a holder
that beat again) is not touched.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from qadmin.backends.base import BackendOptions
from qadmin.backends.history import rescue_error
from qadmin.backends.owners import heartbeat_stopped
from qadmin.backends.rescue import rescue_entry
from qadmin.backends.sql.attempts import Run, record
from qadmin.backends.sql.bookkeeping import Bookkeeping
from qadmin.backends.sql.changes import Changes
from qadmin.backends.sql.selection import Selection
from qadmin.backends.sql.store import Store
from qadmin.job import JobId
from qadmin.model import Outcome

#: the name of the rescued-jobs total in qadmin's counters table
RESCUED = "rescued"


class Rescue:
    def __init__(
        self, store: Store, selection: Selection, changes: Changes, bookkeeping: Bookkeeping, options: BackendOptions
    ) -> None:
        self.store = store
        self.selection = selection
        self.changes = changes
        self.bookkeeping = bookkeeping
        self.options = options

    def rescue(self, worker: str, now: datetime) -> dict[str, list[JobId]]:
        self.store.ensure_aux()
        t, w = self.store.jobs(), self.store.aux["workers"]
        timeout = self.options.worker_timeout
        # a lock taken after the holder's last beat is as old as that at most: both are judged
        cutoff = now - timedelta(seconds=timeout)
        old_lock = sa.and_(self.selection.locked(), t.c.locked_at < cutoff)
        with self.store.read() as conn:
            owners = {
                r[0]
                for r in conn.execute(sa.select(t.c.locked_by).where(old_lock, t.c.locked_by.is_not(None)).distinct())
                if isinstance(r[0], str)  # a BLOB or a number names no worker
            }
            beats = self.selection.heartbeats(conn, owners)
            dead = sorted(o for o in owners if heartbeat_stopped(o, beats, now, timeout))
            if not dead:
                return {}
            held = conn.execute(
                sa.select(t.c.id, t.c.locked_by, t.c.locked_at).where(old_lock, t.c.locked_by.in_(dead))
            ).all()
        beat_since = sa.exists().where(w.c.name == t.c.locked_by, w.c.heartbeat_at >= cutoff)
        given = set(
            self.changes.unlock_if(
                [r.id for r in held], sa.and_(t.c.locked_by.in_(dead), t.c.locked_at < cutoff, ~beat_since)
            )
        )
        if not given:
            return {}
        by_holder: dict[str, list[JobId]] = {}
        runs: list[Run] = []
        for job_id, holder, locked_at in held:
            if job_id in given:
                by_holder.setdefault(holder, []).append(job_id)
                error = rescue_error(holder, beats.get(holder), worker)
                runs.append(Run(job_id, Outcome.RESCUED, locked_at, beats.get(holder), holder, error))
        ids = [i for ids in by_holder.values() for i in ids]
        with self.store.write() as conn:
            record(conn, self.store, runs)
            self.store.dialect.increment(
                conn,
                self.store.aux["counters"],
                {"job_table": self.store.table_name, "name": RESCUED},
                {"value": len(ids)},
            )
        self.bookkeeping.record_audit(rescue_entry(worker, now, timeout, by_holder, len(held)), ids)
        return by_holder
