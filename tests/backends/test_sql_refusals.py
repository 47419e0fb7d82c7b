"""What the SQL database refuses is said, in one line, and never counted (issue 14.12): a failure
the database did not take is not counted as one; an error text PostgreSQL cannot hold is still
written; a refused login says so (not "run qadmin init"); a read-only file stops a worker with
one error instead of a retry loop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from tests.interop._support import cli

NOOP = "qadmin.examples.noop"
HOUR = 3600.0


def test_a_failure_the_database_did_not_take_is_not_counted(sql_backend: Any) -> None:
    job = sql_backend.enqueue(NewJob(NOOP, ["x"]))
    claimed = sql_backend.claim(["*"], "w1", utcnow(), HOUR, lambda j: True)
    assert claimed.id == job.id
    assert sql_backend.unlock([job.id], utcnow()) == [job.id]  # an operator took the lock away
    sql_backend.fail(claimed, "w1", utcnow(), "RuntimeError: boom", None)
    stats = sql_backend.stats(utcnow())
    assert (stats.processed, stats.failed) == (0, 0)
    again = sql_backend.get(job.id, utcnow())
    assert again.state is JobState.PENDING and again.last_error is None


def test_an_error_text_with_a_nul_byte_is_written_and_counted(sql_backend: Any) -> None:
    job = sql_backend.enqueue(NewJob(NOOP, ["x"]))
    claimed = sql_backend.claim(["*"], "w1", utcnow(), HOUR, lambda j: True)
    sql_backend.fail(claimed, "w1", utcnow(), "RuntimeError: bad\x00byte\nTraceback ...", None)
    failed = sql_backend.get(job.id, utcnow())
    assert failed.state is JobState.FAILED and failed.locked_by is None
    assert failed.last_error.startswith("RuntimeError: bad") and "byte" in failed.last_error
    stats = sql_backend.stats(utcnow())
    assert (stats.processed, stats.failed) == (1, 1)
    assert sql_backend.count(JobFilter(states=frozenset({JobState.FAILED})), utcnow()) == 1


def test_a_refused_postgresql_login_says_authentication(postgres_url: str) -> None:
    url = sa.engine.make_url(postgres_url).set(username="nobody_here").render_as_string(hide_password=False)
    for args in (["jobs"], ["stats"], ["init"]):
        out = cli(url, *args, expect=1)
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in out, out
        assert "authentication failed" in lines[0] and 'role "nobody_here" does not exist' in lines[0], out
        assert "qadmin init" not in out


def test_a_read_only_sqlite_file_stops_a_worker_with_one_error(sqlite_url: str, tmp_path: Path) -> None:
    cli(sqlite_url, "init")
    cli(sqlite_url, "enqueue", NOOP, "x")
    path = sqlite_url.split("///", 1)[1]
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    assert len(cli(read_only, "jobs", "--json")) == 1  # reading works
    out = cli(read_only, "enqueue", NOOP, "y", expect=1)
    assert "read-only" in out and len(out.strip().splitlines()) == 1, out
    worker = subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", read_only, "worker", "--burst"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 1, worker.stderr
    assert "Traceback" not in worker.stderr
    assert "read-only" in worker.stderr.strip().splitlines()[-1], worker.stderr
