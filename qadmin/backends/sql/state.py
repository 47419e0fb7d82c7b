"""What a worker keeps between its calls: a connection held checked out (`HeldConnection`) and
its throughput counts waiting to be written (`Counters`). A `SqlWorkerSession` owns one of
each; the backend's one-shot verbs use a connection per call and write their counts at once."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.store import Store

#: how often a worker's buffered throughput counts are written
FLUSH_INTERVAL = 1.0

#: a connection for one statement that is a transaction by itself
Single = Callable[[], AbstractContextManager[sa.Connection]]


class HeldConnection:
    """A connection and its DBAPI connection kept checked out from one call of a worker's to the
    next (`release`, which an idle or stopping worker's flush calls, gives it back): a pool
    checkout and return cost more than a statement. Between calls it holds no transaction, so
    it keeps no snapshot and blocks no checkpoint. `keep=False`: a connection per call."""

    def __init__(self, store: Store, engine: sa.Engine, keep: bool = True) -> None:
        self.store = store
        self.engine = engine
        self.keep = keep
        self._held: tuple[tuple[int, int], sa.Connection] | None = None

    @contextmanager
    def hold(self) -> Iterator[tuple[sa.Connection, Any]]:
        owner = (os.getpid(), threading.get_ident())
        with self.store.wrap():
            held = self._held
            if held is not None and held[0] == owner and not held[1].closed and not held[1].invalidated:
                conn, keep = held[1], True
            elif self.keep and (held is None or held[0] == owner):  # none yet, or this thread's was closed
                conn, keep = self.engine.connect(), True
                self._held = (owner, conn)
            else:
                # one-shot, or the process that forked this one holds it (its connection is never
                # touched here): a connection for this call alone
                conn, keep = self.engine.connect(), False
            try:
                yield conn, conn.connection.dbapi_connection
            except BaseException:
                if keep:  # whatever state an error left it in, the next call starts afresh
                    self._held = None
                    conn.close()
                raise
            finally:
                if not keep:
                    conn.close()

    def release(self) -> None:
        held = self._held
        if held is not None and held[0] == (os.getpid(), threading.get_ident()):
            self._held = None
            held[1].close()


class Counters:
    """Throughput counts (processed, failed per minute, and the totals), buffered so that a job
    costs one transaction: written with an outcome at most every `interval` seconds (0: with
    every outcome)."""

    def __init__(self, store: Store, interval: float = FLUSH_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._buffer: dict[datetime, list[int]] = {}
        self._last_flush = time.monotonic()

    @contextmanager
    def outcome(
        self,
        now: datetime,
        processed: int,
        failed: int,
        *,
        single: Single | None = None,
        conn: sa.Connection | None = None,
        on_driver: Callable[[sa.Connection], AbstractContextManager[Any]] | None = None,
    ) -> Iterator[tuple[sa.Connection, list[int]]]:
        """The write transaction of one job outcome, in `conn` if given (`on_driver`: its
        transaction when no counts go with it). Yields the connection and the outcome's counts
        [processed, failed], which the body may lower (a repeated outcome counts nothing). The
        counts join the buffer, written in the same transaction once `interval` has passed;
        counts leave the buffer only once that transaction has committed, so a retried write
        never counts twice nor a failed one loses what was buffered. `single`: the body is one
        statement, which needs no transaction of its own while no counts go with it."""
        self.store.ensure_aux()
        minute = now.replace(second=0, microsecond=0)
        due = time.monotonic() - self._last_flush >= self.interval
        taken = {m: list(v) for m, v in self._buffer.items()} if due else {}
        tally = [processed, failed]
        if single is not None and not due and conn is None:
            with single() as c:
                yield c, tally
            self.count(now, *tally)
            return
        transaction: AbstractContextManager[Any]
        if conn is None:
            transaction = self.store.write()
        elif due or on_driver is None:
            transaction = self.store.begun(conn)
        else:
            transaction = on_driver(conn)
        with transaction as began:
            c = conn if conn is not None else began
            yield c, tally
            if due:
                counts = {m: list(v) for m, v in taken.items()}
                slot = counts.setdefault(minute, [0, 0])
                slot[0] += tally[0]
                slot[1] += tally[1]
                self.write(c, counts)
        if due:
            self.forget(taken)
        else:
            self.count(now, *tally)

    def count(self, now: datetime, processed: int, failed: int) -> None:
        if not processed and not failed:
            return
        minute = now.replace(second=0, microsecond=0)
        slot = self._buffer.setdefault(minute, [0, 0])
        slot[0] += processed
        slot[1] += failed

    def write(self, conn: sa.Connection, counts: dict[datetime, list[int]]) -> None:
        """Add `counts` to the throughput and total counters: atomic increments, so that workers
        writing the same minute at once neither lose counts nor collide inserting its row."""
        if not counts:
            return
        aux, dialect, table_name = self.store.aux, self.store.dialect, self.store.table_name
        tp, c = aux["throughput"], aux["counters"]
        totals = [0, 0]
        for minute, (processed, failed) in sorted(counts.items()):
            totals[0] += processed
            totals[1] += failed
            dialect.increment(
                conn, tp, {"job_table": table_name, "minute": minute}, {"processed": processed, "failed": failed}
            )
        for name, n in (("processed", totals[0]), ("failed", totals[1])):
            dialect.increment(conn, c, {"job_table": table_name, "name": name}, {"value": n})

    def write_all(self, conn: sa.Connection) -> dict[datetime, list[int]]:
        """Write every buffered count in `conn`'s transaction; `forget` them once it committed."""
        taken = {m: list(v) for m, v in self._buffer.items()}
        self.write(conn, taken)
        return taken

    def forget(self, written: dict[datetime, list[int]]) -> None:
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
            self.store.ensure_aux()
            with self.store.write() as conn:
                taken = self.write_all(conn)
            self.forget(taken)


class WorkerState:
    """One worker's held connection, counts, and claim spares (see `SqliteVerbs`)."""

    def __init__(self, held: HeldConnection, counters: Counters) -> None:
        self.held = held
        self.counters = counters
        #: SQLite: runnable jobs a claim decodes beyond those it wants, as many as the last
        #: claim found taken
        self.claim_spare = 0
