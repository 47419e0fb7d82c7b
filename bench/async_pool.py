"""Jobs that wait on I/O: the async pool against worker processes.

    python -m bench.async_pool [--jobs 200] [--wait 0.5] [--slots 50] [--processes 2]
                               [--backends sqlite,postgresql,redis] [--repeats 3] [--quick]

Each cell fills its queue (not timed) with `--jobs` `async def` jobs that each `await
asyncio.sleep(--wait)` (an HTTP call, a query: time spent waiting, not computing), then times
`qadmin worker --burst` from its start to its exit: `--pool async --concurrency SLOTS` (one
process, one event loop) against `--pool process --concurrency PROCESSES` (the reference: there,
each process runs one job at a time, its coroutine on an event loop of its own). Process start-up
is counted in both. The figure is jobs per second over the whole run.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Cell, Servers, backends_arg, base_parser, child_env, interleave, machine, progress
from bench.common import reset as reset_backend
from bench.common import table as results_table

ROOT = Path(__file__).resolve().parent.parent
NAP = "bench.async_pool.nap"


async def nap(seconds: float) -> None:
    """The job: waits, as a call to another service would."""
    await asyncio.sleep(seconds)


def fill(url: str, jobs: int, wait: float) -> None:
    from qadmin.backends import BackendOptions, open_backend
    from qadmin.client import Client
    from qadmin.job import NewJob

    client = Client(open_backend(url, BackendOptions()))
    try:
        client.enqueue_many(NewJob(NAP, [wait], queue="naps") for _ in range(jobs))
    finally:
        client.close()


def run_worker(url: str, pool: str, concurrency: int, jobs: int, timeout: float) -> float:
    """jobs/s of one burst worker run, start-up included."""
    cmd = [sys.executable, "-m", "qadmin", "--url", url, "worker", "--burst", "--sleep", "0.1", "--queue", "naps"]
    cmd += ["--pool", pool, "--concurrency", str(concurrency), "--import", "bench.async_pool"]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"worker exited with {done.returncode}: {done.stderr.strip().splitlines()[-3:]}")
    return jobs / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="jobs per cell (default 200; --quick 40)")
    parser.add_argument("--wait", type=float, help="seconds each job awaits (default 0.5; --quick 0.1)")
    parser.add_argument("--slots", type=int, default=50, help="the async pool's --concurrency")
    parser.add_argument("--processes", type=int, default=2, help="the process pool's --concurrency")
    args = parser.parse_args(argv)
    jobs = args.jobs or (40 if args.quick else 200)
    wait = args.wait if args.wait is not None else (0.1 if args.quick else 0.5)
    repeats = 1 if args.quick else args.repeats
    # the process pool's run, waits included, and start-up and writes at a generous rate
    timeout = 120 + jobs * wait / max(args.processes, 1) * 3
    started = time.monotonic()
    out: list[str] = []
    with Servers() as servers:
        for kind in backends_arg(args.backends):
            cells: list[Cell] = []
            reference = f"{kind} process ×{args.processes}"
            for pool, concurrency, name in (
                ("process", args.processes, reference),
                ("async", args.slots, f"{kind} async ×{args.slots}"),
            ):

                def run(kind: str = kind, pool: str = pool, concurrency: int = concurrency) -> float:
                    url = servers.url(kind, "bench_async_pool")
                    reset_backend(kind, url)
                    fill(url, jobs, wait)
                    return run_worker(url, pool, concurrency, jobs, timeout)

                cells.append(Cell(name, run, ref=None if pool == "process" else reference))
            progress(f"async pool: {kind}, {jobs} jobs awaiting {wait:g} s each")
            results = interleave(cells, repeats)
            out.append(results_table(f"{jobs} jobs awaiting {wait:g} s each, {kind}", results))
    print("\n".join(out))
    print(f"* machine: {machine()}\n* wall time: {time.monotonic() - started:.0f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
