"""The SQL engine of a URL, chosen once when a backend opens: its dialect (SQLite, PostgreSQL, or
the portable Core reference for any other database SQLAlchemy speaks) and the worker verbs that
go with it. The one place that tells databases apart by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.dialect import CoreDialect, Dialect
from qadmin.backends.sql.layout import InsertLayout
from qadmin.backends.sql.postgres import PostgresDialect
from qadmin.backends.sql.prepared_pg import PreparedPg
from qadmin.backends.sql.sqlite import SqliteDialect
from qadmin.backends.sql.sqlite_verbs import SqliteVerbs
from qadmin.backends.sql.state import WorkerState
from qadmin.backends.sql.verbs import CoreVerbs, WorkerParts, WorkerVerbs
from qadmin.job import JobId


@dataclass(frozen=True)
class SqlEngine:
    dialect: Dialect
    #: the worker's verbs, from the parts they are built of
    verbs: Callable[[WorkerParts], WorkerVerbs]


class UnnamedPg(PreparedPg):
    """`PreparedPg` behind a pooler in transaction mode (`prepare=off`): its one-statement claims
    and outcomes, which name nothing on the server, and enqueue by the portable INSERT instead of
    a statement prepared on one server connection and run on another."""

    def insert_one(self, state: WorkerState, layout: InsertLayout, values: dict[str, Any]) -> JobId:
        return self.core.insert_one(state, layout, values)


def choose(url: str, prepared: bool = True) -> SqlEngine:
    """`url`'s dialect, with its engine, and its worker verbs: the database's own fast ones
    (`prepared`), or the portable reference (`CoreVerbs`) that they must agree with."""
    base = url.split("://", 1)[0].lower().split("+", 1)[0]
    if base == "sqlite":
        sqlite = SqliteDialect(url)
        return SqlEngine(sqlite, (lambda parts: SqliteVerbs(parts, sqlite)) if prepared else CoreVerbs)
    if base in ("postgresql", "postgres"):
        postgres = PostgresDialect(url)
        if not prepared:
            return SqlEngine(postgres, CoreVerbs)
        return SqlEngine(postgres, PreparedPg if postgres.server_prepares else UnnamedPg)
    return SqlEngine(CoreDialect(sa.create_engine(url, pool_size=5, max_overflow=10)), CoreVerbs)
