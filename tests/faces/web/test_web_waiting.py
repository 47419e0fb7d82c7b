"""Waiting jobs on the JSON API (`POST /api/jobs/<id>/complete`, `/fail`): the external service's
verdict, guarded (409 once the job is no longer waiting), and the waiting state's filter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from qadmin.backends import open_backend
from qadmin.job import Job, JobState, NewJob, utcnow
from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web


@pytest.fixture
def lw(any_url: str) -> Iterator[Web]:
    backend = open_backend(any_url)
    backend.init()
    ops = Ops(backend, face="test")
    web = Web(create_app(ops, {"TESTING": True})).login()
    web.ops = ops  # type: ignore[attr-defined]
    yield web
    ops.close()


def parked(web: Web, n: int) -> Job:
    b = web.ops.backend  # type: ignore[attr-defined]
    job = b.enqueue(NewJob("qadmin.examples.noop", [n], queue="q"))
    session = b.session("w1")
    claimed = session.claim(["q"], utcnow(), 3600.0, lambda j: j.args == [n])
    assert session.wait(claimed[0], utcnow(), utcnow() + timedelta(hours=1))
    session.close()
    return job  # type: ignore[no-any-return]


def state(web: Web, job: Job) -> JobState:
    return web.ops.show(job.id).state  # type: ignore[attr-defined,no-any-return]


def test_the_api_completes_and_fails_waiting_jobs(lw: Web) -> None:
    done, failed = parked(lw, 1), parked(lw, 2)
    listed = lw.get("/api/jobs?state=waiting").get_json()
    assert sorted(str(j["id"]) for j in listed["jobs"]) == sorted([str(done.id), str(failed.id)])

    dry = lw.api_post(f"/api/jobs/{done.id}/complete", {"result": [1, 2], "dry_run": True}).get_json()
    assert dry["dry_run"] is True and state(lw, done) is JobState.WAITING
    body = lw.api_post(f"/api/jobs/{done.id}/complete", {"result": [1, 2]}).get_json()
    assert body == {"verb": "complete", "id": str(done.id), "dry_run": False, "changed": True}
    assert state(lw, done) is JobState.FINISHED
    assert lw.api_post(f"/api/jobs/{done.id}/complete").status_code == 409

    assert lw.api_post(f"/api/jobs/{failed.id}/fail", {}).status_code == 400  # an error is required
    assert lw.api_post(f"/api/jobs/{failed.id}/fail", {"error": "RemoteError: no"}).status_code == 200
    assert state(lw, failed) is JobState.SCHEDULED
    assert lw.api_post(f"/api/jobs/{failed.id}/fail", {"error": "again"}).status_code == 409
    assert [e.verb for e in lw.ops.audit(2)] == ["fail", "complete"]  # type: ignore[attr-defined]


def test_the_pages_show_a_waiting_job(lw: Web) -> None:
    job = parked(lw, 3)
    listing = lw.get("/jobs?state=waiting")
    assert listing.status_code == 200 and "waiting" in listing.get_data(as_text=True)
    page = lw.get(f"/jobs/{job.id}")
    assert page.status_code == 200 and "waiting" in page.get_data(as_text=True)
