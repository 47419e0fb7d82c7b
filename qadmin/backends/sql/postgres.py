"""PostgreSQL's ways: psycopg 3, no JIT, lenient timestamps, arrays bound once, upserts (its
worker's hand-driven statements are `prepared_pg.PreparedPg`)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg_sql

from qadmin.backends.sql.dialect import Clause, CoreDialect, upsert_absent, upsert_increment
from qadmin.errors import UsageError


class PostgresDialect(CoreDialect):
    skip_locked = True
    returning = True
    writable_ctes = True

    def __init__(self, url: str) -> None:
        target, self.server_prepares = server_prepares(normalise_url(url))
        connect_args: dict[str, Any] = {"connect_timeout": 10}
        if not self.server_prepares and target.drivername == "postgresql+psycopg":
            connect_args["prepare_threshold"] = None  # psycopg prepares none of SQLAlchemy's statements
        # no pre-ping (a round trip per checkout): a connection that turns out dead raises a
        # disconnect error, on which SQLAlchemy invalidates the whole pool, and callers retry
        engine = sa.create_engine(target, pool_size=5, max_overflow=10, connect_args=connect_args)
        event.listen(engine, "connect", _no_jit)
        event.listen(engine, "connect", _lenient_times)
        super().__init__(engine)
        # autocommit: each statement its own transaction, without the round trips of BEGIN and COMMIT
        self.hot_engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    def index_applies(self, index: sa.Index) -> bool:
        return not any(key.split("_", 1)[0] == "sqlite" for key in index.dialect_kwargs)

    def clean_text(self, text: str) -> str:
        # PostgreSQL's text holds no NUL: refused, a failure would never be written and the job,
        # still locked by its worker, would run again and again
        return text.replace("\x00", "\\x00")

    def as_text(self, column: Any) -> Any:
        """PostgreSQL cannot keep NUL bytes in TEXT, so a DJJob handler with protected/private
        properties lives in BYTEA there: search its escaped text, where ASCII stays as it is."""
        if isinstance(column.type, sa.LargeBinary):
            return sa.func.encode(column, "escape")
        return column

    def order_nulls_low(self, column: Any, desc: bool) -> Any:
        """PostgreSQL sorts NULL highest unless told."""
        term = column.desc() if desc else column.asc()
        if getattr(column, "nullable", False):
            term = term.nulls_last() if desc else term.nulls_first()
        return term

    def nulls_first(self, term: Any) -> Any:
        return term.asc().nulls_first()

    def literal_queue_names(self) -> bool:
        # a bound name gets a generic plan once the statement is prepared: the claim index walk
        return True

    def first_line(self, column: Any) -> Any:
        return sa.func.split_part(column, sa.literal("\n", sa.String), 1)

    def in_values(self, column: Any, values: Sequence[Any]) -> Clause:
        """`column = ANY(:array)`: one bound array instead of a parameter per value, whose binding
        and planning cost more than the rows (5,000 ids: updating 100,000 failed rows took
        4.5-5.8 s with IN lists, 2.8-3.4 s with arrays)."""
        clause: Clause = column == sa.any_(sa.bindparam(None, list(values), type_=pg_sql.ARRAY(column.type)))
        return clause

    def increment(self, conn: sa.Connection, table: sa.Table, key: dict[str, Any], amounts: dict[str, int]) -> None:
        upsert_increment(conn, pg_sql.insert, table, key, amounts)

    def insert_absent(self, conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
        return upsert_absent(conn, pg_sql.insert, table, values)

    def insert_column(
        self, conn: sa.Connection, table: sa.Table, fixed: dict[str, Any], column: str, values: Sequence[Any]
    ) -> None:
        """One INSERT … SELECT over unnest() of the values bound as one array: executemany costs a
        round trip per thousand rows (100,000 audit rows: 2 s; unnest: 0.5 s)."""
        if not values:
            return
        names = list(fixed)
        constants = [sa.literal(fixed[n], table.c[n].type) for n in names]
        unnest = sa.func.unnest(sa.bindparam(None, list(values), type_=pg_sql.ARRAY(table.c[column].type)))
        conn.execute(sa.insert(table).from_select(names + [column], sa.select(*constants, unnest)))


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` use psycopg 3 when it is installed."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + rest
        return "postgresql://" + rest
    return url


#: the URL query option that turns server-side prepared statements off (`server_prepares`)
PREPARE_OPTION = "prepare"


def server_prepares(url: str) -> tuple[sa.URL, bool]:
    """`url` without qadmin's `prepare` query option, and whether it leaves server-side prepared
    statements on (the default). `?prepare=off` turns them off, for a pooler that hands each
    transaction to any server connection (PgBouncer before 1.21 in transaction mode), where a
    statement prepared on one connection is missing on the next: psycopg then prepares nothing,
    and enqueue sends its INSERT unnamed (parsed with every row, in the same one round trip)."""
    parsed = sa.make_url(url)
    value = parsed.query.get(PREPARE_OPTION)
    if value is None:
        return parsed, True
    text = value if isinstance(value, str) else value[-1]
    if text.lower() not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
        raise UsageError(f"?{PREPARE_OPTION}={text} in the database URL: expected on or off")
    return parsed.difference_update_query([PREPARE_OPTION]), text.lower() in ("on", "true", "1", "yes")


def _lenient_times(dbapi_conn: Any, _record: Any) -> None:
    """psycopg raises on a timestamp Python cannot hold (`infinity`, `-infinity`, which
    ActiveRecord writes for ±Float::INFINITY, or a year past 9999), failing the whole result and,
    for a claim, after the row was locked. Such a value is read as its text instead, which the
    column type then reports as unreadable (`times.Unreadable`)."""
    adapters = getattr(dbapi_conn, "adapters", None)
    if adapters is None:  # psycopg2 (not qadmin's driver): as it is
        return
    for name, loader in _lenient_loaders().items():
        adapters.register_loader(name, loader)


_LOADERS: dict[str, Any] = {}


def _lenient_loaders() -> dict[str, Any]:
    if not _LOADERS:
        from psycopg import DataError
        from psycopg import adapters as default
        from psycopg.adapt import Loader
        from psycopg.pq import Format

        for name in ("timestamp", "timestamptz", "date"):
            # psycopg's own loader (its C one, which cannot be subclassed) does the work
            info = default.types[name]
            assert info is not None
            base = default.get_loader(info.oid, Format.TEXT)

            class Lenient(Loader):
                inner_class = base

                def __init__(self, oid: int, context: Any = None) -> None:
                    super().__init__(oid, context)
                    assert self.inner_class is not None
                    self._inner = self.inner_class(oid, context)

                def load(self, data: Any) -> Any:
                    try:
                        return self._inner.load(data)
                    except DataError:
                        return bytes(data).decode("utf-8", "replace")

            _LOADERS[name] = Lenient
    return _LOADERS


def _no_jit(dbapi_conn: Any, _record: Any) -> None:
    """No JIT compilation: the admin counts over a big table cost enough for PostgreSQL to
    compile them, which took 300 ms of a 450 ms stats call; every qadmin query is short."""
    info = getattr(dbapi_conn, "info", None)  # psycopg 3; psycopg2 has server_version itself
    version = int(getattr(info, "server_version", 0) or getattr(dbapi_conn, "server_version", 0) or 0)
    if version >= 110000:  # jit exists from PostgreSQL 11 on
        cur = dbapi_conn.cursor()
        cur.execute("SET jit = off")
        cur.close()
        dbapi_conn.commit()
