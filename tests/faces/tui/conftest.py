"""Fixtures for the console tests: `qadmin demo`'s jobs in SQLite, and in Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.job import utcnow
from tests.faces.tui.demo_data import clock as fixed_clock
from tests.faces.tui.harness import Console
from tests.faces.tui.scenes import demo_database


def _redis_console(request: pytest.FixtureRequest) -> Console:
    from qadmin.demo import fill

    url = request.getfixturevalue("redis_url")
    backend = open_backend(url)
    fill(backend)
    backend.close()
    return Console("redis", url, utcnow)


@pytest.fixture(params=["sqlite", "redis"])
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Console:
    """`qadmin demo`'s jobs in SQLite (at fixed times) or Redis (by `qadmin.demo.fill`)."""
    if request.param == "sqlite":
        return Console("sqlite", demo_database(tmp_path), fixed_clock)
    return _redis_console(request)


@pytest.fixture
def sqlite_console(tmp_path: Path) -> Console:
    return Console("sqlite", demo_database(tmp_path), fixed_clock)
