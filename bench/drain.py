"""One throughput cell: fill a queue (not timed), let real worker processes drain it, time it by stamps.

Shared by bench/worker_throughput.py (qadmin, the floors, RQ) and bench/peer_bench.py (the peers of
bench/peers/), so that every system is measured the same way:

* the queue is filled before the clock starts; the rate is counted from the first stamp job's start
  to the last one's end (bench/stamps.py), so neither the fill nor process start-up is timed;
* the worker processes' CPU (user + sys, RUSAGE_CHILDREN) is divided by the jobs run: far less
  sensitive to other load on a shared machine than the rate (the servers' own CPU is not in it);
* a cell whose workers exited with jobs still waiting is an error, never a figure;
* an SQLite cell gets a fresh file every time, so no bloat is carried from cell to cell.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Cell, Servers, child_env, run_processes
from bench.peers import Peer
from bench.stamps import span


@dataclass(frozen=True)
class Drain:
    """What a cell does, given the URL of its server (a fresh SQLite file for SQLite)."""

    #: (url, n, stamp_path): put n jobs on the queue, stamp jobs at both ends; not timed
    fill: Callable[[str, int, str], None]
    #: (url): the worker command lines, started together, each exiting once the queue is empty
    commands: Callable[[str], list[list[str]]]
    #: (url): jobs still waiting after the workers exited
    remaining: Callable[[str], int]
    #: (url): empties the server before the fill (the fill may do it itself)
    reset: Callable[[str], None] | None = None
    #: environment of the worker processes beyond bench.common.child_env()
    env: dict[str, str] = field(default_factory=dict)


class Drainer:
    def __init__(self, servers: Servers, subdir: str = "throughput") -> None:
        self.servers = servers
        self.work = servers.tmp / subdir
        self.work.mkdir(exist_ok=True)
        self.counter = 0
        #: CPU milliseconds the worker processes spent per job, by cell name, one value per round
        self.cpu_ms: dict[str, list[float]] = {}

    def url(self, kind: str, database: str) -> str:
        if kind == "sqlite":
            return self.servers.sqlite_url(f"{database}{self.counter}")
        return self.servers.url(kind, database)

    def measure(self, name: str, kind: str, n: int, drain: Drain, database: str) -> float:
        """Jobs per second of one drain of n jobs."""
        self.counter += 1
        url = self.url(kind, database)
        if drain.reset is not None:
            drain.reset(url)
        stamp_path = str(self.work / f"stamps{self.counter}")
        Path(stamp_path).unlink(missing_ok=True)  # stamps appended by another run would widen the span
        drain.fill(url, n, stamp_path)
        log = self.work / f"{self.counter}.log"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run_processes(drain.commands(url), timeout=max(120.0, n / 50), log_path=log, env=child_env(**drain.env))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        self.cpu_ms.setdefault(name, []).append(cpu * 1000 / n)
        left = drain.remaining(url)
        if left:
            raise RuntimeError(f"{left} jobs were left in the queue (log: {log})")
        first, last, _count = span(stamp_path)
        if kind == "sqlite":
            path = Path(url.split("sqlite:///", 1)[1])
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return (n - 1) / (last - first)

    def drain_cell(
        self,
        name: str,
        kind: str,
        n: int,
        drain: Drain,
        *,
        database: str = "bench_worker",
        ref: str | None = None,
        prepare: Callable[[], None] | None = None,
        note: str = "",
    ) -> Cell:
        def run() -> float:
            if prepare:
                prepare()
            return self.measure(name, kind, n, drain, database)

        return Cell(name, run, ref=ref, note=note)

    def peer_cell(
        self, name: str, peer: Peer, processes: int, n: int, *, ref: str | None = None, note: str = ""
    ) -> Cell:
        """A peer of bench/peers/ with `processes` worker processes; skipped with its reason when
        `peer.need()` says it is not installed here."""
        drain = Drain(
            fill=peer.fill,
            commands=lambda url: peer.commands(url, processes),
            remaining=peer.remaining,
            reset=flush_redis if peer.backend == "redis" else None,
            env=peer.env,
        )
        # each PostgreSQL peer in its own database: the fill may create and truncate its tables freely
        database = "peer_" + "".join(c if c.isalnum() else "_" for c in peer.name.lower())
        return self.drain_cell(name, peer.backend, n, drain, database=database, ref=ref, prepare=peer.need, note=note)


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()
