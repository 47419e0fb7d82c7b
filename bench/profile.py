"""Where the time goes: profiles of the worker and of the admin verbs, for finding what bounds a figure.

    python -m bench.profile worker sqlite|postgresql|redis [--jobs 3000]
    python -m bench.profile verb sqlite|postgresql|redis [--scale 100000] [--verbs stats,retry,...]
    python -m bench.profile web sqlite|postgresql|redis [--scale 100000] [--paths /,/jobs?state=failed]

`worker` runs `qadmin worker --burst` under py-spy (PyPI `py-spy`; on-CPU samples) over no-op jobs and
prints the qadmin frames by inclusive share, then the leaf frames by own share. `verb` and `web` fill a
backend (bench/fill.py) and print a pyinstrument tree (PyPI `pyinstrument`) of each verb or page.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.common import Servers, progress, reset
from bench.fill import CLASSES, DEQUEUE, Layout, RedisFill, SqlFill
from bench.worker_throughput import NOOP, fill_qadmin


def _frame(text: str) -> str:
    text = re.sub(r"\s*\(/[^)]*?/(site-packages|work/main|lib/python3\.\d+)/", " (", text)
    return re.sub(r":\d+\)$", ")", text)


def summarise(raw_path: str, top: int = 30) -> str:
    """py-spy's raw (collapsed) stacks -> qadmin frames by inclusive share, leaves by own share."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    with open(raw_path) as fh:
        for line in fh:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            total += n
            frames = [_frame(f) for f in stack.split(";")]
            for f in set(frames):
                inclusive[f] += n
            own[frames[-1]] += n
    out = [f"{total} samples", "", "qadmin frames, inclusive:"]
    out += [f"  {100 * v / total:5.1f}%  {k}" for k, v in inclusive.most_common() if "(qadmin/" in k][:top]
    out += ["", "leaf frames, own time:"]
    out += [f"  {100 * v / total:5.1f}%  {k}" for k, v in own.most_common(top)]
    return "\n".join(out)


def profile_worker(servers: Servers, kind: str, jobs: int) -> None:
    url = servers.url(kind, "bench_profile")
    reset(kind, url)
    fill_qadmin(url, [(NOOP, [i]) for i in range(jobs)])
    raw = str(servers.tmp / "worker.raw")
    cmd = [
        "py-spy",
        "record",
        "--format",
        "raw",
        "-r",
        "250",
        "-o",
        raw,
        "--",
        sys.executable,
        "-m",
        "qadmin",
        "--url",
        url,
        "worker",
        "--burst",
        "--import",
        "qadmin.examples",
    ]
    started = time.monotonic()
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    print(f"### worker on {kind}: {jobs} no-op jobs in {time.monotonic() - started:.1f} s (with start-up)\n")
    print(summarise(raw))


def _loaded(servers: Servers, kind: str, n: int) -> tuple[Any, Any, Layout]:
    from qadmin.ops import Ops

    layout = Layout(n, datetime.now(UTC))
    if kind == "redis":
        url = servers.redis_url()
        fill: Any = RedisFill(url, layout)
    else:
        url = servers.url(kind, "bench_profile")
        fill = SqlFill(url, layout)
    progress(f"filling {kind} with {n:,} jobs")
    fill.load()
    return Ops.open(url, face="bench"), fill, layout


def _tree(label: str, call: Callable[[], Any]) -> None:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    started = time.perf_counter()
    call()
    elapsed = time.perf_counter() - started
    profiler.stop()
    print(f"### {label}: {elapsed * 1000:.0f} ms\n")
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def profile_verbs(servers: Servers, kind: str, n: int, verbs: list[str]) -> None:
    from qadmin.filters import JobFilter
    from qadmin.job import JobState

    ops, fill, lay = _loaded(servers, kind, n)
    failed = JobFilter(states=frozenset({JobState.FAILED}))
    calls: dict[str, tuple[Callable[[], Any], Any]] = {
        "first": (lambda: ops.list_jobs(JobFilter(), limit=50), None),
        "failed-page": (lambda: ops.list_jobs(failed, limit=50, sort="-failed_at"), None),
        "class": (lambda: ops.list_jobs(JobFilter(class_name=CLASSES[3]), limit=50), None),
        "stats": (ops.stats, None),
        "errors": (lambda: ops.error_groups(failed), None),
        "retry": (lambda: ops.retry(failed), lay.failed),
        "dequeue": (lambda: ops.dequeue(*DEQUEUE), lay.dequeue_ids),
        "unlock": (lambda: ops.unlock(stale=True), lay.stale),
    }
    ops.stats()
    for verb in verbs:
        call, restore = calls[verb]
        _tree(f"{verb} on {kind}, {n:,} jobs", call)
        if restore is not None:
            fill.restore(restore)
    ops.close()


def profile_web(servers: Servers, kind: str, n: int, paths: list[str]) -> None:
    from qadmin.web import create_app

    ops, _fill, _lay = _loaded(servers, kind, n)
    password = "bench-Password-0123456789"  # strong enough to be a bearer token
    client = create_app(ops=ops, config={"QADMIN_PASSWORD": password, "TESTING": True}).test_client()
    headers = {"Authorization": f"Bearer {password}"}
    for path in paths:
        client.get(path, headers=headers)  # templates compiled, connections made
        _tree(f"GET {path} on {kind}, {n:,} jobs", lambda path=path: client.get(path, headers=headers))
    ops.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("worker", "verb", "web"))
    parser.add_argument("backend", choices=("sqlite", "postgresql", "redis"))
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--verbs", default="first,failed-page,class,stats,errors,retry,dequeue,unlock")
    parser.add_argument("--paths", default="/,/jobs,/jobs?state=failed")
    args = parser.parse_args(argv)
    with Servers() as servers:
        if args.what == "worker":
            profile_worker(servers, args.backend, args.jobs)
        elif args.what == "verb":
            profile_verbs(servers, args.backend, args.scale, args.verbs.split(","))
        else:
            profile_web(servers, args.backend, args.scale, args.paths.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
