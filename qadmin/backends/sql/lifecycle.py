"""Run now and kill: a scheduled row made due, a retry waiting out its backoff failed for good,
each row changed only if it is still scheduled and unlocked when its batch is written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.changes import Changes
from qadmin.backends.sql.selection import Selection
from qadmin.backends.sql.store import Store
from qadmin.job import JobId, JobState


class Lifecycle:
    def __init__(self, store: Store, selection: Selection, changes: Changes) -> None:
        self.store = store
        self.selection = selection
        self.changes = changes

    def _scheduled(self, now: datetime) -> Any:
        return self.selection.state_clause(JobState.SCHEDULED, now, False, set())

    def _stamped(self, values: dict[str, Any], now: datetime) -> dict[str, Any]:
        if "updated_at" in self.store.jobs().c:
            values["updated_at"] = now
        return values

    def run_now(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """`run_at` = now: what delayed_job's own reserve (and qadmin's) takes as due."""
        t = self.store.jobs()
        values = self._stamped({"run_at": now}, now)
        return self.changes._guarded(
            ids, self._scheduled(now), lambda where: sa.update(t).where(where).values(**values)
        )

    def kill(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """`failed_at` = now, delayed_job's permanently failed state (docs/compatibility.md §4.3);
        attempts and the error column stay as the last run left them."""
        t = self.store.jobs()
        values = self._stamped({"failed_at": now}, now)
        guard = sa.and_(self._scheduled(now), t.c.attempts >= 1)
        return self.changes._guarded(ids, guard, lambda where: sa.update(t).where(where).values(**values))
