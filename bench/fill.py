"""Big queues, fast: N jobs written straight in the formats the backends write, and put back after
a verb changed them.

SQL rows go in the delayed_job layout qadmin creates (handler = `json_codec.encode`, the encoder
the SQL backend uses; naive UTC timestamps as SQLAlchemy writes them), with explicit ids so that
any range can be deleted and written again; indexes are dropped during the load and rebuilt after
(then ANALYZE), as a bulk import would. Redis gets Resque's layout (docs/compatibility.md §1):
`queue:Q` lists, the `failed` list of failure entries, and dead workers holding a job in
`worker:ID`.

Layout of N jobs (ids 1..N): the first 10% failed, then 0.1% locked by dead workers (stale), then 1%
scheduled (SQL only), the rest pending. Every 10,000th job is of a rare class; N/10,000 pending jobs
are `Newsletter(7, "weekly")` on `mailers`, the target of the dequeue verb.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from qadmin.codecs import json_codec

QUEUES = ("mailers", "billing", "reports", "images", "default")
CLASSES = tuple(
    f"app.jobs.{n}"
    for n in (
        "SendEmail",
        "ChargeCard",
        "ResizeImage",
        "SyncInventory",
        "GenerateReport",
        "ExportBatch",
        "IndexDocument",
        "Newsletter",
    )
)
RARE_CLASS = "app.jobs.AuditTrail"
DEQUEUE = ("mailers", "app.jobs.Newsletter", [7, "weekly"])
ERRORS = (
    "RuntimeError: export batch lost its connection",
    "PaymentDeclined: card declined: insufficient funds",
    "ConnectionError: inventory service timed out",
    "ValueError: invalid recipient address 'bob'",
    "KeyError: 'sku'",
)
TRACE = "".join(
    f'  File "/srv/app/jobs/module{n}.py", line {10 * n}, in perform\n    step_{n}(payload)\n' for n in range(4)
)
DEAD_OWNER = "host:bench-dead-host pid:999999"
COLUMNS = (
    "id",
    "priority",
    "attempts",
    "handler",
    "last_error",
    "run_at",
    "locked_at",
    "failed_at",
    "locked_by",
    "queue",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class Layout:
    n: int
    now: datetime

    @property
    def failed(self) -> range:
        return range(1, self.n // 10 + 1)

    @property
    def stale(self) -> range:
        start = self.failed.stop
        return range(start, start + max(self.n // 1000, 1))

    @property
    def scheduled(self) -> range:
        start = self.stale.stop
        return range(start, start + self.n // 100)

    @property
    def pending(self) -> range:
        return range(self.scheduled.stop, self.n + 1)

    @property
    def dequeue_ids(self) -> list[int]:
        k = max(self.n // 10000, 1)
        step = max(len(self.pending) // k, 1)
        return [self.pending.start + j * step for j in range(k)]


def job(i: int, layout: Layout) -> tuple[str, str, list[Any]]:
    """(queue, class, args) of job i."""
    if i in _dequeue_set(layout):
        return DEQUEUE[0], DEQUEUE[1], list(DEQUEUE[2])
    cls = RARE_CLASS if i % 10000 == 9999 else CLASSES[i % len(CLASSES)]
    return QUEUES[i % len(QUEUES)], cls, [i, f"item-{i % 1000}"]


_dq_cache: dict[Layout, frozenset[int]] = {}


def _dequeue_set(layout: Layout) -> frozenset[int]:
    if layout not in _dq_cache:
        _dq_cache[layout] = frozenset(layout.dequeue_ids)
    return _dq_cache[layout]


def _ts(moment: datetime | None) -> Any:
    return None if moment is None else moment.replace(tzinfo=None)


def sql_row(i: int, layout: Layout) -> tuple:
    queue, cls, args = job(i, layout)
    now = layout.now
    created = now - timedelta(days=2) + timedelta(milliseconds=i)
    run_at, locked_at, failed_at, locked_by, last_error, attempts = created, None, None, None, None, 0
    if i in layout.failed:
        failed_at = now - timedelta(days=1) + timedelta(milliseconds=i)
        last_error = f"{ERRORS[i % len(ERRORS)]}\n{TRACE}"
        attempts = 25
    elif i in layout.stale:
        locked_at, locked_by = now - timedelta(hours=5), DEAD_OWNER
    elif i in layout.scheduled:
        run_at = now + timedelta(hours=1, seconds=i)
    return (
        i,
        i % 3,
        attempts,
        json_codec.encode(cls, args),
        last_error,
        _ts(run_at),
        _ts(locked_at),
        _ts(failed_at),
        locked_by,
        queue,
        _ts(created),
        _ts(created),
    )


def sql_rows(ids: Iterable[int], layout: Layout) -> Iterator[tuple]:
    return (sql_row(i, layout) for i in ids)


# --- SQL --------------------------------------------------------------------------------------
def _sqlite_text(row: tuple) -> tuple:
    return tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in row)


class SqlFill:
    """N jobs in a SQL database (created by `qadmin init`), and their restoration."""

    def __init__(self, url: str, layout: Layout) -> None:
        from bench.common import reset_sql

        self.url = url
        self.layout = layout
        self.sqlite = url.startswith("sqlite")
        reset_sql(url)

    def _connect(self) -> Any:
        if self.sqlite:
            import sqlite3

            conn = sqlite3.connect(self.url.split("sqlite:///", 1)[1], isolation_level=None, timeout=60)
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        import psycopg

        return psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)

    def _indexes(self, conn: Any) -> list[tuple[str, str]]:
        if self.sqlite:
            return conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                "tbl_name = 'delayed_jobs' AND sql IS NOT NULL"
            ).fetchall()
        return conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'delayed_jobs' AND indexname NOT LIKE '%pkey'"
        ).fetchall()

    def _insert(self, conn: Any, rows: Iterable[tuple]) -> None:
        if self.sqlite:
            conn.execute("BEGIN")
            conn.executemany(
                f"INSERT INTO delayed_jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                (_sqlite_text(r) for r in rows),
            )
            conn.execute("COMMIT")
            return
        with conn.cursor().copy(f"COPY delayed_jobs ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def load(self) -> None:
        conn = self._connect()
        try:
            indexes = self._indexes(conn)
            for name, _sql in indexes:
                conn.execute(f"DROP INDEX {name}")
            self._insert(conn, sql_rows(range(1, self.layout.n + 1), self.layout))
            for _name, sql in indexes:
                conn.execute(sql)
            if not self.sqlite:
                conn.execute(f"SELECT setval(pg_get_serial_sequence('delayed_jobs', 'id'), {self.layout.n})")
            conn.execute("ANALYZE")
        finally:
            conn.close()

    def restore(self, ids: Iterable[int]) -> None:
        """Write these jobs back as the fill wrote them (and forget the audit trail of the verb)."""
        ids = sorted(set(ids))
        conn = self._connect()
        try:
            if not self.sqlite:
                conn.execute("BEGIN")
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                if chunk == list(range(chunk[0], chunk[-1] + 1)):
                    conn.execute(f"DELETE FROM delayed_jobs WHERE id BETWEEN {chunk[0]} AND {chunk[-1]}")
                else:
                    conn.execute(f"DELETE FROM delayed_jobs WHERE id IN ({', '.join(map(str, chunk))})")
            for table in ("qadmin_audit_jobs", "qadmin_audit"):
                conn.execute(f"DELETE FROM {table}")
            if not self.sqlite:
                conn.execute("COMMIT")
            self._insert(conn, sql_rows(ids, self.layout))
        finally:
            conn.close()


# --- Redis (Resque layout) --------------------------------------------------------------------
def _resque_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y/%m/%d %H:%M:%S UTC")


class RedisFill:
    """N jobs in Resque's key layout under `resque:`; `restore()` puts every key back as loaded."""

    def __init__(self, url: str, layout: Layout, ns: str = "resque") -> None:
        import redis

        self.r = redis.Redis.from_url(url)
        self.layout = layout
        self.ns = ns
        self._snapshot: dict[bytes, bytes] = {}
        self.r.flushdb()

    def load(self) -> None:
        layout, ns, r = self.layout, self.ns, self.r
        pipe = r.pipeline(transaction=False)
        for i in range(1, layout.n + 1):
            queue, cls, args = job(i, layout)
            payload = json_codec.encode(cls, args)
            if i in layout.failed:
                error = ERRORS[i % len(ERRORS)]
                exc, _, message = error.partition(": ")
                entry = {
                    "failed_at": _resque_time(layout.now - timedelta(days=1, milliseconds=-i)),
                    "payload": json.loads(payload),
                    "exception": exc,
                    "error": message,
                    "backtrace": [line.strip() for line in TRACE.splitlines()[::2]],
                    "worker": f"bench-host:{1000 + i % 7}:{queue}",
                    "queue": queue,
                }
                pipe.rpush(f"{ns}:failed", json_codec.dumps(entry))
            elif i in layout.stale:
                worker = f"bench-dead-host:{100000 + i}:{queue}"
                started = layout.now - timedelta(hours=5)
                pipe.sadd(f"{ns}:workers", worker)
                pipe.set(
                    f"{ns}:worker:{worker}",
                    json_codec.dumps(
                        {
                            "queue": queue,
                            "run_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "payload": json.loads(payload),
                        }
                    ),
                )
                pipe.set(f"{ns}:worker:{worker}:started", started.strftime("%Y-%m-%d %H:%M:%S +0000"))
                pipe.hset(f"{ns}:workers:heartbeat", worker, started.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
            else:  # scheduled jobs are SQL only here: pending in Redis
                pipe.rpush(f"{ns}:queue:{queue}", payload)
            if i % 10000 == 0:
                pipe.execute()
        pipe.sadd(f"{ns}:queues", *QUEUES)
        pipe.set(f"{ns}:stat:processed", layout.n * 3)
        pipe.set(f"{ns}:stat:failed", len(layout.failed))
        pipe.execute()
        self.snapshot()

    def snapshot(self) -> None:
        keys = list(self.r.scan_iter(count=10000))
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            pipe.dump(key)
        self._snapshot = dict(zip(keys, pipe.execute()))

    def restore(self, _ids: Iterable[int] = ()) -> None:
        self.r.flushdb()
        pipe = self.r.pipeline(transaction=False)
        for n, (key, value) in enumerate(self._snapshot.items()):
            pipe.restore(key, 0, value, replace=True)
            if n % 1000 == 999:
                pipe.execute()
        pipe.execute()


# --- RQ: failed jobs as RQ writes them --------------------------------------------------------
def fill_rq_failed(url: str, n: int, queue: str = "default") -> None:
    """n failed RQ jobs: one really failed by RQ's own worker, then cloned key for key."""
    import uuid

    import redis
    from rq import Queue
    from rq.registry import FailedJobRegistry

    from bench.rq_peer import SimpleWorker
    from bench.stamps import boom

    conn = redis.Redis.from_url(url)
    q = Queue(queue, connection=conn)
    model = q.enqueue(boom, 1)
    quiet = logging.getLogger("rq.worker")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the model job's traceback is expected
    try:
        SimpleWorker([q], connection=conn).work(burst=True, logging_level="CRITICAL")
    finally:
        quiet.setLevel(level)
    registry = FailedJobRegistry(queue, connection=conn)
    score = conn.zscore(registry.key, model.id)
    fields = conn.hgetall(f"rq:job:{model.id}")
    if score is None or not fields:
        raise RuntimeError("RQ did not record the model failed job")
    pipe = conn.pipeline(transaction=False)
    for i in range(n - 1):
        job_id = str(uuid.UUID(int=i + 1))
        pipe.hset(f"rq:job:{job_id}", mapping=fields)
        pipe.zadd(registry.key, {job_id: score})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
