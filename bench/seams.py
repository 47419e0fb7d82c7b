"""What each named speed trick buys: the fast path against its plain reference, same process, interleaved.

    python -m bench.seams [--quick] [--repeats 3] [--jobs 2000] [--backends sqlite,postgresql,redis]

Each trick has a plain path beside it, and a test that the two agree (docs/performance.md):

* SQL worker verbs: `SqliteVerbs` / `PreparedPg` against `CoreVerbs`, the portable SQLAlchemy Core
  reference (`SqlBackend(prepared=False)`): enqueue one job at a time, and one worker session's
  complete-and-claim loop (one job per claim, and 10).
* Redis successes: `SuccessWrites.PIPELINED` (a success sent without awaiting its reply while
  prefetched jobs wait) against `AWAITED`: one worker session's loop with 10 jobs per claim.
* Web pages: `SharedRender` (rendered once per reading, each session's CSRF token spliced in)
  against `PlainRender` (each request renders its own page): CPU per view of the jobs page, its
  failed tab and the overview, for a browser session, on the demo data.

Rates are jobs/s (higher is better); page costs are CPU ms per view (lower is better). The worker
loops run in this process with no job code, so they measure what the verbs cost the client and the
server, not a worker's whole overhead (bench.worker_throughput does that).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import Cell, Servers, Skip, backends_arg, base_parser, interleave, machine, progress, table

NOOP = "qadmin.examples.noop"
WORKER = "host:bench pid:1"
PASSWORD = "right-Horse-battery-42"


def _always(job: Any) -> bool:
    return True


def _sql_backend(url: str, prepared: bool) -> Any:
    from qadmin.backends import BackendOptions
    from qadmin.backends.sql import SqlBackend

    backend = SqlBackend(url, BackendOptions(), prepared=prepared)
    backend.init()
    with backend.engine.begin() as conn:
        for table_name in ("delayed_jobs", "qadmin_finished", "qadmin_throughput", "qadmin_counters"):
            conn.exec_driver_sql(f"DELETE FROM {table_name}")
    return backend


def _redis_backend(url: str, pipelined: bool) -> Any:
    from qadmin.backends import BackendOptions
    from qadmin.backends.redis import RedisBackend
    from qadmin.backends.redis.session import SuccessWrites

    backend = RedisBackend(
        url, BackendOptions(), success_writes=SuccessWrites.PIPELINED if pipelined else SuccessWrites.AWAITED
    )
    backend.server.client.flushdb()
    return backend


def _enqueue_rate(open_backend: Callable[[], Any], jobs: int) -> float:
    from qadmin.job import NewJob

    backend = open_backend()
    try:
        started = time.perf_counter()
        for i in range(jobs):
            backend.enqueue(NewJob(NOOP, [i]))
        return jobs / (time.perf_counter() - started)
    finally:
        backend.close()


def _worker_rate(open_backend: Callable[[], Any], jobs: int, limit: int) -> float:
    """One worker session drains `jobs` no-op jobs: claim `limit`, then complete-and-claim."""
    from qadmin.job import NewJob, utcnow

    backend = open_backend()
    try:
        backend.enqueue_many([NewJob(NOOP, [i]) for i in range(jobs)])
        session = backend.session(WORKER)
        started = time.perf_counter()
        held = session.claim(["*"], utcnow(), 3600.0, _always, limit)
        done = 0
        while held:
            job = held.pop(0)
            wanted = limit - len(held) if len(held) < limit else 0
            if wanted:
                held += session.complete_and_claim(
                    job, utcnow(), 0.0, ["*"], 3600.0, _always, wanted, [j.id for j in held]
                )
            else:
                session.complete(job, utcnow(), 0.0)
            done += 1
            if not held:
                held = session.claim(["*"], utcnow(), 3600.0, _always, limit)
        session.close()
        elapsed = time.perf_counter() - started
        if done != jobs:
            raise RuntimeError(f"the session ran {done} of {jobs} jobs")
        return done / elapsed
    finally:
        backend.close()


def sql_cells(servers: Servers, kind: str, jobs: int) -> list[Cell]:
    fast = {"sqlite": "SqliteVerbs", "postgresql": "PreparedPg"}[kind]
    cells: list[Cell] = []

    def url() -> str:
        return servers.url(kind, "seams")

    for prepared in (True, False):
        name = fast if prepared else "CoreVerbs"
        ref = None if prepared else f"{kind} {fast} enqueue"

        def opener(prepared: bool = prepared) -> Any:
            return _sql_backend(url(), prepared)

        cells.append(Cell(f"{kind} {name} enqueue", lambda o=opener: _enqueue_rate(o, jobs), ref=ref))
        for limit in (1, 10):
            cells.append(
                Cell(
                    f"{kind} {name} worker loop ×{limit}",
                    lambda o=opener, n=limit: _worker_rate(o, jobs, n),
                    ref=None if prepared else f"{kind} {fast} worker loop ×{limit}",
                )
            )
    return cells


def redis_cells(servers: Servers, jobs: int) -> list[Cell]:
    cells = []
    for pipelined in (True, False):
        name = "PIPELINED" if pipelined else "AWAITED"

        def opener(pipelined: bool = pipelined) -> Any:
            return _redis_backend(servers.redis_url(), pipelined)

        cells.append(
            Cell(
                f"redis SuccessWrites.{name} worker loop ×10",
                lambda o=opener: _worker_rate(o, jobs, 10),
                ref=None if pipelined else "redis SuccessWrites.PIPELINED worker loop ×10",
            )
        )
    return cells


def web_cells(servers: Servers, views: int) -> list[Cell]:
    try:
        from qadmin.backends import open_backend
        from qadmin.demo import fill
        from qadmin.ops import Ops
        from qadmin.web import create_app
    except ImportError as exc:  # the web extra is part of the core install; say so if it is not
        raise Skip(f"cannot import the dashboard: {exc}") from exc
    url = servers.sqlite_url("seams-web")
    backend = open_backend(url)
    backend.init()
    fill(backend)
    backend.close()
    app = create_app(
        Ops.open(url, face="bench"), {"QADMIN_PASSWORD": PASSWORD, "QADMIN_STATS_TTL": 60, "QADMIN_LIST_TTL": 60}
    )
    browser = app.test_client()
    login = browser.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]*)"', login)
    answer = browser.post(
        "/login", data={"password": PASSWORD, "name": "bench", "csrf_token": token.group(1) if token else ""}
    )
    if answer.status_code != 303:
        raise RuntimeError(f"cannot log in to the dashboard: {answer.status_code}")

    def cost(shared: bool, page: str) -> float:
        app.config["QADMIN_SHARED_RENDER"] = shared
        browser.get(page)  # the shared rendering is made once, outside the timing
        started = time.process_time()
        for _ in range(views):
            response = browser.get(page)
        if response.status_code != 200:
            raise RuntimeError(f"{page}: {response.status_code}")
        return (time.process_time() - started) / views * 1000

    cells = []
    for page in ("/jobs", "/jobs?state=failed", "/"):
        for shared in (True, False):
            name = "SharedRender" if shared else "PlainRender"
            cells.append(
                Cell(
                    f"web {name} {page}",
                    lambda s=shared, p=page: cost(s, p),
                    unit="ms CPU/view",
                    higher_is_better=False,
                    ref=None if shared else f"web SharedRender {page}",
                )
            )
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = base_parser((__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, help="jobs per cell (default 2000, --quick 200)")
    parser.add_argument("--views", type=int, help="page views per web cell (default 300, --quick 30)")
    args = parser.parse_args(argv)
    jobs = args.jobs or (200 if args.quick else 2000)
    views = args.views or (30 if args.quick else 300)
    repeats = 1 if args.quick else args.repeats
    started = time.monotonic()
    with Servers() as servers:
        cells: list[Cell] = []
        for kind in backends_arg(args.backends):
            cells += redis_cells(servers, jobs) if kind == "redis" else sql_cells(servers, kind, jobs)
        cells += web_cells(servers, views)
        progress(f"seams: {jobs} jobs per worker cell, {views} views per page cell, {repeats} rounds")
        results = interleave(cells, repeats)
    print(
        table(
            f"Each speed trick against its plain path ({repeats} rounds, interleaved)",
            results,
            extra={"machine": machine(), "wall time": f"{time.monotonic() - started:.0f} s"},
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
