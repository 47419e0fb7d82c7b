"""SQLite: the lock file qadmin's writers queue for (`<db>-qadmin-write.lock`, `qadmin.backends.sql.writelock`).

It only orders qadmin's writers: SQLite's write lock still decides who writes. Real processes:
two workers run each job once through it; a SIGKILLed holder (in the middle of a write
transaction) blocks no one after it; a forked child holds its own lock, not its parent's; and
in-memory and URI databases, which have no file beside them, write without one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.backends.sql import writelock
from qadmin.job import NewJob, utcnow
from tests.worker.test_worker_processes import client, count, procs
from tests.worker.test_worker_sql_processes import workers_run_each_job_once

__all__ = ["procs"]

NOOP = "qadmin.examples.noop"
HOUR = 3600.0

#: holds qadmin's write lock and SQLite's in one open write transaction, as a worker does while
#: it completes a job, until killed
HOLDER = textwrap.dedent("""
    import sys, time
    from qadmin.backends import open_backend
    backend = open_backend(sys.argv[1])
    with backend.engine.connect() as conn, backend.dialect.driver_transaction(conn):
        print("held", flush=True)
        time.sleep(600)
""")


def _db(url: str) -> str:
    return url.split("sqlite:///", 1)[1]


def test_two_worker_processes_run_each_job_once_through_the_lock(sqlite_url: str, tmp_path: Path, procs) -> None:
    workers_run_each_job_once(sqlite_url, tmp_path, procs, [[], ["--prefetch", "3"]], n=600)
    assert os.path.exists(_db(sqlite_url) + writelock.SUFFIX)  # the workers went through it


def test_a_sigkilled_holder_blocks_no_writer_after_it(sqlite_url: str, tmp_path: Path) -> None:
    with client(sqlite_url) as c:
        c.enqueue_many([NewJob(NOOP, [1])])
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, sqlite_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        wrote = threading.Event()
        errors: list[Exception] = []

        def write() -> None:
            try:
                with client(sqlite_url) as c:
                    c.enqueue_many([NewJob(NOOP, [2])])
                wrote.set()
            except Exception as exc:  # noqa: BLE001 - reported by the assertions below
                errors.append(exc)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        # the holder is alive, in its transaction: the writer waits (for as long as it lives)
        assert not wrote.wait(1.0), "a second writer wrote while the first held the write lock"
        holder.kill()
        holder.wait(10)
        # its flock died with it: the waiting writer goes on, and so does everyone after it
        writer.join(60)
        assert wrote.is_set(), errors
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
    backend = open_backend(sqlite_url)
    try:
        job = backend.claim(["*"], "w", utcnow(), HOUR, lambda j: True)
        assert job is not None
        backend.complete(job, "w", utcnow(), 0.0)
        assert count(sqlite_url, "pending") == 1
    finally:
        backend.close()


def test_a_forked_child_takes_its_own_lock_not_its_parents(sqlite_url: str) -> None:
    with client(sqlite_url):
        pass
    lock = writelock.for_file(_db(sqlite_url))
    with lock.held():
        pid = os.fork()
        if pid == 0:  # the child: the parent holds the lock, so the child must not get it
            code = 1
            try:
                fd = writelock.for_file(_db(sqlite_url))._file()
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child shared its parent's flock"


def test_a_write_inside_a_write_does_not_wait_for_itself(sqlite_url: str) -> None:
    with client(sqlite_url):
        pass
    lock = writelock.for_file(_db(sqlite_url))
    with lock.held():
        with lock.held():
            pass
        other_thread_got_it = threading.Event()

        def take() -> None:
            with lock.held():
                other_thread_got_it.set()

        t = threading.Thread(target=take, daemon=True)
        t.start()
        # threads share the process's flock: the thread lock keeps them apart
        assert not other_thread_got_it.wait(0.3)
    t.join(10)
    assert other_thread_got_it.is_set()


# a file named by a URI (`sqlite_file` leaves URIs to SQLite's locking alone); in memory is refused
@pytest.mark.parametrize("url", ["sqlite:///file:qadmin.db?uri=true"])
def test_databases_without_a_file_write_without_a_lock_file(url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    backend = open_backend(url)
    try:
        backend.init()
        assert isinstance(backend.dialect.write_lock(), contextlib.nullcontext)
        backend.enqueue_many([NewJob(NOOP, [i]) for i in range(3)])
        job = backend.claim(["*"], "w", utcnow(), HOUR, lambda j: True)
        assert job is not None
        session = backend.session("w")
        [following] = session.complete_and_claim(job, utcnow(), 0.0, ["*"], HOUR, lambda j: True, 1)
        session.close()
        backend.complete(following, "w", utcnow(), 0.0)
    finally:
        backend.close()
    assert not list(tmp_path.glob("*" + writelock.SUFFIX))
