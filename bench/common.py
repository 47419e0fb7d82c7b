"""What every benchmark shares: its servers, interleaved repeated cells, and the tables it prints.

A comparison is a set of *cells* (one system doing one thing). `interleave` runs every cell once per
round, rotating the order each round, so that a noisy neighbour on a 2-core machine slows all cells
of a round alike; ratios are taken between medians of the same run. Nothing here asserts a time:
the tests only check that each script prints its table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class Skip(Exception):
    """A cell that cannot run here (a missing peer, a face not written yet): shown, not fatal."""


# --- cells, rounds, results -------------------------------------------------------------------
@dataclass
class Result:
    name: str
    unit: str
    #: True for rates (jobs/s), False for durations (ms)
    higher_is_better: bool
    values: list[float] = field(default_factory=list)
    skipped: str | None = None
    #: the cell this one is compared with, and how the ratio is read
    ref: str | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "values": self.values,
            "median": self.median,
            "skipped": self.skipped,
            "ref": self.ref,
            "note": self.note,
        }


@dataclass
class Cell:
    name: str
    run: Callable[[], float]
    unit: str = "jobs/s"
    higher_is_better: bool = True
    ref: str | None = None
    note: str = ""


def interleave(cells: Sequence[Cell], repeats: int, *, log: Callable[[str], None] | None = None) -> list[Result]:
    """Run each cell `repeats` times, round by round, rotating the order every round.

    A cell raising Skip is not tried again; any other exception is reported as a skipped cell with
    the error, so one broken peer does not lose the rest of a long run.
    """
    log = log or progress
    results = {c.name: Result(c.name, c.unit, c.higher_is_better, ref=c.ref, note=c.note) for c in cells}
    for round_no in range(repeats):
        shift = round_no % max(len(cells), 1)
        for cell in list(cells[shift:]) + list(cells[:shift]):
            result = results[cell.name]
            if result.skipped:
                continue
            try:
                value = cell.run()
            except Skip as exc:
                result.skipped = str(exc)
                log(f"  {cell.name}: skipped ({exc})")
                continue
            except Exception as exc:  # noqa: BLE001 - report the broken cell, keep measuring the others
                result.skipped = f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log(f"  {cell.name}: FAILED {result.skipped}")
                continue
            result.values.append(value)
            log(f"  round {round_no + 1}/{repeats} {cell.name}: {fmt(value)} {cell.unit}")
    return [results[c.name] for c in cells]


def ratio(result: Result, ref: Result | None) -> float | None:
    """How many times better `result` is than `ref` (>1 = better), from the medians."""
    if ref is None or not result.values or not ref.values:
        return None
    a, b = result.median, ref.median
    if a <= 0 or b <= 0:
        return None
    return a / b if result.higher_is_better else b / a


# --- output -----------------------------------------------------------------------------------
def fmt(value: float | None) -> str:
    if value is None or value != value:
        return "–"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(title: str, results: Iterable[Result], *, extra: dict[str, str] | None = None) -> str:
    """A Markdown table: median, min–max over the rounds, and the ratio to the reference cell."""
    results = list(results)
    by_name = {r.name: r for r in results}
    lines = [f"### {title}", "", "| cell | median | min–max | n | vs | ratio |", "|---|---:|---:|---:|---|---:|"]
    for r in results:
        if r.skipped:
            lines.append(f"| {r.name} | skipped: {r.skipped} | | | | |")
            continue
        rr = ratio(r, by_name.get(r.ref)) if r.ref else None
        span = f"{fmt(min(r.values))}–{fmt(max(r.values))}" if r.values else "–"
        vs = r.ref or ""
        lines.append(
            f"| {r.name} | {fmt(r.median)} {r.unit} | {span} | {len(r.values)} | {vs} | "
            f"{'' if rr is None else f'{rr:.2f}×'} |"
        )
    for r in results:
        if r.note:
            lines.append(f"\n* {r.name}: {r.note}")
    for key, value in (extra or {}).items():
        lines.append(f"\n* {key}: {value}")
    return "\n".join(lines) + "\n"


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the tables."""
    print(message, file=sys.stderr, flush=True)


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        mem = 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem // 1024} GB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load {load:.2f} at start"
    )


def write_json(path: str | None, name: str, results: list[Result], **extra: Any) -> None:
    if not path:
        return
    target = Path(path)
    data = json.loads(target.read_text()) if target.exists() else {}
    data[name] = {"results": [r.to_dict() for r in results], **extra}
    target.write_text(json.dumps(data, indent=1, default=str))


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: checks that it runs")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each cell runs once per round")
    parser.add_argument(
        "--backends", default="sqlite,postgresql,redis", help="comma-separated subset of sqlite,postgresql,redis"
    )
    parser.add_argument("--json", help="also write the results into this JSON file")
    return parser


def backends_arg(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    for name in names:
        if name not in ("sqlite", "postgresql", "redis"):
            raise SystemExit(f"unknown backend {name!r}: expected sqlite, postgresql, redis")
    return names


# --- servers ----------------------------------------------------------------------------------
def stop_on_sigterm() -> None:
    """SIGTERM (a time-out, `kill`) would end Python without `finally`: make it KeyboardInterrupt so
    that worker processes are killed and servers stopped on the way out."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):

        def interrupt(signum: int, _frame: Any) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, interrupt)


class Servers:
    """redis-server and PostgreSQL on free loopback ports (tests/servers.py's), started on first use.

    A missing server binary or driver becomes a Skip for the cells that need it.
    """

    def __init__(self) -> None:
        stop_on_sigterm()
        self.tmp = Path(tempfile.mkdtemp(prefix="qadmin-bench-"))
        self._redis: Any = None
        self._pg: Any = None
        self._dbs: set[str] = set()

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._redis is not None:
            self._redis.stop()
        if self._pg is not None:
            self._pg.destroy()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def redis(self) -> Any:
        if self._redis is None:
            try:
                import redis  # noqa: F401
            except ImportError as exc:
                raise Skip("the redis Python package is not installed") from exc
            from tests.servers import RedisServer, _redis_binary

            binary = _redis_binary()
            if binary is None:
                raise Skip("redis-server is not installed")
            self._redis = RedisServer(binary, self.tmp / "redis").start()
        return self._redis

    def redis_url(self) -> str:
        return self.redis().url

    def postgres(self) -> Any:
        if self._pg is None:
            try:
                import psycopg  # noqa: F401
            except ImportError as exc:
                raise Skip("psycopg is not installed") from exc
            from tests.servers import PostgresServer, _postgres_bindir

            bindir = _postgres_bindir()
            if bindir is None:
                raise Skip("PostgreSQL is not installed")
            # not under self.tmp: PostgreSQL runs as the postgres user, which cannot enter a 0700 dir
            base = Path(tempfile.mkdtemp(prefix="qadmin-pg-bench-"))
            self._pg = PostgresServer(bindir, base).start()
        return self._pg

    def postgres_url(self, dbname: str) -> str:
        pg = self.postgres()
        if dbname not in self._dbs:
            pg.drop_database(dbname)
            pg.create_database(dbname)
            self._dbs.add(dbname)
        return pg.url_for(dbname)

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{self.tmp / name}.db"

    def url(self, backend: str, name: str) -> str:
        if backend == "sqlite":
            return self.sqlite_url(name)
        if backend == "postgresql":
            return self.postgres_url(name)
        return self.redis_url()


def redis_backend_ready() -> None:
    """The Redis backend is written by another change; until it lands its cells are skipped."""
    backends = ROOT / "qadmin" / "backends"
    if not ((backends / "redis" / "__init__.py").exists() or (backends / "redis.py").exists()):
        raise Skip("qadmin/backends/redis/ does not exist yet")


def reset_sql(url: str) -> None:
    """Empty a SQL database's jobs table and qadmin's bookkeeping (or create them)."""
    import sqlalchemy as sa

    from qadmin.backends import BackendOptions, open_backend

    backend = open_backend(url, BackendOptions())
    try:
        backend.init()
        with backend.engine.begin() as conn:
            names = set(sa.inspect(conn).get_table_names())
            for name in (
                "delayed_jobs",
                "qadmin_finished",
                "qadmin_throughput",
                "qadmin_counters",
                "qadmin_workers",
                "qadmin_audit",
                "qadmin_audit_jobs",
                "qadmin_unique",
                "qadmin_pauses",
            ):
                if name in names:
                    conn.exec_driver_sql(f"DELETE FROM {name}")
        if backend.engine.dialect.name == "postgresql":
            # the dead rows of the cell before would otherwise be walked past by this cell's
            # claims (its figures then depend on which cells ran first)
            with backend.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        backend.close()


def reset(backend: str, url: str) -> None:
    if backend == "redis":
        import redis

        redis.Redis.from_url(url).flushdb()
    else:
        reset_sql(url)


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("PYTHONHASHSEED", "0")
    env.update(extra)
    return env


def run_processes(
    commands: Sequence[Sequence[str]], *, timeout: float, log_path: Path, env: dict[str, str] | None = None
) -> None:
    """Start the commands together and wait for all of them; their output goes to `log_path`."""
    procs = []
    with open(log_path, "ab") as log:
        for cmd in commands:
            procs.append(
                subprocess.Popen(
                    list(cmd),
                    cwd=ROOT,
                    env=env or child_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + timeout
        try:
            for proc in procs:
                remaining = max(deadline - time.monotonic(), 0.1)
                code = proc.wait(timeout=remaining)
                if code != 0:
                    tail = log_path.read_text(errors="replace").splitlines()[-15:]
                    raise RuntimeError(
                        f"{' '.join(map(str, commands[0][:4]))}… exited with {code}: " + " / ".join(tail)
                    )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{commands[0][:4]} did not finish within {timeout:.0f}s") from None
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
