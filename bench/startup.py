"""Start-up: how long `qadmin jobs`, `stats` and `retry --failed --dry-run` take on a small
SQLite database, against `python -c 'import sqlalchemy'`, and `qadmin --url redis://… jobs`
against `python -c 'import redis'` (issue #18 point 6: within 1.15× of the import alone).

    python -m bench.startup [--rounds 30] [--jobs 100] [--profile]

Each cell is one fresh process, timed from spawn to exit (wall time); the cells run interleaved,
round by round (`bench.common.interleave`), and the ratio is between medians of the same run.
`--profile` adds, for each command, the modules it imports beyond its baseline and their import
time (`python -X importtime`, the least of three runs): what a ratio above the target is made of.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.common import ROOT, Cell, Result, Servers, Skip, fmt, interleave, machine, progress
from bench.fill import Layout, RedisFill, SqlFill

#: the issue's target: a command within this factor of its baseline import
TARGET = 1.15


@dataclass(frozen=True)
class Command:
    name: str
    #: what follows `python` (`-m qadmin ...` or `-c 'import ...'`)
    argv: tuple[str, ...]
    #: the baseline's name, None for a baseline
    baseline: str | None = None


def commands(sqlite_url: str, redis_url: str | None) -> list[Command]:
    sql = ("-m", "qadmin", "--url", sqlite_url)
    found = [
        Command("python -c 'import sqlalchemy'", ("-c", "import sqlalchemy")),
        Command("qadmin jobs (sqlite)", (*sql, "jobs"), "python -c 'import sqlalchemy'"),
        Command("qadmin stats (sqlite)", (*sql, "stats"), "python -c 'import sqlalchemy'"),
        Command(
            "qadmin retry --failed --dry-run (sqlite)",
            (*sql, "retry", "--failed", "--dry-run"),
            "python -c 'import sqlalchemy'",
        ),
    ]
    if redis_url is not None:
        found += [
            Command("python -c 'import redis'", ("-c", "import redis")),
            Command("qadmin jobs (redis)", ("-m", "qadmin", "--url", redis_url, "jobs"), "python -c 'import redis'"),
        ]
    return found


def environment() -> dict[str, str]:
    """The tree this script belongs to first on the path (a checkout's qadmin, not an installed one),
    no config file or backend from the caller's environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("QADMIN_URL", "QADMIN_BACKEND", "QADMIN_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "160"
    return env


def timed(argv: tuple[str, ...], env: dict[str, str], cwd: str) -> float:
    """One fresh process, spawn to exit, in milliseconds."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *argv], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = (time.perf_counter() - started) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[-300:]}")
    return elapsed


def imported(argv: tuple[str, ...], env: dict[str, str], cwd: str, runs: int = 3) -> dict[str, float]:
    """Each module `python argv` imports, with its own import time in ms (the least of `runs`)."""
    least: dict[str, float] = {}
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", *argv], env=env, cwd=cwd, capture_output=True, text=True, check=False
        )
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, _cumulative, name = line.split("|", 2)
            module, micros = name.strip(), int(own.split(":", 1)[1]) / 1000
            least[module] = min(least.get(module, micros), micros)
    return least


def profile(found: list[Command], env: dict[str, str], cwd: str, top: int = 12) -> str:
    """For each command, the import time of what it imports beyond its baseline, by package."""
    lines = ["### what each command imports beyond its baseline", ""]
    baselines = {c.name: imported(c.argv, env, cwd) for c in found if c.baseline is None}
    for command in found:
        if command.baseline is None:
            continue
        base = baselines[command.baseline]
        extra = {m: t for m, t in imported(command.argv, env, cwd).items() if m not in base}
        by_package: Counter[str] = Counter()
        for module, ms in extra.items():
            parts = module.split(".")
            by_package[".".join(parts[:3] if parts[0] == "qadmin" else parts[:1])] += ms
        shown = ", ".join(f"{name} {ms:.1f}" for name, ms in by_package.most_common(top))
        lines.append(
            f"* {command.name}: {len(extra)} modules, {sum(extra.values()):.0f} ms of import beyond "
            f"{command.baseline} ({sum(base.values()):.0f} ms): {shown}"
        )
    return "\n".join(lines) + "\n"


def report(found: list[Command], results: list[Result], started_on: str) -> str:
    by_name = {r.name: r for r in results}
    lines = [
        "### start-up: a fresh process, spawn to exit (wall time, medians of interleaved rounds)",
        "",
        "| command | median | min–max | n | baseline | baseline median | ratio |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for command in found:
        result = by_name[command.name]
        if result.skipped:
            lines.append(f"| {command.name} | skipped: {result.skipped} | | | | | |")
            continue
        span = f"{fmt(min(result.values))}–{fmt(max(result.values))}" if result.values else "–"
        base = by_name.get(command.baseline) if command.baseline else None
        if base is None or not base.values or not result.values:
            lines.append(f"| {command.name} | {fmt(result.median)} ms | {span} | {len(result.values)} | | | |")
            continue
        lines.append(
            f"| {command.name} | {fmt(result.median)} ms | {span} | {len(result.values)} | {command.baseline} | "
            f"{fmt(base.median)} ms | {result.median / base.median:.2f}× |"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    lines += [
        "",
        f"* ratio: the command's median over its baseline's; the target is at most {TARGET}×",
        f"* machine: {started_on}; load {load:.2f} at the end",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds; each cell runs once per round")
    parser.add_argument("--jobs", type=int, default=100, help="jobs in the small databases (a tenth failed)")
    parser.add_argument("--no-redis", action="store_true", help="SQLite only (no redis-server started)")
    parser.add_argument(
        "--profile", action="store_true", help="also list what each command imports beyond its baseline"
    )
    parser.add_argument("--quick", action="store_true", help="three rounds of ten jobs: checks that it runs")
    args = parser.parse_args(argv)
    rounds, jobs = (3, 10) if args.quick else (args.rounds, args.jobs)
    env = environment()
    started_on = machine()  # with the load before the rounds
    with Servers() as servers:
        cwd = str(servers.tmp)  # no qadmin.toml of the caller's
        sqlite_url = servers.sqlite_url("startup")
        layout = Layout(jobs, datetime.now(UTC))
        SqlFill(sqlite_url, layout).load()
        redis_url: str | None = None
        if not args.no_redis:
            try:
                redis_url = servers.redis_url()
                RedisFill(redis_url, layout).load()
            except Skip as exc:
                progress(f"  redis cells skipped: {exc}")
        found = commands(sqlite_url, redis_url)
        cells = [Cell(c.name, (lambda c=c: timed(c.argv, env, cwd)), unit="ms", higher_is_better=False) for c in found]
        results = interleave(cells, rounds)
        print(report(found, results, started_on))
        if args.profile:
            print(profile(found, env, cwd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
