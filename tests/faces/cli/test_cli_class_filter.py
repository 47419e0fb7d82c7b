"""`--class` takes the names the faces show (the last part, any case, a prefix), the same on every
backend and every verb (SQL and Redis push the class down as a pre-filter first), and the shell
completes class and queue names from the backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner, Result

from qadmin.backends import open_backend
from qadmin.cli import main
from qadmin.filters import JobFilter
from qadmin.job import NewJob, utcnow

JOBS = [
    ("qadmin.examples.SendEmail", ["a@example.com"], "email"),
    ("qadmin.examples.SendEmail", ["b@example.com"], "email"),
    ("app.jobs.ShortReport", [1], "reports"),
    ("app.jobs.ShortReport", [2], "reports"),
    ("Billing::Shortfall", [3], "reports"),
    ("app.jobs.LongReport", [4], "reports"),
    ("app.shortcuts.Other", [5], "reports"),  # "short" only in a middle part: not selected
]


def invoke(url: str, *args: str) -> Result:
    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None})
    return runner.invoke(main, ["--url", url, *args], catch_exceptions=False)


def ids(url: str, *args: str) -> list[Any]:
    result = invoke(url, "jobs", "--json", *args)
    assert result.exit_code == 0, result.output
    return sorted(str(j["id"]) for j in json.loads(result.stdout))


@pytest.fixture
def url(any_url: str) -> str:
    backend = open_backend(any_url)
    backend.init()
    for class_name, args, queue in JOBS:
        backend.enqueue(NewJob(class_name, args, queue=queue))
    backend.close()
    return any_url


def everything(url: str) -> list[str]:
    backend = open_backend(url)
    try:
        jobs = backend.find(JobFilter(), utcnow(), limit=100).jobs
        return sorted(f"{j.id} {j.class_name} {j.state.value}" for j in jobs)
    finally:
        backend.close()


def test_jobs_by_the_short_name_any_case_or_a_prefix(url: str) -> None:
    full = ids(url, "--class", "qadmin.examples.SendEmail")
    assert len(full) == 2
    for spelled in ("SendEmail", "sendemail", "sendem", "SENDEM", "qadmin.ex"):
        assert ids(url, "--class", spelled) == full, spelled
    assert ids(url, "--class", "Email") == []  # not any substring
    assert len(ids(url, "--class", "Short")) == 3  # ShortReport twice, Billing::Shortfall
    assert len(ids(url, "--class", "shortreport", "--queue", "reports")) == 2


def test_dequeue_and_delete_select_the_same_jobs_by_a_short_name(url: str) -> None:
    before = everything(url)
    for args in (
        ["dequeue", "--queue", "reports", "--class", "Short"],
        ["delete", "--class", "short", "--yes"],
        ["delete", "--class", "SHORT", "--state", "pending", "--yes"],
    ):
        result = invoke(url, *args, "--dry-run", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["matched"] == 3, args
    assert everything(url) == before
    result = invoke(url, "dequeue", "--queue", "reports", "--class", "shortrep")
    assert result.exit_code == 0, result.output
    assert "Dequeued 2 of 2 matched jobs" in result.stdout
    assert ids(url, "--class", "ShortReport") == []
    assert len(ids(url, "--class", "Short")) == 1


def complete(args: list[str], incomplete: str) -> list[str]:
    completion = ShellComplete(main, {}, "qadmin", "_QADMIN_COMPLETE")
    return [item.value for item in completion.get_completions(args, incomplete)]


def test_the_shell_completes_class_and_queue_names_from_the_backend(url: str, monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.delenv("QADMIN_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert complete(["jobs", "--url", url, "--class"], "sh") == ["ShortReport", "Shortfall"]
    assert "qadmin.examples.SendEmail" in complete(["--url", url, "retry", "--class"], "qadmin.")
    assert complete(["--url", url, "dequeue", "--queue"], "r") == ["reports"]
    assert complete(["--url", url, "pause"], "EM") == ["email"]
    assert "SendEmail" in complete(["--url", url, "enqueue"], "")
    # a backend that cannot be reached completes nothing, quietly
    assert complete(["--url", "nosuch://x", "jobs", "--queue"], "") == []
