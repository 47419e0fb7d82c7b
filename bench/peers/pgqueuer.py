"""pgqueuer on PostgreSQL: its own QueueManager (`PgQueuer.run`) over asyncpg, in drain mode.

Settings: `mode=QueueExecutionMode.drain` (pgqueuer's documented mode for a worker that processes
every job, then shuts down), `batch_size` 1 (one job per dequeue, beside `qadmin worker`) and 10
(beside `qadmin worker --prefetch 10`), every other argument at its default: `durable` tables (all
logged, as qadmin's), a 30 s heartbeat timeout, completions written through its status-log buffer
(flushed at `batch_size` entries or after 0.1 s), async entrypoints run as asyncio tasks. Its
schema is installed by the fill the first time (`Queries.install`), then its tables are truncated
for every cell.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from importlib import metadata

from bench.common import Skip
from bench.peers import Peer
from bench.stamps import STAMPS_PER_END

TABLES = ("pgqueuer", "pgqueuer_log", "pgqueuer_statistics", "pgqueuer_schedules")


def need() -> None:
    try:
        import asyncpg  # noqa: F401
        import pgqueuer  # noqa: F401
    except ImportError as exc:
        raise Skip(f"PyPI {exc.name or 'pgqueuer'} is not installed") from exc


def dsn(url: str) -> str:
    """libpq's URL form of the SQLAlchemy URL the bench passes."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def fill(url: str, n: int, stamp_path: str) -> None:
    import asyncpg
    from pgqueuer.queries import Queries

    k = min(STAMPS_PER_END, max(n // 10, 1))
    # dequeued by priority, then id: this order keeps the stamps at both ends
    plan = [("stamp", stamp_path.encode())] * k + [("noop", str(i).encode()) for i in range(n - 2 * k)]
    plan += [("stamp", stamp_path.encode())] * k

    async def enqueue() -> None:
        conn = await asyncpg.connect(dsn(url))
        try:
            queries = Queries.from_asyncpg_connection(conn)
            if await queries.schema_is_installed():
                await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
            else:
                await queries.install()
            for start in range(0, n, 5000):
                chunk = plan[start : start + 5000]
                await queries.enqueue([e for e, _ in chunk], [p for _, p in chunk], [0] * len(chunk))
        finally:
            await conn.close()

    asyncio.run(enqueue())


def commands_for(batch: int) -> Callable[[str, int], list[list[str]]]:
    def commands(url: str, processes: int) -> list[list[str]]:
        return [[sys.executable, "-m", "bench.peers.jobs_pgqueuer", dsn(url), str(batch)] for _ in range(processes)]

    return commands


def remaining(url: str) -> int:
    import psycopg

    with psycopg.connect(dsn(url)) as conn:
        row = conn.execute("SELECT count(*) FROM pgqueuer").fetchone()
    return int(row[0]) if row else 0


def version() -> str:
    return f"pgqueuer {metadata.version('pgqueuer')}, asyncpg {metadata.version('asyncpg')}"


GUARANTEE = (
    "rerun: the job stays 'picked' with the dead worker's last heartbeat; once that is older than "
    "heartbeat_timeout (30 s) the dequeue query picks it again (jobs run but whose completion was still "
    "in the status-log buffer are rerun too)"
)
PEERS = [
    Peer(
        name=f"pgqueuer batch {batch}",
        backend="postgresql",
        guarantee=GUARANTEE,
        settings=f"PgQueuer.run(batch_size={batch}, mode=drain) over one asyncpg connection; durability "
        "'durable' (default), heartbeat_timeout 30 s, status-log buffer of batch_size (defaults)",
        need=need,
        fill=fill,
        commands=commands_for(batch),
        remaining=remaining,
        batch=batch,
    )
    for batch in (1, 10)
]
