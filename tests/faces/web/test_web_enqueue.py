"""A new job from the dashboard ("New job" form) and from `POST /api/jobs`: audited, refused with
one clear message and nothing stored on bad input, behind login, CSRF and read-only like every
change. On SQLite and on Redis (which has no priorities)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web, make_web

NOOP = "qadmin.examples.noop"


@pytest.fixture
def any_web(demo_url: str) -> Iterator[Web]:
    ops = Ops.open(demo_url, face="web")
    web = Web(create_app(ops, {"TESTING": True})).login()
    web.ops = ops  # type: ignore[attr-defined]
    yield web
    ops.close()


def test_the_jobs_page_links_to_the_form_which_offers_what_the_backend_has(any_web: Web) -> None:
    assert 'href="/enqueue"' in any_web.html("/jobs")
    form = any_web.html("/enqueue")
    assert 'name="class"' in form and 'name="args"' in form and 'name="kwargs"' in form and 'name="in"' in form
    assert 'list="class-names"' in form and "<datalist" in form
    has_priority = any_web.ops.supports_priority  # type: ignore[attr-defined]
    assert ('name="priority"' in form) is has_priority
    assert ("data-no-priority" in form) is (not has_priority)


def test_the_form_enqueues_audits_and_goes_to_the_new_job(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    before = ops.count()
    response = any_web.post(
        "/enqueue", {"class": NOOP, "args": '[1, "two"]', "kwargs": '{"k": true}', "queue": "mail", "in": "15m"}
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert ops.count() == before + 1
    entry = ops.audit(limit=1)[0]
    assert (entry.verb, entry.selection["class"], entry.selection["queue"]) == ("enqueue", NOOP, "mail")
    job = ops.show(entry.selection["id"])
    assert (job.args, job.kwargs, job.queue, job.state.value) == ([1, "two"], {"k": True}, "mail", "scheduled")
    page = any_web.html(response.headers["Location"])
    assert "enqueued job" in page and NOOP in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"args": "[1,"}, "args is not valid JSON"),
        ({"args": '{"a": 1}'}, "args must be a JSON array"),
        ({"kwargs": "[1]"}, "kwargs must be a JSON object"),
        ({"in": "5 fortnights"}, "in:"),
        ({"run_at": "tomorrow"}, "not an ISO 8601 time"),
        ({"run_at": "2030-01-01T00:00:00Z", "in": "5m"}, "not both"),
        ({"class": " "}, "class is required"),
        ({"queue": "a\x00b"}, "queue name"),
    ],
)
def test_bad_input_reshows_the_form_with_one_message_and_stores_nothing(
    any_web: Web, fields: dict[str, str], message: str
) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    before, audited = ops.count(), len(ops.audit())
    response = any_web.post("/enqueue", {"class": NOOP, **fields})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "data-problem" in html and message in html and 'name="class"' in html
    assert ops.count() == before and len(ops.audit()) == audited


def test_priority_is_refused_where_the_backend_has_none(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    before = ops.count()
    response = any_web.post("/enqueue", {"class": NOOP, "priority": "5"})
    if ops.supports_priority:
        assert response.status_code == 303
        assert ops.show(ops.audit(limit=1)[0].selection["id"]).priority == 5
        return
    assert response.status_code == 400 and "no priorities" in response.get_data(as_text=True)
    api = any_web.api_post("/api/jobs", {"class": NOOP, "priority": 5})
    assert api.status_code == 400 and "no priorities" in api.get_json()["error"]["message"]
    assert ops.count() == before


def test_the_form_needs_csrf_and_login(ops: Ops) -> None:
    web = make_web(ops).login()
    before = ops.count()
    assert web.client.post("/enqueue", data={"class": NOOP, "csrf_token": "forged"}).status_code == 400
    assert web.client.post("/enqueue", data={"class": NOOP}).status_code == 400
    anonymous = make_web(ops)
    assert anonymous.client.post("/enqueue", data={"class": NOOP}).status_code == 302  # to the login
    assert anonymous.client.get("/enqueue").status_code == 302
    assert ops.count() == before


def test_read_only_refuses_and_hides_the_form(ops: Ops) -> None:
    web = make_web(ops, QADMIN_READ_ONLY=True).login()
    before = ops.count()
    assert web.post("/enqueue", {"class": NOOP}).status_code == 403
    assert web.api_post("/api/jobs", {"class": NOOP}).status_code == 403
    assert 'href="/enqueue"' not in web.html("/jobs")
    assert "read-only" in web.html("/enqueue")
    assert ops.count() == before


# --- the JSON API ------------------------------------------------------------------------------
def test_api_enqueue_answers_201_with_the_job_as_the_api_shows_it(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    response = any_web.api_post("/api/jobs", {"class": NOOP, "args": [3], "kwargs": {"x": "y"}, "queue": "api"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    shown = any_web.get(f"/api/jobs/{body['id']}").get_json()
    assert body == shown
    assert (body["class"], body["args"], body["kwargs"], body["queue"]) == (NOOP, [3], {"x": "y"}, "api")
    assert [a["verb"] for a in body["audit"]] == ["enqueue"]
    assert ops.audit(limit=1)[0].face == "web"
    later = any_web.api_post("/api/jobs", {"class": NOOP, "args": "[1]", "run_at": "2031-05-06T07:08:09Z"})
    assert later.status_code == 201 and later.get_json()["run_at"] == "2031-05-06T07:08:09Z"
    delayed = any_web.api_post("/api/jobs", {"class": NOOP, "in": 3600})
    assert delayed.status_code == 201 and delayed.get_json()["state"] == "scheduled"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"class": 5},
        {"class": NOOP, "args": "not json"},
        {"class": NOOP, "args": 7},
        {"class": NOOP, "kwargs": [1]},
        {"class": NOOP, "priority": "high"},
        {"class": NOOP, "priority": True},
        {"class": NOOP, "priority": 2**40},
        {"class": NOOP, "in": "3 lightyears"},
        {"class": NOOP, "in": [1]},
        {"class": NOOP, "in": -5},
        {"class": NOOP, "run_at": "soon"},
        {"class": NOOP, "args": [float("nan")]},
        {"class": NOOP, "kwargs": {"x": float("inf")}},
    ],
)
def test_api_enqueue_bad_input_is_400_and_stores_nothing(web: Web, ops: Ops, body: dict[str, object]) -> None:
    before = ops.count()
    response = web.api_post("/api/jobs", body)
    assert response.status_code == 400 and response.get_json()["error"]["message"]
    assert ops.count() == before


def test_api_enqueue_needs_the_csrf_header_or_a_bearer_token(app: object, web: Web, ops: Ops) -> None:
    before = ops.count()
    assert web.client.post("/api/jobs", json={"class": NOOP}).status_code == 400
    assert ops.count() == before
    headers = {"Authorization": f"Bearer {web.token}"}
    fresh = web.app.test_client()
    assert fresh.post("/api/jobs", json={"class": NOOP}, headers=headers).status_code == 201
    assert fresh.post("/api/jobs", json={"class": NOOP}).status_code == 401
    assert ops.count() == before + 1
