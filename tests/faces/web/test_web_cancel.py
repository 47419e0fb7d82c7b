"""Cancel on the web: the job page's button through preview → confirm → apply, the JSON API's
one-job and bulk routes (`/api/jobs/<id>/cancel`, `/api/cancel`), a job a qadmin worker runs asked
to stop, and the cancelled state's tab and filter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from qadmin.backends import open_backend
from qadmin.job import Job, JobState, NewJob, WorkerInfo, utcnow
from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web

WORKER = "host:web-cancel pid:77"


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


def enqueue(web: Web, *args: object, later: bool = False) -> Job:
    b = web.ops.backend  # type: ignore[attr-defined]
    run_at = utcnow() + timedelta(hours=1) if later else None
    return b.enqueue(NewJob("qadmin.examples.noop", list(args), queue="q", run_at=run_at))


def state(web: Web, job: Job) -> JobState:
    return web.ops.show(job.id).state  # type: ignore[attr-defined,no-any-return]


def test_the_job_page_cancels_through_preview_and_confirm(lw: Web) -> None:
    pending = enqueue(lw, 1)
    page = lw.html(f"/jobs/{pending.id}")
    assert 'value="cancel"' in page
    asked = lw.post("/job-action", {"id": str(pending.id), "verb": "cancel"})
    confirm = lw.html(asked.headers["Location"])
    assert "Confirm: cancel 1 job" in confirm and state(lw, pending) is JobState.PENDING
    done = lw.post(asked.headers["Location"] + "/apply")
    assert done.status_code == 303 and state(lw, pending) is JobState.CANCELLED
    # a cancelled job is history: no cancel, no delete on its page; it is on the cancelled tab
    page = lw.html(f"/jobs/{pending.id}")
    assert 'value="cancel"' not in page and 'value="delete"' not in page
    assert str(pending.id).split("@")[0] in lw.html("/jobs?state=cancelled")
    assert lw.post("/job-action", {"id": str(pending.id), "verb": "cancel"}).status_code == 409


def test_the_api_cancels_one_job_and_in_bulk(lw: Web) -> None:
    one, later = enqueue(lw, 2), enqueue(lw, 3, later=True)
    body = lw.api_post(f"/api/jobs/{one.id}/cancel").get_json()
    assert (body["verb"], body["matched"], body["changed"]) == ("cancel", 1, 1)
    assert state(lw, one) is JobState.CANCELLED
    assert lw.api_post(f"/api/jobs/{one.id}/cancel").status_code == 409
    assert lw.client.get(f"/api/jobs/{later.id}/cancel").status_code == 405
    dry = lw.api_post("/api/cancel", {"queue": "q", "dry_run": True}).get_json()
    assert dry["dry_run"] and dry["matched"] == 1 and state(lw, later) is JobState.SCHEDULED
    assert lw.api_post("/api/cancel", {"queue": "q"}).get_json()["changed"] == 1
    assert state(lw, later) is JobState.CANCELLED
    listed = lw.client.get("/api/jobs?state=cancelled").get_json()
    # (on Redis a finished record's id names the record: QUEUE:TOKEN@zNONCE)
    assert sorted(j["args"][0] for j in listed["jobs"]) == [2, 3]
    assert {j["state"] for j in listed["jobs"]} == {"cancelled"}
    assert lw.api_post("/api/cancel", {}).status_code == 400


def test_the_api_asks_a_qadmin_worker_to_stop_the_job_it_runs(lw: Web) -> None:
    b = lw.ops.backend  # type: ignore[attr-defined]
    session = b.session(WORKER)
    now = utcnow()
    session.register(WorkerInfo(WORKER, "web-cancel", 77, ["q"], now, now))
    enqueue(lw, 4)
    [job] = session.claim(["q"], utcnow(), 3600, lambda j: True)
    assert lw.api_post(f"/api/jobs/{job.id}/cancel").get_json()["changed"] == 1
    assert session.cancel_requested(job) and state(lw, job) is JobState.LOCKED
    assert session.cancelled(job, utcnow()) and state(lw, job) is JobState.CANCELLED
    session.unregister()
    session.close()
