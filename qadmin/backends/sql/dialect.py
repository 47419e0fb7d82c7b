"""What differs from one SQL database to the next, behind one interface (`Dialect`), chosen once
from the URL when a backend opens (`choose.choose`, the only place that knows dialect names).

`CoreDialect` is the portable reference: plain SQLAlchemy Core, correct on any database
SQLAlchemy speaks. `SqliteDialect` and `PostgresDialect` replace what those databases do better
(an atomic upsert, a planner hint, an array bound once).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import sqlalchemy as sa

#: SQL expressions as the helpers take and give them
Clause = sa.ColumnElement[Any]


class Dialect(Protocol):
    """One database's ways, for the parts of the SQL backend to call."""

    #: SQLAlchemy's dialect name ("sqlite", "postgresql"): the backend's `kind`
    name: str
    engine: sa.Engine
    #: the engine a worker's held connection uses (PostgreSQL: autocommit, no BEGIN/COMMIT trips)
    hot_engine: sa.Engine
    #: `SELECT … FOR UPDATE SKIP LOCKED` is there
    skip_locked: bool
    #: `SELECT … FOR UPDATE` locks rows (SQLite locks the whole database at BEGIN IMMEDIATE)
    row_locks: bool
    #: UPDATE/DELETE … RETURNING is there
    returning: bool
    #: an UPDATE … RETURNING in a WITH feeds an INSERT in one statement (PostgreSQL)
    writable_ctes: bool
    #: counting a range of an index reads the index alone
    index_only_counts: bool

    def database_file(self) -> str | None:
        """The database's file on disk (SQLite), else None."""

    def write_lock(self) -> AbstractContextManager[None]:
        """Held around a whole write transaction (qadmin's SQLite writers queue for it)."""

    def use_wal(self) -> None:
        """Make the database ready for concurrent readers and one writer (`init`)."""

    def index_applies(self, index: sa.Index) -> bool:
        """Whether qadmin's `index` is one this database gets (partial indexes, per-dialect DDL)."""

    def clean_text(self, text: str) -> str:
        """`text` as this database's text columns can hold it."""

    def as_text(self, column: Any) -> Any: ...

    def contains(self, column: Any, token: str, ignore_case: bool = False) -> Clause: ...

    def likelihood(self, clause: Clause, probability: float) -> Clause: ...

    def order_nulls_low(self, column: Any, desc: bool) -> Any: ...

    def nulls_first(self, term: Any) -> Any:
        """An ascending term over a nullable column of a subquery, NULL first as the claim orders."""

    def claim_live(self, table: sa.Table, has_claim_index: bool) -> Clause:
        """`failed_at IS NULL` as the claim's scan should read it."""

    def literal_queue_names(self) -> bool:
        """Whether the claim names earlier queues by literal (the planner's statistics then apply)."""

    def first_line(self, column: Any) -> Any: ...

    def in_values(self, column: Any, values: Sequence[Any]) -> Clause: ...

    def increment(self, conn: sa.Connection, table: sa.Table, key: dict[str, Any], amounts: dict[str, int]) -> None: ...

    def insert_absent(self, conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool: ...

    def insert_column(
        self, conn: sa.Connection, table: sa.Table, fixed: dict[str, Any], column: str, values: Sequence[Any]
    ) -> None: ...


class CoreDialect:
    """The portable reference: what any database SQLAlchemy speaks can run."""

    skip_locked = False
    row_locks = True
    returning = False
    writable_ctes = False
    index_only_counts = False

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.name = engine.dialect.name
        self.hot_engine = engine

    def database_file(self) -> str | None:
        return None

    def write_lock(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def use_wal(self) -> None:
        return None

    def index_applies(self, index: sa.Index) -> bool:
        return not index.dialect_kwargs  # a partial index: not every database has them

    def clean_text(self, text: str) -> str:
        return text

    def as_text(self, column: Any) -> Any:
        return column

    def contains(self, column: Any, token: str, ignore_case: bool = False) -> Clause:
        column = self.as_text(column)
        clause: Clause = column.ilike(f"%{token}%") if ignore_case else column.like(f"%{token}%")
        return clause

    def likelihood(self, clause: Clause, probability: float) -> Clause:
        return clause

    def order_nulls_low(self, column: Any, desc: bool) -> Any:
        return column.desc() if desc else column.asc()

    def nulls_first(self, term: Any) -> Any:
        return term

    def claim_live(self, table: sa.Table, has_claim_index: bool) -> Clause:
        return table.c.failed_at.is_(None)

    def literal_queue_names(self) -> bool:
        return False

    def first_line(self, column: Any) -> Any:
        return None  # callers split in Python

    def in_values(self, column: Any, values: Sequence[Any]) -> Clause:
        clause: Clause = column.in_(list(values))
        return clause

    def increment(self, conn: sa.Connection, table: sa.Table, key: dict[str, Any], amounts: dict[str, int]) -> None:
        """`table[key] += amounts`, creating the row if missing. Portable, so not atomic: two
        writers may both find no row, and one INSERT then fails (the databases qadmin supports
        upsert in one statement)."""
        where = [table.c[k] == v for k, v in key.items()]
        update = sa.update(table).where(*where).values({c: table.c[c] + n for c, n in amounts.items()})
        if conn.execute(update).rowcount == 0:
            conn.execute(sa.insert(table).values(**key, **amounts))

    def insert_absent(self, conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
        key = list(table.primary_key.columns)
        if conn.execute(sa.select(*key).where(*(c == values[c.name] for c in key))).first() is not None:
            return False
        conn.execute(sa.insert(table).values(**values))
        return True

    def insert_column(
        self, conn: sa.Connection, table: sa.Table, fixed: dict[str, Any], column: str, values: Sequence[Any]
    ) -> None:
        rows = [{**fixed, column: v} for v in values]
        for start in range(0, len(rows), 5000):
            conn.execute(sa.insert(table), rows[start : start + 5000])


def upsert_increment(
    conn: sa.Connection, insert: Any, table: sa.Table, key: dict[str, Any], amounts: dict[str, int]
) -> None:
    """`increment` as one INSERT … ON CONFLICT DO UPDATE (`insert`: the dialect's own insert)."""
    stmt = insert(table).values(**key, **amounts)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key), set_={c: table.c[c] + stmt.excluded[c] for c in amounts}
    )
    conn.execute(stmt)


def upsert_absent(conn: sa.Connection, insert: Any, table: sa.Table, values: dict[str, Any]) -> bool:
    """`insert_absent` as one INSERT … ON CONFLICT DO NOTHING; race-free."""
    stmt = insert(table).values(**values)
    # rowcount of INSERT … ON CONFLICT is not reported by every driver; RETURNING is
    key = list(table.primary_key.columns)
    return conn.execute(stmt.on_conflict_do_nothing().returning(*key)).first() is not None
