"""huey's instance and tasks for the bench: `huey_consumer bench.peers.jobs_huey.huey` runs them.

RedisHuey on BENCH_PEER_URL (set by bench.peers._until_done); `make(url)` builds the same instance
and tasks for a filling process. The tasks are named explicitly, so the consumer finds the tasks
the filler enqueued whatever module name each process imported them under.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from huey import RedisHuey

from bench import stamps

#: huey's instance name: the queue is the Redis list huey.redis.<NAME>
NAME = "bench"


def noop(i: int) -> None:
    """Does nothing: the cost measured is the queue's."""


def stamp(path: str) -> None:
    stamps.stamp(path)


class BenchHuey(NamedTuple):
    huey: RedisHuey
    #: huey TaskWrappers (huey ships no type information): calling one enqueues, `.map` enqueues many
    noop: Any
    stamp: Any


def make(url: str) -> BenchHuey:
    # results=False: a no-op returns nothing to keep, so no result store is written or read
    instance = RedisHuey(NAME, url=url, results=False)
    return BenchHuey(instance, instance.task(name="noop")(noop), instance.task(name="stamp")(stamp))


huey = make(os.environ.get("BENCH_PEER_URL", "redis://127.0.0.1:6379/0")).huey
