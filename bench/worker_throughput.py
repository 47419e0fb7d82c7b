"""Worker throughput on no-op jobs: qadmin against the hand-written floor, RQ and delayed_job.

    python -m bench.worker_throughput [--jobs 3000] [--repeats 3] [--quick]

Every cell fills its queue (not timed), then starts its worker processes, which drain it and exit.
The rate is counted from the first job's start to the last job's end (bench/stamps.py), so process
start-up is not part of it. The jobs are `qadmin.examples.noop` (RQ runs the same function;
delayed_job a Ruby struct whose perform is empty). Cells:

* floor — bench/floors.py: claim, call, acknowledge, by hand, per backend (on PostgreSQL also the
  minimal transaction loop, `postgresql-tx`);
* qadmin — `qadmin worker --burst [--concurrency 2]`, per backend;
* RQ — `rq worker --burst` with `SimpleWorker` (runs jobs in the worker process, as qadmin does)
  and with its default `Worker` (forks a work horse per job), on the same redis-server (both as
  bench/rq_peer.py runs them: a bounded wait at exit);
* delayed_job — the Debian gems' `Delayed::Worker#work_off`, on SQLite with qadmin's settings
  (bench/peers/delayed_job.py, the peer bench/peer_bench.py runs too).

Each cell is bench/drain.py's; bench/peer_bench.py puts qadmin beside the other peers.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import (
    Cell,
    Result,
    Servers,
    backends_arg,
    base_parser,
    fmt,
    interleave,
    machine,
    progress,
    redis_backend_ready,
    reset,
    table,
    write_json,
)
from bench.drain import Drain, Drainer
from bench.peers import delayed_job
from bench.peers import rq as rq_peer
from bench.stamps import STAMPS_PER_END

NOOP = "qadmin.examples.noop"
#: (class, args) of each job of a queue, in queue order
Plan = list[tuple[str, list[Any]]]
#: jobs per claim in the batched-claim cells
PREFETCH = 10
STAMP = "bench.stamps.stamp"
QUEUE = "default"


def job_plan(n: int, stamp_path: str) -> Plan:
    """(class, args) of the n jobs: stamps at both ends, no-ops between."""
    k = min(STAMPS_PER_END, max(n // 10, 1))
    return [(STAMP, [stamp_path])] * k + [(NOOP, [i]) for i in range(n - 2 * k)] + [(STAMP, [stamp_path])] * k


# --- fills (not timed) ------------------------------------------------------------------------
def fill_qadmin(url: str, plan: Plan) -> None:
    from qadmin.backends import BackendOptions, open_backend
    from qadmin.client import Client

    client = Client(open_backend(url, BackendOptions()))
    try:
        news = [Client.build(cls, args, queue=QUEUE) for cls, args in plan]
        for start in range(0, len(news), 5000):
            client.enqueue_many(news[start : start + 5000])
    finally:
        client.close()


def fill_resque_list(url: str, plan: Plan) -> None:
    """Resque-shaped payloads pushed as qadmin's and Resque's writers push them
    (docs/compatibility.md §1.4)."""
    import redis

    from qadmin.codecs import json_codec

    r = redis.Redis.from_url(url)
    pipe = r.pipeline(transaction=False)
    for i, (cls, args) in enumerate(plan):
        pipe.rpush(f"resque:queue:{QUEUE}", json_codec.encode(cls, args))
        if i % 5000 == 4999:
            pipe.execute()
    pipe.sadd("resque:queues", QUEUE)
    pipe.execute()


def fill_rq(url: str, plan: Plan) -> None:
    import redis
    from rq import Queue

    q = Queue(QUEUE, connection=redis.Redis.from_url(url))
    for start in range(0, len(plan), 5000):
        q.enqueue_many([Queue.prepare_data(cls, args=tuple(args)) for cls, args in plan[start : start + 5000]])


def remaining(kind: str, url: str) -> int:
    if kind == "sqlite" or kind == "postgresql":
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql("SELECT count(*) FROM delayed_jobs").scalar_one())
        finally:
            engine.dispose()
    import redis

    r = redis.Redis.from_url(url)
    return int(r.llen(f"resque:queue:{QUEUE}")) + int(r.llen(f"rq:queue:{QUEUE}"))


# --- cells ------------------------------------------------------------------------------------
class Bench(Drainer):
    """The cells of this script: fills and workers that run `job_plan`'s qadmin-named jobs."""

    def __init__(self, servers: Servers, jobs: int, subdir: str = "throughput") -> None:
        super().__init__(servers, subdir)
        self.jobs = jobs

    def cell(
        self,
        name: str,
        kind: str,
        n: int,
        fill: Callable[[str, Plan, str], None],
        commands: Callable[[str], list[list[str]]],
        *,
        ref: str | None = None,
        prepare: Callable[[], None] | None = None,
        note: str = "",
    ) -> Cell:
        drain = Drain(
            fill=lambda url, count, stamp_path: fill(url, job_plan(count, stamp_path), stamp_path),
            commands=commands,
            remaining=lambda url: remaining(kind, url),
            reset=lambda url: reset(kind, url),
        )
        return self.drain_cell(name, kind, n, drain, ref=ref, prepare=prepare, note=note)


def qadmin_cmd(procs: int, prefetch: int = 1, *more: str) -> Callable[[str], list[list[str]]]:
    extra = (["--prefetch", str(prefetch)] if prefetch > 1 else []) + list(more)
    return lambda url: [
        [
            sys.executable,
            "-m",
            "qadmin",
            "--url",
            url,
            "worker",
            "--burst",
            "--import",
            "qadmin.examples",
            "--import",
            "bench.stamps",
            "--concurrency",
            str(procs),
            *extra,
        ]
    ]


def floor_cmd(kind: str, procs: int) -> Callable[[str], list[list[str]]]:
    return lambda url: [[sys.executable, "-m", "bench.floors", kind, url]] * procs


def rq_cmd(worker_class: str, procs: int) -> Callable[[str], list[list[str]]]:
    return lambda url: rq_peer.commands_for(worker_class)(url, procs)


def build_cells(b: Bench, backends: list[str], jobs: int, prefetch: int = PREFETCH) -> list[Cell]:
    cells: list[Cell] = []
    qfill = lambda url, plan, _stamps: fill_qadmin(url, plan)
    for kind in backends:
        prep = redis_backend_ready if kind == "redis" else None
        floor_fill = (lambda url, plan, _s: fill_resque_list(url, plan)) if kind == "redis" else qfill
        cells.append(b.cell(f"floor {kind} ×1", kind, jobs, floor_fill, floor_cmd(kind, 1)))
        cells.append(
            b.cell(f"qadmin {kind} ×1", kind, jobs, qfill, qadmin_cmd(1), ref=f"floor {kind} ×1", prepare=prep)
        )
        cells.append(b.cell(f"floor {kind} ×2", kind, jobs, floor_fill, floor_cmd(kind, 2), ref=f"floor {kind} ×1"))
        cells.append(
            b.cell(f"qadmin {kind} ×2", kind, jobs, qfill, qadmin_cmd(2), ref=f"qadmin {kind} ×1", prepare=prep)
        )
        if prefetch > 1:
            batched = f"qadmin {kind} ×1 prefetch {prefetch}"
            cells.append(
                b.cell(
                    batched,
                    kind,
                    jobs,
                    qfill,
                    qadmin_cmd(1, prefetch),
                    ref=f"floor {kind} ×1",
                    prepare=prep,
                    note=f"`qadmin worker --prefetch {prefetch}`: claims {prefetch} jobs per round trip",
                )
            )
            cells.append(
                b.cell(
                    f"qadmin {kind} ×2 prefetch {prefetch}",
                    kind,
                    jobs,
                    qfill,
                    qadmin_cmd(2, prefetch),
                    ref=batched,
                    prepare=prep,
                )
            )
            if kind == "redis":
                cells.append(
                    b.cell(
                        f"{batched} defer-acks",
                        kind,
                        jobs,
                        qfill,
                        qadmin_cmd(1, prefetch, "--defer-acks"),
                        ref=f"floor {kind} ×1",
                        prepare=prep,
                        note="`--defer-acks`: successes written with the next call; a SIGKILL reruns "
                        "those not yet written",
                    )
                )
        if kind == "postgresql":
            cells.append(
                b.cell(
                    "floor postgresql-tx ×1",
                    kind,
                    jobs,
                    qfill,
                    floor_cmd("postgresql-tx", 1),
                    ref="qadmin postgresql ×1",
                    note="bench/floors.py postgresql-tx: SELECT … FOR UPDATE SKIP LOCKED, DELETE, COMMIT "
                    "(ratio = qadmin's rate over it)",
                )
            )
        if kind == "sqlite":
            cells.append(
                b.peer_cell(
                    "delayed_job sqlite ×1",
                    delayed_job.PEERS[0],
                    1,
                    max(jobs // 2, 100),
                    ref="qadmin sqlite ×1",
                    note="ratio = how many times faster qadmin is (target ≥ 6×); equal durability: the same libsqlite3, "
                    "WAL, synchronous=NORMAL, wal_autocheckpoint 1000 on both sides (bench/dj_worker.rb)",
                )
            )
        if kind == "redis":
            rq_fill = lambda url, plan, _s: fill_rq(url, plan)
            cells.append(
                b.cell(
                    "rq SimpleWorker ×1",
                    kind,
                    max(jobs // 2, 100),
                    rq_fill,
                    rq_cmd("bench.rq_peer.SimpleWorker", 1),
                    ref="qadmin redis ×1",
                    prepare=rq_peer.need,
                    note="ratio = how many times faster qadmin is (target ≥ 15× one job per claim, ≥ 30× batched)",
                )
            )
            cells.append(
                b.cell(
                    "rq SimpleWorker ×2",
                    kind,
                    max(jobs // 2, 100),
                    rq_fill,
                    rq_cmd("bench.rq_peer.SimpleWorker", 2),
                    ref="rq SimpleWorker ×1",
                    prepare=rq_peer.need,
                )
            )
            cells.append(
                b.cell(
                    "rq Worker (fork) ×1",
                    kind,
                    max(jobs // 20, 50),
                    rq_fill,
                    rq_cmd("bench.rq_peer.Worker", 1),
                    ref="qadmin redis ×1",
                    prepare=rq_peer.need,
                    note="RQ's default worker forks a work horse per job",
                )
            )
    return cells


def cpu_table(b: Bench) -> str:
    lines = [
        "### CPU per job in the worker processes (user + sys, including start-up; median of rounds)",
        "",
        "| cell | CPU ms per job |",
        "|---|---:|",
    ]
    for name, values in b.cpu_ms.items():
        lines.append(f"| {name} | {fmt(statistics.median(values))} |")
    return "\n".join(lines) + "\n"


def peer_ratios(results: list[Result], prefetch: int) -> str:
    """qadmin's speed-up over each peer, one-job claims and batched claims side by side (the
    table's ratio column can name one reference only)."""
    by_name = {r.name: r for r in results}
    lines = [
        "### qadmin against the peers (ratio of medians; > 1 = qadmin faster)",
        "",
        f"| reference | qadmin | one job per claim | --prefetch {prefetch} | target |",
        "|---|---|---:|---:|---:|",
    ]
    pairs = [
        ("delayed_job sqlite ×1", "sqlite", "≥ 6×"),
        ("rq SimpleWorker ×1", "redis", "≥ 15×, ≥ 30× batched"),
        ("floor postgresql ×1", "postgresql", "≥ 0.8×, > 1× batched"),
        ("floor postgresql-tx ×1", "postgresql", "≥ 1×"),
        ("floor sqlite ×1", "sqlite", ""),
        ("floor redis ×1", "redis", ""),
    ]
    for peer, kind, target in pairs:
        ref = by_name.get(peer)
        if ref is None or not ref.values:
            continue
        cells = [by_name.get(f"qadmin {kind} ×1"), by_name.get(f"qadmin {kind} ×1 prefetch {prefetch}")]
        ratios = [fmt(c.median / ref.median) + "×" if c is not None and c.values else "–" for c in cells]
        lines.append(f"| {peer} | qadmin {kind} ×1 | {ratios[0]} | {ratios[1]} | {target} |")
        deferred = by_name.get(f"qadmin {kind} ×1 prefetch {prefetch} defer-acks")
        if deferred is not None and deferred.values:
            lines.append(
                f"| {peer} | qadmin {kind} ×1 --defer-acks | | {fmt(deferred.median / ref.median)}× | {target} |"
            )
    lines += [
        "",
        f"| two processes over one (target ≥ 1.6×) | one job per claim | --prefetch {prefetch} |",
        "|---|---:|---:|",
    ]
    for kind in ("sqlite", "postgresql", "redis"):
        gains = []
        for suffix in ("", f" prefetch {prefetch}"):
            one, two = by_name.get(f"qadmin {kind} ×1{suffix}"), by_name.get(f"qadmin {kind} ×2{suffix}")
            gains.append(fmt(two.median / one.median) + "×" if one and two and one.values and two.values else "–")
        if gains != ["–", "–"]:
            lines.append(f"| qadmin {kind} | {gains[0]} | {gains[1]} |")
    return "\n".join(lines) + "\n"


def invert_peer_ratios(results: list[Result]) -> None:
    """Peer rows read 'qadmin is N× faster': flip their ratio so it is qadmin's median over theirs."""
    for r in results:
        if r.name.startswith(("delayed_job", "rq ", "floor postgresql-tx")) and r.ref and r.ref.startswith("qadmin"):
            r.higher_is_better = False  # ratio() then gives ref / cell for a rate: qadmin's speed-up


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs", type=int, help="jobs per cell (default 3000, --quick 200; much slower peers run fewer)"
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=PREFETCH,
        help=f"jobs per claim in the batched-claim cells (default {PREFETCH}; 1 = no such cells)",
    )
    args = parser.parse_args(argv)
    jobs = args.jobs or (200 if args.quick else 3000)
    repeats = 1 if args.quick else args.repeats
    backends = backends_arg(args.backends)
    started = time.monotonic()
    with Servers() as servers:
        bench = Bench(servers, jobs)
        cells = build_cells(bench, backends, jobs, args.prefetch)
        progress(f"worker throughput: {jobs} jobs per cell, {repeats} rounds, {len(cells)} cells")
        results = interleave(cells, repeats)
    peers = peer_ratios(results, args.prefetch)
    invert_peer_ratios(results)
    print(
        table(
            f"Worker throughput, no-op jobs ({jobs} per cell; {repeats} rounds, interleaved)",
            results,
            extra={"machine": machine(), "wall time": f"{time.monotonic() - started:.0f} s"},
        )
    )
    print(peers)
    print(cpu_table(bench))
    write_json(args.json, "worker_throughput", results, jobs=jobs, repeats=repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
