"""Helpers for the interop tests: run the real delayed_job (Ruby) and the real `php` binary.

A missing interpreter or gem fails the test under CI and skips it locally with a loud reason
(`tests.servers.missing`), like a missing server binary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from qadmin.cli import main
from tests.servers import missing

HERE = Path(__file__).resolve().parent
DJ_APP = HERE / "delayed_job_app.rb"

#: the Debian packages that bring each Ruby library
_RUBY_LIBS = {
    "delayed_job": "ruby-delayed-job",
    "delayed_job_active_record": "ruby-delayed-job-active-record",
    "sqlite3": "ruby-sqlite3",
    "pg": "ruby-pg",
    "active_job": "ruby-activejob",
    "redis": "ruby-redis",
    "redis/namespace": "ruby-redis-namespace",
    "rufus-scheduler": "ruby-rufus-scheduler",
    "fugit": "ruby-fugit",
}


@cache
def _ruby_can_require(lib: str) -> str | None:
    """None when `require lib` works, else why not."""
    ruby = shutil.which("ruby")
    if ruby is None:
        return "no `ruby` on PATH"
    res = subprocess.run([ruby, "-e", f"require {json.dumps(lib)}"], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        return (res.stderr.strip().splitlines() or ["failed"])[0]
    return None


def need_ruby(*libs: str) -> None:
    for lib in libs:
        why = _ruby_can_require(lib)
        if why is not None:
            missing(f"Ruby library {lib!r} (Debian {_RUBY_LIBS.get(lib, lib)}): {why}")


def need_php() -> str:
    php = shutil.which("php")
    if php is None:
        missing("the `php` binary (Debian php-cli)")
    return php  # type: ignore[return-value]


def ruby_db_config(url: str) -> dict[str, Any]:
    """An ActiveRecord connection spec for the same database as a qadmin SQL URL."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        return {"adapter": "sqlite3", "database": u.database}
    if u.get_backend_name() == "postgresql":
        spec = {"adapter": "postgresql", "host": u.host, "port": u.port, "username": u.username, "database": u.database}
        if u.password:
            spec["password"] = u.password
        return spec
    raise AssertionError(f"no Ruby adapter for {url}")


def cli(url: str, *args: str, expect: int = 0, table: str | None = None) -> Any:
    """Run `qadmin --url URL ARGS...` in-process: parsed JSON when --json was given, else the text
    (with stderr when a failure is expected)."""
    opts = ["--url", url] + (["--table", table] if table else [])
    result = CliRunner().invoke(main, [*opts, *args], catch_exceptions=False)
    output = result.stdout
    assert result.exit_code == expect, f"qadmin {' '.join(args)} -> {result.exit_code}\n{output}\n{result.stderr}"
    if expect != 0:
        return output + result.stderr
    return json.loads(output) if "--json" in args else output


def qadmin_worker_burst(url: str, *args: str) -> str:
    """`qadmin worker --burst` in its own process (it installs signal handlers, so not in pytest's)."""
    res = subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", url, "worker", "--burst", "--import", "qadmin.examples", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, f"qadmin worker failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout + res.stderr


@dataclass
class DelayedJobApp:
    """The Ruby app of delayed_job_app.rb on one database; `ids` maps job labels to row ids."""

    url: str
    dir: Path
    ids: dict[str, int] = field(default_factory=dict)
    setup_result: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> list[str]:
        path = self.dir / "side_effects.log"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def ruby(self, command: str) -> dict[str, Any]:
        config = json.dumps({"db": ruby_db_config(self.url), "dir": str(self.dir)})
        res = subprocess.run(
            ["ruby", str(DJ_APP), command, config], capture_output=True, text=True, timeout=120, cwd=self.dir
        )
        assert res.returncode == 0, f"ruby {command} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        return json.loads(res.stdout.strip().splitlines()[-1])

    def setup(self) -> DelayedJobApp:
        self.setup_result = self.ruby("setup")
        self.ids = self.setup_result["ids"]
        return self

    def work(self) -> list[int]:
        """One pass of a real Delayed::Worker: [succeeded, failed]."""
        return self.ruby("work")["work"]

    def allow_flaky_jobs_to_succeed(self) -> None:
        (self.dir / "flag").touch()

    @property
    def has_active_job(self) -> bool:
        return self.setup_result.get("active_job") is None

    def execute(self, sql: str, **params: Any) -> None:
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(sql), params)
        finally:
            engine.dispose()

    def rows(self) -> dict[int, dict[str, Any]]:
        """Every column of every row, straight from the database (no qadmin decoding)."""
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.text("SELECT * FROM delayed_jobs ORDER BY id"))
                return {r["id"]: dict(r) for r in result.mappings()}
        finally:
            engine.dispose()


@pytest.fixture
def delayed_job(sql_url: str, tmp_path: Path) -> DelayedJobApp:
    """A delayed_job database made by the real gems: failed, scheduled, locked and pending rows."""
    need_ruby("delayed_job", "delayed_job_active_record", "sqlite3" if sql_url.startswith("sqlite") else "pg")
    work = tmp_path / "dj"
    work.mkdir()
    return DelayedJobApp(sql_url, work).setup()
