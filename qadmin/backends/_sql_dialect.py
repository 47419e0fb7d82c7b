"""The only place that branches on the SQL dialect (locking, BEGIN, URLs)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from qadmin.backends import _sql_writelock

#: how long a SQLite writer waits for another process's lock before failing (SQLite's busy
#: timeout, qadmin's write lock file): `?timeout=SECONDS` in the URL sets another
BUSY_TIMEOUT_MS = 60000


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` use psycopg 3 when it is installed."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + rest
        return "postgresql://" + rest
    return url


def refuse_memory(url: str) -> None:
    """`sqlite://` and `sqlite:///:memory:` name a database that lives as long as one connection:
    nothing one qadmin command writes would be there for the next, and qadmin's reads and
    writes, which take connections of their own, would meet in one connection's transaction."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return  # create_engine says what is wrong with it
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    if database in ("", ":memory:") or "mode=memory" in database or parsed.query.get("mode") == "memory":
        from qadmin.errors import UsageError

        raise UsageError(
            f"{url} is an in-memory SQLite database, gone when its connection closes: "
            "give qadmin a file, e.g. sqlite:///qadmin.db"
        )


def create_engine(url: str) -> sa.Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        timeout_ms = _busy_timeout_ms(url)
        engine = sa.create_engine(url, connect_args={"timeout": timeout_ms / 1000, "check_same_thread": False})
        engine.qadmin_busy_ms = timeout_ms  # type: ignore[attr-defined]
        _configure_sqlite(engine, timeout_ms)
        return engine
    # no pre-ping (a round trip per checkout): a connection that turns out dead raises a
    # disconnect error, on which SQLAlchemy invalidates the whole pool, and callers retry
    kwargs: dict[str, Any] = {"pool_size": 5, "max_overflow": 10}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    engine = sa.create_engine(url, **kwargs)
    if url.startswith("postgresql"):
        event.listen(engine, "connect", _no_jit)
        event.listen(engine, "connect", _lenient_times)
    return engine


def _lenient_times(dbapi_conn: Any, _record: Any) -> None:
    """psycopg raises on a timestamp Python cannot hold (`infinity`, `-infinity`, which
    ActiveRecord writes for ±Float::INFINITY, or a year past 9999), failing the whole result and,
    for a claim, after the row was locked. Such a value is read as its text instead, which the
    column type then reports as unreadable (`_sql_tables.Unreadable`)."""
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
            base = default.get_loader(default.types[name].oid, Format.TEXT)

            class Lenient(Loader):
                inner_class = base

                def __init__(self, oid: int, context: Any = None) -> None:
                    super().__init__(oid, context)
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
    version = getattr(info, "server_version", None) or getattr(dbapi_conn, "server_version", 0)
    if version >= 110000:  # jit exists from PostgreSQL 11 on
        cur = dbapi_conn.cursor()
        cur.execute("SET jit = off")
        cur.close()
        dbapi_conn.commit()


def _busy_timeout_ms(url: str) -> int:
    raw = sa.engine.make_url(url).query.get("timeout")
    if raw is None:
        return BUSY_TIMEOUT_MS
    try:
        seconds = float(raw if isinstance(raw, str) else raw[-1])
        if not 0 <= seconds <= 86400:
            raise ValueError
    except ValueError:
        from qadmin.errors import UsageError

        raise UsageError(f"timeout={raw!r} in the SQLite URL is not a number of seconds from 0 to 86400") from None
    return int(seconds * 1000)


def busy_timeout_ms(engine: sa.Engine) -> int:
    return getattr(engine, "qadmin_busy_ms", BUSY_TIMEOUT_MS)


def _configure_sqlite(engine: sa.Engine, timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for writers.

    SQLAlchemy silently drops FOR UPDATE on SQLite, so concurrent claimers are serialised by
    taking the write lock at BEGIN; readers (`qadmin_read` connections) begin deferred so a
    listing never waits for a worker.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN
        dbapi_conn.text_factory = lenient_text
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={timeout_ms}")
        cur.execute("PRAGMA synchronous=NORMAL")
        if job_database(cur):
            try:
                cur.execute("PRAGMA journal_mode=WAL")
            except dbapi_conn.OperationalError:
                pass  # a read-only file stays as it is: reads work, writes say it is read-only
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("qadmin_read"):
            conn.exec_driver_sql("BEGIN")
        else:
            import sqlite3

            try:
                begin_immediate(conn.connection.dbapi_connection, timeout_ms)
            except sqlite3.Error as exc:  # as SQLAlchemy would have wrapped it
                raise sa.exc.DBAPIError.instance("BEGIN IMMEDIATE", None, exc, sqlite3.Error) from exc


def job_database(cur: Any) -> bool:
    """Whether a SQLite database holds a jobs table or qadmin's: only such a file is switched
    to WAL (a persistent change of the file) by merely connecting to it; `init` switches a new
    one. Another application's database, or an empty file, is left as it is."""
    return (
        cur.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND (name IN ('delayed_jobs', 'jobs') "
            "OR substr(name, 1, 7) = 'qadmin_') LIMIT 1"
        ).fetchone()
        is not None
    )


def use_wal(engine: sa.Engine) -> None:
    """Switch a SQLite database to WAL (`init`, once it has created its tables)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.connection.dbapi_connection.execute("PRAGMA journal_mode=WAL")


def begin_immediate(dbapi_conn: Any, timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """Take SQLite's write lock, polling in short steps.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries, far longer than
    a claim holds the lock: a second worker process would spend its time asleep. Polling from
    Python every 0.1–1 ms hands the lock over as soon as it is free; the busy timeout is off
    while polling only, so statements elsewhere keep SQLite's full timeout. qadmin's own writers
    queue for `write_lock` first and seldom meet here: the polling is for other writers."""
    import sqlite3

    deadline = time.monotonic() + timeout_ms / 1000
    pause = 0.0001
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.001)
    finally:
        dbapi_conn.execute(f"PRAGMA busy_timeout={timeout_ms}")


def write_lock(engine: sa.Engine) -> Any:
    """Held around a whole write transaction (BEGIN IMMEDIATE to COMMIT): qadmin's writers to one
    SQLite file queue for it in the kernel (`_sql_writelock`); nothing to hold elsewhere."""
    database = sqlite_file(engine)
    if database is None:
        return contextlib.nullcontext()
    return _sql_writelock.for_file(database).held(busy_timeout_ms(engine) / 1000)


def lenient_text(data: bytes) -> str:
    """SQLite TEXT as str, even when a foreign writer stored bytes that are not UTF-8 (PHP's PDO
    does, for DJJob handlers holding binary strings): such bytes become surrogate escapes, which
    the PHP codec turns back into the very same bytes, instead of failing the whole listing."""
    return data.decode("utf-8", "surrogateescape")


def as_text(engine: sa.Engine, column: Any) -> Any:
    """A column LIKE can search. PostgreSQL cannot keep NUL bytes in TEXT, so a DJJob handler
    with protected/private properties lives in BYTEA there: search its escaped text, where
    ASCII stays as it is."""
    if engine.dialect.name == "postgresql" and isinstance(column.type, sa.LargeBinary):
        return sa.func.encode(column, "escape")
    return column


def contains(engine: sa.Engine, column: Any, token: str, ignore_case: bool = False) -> Any:
    """`column` contains the word `token` (letters and digits): a coarse pre-filter on payloads.

    SQLite's LIKE stops at the first NUL byte (PHP's mangled property names hold some, so text
    after a protected property would never match); instr() and lower() read the whole value."""
    if engine.dialect.name == "sqlite":
        if ignore_case:
            return sa.func.instr(sa.func.lower(column), token.lower()) > 0
        return sa.func.instr(column, token) > 0
    column = as_text(engine, column)
    return column.ilike(f"%{token}%") if ignore_case else column.like(f"%{token}%")


def sqlite_file(engine: sa.Engine) -> str | None:
    """The file of a SQLite database on disk (None for other databases, memory and URIs)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:") or engine.url.query.get("uri"):
        return None
    return database


def increment(conn: sa.Connection, table: sa.Table, key: dict[str, Any], amounts: dict[str, int]) -> None:
    """`table[key] += amounts`, creating the row if missing, in one atomic statement (an UPDATE
    then INSERT would race: two writers both find no row and one INSERT fails)."""
    name = conn.dialect.name
    values = {**key, **amounts}
    if name in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        stmt: Any = (postgresql if name == "postgresql" else sqlite).insert(table).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key), set_={c: table.c[c] + stmt.excluded[c] for c in amounts}
        )
    elif name in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql

        stmt = mysql.insert(table).values(**values)
        stmt = stmt.on_duplicate_key_update({c: table.c[c] + stmt.inserted[c] for c in amounts})
    else:
        where = [table.c[k] == v for k, v in key.items()]
        if (
            conn.execute(
                sa.update(table).where(*where).values({c: table.c[c] + n for c, n in amounts.items()})
            ).rowcount
            == 0
        ):
            conn.execute(sa.insert(table).values(**values))
        return
    conn.execute(stmt)


def insert_absent(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert a row unless its primary key exists; True if it was inserted. Race-free."""
    name = conn.dialect.name
    if name in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        stmt: Any = (postgresql if name == "postgresql" else sqlite).insert(table).values(**values)
        # rowcount of INSERT … ON CONFLICT is not reported by every driver; RETURNING is
        key = list(table.primary_key.columns)
        return conn.execute(stmt.on_conflict_do_nothing().returning(*key)).first() is not None
    if name in ("mysql", "mariadb"):
        return conn.execute(sa.insert(table).values(**values).prefix_with("IGNORE")).rowcount == 1
    key = [c for c in table.primary_key.columns]
    if conn.execute(sa.select(*key).where(*(c == values[c.name] for c in key))).first() is not None:
        return False
    conn.execute(sa.insert(table).values(**values))
    return True


def skip_locked(engine: sa.Engine) -> bool:
    """Whether `SELECT … FOR UPDATE SKIP LOCKED` is available (PostgreSQL, MySQL ≥ 8)."""
    name = engine.dialect.name
    if name == "postgresql":
        return True
    if name in ("mysql", "mariadb"):
        info = getattr(engine.dialect, "server_version_info", None) or ()
        is_maria = getattr(engine.dialect, "is_mariadb", False)
        return bool(info) and (info >= (10, 6) if is_maria else info >= (8, 0, 1))
    return False


def row_locks(engine: sa.Engine) -> bool:
    return engine.dialect.name != "sqlite"


def order_nulls_low(engine: sa.Engine, column: Any, desc: bool) -> Any:
    """An ORDER BY term in which NULL sorts lowest, as SQLite and MySQL do natively; PostgreSQL
    sorts NULL highest unless told (and MySQL rejects NULLS FIRST/LAST, so only PG is told)."""
    term = column.desc() if desc else column.asc()
    if engine.dialect.name == "postgresql" and getattr(column, "nullable", False):
        term = term.nulls_last() if desc else term.nulls_first()
    return term


def first_line(engine: sa.Engine, column: Any) -> Any:
    """The text of `column` up to its first newline, computed by the database (None where
    qadmin knows no such function: callers split in Python then)."""
    name = engine.dialect.name
    newline = sa.literal("\n", sa.String)
    if name == "sqlite":
        return sa.func.substr(column, 1, sa.func.instr(column.concat(sa.func.char(10)), sa.func.char(10)) - 1)
    if name == "postgresql":
        return sa.func.split_part(column, newline, 1)
    if name in ("mysql", "mariadb"):
        return sa.func.substring_index(column, newline, 1)
    return None


def likelihood(engine: sa.Engine, clause: Any, probability: float) -> Any:
    """`clause`, with how often it holds told to SQLite's planner. Its statistics give a
    column's average rows per value, so `failed_at IS NULL` reads as an equality matching a
    handful of rows, and it walks 900,000 of a million rows through that index; told that
    live rows are most and locked ones few, it takes the narrow range of the locks instead.
    PostgreSQL's statistics know the share of NULLs: it is told nothing."""
    if engine.dialect.name != "sqlite":
        return clause
    # untyped: a Boolean function would be compared with 1, which hides the hint
    return sa.func.likelihood(clause, sa.literal_column(repr(float(probability))))


def in_values(engine: sa.Engine, column: Any, values: Sequence[Any]) -> Any:
    """`column IN values`. On PostgreSQL `column = ANY(:array)`: one bound array instead of a
    parameter per value, whose binding and planning cost more than the rows (5,000 ids:
    updating 100,000 failed rows took 4.5-5.8 s with IN lists, 2.8-3.4 s with arrays)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def insert_column(
    conn: sa.Connection, table: sa.Table, fixed: dict[str, Any], column: str, values: Sequence[Any], chunk: int = 5000
) -> None:
    """One row per value of `column`, the other columns as in `fixed`, in one INSERT … SELECT
    over the values bound as one array (PostgreSQL's unnest, SQLite's json_each): executemany
    builds every row's parameters in Python and, on PostgreSQL, costs a round trip per
    thousand rows (100,000 audit rows: 2 s; unnest: 0.5 s)."""
    if not values:
        return
    names = list(fixed)
    constants = [sa.literal(fixed[n], table.c[n].type) for n in names]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        unnest = sa.func.unnest(sa.bindparam(None, list(values), type_=ARRAY(table.c[column].type)))
        conn.execute(sa.insert(table).from_select(names + [column], sa.select(*constants, unnest)))
        return
    if conn.dialect.name == "sqlite" and _sqlite_json():
        each = sa.func.json_each(sa.bindparam(None, json.dumps(list(values)), type_=sa.Text)).table_valued("value")
        conn.execute(sa.insert(table).from_select(names + [column], sa.select(*constants, each.c.value)))
        return
    rows = [{**fixed, column: v} for v in values]
    for start in range(0, len(rows), chunk):
        conn.execute(sa.insert(table), rows[start : start + chunk])


def _sqlite_json() -> bool:
    """json_each is built into SQLite from 3.38 on (an option before)."""
    import sqlite3

    return sqlite3.sqlite_version_info >= (3, 38)


def index_only_counts(engine: sa.Engine) -> bool:
    """Whether counting a range of an index reads the index alone. SQLite's does. PostgreSQL's
    index-only scan visits the row of every entry on a page VACUUM has not marked all-visible
    since it last changed, which on a queue table (rows come and go all day) is many: on a
    million jobs, stats from per-queue index ranges took 0.1 s vacuumed, 0.3-0.6 s after a
    bulk retry, 1.1-1.5 s freshly loaded, where one pass over the table took 0.2-0.3 s in each."""
    return engine.dialect.name == "sqlite"
