"""dramatiq's broker and actors for the bench: `dramatiq bench.peers.jobs_dramatiq` runs them.

The broker is dramatiq's RedisBroker on BENCH_PEER_URL (set by bench.peers._until_done, or by the
filling process before it imports this module), with dramatiq's default middleware.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.stamps import stamp as _stamp

QUEUE = "default"

# RedisBroker.__init__ carries no annotations
broker = RedisBroker(url=os.environ.get("BENCH_PEER_URL", "redis://127.0.0.1:6379/0"))  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(i: int) -> None:
    pass


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def stamp(path: str) -> None:
    _stamp(path)
