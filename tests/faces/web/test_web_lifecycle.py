"""Run now and kill on the web: the job page's buttons through preview → confirm → apply, and the
JSON API's one-job and bulk routes (`/api/jobs/<id>/run-now`, `/api/run-now`, and kill's)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from qadmin.backends import open_backend
from qadmin.job import Job, JobState, NewJob, utcnow
from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web

ERROR = "ValueError: boom\n  File x"


@pytest.fixture
def lw(any_url: str) -> Iterator[Web]:
    """A logged-in client on an empty store (SQLite, PostgreSQL, Redis)."""
    backend = open_backend(any_url)
    backend.init()
    ops = Ops(backend, face="test")
    web = Web(create_app(ops, {"TESTING": True})).login()
    web.ops = ops  # type: ignore[attr-defined]
    yield web
    ops.close()


def later(web: Web, *args: object) -> Job:
    b = web.ops.backend  # type: ignore[attr-defined]
    return b.enqueue(NewJob("qadmin.examples.noop", list(args), queue="q", run_at=utcnow() + timedelta(hours=1)))


def waiting(web: Web, *args: object) -> Job:
    b = web.ops.backend  # type: ignore[attr-defined]
    job = b.enqueue(NewJob("qadmin.examples.noop", list(args), queue="r"))
    claimed = b.claim(["r"], "w", utcnow(), 3600, lambda j: j.id == job.id)
    b.fail(claimed, "w", utcnow(), ERROR, utcnow() + timedelta(hours=1))
    return b.get(job.id, utcnow())


def state(web: Web, job: Job) -> JobState:
    return web.ops.show(job.id).state  # type: ignore[attr-defined,no-any-return]


def test_the_job_page_offers_run_now_and_kill_where_they_apply(lw: Web) -> None:
    never_ran, retry = later(lw, 1), waiting(lw, 2)
    page = lw.html(f"/jobs/{never_ran.id}")
    assert 'value="run_now"' in page and 'value="kill"' not in page
    page = lw.html(f"/jobs/{retry.id}")
    assert 'value="run_now"' in page and 'value="kill"' in page
    asked = lw.post("/job-action", {"id": str(retry.id), "verb": "kill"})
    confirm = lw.html(asked.headers["Location"])
    assert "Confirm: kill 1 job" in confirm and state(lw, retry) is JobState.SCHEDULED
    done = lw.post(asked.headers["Location"] + "/apply")
    assert done.status_code == 303 and state(lw, retry) is JobState.FAILED
    assert lw.confirmed("/job-action", {"id": str(never_ran.id), "verb": "run_now"}).status_code == 303
    assert state(lw, never_ran) is JobState.PENDING
    # a job in the wrong state is refused before anything is frozen
    assert lw.post("/job-action", {"id": str(never_ran.id), "verb": "kill"}).status_code == 409


def test_the_api_runs_now_and_kills_one_job(lw: Web) -> None:
    never_ran, retry = later(lw, 3), waiting(lw, 4)
    assert lw.api_post(f"/api/jobs/{never_ran.id}/kill").status_code == 409
    body = lw.api_post(f"/api/jobs/{retry.id}/kill").get_json()
    assert (body["verb"], body["matched"], body["changed"]) == ("kill", 1, 1)
    shown = lw.ops.show(retry.id)  # type: ignore[attr-defined]
    assert shown.state is JobState.FAILED and shown.attempts == 1 and shown.last_error == ERROR
    assert lw.api_post(f"/api/jobs/{never_ran.id}/run-now").get_json()["changed"] == 1
    assert state(lw, never_ran) is JobState.PENDING
    assert lw.api_post(f"/api/jobs/{never_ran.id}/run-now").status_code == 409
    assert lw.client.get(f"/api/jobs/{never_ran.id}/run-now").status_code == 405


def test_the_api_bulk_routes_preview_and_apply(lw: Web) -> None:
    never_ran, retry = later(lw, 5), waiting(lw, 6)
    dry = lw.api_post("/api/kill", {"id": [str(never_ran.id), str(retry.id)], "dry_run": True}).get_json()
    assert dry["dry_run"] and dry["matched"] == 1 and dry["skipped"] == 1
    assert "never ran" in dry["skipped_jobs"][0]["reason"]
    assert state(lw, retry) is JobState.SCHEDULED
    ran = lw.api_post("/api/run-now", {"queue": "q"}).get_json()
    assert (ran["verb"], ran["changed"]) == ("run_now", 1) and state(lw, never_ran) is JobState.PENDING
    assert lw.api_post("/api/run-now", {}).status_code == 400
    token = lw.api_post("/api/previews", {"verb": "kill", "queue": "r"}).get_json()["token"]
    assert lw.api_post(f"/api/previews/{token}/apply").get_json()["changed"] == 1
    assert state(lw, retry) is JobState.FAILED
