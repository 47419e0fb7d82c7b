"""Fixtures of the interop tests (the helpers live in _support.py)."""

from tests.interop._support import delayed_job  # noqa: F401 - a fixture
