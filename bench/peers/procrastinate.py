"""procrastinate on PostgreSQL: its own worker (`App.run_worker`), one job at a time per process.

Settings: `wait=False` (procrastinate's documented way for a worker to stop once it has caught up
with the queues), `concurrency=1` (one job at a time, as each `qadmin worker` process), and
`listen_notify=False` (a worker that stops when the queue is empty never waits for a NOTIFY, so the
LISTEN connection would be idle). Jobs stay in `procrastinate_jobs` as 'succeeded' (its default
`delete_jobs="never"`), as qadmin keeps a finished row. Its schema is applied by the fill the first
time, then its tables are truncated for every cell.
"""

from __future__ import annotations

import asyncio
import sys
from importlib import metadata

from bench.common import Skip
from bench.peers import Peer
from bench.stamps import STAMPS_PER_END


def need() -> None:
    try:
        import procrastinate  # noqa: F401
    except ImportError as exc:
        raise Skip("PyPI procrastinate is not installed") from exc


def conninfo(url: str) -> str:
    """libpq's URL form of the SQLAlchemy URL the bench passes."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def fill(url: str, n: int, stamp_path: str) -> None:
    import psycopg
    from procrastinate.types import JSONDict

    from bench.peers.jobs_procrastinate import make_app

    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        installed = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
        if installed and installed[0]:
            conn.execute(
                "TRUNCATE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, "
                "procrastinate_workers RESTART IDENTITY"
            )
    app = make_app(conninfo(url))
    k = min(STAMPS_PER_END, max(n // 10, 1))

    async def defer() -> None:
        async with app.open_async():
            if not (installed and installed[0]):
                await app.schema_manager.apply_schema_async()
            # fetched by priority, then id: deferring in this order keeps the stamps at both ends
            stamp: list[JSONDict] = [{"path": stamp_path}] * k
            await app.tasks["stamp"].batch_defer_async(*stamp)
            for start in range(0, n - 2 * k, 5000):
                noops: list[JSONDict] = [{"i": i} for i in range(start, min(start + 5000, n - 2 * k))]
                await app.tasks["noop"].batch_defer_async(*noops)
            await app.tasks["stamp"].batch_defer_async(*stamp)

    asyncio.run(defer())


def commands(url: str, processes: int) -> list[list[str]]:
    return [[sys.executable, "-m", "bench.peers.jobs_procrastinate", conninfo(url)] for _ in range(processes)]


def remaining(url: str) -> int:
    import psycopg

    with psycopg.connect(conninfo(url)) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')").fetchone()
    return int(row[0]) if row else 0


def version() -> str:
    return f"procrastinate {metadata.version('procrastinate')}, psycopg {metadata.version('psycopg')}"


PEERS = [
    Peer(
        name="procrastinate",
        backend="postgresql",
        guarantee="rerun only if something retries stalled jobs: the job stays 'doing' after a SIGKILL until "
        "the documented periodic task (JobManager.get_stalled_jobs: no worker heartbeat for 30 s, then "
        "retry_job) gives it back; without it, it is never run again",
        settings="App.run_worker(wait=False, concurrency=1, listen_notify=False), delete_jobs='never' "
        "(default), psycopg pool defaults; one job per fetch",
        need=need,
        fill=fill,
        commands=commands,
        remaining=remaining,
    )
]
