"""arq's functions and worker for the bench; run by the arq venv's python (bench/peers/arq.py).

    python -m bench.peers.jobs_arq fill URL N STAMP_PATH
    python -m bench.peers.jobs_arq work URL MAX_JOBS POLL_DELAY

Only the standard library, arq and bench.stamps are imported: arq pins redis-py below qadmin's, so
it lives in its own virtualenv, where qadmin is not installed.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

# arq is only in its own venv (it pins redis-py < 6): mypy, run from qadmin's python, cannot see it
from arq import create_pool  # type: ignore[import-not-found]
from arq.connections import RedisSettings  # type: ignore[import-not-found]
from arq.worker import Worker, func  # type: ignore[import-not-found]

from bench.peers._plan import layout
from bench.stamps import stamp as _stamp

#: arq's default queue: a sorted set scored by the time a job may run
QUEUE = "arq:queue"
#: fill's concurrent enqueue_job calls (each is a WATCH/MULTI transaction of its own)
FILL_CONCURRENCY = 50


async def noop(ctx: dict[str, Any], i: int) -> None:
    pass


async def stamp(ctx: dict[str, Any], path: str) -> None:
    _stamp(path)


# keep_result=0: a no-op's result is never read, so none is written
FUNCTIONS = [func(noop, keep_result=0), func(stamp, keep_result=0)]


async def fill(url: str, n: int, stamp_path: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(url))
    plan = layout(n)

    async def put(i: int) -> None:
        # jobs scored in the same millisecond run in job-id order: zero-padded ids keep the plan's order
        if plan[i]:
            await pool.enqueue_job("stamp", stamp_path, _job_id=f"{i:09d}")
        else:
            await pool.enqueue_job("noop", i, _job_id=f"{i:09d}")

    k = plan.index(False) if False in plan else len(plan)
    # the stamps at each end are put alone, so no no-op is scored before the first or after the last
    groups = [range(0, k), range(k, n - k), range(n - k, n)]
    for group in groups:
        for start in range(group.start, group.stop, FILL_CONCURRENCY):
            await asyncio.gather(*(put(i) for i in range(start, min(start + FILL_CONCURRENCY, group.stop))))
    await pool.aclose()


def work(url: str, max_jobs: int, poll_delay: float) -> None:
    worker = Worker(
        functions=FUNCTIONS,
        redis_settings=RedisSettings.from_dsn(url),
        burst=True,
        max_jobs=max_jobs,
        poll_delay=poll_delay,
        handle_signals=True,
    )
    worker.run()  # returns once the queue is empty (burst) and closes its connections


def main(argv: list[str]) -> int:
    if argv[:1] == ["fill"]:
        asyncio.run(fill(argv[1], int(argv[2]), argv[3]))
        return 0
    if argv[:1] == ["work"]:
        work(argv[1], int(argv[2]), float(argv[3]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
