"""What a listing imports (issue #18 point 6): `qadmin jobs`, `stats` and `retry --failed
--dry-run` on SQLite import no Redis client, no consoles (textual, flask), no codec of a foreign
format (YAML) and no PostgreSQL dialect; `qadmin --url redis://… jobs` imports no SQLAlchemy.
Read from `python -X importtime` of the real command: behaviour, never a time."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.job import NewJob

ROOT = Path(__file__).resolve().parents[2]
#: what no listing needs, whatever the backend
NEVER = (
    "textual",
    "flask",
    "werkzeug",
    "yaml",
    "croniter",
    "urllib.request",
    "qadmin.worker",
    "qadmin.codecs.ruby_yaml",
    "qadmin.codecs.php_serialize",
    "qadmin.ops.alerts",
    "sqlalchemy.orm",
)
#: and what the SQLite path does not need
NOT_ON_SQLITE = ("redis", "psycopg", "sqlalchemy.dialects.postgresql", "qadmin.backends.redis")


def imported(*args: str, cwd: Path) -> set[str]:
    """The modules `python -m qadmin ARGS` imports (it must exit 0)."""
    env = {k: v for k, v in os.environ.items() if k not in ("QADMIN_URL", "QADMIN_BACKEND", "QADMIN_CONFIG")}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "qadmin", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {
        line.split("|")[2].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    }


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The packages of `names` that were imported (a package counts with any of its modules)."""
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


@pytest.fixture
def small_sqlite(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'small.db'}"
    backend = open_backend(url)
    backend.init()
    for n in range(3):
        backend.enqueue(NewJob("qadmin.examples.noop", [n], queue="default"))
    backend.close()
    yield url


@pytest.mark.parametrize("command", [["jobs"], ["stats"], ["retry", "--failed", "--dry-run"]], ids=" ".join)
def test_a_sqlite_listing_imports_only_what_it_uses(command: list[str], small_sqlite: str, tmp_path: Path) -> None:
    modules = imported("--url", small_sqlite, *command, cwd=tmp_path)
    assert "sqlalchemy" in modules and "qadmin.backends.sql" in modules  # it did run the listing
    assert loaded(modules, NEVER + NOT_ON_SQLITE) == []


def test_a_redis_listing_imports_no_sqlalchemy(redis_url: str, tmp_path: Path) -> None:
    backend = open_backend(redis_url)
    backend.enqueue(NewJob("qadmin.examples.noop", [1], queue="default"))
    backend.close()
    modules = imported("--url", redis_url, "jobs", cwd=tmp_path)
    assert "redis" in modules and "qadmin.backends.redis" in modules
    assert loaded(modules, NEVER + ("sqlalchemy", "psycopg", "qadmin.backends.sql")) == []


def test_help_imports_no_backend_and_no_command(tmp_path: Path) -> None:
    modules = imported("--help", cwd=tmp_path)
    assert loaded(modules, ("sqlalchemy", "redis", "rich", "qadmin.ops", "qadmin.cli.jobs", "qadmin.cli.worker")) == []
