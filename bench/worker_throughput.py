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
* delayed_job — the Debian gems' `Delayed::Worker#work_off`, on SQLite with qadmin's settings.
"""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    ROOT,
    Cell,
    Servers,
    Skip,
    backends_arg,
    base_parser,
    fmt,
    interleave,
    machine,
    progress,
    redis_backend_ready,
    reset,
    run_processes,
    table,
    write_json,
)
from bench.stamps import STAMPS_PER_END, span

NOOP = "qadmin.examples.noop"
#: jobs per claim in the batched-claim cells
PREFETCH = 10
STAMP = "bench.stamps.stamp"
QUEUE = "default"


def job_plan(n: int, stamp_path: str) -> list[tuple[str, list]]:
    """(class, args) of the n jobs: stamps at both ends, no-ops between."""
    k = min(STAMPS_PER_END, max(n // 10, 1))
    return [(STAMP, [stamp_path])] * k + [(NOOP, [i]) for i in range(n - 2 * k)] + [(STAMP, [stamp_path])] * k


# --- fills (not timed) ------------------------------------------------------------------------
def fill_qadmin(url: str, plan: list[tuple[str, list]]) -> None:
    from qadmin.backends import BackendOptions, open_backend
    from qadmin.client import Client

    client = Client(open_backend(url, BackendOptions()))
    try:
        news = [Client.build(cls, args, queue=QUEUE) for cls, args in plan]
        for start in range(0, len(news), 5000):
            client.enqueue_many(news[start : start + 5000])
    finally:
        client.close()


def fill_resque_list(url: str, plan: list[tuple[str, list]]) -> None:
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


def fill_rq(url: str, plan: list[tuple[str, list]]) -> None:
    import redis
    from rq import Queue

    q = Queue(QUEUE, connection=redis.Redis.from_url(url))
    for start in range(0, len(plan), 5000):
        q.enqueue_many([Queue.prepare_data(cls, args=tuple(args)) for cls, args in plan[start : start + 5000]])


_dj_handlers: dict[str, str] = {}


def dj_handlers(stamp_path: str) -> tuple[str, str]:
    key = stamp_path
    if key not in _dj_handlers:
        out = subprocess.run(
            ["ruby", str(ROOT / "bench" / "dj_worker.rb"), "handlers"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode != 0:
            raise Skip(f"ruby: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else 'failed'}")
        _dj_handlers.update(json.loads(out.stdout))
    stamp = _dj_handlers["stamp"].replace("PATH", json.dumps(stamp_path))
    return _dj_handlers["noop"], stamp


def fill_delayed_job(url: str, plan: list[tuple[str, list]], stamp_path: str) -> None:
    """Rows as Delayed::Job.enqueue writes them (docs/compatibility.md §4.4), in one transaction."""
    import sqlite3

    noop, stamp = dj_handlers(stamp_path)
    reset("sqlite", url)  # the delayed_job layout and WAL mode, as qadmin creates them
    base = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)
    rows = []
    for i, (cls, _args) in enumerate(plan):
        # distinct run_at so delayed_job's ORDER BY priority, run_at keeps the queue's order
        at = (base + timedelta(microseconds=i)).isoformat(" ")
        rows.append((0, 0, stamp if cls == STAMP else noop, at, at, at))
    conn = sqlite3.connect(url.split("sqlite:///", 1)[1])
    with conn:
        conn.executemany(
            "INSERT INTO delayed_jobs (priority, attempts, handler, run_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    conn.close()


def need_delayed_job() -> None:
    if shutil.which("ruby") is None:
        raise Skip("no ruby (Debian ruby-delayed-job-active-record ruby-sqlite3)")
    check = subprocess.run(
        ["ruby", "-e", 'require "delayed_job_active_record"; require "sqlite3"'],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check.returncode != 0:
        raise Skip(
            "Ruby gems delayed_job_active_record / sqlite3 missing (Debian ruby-delayed-job-active-record ruby-sqlite3)"
        )


def need_rq() -> None:
    try:
        import rq  # noqa: F401
    except ImportError as exc:
        raise Skip("PyPI rq is not installed") from exc


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
class Bench:
    def __init__(self, servers: Servers, jobs: int) -> None:
        self.servers = servers
        self.jobs = jobs
        self.work = servers.tmp / "throughput"
        self.work.mkdir(exist_ok=True)
        self.counter = 0
        #: CPU seconds the worker processes spent per job (user + sys), by cell: far less sensitive
        #: to other load on the machine than rates are (the servers' own CPU is not included)
        self.cpu_ms: dict[str, list[float]] = {}

    def url(self, kind: str) -> str:
        return self.servers.url(kind, "bench_worker")

    def cell(
        self,
        name: str,
        kind: str,
        n: int,
        fill: Callable[[str, list, str], None],
        commands: Callable[[str], list[list[str]]],
        *,
        ref: str | None = None,
        prepare: Callable[[], None] | None = None,
        note: str = "",
    ) -> Cell:
        def run() -> float:
            if prepare:
                prepare()
            self.counter += 1
            url = self.url(kind)
            if kind == "sqlite":  # a fresh file each time: no bloat carried from cell to cell
                url = self.servers.sqlite_url(f"worker{self.counter}")
            reset(kind, url)
            stamp_path = str(self.work / f"stamps{self.counter}")
            plan = job_plan(n, stamp_path)
            fill(url, plan, stamp_path)
            log = self.work / f"{self.counter}.log"
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            run_processes(commands(url), timeout=max(120.0, n / 50), log_path=log)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            self.cpu_ms.setdefault(name, []).append(cpu * 1000 / n)
            left = remaining(kind, url)
            if left:
                raise RuntimeError(f"{left} jobs were left in the queue (log: {log})")
            first, last, _count = span(stamp_path)
            if kind == "sqlite":
                Path(url.split("sqlite:///", 1)[1]).unlink(missing_ok=True)
            return (n - 1) / (last - first)

        return Cell(name, run, ref=ref, note=note)


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
    return lambda url: (
        [
            [
                sys.executable,
                "-m",
                "rq.cli",
                "worker",
                "--burst",
                "--url",
                url,
                "-w",
                worker_class,
                "--logging_level",
                "WARNING",
                "--disable-job-desc-logging",
                QUEUE,
            ]
        ]
        * procs
    )


def dj_cmd(procs: int) -> Callable[[str], list[list[str]]]:
    return lambda url: [["ruby", str(ROOT / "bench" / "dj_worker.rb"), "work", url.split("sqlite:///", 1)[1]]] * procs


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
            dj_fill = lambda url, plan, stamps: fill_delayed_job(url, plan, stamps)
            cells.append(
                b.cell(
                    "delayed_job sqlite ×1",
                    kind,
                    max(jobs // 2, 100),
                    dj_fill,
                    dj_cmd(1),
                    ref="qadmin sqlite ×1",
                    prepare=need_delayed_job,
                    note="ratio = how many times faster qadmin is (target ≥ 4×)",
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
                    prepare=need_rq,
                    note="ratio = how many times faster qadmin is (target ≥ 20×)",
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
                    prepare=need_rq,
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
                    prepare=need_rq,
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


def peer_ratios(results: list, prefetch: int) -> str:
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
        ("delayed_job sqlite ×1", "sqlite", "≥ 4×"),
        ("rq SimpleWorker ×1", "redis", "≥ 20×"),
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


def invert_peer_ratios(results: list) -> None:
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
