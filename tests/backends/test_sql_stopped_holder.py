"""A stopped process holding SQLite's write lock (issue 14.1): SIGSTOP, Ctrl-Z, a debugger or a
frozen cgroup catching a qadmin writer inside its transaction. Reads answer as ever; writers wait
no longer than the bound (the busy timeout, `?timeout=` in the URL) and then fail in one line
naming the holder's pid; a worker says so and carries on once the holder lets go.

Real processes on a real file; the holder is a qadmin process stopped inside a write
transaction, as a worker stopped in the middle of a claim would be."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.job import NewJob

HOLDER = """
import sys
from qadmin.backends import open_backend
b = open_backend(sys.argv[1])
with b.store.write() as conn:
    print("held", flush=True)
    sys.stdin.readline()
b.close()
"""


def _qadmin(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", url, *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def stopped_holder(tmp_path: Path):
    db = tmp_path / "q.db"
    url = f"sqlite:///{db}"
    backend = open_backend(url)
    backend.init()
    backend.enqueue_many([NewJob("qadmin.examples.record", [str(tmp_path / "ran.txt"), f"job-{i}"]) for i in range(3)])
    failed = backend.enqueue(NewJob("qadmin.examples.noop", ["x"], queue="other"))
    backend.close()
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE delayed_jobs SET failed_at = '2026-01-01 00:00:00', last_error = 'Boom' WHERE id = ?", (failed.id,)
        )
    conn.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    os.kill(holder.pid, signal.SIGSTOP)
    try:
        yield url + "?timeout=2", holder, tmp_path
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGCONT)
            holder.stdin.write("\n")
            holder.stdin.flush()
        holder.wait(60)


def test_reads_answer_and_writers_name_the_stopped_holder(stopped_holder) -> None:
    url, holder, tmp_path = stopped_holder
    stats = _qadmin(url, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["queues"]["default"]["pending"] == 3
    jobs = _qadmin(url, "jobs", "--json")
    assert jobs.returncode == 0 and len(json.loads(jobs.stdout)) == 4, jobs.stderr
    for args in (["enqueue", "qadmin.examples.noop"], ["retry", "--failed"], ["pause", "default"]):
        res = _qadmin(url, *args)
        assert res.returncode == 1, (args, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
        assert f"pid {holder.pid}" in lines[0] and "stopped" in lines[0], lines[0]


def test_a_worker_waits_out_a_stopped_holder_then_runs_the_jobs(stopped_holder) -> None:
    url, holder, tmp_path = stopped_holder
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qadmin",
            "--url",
            url,
            "worker",
            "--burst",
            "--queue",
            "default",
            "--import",
            "qadmin.examples",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # the worker reports the holder (after the bound) and keeps trying
        seen = []
        for line in worker.stdout:
            seen.append(line)
            if f"pid {holder.pid}" in line:
                break
        assert any(f"pid {holder.pid}" in line for line in seen), "".join(seen)
        os.kill(holder.pid, signal.SIGCONT)
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(60)
        rest, _ = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, "".join(seen) + rest
    assert "Traceback" not in "".join(seen) + rest
    assert sorted((tmp_path / "ran.txt").read_text().split()) == ["job-0", "job-1", "job-2"]
