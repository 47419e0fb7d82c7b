"""The SQL backend: SQLAlchemy 2 Core over delayed_job's `delayed_jobs` table (or DJJob's `jobs`).

One `engine.begin()` per unit of work. Claims follow docs/compatibility.md §4.2 and §8.5: only a row the
worker can run is locked, by an UPDATE guarded by the ready predicate. On PostgreSQL one
statement locks the next rows (`FOR UPDATE SKIP LOCKED`) and returns them; a row the worker
then cannot run gets its previous lock back at once. On SQLite the candidates are read from a
snapshot and the write lock (`BEGIN IMMEDIATE`) is taken only to lock them. The worker's hot
statements are built once (`_sql_claim`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from qadmin.backends import _sql_dialect as dialect
from qadmin.backends._sql_claim import ClaimStatements
from qadmin.backends._sql_engine import BATCH, SqlEngine, _as_utc, _begun, _keyset
from qadmin.backends._sql_tables import (
    DEFAULT_TABLE,
    bookkeeping_tables,
    delayed_jobs_table,
    reflect_jobs_table,
    state_index_name,
)
from qadmin.backends.base import SORTS, BackendOptions, ErrorGroup, Page, Stats
from qadmin.backends.owners import owner_dead, parse_owner
from qadmin.codecs import UNDECODABLE, decode_payload
from qadmin.errors import BackendUnavailable, JobNotFound, MissingTable, QadminError, ReadOnlyBackend, UsageError
from qadmin.filters import JobFilter, class_matches
from qadmin.job import AuditEntry, Job, JobId, JobState, QueueInfo, WorkerInfo

#: ids per statement in bulk verbs on databases with RETURNING (one bound parameter per id:
#: SQLite allows 32,766, PostgreSQL 65,535)
GUARDED_BATCH = 5000
#: ids per statement when listing bare ids (bulk verbs' previews)
ID_BATCH = 50_000
LIVE_STATES = frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED, JobState.FAILED})
#: how a page cursor into the finished jobs begins (live pages' cursors are JSON lists)
FINISHED_CURSOR = "finished:"


class SqlBackend(SqlEngine):
    supports_priority = True
    records_finished = True
    defers_successes = False

    def __init__(self, url: str, options: BackendOptions) -> None:
        self.options = options
        dialect.refuse_memory(url)
        self.engine = dialect.create_engine(url)
        self.kind = self.engine.dialect.name
        self.safe_url = self.engine.url.render_as_string(hide_password=True)
        self._metadata = sa.MetaData()
        self._aux = bookkeeping_tables(self._metadata)
        self._aux_ready = False
        self._aux_seen: set[str] = set()
        self._table: sa.Table | None = None
        self._state_index: bool | None = None
        self._table_name = options.table
        self._skip_locked: bool | None = None
        self._stmts: ClaimStatements | None = None
        self._insert: Any = None
        self._auto_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._buffer: dict[datetime, list[int]] = {}
        self._last_flush = time.monotonic()
        #: a SQLite file that does not exist yet is created only by `init`, never by a typo'd
        #: URL given to a command that reads
        self._db_file = dialect.sqlite_file(self.engine)

    # --- plumbing ----------------------------------------------------------------------------
    @contextmanager
    def _wrap(self) -> Iterator[None]:
        if self._db_file is not None:
            if not os.path.exists(self._db_file):
                raise MissingTable(f"database file {self._db_file} does not exist; run `qadmin init` to create it")
            self._db_file = None
        try:
            yield
        except QadminError:
            raise
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.InterfaceError, sa.exc.InternalError) as exc:
            text = str(getattr(exc, "orig", exc)).strip()
            login = _login_failure(text)
            if login is not None:
                raise QadminError(f"cannot log in to {self.safe_url}: authentication failed ({login})") from exc
            if re.search(r"readonly database|read-only transaction", text):
                raise ReadOnlyBackend(
                    f"{self.safe_url} is read-only ({text.splitlines()[0]}): workers and "
                    "commands that change jobs need to write it"
                ) from exc
            if isinstance(exc, sa.exc.InternalError):
                raise QadminError(f"database error: {text.splitlines()[0] if text else exc}") from exc
            if re.search(r"no such table|does not exist|doesn't exist", text) and "database" not in text:
                raise MissingTable(
                    f"{text.splitlines()[0]} at {self.safe_url}; run `qadmin init` to create qadmin's tables"
                ) from exc
            if isinstance(exc, sa.exc.ProgrammingError):
                raise QadminError(f"database error: {text.splitlines()[0] if text else exc}") from exc
            first = text.splitlines()[0] if text else type(exc).__name__
            raise BackendUnavailable(f"cannot reach {self.safe_url}: {first}") from exc
        except sa.exc.DBAPIError as exc:
            text = str(getattr(exc, "orig", exc)).strip()
            raise QadminError(f"database error: {text.splitlines()[0] if text else exc}") from exc
        except sa.exc.TimeoutError as exc:  # no pooled connection came free in time
            raise BackendUnavailable(f"cannot reach {self.safe_url}: {exc}") from exc
        except sa.exc.SQLAlchemyError as exc:  # never a raw driver-layer exception to the caller
            raise QadminError(f"database error: {str(exc).splitlines()[0]}") from exc

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        # `_begun`: the engine's write transactions, in the queue of qadmin's writers on a SQLite file
        with self._wrap(), self.engine.connect() as conn, _begun(conn):
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        # a read never creates a table (the database may be someone else's): qadmin's own tables
        # are looked for, and read if there (`_aux_ready`), before the read begins, since a
        # SQLite snapshot never sees tables created after it began
        if not self._aux_ready:
            self._look_for_aux()
        with self._wrap(), self.engine.connect() as conn:
            conn = conn.execution_options(qadmin_read=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _peek(self) -> Iterator[sa.Connection]:
        """A connection for a look at the schema: a reader's (on SQLite, a deferred BEGIN that
        waits for no writer; a connection's first statement would otherwise begin a write)."""
        with self._wrap(), self.engine.connect() as conn:
            yield conn.execution_options(qadmin_read=True)

    @property
    def table_name(self) -> str:
        return self._table_name or DEFAULT_TABLE

    def _jobs(self) -> sa.Table:
        if self._table is not None:
            return self._table
        with self._peek() as conn:
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
            self._table = reflect_jobs_table(self._metadata, self.table_name, conn)
        return self._table

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

    def _look_for_aux(self) -> None:
        """Readers: whether qadmin's bookkeeping tables are there (`_aux_ready`), creating nothing.
        Without them there is nothing to read in them: no finished jobs, pauses, workers, audit."""
        with self._peek() as conn:
            names = set(sa.inspect(conn).get_table_names())
        self._aux_seen = {key for key, t in self._aux.items() if t.name in names}
        self._aux_ready = len(self._aux_seen) == len(self._aux)

    def _has_aux(self, key: str) -> bool:
        """Whether qadmin's table `key` can be read (an earlier qadmin may have made only some)."""
        return self._aux_ready or key in self._aux_seen

    def _ensure_aux(self) -> None:
        """Writers (init, enqueue, the worker, the verbs that record what they did): create
        qadmin's bookkeeping tables, in a database that has its jobs table only."""
        if self._aux_ready:
            return
        self._jobs()
        for attempt in range(3):
            try:
                with self._write() as conn:
                    self._metadata.create_all(conn, tables=list(self._aux.values()), checkfirst=True)
                break
            except QadminError:
                if attempt == 2:
                    raise
                time.sleep(0.2)  # another process created them at the same moment
        self._aux_ready = True

    def _col(self, name: str) -> sa.Column | None:
        return self._jobs().c.get(name)

    @property
    def _error_col(self) -> sa.Column:
        t = self._jobs()
        return t.c.last_error if "last_error" in t.c else t.c.error

    def _skip(self) -> bool:
        if self._skip_locked is None:
            with self._wrap(), self.engine.connect():
                pass  # connecting fills in server_version_info
            self._skip_locked = dialect.skip_locked(self.engine)
        return self._skip_locked

    # --- set-up ------------------------------------------------------------------------------
    def init(self) -> None:
        self._db_file = None
        with self._peek() as conn:  # before the write lock (and its file)
            found = self._foreign_tables(sa.inspect(conn).get_table_names())
        if found is not None:
            raise UsageError(
                f"{self.safe_url} holds another application's tables ({found}) and no "
                f"{self.table_name!r} table: qadmin creates its tables only in an empty "
                "database or beside a jobs table it knows (--table names one)"
            )
        with self._write() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(self.table_name):
                delayed_jobs_table(sa.MetaData(), self.table_name).create(conn)
            else:
                self._add_missing_indexes(conn, inspector)
        self._table = None
        self._state_index = None
        self._aux_ready = False
        self._ensure_aux()
        self._jobs()
        with self._wrap():
            dialect.use_wal(self.engine)

    def _add_missing_indexes(self, conn: sa.Connection, inspector: Any) -> None:
        """A jobs table an earlier qadmin created gets the indexes added since (the claim's,
        stats'); a table someone else created keeps exactly the indexes its owner gave it."""
        name = self.table_name
        existing = {i["name"] for i in inspector.get_indexes(name)}
        if f"qadmin_{name}_failed_at" not in existing:
            return
        other_dialects = {"sqlite", "postgresql"} - {self.kind}
        for index in delayed_jobs_table(sa.MetaData(), name).indexes:
            if index.name in existing or not index.name.startswith("qadmin_"):
                continue
            if self.kind not in ("sqlite", "postgresql") and index.dialect_kwargs:
                continue  # a partial index: not every database has them
            if any(key.split("_", 1)[0] in other_dialects for key in index.dialect_kwargs):
                continue
            index.create(conn)

    def check(self) -> None:
        self._jobs()

    def session(self, worker: str, *, defer_successes: bool = False) -> Any:
        from qadmin.backends._legacy_session import LegacySession

        return LegacySession(self, worker, defer_successes)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.engine.dispose()

    def parse_id(self, text: str) -> JobId:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise UsageError(f"{text!r} is not a job id of this SQL table (ids are integers)") from None
        if not -(2**63) <= value < 2**63:
            # no row can have it, and the driver would overflow on it
            raise JobNotFound(text)
        return value

    # --- row -> Job ---------------------------------------------------------------------------
    def _dead_owners(self, conn: sa.Connection, owners: set[str], now: datetime) -> set[str]:
        owners = {o for o in owners if isinstance(o, str)}  # a BLOB or a number names no process
        if not owners:
            return set()
        w = self._aux["workers"]
        beats = (
            {
                r.name: r.heartbeat_at
                for r in conn.execute(sa.select(w.c.name, w.c.heartbeat_at).where(w.c.name.in_(list(owners)[:BATCH])))
            }
            if self._has_aux("workers")
            else {}
        )
        return {o for o in owners if owner_dead(o, beats, now, self.options.worker_timeout)}

    def _all_dead_owners(self, conn: sa.Connection, now: datetime) -> set[str]:
        t = self._jobs()
        owners = {
            r[0]
            for r in conn.execute(sa.select(t.c.locked_by).where(self._locked(), t.c.locked_by.is_not(None)).distinct())
        }
        return self._dead_owners(conn, owners, now)

    def _locked(self) -> Any:
        """Live locked rows: few (a lock per running job, plus stale ones) among many."""
        t = self._jobs()
        return sa.and_(
            dialect.likelihood(self.engine, t.c.failed_at.is_(None), 0.9375),
            dialect.likelihood(self.engine, t.c.locked_at.is_not(None), 0.001),
        )

    def _to_job(self, row: Any, now: datetime, dead: set[str]) -> Job:
        handler = row.handler
        decoded = decode_payload(handler if isinstance(handler, (str, bytes)) or handler is None else str(handler))
        raw = _text(handler) or ""
        mapping = row._mapping
        # a value a column's reader cannot read (a time that is no time, a BLOB queue, a word
        # for a number) makes this job undecodable, naming it; the rest of the row is shown
        unreadable: list[str] = []
        times: dict[str, datetime | None] = {}
        for name in ("run_at", "locked_at", "failed_at", "created_at"):
            value = mapping.get(name)
            if value is not None and not isinstance(value, datetime):
                unreadable.append(f"{name} {_shown(value)}")
                value = None
            times[name] = value
        run_at, locked_at, failed_at = times["run_at"], times["locked_at"], times["failed_at"]
        numbers: dict[str, int] = {}
        for name in ("priority", "attempts"):
            value = mapping.get(name)
            if value is not None and (value.__class__ is not int):
                unreadable.append(f"{name} {_shown(value)}")
                value = None
            numbers[name] = value or 0
        texts: dict[str, str | None] = {}
        for name in ("queue", "locked_by", "last_error", "error"):
            value = mapping.get(name)
            if value is not None and value.__class__ is not str:
                if name in ("queue", "locked_by"):  # names: text only (a BLOB is no queue name)
                    unreadable.append(f"{name} {_shown(value)}")
                value = _text(value)
            texts[name] = value
        if not isinstance(row.id, int):
            unreadable.append(f"id {_shown(row.id)}")
        stale = False
        locked_by = texts["locked_by"]
        # a time that is set but unreadable still says which state the row is in (as SQL sees it)
        if mapping.get("failed_at") is not None:
            state = JobState.FAILED
        elif mapping.get("locked_at") is not None:
            state = JobState.LOCKED
            stale = locked_at is not None and (
                locked_at < now - timedelta(seconds=self.options.max_run_time) or locked_by in dead
            )
        elif run_at is not None and run_at > now:
            state = JobState.SCHEDULED
        else:
            state = JobState.PENDING
        max_attempts = decoded.meta.get("max_attempts")
        reason = decoded.error
        if unreadable:
            reason = "unreadable " + "; ".join(unreadable) + (f"; {reason}" if reason else "")
        return Job(
            id=row.id,
            queue=texts["queue"],
            class_name=decoded.class_name,
            args=decoded.args,
            kwargs=decoded.kwargs,
            state=state,
            priority=numbers["priority"],
            attempts=numbers["attempts"],
            run_at=run_at,
            locked_at=locked_at,
            locked_by=locked_by,
            failed_at=failed_at,
            last_error=texts["last_error"] if "last_error" in mapping else texts["error"],
            created_at=times["created_at"],
            raw=raw,
            format=decoded.format,
            undecodable=reason,
            max_attempts=max_attempts if isinstance(max_attempts, int) else None,
            stale=stale,
            meta=decoded.meta,
            display=decoded.display,
        )

    def _finished_job(self, row: Any) -> Job:
        decoded = decode_payload(row.handler)
        return Job(
            id=row.job_id,
            queue=row.queue,
            class_name=row.class_name or decoded.class_name,
            args=decoded.args,
            kwargs=decoded.kwargs,
            state=JobState.FINISHED,
            priority=row.priority or 0,
            attempts=row.attempts or 0,
            created_at=row.created_at,
            finished_at=row.finished_at,
            locked_by=row.worker,
            raw=row.handler or "",
            format=decoded.format,
            undecodable=decoded.error,
            meta={"runtime": row.runtime, **decoded.meta},
            display=decoded.display,
        )

    # --- selection -> SQL ---------------------------------------------------------------------
    def _state_clause(self, state: JobState, now: datetime, stale_only: bool, dead: set[str]) -> Any:
        t = self._jobs()
        if state is JobState.FAILED:
            return t.c.failed_at.is_not(None)
        if state is JobState.LOCKED:
            clause = self._locked()
            if stale_only:
                cutoff = now - timedelta(seconds=self.options.max_run_time)
                stale = t.c.locked_at < cutoff
                if dead:
                    stale = sa.or_(stale, t.c.locked_by.in_(sorted(dead)))
                clause = sa.and_(clause, stale)
            return clause
        unlocked = sa.and_(t.c.failed_at.is_(None), t.c.locked_at.is_(None))
        if state is JobState.SCHEDULED:
            return sa.and_(unlocked, t.c.run_at > now)
        return sa.and_(unlocked, sa.or_(t.c.run_at.is_(None), t.c.run_at <= now))

    def _where(self, selection: JobFilter, now: datetime, conn: sa.Connection) -> tuple[list[Any], bool, set[str]]:
        """SQL conditions for a filter, whether rows need the exact Python check, and dead owners."""
        t = self._jobs()
        clauses: list[Any] = []
        dead: set[str] = set()
        states = set(selection.states) or set(LIVE_STATES)
        if selection.stale_only:
            states = {JobState.LOCKED}
            dead = self._all_dead_owners(conn, now)
        if states != set(LIVE_STATES):
            clauses.append(
                sa.or_(
                    *(
                        self._state_clause(s, now, selection.stale_only, dead)
                        for s in sorted(states, key=lambda s: s.value)
                        if s in LIVE_STATES
                    )
                )
                if states & LIVE_STATES
                else sa.false()
            )
        if selection.queues:
            named = t.c.queue.in_(list(selection.queues))
            # delayed_job's default queue is NULL; listings show and select it as ""
            clauses.append(sa.or_(named, t.c.queue.is_(None)) if "" in selection.queues else named)
        if selection.ids:
            ids = [self.parse_id(str(i)) for i in selection.ids]
            clauses.append(t.c.id.in_(ids))
        if selection.locked_by is not None:
            clauses.append(t.c.locked_by.like(f"%{_escape_like(selection.locked_by)}%", escape="\\"))
        if selection.error is not None:
            err = self._error_col
            clauses.append(sa.or_(err == selection.error, err.like(_escape_like(selection.error) + "\n%", escape="\\")))
        post = False
        tokens = _payload_tokens(selection)
        if selection.class_name is not None or selection.args is not None:
            post = True
        if selection.search:
            post = True
            # every word is in the payload or the last error (which one, `matches` tells)
            for token in _tokens(selection.search):
                clauses.append(
                    sa.or_(
                        dialect.contains(self.engine, t.c.handler, token, ignore_case=True),
                        dialect.contains(self.engine, self._error_col, token, ignore_case=True),
                    )
                )
        for token, any_case in tokens[:8]:
            clauses.append(dialect.contains(self.engine, t.c.handler, token, ignore_case=any_case))
        if selection.undecodable:
            post = True
        return clauses, post, dead

    def _order(self, sort: str) -> tuple[list[sa.Column], bool]:
        t = self._jobs()
        if sort not in SORTS:
            raise UsageError(f"unknown sort {sort!r}; expected one of: {', '.join(SORTS)}")
        if sort == "id":
            return [t.c.id], False
        if sort == "-id":
            return [t.c.id], True
        if sort == "priority":
            cols = [t.c.priority] if "priority" in t.c else []
            return cols + [t.c.run_at, t.c.id], False
        if sort == "run_at":
            return [t.c.run_at, t.c.id], False
        return [t.c.failed_at, t.c.id], True

    # --- admin verbs --------------------------------------------------------------------------
    def get(self, job_id: JobId, now: datetime) -> Job:
        job_id = self.parse_id(str(job_id))
        t = self._jobs()
        with self._read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == job_id)).first()
            if row is not None:
                return self._to_job(row, now, self._dead_owners(conn, {row.locked_by} - {None}, now))
            f = self._aux["finished"]
            row = (
                None
                if not self._has_aux("finished")
                else conn.execute(
                    sa.select(f)
                    .where(f.c.job_table == self.table_name, f.c.job_id == job_id)
                    .order_by(f.c.id.desc())
                    .limit(1)
                ).first()
            )
            if row is not None:
                return self._finished_job(row)
        raise JobNotFound(job_id)

    def find(
        self, selection: JobFilter, now: datetime, *, limit: int, cursor: str | None = None, sort: str = "id"
    ) -> Page:
        if JobState.FINISHED not in selection.states:
            return self._find_live(selection, now, limit=limit, cursor=cursor, sort=sort)
        if not selection.states & LIVE_STATES:
            return self._find_finished(selection, limit=limit, cursor=cursor)
        # live and finished jobs: the live ones in the asked order first, then the finished ones
        # (newest first); the cursor says which of the two a page goes on with
        if cursor is None or not cursor.startswith(FINISHED_CURSOR):
            page = self._find_live(selection, now, limit=limit, cursor=cursor, sort=sort)
            if page.next_cursor is not None:
                return page
            rest = self._find_finished(selection, limit=limit - len(page.jobs), cursor=None)
            return Page(page.jobs + rest.jobs, rest.next_cursor)
        return self._find_finished(selection, limit=limit, cursor=cursor)

    def _find_live(self, selection: JobFilter, now: datetime, *, limit: int, cursor: str | None, sort: str) -> Page:
        cols, desc = self._order(sort)
        t = self._jobs()
        out: list[Job] = []
        after = _decode_cursor(cursor, cols) if cursor else None
        with self._read() as conn:
            where, post, dead = self._where(selection, now, conn)
            batch = limit + 1 if not post else max(4 * limit, 200)
            more = False
            while True:
                query = sa.select(t).where(*where)
                if after is not None:
                    query = query.where(_keyset(cols, after, desc))
                order = [dialect.order_nulls_low(self.engine, c, desc) for c in cols]
                rows = conn.execute(query.order_by(*order).limit(batch)).all()
                owners = {r.locked_by for r in rows if r.locked_by} - dead
                page_dead = dead | self._dead_owners(conn, owners, now)
                for row in rows:
                    job = self._to_job(row, now, page_dead)
                    if post and not selection.matches(job):
                        continue
                    if len(out) == limit:
                        more = True
                        break
                    out.append(job)
                if more or len(rows) < batch:
                    break
                after = tuple(getattr(rows[-1], c.name) for c in cols)
        next_cursor = _encode_cursor(out[-1], cols) if more and out else None
        return Page(out, next_cursor)

    def _finished_where(self, selection: JobFilter) -> tuple[list[Any], bool]:
        """SQL conditions on qadmin_finished for a filter, and whether rows need the exact Python
        check: the same fields as `_where`, as far as a finished row can answer them."""
        f = self._aux["finished"]
        clauses: list[Any] = [f.c.job_table == self.table_name]
        if selection.stale_only or selection.error is not None:
            # a finished job holds no lock and has no error
            return clauses + [sa.false()], False
        if selection.queues:
            named = f.c.queue.in_(list(selection.queues))
            clauses.append(sa.or_(named, f.c.queue.is_(None)) if "" in selection.queues else named)
        if selection.ids:
            clauses.append(f.c.job_id.in_([self.parse_id(str(i)) for i in selection.ids]))
        if selection.locked_by is not None:
            # a finished job shows the worker that ran it as its lock holder
            clauses.append(f.c.worker.like(f"%{_escape_like(selection.locked_by)}%", escape="\\"))
        post = False
        tokens = _payload_tokens(replace(selection, class_name=None))
        if selection.class_name is not None:
            # the class recorded at completion; rows without one are decoded
            post = True
            words = [
                dialect.contains(self.engine, f.c.class_name, token, ignore_case=True)
                for token in _tokens(selection.class_name)
            ]
            clauses.append(sa.or_(sa.and_(sa.true(), *words), f.c.class_name.is_(None), f.c.class_name == ""))
        if selection.args is not None:
            post = True
        if selection.search:
            post = True
            for token in _tokens(selection.search):
                clauses.append(
                    sa.or_(
                        dialect.contains(self.engine, f.c.handler, token, ignore_case=True),
                        dialect.contains(self.engine, f.c.class_name, token, ignore_case=True),
                    )
                )
        for token, any_case in tokens[:8]:
            clauses.append(dialect.contains(self.engine, f.c.handler, token, ignore_case=any_case))
        if selection.undecodable:
            post = True
        return clauses, post

    def _find_finished(self, selection: JobFilter, *, limit: int, cursor: str | None) -> Page:
        self._jobs()  # which table's finished jobs (DJJob's `jobs` is found there), and that it exists
        f = self._aux["finished"]
        out: list[Job] = []
        try:
            after = int(cursor.removeprefix(FINISHED_CURSOR)) if cursor else None
        except ValueError:
            raise UsageError(f"invalid page cursor {cursor!r}") from None
        where, post = self._finished_where(selection)
        batch = limit + 1 if not post else max(4 * limit, 200)
        with self._read() as conn:
            if not self._has_aux("finished"):  # no qadmin worker has finished a job here
                return Page([], None)
            while True:
                query = sa.select(f).where(*where)
                if after is not None:
                    query = query.where(f.c.id < after)
                rows = conn.execute(query.order_by(f.c.id.desc()).limit(batch)).all()
                for row in rows:
                    job = self._finished_job(row)
                    if selection.matches(job):
                        out.append(job)
                        if len(out) == limit + 1:
                            return Page(out[:limit], f"{FINISHED_CURSOR}{row.id + 1}")
                if len(rows) < batch:
                    return Page(out, None)
                after = rows[-1].id

    def iter_ids(self, selection: JobFilter, now: datetime, batch: int = 5000) -> Iterator[list[JobId]]:
        t = self._jobs()
        last: int | None = None
        while True:
            with self._read() as conn:
                where, post, _dead = self._where(selection, now, conn)
                # bare ids are cheap to hold: fewer statements, each of which may have to find
                # and sort every matching row again (PostgreSQL's bitmap scans do)
                size = batch if post else max(batch, ID_BATCH)
                query = sa.select(t if post else t.c.id).where(*where)
                if last is not None:
                    query = query.where(t.c.id > last)
                rows = conn.execute(query.order_by(t.c.id).limit(size)).all()
                if post:
                    dead = self._dead_owners(conn, {r.locked_by for r in rows if r.locked_by}, now)
                    ids = [r.id for r in rows if selection.matches(self._to_job(r, now, dead))]
                else:
                    ids = [r[0] for r in rows]
            for start in range(0, len(ids), batch):
                yield ids[start : start + batch]
            if len(rows) < size:
                return
            last = rows[-1].id

    def count(self, selection: JobFilter, now: datetime) -> int:
        if JobState.FINISHED in selection.states:
            finished = self._count_finished(selection)
            if not selection.states & LIVE_STATES:
                return finished
            return finished + self._count_live(selection, now)
        return self._count_live(selection, now)

    def _count_finished(self, selection: JobFilter) -> int:
        self._jobs()
        f = self._aux["finished"]
        where, post = self._finished_where(selection)
        with self._read() as conn:
            if not self._has_aux("finished"):
                return 0
            if not post:
                return int(conn.execute(sa.select(sa.func.count()).select_from(f).where(*where)).scalar_one())
            n = 0
            after: int | None = None
            while True:
                query = sa.select(f).where(*where)
                if after is not None:
                    query = query.where(f.c.id > after)
                rows = conn.execute(query.order_by(f.c.id).limit(BATCH)).all()
                n += sum(1 for row in rows if selection.matches(self._finished_job(row)))
                if len(rows) < BATCH:
                    return n
                after = rows[-1].id

    def _count_live(self, selection: JobFilter, now: datetime) -> int:
        with self._read() as conn:
            where, post, _ = self._where(selection, now, conn)
            if not post:
                t = self._jobs()
                return int(conn.execute(sa.select(sa.func.count()).select_from(t).where(*where)).scalar_one())
        return sum(len(ids) for ids in self.iter_ids(selection, now))

    def _guarded(self, ids: Sequence[JobId], guard: Any, make: Callable[[Any], Any]) -> list[JobId]:
        """Act on the ids still matching `guard`, re-checked as each batch is written.

        `make(where)` builds the UPDATE or DELETE. With RETURNING (SQLite ≥ 3.35, PostgreSQL)
        one statement checks, acts and names the rows it changed; elsewhere the rows are locked
        and re-read first, then acted on."""
        t = self._jobs()
        changed: list[JobId] = []
        int_ids = [self.parse_id(str(i)) for i in ids]
        returning = self._returning()
        size = GUARDED_BATCH if returning else BATCH
        for start in range(0, len(int_ids), size):
            chunk = int_ids[start : start + size]
            with self._write() as conn:
                if returning:
                    where = sa.and_(dialect.in_values(self.engine, t.c.id, chunk), guard)
                    live = [r[0] for r in conn.execute(make(where).returning(t.c.id))]
                else:
                    query = sa.select(t.c.id).where(t.c.id.in_(chunk), guard)
                    if dialect.row_locks(self.engine):
                        query = query.with_for_update()
                    live = [r[0] for r in conn.execute(query)]
                    if live:
                        conn.execute(make(t.c.id.in_(live)))
            changed.extend(live)
        return changed

    def _returning(self) -> bool:
        if self.kind == "postgresql":
            return True
        if self.kind == "sqlite":
            import sqlite3

            return sqlite3.sqlite_version_info >= (3, 35)
        return False

    def retry(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        t = self._jobs()
        values: dict[str, Any] = {"failed_at": None, "locked_at": None, "locked_by": None, "run_at": now, "attempts": 0}
        if "updated_at" in t.c:
            values["updated_at"] = now
        return self._guarded(ids, t.c.failed_at.is_not(None), lambda where: sa.update(t).where(where).values(**values))

    def delete(self, ids: Sequence[JobId], now: datetime, states: frozenset | None = None) -> list[JobId]:
        t = self._jobs()
        guard: Any = sa.true()
        live_states = set(states or ()) & LIVE_STATES
        if live_states:
            with self._read() as conn:
                dead = self._all_dead_owners(conn, now) if JobState.LOCKED in live_states else set()
            guard = sa.or_(*(self._state_clause(s, now, False, dead) for s in live_states))
        return self._guarded(ids, guard, lambda where: sa.delete(t).where(where))

    def unlock(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        t = self._jobs()
        return self._guarded(
            ids, self._locked(), lambda where: sa.update(t).where(where).values(locked_at=None, locked_by=None)
        )

    def stats(self, now: datetime, max_run_time: float | None = None) -> Stats:
        self.flush()  # this process's own buffered outcomes count too
        cutoff = now - timedelta(seconds=max_run_time or self.options.max_run_time)
        queues: dict[str, dict[str, int]] = {}
        oldest: datetime | None = None
        with self._read() as conn:
            dead = self._all_dead_owners(conn, now)
            for queue, total, failed, locked, stale, scheduled, min_run_at in self._state_counts(
                conn, now, cutoff, dead
            ):
                counts = queues.setdefault(_text(queue) or "", _empty_counts())
                for state, n in (
                    ("failed", failed),
                    ("locked", locked),
                    ("stale", stale),
                    ("scheduled", scheduled),
                    ("pending", total - failed - locked - scheduled),
                ):
                    counts[state] += n
                min_run_at = _as_utc(min_run_at)
                if isinstance(min_run_at, datetime) and min_run_at <= now and (oldest is None or min_run_at < oldest):
                    oldest = min_run_at
            counters: dict[str, int] = {}
            throughput: list[tuple[datetime, int, int]] = []
            # where qadmin's tables are not (yet) there, nothing was finished or counted by qadmin
            if self._has_aux("finished"):
                f = self._aux["finished"]
                for queue, n in conn.execute(
                    sa.select(f.c.queue, sa.func.count()).where(f.c.job_table == self.table_name).group_by(f.c.queue)
                ):
                    queues.setdefault(queue or "", _empty_counts())["finished"] = n
            if self._has_aux("counters") and self._has_aux("throughput"):
                c = self._aux["counters"]
                counters = dict(
                    conn.execute(sa.select(c.c.name, c.c.value).where(c.c.job_table == self.table_name)).all()
                )
                tp = self._aux["throughput"]
                since = (now - timedelta(hours=1)).replace(second=0, microsecond=0)
                throughput = [
                    (r.minute, r.processed, r.failed)
                    for r in conn.execute(
                        sa.select(tp)
                        .where(tp.c.job_table == self.table_name, tp.c.minute >= since)
                        .order_by(tp.c.minute)
                    )
                ]
            paused = self._paused(conn)
            workers = sum(1 for w in self._workers(conn, now) if not w.stale)
        for name in paused:
            queues.setdefault(name, _empty_counts())
        return Stats(
            queues=dict(sorted(queues.items())),
            processed=int(counters.get("processed", 0)),
            failed=int(counters.get("failed", 0)),
            oldest_pending_at=oldest,
            paused=paused,
            workers=workers,
            throughput=throughput,
        )

    def _state_counts(self, conn: sa.Connection, now: datetime, cutoff: datetime, dead: set[str]) -> list[Any]:
        """(queue, jobs, failed, locked, stale, scheduled, earliest run_at of the unlocked) per
        queue. Each figure is an index range of one queue (the state index leads with queue,
        then failed_at, locked_at, run_at): the live unlocked jobs, nearly all of them, are
        counted only as the queue's total less the others, and no row is read. The queue names
        come from the index one seek per name (a loose index scan). Where an index cannot count
        alone (`dialect.index_only_counts`), or a table has no state index (delayed_job's or
        DJJob's own), one pass counts them all."""
        t = self._jobs()
        live = t.c.failed_at.is_(None)
        stale = t.c.locked_at < cutoff
        if dead:
            stale = sa.or_(stale, t.c.locked_by.in_(sorted(dead)))
        if not (dialect.index_only_counts(self.engine) and self._has_state_index()):
            return self._state_counts_scan(conn, now, stale)

        def figures(queue: Any) -> list[Any]:
            def n(*where: Any) -> Any:
                return sa.select(sa.func.count()).select_from(t).where(queue, *where).scalar_subquery()

            unlocked = (live, t.c.locked_at.is_(None))
            # the earliest run_at: the first entry of the index range, in index order (which
            # PostgreSQL's min() does not see through `IS NULL` conditions)
            earliest = (
                sa.select(t.c.run_at)
                .where(queue, *unlocked, t.c.run_at.is_not(None))
                .order_by(t.c.queue, t.c.failed_at, t.c.locked_at, t.c.run_at)
                .limit(1)
            )
            return [
                n(),
                n(t.c.failed_at.is_not(None)),
                n(live, t.c.locked_at.is_not(None)),
                n(live, t.c.locked_at.is_not(None), stale),
                n(*unlocked, t.c.run_at > now),
                earliest.scalar_subquery(),
            ]

        names = sa.select(sa.func.min(t.c.queue).label("name")).cte("qadmin_queue_names", recursive=True)
        following = sa.select(sa.func.min(t.c.queue)).where(t.c.queue > names.c.name).scalar_subquery()
        names = names.union_all(sa.select(following).where(names.c.name.is_not(None)))
        rows = list(
            conn.execute(sa.select(names.c.name, *figures(t.c.queue == names.c.name)).where(names.c.name.is_not(None)))
        )
        unnamed = conn.execute(sa.select(sa.null(), *figures(t.c.queue.is_(None)))).one()
        return rows + ([unnamed] if unnamed[1] else [])

    def _has_state_index(self) -> bool:
        if self._state_index is None:
            with self._peek() as conn:
                names = {i["name"] for i in sa.inspect(conn).get_indexes(self.table_name)}
            self._state_index = state_index_name(self.table_name) in names
        return self._state_index

    def _state_counts_scan(self, conn: sa.Connection, now: datetime, stale: Any) -> list[Any]:
        """`_state_counts` in one pass over the table (or an index holding every column it
        reads), grouped by queue alone: a handful of groups whatever the states."""
        t = self._jobs()
        live, unlocked = t.c.failed_at.is_(None), sa.and_(t.c.failed_at.is_(None), t.c.locked_at.is_(None))

        def n(*where: Any) -> Any:
            return sa.func.count(sa.case((sa.and_(*where), 1)))

        return list(
            conn.execute(
                sa.select(
                    t.c.queue,
                    sa.func.count(),
                    n(t.c.failed_at.is_not(None)),
                    n(live, t.c.locked_at.is_not(None)),
                    n(live, t.c.locked_at.is_not(None), stale),
                    n(unlocked, t.c.run_at > now),
                    sa.func.min(sa.case((unlocked, t.c.run_at))),
                ).group_by(t.c.queue)
            )
        )

    def error_groups(self, selection: JobFilter, now: datetime, limit: int = 100) -> list[ErrorGroup]:
        selection = selection.with_states(JobState.FAILED) if not selection.states else selection
        t = self._jobs()
        first = dialect.first_line(self.engine, self._error_col)
        with self._read() as conn:
            where, post, _dead = self._where(selection, now, conn)
            if post or first is None:
                return self._error_groups_decoded(selection, now, limit)
            # grouped by the database: no payload is read, except a sample per group for its classes
            rows = conn.execute(
                sa.select(
                    first.label("k"),
                    t.c.queue,
                    sa.func.count(),
                    sa.func.min(t.c.id),
                    sa.func.max(t.c.id),
                    sa.func.max(t.c.failed_at),
                )
                .where(*where)
                .group_by(first, t.c.queue)
            ).all()
            groups: dict[str, dict[str, Any]] = {}
            for key, queue, n, low, high, last in rows:
                g = groups.setdefault(
                    _text(key) or "(no error recorded)",
                    {"count": 0, "queues": set(), "samples": [], "last": None, "sample": low},
                )
                g["count"] += n
                g["queues"].add(_text(queue) or "")
                g["samples"] += [low, high]
                g["sample"] = min(g["sample"], low)
                last = _as_utc(last)
                if isinstance(last, datetime) and (g["last"] is None or last > g["last"]):
                    g["last"] = last
            ordered = sorted(groups.items(), key=lambda kv: (-kv[1]["count"], kv[0]))[:limit]
            sample_ids = sorted({i for _k, g in ordered for i in g["samples"][:20]})
            classes: dict[int, str] = {}
            for start in range(0, len(sample_ids), BATCH):
                for row in conn.execute(
                    sa.select(t.c.id, t.c.handler).where(t.c.id.in_(sample_ids[start : start + BATCH]))
                ):
                    classes[row.id] = _class_of(row.handler)
        return [
            ErrorGroup(
                error=k,
                count=g["count"],
                queues=sorted(g["queues"]),
                classes=sorted({classes[i] for i in g["samples"][:20] if i in classes}),
                last_failed_at=g["last"],
                sample_id=g["sample"],
            )
            for k, g in ordered
        ]

    def _error_groups_decoded(self, selection: JobFilter, now: datetime, limit: int) -> list[ErrorGroup]:
        """Error groups of a selection only Python can check (class, args, search): row by row."""
        groups: dict[str, dict[str, Any]] = {}
        for ids in self.iter_ids(selection, now):
            t = self._jobs()
            with self._read() as conn:
                rows = conn.execute(
                    sa.select(t.c.id, t.c.queue, t.c.handler, t.c.failed_at, self._error_col.label("err")).where(
                        t.c.id.in_(ids)
                    )
                ).all()
            for row in rows:
                key = (_text(row.err) or "(no error recorded)").split("\n", 1)[0] or "(no error recorded)"
                g = groups.setdefault(
                    key, {"count": 0, "queues": set(), "classes": set(), "last": None, "sample": row.id}
                )
                g["count"] += 1
                g["queues"].add(_text(row.queue) or "")
                if len(g["classes"]) < 10:
                    g["classes"].add(_class_of(row.handler))
                if isinstance(row.failed_at, datetime) and (g["last"] is None or row.failed_at > g["last"]):
                    g["last"] = row.failed_at
        ordered = sorted(groups.items(), key=lambda kv: (-kv[1]["count"], kv[0]))[:limit]
        return [
            ErrorGroup(
                error=k,
                count=g["count"],
                queues=sorted(g["queues"]),
                classes=sorted(g["classes"]),
                last_failed_at=g["last"],
                sample_id=g["sample"],
            )
            for k, g in ordered
        ]

    def queues(self, now: datetime) -> list[QueueInfo]:
        stats = self.stats(now)
        return [QueueInfo(name=q, counts=c, paused=q in stats.paused) for q, c in stats.queues.items()]

    # --- bookkeeping: pauses, workers, audit -------------------------------------------------
    def _paused(self, conn: sa.Connection) -> list[str]:
        if not self._has_aux("pauses"):
            return []
        p = self._aux["pauses"]
        return [
            r[0] for r in conn.execute(sa.select(p.c.queue).where(p.c.job_table == self.table_name).order_by(p.c.queue))
        ]

    def paused(self) -> list[str]:
        with self._read() as conn:
            return self._paused(conn)

    def is_paused(self, queue: str) -> bool:
        return queue in self.paused()

    def pause(self, queue: str, now: datetime) -> bool:
        self._ensure_aux()
        p = self._aux["pauses"]
        with self._write() as conn:
            # two operators pausing at once: one pauses, the other is told it already was
            return dialect.insert_absent(conn, p, {"job_table": self.table_name, "queue": queue, "paused_at": now})

    def resume(self, queue: str) -> bool:
        self._ensure_aux()
        p = self._aux["pauses"]
        with self._write() as conn:
            return conn.execute(sa.delete(p).where(p.c.job_table == self.table_name, p.c.queue == queue)).rowcount > 0

    def _workers(self, conn: sa.Connection, now: datetime) -> list[WorkerInfo]:
        w = self._aux["workers"]
        out: list[WorkerInfo] = []
        beats: dict[str, datetime | None] = {}
        rows = (
            conn.execute(sa.select(w).where(w.c.job_table == self.table_name).order_by(w.c.name)).all()
            if self._has_aux("workers")
            else []
        )
        for r in rows:
            beats[r.name] = r.heartbeat_at
        for r in rows:
            out.append(
                WorkerInfo(
                    name=r.name,
                    host=r.host,
                    pid=r.pid,
                    queues=json.loads(r.queues or "[]"),
                    started_at=r.started_at,
                    heartbeat_at=r.heartbeat_at,
                    current_job=int(r.current_job) if r.current_job and r.current_job.isdigit() else r.current_job,
                    job_started_at=r.job_started_at,
                    processed=r.processed,
                    failed=r.failed,
                    stale=owner_dead(r.name, beats, now, self.options.worker_timeout),
                )
            )
        # lock holders that are not qadmin workers (delayed_job, DJJob) show as workers too
        t = self._jobs()
        known = {r.name for r in rows}
        foreign = conn.execute(
            sa.select(t.c.locked_by, sa.func.min(t.c.id), sa.func.min(t.c.locked_at))
            .where(self._locked(), t.c.locked_by.is_not(None))
            .group_by(t.c.locked_by)
            .limit(1000)
        ).all()
        cutoff = now - timedelta(seconds=self.options.max_run_time)
        for owner, job_id, locked_at in foreign:
            owner = _text(owner)
            if owner in known:
                continue
            host, pid = parse_owner(owner)
            locked_at = _as_utc(locked_at)
            if not isinstance(locked_at, datetime):
                locked_at = None
            out.append(
                WorkerInfo(
                    name=owner,
                    host=host or "",
                    pid=pid or 0,
                    queues=[],
                    started_at=None,
                    heartbeat_at=None,
                    current_job=job_id,
                    job_started_at=locked_at,
                    stale=owner_dead(owner, {}, now, self.options.worker_timeout)
                    or (locked_at is not None and locked_at < cutoff),
                )
            )
        return out

    def workers(self, now: datetime) -> list[WorkerInfo]:
        with self._read() as conn:
            return self._workers(conn, now)

    def register_worker(self, info: WorkerInfo) -> None:
        self._ensure_aux()
        w = self._aux["workers"]
        with self._write() as conn:
            conn.execute(sa.delete(w).where(w.c.name == info.name))
            conn.execute(
                sa.insert(w).values(
                    name=info.name,
                    job_table=self.table_name,
                    host=info.host,
                    pid=info.pid,
                    queues=json.dumps(info.queues),
                    started_at=info.started_at,
                    heartbeat_at=info.heartbeat_at,
                    processed=0,
                    failed=0,
                )
            )

    def heartbeat(
        self,
        name: str,
        now: datetime,
        current_job: JobId | None,
        job_started_at: datetime | None,
        processed: int,
        failed: int,
    ) -> None:
        w = self._aux["workers"]
        with self._write() as conn:
            conn.execute(
                sa.update(w)
                .where(w.c.name == name)
                .values(
                    heartbeat_at=now,
                    current_job=None if current_job is None else str(current_job),
                    job_started_at=job_started_at,
                    processed=processed,
                    failed=failed,
                )
            )

    def unregister_worker(self, name: str) -> None:
        t = self._jobs()
        w = self._aux["workers"]
        with self._write() as conn:
            conn.execute(sa.delete(w).where(w.c.name == name))
            # delayed_job's ClearLocks: a stopping worker gives back whatever it still holds
            conn.execute(
                sa.update(t).where(t.c.locked_by == name, self._locked()).values(locked_at=None, locked_by=None)
            )
            taken = {m: list(v) for m, v in self._buffer.items()}
            self._write_counts(conn, taken)
        self._forget_counts(taken)

    def record_audit(self, entry: AuditEntry, job_ids: Sequence[JobId]) -> None:
        self._ensure_aux()
        a, aj = self._aux["audit"], self._aux["audit_jobs"]
        with self._write() as conn:
            audit_id = conn.execute(
                sa.insert(a).values(
                    job_table=self.table_name,
                    at=entry.at,
                    actor=entry.actor,
                    face=entry.face,
                    verb=entry.verb,
                    selection=json.dumps(entry.selection, ensure_ascii=False, default=str),
                    matched=entry.matched,
                    changed=entry.changed,
                    skipped=entry.skipped,
                    dry_run=entry.dry_run,
                )
            ).inserted_primary_key[0]
            dialect.insert_column(
                conn, aj, {"audit_id": audit_id, "job_table": self.table_name}, "job_id", [str(i) for i in job_ids]
            )

    def audit(self, limit: int = 100, job_id: JobId | None = None) -> list[AuditEntry]:
        if not self._aux_ready:
            self._look_for_aux()
        if not (self._has_aux("audit") and self._has_aux("audit_jobs")):
            return []
        a, aj = self._aux["audit"], self._aux["audit_jobs"]
        query = sa.select(a).where(a.c.job_table == self.table_name)
        if job_id is not None:
            query = query.where(
                a.c.id.in_(
                    sa.select(aj.c.audit_id).where(aj.c.job_table == self.table_name, aj.c.job_id == str(job_id))
                )
            )
        with self._read() as conn:
            rows = conn.execute(query.order_by(a.c.id.desc()).limit(limit)).all()
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                actor=r.actor,
                face=r.face,
                verb=r.verb,
                selection=json.loads(r.selection),
                matched=r.matched,
                changed=r.changed,
                skipped=r.skipped,
                dry_run=bool(r.dry_run),
            )
            for r in rows
        ]


# --- helpers ----------------------------------------------------------------------------------
def _empty_counts() -> dict[str, int]:
    return {"pending": 0, "scheduled": 0, "locked": 0, "stale": 0, "failed": 0, "finished": 0}


def _class_of(handler: Any) -> str:
    return decode_payload(handler).class_name


def _login_failure(text: str) -> str | None:
    """The server's reason when it refused the login (PostgreSQL: a wrong password, an unknown
    role, no pg_hba.conf entry; MySQL: access denied), else None."""
    for pattern in (
        r'password authentication failed for user "[^"]*"',
        r'role "[^"]*" does not exist',
        r"no password supplied",
        r"no pg_hba\.conf entry[^\n]*",
        r"Access denied for user [^\n]*",
        r'Peer authentication failed for user "[^"]*"',
    ):
        found = re.search(pattern, text)
        if found:
            return found.group(0)
    return None


def _text(value: Any) -> str | None:
    """A stored value as text a face can print: bytes decoded (bad UTF-8 as U+FFFD), other
    types as their text."""
    if value is None:
        return None
    if isinstance(value, str):
        return _printable(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(getattr(value, "raw", value))


def _shown(value: Any) -> str:
    """A stored value in a message: its text, and its type where that is the trouble."""
    raw = getattr(value, "raw", value)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return f"BLOB {bytes(raw)[:40]!r}"
    if isinstance(raw, str):
        return repr(_printable(raw)[:60])
    return f"{raw!r} ({type(raw).__name__})"


def _printable(text: str) -> str:
    """Raw text for display: bytes that were not UTF-8 (surrogate escapes, see
    `_sql_dialect.lenient_text`) shown as U+FFFD, so a face can always print it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tokens(text: str) -> list[str]:
    """ASCII word pieces of a value: a coarse SQL pre-filter that every payload format satisfies."""
    return [tok for tok in re.findall(r"[A-Za-z0-9]{2,}", text)][:8]


def _payload_tokens(selection: JobFilter) -> list[tuple[str, bool]]:
    """Words every payload of the selection's class and arguments contains, most telling first,
    each with whether to look for it in any case: the scan stops testing a row at its first
    missing word, and arguments and the last part of a class name (`app.jobs.Newsletter`:
    Newsletter, jobs, app) tell jobs apart best. The class filter folds ASCII case
    (`class_matches`): its words are looked for in any case."""
    tokens: list[tuple[str, bool]] = []
    for arg in selection.args or ():
        if isinstance(arg, (str, int)) and not isinstance(arg, bool):
            tokens += [(token, False) for token in _tokens(str(arg))]
    # the undecodable jobs' name is in no payload
    if selection.class_name is not None and not class_matches(selection.class_name, UNDECODABLE):
        tokens += [(token, True) for token in _tokens(selection.class_name)[::-1]]
    return tokens[:8]


def _encode_cursor(job: Job, cols: list[sa.Column]) -> str:
    values: list[Any] = []
    for c in cols:
        v = getattr(job, c.name)
        values.append(v.isoformat() if isinstance(v, datetime) else v)
    return json.dumps(values)


def _decode_cursor(cursor: str, cols: list[sa.Column]) -> tuple[Any, ...]:
    try:
        values = json.loads(cursor)
        if not isinstance(values, list) or len(values) != len(cols):
            raise ValueError("wrong length")
        out = []
        for c, v in zip(cols, values):
            if c.name.endswith("_at"):
                v = None if v is None else datetime.fromisoformat(v)
            elif isinstance(v, bool) or not isinstance(v, int) or not -(2**63) <= v < 2**63:
                # ids and priorities are integers a column holds: a string, a float or null would
                # compare as no row does, and a huge number overflows the driver
                raise ValueError(f"{c.name} is not an integer")
            out.append(v)
        return tuple(out)
    except (ValueError, TypeError):
        raise UsageError(f"invalid page cursor {cursor!r}") from None
