"""Waiting and cancelled jobs on the web (issue #16): the jobs page's Waiting tab with its count,
waiting jobs in the All tab and in filters of several states, cancel and delete of waiting jobs
(the job page's button, the JSON API; a late report is refused with the reason), and the job page
of a job that finished before its cancel was seen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from qadmin.backends import open_backend
from qadmin.job import Job, JobState, NewJob, WorkerInfo, utcnow
from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web

WORKER = "host:web-waiting pid:78"


@pytest.fixture
def lw(any_url: str) -> Iterator[Web]:
    backend = open_backend(any_url)
    backend.init()
    ops = Ops(backend, face="test", actor="alice")
    web = Web(create_app(ops, {"TESTING": True})).login()
    web.ops = ops  # type: ignore[attr-defined]
    yield web
    ops.close()


def parked(web: Web, n: int, queue: str = "q") -> Job:
    b = web.ops.backend  # type: ignore[attr-defined]
    job = b.enqueue(NewJob("qadmin.examples.noop", [n], queue=queue))
    session = b.session("w1")
    claimed = session.claim([queue], utcnow(), 3600.0, lambda j: j.args == [n])
    assert session.wait(claimed[0], utcnow(), utcnow() + timedelta(hours=1))
    session.close()
    return job  # type: ignore[no-any-return]


def state(web: Web, job: Job) -> JobState:
    return web.ops.show(job.id).state  # type: ignore[attr-defined,no-any-return]


def tab_count(html: str, word: str) -> int:
    found = re.search(rf'class="tab-{word}"[^>]*>{word} <span class="tab-count">(\d+)</span>', html)
    assert found, f"no {word} tab"
    return int(found.group(1))


@pytest.mark.parametrize("query", ["", "?queue=q", "?class=noop"], ids=["all", "queue", "class"])
def test_the_waiting_tab_counts_and_lists_waiting_jobs(lw: Web, query: str) -> None:
    w1, w2 = parked(lw, 1), parked(lw, 2)
    pending = lw.ops.backend.enqueue(NewJob("qadmin.examples.noop", [3], queue="q"))  # type: ignore[attr-defined]
    html = lw.html("/jobs" + query)
    assert tab_count(html, "waiting") == 2 and tab_count(html, "pending") == 1
    # the All tab lists every job not done, the waiting ones too
    for job in (w1, w2, pending):
        assert f"/jobs/{job.id}" in html
    waiting = lw.html("/jobs" + (query + "&" if query else "?") + "state=waiting")
    assert f"/jobs/{w1.id}" in waiting and f"/jobs/{pending.id}" not in waiting
    # the tab offers cancel and delete of what it lists
    assert 'value="cancel:filter"' in waiting and 'value="delete:filter"' in waiting


def test_the_api_lists_and_counts_several_states_with_waiting_ones(lw: Web) -> None:
    w = parked(lw, 1)
    pending = lw.ops.backend.enqueue(NewJob("qadmin.examples.noop", [3], queue="q"))  # type: ignore[attr-defined]
    listed = lw.get("/api/jobs?state=pending,waiting").get_json()
    assert sorted(str(j["id"]) for j in listed["jobs"]) == sorted([str(w.id), str(pending.id)])
    everything = lw.get("/api/jobs").get_json()
    assert sorted(str(j["id"]) for j in everything["jobs"]) == sorted([str(w.id), str(pending.id)])
    first = lw.get("/api/jobs?limit=1").get_json()
    second = lw.get("/api/jobs", query_string={"limit": 1, "cursor": first["next_cursor"]}).get_json()
    assert {str(first["jobs"][0]["id"]), str(second["jobs"][0]["id"])} == {str(w.id), str(pending.id)}
    assert second["next_cursor"] is None
    assert lw.get("/api/stats").get_json()["queues"]["q"]["waiting"] == 1


def test_a_waiting_job_is_cancelled_from_its_page_and_its_late_report_is_refused(lw: Web) -> None:
    job = parked(lw, 4)
    page = lw.html(f"/jobs/{job.id}")
    assert 'value="cancel"' in page and 'value="delete"' in page
    asked = lw.post("/job-action", {"id": str(job.id), "verb": "cancel"})
    lw.html(asked.headers["Location"])
    assert lw.post(asked.headers["Location"] + "/apply").status_code == 303
    assert state(lw, job) is JobState.CANCELLED
    late = lw.api_post(f"/api/jobs/{job.id}/complete", {"result": 1})
    assert late.status_code == 409 and "too late" in late.get_data(as_text=True)
    assert state(lw, job) is JobState.CANCELLED


def test_the_api_cancels_and_deletes_waiting_jobs(lw: Web) -> None:
    a, b = parked(lw, 5), parked(lw, 6)
    dry = lw.api_post("/api/cancel", {"state": "waiting", "dry_run": True}).get_json()
    assert dry["matched"] == 2 and state(lw, a) is JobState.WAITING
    assert lw.api_post(f"/api/jobs/{a.id}/cancel").get_json()["changed"] == 1
    assert state(lw, a) is JobState.CANCELLED
    assert lw.api_post(f"/api/jobs/{b.id}/delete").get_json()["changed"] == 1
    assert lw.get(f"/api/jobs/{b.id}").status_code == 404


def test_the_job_page_says_a_job_finished_before_its_cancel_was_seen(lw: Web) -> None:
    b = lw.ops.backend  # type: ignore[attr-defined]
    session = b.session(WORKER)
    now = utcnow()
    session.register(WorkerInfo(WORKER, "web-waiting", 78, ["q"], now, now))
    b.enqueue(NewJob("qadmin.examples.noop", [7], queue="q"))
    [job] = session.claim(["q"], utcnow(), 3600, lambda j: True)
    assert lw.api_post(f"/api/jobs/{job.id}/cancel").get_json()["changed"] == 1
    assert "its worker stops the job within seconds" in lw.html(f"/jobs/{job.id}")
    session.complete(job, utcnow(), 0.1)
    session.flush()
    session.settle_cancels(utcnow())
    page = lw.html(f"/jobs/{job.id}")
    assert "data-cancel-note" in page and "— it finished first" in page
    shown = lw.get(f"/api/jobs/{job.id}").get_json()
    assert shown["state"] == "finished" and shown["meta"]["cancel_note"].endswith("— it finished first")
    session.unregister()
    session.close()


def test_the_waiting_tab_cancels_every_waiting_job_through_preview_and_confirm(lw: Web) -> None:
    a, b = parked(lw, 8), parked(lw, 9)
    asked = lw.post("/actions/preview", {"action": "cancel:filter", "f.state": "waiting", "f.queue": "q"})
    confirm = lw.html(asked.headers["Location"])
    assert "Confirm: cancel 2 jobs" in confirm and state(lw, a) is JobState.WAITING
    assert lw.post(asked.headers["Location"] + "/apply").status_code == 303
    assert state(lw, a) is JobState.CANCELLED and state(lw, b) is JobState.CANCELLED
    assert tab_count(lw.html("/jobs"), "waiting") == 0 and tab_count(lw.html("/jobs"), "cancelled") == 2
