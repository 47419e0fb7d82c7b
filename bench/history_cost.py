"""What recording history costs a worker: throughput with `[history] record = true` and `false`.

    python -m bench.history_cost [--jobs 3000] [--repeats 5] [--backends sqlite,redis] [--quick]

The same no-op jobs and the same `qadmin worker --burst` as bench/worker_throughput.py, one
process, one job per claim (the case where a job's own cost is least, so the recording's share is
largest); the only difference between the two cells of a backend is a qadmin.toml saying
`[history] record = false`. Rounds are interleaved, so that the machine's drift falls on both
cells alike. The cost is 1 - (jobs/s recording) / (jobs/s not recording), from the medians; the
target is under 5 %.
"""

from __future__ import annotations

import statistics
import sys
import time

from bench.common import Cell, Servers, backends_arg, base_parser, fmt, interleave, machine, progress, table, write_json
from bench.worker_throughput import Bench, fill_qadmin, qadmin_cmd

#: the most recording may cost, as a share of the worker's throughput
TARGET = 0.05


def with_config(commands: list[list[str]], config: str) -> list[list[str]]:
    """The worker commands given `--config` (a global option: before the subcommand)."""
    return [[*cmd[:3], "--config", config, *cmd[3:]] for cmd in commands]


def build_cells(bench: Bench, backends: list[str], jobs: int) -> list[Cell]:
    on = bench.work / "history-on.toml"
    off = bench.work / "history-off.toml"
    on.write_text("[history]\nrecord = true\n", encoding="utf-8")
    off.write_text("[history]\nrecord = false\n", encoding="utf-8")
    fill = lambda url, plan, _stamps: fill_qadmin(url, plan)  # noqa: E731 - the cells' shared fill
    cells = []
    worker = qadmin_cmd(1)
    for kind in backends:
        cells.append(
            bench.cell(f"{kind} history off", kind, jobs, fill, lambda url: with_config(worker(url), str(off)))
        )
        cells.append(
            bench.cell(
                f"{kind} history on",
                kind,
                jobs,
                fill,
                lambda url: with_config(worker(url), str(on)),
                ref=f"{kind} history off",
            )
        )
    return cells


def costs(results: list, cpu_ms: dict[str, list[float]], recorder_ms: float) -> tuple[str, bool]:
    """The cost per backend as a Markdown table: from the rates, from the worker process's CPU per
    job (start-up included), and the recorder's own time per run (`recorder_ms`, measured
    in-process) as a share of a job's time at the rate without it: what one run's recording takes
    off the rate of a worker that runs one job at a time, which load elsewhere on the machine can
    neither hide nor inflate much. The
    target is judged on that share; the end-to-end figures are there to show it is not contradicted
    (on a busy machine their rounds overlap by far more than 5 %)."""
    by_name = {r.name: r for r in results}
    lines = [
        "| backend | off (jobs/s) | on (jobs/s) | cost by rate | CPU ms/job off | on | cost by CPU "
        "| recorder's share | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ok = True
    for name, off in by_name.items():
        if not name.endswith(" history off") or not off.values:
            continue
        kind = name.removesuffix(" history off")
        on = by_name.get(f"{kind} history on")
        if on is None or not on.values:
            continue
        by_rate = 1 - on.median / off.median
        cpu_off, cpu_on = statistics.median(cpu_ms[name]), statistics.median(cpu_ms[on.name])
        by_cpu = cpu_on / cpu_off - 1
        # the worker runs one job at a time: each run's recording adds its time to that job's
        share = recorder_ms * off.median / 1000
        ok = ok and share < TARGET
        lines.append(
            f"| {kind} | {fmt(off.median)} | {fmt(on.median)} | {by_rate * 100:+.1f} % | {fmt(cpu_off)} | "
            f"{fmt(cpu_on)} | {by_cpu * 100:+.1f} % | {share * 100:.1f} % | < {TARGET * 100:.0f} % |"
        )
    return "\n".join(lines) + "\n", ok


def recorder_cost(jobs: int = 100_000) -> float:
    """What `HistoryRecorder.settled` costs per run (ms, the best of 5), in-process, against a
    backend that writes nothing: the recording's own part of a job, free of any server's noise."""
    from qadmin.job import Job, JobState, utcnow
    from qadmin.worker.history import HistoryRecorder

    class Nowhere:
        def record_history(self, samples: object) -> None:
            return None

        def oldest_ready(self, queues: object, now: object) -> dict[str, object]:
            return {}

    now = utcnow()
    job = Job(id=1, queue="default", class_name="qadmin.examples.noop", state=JobState.LOCKED, run_at=now)
    best = float("inf")
    for _ in range(5):
        recorder = HistoryRecorder(Nowhere(), ["default"], 25, clock=utcnow)  # type: ignore[arg-type]
        started = time.perf_counter()
        for _ in range(jobs // 5):
            recorder.settled(job, 0.0004, None, False, None)
        best = min(best, (time.perf_counter() - started) / (jobs // 5) * 1000)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(backends="sqlite,redis", repeats=5)
    parser.add_argument("--jobs", type=int, help="jobs per cell (default 3000, --quick 200)")
    args = parser.parse_args(argv)
    jobs = args.jobs or (200 if args.quick else 3000)
    repeats = 1 if args.quick else args.repeats
    started = time.monotonic()
    with Servers() as servers:
        bench = Bench(servers, jobs)
        cells = build_cells(bench, backends_arg(args.backends), jobs)
        progress(f"history cost: {jobs} jobs per cell, {repeats} rounds, {len(cells)} cells")
        results = interleave(cells, repeats)
    print(
        table(
            f"Worker throughput with history recording on and off ({jobs} no-op jobs; {repeats} rounds, interleaved)",
            results,
            extra={"machine": machine(), "wall time": f"{time.monotonic() - started:.0f} s"},
        )
    )
    recorder_ms = recorder_cost()
    text, ok = costs(results, bench.cpu_ms, recorder_ms)
    print(text)
    print(f"HistoryRecorder.settled: {recorder_ms * 1000:.2f} µs per run (in-process, best of 5)")
    write_json(args.json, "history_cost", results, jobs=jobs, repeats=repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
