"""bench/capacity.py runs end to end at a tiny size and prints its tables: a row per cell with a
figure (or a stated reason to skip it), and the CPU per job of the workers and of the server.
Times are never asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_capacity_prints_worker_and_server_cpu_per_job() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.capacity", "--quick", "--jobs", "60"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-3000:]}"
    out = proc.stdout
    assert "### Capacity: CPU per job of the workers and of the server" in out, out
    rows = {
        line[2:].partition(" | ")[0]: line[2:].partition(" | ")[2]
        for line in out.split("### Capacity: CPU per job")[1].splitlines()
        if line.startswith("| ") and not line.startswith("| cell ")
    }
    for name in ("postgresql ×1", "postgresql ×2", "postgresql via pgbouncer ×2", "redis ×1", "redis ×2"):
        assert name in rows, f"no row {name!r} in:\n{out}"
        assert "error:" not in rows[name], f"{name} crashed: {rows[name]}"
