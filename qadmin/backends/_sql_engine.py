"""The SQL backend's engine verbs: enqueue, claim, complete, fail, release, and the buffered
throughput counters — the hot path of clients and workers, kept apart from the admin verbs of
`sql.py`. `SqlEngine` is a mixin of `SqlBackend`: it uses the backend's connections, tables
and row decoding."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

import sqlalchemy as sa

from qadmin.backends import _sql_dialect as dialect
from qadmin.backends._sql_claim import EARLIER, ClaimStatements, DriverSql, _wrapped, queue_steps
from qadmin.backends._sql_tables import UtcDateTime
from qadmin.codecs import json_codec
from qadmin.errors import QadminError
from qadmin.job import Job, JobId, JobState, NewJob

#: ids per statement in bulk verbs: well under every database's bound-parameter limit
BATCH = 500
#: candidate rows a claim reads ahead (delayed_job's read_ahead is 5)
READ_AHEAD = 5
#: rows a claim reads at most, in batches of READ_AHEAD, looking for one the worker can run
CLAIM_SCAN = 500
#: how often buffered throughput counters are written
FLUSH_INTERVAL = 1.0


class SqlEngine:
    #: SQLite: runnable jobs a claim decodes beyond those it wants, as many as the last claim
    #: found taken. Two workers take turns at the write lock, each reading its candidates while
    #: the other is locking the first of them: with a spare decoded beforehand, losing that row
    #: costs one UPDATE under the lock, not the next row's decoding there
    _claim_spare = 0

    def _layout(self) -> _InsertLayout:
        t = self._jobs()
        layout = self.__dict__.get("_insert_layout")
        if layout is None or layout.t is not t:
            layout = self._insert_layout = _InsertLayout(t, self.engine.dialect)
        return layout

    def _row_values(self, new: NewJob, now: datetime) -> dict[str, Any]:
        return self._layout().values(new, now)

    def enqueue(self, new: NewJob, now: datetime | None = None) -> Job:
        from qadmin.job import utcnow

        now = now or utcnow()
        t = self._jobs()
        values = self._row_values(new, now)
        if new.unique is None:
            if self.kind == "sqlite":
                layout = self._layout()
                row = layout.driver_row(values)
                with self._hot() as (conn, raw), _begun(conn, on_driver=True):
                    job_id = DriverSql.run(raw, (layout.sql, row)).lastrowid
            elif self.kind == "postgresql":
                # straight on the driver, a statement psycopg prepares once: in autocommit, one
                # round trip, and little of the client's time
                layout = self._layout()
                row = layout.driver_row(values)
                with self._hot() as (conn, raw):
                    try:
                        job_id = _pg_insert(conn, raw, layout, row)
                    except Exception as exc:
                        raise _wrapped(layout.pg_sql, row, exc) from exc
            else:
                with self._autocommit() as conn:
                    job_id = conn.execute(self._insert_stmt(), values).inserted_primary_key[0]
            return self._inserted_job(job_id, values, now)
        self._ensure_aux()
        u = self._aux["unique"]
        for _ in range(10):
            try:
                with self._write() as conn:
                    existing = conn.execute(
                        sa.select(u.c.job_id)
                        .where(u.c.job_table == self.table_name, u.c.key == new.unique)
                        .with_for_update()
                        if dialect.row_locks(self.engine)
                        else sa.select(u.c.job_id).where(u.c.job_table == self.table_name, u.c.key == new.unique)
                    ).scalar_one_or_none()
                    if existing is not None:
                        alive = conn.execute(
                            sa.select(t.c.id).where(t.c.id == existing, t.c.failed_at.is_(None))
                        ).first()
                        if alive is not None:
                            job_id = existing
                            break
                        conn.execute(sa.delete(u).where(u.c.job_table == self.table_name, u.c.key == new.unique))
                    job_id = conn.execute(sa.insert(t).values(**values)).inserted_primary_key[0]
                    conn.execute(sa.insert(u).values(job_table=self.table_name, key=new.unique, job_id=job_id))
                break
            except QadminError as exc:
                if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                    raise
                time.sleep(0.01)  # another process took the key first: read its job next time
        else:
            raise QadminError(f"could not enqueue unique job {new.unique!r}: too much contention")
        return self.get(job_id, now)

    def _insert_stmt(self) -> Any:
        t = self._jobs()
        if self._insert is None or self._insert.table is not t:
            self._insert = sa.insert(t)
        return self._insert

    def _inserted_job(self, job_id: JobId, values: dict[str, Any], now: datetime) -> Job:
        """The Job a fresh insert made, from the values written (no second read): what the
        column types store is what they give back on SQLite and PostgreSQL; MySQL rounds
        DATETIME to seconds, so there the row is read back."""
        if self.kind not in ("sqlite", "postgresql"):
            return self.get(job_id, now)
        stored = dict.fromkeys(self._layout().all_columns)
        for name, value in values.items():
            if isinstance(value, datetime) and value.tzinfo is not UTC:
                value = _as_utc(value)
            stored[name] = value
        stored["id"] = job_id
        return self._to_job(_Row(stored), now, set())

    def enqueue_many(self, news: Sequence[NewJob], now: datetime | None = None) -> list[JobId]:
        """Plain jobs in few statements, straight on the driver: SQLite INSERTs of many rows
        each in one write transaction (its ids are consecutive there), PostgreSQL one INSERT
        from arrays (`unnest`), its ids from RETURNING. Unique jobs one by one, as `enqueue`
        does them. Ids come back in the order of `news`."""
        from qadmin.job import utcnow

        now = now or utcnow()
        plain = [n for n in news if n.unique is None]
        ids: list[JobId] = []
        if plain:
            layout = self._layout()
            insert = {"sqlite": self._insert_many_sqlite, "postgresql": self._insert_many_pg}.get(
                self.kind, self._insert_many_core
            )
            for start in range(0, len(plain), 5000):
                ids.extend(insert(layout, plain[start : start + 5000], now))
        if len(plain) == len(news):
            return ids
        in_order: list[JobId] = []
        plain_ids = iter(ids)
        for new in news:
            in_order.append(next(plain_ids) if new.unique is None else self.enqueue(new, now).id)
        return in_order

    def _insert_many_sqlite(self, layout: _InsertLayout, news: Sequence[NewJob], now: datetime) -> list[JobId]:
        rows = layout.driver_rows(news, now)
        per, multi_sql = layout.multi_rows, layout.multi_sql
        whole = len(rows) - len(rows) % per
        with self._hot() as (conn, raw), _begun(conn, on_driver=True):
            try:
                # many rows per statement: a statement's own work (and the sqlite_sequence
                # update of an AUTOINCREMENT table) is done once for all its rows, which halves
                # SQLite's CPU time per row against `executemany`
                for start in range(0, whole, per):
                    raw.execute(multi_sql, list(chain.from_iterable(rows[start : start + per])))
                if whole < len(rows):  # the rest one by one: one statement text whatever the count
                    raw.executemany(layout.sql, rows[whole:])
                last = raw.execute("SELECT last_insert_rowid()").fetchone()[0]
                first = last - len(rows) + 1
                # one writer, one transaction: each row took the next rowid (SQLite picks
                # another only once rowids run out, which this check would catch)
                if raw.execute(layout.count_sql, (first, last)).fetchone()[0] != len(rows):
                    raise QadminError("enqueue_many: the inserted rows' ids are not consecutive")
            except sa.exc.SQLAlchemyError:
                raise
            except QadminError:
                raise
            except Exception as exc:
                raise _wrapped(layout.sql, [], exc) from exc
        return list(range(first, last + 1))

    def _insert_many_pg(self, layout: _InsertLayout, news: Sequence[NewJob], now: datetime) -> list[JobId]:
        sql, params = layout.pg_arrays(news, now)
        with self._hot() as (_conn, raw):  # autocommit: one round trip
            try:
                ids = [r[0] for r in raw.execute(sql, params).fetchall()]
            except Exception as exc:
                raise _wrapped(sql, params, exc) from exc
        # the ids were drawn from the sequence in the order of the arrays (ORDER BY ordinality):
        # ascending is the order of `news`
        ids.sort()
        return ids

    def _insert_many_core(self, layout: _InsertLayout, news: Sequence[NewJob], now: datetime) -> list[JobId]:
        t = self._jobs()
        rows = [layout.values(n, now) for n in news]
        with self._write() as conn:
            if self.engine.dialect.insert_executemany_returning:
                result = conn.execute(sa.insert(t).returning(t.c.id, sort_by_parameter_order=True), rows)
                return [r[0] for r in result]
            conn.execute(sa.insert(t), rows)
        return []

    def _statements(self) -> ClaimStatements:
        if self._stmts is None or self._stmts.t is not self._jobs():
            self._ensure_aux()
            self._stmts = ClaimStatements(self.engine, self._jobs(), self._aux, self.table_name)
        return self._stmts

    @contextmanager
    def _autocommit(self) -> Iterator[sa.Connection]:
        """One statement that is a transaction by itself: on PostgreSQL without BEGIN and COMMIT,
        which would each cost a round trip; elsewhere an ordinary write transaction."""
        if self.kind != "postgresql":
            with self._write() as conn:
                yield conn
            return
        with self._hot() as (conn, _raw):
            yield conn

    @contextmanager
    def _hot(self) -> Iterator[tuple[sa.Connection, Any]]:
        """The calling thread's connection and its DBAPI connection, kept checked out
        from one call of a worker's to the next (`flush`, which an idle or stopping worker
        calls, gives it back): a pool checkout and return cost more than a statement. Between
        calls it holds no transaction, so it keeps no snapshot and blocks no checkpoint."""
        owner = (os.getpid(), threading.get_ident())
        with self._wrap():
            hot = self.__dict__.get("_hot_conn")
            if hot is not None and hot[0] == owner and not hot[1].closed and not hot[1].invalidated:
                conn, keep = hot[1], True
            else:
                # PostgreSQL: in autocommit, each statement its own transaction, without the
                # round trips of BEGIN and COMMIT
                engine = self._auto_engine if self.kind == "postgresql" else self.engine
                if hot is None or hot[0] == owner:  # none yet, or this thread's was closed
                    conn, keep = engine.connect(), True
                    self._hot_conn = (owner, conn)
                else:
                    # another thread holds it, or the process that forked this one (whose
                    # connection is never touched here): a connection for this call alone
                    conn, keep = engine.connect(), False
            try:
                yield conn, conn.connection.dbapi_connection
            except BaseException:
                if keep:  # whatever state an error left it in, the next call starts afresh
                    self._hot_conn = None
                    conn.close()
                raise
            finally:
                if not keep:
                    conn.close()

    def _release_hot(self) -> None:
        hot = self.__dict__.get("_hot_conn")
        if hot is not None and hot[0] == (os.getpid(), threading.get_ident()):
            self._hot_conn = None
            hot[1].close()

    def claim(
        self,
        queues: Sequence[str],
        worker: str,
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        skip_ids: Sequence[JobId] = (),
    ) -> Job | None:
        jobs = self.claim_many(queues, worker, now, max_run_time, can_run, 1, skip_ids=skip_ids)
        return jobs[0] if jobs else None

    def claim_many(
        self,
        queues: Sequence[str],
        worker: str,
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        """Lock up to `limit` runnable jobs for `worker` in one transaction, in claim order.

        The jobs are locked as `claim` locks one: until the worker completes, fails or releases
        each, no one else runs it, and if the worker dies they are stale locks, recovered as any.
        Queues are served in the order given (`queue_steps`): a queue's jobs before the next's."""
        steps = queue_steps(queues)
        if self.kind == "postgresql" and len(steps) > 1:  # every step in one statement
            st = self._statements()
            params = {**self._claim_params(["*"], worker, now, max_run_time), **_step_params(steps)}
            return self._claim_returning(st, params, _steps_key(steps), list(skip_ids)[-BATCH:], can_run, limit)
        out: list[Job] = []
        for i, step in enumerate(steps):
            taken = list(skip_ids) + [j.id for j in out]  # a `*` step would find them again
            out += self._claim_step(
                step, i < len(steps) - 1, worker, now, max_run_time, can_run, limit - len(out), taken
            )
            if len(out) >= limit:
                break
        return out

    def _claim_step(
        self,
        queues: list[str],
        earlier: bool,
        worker: str,
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int,
        skip_ids: Sequence[JobId],
    ) -> list[Job]:
        st = self._statements()
        params = self._claim_params(queues, worker, now, max_run_time)
        by_queue: Any = ("queues" in params) and (EARLIER if earlier else True)
        skip = list(skip_ids)[-BATCH:]
        if self.kind == "postgresql":
            return self._claim_returning(st, params, by_queue, skip, can_run, limit)
        if skip:
            params["skip"] = skip
        if self.kind == "sqlite":
            return self._claim_optimistic(st, params, by_queue, bool(skip), can_run, limit)
        out: list[Job] = []
        batch = max(READ_AHEAD, limit)
        with self._write() as conn:
            # read ahead in small batches, past rows this worker cannot run (other applications'
            # classes), so that a runnable job behind them is still reached in this claim
            pick = st.candidates(by_queue, bool(skip), batch)
            for _ in range(CLAIM_SCAN // READ_AHEAD):
                rows = conn.execute(pick, params).all()
                for row in rows:
                    job = self._to_job(row, now, set())
                    if not job.decodable or not can_run(job):
                        continue
                    if conn.execute(st.lock(), {**params, "job_id": row.id}).rowcount == 1:
                        out.append(_locked(job, worker, now))
                        if len(out) == limit:
                            return out
                if out or len(rows) < batch:
                    break
                after = _keyset(st.cols, tuple(getattr(rows[-1], c.name) for c in st.cols), False)
                pick = st.candidates_after(by_queue, bool(skip), batch, after)
        return out

    def _claim_params(self, queues: Sequence[str], worker: str, now: datetime, max_run_time: float) -> dict[str, Any]:
        params: dict[str, Any] = {
            "now": now,
            "expired": now - timedelta(seconds=max_run_time),
            "worker": worker,
            "job_table": self.table_name,
        }
        if queues and "*" not in queues:
            params["queues"] = list(queues)
        return params

    def _claim_optimistic(
        self,
        st: ClaimStatements,
        params: dict[str, Any],
        by_queue: bool,
        skip: bool,
        can_run: Callable[[Job], bool],
        limit: int,
    ) -> list[Job]:
        """SQLite: read the candidates from a snapshot, without the write lock, and decide which
        the worker can run; then take the write lock only to lock them, each by an UPDATE
        guarded by the ready predicate (a row another worker took meanwhile is passed over).
        SQLite has one writer at a time: the less a claim does while holding the lock, the
        more worker processes add up."""
        now = params["now"]
        batch = max(READ_AHEAD, 2 * limit)
        pick: Any = None
        with self._hot() as (conn, raw):
            for _ in range(CLAIM_SCAN // READ_AHEAD):
                if pick is None:  # the first page, the one nearly every claim stops at
                    rows: list[Any] = self._candidates(st, raw, params, by_queue, skip, batch)
                else:
                    with self._read() as reader:
                        rows = reader.execute(pick, params).all()
                out: list[Job] = []
                pending = iter(rows)
                while len(out) < limit:
                    # decode only as many as are wanted, and spares (`_claim_spare`); more only
                    # if others took these meanwhile
                    runnable = _runnable(self, pending, now, can_run, limit - len(out) + self._claim_spare)
                    if not runnable:
                        break
                    locks = self._bind_locks(st, params, runnable)  # bound before the write lock
                    with _begun(conn, on_driver=True):
                        won, lost = _run_locks(raw, locks, params, limit - len(out))
                    out += won
                    self._claim_spare = min(lost, limit)
                if out or len(rows) < batch:
                    return out
                after = _keyset(st.cols, tuple(getattr(rows[-1], c.name) for c in st.cols), False)
                pick = st.candidates_after(by_queue, skip, batch, after)
        return []

    def _candidates(
        self,
        st: ClaimStatements,
        raw: Any,
        params: dict[str, Any],
        by_queue: bool,
        skip: bool,
        batch: int,
        leave: JobId | None = None,
    ) -> list[_Row]:
        """SQLite: the next `batch` ready rows in claim order (but `leave`), read on the driver in
        autocommit (a snapshot of its own, no write lock). A row's values are converted only
        when it is first looked at: most claims look at one."""
        pick = st.driver(("candidates", by_queue, skip, batch), st.candidates(by_queue, skip, batch))
        at = pick.columns.index("id")
        return [_Row(pick.values, row) for row in pick.fetch(raw, params) if row[at] != leave]

    def _steps_candidates(
        self,
        st: ClaimStatements,
        raw: Any,
        steps: list[list[str]],
        worker: str,
        now: datetime,
        max_run_time: float,
        skip: list[JobId],
        batch: int,
        leave: JobId,
    ) -> list[_Row]:
        """SQLite: `_candidates` over several queue steps, in one read (the completion and the
        locks then take the write lock once for all)."""
        params = {**self._claim_params(["*"], worker, now, max_run_time), **_step_params(steps)}
        if skip:
            params["skip"] = skip
        key = _steps_key(steps)
        pick = st.driver(("candidates_steps", key, bool(skip), batch), st.candidates_steps(key, bool(skip), batch))
        at = pick.columns.index("id")
        return [_Row(pick.values, row) for row in pick.fetch(raw, params) if row[at] != leave]

    @staticmethod
    def _bind_locks(
        st: ClaimStatements, params: dict[str, Any], jobs: list[Job]
    ) -> list[tuple[Job, tuple[str, list[Any]]]]:
        lock = st.driver("lock", st.lock())
        return [(job, lock.args({**params, "job_id": job.id})) for job in jobs]

    def _claim_returning(
        self,
        st: ClaimStatements,
        params: dict[str, Any],
        by_queue: bool,
        skip: list[JobId],
        can_run: Callable[[Job], bool],
        limit: int,
    ) -> list[Job]:
        """PostgreSQL: lock the next rows and read them in one statement (one round trip); rows
        the worker turns out not to run get their previous lock back at once, and are skipped."""
        now = params["now"]
        out: list[Job] = []
        skip = list(skip)
        for _ in range(CLAIM_SCAN // READ_AHEAD):
            want = limit - len(out)
            if skip:
                params["skip"] = skip[-BATCH:]
            with self._autocommit() as conn:
                rows = _in_claim_order(
                    st, conn.execute(st.lock_returning(by_queue, bool(skip)), {**params, "n": want}).all()
                )
                unrunnable = []
                for row in rows:
                    job = self._to_job(row, now, set())
                    if job.decodable and can_run(job):
                        out.append(Job(**{**job.__dict__, "stale": False}))
                    else:
                        unrunnable.append(
                            {**params, "job_id": row.id, "old_at": row.old_locked_at, "old_by": row.old_locked_by}
                        )
                        skip.append(row.id)
                if unrunnable:
                    conn.execute(st.unlock_back(), unrunnable)
            if len(out) >= limit or len(rows) < want:
                break
        return out

    def _finished_values(self, job: Job, worker: str, now: datetime, runtime: float) -> dict[str, Any]:
        return {
            "job_table": self.table_name,
            "job_id": job.id,
            "queue": job.queue,
            "class_name": job.class_name,
            "handler": job.raw,
            "priority": job.priority,
            "attempts": job.attempts,
            "created_at": job.created_at,
            "finished_at": now,
            "runtime": runtime,
            "worker": worker,
        }

    def complete(self, job: Job, worker: str, now: datetime, runtime: float) -> None:
        st = self._statements()
        values = self._finished_values(job, worker, now, runtime)
        unique = job.meta.get("unique")
        if self.kind == "sqlite":
            with self._hot() as (conn, raw), self._outcome(now, processed=1, failed=0, conn=conn) as (_, tally):
                tally[0] = _run_completion(raw, self._bind_completion(st, values, unique))
            return
        with self._outcome(now, processed=1, failed=0, single=unique is None) as (conn, tally):
            if self.kind == "postgresql":
                tally[0] = len(conn.execute(st.complete_one(), values).all())
            else:
                tally[0] = conn.execute(st.delete_locked(), {"job_id": job.id, "owner": worker}).rowcount
                if tally[0]:
                    conn.execute(st.record_finished(), values)
            if unique is not None:
                conn.execute(st.delete_unique(), {"job_table": self.table_name, "key": unique, "job_id": job.id})

    def _bind_completion(self, st: ClaimStatements, values: dict[str, Any], unique: Any) -> list[tuple[str, list[Any]]]:
        """SQLite: the statements that complete a job, bound before the write lock is taken
        (`_run_completion` runs them under it): delete the job if this worker still holds it,
        record it as finished, free its unique key."""
        bound = [
            st.driver("delete", st.delete_locked()).args({"job_id": values["job_id"], "owner": values["worker"]}),
            st.driver("finished", st.record_finished_bound()).args({f"v_{c}": v for c, v in values.items()}),
        ]
        if unique is not None:
            bound.append(
                st.driver("delete_unique", st.delete_unique()).args(
                    {"job_table": self.table_name, "key": unique, "job_id": values["job_id"]}
                )
            )
        return bound

    def complete_and_claim(
        self,
        job: Job,
        worker: str,
        now: datetime,
        runtime: float,
        queues: Sequence[str],
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        """Complete `job` and lock up to `limit` next jobs for `worker`: on SQLite in one write
        transaction (the candidates read and decoded before it, from a snapshot), on PostgreSQL
        in one statement. Harmless to repeat: a job already completed is neither recorded nor
        counted again, and rows a lost first attempt locked are this worker's own, which the
        ready predicate lets it claim again."""
        if self.kind not in ("sqlite", "postgresql") or (self.kind == "postgresql" and job.meta.get("unique")):
            self.complete(job, worker, now, runtime)
            return self.claim_many(queues, worker, now, max_run_time, can_run, limit, skip_ids=skip_ids)
        st = self._statements()
        steps = queue_steps(queues)
        by_queue: Any
        if self.kind == "postgresql" and len(steps) > 1:  # every step in the one statement
            params = {**self._claim_params(["*"], worker, now, max_run_time), **_step_params(steps)}
            by_queue = _steps_key(steps)
        else:
            params = self._claim_params(steps[0], worker, now, max_run_time)
            by_queue = ("queues" in params) and (EARLIER if len(steps) > 1 else True)
        skip = list(skip_ids)[-BATCH:]
        if skip:
            params["skip"] = skip
        values = self._finished_values(job, worker, now, runtime)
        if self.kind == "postgresql":
            return self._complete_and_claim_pg(st, params, values, by_queue, skip, can_run, limit)
        # a row or two more than wanted, for rows another worker locks between this read and
        # the write; and one more, the completed job, still there and locked by this worker
        # (which `ready` accepts). Fewer than wanted found: the worker's next claim reads on
        batch = 2 * limit + 1
        with self._hot() as (conn, raw):
            if len(steps) == 1:
                rows = self._candidates(st, raw, params, by_queue, bool(skip), batch, leave=job.id)
            else:
                rows = self._steps_candidates(st, raw, steps, worker, now, max_run_time, skip, batch, job.id)
            pending = iter(rows)
            # decoded and bound before the write lock: other workers wait while it is held
            runnable = _runnable(self, pending, now, can_run, limit + self._claim_spare)
            completion = self._bind_completion(st, values, job.meta.get("unique"))
            locks = self._bind_locks(st, params, runnable)
            out: list[Job] = []
            lost = 0
            with self._outcome(now, processed=1, failed=0, conn=conn) as (_, tally):
                tally[0] = _run_completion(raw, completion)
                while locks:
                    won, taken = _run_locks(raw, locks, params, limit - len(out))
                    out += won
                    lost += taken
                    if len(out) == limit:
                        break
                    # others took some meanwhile: the next candidates (rarely decoded under the lock)
                    locks = self._bind_locks(st, params, _runnable(self, pending, now, can_run, limit - len(out)))
            self._claim_spare = min(lost, limit)
        # none found among the candidates read: the worker's next claim reads further
        return out

    def _complete_and_claim_pg(
        self,
        st: ClaimStatements,
        params: dict[str, Any],
        values: dict[str, Any],
        by_queue: bool,
        skip: list[JobId],
        can_run: Callable[[Job], bool],
        limit: int,
    ) -> list[Job]:
        now = params["now"]
        out: list[Job] = []
        with self._outcome(now, processed=1, failed=0, single=True) as (conn, tally):
            finished = {f"f_{c}": v for c, v in values.items()}
            rows = conn.execute(
                st.complete_and_lock(by_queue, bool(skip)),
                {**params, **finished, "job_id": values["job_id"], "n": limit},
            ).all()
            tally[0] = rows[0].done
            locked = _in_claim_order(st, [r for r in rows if r.id is not None])
            unrunnable = []
            for row in locked:
                job = self._to_job(row, now, set())
                if job.decodable and can_run(job):
                    object.__setattr__(job, "stale", False)  # its lock is this claim's: see _locked
                    out.append(job)
                else:
                    unrunnable.append(
                        {**params, "job_id": row.id, "old_at": row.old_locked_at, "old_by": row.old_locked_by}
                    )
            if unrunnable:
                conn.execute(st.unlock_back(), unrunnable)
        if unrunnable and len(locked) == limit:  # rows this worker cannot run took places: claim on past them
            skip = skip + [u["job_id"] for u in unrunnable]
            params.pop("skip", None)
            out += self._claim_returning(st, params, by_queue, skip, can_run, limit - len(out))
        return out

    def fail(self, job: Job, worker: str, now: datetime, error: str, retry_at: datetime | None) -> None:
        t = self._jobs()
        if self.kind == "postgresql":
            # PostgreSQL's text holds no NUL: refused, the failure would never be written and the
            # job, still locked by this worker, would run again and again
            error = error.replace("\x00", "\\x00")
        values: dict[str, Any] = {
            "attempts": t.c.attempts + 1,
            self._error_col.name: error,
            "locked_at": None,
            "locked_by": None,
        }
        if retry_at is not None:
            values["run_at"] = retry_at
        else:
            values["failed_at"] = now
        if "updated_at" in t.c:
            values["updated_at"] = now
        with self._outcome(now, processed=1, failed=1, single=True) as (conn, tally):
            written = conn.execute(
                sa.update(t).where(t.c.id == job.id, t.c.locked_by == worker).values(**values)
            ).rowcount
            # counted only if written: a worker that lost its lock failed nothing here
            tally[0] = tally[1] = 1 if written else 0

    def release(self, job: Job, worker: str) -> None:
        self.release_many([job], worker)

    def release_many(self, jobs: Sequence[Job], worker: str) -> None:
        """Give claimed jobs back untouched (a stopping worker's unrun prefetched jobs)."""
        if not jobs:
            return
        st = self._statements()
        with self._write() as conn:
            conn.execute(st.release(), [{"job_id": j.id, "owner": worker} for j in jobs])

    def refresh_lock(self, job: Job, worker: str, now: datetime) -> bool:
        """Renew the lock of a job claimed a while ago and not yet run (prefetched): False if the
        worker no longer holds it, so it must not run it."""
        t = self._jobs()
        with self._autocommit() as conn:
            return (
                conn.execute(
                    sa.update(t)
                    .where(t.c.id == job.id, t.c.locked_by == worker, t.c.failed_at.is_(None))
                    .values(locked_at=now)
                ).rowcount
                == 1
            )

    def prune_finished(self, now: datetime) -> int:
        self._ensure_aux()
        f = self._aux["finished"]
        cutoff = now - timedelta(seconds=self.options.finished_retention)
        with self._write() as conn:
            return conn.execute(sa.delete(f).where(f.c.finished_at < cutoff)).rowcount

    # --- throughput counters, buffered so a job costs one transaction ------------------------
    @contextmanager
    def _outcome(
        self, now: datetime, processed: int, failed: int, single: bool = False, conn: sa.Connection | None = None
    ) -> Iterator[tuple[sa.Connection, list[int]]]:
        """The write transaction of one job outcome, in `conn` if given. Yields the connection and
        the outcome's counts [processed, failed], which the body may lower (a repeated outcome
        counts nothing). The counts join the buffer, which is written in the same transaction
        at most once a second; counts leave the buffer only once that transaction has
        committed, so a retried write never counts twice nor a failed one lose what was
        buffered."""
        self._ensure_aux()
        minute = now.replace(second=0, microsecond=0)
        due = time.monotonic() - self._last_flush >= FLUSH_INTERVAL
        taken = {m: list(v) for m, v in self._buffer.items()} if due else {}
        tally = [processed, failed]
        if single and not due and conn is None:  # one statement and no counts to write: no transaction needed
            with self._autocommit() as c:
                yield c, tally
            self._count(now, *tally)
            return
        with _begun(conn, not due) if conn is not None else self._write() as c:
            yield c, tally
            if due:
                counts = {m: list(v) for m, v in taken.items()}
                slot = counts.setdefault(minute, [0, 0])
                slot[0] += tally[0]
                slot[1] += tally[1]
                self._write_counts(c, counts)
        if due:
            self._forget_counts(taken)
        else:
            self._count(now, *tally)

    def _count(self, now: datetime, processed: int, failed: int) -> None:
        if not processed and not failed:
            return
        minute = now.replace(second=0, microsecond=0)
        slot = self._buffer.setdefault(minute, [0, 0])
        slot[0] += processed
        slot[1] += failed

    def _write_counts(self, conn: sa.Connection, counts: dict[datetime, list[int]]) -> None:
        """Add `counts` to the throughput and total counters: atomic increments, so that workers
        writing the same minute at once neither lose counts nor collide inserting its row."""
        if not counts:
            return
        tp, c = self._aux["throughput"], self._aux["counters"]
        totals = [0, 0]
        for minute, (processed, failed) in sorted(counts.items()):
            totals[0] += processed
            totals[1] += failed
            dialect.increment(
                conn, tp, {"job_table": self.table_name, "minute": minute}, {"processed": processed, "failed": failed}
            )
        for name, n in (("processed", totals[0]), ("failed", totals[1])):
            dialect.increment(conn, c, {"job_table": self.table_name, "name": name}, {"value": n})

    def _forget_counts(self, written: dict[datetime, list[int]]) -> None:
        """Take committed counts out of the buffer (more may have joined it meanwhile)."""
        for minute, (processed, failed) in written.items():
            slot = self._buffer.get(minute)
            if slot is None:
                continue
            slot[0] -= processed
            slot[1] -= failed
            if slot[0] <= 0 and slot[1] <= 0:
                del self._buffer[minute]
        self._last_flush = time.monotonic()

    def flush(self) -> None:
        self._release_hot()
        if self._buffer:
            self._ensure_aux()
            taken = {m: list(v) for m, v in self._buffer.items()}
            with self._write() as conn:
                self._write_counts(conn, taken)
            self._forget_counts(taken)


@contextmanager
def _begun(conn: sa.Connection, on_driver: bool = False) -> Iterator[sa.Connection]:
    """A write transaction in `conn`. `on_driver` (SQLite, a body that runs on the driver alone):
    BEGIN IMMEDIATE and COMMIT straight on the driver, without SQLAlchemy's transaction
    bookkeeping and events, which cost more than the statements they wrap.

    On a SQLite file, qadmin's writers queue for its write lock file first (`write_lock`), until
    after COMMIT and the checkpoint SQLite runs in it."""
    with dialect.write_lock(conn.engine):
        if not on_driver:
            with conn.begin():
                yield conn
            return
        raw = conn.connection.dbapi_connection
        try:
            dialect.begin_immediate(raw, dialect.busy_timeout_ms(conn.engine))
        except Exception as exc:
            raise _wrapped("BEGIN IMMEDIATE", [], exc) from exc
        try:
            yield conn
        except BaseException:
            if raw.in_transaction:
                raw.rollback()
            raise
        try:
            raw.commit()
        except Exception as exc:
            if raw.in_transaction:
                raw.rollback()
            raise _wrapped("COMMIT", [], exc) from exc


def _pg_insert(conn: sa.Connection, raw: Any, layout: _InsertLayout, row: list[Any]) -> JobId:
    """`layout.pg_sql` for one row, its id back: on libpq's own prepared-statement call, with
    the parameters written here, which costs the client a third of psycopg's `execute` (its
    cursor, adaptation and result machinery, per call); psycopg's wait still drives the round
    trip, so Ctrl-C cancels it as ever. Values the fast path has no spelling for (anything but
    str, bytes, int and naive datetimes), or a connection not in UTF-8, go through `execute`."""
    params = layout.pg_params(row) if layout.pg_name is not None else None
    info = conn.connection.info
    ready = info.get(layout.pg_name) if params is not None else False
    if ready is None:  # first use on this connection
        ready = info[layout.pg_name] = raw.info.encoding == "utf-8" and _pg_run(raw, layout, None)
    if not ready:
        return raw.execute(layout.pg_sql, row, prepare=True).fetchone()[0]
    try:
        return _pg_run(raw, layout, params)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != "26000":
            raise
    # the statement is gone (a DISCARD ALL, a pooler's reset): it inserted nothing, so
    # prepare it again and run it once more
    _pg_run(raw, layout, None)
    return _pg_run(raw, layout, params)


def _pg_run(raw: Any, layout: _InsertLayout, params: list[bytes | None] | None) -> Any:
    """Prepare `layout`'s statement (params None; True once it exists) or run it (its id)."""
    global _PSYCOPG
    if _PSYCOPG is None:
        from psycopg import errors, generators, pq

        _PSYCOPG = (generators.execute, errors.error_from_result, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
    execute, error_from_result, tuples_ok, command_ok = _PSYCOPG
    pgconn = raw.pgconn
    with raw.lock:
        if params is None:
            pgconn.send_prepare(layout.pg_name, layout.pg_dollar_sql.encode())
        else:
            pgconn.send_query_prepared(layout.pg_name, params, layout.pg_formats)
        result = raw.wait(execute(pgconn))[-1]
    if result.status == (command_ok if params is None else tuples_ok):
        return True if params is None else int(result.get_value(0, 0))
    error = error_from_result(result, encoding="utf-8")
    if params is None and error.sqlstate == "42P05":
        return True  # prepared on this connection by an earlier use whose mark was lost
    raise error


_PSYCOPG: tuple[Any, ...] | None = None


def _run_completion(raw: Any, bound: list[tuple[str, list[Any]]]) -> int:
    """Run `_bind_completion`'s statements: the rest only if the first deleted the job."""
    if not DriverSql.run(raw, bound[0]).rowcount:
        return 0
    for statement in bound[1:]:
        DriverSql.run(raw, statement)
    return 1


def _run_locks(
    raw: Any, locks: list[tuple[Job, tuple[str, list[Any]]]], params: dict[str, Any], wanted: int
) -> tuple[list[Job], int]:
    """Lock the jobs of `locks` in turn until `wanted` are locked (spares left untouched): the
    jobs locked, and how many were found taken by another worker."""
    now, worker = params["now"], params["worker"]
    out: list[Job] = []
    lost = 0
    for job, bound in locks:
        if len(out) == wanted:
            break
        if DriverSql.run(raw, bound).rowcount == 1:
            out.append(_locked(job, worker, now))
        else:
            lost += 1
    return out, lost


def _runnable(
    backend: Any, rows: Iterator[Any], now: datetime, can_run: Callable[[Job], bool], wanted: int
) -> list[Job]:
    """Decode rows from `rows` until `wanted` the worker can run are found (rows it cannot run
    are passed over, and stay where they are)."""
    out: list[Job] = []
    if wanted <= 0:
        return out
    for row in rows:
        job = backend._to_job(row, now, _NO_OWNERS)
        if job.decodable and can_run(job):
            out.append(job)
            if len(out) == wanted:
                break
    return out


def _in_claim_order(st: ClaimStatements, rows: list[Any]) -> list[Any]:
    """RETURNING gives rows in no particular order: sort them as the claim reads them (by queue
    step first, where the worker's queues are served in order)."""
    names = [c.name for c in st.cols]
    rows.sort(key=lambda r: (r.step or 0,) + tuple(_sort_key(getattr(r, n)) for n in names))
    return rows


def _sort_key(value: Any) -> tuple[int, Any]:
    """NULL lowest, as the claim orders; a value of the wrong type (an unreadable time, on
    which the row is then passed over) before both."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, datetime)) and not isinstance(value, bool):
        return (1, value)
    return (-1, 0)


def _steps_key(steps: list[list[str]]) -> tuple[str, int, bool]:
    """`by_queue` of a PostgreSQL claim over several queue steps (`ClaimStatements._pick`)."""
    return ("steps", len(steps), steps[-1] == ["*"])


def _step_params(steps: list[list[str]]) -> dict[str, Any]:
    params: dict[str, Any] = {f"step_{i}": step[0] for i, step in enumerate(steps) if step != ["*"]}
    if steps[-1] == ["*"]:
        params["earlier"] = [step[0] for step in steps[:-1]]
    return params


_NO_OWNERS: frozenset[str] = frozenset()


class _InsertLayout:
    """How a new job becomes a row of `t`: its values (`values`, shared by every path, so that
    every path stores the same row), and for the bulk paths the same values as the driver takes
    them, computed once per batch where they are the same for every row."""

    def __init__(self, t: sa.Table, sa_dialect: Any) -> None:
        self.t = t
        self.has_priority = "priority" in t.c
        self.binary = isinstance(t.c.handler.type, sa.LargeBinary)  # a DJJob table with a BLOB/BYTEA handler
        self.stamps = [c for c in ("created_at", "updated_at") if c in t.c]
        self.columns = (
            ["handler", "attempts", "run_at", "queue"] + (["priority"] if self.has_priority else []) + self.stamps
        )
        self.dialect = sa_dialect
        self._procs = [t.c[c].type._cached_bind_processor(sa_dialect) for c in self.columns]
        quote = sa_dialect.identifier_preparer.quote
        table = sa_dialect.identifier_preparer.format_table(t)
        insert = f"INSERT INTO {table} ({', '.join(quote(c) for c in self.columns)}) VALUES "
        row = f"({', '.join('?' for _ in self.columns)})"
        self.sql = insert + row
        self.count_sql = f"SELECT count(*) FROM {table} WHERE {quote('id')} BETWEEN ? AND ?"
        #: SQLite: rows per multi-row INSERT, within the 999 bound parameters of any SQLite build
        self.multi_rows = min(100, 999 // len(self.columns))
        self.multi_sql = insert + ", ".join(row for _ in range(self.multi_rows))
        self.pg_sql = insert + f"({', '.join('%s' for _ in self.columns)}) RETURNING {quote('id')}"
        self.all_columns = [c.name for c in t.c]
        self._quote, self._table = quote, table
        #: a table whose times are whole seconds (DJJob's): the values, and so the Job an
        #: insert returns, are what the row holds
        self.whole_seconds = bool(getattr(t.c.run_at.type, "whole_seconds", False))
        # PostgreSQL, one row (`_pg_insert`): strings and bytes sent binary (the bytes of a text
        # in the client encoding, or of a bytea: one spelling for both, and a NUL is refused by
        # the server as psycopg refuses it), numbers and timestamps as text. Columns of other
        # types (a foreign table's jsonb handler, say) keep psycopg's adaptation
        kinds = [_pg_kind(t.c[c].type) for c in self.columns]
        self.pg_name: bytes | None = None
        if sa_dialect.name == "postgresql" and None not in kinds:
            self.pg_formats = [1 if k is _BINARY else 0 for k in kinds]
            self._pg_kinds = kinds
            numbered = iter(range(1, len(self.columns) + 1))
            self.pg_dollar_sql = re.sub("%s", lambda _m: f"${next(numbered)}", self.pg_sql)
            digest = hashlib.sha1(self.pg_dollar_sql.encode()).hexdigest()[:16]
            self.pg_name = f"qadmin_enqueue_{digest}".encode()

    def values(self, new: NewJob, now: datetime) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if new.max_attempts is not None:
            meta["max_attempts"] = new.max_attempts
        if new.unique is not None:
            meta["unique"] = new.unique
        handler: Any = json_codec.encode(new.class_name, list(new.args), dict(new.kwargs), meta)
        run_at = new.run_at or now
        if self.whole_seconds:
            now, run_at = now.replace(microsecond=0), run_at.replace(microsecond=0)
        values: dict[str, Any] = {
            "handler": handler.encode("utf-8") if self.binary else handler,
            "attempts": 0,
            "run_at": run_at,
            "queue": new.queue,
        }
        if self.has_priority:
            values["priority"] = new.priority
        for column in self.stamps:
            values[column] = now
        return values

    def driver_row(self, values: dict[str, Any]) -> list[Any]:
        """`values` in `sql`'s column order, as the driver takes them (`now`, in three
        columns, converted once)."""
        out: list[Any] = []
        seen: Any = out  # no value is `out`
        for column, proc in zip(self.columns, self._procs):
            value = values[column]
            if proc is not None:
                if value is not seen:
                    seen, converted = value, proc(value)
                value = converted
            out.append(value)
        return out

    def pg_params(self, row: list[Any]) -> list[bytes | None] | None:
        """`row` (as `driver_row` gives it) as `_pg_insert` sends it; None where a value is of
        another kind than its column takes on the fast path."""
        out: list[bytes | None] = []
        for value, kind in zip(row, self._pg_kinds):
            cls = value.__class__
            if value is None:
                out.append(None)
            elif kind is _BINARY:
                if cls is str:
                    out.append(value.encode())
                elif cls is bytes:
                    out.append(value)
                else:
                    return None
            elif kind is int and cls is int:
                out.append(str(value).encode())
            elif kind is datetime and cls is datetime and value.tzinfo is None:
                out.append(value.isoformat(" ").encode())
            else:
                return None
        return out

    def _handler(self, new: NewJob) -> Any:
        meta: dict[str, Any] | None = None
        if new.max_attempts is not None or new.unique is not None:
            meta = {}
            if new.max_attempts is not None:
                meta["max_attempts"] = new.max_attempts
            if new.unique is not None:
                meta["unique"] = new.unique
        handler = json_codec.encode(new.class_name, new.args, new.kwargs, meta)
        return handler.encode("utf-8") if self.binary else handler

    def driver_rows(self, news: Sequence[NewJob], now: datetime) -> list[tuple[Any, ...]]:
        """SQLite: the rows of `news` in `sql`'s column order, as the driver takes them."""
        procs = dict(zip(self.columns, self._procs))
        run_at_proc = procs["run_at"]
        at = run_at_proc(now) if run_at_proc else now
        stamps = tuple(procs[c](now) if procs[c] else now for c in self.stamps)
        handler = self._handler
        if self.has_priority:
            return [
                (handler(n), 0, at if n.run_at is None else run_at_proc(n.run_at), n.queue, n.priority) + stamps
                for n in news
            ]
        return [(handler(n), 0, at if n.run_at is None else run_at_proc(n.run_at), n.queue) + stamps for n in news]

    def pg_arrays(self, news: Sequence[NewJob], now: datetime) -> tuple[str, dict[str, Any]]:
        """PostgreSQL: one INSERT of every row of `news`, from one array per column whose value
        varies from row to row (a column whose value is the same in every row, as the queue
        and priority of a batch mostly are, and `now`, go once), returning the ids."""
        q, t, compile_type = self._quote, self.t, (lambda c: t.c[c].type.compile(dialect=self.dialect))
        run_at = self._procs[self.columns.index("run_at")]
        naive_now = run_at(now) if run_at else now
        handler = self._handler
        arrays: dict[str, list[Any]] = {"handler": [handler(n) for n in news]}
        columns: dict[str, list[Any]] = {"queue": [n.queue for n in news]}
        if self.has_priority:
            columns["priority"] = [n.priority for n in news]
        if any(n.run_at is not None for n in news):
            columns["run_at"] = [
                naive_now if n.run_at is None else (run_at(n.run_at) if run_at else n.run_at) for n in news
            ]
        select = {"attempts": "0", "run_at": "%(now)s", **dict.fromkeys(self.stamps, "%(now)s")}
        params: dict[str, Any] = {"now": naive_now}
        for name, values in columns.items():
            if _same(values):
                select[name] = f"%({name})s::{compile_type(name)}"
                params[name] = values[0]
            else:
                arrays[name] = values
        names = list(arrays)
        select.update({name: f"u.{q(name)}" for name in names})
        sql = (
            f"INSERT INTO {self._table} ({', '.join(q(c) for c in self.columns)}) "
            f"SELECT {', '.join(select[c] for c in self.columns)} FROM unnest("
            + ", ".join(f"%({name})b::{compile_type(name)}[]" for name in names)
            + f") WITH ORDINALITY AS u({', '.join(q(n) for n in names)}, qadmin_ord) "
            f"ORDER BY u.qadmin_ord RETURNING {q('id')}"
        )
        return sql, {**arrays, **params}


def _same(values: list[Any]) -> bool:
    """Whether every value is the first one (of its very type: True is not 1 to the database)."""
    first = values[0]
    kind = first.__class__
    return all(v.__class__ is kind and v == first for v in values)


_BINARY = bytes


def _pg_kind(column_type: Any) -> Any:
    """How `_pg_insert` sends a column's values: binary bytes, text of an int or of a naive
    datetime; None for a type it leaves to psycopg."""
    impl = getattr(column_type, "impl_instance", column_type)
    if isinstance(impl, (sa.String, sa.LargeBinary)) and not isinstance(impl, sa.Enum):
        return _BINARY
    if isinstance(impl, sa.Integer):
        return int
    if isinstance(impl, sa.DateTime):
        return datetime
    return None


class _Row:
    """A row for `_to_job`: written (its values) or fetched on the driver (converted by
    `convert` when first read)."""

    def __init__(self, convert: Any, raw: Any = None) -> None:
        if raw is None:
            self._values = convert
        else:
            self._convert, self._raw = convert, raw

    @property
    def _mapping(self) -> dict[str, Any]:
        try:
            return self._values
        except AttributeError:
            self._values = self._convert(self._raw)
            return self._values

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


def _locked(job: Job, worker: str, now: datetime) -> Job:
    """`job`, just decoded from its row, as this worker's lock makes it. The Job is the claim's
    own, seen by no one yet: it is set in place rather than copied field by field."""
    for name, value in (("state", JobState.LOCKED), ("locked_at", now), ("locked_by", worker), ("stale", False)):
        object.__setattr__(job, name, value)
    return job


def _as_utc(value: Any) -> Any:
    return _UTC.process_result_value(value, None)


_UTC = UtcDateTime()


def _keyset(cols: list[sa.Column], after: tuple[Any, ...], desc: bool) -> Any:
    """Rows strictly after `after` in the order of `cols`, NULL sorting lowest (as listings order).

    Row-value comparison (`(a, b) > (x, y)`) is NULL for a NULL column, which would drop every
    row with a NULL `failed_at` or `run_at` from the next pages; nullable columns are compared
    one by one instead.
    """
    if not any(c.nullable for c in cols):
        values = [sa.bindparam(None, v, type_=c.type) for c, v in zip(cols, after)]
        if len(cols) == 1:
            return cols[0] < values[0] if desc else cols[0] > values[0]
        return sa.tuple_(*cols) < sa.tuple_(*values) if desc else sa.tuple_(*cols) > sa.tuple_(*values)
    alternatives = []
    equal_so_far: list[Any] = []
    for c, v in zip(cols, after):
        bound = sa.bindparam(None, v, type_=c.type)
        if desc:
            beyond = sa.false() if v is None else (sa.or_(c < bound, c.is_(None)) if c.nullable else c < bound)
        else:
            beyond = c.is_not(None) if v is None else c > bound
        alternatives.append(sa.and_(*equal_so_far, beyond))
        equal_so_far.append(c.is_(None) if v is None else c == bound)
    return sa.or_(*alternatives)
