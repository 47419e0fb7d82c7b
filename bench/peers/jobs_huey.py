"""huey's instance and tasks for the bench: `huey_consumer bench.peers.jobs_huey.huey` runs them.

RedisHuey on BENCH_PEER_URL (set by bench.peers.until_done); `make(url)` builds the same instance
and tasks for a filling process (huey names a task by its module and function, so the consumer
finds the tasks the filler enqueued).
"""

from __future__ import annotations

import os

from huey import RedisHuey
from huey.api import TaskWrapper

from bench.stamps import stamp as _stamp

#: huey's instance name: the queue is the Redis list huey.redis.<NAME>
NAME = "bench"


def make(url: str) -> tuple[RedisHuey, TaskWrapper, TaskWrapper]:
    # results=False: a no-op returns nothing to keep, so no result store is written or read
    huey = RedisHuey(NAME, url=url, results=False)

    @huey.task(name="noop")
    def noop(i: int) -> None:
        pass

    @huey.task(name="stamp")
    def stamp(path: str) -> None:
        _stamp(path)

    return huey, noop, stamp


huey, noop, stamp = make(os.environ.get("BENCH_PEER_URL", "redis://127.0.0.1:6379/0"))
