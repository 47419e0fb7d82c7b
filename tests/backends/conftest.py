"""Fixtures the backend test files share (the servers come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def r(redis_url: str):  # type: ignore[no-untyped-def]
    """A raw redis-py client on the test server: what Resque and php-resque would see."""
    import redis

    return redis.Redis.from_url(redis_url)


@pytest.fixture
def redis_backend(redis_url: str) -> Iterator:
    from qadmin.backends import BackendOptions
    from qadmin.backends.redis import RedisBackend

    b = RedisBackend(redis_url, BackendOptions())
    yield b
    b.close()


@pytest.fixture
def sql_backend(sql_url: str) -> Iterator:
    """An initialised SQL backend (SQLite and PostgreSQL) whose locks go stale after four hours."""
    from qadmin.backends import BackendOptions, open_backend

    b = open_backend(sql_url, BackendOptions(max_run_time=4 * 3600.0))
    b.init()
    yield b
    b.close()
