"""pgqueuer's side of bench/peers/pgqueuer.py: the two bench entrypoints and the worker.

python -m bench.peers.jobs_pgqueuer DSN BATCH      one worker process, drained then exits
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.domain.types import QueueExecutionMode
from pgqueuer.models import Job

from bench import stamps


async def work(dsn: str, batch: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        pgq = PgQueuer.from_asyncpg_connection(conn)

        @pgq.entrypoint("noop")
        async def noop(job: Job) -> None:
            """Does nothing: the cost measured is the queue's."""

        @pgq.entrypoint("stamp")
        async def stamp(job: Job) -> None:
            stamps.stamp((job.payload or b"").decode())

        # drain: pgqueuer's own mode for a worker that exits once the queue is empty
        await pgq.run(batch_size=batch, mode=QueueExecutionMode.drain)
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(work(sys.argv[1], int(sys.argv[2])))
