"""Capacity: CPU per job of the worker processes and of the server, for PostgreSQL and Redis.

    python -m bench.capacity [--jobs 3000] [--repeats 3] [--quick] [--backends postgresql,redis]

Each cell fills its queue with no-op jobs (not timed), runs `qadmin worker --burst --concurrency
P` (P = 1, 2, 4 processes; and 2 with `--prefetch 10`) until the queue is empty, and measures:

* jobs/s, from the first job's start to the last job's end (bench/stamps.py, as
  bench/worker_throughput.py counts them);
* the worker processes' CPU (user + sys, `RUSAGE_CHILDREN`: the supervisor and its children),
  less what the same command costs on an empty queue (start-up and exit), so the figure is the
  cost per job;
* the server's CPU from /proc: redis-server's own utime + stime; for PostgreSQL the postmaster's,
  every live child's (the backends serving the workers, the WAL writer, autovacuum…) and what
  exited children left in the postmaster's cutime + cstime; less the empty queue's run too.

From those: how many jobs per second one core of the server sustains (1000 / server ms per job)
and one core of workers (1000 / worker ms per job). CPU per job is far steadier than a rate on a
shared machine; the rates still move with the load.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    Cell,
    Result,
    Servers,
    Skip,
    backends_arg,
    base_parser,
    fmt,
    interleave,
    machine,
    progress,
    reset,
    run_processes,
    table,
    write_json,
)
from bench.stamps import span
from bench.worker_throughput import fill_qadmin, job_plan, qadmin_cmd, remaining

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (which may hold spaces): [0] is the state."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def own_cpu(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


def tree_cpu(root: int) -> float:
    """CPU seconds of `root`, its live children, and the children it has reaped (cutime + cstime):
    a PostgreSQL server's cost, backends that came and went included."""
    fields = _stat(root)
    total = sum(int(f) for f in fields[11:15]) / TICK
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(int(entry.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(child[1]) == root:
            total += (int(child[11]) + int(child[12])) / TICK
    return total


class Capacity:
    def __init__(self, servers: Servers, jobs: int) -> None:
        self.servers = servers
        self.jobs = jobs
        self._bouncer: Any = None
        self.work = servers.tmp / "capacity"
        self.work.mkdir(exist_ok=True)
        self.counter = 0
        #: ms of CPU per job, by cell: the worker processes' and the server's
        self.worker_ms: dict[str, list[float]] = {}
        self.server_ms: dict[str, list[float]] = {}

    def bouncer(self) -> Any:
        """PgBouncer in transaction mode before the PostgreSQL (tests/pgbouncer.py's), started once."""
        if self._bouncer is None:
            from tests.pgbouncer import PgBouncer, pgbouncer_binary

            binary = pgbouncer_binary()
            if binary is None:
                raise Skip("pgbouncer is not installed (Debian package pgbouncer)")
            base = Path(tempfile.mkdtemp(prefix="qadmin-pgbouncer-bench-"))
            self._bouncer = PgBouncer(binary, self.servers.postgres(), base).start()
        return self._bouncer

    def close(self) -> None:
        if self._bouncer is not None:
            self._bouncer.stop()
            shutil.rmtree(self._bouncer.base, ignore_errors=True)

    def url(self, kind: str) -> str:
        if kind == "unprepared":
            return self.servers.url("postgresql", "bench_capacity") + "?prepare=off"
        if kind == "pgbouncer":
            url = self.servers.url("postgresql", "bench_capacity")
            return str(self.bouncer().url_for(url.rsplit("/", 1)[1]))
        return self.servers.url(kind, "bench_capacity")

    def server_cpu(self, kind: str) -> Callable[[], float]:
        if kind == "redis":
            pid = self.servers.redis().proc.pid
            return lambda: own_cpu(pid)
        pid = self.servers.postgres().proc.pid
        if kind == "pgbouncer":
            bouncer = self.bouncer().proc.pid
            return lambda: tree_cpu(pid) + own_cpu(bouncer)
        return lambda: tree_cpu(pid)

    def cell(self, name: str, kind: str, procs: int, prefetch: int = 1) -> Cell:
        def run() -> float:
            self.counter += 1
            url = self.url(kind)
            # emptied and counted on the server itself
            store = "postgresql" if kind in ("pgbouncer", "unprepared") else kind
            direct = self.servers.url(store, "bench_capacity")
            reset(store, direct)
            stamps = str(self.work / f"stamps{self.counter}")
            server = self.server_cpu(kind)
            command = qadmin_cmd(procs, prefetch)(url)
            log = self.work / f"{self.counter}.log"

            def cpu(jobs: int) -> tuple[float, float]:
                """(worker, server) CPU seconds of one burst run over `jobs` queued jobs."""
                if jobs:
                    fill_qadmin(url, job_plan(jobs, stamps))
                before, server_before = resource.getrusage(resource.RUSAGE_CHILDREN), server()
                run_processes(command, timeout=max(120.0, jobs / 50), log_path=log)
                # the workers' backends end as their clients go: let the postmaster reap them
                time.sleep(0.3)
                after, server_after = resource.getrusage(resource.RUSAGE_CHILDREN), server()
                worker = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                return worker, server_after - server_before

            # start-up and exit alone (an empty queue), taken off: what is left is the cost per job
            idle_worker, idle_server = cpu(0)
            worker, server_s = cpu(self.jobs)
            left = remaining(store, direct)
            if left:
                raise RuntimeError(f"{left} jobs were left in the queue (log: {log})")
            self.worker_ms.setdefault(name, []).append(max(worker - idle_worker, 0.0) * 1000 / self.jobs)
            self.server_ms.setdefault(name, []).append(max(server_s - idle_server, 0.0) * 1000 / self.jobs)
            first, last, _count = span(stamps)
            return (self.jobs - 1) / (last - first)

        note = f"`--prefetch {prefetch}`" if prefetch > 1 else ""
        if kind == "pgbouncer":
            note = "PgBouncer 1.18, transaction mode, URL `?prepare=off`; server CPU = PostgreSQL's + PgBouncer's"
        return Cell(name, run, note=note)


def build_cells(c: Capacity, backends: list[str], processes: list[int]) -> list[Cell]:
    cells = []
    for kind in backends:
        for procs in processes:
            cells.append(c.cell(f"{kind} ×{procs}", kind, procs))
        cells.append(c.cell(f"{kind} ×2 prefetch 10", kind, 2, prefetch=10))
        if kind == "postgresql":
            # what `prepare=off` costs, and the pooler on top of it
            cells.append(c.cell("postgresql prepare=off ×2", "unprepared", 2))
            cells.append(c.cell("postgresql via pgbouncer ×2", "pgbouncer", 2))
    return cells


def capacity_table(c: Capacity, results: list[Result]) -> str:
    lines = [
        "### Capacity: CPU per job of the workers and of the server (median of rounds)",
        "",
        "| cell | jobs/s | worker CPU ms/job | server CPU ms/job | jobs/s per worker core | "
        "jobs/s per server core | worker cores per server core |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.skipped or r.name not in c.worker_ms:
            lines.append(f"| {r.name} | skipped: {r.skipped} | | | | | |")
            continue
        worker = statistics.median(c.worker_ms[r.name])
        server = statistics.median(c.server_ms[r.name])
        # below a clock tick per cell the figure is noise, not a cost
        per_worker = 1000 / worker if worker > 1e-3 else float("nan")
        per_server = 1000 / server if server > 1e-3 else float("nan")
        lines.append(
            f"| {r.name} | {fmt(r.median)} | {fmt(worker)} | {fmt(server)} | {fmt(per_worker)} | "
            f"{fmt(per_server)} | {fmt(worker / server) if server > 1e-3 else '–'} |"
        )
    lines.append(
        "\n* jobs/s per core = 1000 / CPU ms per job: the rate at which one core of the workers, or of "
        "the server, is saturated; worker cores per server core = how many busy worker processes one "
        "server core serves"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(backends="postgresql,redis")
    parser.add_argument("--jobs", type=int, help="jobs per cell (default 3000, --quick 200)")
    parser.add_argument("--processes", default="1,2,4", help="worker process counts (default 1,2,4; --quick 1,2)")
    args = parser.parse_args(argv)
    jobs = args.jobs or (200 if args.quick else 3000)
    repeats = 1 if args.quick else args.repeats
    processes = [int(p) for p in ("1,2" if args.quick else args.processes).split(",")]
    backends = [b for b in backends_arg(args.backends) if b != "sqlite"]  # a file has no server to measure
    started = time.monotonic()
    with Servers() as servers:
        cap = Capacity(servers, jobs)
        try:
            cells = build_cells(cap, backends, processes)
            progress(f"capacity: {jobs} jobs per cell, {repeats} rounds, {len(cells)} cells")
            results = interleave(cells, repeats)
        finally:
            cap.close()
    print(
        table(
            f"Capacity, no-op jobs ({jobs} per cell; {repeats} rounds, interleaved)",
            results,
            extra={"machine": machine(), "wall time": f"{time.monotonic() - started:.0f} s"},
        )
    )
    print(capacity_table(cap, results))
    write_json(
        args.json,
        "capacity",
        results,
        jobs=jobs,
        repeats=repeats,
        worker_ms=cap.worker_ms,
        server_ms=cap.server_ms,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
