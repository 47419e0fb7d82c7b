"""Shared pytest setup: real servers (tests/servers.py) and the browser (tests/browser.py)."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# make `tests.servers` / `tests.browser` importable however pytest was started
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

pytest_plugins = ["tests.servers", "tests.browser"]

from qadmin.backends import Backend, BackendOptions, open_backend  # noqa: E402 (after the path is set)


@pytest.fixture
def backend(any_url: str) -> Iterator[Backend]:
    """A fresh, initialised backend on each of SQLite, PostgreSQL and Redis (`any_url`): what the
    contract tests run against. A module that needs another kind defines its own `backend`."""
    b = open_backend(any_url, BackendOptions())
    b.init()
    try:
        yield b
    finally:
        b.close()
