"""Poison values in SQL rows (issues 14.3, 14.4, 13.11): a value a column's reader cannot read makes
that one job undecodable, shown with the value, never claimed; retry and delete still work on it;
everything else goes on: a worker runs the good jobs, and every face answers.

Planted straight into real SQLite and PostgreSQL tables, in delayed_job's layout and DJJob's. Each
poisoned row carries a runnable qadmin payload (`record` of its marker): had a worker claimed and
run it, its marker would be in the tokens file.

SQLite (no types enforced): run_at '' / an integer epoch / a REAL, locked_at 12345, created_at
'yesterday', failed_at 'never', a BLOB queue, a BLOB lock owner, priority 'NaN', attempts 2.5.
PostgreSQL (legal values Python cannot hold): run_at '-infinity', created_at 'infinity', locked_at
'infinity', failed_at '-infinity', a run_at past year 9999. Beside them, values that are odd but
readable and so must simply work: a negative id, a queue name with a NUL byte (SQLite).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from qadmin.backends import BackendOptions, open_backend
from tests.reliability.test_rel_bad_data import cli

RECORD = "qadmin.examples.record"

DJJOB_SQL = {
    "sqlite": """CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, handler TEXT NOT NULL,
        queue VARCHAR(255) NOT NULL DEFAULT 'default', attempts INTEGER NOT NULL DEFAULT 0, run_at DATETIME NULL,
        locked_at DATETIME NULL, locked_by VARCHAR(255) NULL, failed_at DATETIME NULL, error TEXT NULL,
        created_at DATETIME NOT NULL)""",
    "postgresql": """CREATE TABLE jobs (id SERIAL PRIMARY KEY, handler BYTEA NOT NULL,
        queue VARCHAR(255) NOT NULL DEFAULT 'default', attempts INTEGER NOT NULL DEFAULT 0, run_at TIMESTAMP NULL,
        locked_at TIMESTAMP NULL, locked_by VARCHAR(255) NULL, failed_at TIMESTAMP NULL, error TEXT NULL,
        created_at TIMESTAMP NOT NULL)""",
}


@dataclass
class Poisoned:
    url: str
    kind: str
    layout: str
    tokens: Path
    #: marker -> (id, the column the message must name); the good ones separately
    bad: dict[str, tuple[int, str]] = field(default_factory=dict)
    good: dict[str, int] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return "delayed_jobs" if self.layout == "delayed_job" else "jobs"

    def rows(self) -> dict[int, tuple]:
        """Every poisoned row as stored (its text), to see that nothing touched it."""
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                cast = "quote({})" if self.kind == "sqlite" else "CAST({} AS TEXT)"  # the value exactly
                cols = ["id", "queue", "attempts", "run_at", "locked_at", "locked_by", "failed_at"]
                sql = f"SELECT {', '.join(cast.format(c) for c in cols)} FROM {self.table}"
                return {int(r[0]): tuple(r) for r in conn.execute(sa.text(sql))}
        finally:
            engine.dispose()


def _payload(tokens: Path, marker: str) -> str:
    return json.dumps({"class": RECORD, "args": [str(tokens), marker]})


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _poison(url: str, layout: str, tmp_path: Path) -> Poisoned:
    kind = sa.engine.make_url(url).get_backend_name()
    kind = "postgresql" if kind.startswith("postgres") else kind
    tokens = tmp_path / "tokens.txt"
    p = Poisoned(url, kind, layout, tokens)
    if layout == "delayed_job":
        backend = open_backend(url)
        backend.init()
        backend.close()
    engine = sa.create_engine(url)
    now = _now()
    past = (now - timedelta(minutes=1)).isoformat(" ")
    try:
        with engine.begin() as conn:
            if layout == "djjob":
                conn.exec_driver_sql(DJJOB_SQL[kind])

            def insert(
                marker: str, sql_values: dict[str, str], params: dict[str, Any] | None = None, job_id: int | None = None
            ) -> int:
                handler = "CAST(:handler AS BYTEA)" if (kind == "postgresql" and layout == "djjob") else ":handler"
                values = {
                    "handler": handler,
                    "queue": "'default'",
                    "run_at": f"'{past}'",
                    "created_at": f"'{past}'",
                    **sql_values,
                }
                if job_id is not None:
                    values["id"] = str(job_id)
                if layout == "delayed_job":
                    values.setdefault("updated_at", f"'{past}'")
                sql = f"INSERT INTO {p.table} ({', '.join(values)}) VALUES ({', '.join(values.values())})" + (
                    " RETURNING id" if kind == "postgresql" else ""
                )
                result = conn.execute(sa.text(sql), {"handler": _payload(tokens, marker), **(params or {})})
                if kind == "postgresql":
                    return int(result.scalar_one())
                return int(job_id if job_id is not None else result.lastrowid)

            def bad(marker: str, column: str, sql_values: dict[str, str], params: dict[str, Any] | None = None) -> None:
                p.bad[marker] = (insert(marker, sql_values, params), column)

            # good jobs first and last: a worker has to get past the poison to reach the later one
            p.good["good-1"] = insert("good-1", {})
            if kind == "sqlite":
                bad("p-runat-empty", "run_at", {"run_at": "''"})
                bad("p-runat-epoch", "run_at", {"run_at": "1700000000"})
                bad("p-runat-real", "run_at", {"run_at": "1.5"})
                bad("p-lockedat-int", "locked_at", {"locked_at": "12345", "locked_by": "'host:elsewhere pid:1'"})
                bad("p-created-word", "created_at", {"created_at": "'yesterday'"})
                bad("p-failedat-word", "failed_at", {"failed_at": "'never'"})
                bad("p-queue-blob", "queue", {"queue": "X'64656661756c74'"})
                bad("p-lockedby-blob", "locked_by", {"locked_at": f"'{past}'", "locked_by": "X'00ff'"})
                if layout == "delayed_job":
                    bad("p-priority-nan", "priority", {"priority": "'NaN'"})
                bad("p-attempts-float", "attempts", {"attempts": "2.5"})
                p.good["good-nul-queue"] = insert("good-nul-queue", {"queue": "'def' || char(0) || 'ault'"})
            else:
                bad("p-runat-minus-inf", "run_at", {"run_at": "'-infinity'"})
                bad("p-created-inf", "created_at", {"created_at": "'infinity'"})
                bad("p-lockedat-inf", "locked_at", {"locked_at": "'infinity'", "locked_by": "'host:elsewhere pid:1'"})
                bad(
                    "p-failedat-minus-inf",
                    "failed_at",
                    {"failed_at": "'-infinity'", "error": "'Boom'"}
                    if layout == "djjob"
                    else {"failed_at": "'-infinity'", "last_error": "'Boom'"},
                )
                bad("p-runat-far", "run_at", {"run_at": "'20000-01-01 00:00:00'"})
            p.good["good-negative-id"] = insert("good-negative-id", {}, job_id=-7)
            p.good["good-2"] = insert("good-2", {})
    finally:
        engine.dispose()
    return p


@pytest.fixture(params=["delayed_job", "djjob"])
def poisoned(request: pytest.FixtureRequest, sql_url: str, tmp_path: Path) -> Poisoned:
    return _poison(sql_url, request.param, tmp_path)


def test_a_worker_runs_the_good_jobs_and_never_claims_a_poisoned_row(poisoned: Poisoned) -> None:
    before = poisoned.rows()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "qadmin",
            "--url",
            poisoned.url,
            "worker",
            "--burst",
            "--sleep",
            "0.05",
            "--import",
            "qadmin.examples",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert sorted(poisoned.tokens.read_text().split()) == sorted(poisoned.good)
    after = poisoned.rows()
    for marker, (job_id, _column) in poisoned.bad.items():
        assert after[job_id] == before[job_id], marker  # not locked, not failed, not rescheduled


def test_every_cli_listing_shows_the_poisoned_rows_as_undecodable(poisoned: Poisoned) -> None:
    url = poisoned.url
    listed = {j["id"]: j for j in cli(url, "jobs", "--json", "--limit", "500")}
    for marker, (job_id, column) in poisoned.bad.items():
        job = listed[job_id]
        assert column in job.get("undecodable", ""), (marker, job)
        shown = cli(url, "show", "--json", "--", str(job_id))
        assert column in shown["undecodable"] and marker in shown["raw"], (marker, shown)
        assert str(job_id) in cli(url, "show", "--", str(job_id))
    for marker, job_id in poisoned.good.items():
        assert not listed[job_id].get("undecodable"), (marker, listed[job_id])
    from qadmin.filters import JobFilter
    from qadmin.job import utcnow

    backend = open_backend(url)
    try:
        assert backend.count(JobFilter(undecodable=True), utcnow()) == len(poisoned.bad)
    finally:
        backend.close()
    for args in (
        ["jobs"],
        ["stats"],
        ["stats", "--json"],
        ["queues"],
        ["queues", "--json"],
        ["errors"],
        ["errors", "--json"],
        ["workers"],
        ["workers", "--json"],
        ["jobs", "--state", "failed", "--json"],
        ["jobs", "--sort", "run_at", "--json"],
        ["jobs", "--search", "p-", "--json"],
    ):
        cli(url, *args)
    stats = cli(url, "stats", "--json")
    assert sum(sum(counts.values()) for counts in stats["queues"].values()) >= len(poisoned.bad) + len(poisoned.good)


def test_retry_and_delete_still_work_on_poisoned_rows(poisoned: Poisoned) -> None:
    url = poisoned.url
    failed = [
        job_id
        for job_id, _c in poisoned.bad.values()
        if cli(url, "show", "--json", "--", str(job_id))["state"] == "failed"
    ]
    if failed:
        assert cli(url, "retry", "--json", "--", *map(str, failed))["changed"] == len(failed)
    ids = [str(job_id) for job_id, _c in poisoned.bad.values()]
    assert cli(url, "delete", "--yes", "--json", "--", *ids)["changed"] == len(ids)
    left = {j["id"] for j in cli(url, "jobs", "--json", "--limit", "500")}
    assert left == set(poisoned.good.values())


def test_web_pages_api_and_metrics_answer(poisoned: Poisoned) -> None:
    from qadmin.ops import Ops
    from qadmin.web import create_app

    ops = Ops.open(poisoned.url, options=BackendOptions(), face="web")
    try:
        app = create_app(ops, {"TESTING": True})
        client = app.test_client()
        assert client.get(f"/login?token={app.config['QADMIN_LOGIN_TOKEN']}").status_code == 303
        for path in (
            "/",
            "/partials/overview",
            "/jobs",
            "/jobs?state=failed",
            "/jobs?sort=run_at",
            "/errors",
            "/workers",
            "/partials/workers",
            "/audit",
            "/api/stats",
            "/api/queues",
            "/api/workers",
            "/api/errors",
            "/api/jobs?limit=200",
            "/metrics",
        ):
            page = client.get(path)
            assert page.status_code == 200, (path, page.status_code, page.get_data(as_text=True)[-2000:])
        for marker, (job_id, column) in poisoned.bad.items():
            page = client.get(f"/jobs/{job_id}")
            assert page.status_code == 200, (marker, page.status_code)
            api = client.get(f"/api/jobs/{job_id}")
            assert api.status_code == 200 and column in api.get_json()["undecodable"], marker
    finally:
        ops.close()


def test_the_tui_overview_and_jobs_load(poisoned: Poisoned) -> None:
    from textual.widgets import DataTable

    from qadmin.filters import JobFilter
    from qadmin.ops import Ops
    from qadmin.tui.app import QadminApp
    from tests.faces.tui.harness import wait_for

    app = QadminApp(Ops.open(poisoned.url, options=BackendOptions(), face="tui"))
    app.animation_level = "none"
    wanted = {str(i) for i, _c in poisoned.bad.values()} | {str(i) for i in poisoned.good.values()}
    errors: list[str] = []

    def queue_rows() -> int:
        return sum(t.row_count for t in app.screen.query("#queues").results(DataTable))

    def job_ids() -> set[str]:
        seen = set()
        for table in app.screen.query(DataTable):
            for key in table.rows:
                seen.update(str(c) for c in table.get_row(key)[:3])
        return seen & wanted

    async def scenario() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: queue_rows() > 0, "the overview's queues", timeout=30)
            app.show_jobs(JobFilter())
            await wait_for(pilot, lambda: job_ids() == wanted, "every job in the jobs table", timeout=30)

    asyncio.run(scenario())
    assert not errors
