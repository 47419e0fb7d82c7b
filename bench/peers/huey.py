"""huey (PyPI `huey`) with RedisHuey: `huey_consumer -w 1 -k thread`, one process.

RedisHuey is the storage for a no-op: a Redis list, LPUSH to enqueue and BRPOP to dequeue.
PriorityRedisHuey keeps a sorted set (more work per task, for priorities the bench does not use)
and RedisExpireHuey only changes how results expire (a no-op keeps none: results=False).
huey has no burst mode: bench.peers._until_done sends SIGINT, the consumer's graceful stop (it
finishes the running task), once the last stamp job has run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench.common import Skip
from bench.peers import Peer
from bench.peers._plan import layout, stamp_count
from bench.peers._until_done import expect

JOBS = "bench.peers.jobs_huey"

GUARANTEE = (
    "lost: the consumer takes the task off the Redis list with BRPOP (RPOP when not blocking) before it "
    "runs it and keeps no copy, so a task whose worker is SIGKILLed is gone (huey/storage.py "
    "RedisStorage.dequeue; huey's docs: 'Signals' / consumer shutdown)"
)


def need() -> None:
    try:
        import huey  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        raise Skip("PyPI huey is not installed") from exc


def fill(url: str, n: int, stamp_path: str) -> None:
    from bench.peers.jobs_huey import make

    instance, noop, stamp = make(url)
    plan = layout(n)
    k = plan.index(False) if False in plan else len(plan)
    # Task.map is huey's bulk enqueue (one LPUSH per task, in order: the list is FIFO)
    stamp.map([stamp_path] * k)
    noop.map(range(len(plan) - 2 * k))
    stamp.map([stamp_path] * k)
    instance.storage.conn.close()
    expect(url, stamp_path, stamp_count(n))


def remaining(url: str) -> int:
    import redis

    from bench.peers.jobs_huey import NAME

    return int(redis.Redis.from_url(url).llen(f"huey.redis.{NAME}"))


def commands_for(workers: int) -> Callable[[str, int], list[list[str]]]:
    def commands(url: str, processes: int) -> list[list[str]]:
        consumer = [
            sys.executable,
            "-m",
            "huey.bin.huey_consumer",
            f"{JOBS}.huey",
            "--workers",
            str(workers),
            "--worker-type",
            "thread",
            "--no-periodic",
            "--quiet",
        ]
        return [[sys.executable, "-m", "bench.peers._until_done", url, "SIGINT", "--", *consumer]] * processes

    return commands


PEERS = [
    Peer(
        name="huey -w 1 -k thread",
        backend="redis",
        guarantee=GUARANTEE,
        settings=(
            f"`huey_consumer {JOBS}.huey -w 1 -k thread -n -q` (huey docs: Consuming tasks / Options for "
            "the consumer; -n: no periodic-task check), RedisHuey(results=False) with its blocking BRPOP "
            "dequeue (docs: Storage / RedisHuey); enqueued with Task.map; stopped with SIGINT, the "
            "consumer's graceful shutdown, after the last stamp (no burst mode)"
        ),
        need=need,
        fill=fill,
        commands=commands_for(1),
        remaining=remaining,
    ),
]
