"""huey with its SQLite storage (SqliteHuey): its consumer's worker, one per process.

Settings: huey_consumer's worker (`-w 1`, the default) with its default polling (0.1 s first idle
wait, backoff 1.15, 10 s longest), stepped until the queue is empty (bench/peers/jobs_huey_sqlite.py);
SqliteHuey's defaults (WAL, 8 MB cache, 5 s busy timeout, results stored but a task returning None
stores nothing) and `synchronous=NORMAL` set on its connection, as qadmin sets it, so that
durability is equal (huey's own `fsync` option gives OFF or FULL only).
"""

from __future__ import annotations

import sqlite3
import sys
from importlib import metadata

from bench.common import Skip
from bench.peers import Peer
from bench.stamps import STAMPS_PER_END


def need() -> None:
    try:
        import huey  # noqa: F401
    except ImportError as exc:
        raise Skip("PyPI huey is not installed") from exc


def path_of(url: str) -> str:
    return url.split("sqlite:///", 1)[1]


def fill(url: str, n: int, stamp_path: str) -> None:
    from bench.peers.jobs_huey_sqlite import make_huey

    bench_huey = make_huey(path_of(url))
    huey = bench_huey.huey
    k = min(STAMPS_PER_END, max(n // 10, 1))
    # dequeued by priority, then id: enqueued in this order, the stamps stay at both ends; one
    # transaction for the whole fill (huey's own enqueue commits each task)
    stamp = huey.serialize_task(bench_huey.stamp.s(stamp_path))
    messages = [stamp] * k + [huey.serialize_task(bench_huey.noop.s(i)) for i in range(n - 2 * k)] + [stamp] * k
    huey.storage.flush_queue()  # creates its tables
    conn = sqlite3.connect(path_of(url))
    try:
        with conn:
            conn.executemany(
                "INSERT INTO task (queue, data, priority) VALUES (?, ?, 0)", [(huey.name, m) for m in messages]
            )
    finally:
        conn.close()
    huey.storage.close()


def commands(url: str, processes: int) -> list[list[str]]:
    return [[sys.executable, "-m", "bench.peers.jobs_huey_sqlite", path_of(url)] for _ in range(processes)]


def remaining(url: str) -> int:
    conn = sqlite3.connect(path_of(url))
    try:
        return int(conn.execute("SELECT count(*) FROM task").fetchone()[0])
    finally:
        conn.close()


def version() -> str:
    return f"huey {metadata.version('huey')} (SqliteHuey), SQLite {sqlite3.sqlite_version}"


PEERS = [
    Peer(
        name="huey SqliteHuey",
        backend="sqlite",
        guarantee="lost: a dequeue deletes the task row in the same transaction that reads it, so a job "
        "killed mid-run is gone (huey has no acknowledgement)",
        settings="huey_consumer's Worker (-w 1, default polling) stepped until the queue is empty; "
        "SqliteHuey defaults (WAL, cache 8 MB, timeout 5 s), synchronous=NORMAL as qadmin's; one task per dequeue",
        need=need,
        fill=fill,
        commands=commands,
        remaining=remaining,
    )
]
