"""Worker memory over a long run: resident size after 1, N/10, N/2 and N no-op jobs, and the peak.

    python -m bench.memory [--jobs 100000] [--backends sqlite,redis] [--quick]

The worker is qadmin's own `Worker.work()` loop in a child process (burst mode, heartbeat thread and
all); an `after_perform` listener reads /proc/self/status (VmRSS, VmHWM) when the count reaches a
checkpoint, which costs nothing between checkpoints. "Flat" means the growth from N/10 to N jobs
stays within 10 MB (the target), i.e. nothing is kept per job.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.common import (
    Servers,
    Skip,
    backends_arg,
    base_parser,
    child_env,
    machine,
    progress,
    redis_backend_ready,
    reset,
)
from bench.worker_throughput import NOOP, fill_qadmin

#: the growth the issue allows between the first checkpoint after warm-up and the last
FLAT_MB = 10.0


def status_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    values = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def child(url: str, checkpoints: list[int]) -> int:
    from qadmin import events
    from qadmin.backends import BackendOptions, open_backend
    from qadmin.worker import Worker, WorkerOptions

    marks = set(checkpoints)
    seen = [0]

    def sample(_job: object) -> None:
        seen[0] += 1
        if seen[0] in marks:
            rss, hwm = status_mb()
            print(json.dumps({"jobs": seen[0], "rss": rss, "hwm": hwm, "t": time.monotonic()}), flush=True)

    events.on("after_perform", sample)
    backend = open_backend(url, BackendOptions())
    try:
        Worker(backend, WorkerOptions(burst=True, sleep=0.1, imports=["qadmin.examples"])).work()
    finally:
        backend.close()
    return 0


def measure(url: str, n: int) -> list[dict]:
    checkpoints = sorted({1, max(n // 10, 1), max(n // 2, 1), n})
    cmd = [sys.executable, "-m", "bench.memory", "--child", url, ",".join(map(str, checkpoints))]
    proc = subprocess.run(cmd, check=False, env=child_env(), capture_output=True, text=True, timeout=max(600, n / 20))
    if proc.returncode != 0:
        raise RuntimeError(f"worker exited with {proc.returncode}: {proc.stderr.strip().splitlines()[-3:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(backends="sqlite,redis", repeats=1)
    parser.add_argument("--jobs", type=int, help="jobs per backend (default 100,000; --quick 500)")
    parser.add_argument("--child", nargs=2, metavar=("URL", "CHECKPOINTS"), help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], [int(x) for x in args.child[1].split(",")])
    n = args.jobs or (500 if args.quick else 100_000)
    started = time.monotonic()
    rows = []
    with Servers() as servers:
        for kind in backends_arg(args.backends):
            try:
                if kind == "redis":
                    redis_backend_ready()
                url = servers.url(kind, "bench_memory")
                reset(kind, url)
                fill_qadmin(url, [(NOOP, [i]) for i in range(n)])
                progress(f"memory: {kind}, {n:,} jobs")
                samples = measure(url, n)
            except Skip as exc:
                rows.append(f"| {kind} | skipped: {exc} | | | | | |")
                continue
            except Exception as exc:  # noqa: BLE001 - one backend failing is a row, not the end of the run
                rows.append(f"| {kind} | error: {type(exc).__name__}: {exc} | | | | | |")
                continue
            by = {s["jobs"]: s for s in samples}
            marks = sorted(by)
            tenth = by[marks[1]] if len(marks) > 2 else by[marks[0]]
            last = by[marks[-1]]
            growth = last["rss"] - tenth["rss"]
            rate = (last["jobs"] - tenth["jobs"]) / max(last["t"] - tenth["t"], 1e-9)
            cells = " | ".join(f"{by[m]['rss']:.1f}" for m in marks)
            rows.append(
                f"| {kind} | {cells} | {last['hwm']:.1f} | {growth:+.1f} "
                f"({'flat' if growth <= FLAT_MB else 'GROWS'}) | {rate:,.0f} |"
            )
    marks = sorted({1, max(n // 10, 1), max(n // 2, 1), n})
    marks_header = " | ".join(f"RSS MB after {m:,}" for m in marks)
    print(
        f"### Worker memory over {n:,} no-op jobs\n\n| backend | {marks_header} | peak (VmHWM) MB | "
        f"growth {marks[1] if len(marks) > 2 else marks[0]:,}→{n:,} MB | jobs/s |\n|---|{'---:|' * (len(marks) + 3)}"
    )
    print("\n".join(rows))
    print(
        f"\n* target: flat within {FLAT_MB:g} MB over 100,000 jobs\n* machine: {machine()}\n"
        f"* wall time: {time.monotonic() - started:.0f} s\n"
    )
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
