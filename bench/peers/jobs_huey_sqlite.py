"""huey's side of bench/peers/huey_sqlite.py: a SqliteHuey, the two bench tasks, and its consumer's worker.

    python -m bench.peers.jobs_huey_sqlite FILE      one worker process: runs until the queue is empty

The worker is huey's own `huey.consumer.Worker` (what `huey_consumer -w 1` runs in its one worker),
stepped until a dequeue finds the queue empty: huey's consumer has no burst mode. huey names a
task after its function's module: the worker imports this module by its name (not as `__main__`)
so that its tasks are named as the fill's.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from typing import Any, NamedTuple

from huey import SqliteHuey
from huey.consumer import Worker
from huey.storage import SqliteStorage

from bench import stamps


class NormalSyncStorage(SqliteStorage):  # type: ignore[misc]  # huey ships no type information
    """huey's SqliteStorage with `synchronous=NORMAL` on its connection, as qadmin sets on each of its
    own: its `fsync` option offers only OFF (fsync=False) or FULL (fsync=True)."""

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


class NormalSyncHuey(SqliteHuey):  # type: ignore[misc]
    storage_class = NormalSyncStorage


def noop(i: int) -> None:
    """Does nothing: the cost measured is the queue's."""


def stamp(path: str) -> None:
    stamps.stamp(path)


class BenchHuey(NamedTuple):
    huey: NormalSyncHuey
    #: huey TaskWrappers: `.s(*args)` builds a task message without enqueuing it
    noop: Any
    stamp: Any


def make_huey(filename: str) -> BenchHuey:
    huey = NormalSyncHuey("bench", filename=filename)
    return BenchHuey(huey, huey.task(name="noop")(noop), huey.task(name="stamp")(stamp))


#: huey_consumer's defaults: -d 0.1 (first idle poll), -m 10 (longest), -b 1.15 (backoff)
DEFAULT_DELAY, MAX_DELAY, BACKOFF = 0.1, 10.0, 1.15


def work(filename: str) -> None:
    huey = make_huey(filename).huey
    worker = Worker(huey, threading.Event(), DEFAULT_DELAY, MAX_DELAY, BACKOFF)
    worker.initialize()
    try:
        while True:
            before = worker.task_count
            worker.loop()
            if worker.task_count == before:  # the dequeue found nothing: the queue is drained
                break
    finally:
        worker.shutdown()


if __name__ == "__main__":
    from bench.peers.jobs_huey_sqlite import work as imported_work

    imported_work(sys.argv[1])
