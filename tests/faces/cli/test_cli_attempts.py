"""`qadmin show ID` prints a job's attempts (a table, the latest backtrace) and `--json` has them;
every shown text made safe (`qadmin.text.visible`)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.job import NewJob, utcnow
from tests.faces.cli.test_cli import Cli


@pytest.fixture
def cli(any_url: str, tmp_path: Path) -> Cli:
    c = Cli(any_url, tmp_path)
    assert c("init").exit_code == 0
    return c


def retried_then_running(url: str) -> str:
    """A job that failed on one worker (a hostile message, a backtrace) and runs on another now."""
    b = open_backend(url)
    try:
        now = utcnow()
        job = b.enqueue(NewJob("qadmin.examples.noop", ["shown"], queue="cli", run_at=now - timedelta(minutes=3)))
        first = b.session("host:one pid:1")
        (held,) = first.claim(["cli"], now - timedelta(minutes=2), 3600.0, lambda j: True)
        error = "KeyError: \x1b]0;pwned\x07 'sku'\nTraceback (most recent call last):\n  File \"shop.py\", line 7\n"
        first.fail(held, now - timedelta(minutes=2) + timedelta(seconds=3), error, now - timedelta(minutes=1), 3.0)
        first.close()
        second = b.session("host:two pid:2")
        assert second.claim(["cli"], now, 3600.0, lambda j: True)
        second.close()
        return str(job.id)
    finally:
        b.close()


def test_show_prints_the_attempts(cli: Cli) -> None:
    job_id = retried_then_running(cli.url)
    result = cli("show", job_id)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "attempts" in out and "retried" in out and "running" in out
    assert "host:one pid:1" in out and "host:two pid:2" in out and "3.00s" in out
    assert "backtrace of attempt 1" in out and 'File "shop.py", line 7' in out
    assert "\x1b]" not in out and "\x07" not in out and "\\x1b]0;pwned\\x07" in out


def test_show_json_has_the_attempts(cli: Cli) -> None:
    job_id = retried_then_running(cli.url)
    shown = cli.json("show", job_id)
    attempts = shown["runs"]
    assert [(a["number"], a["outcome"], a["worker"]) for a in attempts] == [
        (1, "retried", "host:one pid:1"),
        (2, "running", "host:two pid:2"),
    ]
    assert attempts[0]["error"].startswith("KeyError: \x1b]0;pwned")  # JSON keeps the data as it is
    assert attempts[0]["runtime"] == 3.0 and attempts[1]["finished_at"] is None
    json.dumps(shown)


def test_a_job_that_never_ran_has_none(cli: Cli) -> None:
    b = open_backend(cli.url)
    job = b.enqueue(NewJob("qadmin.examples.noop", [], queue="cli", run_at=utcnow() + timedelta(hours=1)))
    b.close()
    assert "attempts: none" in cli("show", str(job.id)).stdout
    assert cli.json("show", str(job.id))["runs"] == []
