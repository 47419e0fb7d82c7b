"""qadmin's worker beside the queues a user would pick instead, one table per backend.

    python -m bench.peer_bench [--quick] [--jobs N] [--repeats 3] [--procs 1,2]
                               [--backends sqlite,postgresql,redis] [--json FILE]

The peers are the `PEERS` of every module of bench/peers/ (bench/peers/__init__.py says what a peer
fills in; modules named `jobs_*` or `_*` are the peers' helpers and are not loaded here). A module
that does not import becomes a skipped row with the reason; so does a peer whose `need()` says it
is not installed. Per backend, every cell runs once per round, the order rotating each round
(bench.common.interleave): qadmin (`qadmin worker --burst`, one job per claim and with
`--prefetch 10`) and every peer of that backend, each at every process count of `--procs`, on the
same servers (bench.common.Servers: redis-server and PostgreSQL on free loopback ports; a fresh
SQLite file per cell). Each cell is bench/drain.py's: the fill is not timed, the rate runs from the
first stamp job to the last, CPU per job is the worker processes' own, and a cell that leaves a job
in the queue is an error.

The ratio column is qadmin's median divided by the row's, against qadmin's cell with the same
process count and the same batch size (a peer claiming 10 jobs at a time is compared with
`qadmin worker --prefetch 10`): above 1 qadmin is that many times faster.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import statistics
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

import bench.peers
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
    write_json,
)
from bench.peers import Peer
from bench.worker_throughput import Bench, fill_qadmin, qadmin_cmd

#: jobs per claim of qadmin's batched cells, and of the peers' batched cells they are compared with
PREFETCH = 10

QADMIN_GUARANTEE = (
    "rerun: the job stays locked by the dead worker, whose heartbeat stops; a live worker's rescue gives "
    "it back after --worker-timeout (prefetched jobs not yet run too)"
)
QADMIN_SETTINGS = {
    "sqlite": "WAL, synchronous=NORMAL (qadmin/backends/sql/sqlite.py)",
    "postgresql": "psycopg 3, prepared claims; the bench cluster's fsync=off, synchronous_commit=off "
    "(tests/servers.py), the same for every row of this table",
    "redis": "Lua claim scripts; the bench's redis-server without persistence (tests/servers.py), the same for every row",
}


@dataclass(frozen=True)
class Row:
    """What the table says of one cell beyond its figures."""

    system: str
    batch: int
    guarantee: str
    settings: str


@dataclass(frozen=True)
class Broken:
    """A module of bench/peers/ that did not import: a skipped row in every table."""

    module: str
    reason: str


def discover() -> tuple[list[tuple[ModuleType, Peer]], list[Broken]]:
    peers: list[tuple[ModuleType, Peer]] = []
    broken: list[Broken] = []
    for info in sorted(pkgutil.iter_modules(bench.peers.__path__), key=lambda i: i.name):
        if info.name.startswith(("_", "jobs_")):
            continue
        try:
            module = importlib.import_module(f"bench.peers.{info.name}")
        except Exception as exc:  # noqa: BLE001 - a broken peer module is a row saying why, not a crashed run
            broken.append(Broken(info.name, f"import bench.peers.{info.name} failed: {type(exc).__name__}: {exc}"))
            continue
        for peer in getattr(module, "PEERS", []):
            peers.append((module, peer))
    return peers, broken


def peer_version(module: ModuleType, peer: Peer) -> str:
    """The module's own `version()` when it has one, else the PyPI distribution named as the peer."""
    own = getattr(module, "version", None)
    try:
        if callable(own):
            return str(own())
        dist = peer.name.split()[0]
        return f"{dist} {metadata.version(dist)}"
    except Exception as exc:  # noqa: BLE001 - a version we cannot read is said, not fatal
        return f"{peer.name}: unknown ({type(exc).__name__})"


def qadmin_name(procs: int, batch: int) -> str:
    return f"qadmin ×{procs}" + (f" prefetch {batch}" if batch > 1 else "")


def build(
    b: Bench, kind: str, peers: list[tuple[ModuleType, Peer]], procs: list[int], jobs: int
) -> tuple[list[Cell], dict[str, Row]]:
    cells: list[Cell] = []
    rows: dict[str, Row] = {}
    prep = redis_backend_ready if kind == "redis" else None
    qfill = lambda url, plan, _stamps: fill_qadmin(url, plan)
    for p in procs:
        for batch in (1, PREFETCH):
            name = qadmin_name(p, batch)
            cells.append(b.cell(name, kind, jobs, qfill, qadmin_cmd(p, batch), prepare=prep))
            flags = f"--concurrency {p}" + (f" --prefetch {batch}" if batch > 1 else "")
            rows[name] = Row(
                "qadmin", batch, QADMIN_GUARANTEE, f"`qadmin worker --burst {flags}`; {QADMIN_SETTINGS[kind]}"
            )
    for _module, peer in peers:
        if peer.backend != kind:
            continue
        for p in procs:
            name = f"{peer.name} ×{p}"
            ref = qadmin_name(p, peer.batch if peer.batch == PREFETCH else 1)
            cells.append(b.peer_cell(name, peer, p, max(int(jobs * peer.share), 50), ref=ref))
            rows[name] = Row(peer.name, peer.batch, peer.guarantee, peer.settings)
    return cells, rows


def cell_md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(
    kind: str,
    results: list[Result],
    rows: dict[str, Row],
    broken: list[Broken],
    cpu_ms: dict[str, list[float]],
    footer: dict[str, str],
) -> str:
    by_name = {r.name: r for r in results}
    lines = [
        f"### Peers on {kind}: no-op jobs drained by worker processes (median of interleaved rounds)",
        "",
        "| cell | median | min–max | qadmin ÷ this | CPU ms/job | batch | SIGKILL mid-job | settings |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    said: set[str] = set()

    def once(text: str) -> str:
        """A guarantee or settings text in full on its first row, "as above" on the rows after it."""
        if text in said:
            return "as above"
        said.add(text)
        return cell_md(text)

    for r in results:
        row = rows[r.name]
        if r.skipped or not r.values:
            lines.append(
                f"| {r.name} | skipped: {cell_md(r.skipped or 'no value')} | | | | {row.batch} | "
                f"{once(row.guarantee)} | {once(row.settings)} |"
            )
            continue
        ref = by_name.get(r.ref) if r.ref else None
        speedup = f"{ref.median / r.median:.2f}×" if ref is not None and ref.values and r.median > 0 else "–"
        cpu = cpu_ms.get(r.name)
        lines.append(
            f"| {r.name} | {fmt(r.median)} jobs/s | {fmt(min(r.values))}–{fmt(max(r.values))} | {speedup} | "
            f"{fmt(statistics.median(cpu)) if cpu else '–'} | {row.batch} | {once(row.guarantee)} | "
            f"{once(row.settings)} |"
        )
    for item in broken:
        lines.append(f"| {item.module} | skipped: {cell_md(item.reason)} | | | | | | |")
    lines.append("")
    lines.append(
        "* qadmin ÷ this: qadmin's median over this row's, against qadmin's cell with the same process count "
        f"and batch size (batch {PREFETCH} against `--prefetch {PREFETCH}`); above 1 = qadmin faster. "
        "CPU ms/job: the worker processes' user + sys (start-up included), not the server's."
    )
    for key, value in footer.items():
        lines.append(f"* {key}: {value}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="jobs per cell (default 3000, --quick 200)")
    parser.add_argument("--procs", default="1,2", help="worker process counts, comma-separated (default 1,2)")
    args = parser.parse_args(argv)
    jobs = args.jobs or (200 if args.quick else 3000)
    repeats = 1 if args.quick else args.repeats
    backends = backends_arg(args.backends)
    procs = [int(p) for p in args.procs.split(",") if p.strip()]
    peers, broken = discover()
    for item in broken:
        progress(f"peer module {item.module}: {item.reason}")
    everything: list[Result] = []
    with Servers() as servers:
        for kind in backends:
            b = Bench(servers, jobs, subdir=f"peers-{kind}")  # its own stamp files and logs
            cells, rows = build(b, kind, peers, procs, jobs)
            progress(f"peers on {kind}: {jobs} jobs per cell, {repeats} rounds, {len(cells)} cells")
            load_before = os.getloadavg()
            started = time.monotonic()
            results = interleave(cells, repeats)
            load_after = os.getloadavg()
            versions = [peer_version(module, peer) for module, peer in peers if peer.backend == kind]
            footer = {
                "machine": machine(),
                "load average (1, 5, 15 min) before": " ".join(f"{x:.2f}" for x in load_before),
                "load average after": " ".join(f"{x:.2f}" for x in load_after),
                "rounds": f"{repeats}, interleaved (order rotating each round); {jobs} jobs per cell",
                "versions": ", ".join(dict.fromkeys([qadmin_version(), *versions])),
                "wall time": f"{time.monotonic() - started:.0f} s",
            }
            print(render(kind, results, rows, broken, b.cpu_ms, footer), flush=True)
            everything += results
    write_json(args.json, "peer_bench", everything, jobs=jobs, repeats=repeats, procs=procs)
    return 0


def qadmin_version() -> str:
    import qadmin

    return f"qadmin {qadmin.__version__} (this tree)"


if __name__ == "__main__":
    sys.exit(main())
