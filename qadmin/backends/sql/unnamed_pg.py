"""PostgreSQL's worker verbs behind a pooler in transaction mode (`prepare=off`)."""

from __future__ import annotations

from typing import Any

from qadmin.backends.sql.layout import InsertLayout
from qadmin.backends.sql.prepared_pg import PreparedPg
from qadmin.backends.sql.state import WorkerState
from qadmin.job import JobId


class UnnamedPg(PreparedPg):
    """`PreparedPg` behind a pooler in transaction mode (`prepare=off`): its one-statement claims
    and outcomes, which name nothing on the server, and enqueue by the portable INSERT instead of
    a statement prepared on one server connection and run on another."""

    def insert_one(self, state: WorkerState, layout: InsertLayout, values: dict[str, Any]) -> JobId:
        return self.core.insert_one(state, layout, values)
