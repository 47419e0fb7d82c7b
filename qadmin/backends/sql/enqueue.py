"""Enqueue: plain jobs through the worker verbs' inserts (each database's fastest), unique jobs
in a transaction that finds or takes their key."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.layout import InsertLayout, Layouts
from qadmin.backends.sql.reads import Reads
from qadmin.backends.sql.rows import NO_OWNERS, Row, RowReader
from qadmin.backends.sql.state import Counters, HeldConnection, WorkerState
from qadmin.backends.sql.store import Store, inserted_id
from qadmin.backends.sql.values import as_utc
from qadmin.backends.sql.verbs import WorkerVerbs
from qadmin.errors import QadminError
from qadmin.job import Job, JobId, NewJob, utcnow

#: rows per bulk INSERT
ENQUEUE_BATCH = 5000


class Enqueue:
    """A client's enqueues. It holds a connection checked out from one enqueue to the next (for
    the thread that enqueues most; other threads take one per call): a pool checkout and return
    cost more than the INSERT. `close` gives it back."""

    def __init__(self, store: Store, layouts: Layouts, verbs: WorkerVerbs, rows: RowReader, reads: Reads) -> None:
        self.store = store
        self.layouts = layouts
        self.verbs = verbs
        self.rows = rows
        self.reads = reads
        self.state = WorkerState(HeldConnection(store, store.dialect.hot_engine), Counters(store, interval=0.0))

    def close(self) -> None:
        self.state.held.release()

    def enqueue(self, new: NewJob, now: datetime | None = None) -> Job:
        now = now or utcnow()
        layout = self.layouts.get()
        values = layout.values(new, now)
        if new.unique is None:
            return self._written(layout, values, self.verbs.insert_one(self.state, layout, values), now)
        return self.reads.get(self._enqueue_unique(new, values), now)

    def insert_in(self, conn: sa.Connection, new: NewJob, now: datetime) -> Job:
        """`new` (not unique) inserted in the caller's transaction on `conn`: a recurring tick's
        job commits or rolls back with the tick's compare-and-set."""
        layout = self.layouts.get()
        values = layout.values(new, now)
        return self._written(layout, values, inserted_id(conn.execute(sa.insert(layout.t).values(**values))), now)

    def _written(self, layout: InsertLayout, values: dict[str, Any], job_id: JobId, now: datetime) -> Job:
        """The Job from the values written, without a second read: what the column types store
        is what they give back."""
        stored = dict.fromkeys(layout.all_columns)
        for name, value in values.items():
            stored[name] = as_utc(value) if isinstance(value, datetime) and value.tzinfo is not UTC else value
        stored["id"] = job_id
        return self.rows.to_job(Row(stored), now, NO_OWNERS)

    def _enqueue_unique(self, new: NewJob, values: dict[str, object]) -> JobId:
        self.store.ensure_aux()
        t = self.store.jobs()
        u = self.store.aux["unique"]
        key = sa.and_(u.c.job_table == self.store.table_name, u.c.key == new.unique)
        for _ in range(10):
            try:
                with self.store.write() as conn:
                    find = sa.select(u.c.job_id).where(key)
                    if self.store.dialect.row_locks:
                        find = find.with_for_update()
                    existing: JobId | None = conn.execute(find).scalar_one_or_none()
                    if existing is not None:
                        alive = conn.execute(
                            sa.select(t.c.id).where(t.c.id == existing, t.c.failed_at.is_(None))
                        ).first()
                        if alive is not None:
                            return existing
                        conn.execute(sa.delete(u).where(key))
                    job_id = inserted_id(conn.execute(sa.insert(t).values(**values)))
                    conn.execute(sa.insert(u).values(job_table=self.store.table_name, key=new.unique, job_id=job_id))
                return job_id
            except QadminError as exc:
                if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                    raise
                time.sleep(0.01)  # another process took the key first: read its job next time
        raise QadminError(f"could not enqueue unique job {new.unique!r}: too much contention")

    def enqueue_many(self, news: Sequence[NewJob], now: datetime | None = None) -> list[JobId]:
        """Plain jobs in few statements (SQLite: INSERTs of many rows each in one write
        transaction; PostgreSQL: one INSERT from arrays), unique jobs one by one, as `enqueue`
        does them. Ids come back in the order of `news`."""
        now = now or utcnow()
        plain = [n for n in news if n.unique is None]
        ids: list[JobId] = []
        if plain:
            layout = self.layouts.get()
            for start in range(0, len(plain), ENQUEUE_BATCH):
                ids.extend(self.verbs.insert_many(self.state, layout, plain[start : start + ENQUEUE_BATCH], now))
        if len(plain) == len(news):
            return ids
        in_order: list[JobId] = []
        plain_ids = iter(ids)
        for new in news:
            in_order.append(next(plain_ids) if new.unique is None else self.enqueue(new, now).id)
        return in_order
