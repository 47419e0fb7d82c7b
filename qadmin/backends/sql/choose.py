"""The SQL engine of a URL, chosen once when a backend opens: its dialect (SQLite, PostgreSQL, or
the portable Core reference for any other database SQLAlchemy speaks) and the worker verbs that
go with it. The one place that tells databases apart by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from qadmin.backends.sql.dialect import CoreDialect, Dialect
from qadmin.backends.sql.sqlite import SqliteDialect
from qadmin.backends.sql.sqlite_verbs import SqliteVerbs
from qadmin.backends.sql.verbs import CoreVerbs, WorkerParts, WorkerVerbs


@dataclass(frozen=True)
class SqlEngine:
    dialect: Dialect
    #: the worker's verbs, from the parts they are built of
    verbs: Callable[[WorkerParts], WorkerVerbs]


def choose(url: str, prepared: bool = True) -> SqlEngine:
    """`url`'s dialect, with its engine, and its worker verbs: the database's own fast ones
    (`prepared`), or the portable reference (`CoreVerbs`) that they must agree with."""
    base = url.split("://", 1)[0].lower().split("+", 1)[0]
    if base == "sqlite":
        sqlite = SqliteDialect(url)
        return SqlEngine(sqlite, (lambda parts: SqliteVerbs(parts, sqlite)) if prepared else CoreVerbs)
    if base in ("postgresql", "postgres"):
        # SQLAlchemy's PostgreSQL dialect takes longer to import than a SQLite listing to run
        from qadmin.backends.sql.postgres import PostgresDialect
        from qadmin.backends.sql.prepared_pg import PreparedPg

        return SqlEngine(PostgresDialect(url), PreparedPg if prepared else CoreVerbs)
    return SqlEngine(CoreDialect(sa.create_engine(url, pool_size=5, max_overflow=10)), CoreVerbs)
