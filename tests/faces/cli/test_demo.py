"""The walk-through of the README: `qadmin demo`, `qadmin stats`, `qadmin retry --failed --queue email`,
`qadmin worker --burst`, as a shell runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from qadmin.cli import main

STATES = ("pending", "scheduled", "locked", "stale", "failed", "finished")


def qadmin(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", url, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_demo_fills_every_state_on_each_sql_database(sql_url: str) -> None:
    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None})
    demo = runner.invoke(main, ["--url", sql_url, "demo", "--json"], catch_exceptions=False)
    assert demo.exit_code == 0, demo.output
    counts = json.loads(demo.stdout)
    assert all(counts[s] > 0 for s in ("pending", "scheduled", "locked", "failed", "finished")), counts
    stats = json.loads(runner.invoke(main, ["--url", sql_url, "stats", "--json"]).stdout)
    assert all(stats["totals"].get(s, 0) > 0 for s in STATES), stats["totals"]
    assert len([q for q, c in stats["queues"].items() if c["pending"]]) >= 2
    # failures carry real tracebacks from a real worker run
    failed = json.loads(runner.invoke(main, ["--url", sql_url, "jobs", "--state", "failed", "--json"]).stdout)
    assert failed and all("Traceback (most recent call last)" in j["last_error"] for j in failed)
    assert stats["processed"] > 0 and stats["failed"] > 0


@pytest.mark.slow
def test_demo_stats_retry_and_burst_as_the_readme_says(sqlite_url: str, tmp_path: Path) -> None:
    demo = qadmin(sqlite_url, "demo", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    stats = json.loads(qadmin(sqlite_url, "stats", "--json", cwd=tmp_path).stdout)
    assert all(stats["totals"].get(s, 0) > 0 for s in STATES), stats["totals"]
    failed_before = {q: c["failed"] for q, c in stats["queues"].items()}
    assert failed_before["email"] > 0 and sum(failed_before.values()) > failed_before["email"]

    retry = qadmin(sqlite_url, "retry", "--failed", "--queue", "email", cwd=tmp_path)
    assert retry.returncode == 0, retry.stderr
    n = failed_before["email"]
    assert f"Retried {n} of {n} matched job{'' if n == 1 else 's'}." in retry.stdout
    after = json.loads(qadmin(sqlite_url, "stats", "--json", cwd=tmp_path).stdout)["queues"]
    assert after["email"]["failed"] == 0
    assert {q: c["failed"] for q, c in after.items() if q != "email"} == {
        q: f for q, f in failed_before.items() if q != "email"
    }

    burst = qadmin(sqlite_url, "worker", "--burst", "--sleep", "0.1", "--import", "qadmin.examples", cwd=tmp_path)
    assert burst.returncode == 0, burst.stderr
    assert "*** Starting job worker" in burst.stderr and "jobs processed at" in burst.stderr
    final = json.loads(qadmin(sqlite_url, "stats", "--json", cwd=tmp_path).stdout)
    totals = final["totals"]
    assert totals["pending"] == 0 and totals["stale"] == 0, totals
    # the live lock of the demo's other worker is left alone; future jobs stay scheduled
    assert totals["locked"] == 1 and totals["scheduled"] == stats["totals"]["scheduled"]
    assert totals["finished"] > stats["totals"]["finished"]
