"""`qadmin enqueue --timeout`: the job's own time limit, stored with it and shown by `show`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faces.cli.test_cli import Cli


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path) -> Cli:
    c = Cli(sqlite_url, tmp_path)
    assert c("init").exit_code == 0
    return c


def test_enqueue_timeout_is_kept_and_shown(cli: Cli) -> None:
    job = cli.json("enqueue", "qadmin.examples.noop", "--timeout", "90s")
    assert job["timeout"] == 90
    assert cli.json("show", str(job["id"]))["timeout"] == 90
    shown = cli("show", str(job["id"]))
    assert shown.exit_code == 0 and "timeout" in shown.output
    assert "timeout" not in cli.json("enqueue", "qadmin.examples.noop")


@pytest.mark.parametrize("bad", ["0", "soon", "-5s"])
def test_a_bad_timeout_is_one_line_and_stores_nothing(cli: Cli, bad: str) -> None:
    before = cli.snapshot()
    result = cli("enqueue", "qadmin.examples.noop", "--timeout", bad)
    assert result.exit_code == 2, result.output
    assert "--timeout" in result.output and "Traceback" not in result.output
    assert cli.snapshot() == before
