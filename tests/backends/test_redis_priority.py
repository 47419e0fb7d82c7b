"""Resque's queues have no priorities: on Redis a priority is refused with one clear error on every
path (Python API, bulk enqueue, `@job` defaults, the CLI), and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import qadmin
from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend
from qadmin.cli import main
from qadmin.client import Client
from qadmin.errors import UsageError
from qadmin.job import NewJob

pytestmark = pytest.mark.redis

NOOP = "qadmin.examples.noop"


def _stored(r) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Every key a job could have been written to."""
    return sorted(k for k in r.keys("*") if not k.startswith(b"resque:qadmin:audit"))


def test_client_enqueue_with_a_priority_is_refused_and_writes_nothing(redis_url: str, r) -> None:  # type: ignore[no-untyped-def]
    client = Client(RedisBackend(redis_url, BackendOptions()))
    try:
        with pytest.raises(UsageError, match="no priorities.*priority 5"):
            client.enqueue(NOOP, 1, priority=5)
        with pytest.raises(UsageError, match="no priorities"):
            client.enqueue(NOOP, 1, priority=-1, delay=3600)
        assert _stored(r) == []
        # no priority, or the default one, is what a Resque queue holds
        client.enqueue(NOOP, 1)
        client.enqueue(NOOP, 2, priority=0)
        assert r.llen("resque:queue:default") == 2
    finally:
        client.close()


def test_enqueue_many_with_one_priority_writes_none_of_the_batch(redis_backend: RedisBackend, r) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match="no priorities"):
        redis_backend.enqueue_many([NewJob(NOOP, [1]), NewJob(NOOP, [2], priority=3), NewJob(NOOP, [3])])
    assert _stored(r) == []


def test_a_job_registered_with_a_priority_is_refused_on_redis(redis_url: str, r) -> None:  # type: ignore[no-untyped-def]
    @qadmin.job("tests.prioritised", priority=7)
    def prioritised() -> None:
        pass

    client = Client(RedisBackend(redis_url, BackendOptions()))
    try:
        with pytest.raises(UsageError, match="priority 7"):
            client.enqueue(prioritised)
        assert _stored(r) == []
    finally:
        client.close()


def test_cli_enqueue_priority_exits_2_with_one_line(redis_url: str, r, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None})
    with runner.isolated_filesystem(temp_dir=tmp_path):
        result = runner.invoke(main, ["--url", redis_url, "enqueue", NOOP, "1", "--priority", "4"])
        ok = runner.invoke(main, ["--url", redis_url, "enqueue", NOOP, "1", "--priority", "0"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no priorities" in lines[0], result.output
    assert ok.exit_code == 0, ok.output
    assert r.llen("resque:queue:default") == 1
