"""A job's attempts on the web: the job page's Attempts table (outcome colours, the backtrace under
the error's first line, job data escaped) and the JSON job document's `attempts` (SQLite and Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any

import pytest

from qadmin.job import JobId, NewJob, utcnow
from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web

NOOP = "qadmin.examples.noop"
A, B = "host:web-a pid:1", "host:web-b pid:2"
EVIL = "RuntimeError: \x1b[31m<script>window.__pwned=1</script>"


@pytest.fixture
def any_web(demo_url: str) -> Iterator[Web]:
    ops = Ops.open(demo_url, face="web")
    web = Web(create_app(ops, {"TESTING": True})).login()
    web.ops = ops  # type: ignore[attr-defined]
    yield web
    ops.close()


def fails_then_completes(ops: Ops) -> JobId:
    """A job that fails on A (with a hostile message and a backtrace), then completes on B."""
    now = utcnow()
    job = ops.backend.enqueue(NewJob(NOOP, ["history"], queue="attempts", run_at=now - timedelta(minutes=5)))
    backend: Any = ops.backend
    for worker, at, error in (
        (A, now - timedelta(minutes=4), EVIL + '\nTraceback (most recent call last):\n  File "x.py", line 9\n'),
        (B, now - timedelta(minutes=2), None),
    ):
        session = backend.session(worker)
        (held,) = session.claim(["attempts"], at, 3600.0, lambda j: str(j.id) == str(job.id))
        if error is None:
            session.complete(held, at + timedelta(seconds=2), 2.0)
        else:
            session.fail(held, at + timedelta(seconds=1), error, at, 1.25)
        session.close()
    return job.id


def test_the_job_page_shows_each_attempt(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    job_id = fails_then_completes(ops)
    html = any_web.html(f"/jobs/{job_id}")
    table = html[html.index("data-attempts") : html.index("</table>", html.index("data-attempts"))]
    # newest first: the success, then the failure with its backtrace to open
    assert table.index('data-outcome="completed"') < table.index('data-outcome="retried"')
    assert "chip-finished" in table and "chip-locked" in table
    assert A in table and B in table and "1.25s" in table and "2.00s" in table
    assert "<details><summary" in table and 'File "x.py", line 9' in unescape(table)
    assert "<script>window" not in html and "&lt;script&gt;window.__pwned=1" in table
    assert "\x1b" not in html and "\\x1b[31m" in table


def test_the_json_job_document_has_its_attempts(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    job_id = fails_then_completes(ops)
    doc = any_web.get(f"/api/jobs/{job_id}").get_json()
    attempts = doc["runs"]
    assert [(a["number"], a["outcome"], a["worker"], a["source"]) for a in attempts] == [
        (1, "retried", A, "recorded"),
        (2, "completed", B, "recorded"),
    ]
    assert attempts[0]["error"] == EVIL and attempts[0]["backtrace"].startswith("Traceback")
    assert attempts[0]["runtime"] == pytest.approx(1.25, abs=0.01)


def test_a_job_that_never_ran_says_so(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    job = ops.backend.enqueue(NewJob(NOOP, ["later"], queue="attempts", run_at=utcnow() + timedelta(hours=1)))
    assert "This job has not run yet." in any_web.html(f"/jobs/{job.id}")
    assert any_web.get(f"/api/jobs/{job.id}").get_json()["runs"] == []


def test_a_delayed_job_row_shows_what_its_columns_hold(web: Web, ops: Ops) -> None:
    import sqlalchemy as sa

    backend: Any = ops.backend
    t = backend.store.jobs()
    now = utcnow().replace(microsecond=0)
    handler = "--- !ruby/object:Delayed::PerformableMethod\nobject: !ruby/object:User {}\nmethod_name: :x\nargs: []\n"
    with backend.engine.begin() as conn:
        job_id = conn.execute(
            sa.insert(t),
            {
                "priority": 0,
                "attempts": 4,
                "handler": handler,
                "queue": "dj",
                "run_at": now,
                "created_at": now,
                "updated_at": now,
                "failed_at": now,
                "last_error": "NoMethodError: undefined method `x'\n/app/models/user.rb:4",
            },
        ).inserted_primary_key[0]
    html = web.html(f"/jobs/{job_id}")
    assert "data-from-columns" in html and "keeps no history" in html and "from columns" in html
    assert web.get(f"/api/jobs/{job_id}").get_json()["runs"][0]["source"] == "columns"
