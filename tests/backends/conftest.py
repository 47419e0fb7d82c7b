"""Fixtures the Redis backend's test files share (the servers come from tests/conftest.py)."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture
def r(redis_url: str):  # type: ignore[no-untyped-def]
    """A raw redis-py client on the test server: what Resque and php-resque would see."""
    import redis

    return redis.Redis.from_url(redis_url)


@pytest.fixture
def redis_backend(redis_url: str) -> Iterator:
    from qadmin.backends.base import BackendOptions
    from qadmin.backends.redis import RedisBackend

    b = RedisBackend(redis_url, BackendOptions())
    yield b
    b.close()
