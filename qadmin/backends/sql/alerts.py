"""Alert incidents on SQL (`qadmin_alerts`): one row per rule. Every change is one guarded UPDATE
(or an INSERT that a second opener's duplicate key refuses), so among any number of evaluating
processes exactly one opens, resolves, or claims a message's delivery: SQLite runs writers one at
a time; on PostgreSQL a second UPDATE waits for the first's row lock, then finds its guard false."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from qadmin.alert_rules import FIRING, RESOLVED, Incident
from qadmin.backends.sql.store import Store
from qadmin.errors import QadminError


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


class Incidents:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _table(self) -> sa.Table:
        return self.store.aux["alerts"]

    def _key(self, rule: str) -> sa.ColumnElement[bool]:
        t = self._table()
        return sa.and_(t.c.job_table == self.store.table_name, t.c.rule == rule)

    def _readable(self) -> bool:
        if not self.store.has_aux("alerts"):
            self.store.jobs()
            self.store.look_for_aux()
        return self.store.has_aux("alerts")

    def incidents(self) -> list[Incident]:
        if not self._readable():
            return []
        t = self._table()
        with self.store.read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.job_table == self.store.table_name).order_by(t.c.rule)).all()
        out = []
        for row in rows:
            opened = _time(row.opened_at)
            if opened is None:
                continue
            out.append(
                Incident(
                    rule=row.rule,
                    opened_at=opened,
                    details=row.details,
                    resolved_at=_time(row.resolved_at),
                    firing_sent_at=_time(row.firing_sent_at),
                    resolved_sent_at=_time(row.resolved_sent_at),
                )
            )
        return out

    def open(self, rule: str, now: datetime, details: str) -> bool:
        self.store.ensure_aux()
        t = self._table()
        fresh = {
            "opened_at": now,
            "details": details,
            "resolved_at": None,
            "firing_sent_at": None,
            "resolved_sent_at": None,
            "sending_until": None,
        }
        try:
            with self.store.write() as conn:
                replaced = conn.execute(
                    sa.update(t).where(self._key(rule), t.c.resolved_at.is_not(None)).values(**fresh)
                ).rowcount
                if replaced:
                    return True
                if conn.execute(sa.select(t.c.rule).where(self._key(rule))).first() is not None:
                    return False  # open already
                conn.execute(sa.insert(t).values(job_table=self.store.table_name, rule=rule, **fresh))
                return True
        except QadminError as exc:
            # another process inserted the rule's first incident at the same moment: theirs
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                return False
            raise

    def resolve(self, rule: str, now: datetime) -> bool:
        if not self._readable():
            return False
        t = self._table()
        with self.store.write() as conn:
            done: int = conn.execute(
                sa.update(t).where(self._key(rule), t.c.resolved_at.is_(None)).values(resolved_at=now)
            ).rowcount
        return done > 0

    def claim(self, rule: str, opened_at: datetime, message: str, now: datetime, lease: float) -> bool:
        if not self._readable():
            return False
        t = self._table()
        sent = self._sent_column(message)
        guard = [self._key(rule), t.c.opened_at == opened_at, sent.is_(None)]
        if message == RESOLVED:
            guard.append(t.c.resolved_at.is_not(None))
        free = sa.or_(t.c.sending_until.is_(None), t.c.sending_until < now)
        until = now + timedelta(seconds=lease)
        with self.store.write() as conn:
            won: int = conn.execute(sa.update(t).where(*guard, free).values(sending_until=until)).rowcount
        return won > 0

    def finish(self, rule: str, opened_at: datetime, message: str, sent_at: datetime | None) -> None:
        if not self._readable():
            return
        t = self._table()
        values: dict[str, Any] = {"sending_until": None}
        if sent_at is not None:
            values[self._sent_column(message).name] = sent_at
        with self.store.write() as conn:
            conn.execute(sa.update(t).where(self._key(rule), t.c.opened_at == opened_at).values(**values))

    def _sent_column(self, message: str) -> sa.Column[Any]:
        t = self._table()
        if message == FIRING:
            return t.c.firing_sent_at
        if message == RESOLVED:
            return t.c.resolved_sent_at
        raise QadminError(f"unknown alert message {message!r}: {FIRING} or {RESOLVED}")
