"""Every benchmark, one after the other, tables on stdout (what `scripts/bench` runs).

    python -m bench.run_all [--quick] [--only worker_throughput,enqueue,...] [--repeats 3]
                            [--jobs 3000] [--scale 1000000] [--memory-jobs 100000] [--out FILE]

The scaling curve takes its largest size from the admin-at-scale run (same fill, same run) and
loads only the two smaller ones itself. `--out` also writes the tables, with the date, machine and
command, to a Markdown file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench import admin_scale, capacity, enqueue, memory, peer_bench, scaling, startup, worker_throughput
from bench.common import machine, progress

ORDER = ("worker_throughput", "peer_bench", "enqueue", "admin_scale", "scaling", "memory", "capacity", "startup")


def versions() -> str:
    out = []
    for name in (
        "qadmin",
        "SQLAlchemy",
        "psycopg",
        "redis",
        "hiredis",
        "rq",
        "rq-dashboard",
        "dramatiq",
        "huey",
        "procrastinate",
        "pgqueuer",
        "asyncpg",
        "textual",
        "Flask",
        "waitress",
        "granian",
    ):
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round (about a minute)")
    parser.add_argument("--only", default=",".join(ORDER), help=f"comma-separated subset of {', '.join(ORDER)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql,redis")
    parser.add_argument("--jobs", type=int, help="worker throughput and peers: jobs per cell (default 3000)")
    parser.add_argument("--scale", type=int, help="admin at scale: jobs per backend (default 1,000,000)")
    parser.add_argument("--memory-jobs", type=int, help="memory: jobs per backend (default 100,000)")
    parser.add_argument(
        "--memory-backends",
        default="sqlite,redis",
        help="memory: backends (PostgreSQL adds ~5 minutes at 100,000 jobs)",
    )
    parser.add_argument("--out", help="also write the tables to this Markdown file")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    for name in only:
        if name not in ORDER:
            parser.error(f"unknown benchmark {name!r}; known: {', '.join(ORDER)}")
    common = (["--quick"] if args.quick else []) + ["--repeats", str(args.repeats)]
    backends = ["--backends", args.backends]
    results_dir = tempfile.TemporaryDirectory(prefix="qadmin-bench-results-")
    results = Path(results_dir.name) / "results.json"
    scale = args.scale or (2000 if args.quick else 1_000_000)
    runs = {
        "worker_throughput": lambda: worker_throughput.main(
            common + backends + (["--jobs", str(args.jobs)] if args.jobs else [])
        ),
        "peer_bench": lambda: peer_bench.main(common + backends + (["--jobs", str(args.jobs)] if args.jobs else [])),
        "enqueue": lambda: enqueue.main(common + backends),
        "capacity": lambda: capacity.main(common + backends),
        "admin_scale": lambda: admin_scale.main(common + backends + ["--scale", str(scale), "--json", str(results)]),
        "scaling": lambda: scaling.main(
            common
            + backends
            + [
                "--sizes",
                f"{max(scale // 100, 100)},{max(scale // 10, 200)}"
                if "admin_scale" in only
                else f"{max(scale // 100, 100)},{max(scale // 10, 200)},{scale}",
                *(["--from-json", str(results)] if "admin_scale" in only else []),
            ]
        ),
        "memory": lambda: memory.main(
            (["--quick"] if args.quick else [])
            + ["--backends", args.memory_backends]
            + (["--jobs", str(args.memory_jobs)] if args.memory_jobs else [])
        ),
        "startup": lambda: startup.main(["--quick"] if args.quick else []),
    }
    started = time.monotonic()
    header = (
        f"## qadmin benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"* command: `scripts/bench {' '.join(argv if argv is not None else sys.argv[1:])}`\n"
        f"* machine: {machine()}\n* versions: {versions()}\n"
    )
    print(header, flush=True)
    chunks = [header]
    code = 0
    for name in ORDER:
        if name not in only:
            continue
        progress(f"== {name}")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            try:
                code = runs[name]() or code
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not lose the tables of the others
                print(f"### {name}\n\nFAILED: {type(exc).__name__}: {exc}\n")
                code = 1
        print(buffer.getvalue(), flush=True)
        chunks.append(buffer.getvalue())
    results_dir.cleanup()
    footer = f"* total wall time: {time.monotonic() - started:.0f} s\n"
    print(footer)
    if args.out:
        Path(args.out).write_text("\n".join(chunks) + "\n" + footer)
    return code


if __name__ == "__main__":
    sys.exit(main())
