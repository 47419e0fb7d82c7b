"""Worker process options the other process tests do not cover: --max-memory, --pidfile, --reload."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.job import NewJob
from qadmin.worker import Worker, WorkerOptions
from tests.worker.test_worker_processes import PID_JOBS, client, lines, procs, wait_for  # noqa: F401 - fixture

VERSIONED_JOBS = """
VERSION = {version}

def record_version(path, token):
    with open(path, "a") as fh:
        fh.write(f"{{token}} v{{VERSION}}\\n")
"""


def test_max_memory_recycles_the_process_between_jobs(sqlite_url: str, tmp_path: Path, procs) -> None:
    (tmp_path / "pidjobs.py").write_text(PID_JOBS)
    out = tmp_path / "ran.txt"
    with client(sqlite_url) as c:
        c.enqueue_many(NewJob("pidjobs.record_pid", [str(out), f"t{i}"], queue="q") for i in range(3))
    p = procs(sqlite_url)
    # any Python process is over 1 MB resident: every job is followed by a recycle
    run = p.run("worker", "--burst", "--sleep", "0.1", "--max-memory", "1", "--import", "pidjobs")
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in lines(out)]
    assert sorted(t for t, _ in rows) == ["t0", "t1", "t2"]
    assert sorted(Counter(pid for _, pid in rows).values()) == [1, 1, 1]
    assert "recycling at" in run.stderr and "MB resident" in run.stderr


def test_pidfile_holds_the_worker_pid_while_it_runs(sqlite_url: str, tmp_path: Path, procs) -> None:
    out = tmp_path / "ran.txt"
    pidfile = tmp_path / "worker.pid"
    with client(sqlite_url) as c:
        c.enqueue("qadmin.examples.sleep_then_record", str(out), "slow", 1.5, queue="q")
    p = procs(sqlite_url)
    worker = p.start("worker", "--burst", "--sleep", "0.1", "--pidfile", str(pidfile))
    wait_for(pidfile.exists, 30, "the pidfile", p.logs)
    assert pidfile.read_text().strip() == str(worker.pid)
    p.wait_all(60)
    assert worker.returncode == 0, p.logs()
    assert lines(out) == ["slow"]
    assert not pidfile.exists()


def test_reload_restarts_workers_on_source_changes(sqlite_url: str, tmp_path: Path, procs) -> None:
    module = tmp_path / "versioned.py"
    module.write_text(VERSIONED_JOBS.format(version=1))
    out = tmp_path / "ran.txt"
    with client(sqlite_url) as c:
        c.enqueue("versioned.record_version", str(out), "first", queue="q")
    p = procs(sqlite_url)
    p.start("worker", "--reload", "--sleep", "0.1", "--import", "versioned", "-v")
    wait_for(lambda: lines(out) == ["first v1"], 60, "the first job", p.logs)

    module.write_text(VERSIONED_JOBS.format(version=2))
    future = time.time() + 5  # a different mtime even on coarse file systems
    os.utime(module, (future, future))
    wait_for(lambda: "source files changed" in p.logs(), 30, "the reload", p.logs)
    with client(sqlite_url) as c:
        c.enqueue("versioned.record_version", str(out), "second", queue="q")
    wait_for(lambda: len(lines(out)) == 2, 60, "the second job", p.logs)
    assert lines(out) == ["first v1", "second v2"]


@pytest.mark.postgres
def test_a_worker_whose_database_is_down_at_start_waits_for_it(
    postgres_server, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # the CLI checks the URL before it forks, but the server can go away right after that check
    backend = open_backend(postgres_url)
    backend.init()
    with client(postgres_url) as c:
        c.enqueue("qadmin.examples.noop", 1, queue="q")
    worker = Worker(backend, WorkerOptions(queues=["q"], burst=True, sleep=0.05, imports=["qadmin.examples"]))
    postgres_server.stop()
    outcome: list[int] = []
    thread = threading.Thread(target=lambda: outcome.append(worker.work()))
    try:
        with caplog.at_level(logging.WARNING, logger="qadmin.worker"):
            thread.start()
            wait_for(lambda: "cannot register" in caplog.text, 30, "the worker to retry its registration")
            assert thread.is_alive()
            postgres_server.start()
            thread.join(60)
    finally:
        if not postgres_server.running:
            postgres_server.start()
        worker.stop()
        thread.join(10)
        backend.close()
    assert outcome == [0] and worker.processed == 1
