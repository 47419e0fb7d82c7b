"""The SQL backend's engine verbs: enqueue, claim, complete, fail, release, and the buffered
throughput counters — the hot path of clients and workers, kept apart from the admin verbs of
`sql.py`. `SqlEngine` is a mixin of `SqlBackend`: it uses the backend's connections, tables
and row decoding."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Sequence

import sqlalchemy as sa

from qadmin.backends import _sql_dialect as dialect
from qadmin.backends._sql_claim import ClaimStatements
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
    def _row_values(self, new: NewJob, now: datetime) -> dict[str, Any]:
        t = self._jobs()
        meta: dict[str, Any] = {}
        if new.max_attempts is not None:
            meta["max_attempts"] = new.max_attempts
        if new.unique is not None:
            meta["unique"] = new.unique
        values: dict[str, Any] = {
            "handler": json_codec.encode(new.class_name, list(new.args), dict(new.kwargs), meta),
            "attempts": 0,
            "run_at": new.run_at or now,
            "queue": new.queue,
        }
        if "priority" in t.c:
            values["priority"] = new.priority
        if isinstance(t.c.handler.type, sa.LargeBinary):  # a DJJob table with a BLOB/BYTEA handler
            values["handler"] = values["handler"].encode("utf-8")
        for column in ("created_at", "updated_at"):
            if column in t.c:
                values[column] = now
        return values

    def enqueue(self, new: NewJob, now: datetime | None = None) -> Job:
        from qadmin.job import utcnow

        now = now or utcnow()
        t = self._jobs()
        values = self._row_values(new, now)
        if new.unique is None:
            with self._autocommit() as conn:
                job_id = conn.execute(self._insert_stmt(), values).inserted_primary_key[0]
            return self._inserted_job(job_id, values, now)
        self._ensure_aux()
        u = self._aux["unique"]
        for _ in range(10):
            try:
                with self._write() as conn:
                    existing = conn.execute(sa.select(u.c.job_id).where(
                        u.c.job_table == self.table_name, u.c.key == new.unique).with_for_update()
                        if dialect.row_locks(self.engine) else
                        sa.select(u.c.job_id).where(u.c.job_table == self.table_name, u.c.key == new.unique)
                    ).scalar_one_or_none()
                    if existing is not None:
                        alive = conn.execute(sa.select(t.c.id).where(t.c.id == existing, t.c.failed_at.is_(None))).first()
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
        t = self._jobs()
        stored: dict[str, Any] = {c.name: None for c in t.c}
        for name, value in values.items():
            if isinstance(value, datetime):
                value = _as_utc(value)
            stored[name] = value
        stored["id"] = job_id
        return self._to_job(_Row(stored), now, set())

    def enqueue_many(self, news: Sequence[NewJob], now: datetime | None = None) -> list[JobId]:
        from qadmin.job import utcnow

        now = now or utcnow()
        t = self._jobs()
        plain = [n for n in news if n.unique is None]
        ids: list[JobId] = []
        for start in range(0, len(plain), 5000):
            rows = [self._row_values(n, now) for n in plain[start:start + 5000]]
            with self._write() as conn:
                if self.engine.dialect.insert_executemany_returning:
                    result = conn.execute(sa.insert(t).returning(t.c.id, sort_by_parameter_order=True), rows)
                    ids.extend(r[0] for r in result)
                else:
                    conn.execute(sa.insert(t), rows)
        for new in news:
            if new.unique is not None:
                ids.append(self.enqueue(new, now).id)
        return ids

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
        with self._wrap(), self._auto_engine.connect() as conn:
            yield conn

    def claim(self, queues: Sequence[str], worker: str, now: datetime, max_run_time: float,
              can_run: Callable[[Job], bool], skip_ids: Sequence[JobId] = ()) -> Job | None:
        jobs = self.claim_many(queues, worker, now, max_run_time, can_run, 1, skip_ids=skip_ids)
        return jobs[0] if jobs else None

    def claim_many(self, queues: Sequence[str], worker: str, now: datetime, max_run_time: float,
                   can_run: Callable[[Job], bool], limit: int, skip_ids: Sequence[JobId] = ()) -> list[Job]:
        """Lock up to `limit` runnable jobs for `worker` in one transaction, in claim order.

        The jobs are locked as `claim` locks one: until the worker completes, fails or releases
        each, no one else runs it, and if the worker dies they are stale locks, recovered as any."""
        st = self._statements()
        params: dict[str, Any] = {"now": now, "expired": now - timedelta(seconds=max_run_time), "worker": worker,
                                  "job_table": self.table_name}
        by_queue = bool(queues) and "*" not in queues
        if by_queue:
            params["queues"] = list(queues)
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

    def _claim_optimistic(self, st: ClaimStatements, params: dict[str, Any], by_queue: bool, skip: bool,
                          can_run: Callable[[Job], bool], limit: int) -> list[Job]:
        """SQLite: read the candidates from a snapshot, without the write lock, and decide which
        the worker can run; then take the write lock only to lock them, each by an UPDATE
        guarded by the ready predicate (a row another worker took meanwhile is passed over).
        SQLite has one writer at a time: the less a claim does while holding the lock, the
        more worker processes add up."""
        now, worker = params["now"], params["worker"]
        batch = max(READ_AHEAD, 2 * limit)
        pick = st.candidates(by_queue, skip, batch)
        for _ in range(CLAIM_SCAN // READ_AHEAD):
            with self._read() as conn:
                rows = conn.execute(pick, params).all()
            out: list[Job] = []
            pending = iter(rows)
            while True:
                # decode only as many as are wanted; more only if others took these meanwhile
                runnable = []
                for row in pending:
                    job = self._to_job(row, now, set())
                    if job.decodable and can_run(job):
                        runnable.append(job)
                        if len(runnable) == limit - len(out):
                            break
                if not runnable:
                    break
                lock = st.driver_sql("lock", st.lock())
                with self._write() as conn:
                    for job in runnable:
                        if _run_driver(conn, lock, {**params, "job_id": job.id}) == 1:
                            out.append(_locked(job, worker, now))
                if len(out) == limit:
                    break
            if out or len(rows) < batch:
                return out
            after = _keyset(st.cols, tuple(getattr(rows[-1], c.name) for c in st.cols), False)
            pick = st.candidates_after(by_queue, skip, batch, after)
        return []

    def _claim_returning(self, st: ClaimStatements, params: dict[str, Any], by_queue: bool, skip: list[JobId],
                         can_run: Callable[[Job], bool], limit: int) -> list[Job]:
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
                rows = conn.execute(st.lock_returning(by_queue, bool(skip)), {**params, "n": want}).all()
                rows.sort(key=lambda r: tuple((v is not None, v) for v in (getattr(r, c.name) for c in st.cols)))
                unrunnable = []
                for row in rows:
                    job = self._to_job(row, now, set())
                    if job.decodable and can_run(job):
                        out.append(Job(**{**job.__dict__, "stale": False}))
                    else:
                        unrunnable.append({**params, "job_id": row.id, "old_at": row.old_locked_at,
                                           "old_by": row.old_locked_by})
                        skip.append(row.id)
                if unrunnable:
                    conn.execute(st.unlock_back(), unrunnable)
            if len(out) >= limit or len(rows) < want:
                break
        return out

    def complete(self, job: Job, worker: str, now: datetime, runtime: float) -> None:
        st = self._statements()
        u = self._aux["unique"]
        values = {"job_table": self.table_name, "job_id": job.id, "queue": job.queue, "class_name": job.class_name,
                  "handler": job.raw, "priority": job.priority, "attempts": job.attempts,
                  "created_at": job.created_at, "finished_at": now, "runtime": runtime, "worker": worker}
        unique = job.meta.get("unique")
        with self._outcome(now, processed=1, failed=0, single=unique is None) as conn:
            if self.kind == "postgresql":
                conn.execute(st.complete_one(), values)
            elif self.kind == "sqlite":
                _run_driver(conn, st.driver_sql("delete", st.delete_locked()), {"job_id": job.id, "owner": worker})
                _run_driver(conn, st.driver_sql("finished", st.record_finished_bound()),
                            {f"v_{c}": v for c, v in values.items()})
            else:
                conn.execute(st.delete_locked(), {"job_id": job.id, "owner": worker})
                conn.execute(st.record_finished(), values)
            if unique is not None:
                conn.execute(sa.delete(u).where(u.c.job_table == self.table_name, u.c.key == unique,
                                                u.c.job_id == job.id))

    def fail(self, job: Job, worker: str, now: datetime, error: str, retry_at: datetime | None) -> None:
        t = self._jobs()
        values: dict[str, Any] = {"attempts": t.c.attempts + 1, self._error_col.name: error,
                                  "locked_at": None, "locked_by": None}
        if retry_at is not None:
            values["run_at"] = retry_at
        else:
            values["failed_at"] = now
        if "updated_at" in t.c:
            values["updated_at"] = now
        with self._outcome(now, processed=1, failed=1, single=True) as conn:
            conn.execute(sa.update(t).where(t.c.id == job.id, t.c.locked_by == worker).values(**values))

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
            return conn.execute(sa.update(t).where(t.c.id == job.id, t.c.locked_by == worker,
                                                   t.c.failed_at.is_(None)).values(locked_at=now)).rowcount == 1

    def prune_finished(self, now: datetime) -> int:
        self._ensure_aux()
        f = self._aux["finished"]
        cutoff = now - timedelta(seconds=self.options.finished_retention)
        with self._write() as conn:
            return conn.execute(sa.delete(f).where(f.c.finished_at < cutoff)).rowcount

    # --- throughput counters, buffered so a job costs one transaction ------------------------
    @contextmanager
    def _outcome(self, now: datetime, processed: int, failed: int,
                 single: bool = False) -> Iterator[sa.Connection]:
        """The write transaction of one job outcome. Its counts join the buffer, which is written
        in the same transaction at most once a second; counts leave the buffer only once that
        transaction has committed, so a retried write never counts twice nor a failed one lose
        what was buffered."""
        self._ensure_aux()
        minute = now.replace(second=0, microsecond=0)
        due = time.monotonic() - self._last_flush >= FLUSH_INTERVAL
        taken = {m: list(v) for m, v in self._buffer.items()} if due else {}
        if single and not due:  # one statement and no counts to write: no transaction needed
            with self._autocommit() as conn:
                yield conn
            self._count(now, processed, failed)
            return
        with self._write() as conn:
            yield conn
            if due:
                counts = {m: list(v) for m, v in taken.items()}
                slot = counts.setdefault(minute, [0, 0])
                slot[0] += processed
                slot[1] += failed
                self._write_counts(conn, counts)
        if due:
            self._forget_counts(taken)
        else:
            self._count(now, processed, failed)

    def _count(self, now: datetime, processed: int, failed: int) -> None:
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
            dialect.increment(conn, tp, {"job_table": self.table_name, "minute": minute},
                              {"processed": processed, "failed": failed})
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
        if self._buffer:
            self._ensure_aux()
            taken = {m: list(v) for m, v in self._buffer.items()}
            with self._write() as conn:
                self._write_counts(conn, taken)
            self._forget_counts(taken)



def _run_driver(conn: sa.Connection, compiled: tuple[str, list[tuple[str, Any]]], params: dict[str, Any]) -> int:
    """Run a statement compiled by `ClaimStatements.driver_sql` in `conn`'s transaction."""
    sql, order = compiled
    args = [params[name] if proc is None else proc(params[name]) for name, proc in order]
    try:
        return conn.connection.dbapi_connection.execute(sql, args).rowcount
    except conn.dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy would have wrapped it
        raise sa.exc.DBAPIError.instance(sql, args, exc, conn.dialect.loaded_dbapi.Error) from exc


class _Row:
    """A row that was written, not read: what `_to_job` needs of one."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._mapping = values
        self.__dict__.update(values)


def _locked(job: Job, worker: str, now: datetime) -> Job:
    return Job(**{**job.__dict__, "state": JobState.LOCKED, "locked_at": now, "locked_by": worker, "stale": False})


def _as_utc(value: Any) -> Any:
    from qadmin.backends._sql_tables import UtcDateTime

    return UtcDateTime().process_result_value(value, None)


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
            beyond = (c.is_not(None) if v is None else c > bound)
        alternatives.append(sa.and_(*equal_so_far, beyond))
        equal_so_far.append(c.is_(None) if v is None else c == bound)
    return sa.or_(*alternatives)


