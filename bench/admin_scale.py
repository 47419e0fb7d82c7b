"""The admin console on a big queue: verbs through `qadmin.ops.Ops`, the web pages under load, the
TUI's first screen, and rq-dashboard's failed page on RQ's own failed jobs, in one run.

    python -m bench.admin_scale [--scale 1000000] [--repeats 3] [--web-seconds 3] [--quick]
    python -m bench.admin_scale --failed-scale [--failed-sizes 10000,1000000] [--repeats 3]

Each backend gets `--scale` jobs (bench/fill.py: 10% failed, 0.1% stale locks, 1% scheduled, the
rest pending); rq-dashboard gets `--scale / 5` failed RQ jobs on the same redis-server (a separate
database number). Verbs that change jobs (retry, dequeue, unlock) are timed, checked to have changed
what they should, then the jobs are written back as they were (not timed) for the next round.

`--failed-scale` measures instead what the admin pays for Resque's `failed` list on Redis alone
(issue #18 point 5): stats, counts per queue and state, the first page of one queue's failures,
and a bulk retry of that queue (dry-run count and real), at each of `--failed-sizes` failure
entries filled by raw pipelined RPUSH (not timed): 10 queues in turn, `billing` every tenth entry,
and a `rare` queue of 25 entries at the tail. Run it through `bench/ab.py` for before/after.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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
    redis_backend_ready,
    table,
    write_json,
)
from bench.faces import AUTH, load, percentile, qadmin_web, rq_dashboard, tui_first_screen
from bench.fill import CLASSES, DEQUEUE, QUEUES, RARE_CLASS, Layout, RedisFill, SqlFill, fill_rq_failed

#: targets of issue 5, for the notes under the table (ms)
TARGETS = {"first page": "< 50 ms", "stats": "< 500 ms", "retry all failed": "< 5 s"}
#: jobs per listing page, as the web's default
PAGE = 50


@dataclass
class Loaded:
    """One backend with its jobs in place."""

    kind: str
    url: str
    layout: Layout
    fill: Any
    ops: Any = None

    def open(self) -> Any:
        if self.ops is None:
            from qadmin.ops import Ops

            self.ops = Ops.open(self.url, face="bench")
            self.ops.stats()  # connect and reflect the table once: not part of any verb's time
        return self.ops


def load_backend(servers: Servers, kind: str, n: int, suffix: str = "") -> Loaded:
    layout = Layout(n, datetime.now(UTC))
    started = time.monotonic()
    if kind == "redis":
        redis_backend_ready()
        url = servers.redis_url().rsplit("/", 1)[0] + f"/{_redis_db(n)}"
        fill: Any = RedisFill(url, layout)
    else:
        url = servers.url(kind, f"bench_admin_{n}{suffix}")
        fill = SqlFill(url, layout)
    fill.load()
    progress(f"  filled {kind} with {n:,} jobs in {time.monotonic() - started:.0f} s")
    return Loaded(kind, url, layout, fill)


#: Redis database numbers for loaded queues: db 0 holds RQ's jobs; one each so sizes load side by side
_redis_dbs = itertools.count(2)


def _redis_db(_n: int) -> int:
    db = next(_redis_dbs)
    if db > 15:
        raise Skip("more queues loaded at once than redis-server has databases (16)")
    return db


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return (time.perf_counter() - started) * 1000, out


def verb_cells(b: Loaded, label: str) -> list[Cell]:
    """The admin verbs on one loaded backend, each a cell in milliseconds."""
    from qadmin.filters import JobFilter
    from qadmin.job import JobState

    failed = JobFilter(states=frozenset({JobState.FAILED}))

    def reader(fn: Callable[[Any], Any]) -> Callable[[], float]:
        def run() -> float:
            ops = b.open()  # the first call connects and warms up: outside the timing
            ms, _ = timed(lambda: fn(ops))
            return ms

        return run

    def writer(
        fn: Callable[[Any], Any], expected: Callable[[], int], restore: Callable[[], Any]
    ) -> Callable[[], float]:
        def run() -> float:
            ops = b.open()
            ms, result = timed(lambda: fn(ops))
            try:
                if result.changed != expected():
                    raise RuntimeError(f"changed {result.changed} jobs, expected {expected()}")
                if result.changed == 0:
                    raise RuntimeError("changed nothing")
            finally:
                b.fill.restore(restore())
            return ms

        return run

    lay = b.layout
    verbs: list[tuple[str, Callable[[], float]]] = [
        ("first page", reader(lambda ops: ops.list_jobs(JobFilter(), limit=PAGE))),
        (
            "first page of failed, newest first",
            reader(lambda ops: ops.list_jobs(failed, limit=PAGE, sort="-failed_at")),
        ),
        ("list by class", reader(lambda ops: ops.list_jobs(JobFilter(class_name=CLASSES[3]), limit=PAGE))),
        ("list by rare class", reader(lambda ops: ops.list_jobs(JobFilter(class_name=RARE_CLASS), limit=PAGE))),
        (
            "count pending in a queue",
            reader(lambda ops: ops.count(JobFilter(states=frozenset({JobState.PENDING}), queues=(QUEUES[1],)))),
        ),
        ("stats", reader(lambda ops: ops.stats())),
        ("error groups", reader(lambda ops: ops.error_groups(failed))),
        ("retry all failed", writer(lambda ops: ops.retry(failed), lambda: len(lay.failed), lambda: lay.failed)),
        (
            "dequeue class+args",
            writer(lambda ops: ops.dequeue(*DEQUEUE), lambda: len(lay.dequeue_ids), lambda: lay.dequeue_ids),
        ),
        ("unlock stale", writer(lambda ops: ops.unlock(stale=True), lambda: len(lay.stale), lambda: lay.stale)),
    ]
    return [Cell(f"{verb} · {label}", run, unit="ms", higher_is_better=False) for verb, run in verbs]


class FaceCells:
    """Web pages under load and the TUI's first screen; latencies kept per cell for the table."""

    def __init__(self, work: Path, seconds: float) -> None:
        self.work = work
        self.seconds = seconds
        self.latency: dict[str, list[list[float]]] = {}
        self._servers: list[Any] = []

    def web(
        self,
        name: str,
        start: Callable[[], Any],
        views: list[list[str]],
        ref: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Cell:
        port_box: dict[str, int] = {}

        def run() -> float:
            if "port" not in port_box:
                ctx = start()
                port_box["port"] = ctx.__enter__()  # kept up for the whole run: see close()
                self._servers.append(ctx)
            rate, lat = load(port_box["port"], views, self.seconds, headers=headers)
            self.latency.setdefault(name, []).append(lat)
            return rate

        return Cell(name, run, unit="views/s", ref=ref)

    def tui(self, name: str, url: str) -> Cell:
        return Cell(name, lambda: tui_first_screen(url, QUEUES[0].encode()) * 1000, unit="ms", higher_is_better=False)

    def close(self) -> None:
        for ctx in self._servers:
            ctx.__exit__(None, None, None)

    def latency_table(self, title: str) -> str:
        lines = [f"### {title}", "", "| cell | p50 | p95 | views measured |", "|---|---:|---:|---:|"]
        for name, rounds in self.latency.items():
            flat = [x for r in rounds for x in r]
            lines.append(
                f"| {name} | {fmt(percentile(flat, 0.5))} ms | {fmt(percentile(flat, 0.95))} ms | {len(flat)} |"
            )
        return "\n".join(lines) + "\n"


RQ_FAILED_VIEW = ["/0/view/jobs/default/failed/50/asc/1", "/0/data/jobs/default/failed/50/asc/1.json"]


#: the servers the web cells run on; each dashboard on each, never one on a server the other lacks
WEB_SERVERS = ("waitress", "granian")


def _on(server: str) -> str:
    """A web cell's name suffix: none for the default server."""
    return "" if server == WEB_SERVERS[0] else f" · {server}"


def face_cells(faces: FaceCells, loaded: list[Loaded], rq_jobs: str | Skip) -> list[Cell]:
    """`rq_jobs` is the Redis URL of the filled RQ jobs, or why there are none: rq-dashboard's cells then
    state that reason under their own names."""
    cells: list[Cell] = []
    rq_log = faces.work / "rq-dashboard.log"
    rq_names = {server: "rq-dashboard failed page" + _on(server) for server in WEB_SERVERS}

    def rq_on(server: str) -> Any:
        if isinstance(rq_jobs, Skip):
            raise Skip(str(rq_jobs))
        return rq_dashboard(rq_jobs, rq_log, server)

    for server in WEB_SERVERS:
        cells.append(faces.web(rq_names[server], lambda server=server: rq_on(server), [RQ_FAILED_VIEW]))
    cells.append(faces.web("rq-dashboard overview", lambda: rq_on(WEB_SERVERS[0]), [["/", "/0/data/queues.json"]]))
    for b in loaded:
        log = faces.work / f"web-{b.kind}.log"
        start = lambda url=b.url, log=log: qadmin_web(url, log)
        cells.append(faces.web(f"web overview · {b.kind}", start, [["/"]], headers=AUTH))
        cells.append(faces.web(f"web jobs page · {b.kind}", start, [["/jobs"]], headers=AUTH))
        for server in WEB_SERVERS:
            on = lambda url=b.url, log=log, server=server: qadmin_web(url, log, server)
            cells.append(
                faces.web(
                    f"web failed jobs page · {b.kind}{_on(server)}",
                    on,
                    [["/jobs?state=failed"]],
                    ref=rq_names[server],
                    headers=AUTH,
                )
            )
        cells.append(faces.tui(f"TUI first screen · {b.kind}", b.url))
    return cells


def run(args: Any) -> tuple[list[Result], str]:
    n = args.scale
    backends = backends_arg(args.backends)
    with Servers() as servers:
        progress(f"admin at scale: filling {n:,} jobs per backend")
        loaded: list[Loaded] = []
        skipped: list[Result] = []
        for kind in backends:
            try:
                loaded.append(load_backend(servers, kind, n))
            except Skip as exc:
                skipped.append(Result(f"{kind}", "ms", False, skipped=str(exc)))
        rq_jobs: str | Skip
        try:
            import rq  # noqa: F401

            rq_jobs = servers.redis_url()  # db 0
            fill_rq_failed(rq_jobs, max(n // 5, 10))
            progress(f"  filled RQ with {max(n // 5, 10):,} failed jobs")
        except ImportError as exc:
            rq_jobs = Skip(f"PyPI {exc.name or exc} is not installed")
        except Skip as exc:
            rq_jobs = exc
        cells: list[Cell] = []
        for b in loaded:
            cells += verb_cells(b, b.kind)
        faces = FaceCells(servers.tmp, args.web_seconds)
        if not args.no_faces:
            cells += face_cells(faces, loaded, rq_jobs)
        try:
            results = interleave(cells, args.repeats)
        finally:
            faces.close()
            for b in loaded:
                if b.ops is not None:
                    b.ops.close()
    verbs = [r for r in results if r.unit == "ms" and not r.name.startswith("TUI")]
    face = [r for r in results if r not in verbs]
    out = table(
        f"Admin verbs on {n:,} jobs per backend ({args.repeats} rounds, interleaved)",
        sorted(verbs, key=lambda r: r.name) + skipped,
        extra={"targets on 1M jobs": ", ".join(f"{k} {v}" for k, v in TARGETS.items())},
    )
    if face:
        out += "\n" + table(
            f"Web pages under {4} concurrent clients ({args.web_seconds:g} s per cell per round) "
            f"and the TUI; rq-dashboard on {max(n // 5, 10):,} failed RQ jobs",
            face,
            extra={"target": "web failed jobs page ≥ 50× rq-dashboard's failed page"},
        )
        out += "\n" + faces.latency_table("Web latency per page view, all rounds")
    return results, out


#: the queues of the failed-scale run: `billing` is every tenth entry, `rare` the last 25
FAILED_QUEUES = ("billing", *(f"q{i}" for i in range(1, 10)))
RARE = 25


def failure_entry(i: int, queue: str) -> bytes:
    """A failure entry in Ruby Resque's shape (docs/compatibility.md §1.6)."""
    at = f"{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
    return (
        f'{{"failed_at":"2026/11/22 {at} UTC","payload":{{"class":"Billing::Charge","args":[{i},"card"]}},'
        f'"exception":"Stripe::CardError","error":"card declined {i % 97}","backtrace":["/srv/app/jobs/charge.rb:10"],'
        f'"worker":"web1:1:{queue}","queue":"{queue}"}}'
    ).encode()


def fill_failed(client: Any, n: int) -> None:
    """`n` failure entries by raw pipelined RPUSH, as Ruby would have appended them."""
    client.flushdb()
    pipe = client.pipeline(transaction=False)
    for start in range(0, n, 10_000):
        pipe.rpush(
            "resque:failed",
            *[
                failure_entry(i, "rare" if i >= n - RARE else FAILED_QUEUES[i % 10])
                for i in range(start, min(start + 10_000, n))
            ],
        )
        if len(pipe) >= 10:
            pipe.execute()
    pipe.execute()


def build_failed_index(ops: Any) -> None:
    """Bring qadmin's index of `failed` up to date, untimed, where the tree measured has one (a
    reader builds at most a part of it: the steady state is what the verbs are timed in)."""
    ops.stats()
    try:
        from qadmin.backends.redis.failed_index import FailedIndex
    except ImportError:
        return
    FailedIndex(ops.backend.server).counts(calls=10**6)


def failed_scale_cells(servers: Servers, sizes: list[int]) -> list[Cell]:
    """The admin verbs that read or retry failures, on each size of failed list."""
    import redis

    from qadmin.filters import JobFilter
    from qadmin.job import JobState
    from qadmin.ops import Ops

    redis_backend_ready()
    cells: list[Cell] = []
    failed = frozenset({JobState.FAILED})
    billing = JobFilter(states=failed, queues=("billing",))
    rare = JobFilter(states=failed, queues=("rare",))
    for n in sizes:
        url = servers.redis_url().rsplit("/", 1)[0] + f"/{_redis_db(n)}"
        client = redis.Redis.from_url(url)
        started = time.monotonic()
        fill_failed(client, n)
        progress(f"  filled {n:,} failure entries in {time.monotonic() - started:.0f} s")
        ops = Ops.open(url, face="bench")
        build_failed_index(ops)  # connect, and (with the index) build it: not part of any verb's time
        expected = (n - RARE + 9) // 10
        label = f"{n // 1000:,}k failed" if n >= 1000 else f"{n} failed"

        def reader(fn: Callable[[], Any]) -> Callable[[], float]:
            return lambda: timed(fn)[0]

        def retry_real(ops: Any = ops, client: Any = client, n: int = n, expected: int = expected) -> float:
            ms, result = timed(lambda: ops.retry(billing))
            if result.changed != expected:
                raise RuntimeError(f"retried {result.changed}, expected {expected}")
            fill_failed(client, n)  # written back as it was, not timed; the index rebuilt untimed too
            build_failed_index(ops)
            return ms

        def after_removal(ops: Any = ops, client: Any = client, n: int = n) -> float:
            # resque-web's Remove of one entry (LSET "__delete__" + LREM), the entry put back at the tail
            at = n // 2 + 1
            raw = client.lindex("resque:failed", at)
            client.lset("resque:failed", at, "__delete__")
            client.lrem("resque:failed", 1, "__delete__")
            client.rpush("resque:failed", raw)
            return timed(ops.stats)[0]

        def dry(ops: Any = ops, expected: int = expected) -> float:
            ms, result = timed(lambda: ops.retry(billing, dry_run=True))
            if result.matched != expected:
                raise RuntimeError(f"dry-run matched {result.matched}, expected {expected}")
            return ms

        verbs: list[tuple[str, Callable[[], float]]] = [
            ("stats", reader(ops.stats)),
            ("counts per queue and state", reader(ops.queues)),
            ("count billing's failures", reader(lambda ops=ops: ops.count(billing))),
            ("first page of billing's failures", reader(lambda ops=ops: ops.list_jobs(billing, limit=PAGE))),
            (
                "first page of billing's failures, newest first",
                reader(lambda ops=ops: ops.list_jobs(billing, limit=PAGE, sort="-failed_at")),
            ),
            ("first page of a rare queue's failures", reader(lambda ops=ops: ops.list_jobs(rare, limit=PAGE))),
            ("retry billing --dry-run", dry),
            ("retry billing", retry_real),
            ("stats after resque-web removed an entry", after_removal),
        ]
        cells += [Cell(f"{verb} · {label}", fn, unit="ms", higher_is_better=False) for verb, fn in verbs]
    return cells


def run_failed_scale(args: Any) -> tuple[list[Result], str]:
    sizes = [int(x) for x in args.failed_sizes.split(",")]
    with Servers() as servers:
        progress(f"failed scale: {', '.join(f'{n:,}' for n in sizes)} failure entries")
        only = [t for t in (args.only or "").split(",") if t]
        cells = [c for c in failed_scale_cells(servers, sizes) if not only or any(t in c.name for t in only)]
        results = interleave(cells, args.repeats)
    out = table(
        f"Admin cost of Resque's failed list on Redis ({args.repeats} rounds, interleaved)",
        results,
        extra={"target": "stats, counts and a first page at 1M within 2x of 10k; retry reads billing's entries only"},
    )
    return results, out


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, help="jobs per backend (default 1,000,000; --quick 2,000)")
    parser.add_argument(
        "--web-seconds", type=float, help="load duration per web cell per round (default 3, --quick 0.5)"
    )
    parser.add_argument("--no-faces", action="store_true", help="verbs only: no web, TUI or rq-dashboard")
    parser.add_argument("--failed-scale", action="store_true", help="only the failed-list run on Redis")
    parser.add_argument("--failed-sizes", help="failure entries per size (default 10000,1000000; --quick 1000,5000)")
    parser.add_argument(
        "--only", help="with --failed-scale: only the cells whose name holds one of these (comma-separated) texts"
    )
    args = parser.parse_args(argv)
    if args.failed_scale:
        args.failed_sizes = args.failed_sizes or ("1000,5000" if args.quick else "10000,1000000")
        if args.quick:
            args.repeats = 1
        started = time.monotonic()
        results, out = run_failed_scale(args)
        print(out + f"\n* machine: {machine()}\n* wall time: {time.monotonic() - started:.0f} s\n")
        write_json(args.json, "admin_scale", results, failed_sizes=args.failed_sizes, repeats=args.repeats)
        return 0
    args.scale = args.scale or (2000 if args.quick else 1_000_000)
    args.web_seconds = args.web_seconds or (0.5 if args.quick else 3.0)
    if args.quick:
        args.repeats = 1
    started = time.monotonic()
    results, out = run(args)
    print(out + f"\n* machine: {machine()}\n* wall time: {time.monotonic() - started:.0f} s\n")
    write_json(args.json, "admin_scale", results, scale=args.scale, repeats=args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
