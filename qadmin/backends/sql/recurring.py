"""Recurring schedules on SQL (`qadmin_recurring`): one row per schedule, its definition as JSON
beside the memory of its runs. A tick's job is inserted in the transaction whose compare-and-set
moves `last_tick` forward, so among any number of scheduler processes exactly one enqueues it:
SQLite runs writers one at a time (BEGIN IMMEDIATE); on PostgreSQL the second UPDATE waits for
the first's row lock and then finds its condition false."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.enqueue import Enqueue
from qadmin.backends.sql.store import Store
from qadmin.errors import QadminError, ScheduleNotFound
from qadmin.job import Job, NewJob
from qadmin.recurring import RecurringEntry, Schedule

_log = logging.getLogger("qadmin.recurring")


def _schedule(row: Any) -> Schedule:
    d = json.loads(row.definition)
    return Schedule(
        name=row.name,
        job_class=d["class"],
        args=d.get("args", []),
        kwargs=d.get("kwargs", {}),
        queue=d.get("queue"),
        priority=d.get("priority"),
        cron=d.get("cron"),
        every=d.get("every"),
        timezone=d.get("timezone", "UTC"),
        description=d.get("description", ""),
        enabled=bool(row.enabled),
        source=row.source,
    )


def _time(value: Any) -> datetime | None:
    """A stored time, or None for one the column cannot read (`times.Unreadable`)."""
    return value if isinstance(value, datetime) else None


def _same_timing(a: Schedule, b: Schedule) -> bool:
    return (a.cron, a.every, a.timezone) == (b.cron, b.every, b.timezone)


class Schedules:
    def __init__(self, store: Store, enqueuer: Enqueue) -> None:
        self.store = store
        self.enqueuer = enqueuer

    def _table(self) -> sa.Table:
        return self.store.aux["recurring"]

    def _key(self, name: str) -> sa.ColumnElement[bool]:
        r = self._table()
        return sa.and_(r.c.job_table == self.store.table_name, r.c.name == name)

    def _readable(self) -> bool:
        """Whether `qadmin_recurring` is there to read (a table made since this process looked counts)."""
        if not self.store.has_aux("recurring"):
            self.store.jobs()
            self.store.look_for_aux()
        return self.store.has_aux("recurring")

    def entries(self) -> list[RecurringEntry]:
        if not self._readable():
            return []
        r = self._table()
        with self.store.read() as conn:
            rows = conn.execute(sa.select(r).where(r.c.job_table == self.store.table_name).order_by(r.c.name)).all()
        out: list[RecurringEntry] = []
        for row in rows:
            try:
                schedule = _schedule(row)
            except (QadminError, ValueError, KeyError, TypeError) as exc:
                _log.warning(
                    "recurring schedule %r left out: its stored definition is not readable (%s)", row.name, exc
                )
                continue
            out.append(RecurringEntry(schedule, _time(row.last_run_at), _time(row.last_tick), row.last_job_id))
        return out

    def save(self, schedule: Schedule, now: datetime) -> RecurringEntry:
        self.store.ensure_aux()
        for attempt in range(5):
            try:
                return self._save(schedule, now)
            except QadminError as exc:
                # another process created the same schedule at the same moment: replace theirs
                if not isinstance(exc.__cause__, sa.exc.IntegrityError) or attempt == 4:
                    raise
                time.sleep(0.01)
        raise AssertionError("unreachable")

    def _save(self, schedule: Schedule, now: datetime) -> RecurringEntry:
        r = self._table()
        armed = schedule.previous_tick(now)
        values = {
            "definition": json.dumps(schedule.definition()),
            "enabled": schedule.enabled,
            "source": schedule.source,
            "updated_at": now,
        }
        with self.store.write() as conn:
            find = sa.select(r).where(self._key(schedule.name))
            if self.store.dialect.row_locks:
                find = find.with_for_update()
            old = conn.execute(find).first()
            if old is None:
                conn.execute(
                    sa.insert(r).values(job_table=self.store.table_name, name=schedule.name, last_tick=armed, **values)
                )
                return RecurringEntry(schedule, None, armed, None)
            last_tick = _time(old.last_tick)
            if schedule.enabled and self._rearmed(old, schedule):
                last_tick = armed if last_tick is None else max(last_tick, armed)
            conn.execute(sa.update(r).where(self._key(schedule.name)).values(last_tick=last_tick, **values))
            return RecurringEntry(schedule, _time(old.last_run_at), last_tick, old.last_job_id)

    @staticmethod
    def _rearmed(old: Any, schedule: Schedule) -> bool:
        """Whether a save starts the schedule afresh at its next tick: enabled again, or ticking
        at other times (the ticks it missed, or its new timing's past ones, are not caught up)."""
        if not old.enabled:
            return True
        try:
            return not _same_timing(_schedule(old), schedule)
        except (QadminError, ValueError, KeyError, TypeError):
            return True

    def remove(self, name: str) -> bool:
        if not self._readable():
            return False
        with self.store.write() as conn:
            gone: int = conn.execute(sa.delete(self._table()).where(self._key(name))).rowcount
        return gone > 0

    def fire(self, name: str, tick: datetime | None, new: NewJob, now: datetime) -> Job | None:
        self.store.ensure_aux()
        r = self._table()
        key = self._key(name)
        with self.store.write() as conn:
            if tick is not None:
                won = conn.execute(
                    sa.update(r).where(key, r.c.enabled == sa.true(), r.c.last_tick < tick).values(last_tick=tick)
                ).rowcount
                if not won:
                    # never fired by qadmin (no tick remembered): armed here, its next tick fires
                    conn.execute(sa.update(r).where(key, r.c.last_tick.is_(None)).values(last_tick=tick))
                    return None
            job = self.enqueuer.insert_in(conn, new, now)
            ran = conn.execute(sa.update(r).where(key).values(last_run_at=now, last_job_id=str(job.id))).rowcount
            if not ran:  # run now of a schedule that is not there: the job rolls back with this
                raise ScheduleNotFound(name)
        return job
