"""Bulk changes by id (retry, delete, unlock), each row acted on only if it still matches the
guard when its batch is written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.selection import LIVE_STATES, Selection
from qadmin.backends.sql.store import Store
from qadmin.backends.sql.values import BATCH, parse_id
from qadmin.job import JobId, JobState

#: ids per statement in bulk verbs on databases with RETURNING (one bound parameter per id:
#: SQLite allows 32,766, PostgreSQL 65,535)
GUARDED_BATCH = 5000


class Changes:
    def __init__(self, store: Store, selection: Selection) -> None:
        self.store = store
        self.dialect = store.dialect
        self.selection = selection

    def _guarded(self, ids: Sequence[JobId], guard: Any, make: Callable[[Any], Any]) -> list[JobId]:
        """Act on the ids still matching `guard`, re-checked as each batch is written.

        `make(where)` builds the UPDATE or DELETE. With RETURNING (SQLite ≥ 3.35, PostgreSQL)
        one statement checks, acts and names the rows it changed; elsewhere the rows are locked
        and re-read first, then acted on."""
        t = self.store.jobs()
        changed: list[JobId] = []
        int_ids = [parse_id(str(i)) for i in ids]
        returning = self.dialect.returning
        size = GUARDED_BATCH if returning else BATCH
        for start in range(0, len(int_ids), size):
            chunk = int_ids[start : start + size]
            with self.store.write() as conn:
                if returning:
                    where = sa.and_(self.dialect.in_values(t.c.id, chunk), guard)
                    live = [r[0] for r in conn.execute(make(where).returning(t.c.id))]
                else:
                    query = sa.select(t.c.id).where(t.c.id.in_(chunk), guard)
                    if self.dialect.row_locks:
                        query = query.with_for_update()
                    live = [r[0] for r in conn.execute(query)]
                    if live:
                        conn.execute(make(t.c.id.in_(live)))
            changed.extend(live)
        return changed

    def retry(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        t = self.store.jobs()
        values: dict[str, Any] = {"failed_at": None, "locked_at": None, "locked_by": None, "run_at": now, "attempts": 0}
        if "updated_at" in t.c:
            values["updated_at"] = now
        return self._guarded(ids, t.c.failed_at.is_not(None), lambda where: sa.update(t).where(where).values(**values))

    def delete(self, ids: Sequence[JobId], now: datetime, states: frozenset[JobState] | None = None) -> list[JobId]:
        t = self.store.jobs()
        guard: Any = sa.true()
        live_states = set(states or ()) & LIVE_STATES
        if live_states:
            with self.store.read() as conn:
                dead = self.selection.all_dead_owners(conn, now) if JobState.LOCKED in live_states else set()
            guard = sa.or_(*(self.selection.state_clause(s, now, False, dead) for s in live_states))
        return self._guarded(ids, guard, lambda where: sa.delete(t).where(where))

    def unlock(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        t = self.store.jobs()
        return self._guarded(
            ids, self.selection.locked(), lambda where: sa.update(t).where(where).values(locked_at=None, locked_by=None)
        )

    def unlock_if(self, ids: Sequence[JobId], guard: Any) -> list[JobId]:
        """`unlock`, only for the rows that also still match `guard` when they are written."""
        t = self.store.jobs()
        return self._guarded(
            ids,
            sa.and_(self.selection.locked(), guard),
            lambda where: sa.update(t).where(where).values(locked_at=None, locked_by=None),
        )
