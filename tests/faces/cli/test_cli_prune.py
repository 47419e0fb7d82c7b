"""`qadmin prune`: the report as a table and as JSON, --dry-run, --older-than, the retention
settings of qadmin.toml, and bad input refused with exit status 2."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qadmin.backends import open_backend
from qadmin.cli import main
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, WorkerInfo, utcnow

NOOP = "qadmin.examples.noop"
DAY = timedelta(days=1)
FAILED = JobFilter(states=frozenset({JobState.FAILED}))


def run_cli(*args: str, config: Path | None = None) -> Result:
    env = {"QADMIN_URL": None, "QADMIN_CONFIG": str(config) if config else None, "QADMIN_BACKEND": None}
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def fail_at(url: str, when: datetime, arg: str) -> None:
    b = open_backend(url)
    try:
        b.enqueue(NewJob(NOOP, [arg], queue="q", run_at=when))
        job = b.claim(["q"], "host:h pid:1", when, 3600.0, lambda j: True)
        assert job is not None
        b.fail(job, "host:h pid:1", when, "RuntimeError: boom", None)
    finally:
        b.close()


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    b = open_backend(url)
    b.init()
    now = utcnow()
    b.register_worker(
        WorkerInfo(
            name="host:gone pid:1",
            host="gone",
            pid=1,
            queues=["q"],
            started_at=now - 3 * DAY,
            heartbeat_at=now - 3 * DAY,
        )
    )
    b.close()
    fail_at(url, now - 40 * DAY, "old")
    fail_at(url, now - 2 * DAY, "recent")
    return url


def failed_args(url: str) -> list[Any]:
    b = open_backend(url)
    try:
        return sorted(j.args[0] for j in b.find(FAILED, utcnow(), limit=10).jobs)
    finally:
        b.close()


def test_dry_run_reports_the_counts_and_changes_nothing(url: str) -> None:
    result = run_cli("--url", url, "prune", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["verb"], report["dry_run"]) == ("prune", True)
    assert (report["failed"], report["finished"], report["workers"]) == (1, 0, 1)
    assert report["worker_names"] == ["host:gone pid:1"]
    assert failed_args(url) == ["old", "recent"]
    audit = run_cli("--url", url, "audit", "--json")
    assert [e["verb"] for e in json.loads(audit.stdout)] == []


def test_prune_removes_what_the_dry_run_named_and_is_audited(url: str) -> None:
    dry = json.loads(run_cli("--url", url, "prune", "--dry-run", "--json").stdout)
    result = run_cli("--url", url, "prune", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["failed"], report["workers"], report["dry_run"]) == (dry["failed"], dry["workers"], False)
    assert failed_args(url) == ["recent"]
    workers = json.loads(run_cli("--url", url, "workers", "--json").stdout)
    assert "host:gone pid:1" not in {w["name"] for w in workers}
    entries = json.loads(run_cli("--url", url, "audit", "--json").stdout)
    assert [(e["verb"], e["face"], e["changed"]) for e in entries] == [("prune", "cli", 2)]
    assert entries[0]["selection"]["failed"] == 1


def test_older_than_overrides_the_retention(url: str) -> None:
    report = json.loads(run_cli("--url", url, "prune", "--older-than", "1d", "--json").stdout)
    assert report["failed"] == 2
    assert failed_args(url) == []


def test_the_table_names_each_kind(url: str) -> None:
    result = run_cli("--url", url, "prune", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "failed jobs" in result.stdout and "dead workers" in result.stdout and "dry run" in result.stdout
    result = run_cli("--url", url, "prune")
    assert result.exit_code == 0, result.output
    assert "Pruned 2 items." in result.stdout


def test_retention_settings_come_from_qadmin_toml(url: str, tmp_path: Path) -> None:
    config = tmp_path / "qadmin.toml"
    config.write_text(f'[backends.here]\nurl = "{url}"\n\n[retention]\nfailed = "never"\nworkers = "never"\n')
    report = json.loads(run_cli("prune", "--json", config=config).stdout)
    assert (report["failed_before"], report["failed"], report["workers"]) == (None, 0, 0)
    config.write_text(f'[backends.here]\nurl = "{url}"\n\n[retention]\nfailed = "1d"\n')
    report = json.loads(run_cli("prune", "--json", config=config).stdout)
    assert report["failed"] == 2


@pytest.mark.parametrize(
    "setting",
    ['failed = "soon"', 'finished = "never"', "failed = true", 'sometimes = "1d"', 'finished = "-3d"'],
)
def test_bad_retention_settings_are_refused(url: str, tmp_path: Path, setting: str) -> None:
    config = tmp_path / "qadmin.toml"
    config.write_text(f'[backends.here]\nurl = "{url}"\n\n[retention]\n{setting}\n')
    result = run_cli("prune", "--json", config=config)
    assert result.exit_code == 2
    assert "[retention]" in result.stderr
    assert failed_args(url) == ["old", "recent"]


def test_bad_older_than_is_a_usage_error(url: str) -> None:
    result = run_cli("--url", url, "prune", "--older-than", "soon")
    assert result.exit_code == 2
    assert failed_args(url) == ["old", "recent"]
