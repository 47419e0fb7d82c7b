"""The store: the engine's connections (read, write, a look at the schema), driver errors turned
into qadmin's, the jobs table found and reflected, and qadmin's bookkeeping tables beside it."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from qadmin.backends.base import BackendOptions
from qadmin.backends.sql.dialect import Dialect
from qadmin.backends.sql.tables import (
    DEFAULT_TABLE,
    FINISHED_ADDED_COLUMNS,
    bookkeeping_tables,
    claim_index_name,
    delayed_jobs_table,
    holds_unlocked_only,
    reflect_jobs_table,
    state_index_name,
)
from qadmin.errors import BackendUnavailable, MissingTable, QadminError, ReadOnlyBackend, UsageError


class Store:
    def __init__(self, dialect: Dialect, options: BackendOptions) -> None:
        self.dialect = dialect
        self.engine = dialect.engine
        self.safe_url = self.engine.url.render_as_string(hide_password=True)
        self.metadata = sa.MetaData()
        #: qadmin's bookkeeping tables, by key ("finished", "workers", …)
        self.aux = bookkeeping_tables(self.metadata)
        self._aux_ready = False
        self._aux_seen: set[str] = set()
        self._finished_columns_checked = False
        self._table: sa.Table | None = None
        self._state_index: bool | None = None
        self._table_name = options.table
        #: a SQLite file that does not exist yet is created only by `init`, never by a typo'd
        #: URL given to a command that reads
        self._db_file = dialect.database_file()

    # --- connections -------------------------------------------------------------------------
    @contextmanager
    def wrap(self) -> Iterator[None]:
        """Driver and SQLAlchemy errors as qadmin's (`backends.base`: only QadminErrors leave)."""
        if self._db_file is not None:
            if not os.path.exists(self._db_file):
                raise MissingTable(f"database file {self._db_file} does not exist; run `qadmin init` to create it")
            self._db_file = None
        try:
            yield
        except QadminError:
            raise
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.InterfaceError, sa.exc.InternalError) as exc:
            raise self._translated(exc) from exc
        except sa.exc.DBAPIError as exc:
            raise QadminError(f"database error: {_first_line(exc)}") from exc
        except sa.exc.TimeoutError as exc:  # no pooled connection came free in time
            raise BackendUnavailable(f"cannot reach {self.safe_url}: {exc}") from exc
        except sa.exc.SQLAlchemyError as exc:  # never a raw driver-layer exception to the caller
            raise QadminError(f"database error: {str(exc).splitlines()[0]}") from exc

    def _translated(self, exc: sa.exc.DBAPIError) -> QadminError:
        text = str(getattr(exc, "orig", exc)).strip()
        login = _login_failure(text)
        if login is not None:
            return QadminError(f"cannot log in to {self.safe_url}: authentication failed ({login})")
        if re.search(r"readonly database|read-only transaction", text):
            return ReadOnlyBackend(
                f"{self.safe_url} is read-only ({text.splitlines()[0]}): workers and "
                "commands that change jobs need to write it"
            )
        if re.search(r'prepared statement "[^"]*" (does not exist|already exists)', text):
            # not a missing table: the server connection changed under the client's statements
            return QadminError(
                f"{text.splitlines()[0]} at {self.safe_url}: a pooler in transaction mode (PgBouncer) "
                "does not keep prepared statements; add prepare=off to the URL (?prepare=off)"
            )
        if isinstance(exc, sa.exc.InternalError):
            return QadminError(f"database error: {_first_line(exc)}")
        if re.search(r"no such table|does not exist|doesn't exist", text) and "database" not in text:
            return MissingTable(
                f"{text.splitlines()[0]} at {self.safe_url}; run `qadmin init` to create qadmin's tables"
            )
        if isinstance(exc, sa.exc.ProgrammingError):
            return QadminError(f"database error: {_first_line(exc)}")
        first = text.splitlines()[0] if text else type(exc).__name__
        return BackendUnavailable(f"cannot reach {self.safe_url}: {first}")

    @contextmanager
    def begun(self, conn: sa.Connection) -> Iterator[sa.Connection]:
        """A write transaction in `conn`, in the queue of qadmin's writers on a SQLite file."""
        with self.dialect.write_lock(), conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        with self.wrap(), self.engine.connect() as conn, self.begun(conn):
            yield conn

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        # a read never creates a table (the database may be someone else's): qadmin's own tables
        # are looked for, and read if there (`has_aux`), before the read begins, since a SQLite
        # snapshot never sees tables created after it began
        if not self._aux_ready:
            self.look_for_aux()
        with self.wrap(), self.engine.connect() as conn:
            conn = conn.execution_options(qadmin_read=True)
            with conn.begin():
                yield conn

    @contextmanager
    def peek(self) -> Iterator[sa.Connection]:
        """A connection for a look at the schema: a reader's (on SQLite, a deferred BEGIN that
        waits for no writer; a connection's first statement would otherwise begin a write)."""
        with self.wrap(), self.engine.connect() as conn:
            yield conn.execution_options(qadmin_read=True)

    # --- the jobs table ----------------------------------------------------------------------
    @property
    def table_name(self) -> str:
        return self._table_name or DEFAULT_TABLE

    def jobs(self) -> sa.Table:
        if self._table is not None:
            return self._table
        with self.peek() as conn:
            inspector = sa.inspect(conn)
            if self._table_name is None:
                if inspector.has_table(DEFAULT_TABLE):
                    self._table_name = DEFAULT_TABLE
                elif inspector.has_table("jobs") and "handler" in {c["name"] for c in inspector.get_columns("jobs")}:
                    self._table_name = "jobs"  # DJJob's default table
                else:
                    self._table_name = DEFAULT_TABLE
            if not inspector.has_table(self.table_name):
                raise MissingTable(self._missing_jobs_table(inspector.get_table_names()))
            self._table = reflect_jobs_table(self.metadata, self.table_name, conn)
        return self._table

    def error_col(self) -> sa.Column[Any]:
        t = self.jobs()
        return t.c.last_error if "last_error" in t.c else t.c.error

    def _missing_jobs_table(self, tables: list[str]) -> str:
        """Why there is no jobs table, and what to do: `init` only where it would create one."""
        found = self._foreign_tables(tables)
        if found is None:
            return f"table {self.table_name!r} does not exist at {self.safe_url}; run `qadmin init` to create it"
        return (
            f"table {self.table_name!r} does not exist at {self.safe_url}, which is not a job database "
            f"qadmin knows (found {found}): name its jobs table with --table, or point qadmin at another "
            "database"
        )

    def _foreign_tables(self, tables: list[str]) -> str | None:
        """The tables of a database whose layout qadmin does not recognise (some tables, none of
        them the jobs table nor qadmin's own), named for a message; None for one it does."""
        known = {self.table_name, DEFAULT_TABLE, "jobs"}  # its own, delayed_job's, DJJob's
        if not tables or known & set(tables) or any(t.startswith("qadmin_") for t in tables):
            return None
        shown = sorted(tables)
        return ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")

    def has_state_index(self) -> bool:
        if self._state_index is None:
            with self.peek() as conn:
                names = {i["name"] for i in sa.inspect(conn).get_indexes(self.table_name)}
            self._state_index = state_index_name(self.table_name) in names
        return self._state_index

    # --- qadmin's bookkeeping tables ---------------------------------------------------------
    def look_for_aux(self) -> None:
        """Readers: whether qadmin's bookkeeping tables are there, creating nothing. Without them
        there is nothing to read in them: no finished jobs, pauses, workers, audit."""
        with self.peek() as conn:
            names = set(sa.inspect(conn).get_table_names())
        self._aux_seen = {key for key, t in self.aux.items() if t.name in names}
        if "finished" in self._aux_seen:
            self._add_finished_columns()
        self._aux_ready = len(self._aux_seen) == len(self.aux)

    def has_aux(self, key: str) -> bool:
        """Whether qadmin's table `key` can be read (an earlier qadmin may have made only some)."""
        return self._aux_ready or key in self._aux_seen

    @property
    def aux_ready(self) -> bool:
        return self._aux_ready

    def ensure_aux(self) -> None:
        """Writers (init, enqueue, the worker, the verbs that record what they did): create
        qadmin's bookkeeping tables, in a database that has its jobs table only."""
        if self._aux_ready:
            return
        self.jobs()
        for attempt in range(3):
            try:
                with self.write() as conn:
                    self.metadata.create_all(conn, tables=list(self.aux.values()), checkfirst=True)
                break
            except QadminError:
                if attempt == 2:
                    raise
                time.sleep(0.2)  # another process created them at the same moment
        self._add_finished_columns()
        self._aux_ready = True

    def _add_finished_columns(self) -> None:
        """The finished records of an earlier qadmin get the columns added since (nullable: the
        rows they hold read as before). Looked at once per store."""
        if self._finished_columns_checked:
            return
        name = self.aux["finished"].name
        with self.peek() as conn:
            have = {c["name"] for c in sa.inspect(conn).get_columns(name)}
        missing = [(column, kind) for column, kind in FINISHED_ADDED_COLUMNS if column not in have]
        if missing:
            try:
                with self.write() as conn:
                    preparer = conn.dialect.identifier_preparer
                    for column, kind in missing:
                        spelt = kind.compile(dialect=conn.dialect)
                        conn.execute(
                            sa.text(f"ALTER TABLE {preparer.quote(name)} ADD COLUMN {preparer.quote(column)} {spelt}")
                        )
            except QadminError:
                with self.peek() as conn:  # another process added them at the same moment
                    have = {c["name"] for c in sa.inspect(conn).get_columns(name)}
                if any(column not in have for column, _ in missing):
                    raise
        self._finished_columns_checked = True

    # --- set-up ------------------------------------------------------------------------------
    def init(self) -> None:
        self._db_file = None
        with self.peek() as conn:  # before the write lock (and its file)
            found = self._foreign_tables(sa.inspect(conn).get_table_names())
        if found is not None:
            raise UsageError(
                f"{self.safe_url} holds another application's tables ({found}) and no "
                f"{self.table_name!r} table: qadmin creates its tables only in an empty "
                "database or beside a jobs table it knows (--table names one)"
            )
        with self.write() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(self.table_name):
                delayed_jobs_table(sa.MetaData(), self.table_name).create(conn)
            else:
                self._add_missing_indexes(conn, inspector)
        self._table = None
        self._state_index = None
        self._aux_ready = False
        self.ensure_aux()
        self.jobs()
        with self.wrap():
            self.dialect.use_wal()

    def _add_missing_indexes(self, conn: sa.Connection, inspector: Any) -> None:
        """A jobs table an earlier qadmin created gets the indexes added since (the claim's,
        stats'); a table someone else created keeps exactly the indexes its owner gave it."""
        name = self.table_name
        found = {i["name"]: i for i in inspector.get_indexes(name)}
        existing = set(found)
        if f"qadmin_{name}_failed_at" not in existing:
            return
        claim = found.get(claim_index_name(name))
        if claim is not None and conn.dialect.name == "postgresql":
            where = claim.get("dialect_options", {}).get("postgresql_where")
            if not holds_unlocked_only(where):
                # an earlier qadmin's claim index, which held locked rows as well: built again
                conn.exec_driver_sql(f"DROP INDEX {conn.dialect.identifier_preparer.quote(claim_index_name(name))}")
                existing.discard(claim_index_name(name))
        for index in delayed_jobs_table(sa.MetaData(), name).indexes:
            if index.name in existing or not str(index.name).startswith("qadmin_"):
                continue
            if self.dialect.index_applies(index):
                index.create(conn)


def _first_line(exc: sa.exc.DBAPIError) -> str:
    text = str(getattr(exc, "orig", exc)).strip()
    return text.splitlines()[0] if text else str(exc)


def _login_failure(text: str) -> str | None:
    """The server's reason when it refused the login (a wrong password, an unknown role, no
    pg_hba.conf entry), else None."""
    for pattern in (
        r'password authentication failed for user "[^"]*"',
        r'role "[^"]*" does not exist',
        r"no password supplied",
        r"no pg_hba\.conf entry[^\n]*",
        r'Peer authentication failed for user "[^"]*"',
    ):
        found = re.search(pattern, text)
        if found:
            return found.group(0)
    return None


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The id an INSERT of one row gave its row."""
    key = result.inserted_primary_key
    if key is None:
        raise QadminError("the database gave back no id for the row inserted")
    value: int = key[0]
    return value
