"""A worker process started before its server: it says it is waiting, backs off, and starts
working when the server comes up (a worker host often boots before its database). Real
redis-server and PostgreSQL processes, started after the worker."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import PostgresServer, RedisServer, _postgres_bindir, _redis_binary, missing
from tests.worker.test_worker_processes import RECORD, client, lines, procs, wait_for  # noqa: F401 - fixture


@pytest.fixture
def down_redis(tmp_path: Path) -> Iterator[RedisServer]:
    binary = _redis_binary()
    if binary is None:
        missing("redis-server is not installed (Debian package redis-server)")
    server = RedisServer(binary, tmp_path / "redis")  # on a free port, not started
    yield server
    server.stop()


@pytest.fixture
def down_postgres() -> Iterator[PostgresServer]:
    bindir = _postgres_bindir()
    if bindir is None:
        missing("PostgreSQL server binaries not found (Debian package postgresql)")
    base = Path(tempfile.mkdtemp(prefix="qadmin-pg-late-"))
    server = PostgresServer(bindir, base)
    try:
        # the database and qadmin's table exist, the server is down: a host rebooting
        server.start()
        client(server.url).close()
        server.stop()
        yield server
    finally:
        server.destroy()
        shutil.rmtree(base, ignore_errors=True)


def _worker_waits_then_works(server: RedisServer | PostgresServer, tmp_path: Path, procs) -> None:
    out = tmp_path / "ran.txt"
    p = procs(server.url)
    worker = p.start("worker", "--sleep", "0.1")
    log = tmp_path / "worker-0.log"
    wait_for(lambda: log.read_text().count("waiting for it") >= 2, 60, "the worker to say it waits twice", p.logs)
    assert worker.poll() is None, p.logs()
    assert "cannot reach" in log.read_text()
    server.start()
    with client(server.url) as c:
        c.enqueue(RECORD, str(out), "after-start", queue="q")
    wait_for(lambda: lines(out) == ["after-start"], 120, "the job to run once the server is up", p.logs)
    assert worker.poll() is None, p.logs()
    assert "Traceback" not in log.read_text(), p.logs()


@pytest.mark.redis
def test_a_worker_started_before_redis_waits_for_it(down_redis: RedisServer, tmp_path: Path, procs) -> None:
    _worker_waits_then_works(down_redis, tmp_path, procs)


@pytest.mark.postgres
def test_a_worker_started_before_postgresql_waits_for_it(down_postgres: PostgresServer, tmp_path: Path, procs) -> None:
    _worker_waits_then_works(down_postgres, tmp_path, procs)


def test_a_worker_stopped_while_waiting_exits_cleanly(down_redis: RedisServer, tmp_path: Path, procs) -> None:
    p = procs(down_redis.url)
    worker = p.start("worker", "--sleep", "0.1")
    log = tmp_path / "worker-0.log"
    wait_for(lambda: "waiting for it" in log.read_text(), 60, "the worker to wait", p.logs)
    p.stop_all()
    assert worker.returncode == 0, p.logs()
    assert "stopped while waiting" in log.read_text()
