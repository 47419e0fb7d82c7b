"""SQLite's ways: WAL, BEGIN IMMEDIATE for writers polled in short steps, the write lock file
qadmin's writers queue for, planner hints (its worker's statements on the driver are
`sqlite_verbs.SqliteVerbs`)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite as sqlite_sql

from qadmin.backends.sql.dialect import Clause, CoreDialect, upsert_absent, upsert_increment
from qadmin.backends.sql.driver import wrapped
from qadmin.backends.sql.writelock import for_file
from qadmin.errors import UsageError

#: how long a SQLite writer waits for another process's lock before failing (SQLite's busy
#: timeout, qadmin's write lock file): `?timeout=SECONDS` in the URL sets another
BUSY_TIMEOUT_MS = 60000


class SqliteDialect(CoreDialect):
    row_locks = False
    returning = sqlite3.sqlite_version_info >= (3, 35)
    index_only_counts = True

    def __init__(self, url: str) -> None:
        refuse_memory(url)
        self.busy_ms = _busy_timeout_ms(url)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": self.busy_ms / 1000, "check_same_thread": False, "factory": BusyAwareConnection},
        )
        _configure(engine, self.busy_ms)
        super().__init__(engine)
        self._file = _sqlite_file(engine)

    def database_file(self) -> str | None:
        return self._file

    def write_lock(self) -> AbstractContextManager[None]:
        """qadmin's writers to one SQLite file queue for its lock file (`writelock`)."""
        if self._file is None:
            return contextlib.nullcontext()
        return for_file(self._file).held(self.busy_ms / 1000)

    @contextlib.contextmanager
    def driver_transaction(self, conn: sa.Connection) -> Iterator[Any]:
        """A write transaction straight on the driver of `conn` (yielded): BEGIN IMMEDIATE and
        COMMIT without SQLAlchemy's transaction bookkeeping and events, which cost more than the
        statements they wrap; in the queue of qadmin's writers, until after COMMIT and the
        checkpoint SQLite runs in it."""
        with self.write_lock():
            raw = conn.connection.dbapi_connection
            try:
                begin_immediate(raw, self.busy_ms)
            except Exception as exc:
                raise wrapped("BEGIN IMMEDIATE", [], exc) from exc
            try:
                yield raw
            except BaseException:
                if raw.in_transaction:  # type: ignore[union-attr]  # sqlite3's connection
                    raw.rollback()  # type: ignore[union-attr]
                raise
            try:
                raw.commit()  # type: ignore[union-attr]
            except Exception as exc:
                if raw.in_transaction:  # type: ignore[union-attr]
                    raw.rollback()  # type: ignore[union-attr]
                raise wrapped("COMMIT", [], exc) from exc

    def use_wal(self) -> None:
        with self.engine.connect() as conn:  # on the driver: no BEGIN, in which WAL cannot be set
            raw: Any = conn.connection.dbapi_connection  # sqlite3's, which SQLAlchemy's stubs do not name
            mode = raw.execute("PRAGMA journal_mode=WAL").fetchone()
            if isinstance(raw, BusyAwareConnection):
                raw.wal = mode is not None and str(mode[0]).lower() == "wal"

    def wait_when_busy(self, raw: Any, exc: BaseException) -> bool:
        """After `exc` from a statement outside a write transaction: whether it failed only because
        the busy timeout was still off from the last `begin_immediate` (it is set back, so the
        statement is worth running again and waits as any other would)."""
        orig = getattr(exc, "orig", exc)
        if not isinstance(orig, sqlite3.OperationalError) or not _is_busy(orig):
            return False
        return restore_busy_timeout(raw, self.busy_ms)

    def index_applies(self, index: sa.Index) -> bool:
        return not any(key.split("_", 1)[0] == "postgresql" for key in index.dialect_kwargs)

    def contains(self, column: Any, token: str, ignore_case: bool = False) -> Clause:
        """SQLite's LIKE stops at the first NUL byte (PHP's mangled property names hold some, so
        text after a protected property would never match); instr() and lower() read it all."""
        if ignore_case:
            return sa.func.instr(sa.func.lower(column), token.lower()) > 0
        return sa.func.instr(column, token) > 0

    def likelihood(self, clause: Clause, probability: float) -> Clause:
        """`clause`, with how often it holds told to SQLite's planner. Its statistics give a
        column's average rows per value, so `failed_at IS NULL` reads as an equality matching a
        handful of rows, and it walks 900,000 of a million rows through that index; told that
        live rows are most and locked ones few, it takes the narrow range of the locks instead."""
        # untyped: a Boolean function would be compared with 1, which hides the hint
        hinted: Clause = sa.func.likelihood(clause, sa.literal_column(repr(float(probability))))
        return hinted

    def claim_live(self, table: sa.Table, has_claim_index: bool) -> Clause:
        if not has_claim_index:
            # a table qadmin did not create: `+failed_at` keeps SQLite off the failed_at index
            # (which matches nearly every row, then needs a sort) and on delayed_job's
            # (priority, run_at) index, which is already in claim order
            quoted = self.engine.dialect.identifier_preparer.quote("failed_at")
            return sa.literal_column("+" + quoted).is_(None)
        # without statistics SQLite takes `failed_at IS NULL` (and `queue IN …`) for selective
        # terms and sorts all they find; told they are not, it walks the claim index in claim
        # order and stops at the first runnable rows
        return self.likelihood(table.c.failed_at.is_(None), 0.9375)

    def first_line(self, column: Any) -> Any:
        return sa.func.substr(column, 1, sa.func.instr(column.concat(sa.func.char(10)), sa.func.char(10)) - 1)

    def increment(self, conn: sa.Connection, table: sa.Table, key: dict[str, Any], amounts: dict[str, int]) -> None:
        upsert_increment(conn, sqlite_sql.insert, table, key, amounts)

    def insert_absent(self, conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
        return upsert_absent(conn, sqlite_sql.insert, table, values)

    def insert_column(
        self, conn: sa.Connection, table: sa.Table, fixed: dict[str, Any], column: str, values: Sequence[Any]
    ) -> None:
        """One INSERT … SELECT over the values bound as one JSON array (json_each, built in from
        SQLite 3.38): executemany builds every row's parameters in Python."""
        if not values:
            return
        if sqlite3.sqlite_version_info < (3, 38):
            super().insert_column(conn, table, fixed, column, values)
            return
        names = list(fixed)
        constants = [sa.literal(fixed[n], table.c[n].type) for n in names]
        each = sa.func.json_each(sa.bindparam(None, json.dumps(list(values)), type_=sa.Text)).table_valued("value")
        conn.execute(sa.insert(table).from_select(names + [column], sa.select(*constants, each.c.value)))


def refuse_memory(url: str) -> None:
    """`sqlite://` and `sqlite:///:memory:` name a database that lives as long as one connection:
    nothing one qadmin command writes would be there for the next, and qadmin's reads and
    writes, which take connections of their own, would meet in one connection's transaction."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return  # create_engine says what is wrong with it
    database = parsed.database or ""
    if database in ("", ":memory:") or "mode=memory" in database or parsed.query.get("mode") == "memory":
        raise UsageError(
            f"{url} is an in-memory SQLite database, gone when its connection closes: "
            "give qadmin a file, e.g. sqlite:///qadmin.db"
        )


def _busy_timeout_ms(url: str) -> int:
    raw = sa.engine.make_url(url).query.get("timeout")
    if raw is None:
        return BUSY_TIMEOUT_MS
    try:
        seconds = float(raw if isinstance(raw, str) else raw[-1])
        if not 0 <= seconds <= 86400:
            raise ValueError
    except ValueError:
        raise UsageError(f"timeout={raw!r} in the SQLite URL is not a number of seconds from 0 to 86400") from None
    return int(seconds * 1000)


def _configure(engine: sa.Engine, timeout_ms: int) -> None:
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
        mode = None
        if job_database(cur):
            try:
                mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()
            except dbapi_conn.OperationalError:
                pass  # a read-only file stays as it is: reads work, writes say it is read-only
        cur.close()
        if isinstance(dbapi_conn, BusyAwareConnection):
            dbapi_conn.busy_ms = timeout_ms
            dbapi_conn.wal = mode is not None and str(mode[0]).lower() == "wal"

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        # whoever takes it from the pool gets SQLite's full busy timeout, whatever its last
        # user's `begin_immediate` left
        restore_busy_timeout(dbapi_conn, timeout_ms)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("qadmin_read"):
            restore_busy_timeout(conn.connection.dbapi_connection, timeout_ms)
            conn.exec_driver_sql("BEGIN")
        else:
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


class BusyAwareConnection(sqlite3.Connection):
    """sqlite3's connection, knowing the busy timeout it has (`busy_ms`) and whether its file is
    in WAL mode (`wal`), so that the timeout is set only when it is to change."""

    busy_ms = -1  # not known: set by the next change
    wal = False


def begin_immediate(dbapi_conn: Any, timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """Take SQLite's write lock, polling in short steps.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries, far longer than
    a claim holds the lock: a second worker process would spend its time asleep. Polling from
    Python every 0.1–1 ms hands the lock over as soon as it is free, with the busy timeout off.
    qadmin's own writers queue for `write_lock` first and seldom meet here: the polling is for
    other writers.

    In WAL mode nothing in a write transaction waits on a lock (its COMMIT takes none, and the
    checkpoint after it never waits), so the timeout stays off on a `BusyAwareConnection` from
    one write to the next: a worker's transactions cost no PRAGMA. It is set back before any
    statement that may wait (`restore_busy_timeout`: a read transaction, a pool checkout, a
    worker's snapshot read that met a busy file). Outside WAL a COMMIT waits for readers: the
    timeout is set back at once, as it always was."""
    deadline = time.monotonic() + timeout_ms / 1000
    pause = 0.0001
    keep_off = isinstance(dbapi_conn, BusyAwareConnection) and dbapi_conn.wal
    if not keep_off or dbapi_conn.busy_ms != 0:
        dbapi_conn.execute("PRAGMA busy_timeout=0")
        if keep_off:
            dbapi_conn.busy_ms = 0
    try:
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.001)
    finally:
        if not keep_off:
            dbapi_conn.execute(f"PRAGMA busy_timeout={timeout_ms}")


def restore_busy_timeout(dbapi_conn: Any, timeout_ms: int) -> bool:
    """Give `dbapi_conn` SQLite's busy timeout again if `begin_immediate` left it off: whether
    it was off."""
    if not isinstance(dbapi_conn, BusyAwareConnection) or dbapi_conn.busy_ms == timeout_ms:
        return False
    dbapi_conn.execute(f"PRAGMA busy_timeout={timeout_ms}")
    dbapi_conn.busy_ms = timeout_ms
    return True


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def lenient_text(data: bytes) -> str:
    """SQLite TEXT as str, even when a foreign writer stored bytes that are not UTF-8 (PHP's PDO
    does, for DJJob handlers holding binary strings): such bytes become surrogate escapes, which
    the PHP codec turns back into the very same bytes, instead of failing the whole listing."""
    return data.decode("utf-8", "surrogateescape")


def _sqlite_file(engine: sa.Engine) -> str | None:
    """The file of a SQLite database on disk (None for memory and URIs)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:") or engine.url.query.get("uri"):
        return None
    return database
