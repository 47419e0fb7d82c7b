"""`python -m bench.startup` runs end to end at a tiny size and prints a row for every command
with its baseline and ratio, and the profile of what each imports. Never a time asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

COMMANDS = {
    "python -c 'import sqlalchemy'": None,
    "qadmin jobs (sqlite)": "python -c 'import sqlalchemy'",
    "qadmin stats (sqlite)": "python -c 'import sqlalchemy'",
    "qadmin retry --failed --dry-run (sqlite)": "python -c 'import sqlalchemy'",
    "python -c 'import redis'": None,
    "qadmin jobs (redis)": "python -c 'import redis'",
}


def test_startup_prints_a_row_per_command_with_its_ratio() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.startup", "--quick", "--profile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {
        line.split(" | ")[0][2:]: line
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| command ")
    }
    assert set(rows) == set(COMMANDS), proc.stdout
    for name, baseline in COMMANDS.items():
        assert "skipped" not in rows[name], rows[name]
        if baseline is not None:
            assert baseline in rows[name] and re.search(r"\| [\d.]+× \|$", rows[name]), rows[name]
    assert "machine:" in proc.stdout and "load" in proc.stdout
    for name, baseline in COMMANDS.items():
        if baseline is not None:
            assert f"* {name}: " in proc.stdout, f"no profile line for {name}"
