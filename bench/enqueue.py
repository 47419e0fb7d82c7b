"""Enqueue rate: one job per call and batched, qadmin on each backend against RQ.

    python -m bench.enqueue [--jobs 2000] [--batch 1000] [--repeats 3] [--quick]

One at a time: `Client.enqueue(noop, i)` against RQ's `Queue.enqueue(noop, i)`. Batched: the same jobs
in calls of `--batch` jobs, `Client.enqueue_many` against RQ's `Queue.enqueue_many` (which pipelines).
The client runs in this process; the queue is emptied (not timed) before each cell.
"""

from __future__ import annotations

import sys
import time

from bench.common import (
    Cell,
    Servers,
    Skip,
    backends_arg,
    base_parser,
    interleave,
    machine,
    progress,
    redis_backend_ready,
    reset,
    table,
    write_json,
)

NOOP = "qadmin.examples.noop"


def qadmin_cell(name: str, servers: Servers, kind: str, n: int, batch: int | None, ref: str | None) -> Cell:
    def run() -> float:
        if kind == "redis":
            redis_backend_ready()
        from qadmin.backends import BackendOptions, open_backend
        from qadmin.client import Client

        url = servers.url(kind, "bench_enqueue")
        reset(kind, url)
        client = Client(open_backend(url, BackendOptions()))
        try:
            client.enqueue(NOOP, -1)  # connect, reflect the table: not part of the rate
            started = time.perf_counter()
            if batch is None:
                for i in range(n):
                    client.enqueue(NOOP, i)
            else:
                for start in range(0, n, batch):
                    client.enqueue_many([Client.build(NOOP, (i,)) for i in range(start, min(start + batch, n))])
            elapsed = time.perf_counter() - started
        finally:
            client.close()
        return n / elapsed

    return Cell(name, run, ref=ref)


def rq_cell(name: str, servers: Servers, n: int, batch: int | None, ref: str | None, note: str = "") -> Cell:
    def run() -> float:
        try:
            import redis
            from rq import Queue
        except ImportError as exc:
            raise Skip("PyPI rq is not installed") from exc
        from qadmin.examples import noop

        url = servers.redis_url()
        reset("redis", url)
        q = Queue("default", connection=redis.Redis.from_url(url))
        q.enqueue(noop, -1)
        started = time.perf_counter()
        if batch is None:
            for i in range(n):
                q.enqueue(noop, i)
        else:
            for start in range(0, n, batch):
                q.enqueue_many([Queue.prepare_data(noop, args=(i,)) for i in range(start, min(start + batch, n))])
        elapsed = time.perf_counter() - started
        return n / elapsed

    return Cell(name, run, ref=ref, note=note)


def build_cells(servers: Servers, backends: list[str], n: int, batch: int) -> list[Cell]:
    cells = [rq_cell("rq enqueue", servers, n, None, None), rq_cell("rq enqueue_many", servers, n * 5, batch, None)]
    for kind in backends:
        cells.append(qadmin_cell(f"qadmin {kind} enqueue", servers, kind, n, None, "rq enqueue"))
        cells.append(qadmin_cell(f"qadmin {kind} enqueue_many", servers, kind, n * 5, batch, "rq enqueue_many"))
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="jobs per one-at-a-time cell (default 2000, --quick 200; batched: 5×)")
    parser.add_argument("--batch", type=int, default=1000, help="jobs per enqueue_many call")
    args = parser.parse_args(argv)
    n = args.jobs or (200 if args.quick else 2000)
    repeats = 1 if args.quick else args.repeats
    started = time.monotonic()
    with Servers() as servers:
        cells = build_cells(servers, backends_arg(args.backends), n, args.batch)
        progress(f"enqueue: {n} jobs one at a time, {n * 5} batched by {args.batch}, {repeats} rounds")
        results = interleave(cells, repeats)
    print(
        table(
            f"Enqueue rate ({n} jobs one at a time, {n * 5} in batches of {args.batch}; {repeats} rounds, interleaved)",
            results,
            extra={
                "targets": "≥ 2× rq enqueue one at a time, ≥ 10× rq enqueue_many batched",
                "machine": machine(),
                "wall time": f"{time.monotonic() - started:.0f} s",
            },
        )
    )
    write_json(args.json, "enqueue", results, jobs=n, batch=args.batch, repeats=repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
