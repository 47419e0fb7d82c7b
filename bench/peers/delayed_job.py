"""delayed_job on SQLite: the Debian gems' `Delayed::Worker#work_off` (bench/dj_worker.rb).

The rows are written as `Delayed::Job.enqueue` writes them (docs/compatibility.md §4.4), in the
table qadmin creates for it (the same layout, WAL mode). Durability is equal on both sides: the
worker's connection sets `synchronous=NORMAL`, as qadmin/backends/sql/sqlite.py does on each of its
connections, in WAL mode; no log on either side.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from functools import cache

from bench.common import ROOT, Skip, reset
from bench.peers import Peer
from bench.stamps import STAMPS_PER_END

WORKER = str(ROOT / "bench" / "dj_worker.rb")


def need() -> None:
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


@cache
def handlers() -> dict[str, str]:
    """The YAML handlers of the no-op and stamp jobs, as Ruby's Psych writes them."""
    out = subprocess.run(["ruby", WORKER, "handlers"], check=False, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise Skip(f"ruby: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else 'failed'}")
    parsed: dict[str, str] = json.loads(out.stdout)
    return parsed


def path_of(url: str) -> str:
    return url.split("sqlite:///", 1)[1]


def fill(url: str, n: int, stamp_path: str) -> None:
    """n rows in one transaction: stamp jobs at both ends, no-ops between."""
    noop = handlers()["noop"]
    stamp = handlers()["stamp"].replace("PATH", json.dumps(stamp_path))
    reset("sqlite", url)  # the delayed_jobs table and WAL mode, as qadmin creates them
    k = min(STAMPS_PER_END, max(n // 10, 1))
    base = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)
    rows = []
    for i in range(n):
        # distinct run_at so delayed_job's ORDER BY priority, run_at keeps the queue's order
        at = (base + timedelta(microseconds=i)).isoformat(" ")
        rows.append((0, 0, stamp if i < k or i >= n - k else noop, at, at, at))
    conn = sqlite3.connect(path_of(url))
    try:
        with conn:
            conn.executemany(
                "INSERT INTO delayed_jobs (priority, attempts, handler, run_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
    finally:
        conn.close()


def commands(url: str, processes: int) -> list[list[str]]:
    return [["ruby", WORKER, "work", path_of(url)] for _ in range(processes)]


def remaining(url: str) -> int:
    conn = sqlite3.connect(path_of(url))
    try:
        return int(conn.execute("SELECT count(*) FROM delayed_jobs").fetchone()[0])
    finally:
        conn.close()


def version() -> str:
    out = subprocess.run(
        [
            "ruby",
            "-e",
            'require "delayed_job"; require "active_record"; require "sqlite3"; '
            'print Gem.loaded_specs.values_at("delayed_job", "activerecord").compact.map { |s| "#{s.name} #{s.version}" }.join(", "), '
            '", sqlite3 gem ", SQLite3::VERSION, ", ruby ", RUBY_VERSION',
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown (ruby failed)"


PEERS = [
    Peer(
        name="delayed_job",
        backend="sqlite",
        guarantee="rerun after max_run_time (4 h by default): the row stays locked by the dead worker until "
        "its locked_at is older than that, then any worker reserves it again",
        settings="Delayed::Worker#work_off(1000) until empty, sleep_delay 0, logging off; SQLite WAL, "
        "synchronous=NORMAL, busy timeout 60 s (qadmin's settings); one job per reserve",
        need=need,
        fill=fill,
        commands=commands,
        remaining=remaining,
    )
]
