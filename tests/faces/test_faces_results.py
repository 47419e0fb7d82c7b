"""A finished job's return value on every face: `qadmin show` (text and --json), the web job page,
`GET /api/jobs/ID` and the console's job detail (SQLite; the backends' side is
tests/backends/test_contract_results.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qadmin import registry
from qadmin.backends import open_backend
from qadmin.job import JobId, NewJob
from qadmin.ops import Ops
from qadmin.web import create_app
from qadmin.worker import Worker, WorkerOptions
from tests.faces.cli.test_cli import Cli
from tests.faces.web.support import Web

REPORT = "tests.faces.results.report"


def report(day: str) -> dict[str, object]:
    return {"day": day, "rows": 42, "note": "<b>bold</b>"}


@pytest.fixture
def finished(sqlite_url: str) -> Iterator[JobId]:
    registry.register(REPORT, report)
    backend = open_backend(sqlite_url)
    backend.init()
    try:
        job = backend.enqueue(NewJob(REPORT, ["2026-12-07"], queue="r"))
        Worker(backend, WorkerOptions(queues=["r"], burst=True, sleep=0, heartbeat_interval=3600)).work()
        yield job.id
    finally:
        backend.close()
        registry._registry.pop(REPORT, None)


def test_show_prints_the_result(sqlite_url: str, tmp_path: Path, finished: JobId) -> None:
    cli = Cli(sqlite_url, tmp_path)
    shown = cli.json("show", str(finished))
    assert shown["state"] == "finished"
    assert shown["result"] == {"day": "2026-12-07", "rows": 42, "note": "<b>bold</b>"}
    text = cli("show", str(finished))
    assert text.exit_code == 0 and "result" in text.output and "42" in text.output


def test_the_web_page_and_the_api_show_the_result(sqlite_url: str, finished: JobId) -> None:
    ops = Ops.open(sqlite_url, face="web")
    try:
        web = Web(create_app(ops, {"TESTING": True})).login()
        page = web.html(f"/jobs/{finished}")
        assert "data-result" in page and "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
        api: Any = web.get(f"/api/jobs/{finished}").get_json()
        assert api["result"]["rows"] == 42
    finally:
        ops.close()
