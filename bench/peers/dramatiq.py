"""dramatiq (PyPI `dramatiq[redis]`) with its RedisBroker: the `dramatiq` CLI, one process.

dramatiq has no burst mode: bench.peers._until_done sends the CLI SIGTERM (its graceful stop: the
workers finish and acknowledge the messages in hand, the prefetched ones are requeued) once the
last stamp job has run. Three rows: `--threads 1`, the concurrency qadmin's one-process cell has,
with dramatiq's default prefetch (2 × threads); the same with `dramatiq_queue_prefetch=10`, to set
beside `qadmin worker --prefetch 10`; and `--threads 8`, dramatiq's default, which is what a user
who does not tune it runs (and on a no-op about 8× the rate of `--threads 1` at its default
prefetch: the consumer backs off while its prefetch is in use, so a small prefetch stalls it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench.common import Skip
from bench.peers import Peer
from bench.peers._plan import layout, stamp_count
from bench.peers._until_done import expect

QUEUE = "default"
JOBS = "bench.peers.jobs_dramatiq"

GUARANTEE = (
    "rerun: a fetched message sits in the worker's ack set (dramatiq:__acks__.<worker>.<queue>) until it "
    "is acknowledged after the actor returns; once that worker's heartbeat is older than heartbeat_timeout "
    "(60 s) any other worker's maintenance moves it back to the queue (dramatiq/brokers/redis.py, "
    "redis/dispatch.lua)"
)


def need() -> None:
    try:
        import dramatiq  # noqa: F401
        from dramatiq.brokers.redis import RedisBroker  # noqa: F401
    except ImportError as exc:
        raise Skip("PyPI dramatiq[redis] is not installed") from exc


def fill(url: str, n: int, stamp_path: str) -> None:
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    # the messages as the actors' .message() builds them (bench/peers/jobs_dramatiq.py), enqueued
    # on a broker of this URL (the actors' own broker is configured for the worker process)
    broker = RedisBroker(url=url)  # type: ignore[no-untyped-call]  # its __init__ carries no annotations
    try:
        for i, is_stamp in enumerate(layout(n)):
            actor, args = ("stamp", (stamp_path,)) if is_stamp else ("noop", (i,))
            broker.enqueue(Message(queue_name=QUEUE, actor_name=actor, args=args, kwargs={}, options={}))
    finally:
        broker.close()
    expect(url, stamp_path, stamp_count(n))


def remaining(url: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).llen(f"dramatiq:{QUEUE}"))


def commands_for(threads: int) -> Callable[[str, int], list[list[str]]]:
    def commands(url: str, processes: int) -> list[list[str]]:
        worker = [
            sys.executable,
            "-m",
            "dramatiq",
            JOBS,
            "--processes",
            str(processes),
            "--threads",
            str(threads),
            "--queues",
            QUEUE,
        ]
        return [[sys.executable, "-m", "bench.peers._until_done", url, "SIGTERM", "--", *worker]]

    return commands


def settings(threads: int, prefetch: int | None = None) -> str:
    how = (
        f"prefetch {prefetch} messages per fetch (env dramatiq_queue_prefetch={prefetch}, documented in "
        "dramatiq/worker.py and the docs' Configuration / Environment variables)"
        if prefetch
        else f"prefetch = 2 × threads = {2 * threads} messages per fetch (dramatiq's documented default)"
    )
    return (
        f"`dramatiq {JOBS} --processes N --threads {threads} --queues {QUEUE}` (`dramatiq --help`), "
        f"RedisBroker with the default middleware, actors with max_retries=0; {how}; stopped with SIGTERM "
        "after the last stamp (no burst mode)"
    )


def peer(name: str, threads: int, prefetch: int | None = None, note: str = "") -> Peer:
    return Peer(
        name=name,
        backend="redis",
        guarantee=GUARANTEE,
        settings=settings(threads, prefetch) + note,
        need=need,
        fill=fill,
        commands=commands_for(threads),
        remaining=remaining,
        batch=prefetch or 2 * threads,
        env={"dramatiq_queue_prefetch": str(prefetch)} if prefetch else {},
    )


PEERS = [
    peer("dramatiq --threads 1", 1),
    peer("dramatiq --threads 1 prefetch 10", 1, 10),
    peer("dramatiq --threads 8", 8, note="; dramatiq's default thread count, what an untuned worker runs"),
]
