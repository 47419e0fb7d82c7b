"""A job edited from the dashboard (its page's "Edit" form) and from `POST
/api/jobs/<id>/edit`: audited with old and new values, bad input re-shown with one message and
nothing changed, behind login, CSRF and read-only like every change. On SQLite and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from qadmin.job import Job, utcnow
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


def fresh(web: Web) -> Job:
    ops: Ops = web.ops  # type: ignore[attr-defined]
    return ops.enqueue(NOOP, [1, "two"], queue="edits")


def test_the_job_page_links_to_the_form_which_shows_the_current_values(any_web: Web) -> None:
    job = fresh(any_web)
    page = any_web.html(f"/jobs/{quote(str(job.id))}")
    assert "data-edit" in page and 'href="/edit/' in page
    form = any_web.html(f"/edit/{quote(str(job.id))}")
    assert 'name="args"' in form and "[1, &#34;two&#34;]" in form and 'value="edits"' in form
    has_priority = any_web.ops.supports_priority  # type: ignore[attr-defined]
    assert ('name="priority"' in form) is has_priority


def test_the_form_edits_audits_and_goes_back_to_the_job(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    job = fresh(any_web)
    response = any_web.post(
        f"/edit/{quote(str(job.id))}", {"args": "[2]", "kwargs": "{}", "queue": "edits", "run_at": ""}
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    entry = ops.audit(limit=1)[0]
    assert entry.verb == "edit" and entry.selection["before"] == {"args": [1, "two"]}
    assert entry.selection["after"] == {"args": [2]}
    page = any_web.html(response.headers["Location"])
    assert "edited job" in page and "args" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"args": "[1,"}, "args is not valid JSON"),
        ({"kwargs": "[1]"}, "kwargs must be a JSON object"),
        ({"run_at": "tomorrow"}, "not an ISO 8601 time"),
        ({"queue": "a\x00b"}, "queue name"),
        ({"args": '[1, "two"]'}, "nothing to edit"),
    ],
)
def test_bad_input_reshows_the_form_with_one_message_and_changes_nothing(
    any_web: Web, fields: dict[str, str], message: str
) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    job = fresh(any_web)
    audited = len(ops.audit())
    response = any_web.post(f"/edit/{quote(str(job.id))}", fields)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert html.count("data-problem") == 1 and message in html and 'name="queue"' in html
    assert ops.show(job.id).args == [1, "two"] and len(ops.audit()) == audited


def test_a_locked_job_is_refused_on_the_form_and_the_api(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    job = fresh(any_web)
    claimed = ops.backend.claim(["edits"], "w1", utcnow(), 3600.0, lambda j: j.id == job.id)
    assert claimed is not None
    response = any_web.post(f"/edit/{quote(str(job.id))}", {"args": "[2]"})
    assert response.status_code == 400 and "is locked" in response.get_data(as_text=True)
    api = any_web.api_post(f"/api/jobs/{quote(str(job.id))}/edit", {"args": [2]})
    assert api.status_code == 409 and "is locked" in api.get_json()["error"]["message"]


def test_the_form_needs_csrf_and_login_and_read_only_refuses(ops: Ops) -> None:
    job = ops.enqueue(NOOP, [1], queue="edits")
    url = f"/edit/{quote(str(job.id))}"
    web = make_web(ops).login()
    assert web.client.post(url, data={"args": "[2]", "csrf_token": "forged"}).status_code == 400
    anonymous = make_web(ops)
    assert anonymous.client.post(url, data={"args": "[2]"}).status_code == 302
    assert anonymous.client.get(url).status_code == 302
    read_only = make_web(ops, QADMIN_READ_ONLY=True).login()
    assert read_only.post(url, {"args": "[2]"}).status_code == 403
    assert read_only.api_post(f"/api/jobs/{job.id}/edit", {"args": [2]}).status_code == 403
    assert "read-only" in read_only.html(url) and "data-edit" not in read_only.html(f"/jobs/{job.id}")
    assert ops.show(job.id).args == [1]


# --- the JSON API ------------------------------------------------------------------------------
def test_api_edit_answers_before_and_after_and_a_dry_run_changes_nothing(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    job = fresh(any_web)
    url = f"/api/jobs/{quote(str(job.id))}/edit"
    dry = any_web.api_post(url, {"args": [3], "dry_run": True})
    assert dry.status_code == 200 and dry.get_json()["dry_run"] and ops.show(job.id).args == [1, "two"]
    response = any_web.api_post(url, {"args": [3], "run_at": "2031-05-06T07:08:09Z"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["before"]["args"] == [1, "two"] and body["after"] == {"args": [3], "run_at": "2031-05-06T07:08:09Z"}
    shown = any_web.get(f"/api/jobs/{quote(body['new_id'])}").get_json()
    assert shown["args"] == [3] and shown["state"] == "scheduled"
    assert shown["audit"][0]["verb"] == "edit"


@pytest.mark.parametrize(
    "body", [{}, {"args": 7}, {"args": "not json"}, {"kwargs": [1]}, {"priority": "high"}, {"run_at": "soon"}]
)
def test_api_edit_bad_input_is_400_and_changes_nothing(web: Web, ops: Ops, body: dict[str, object]) -> None:
    job = ops.enqueue(NOOP, [1], queue="edits")
    response = web.api_post(f"/api/jobs/{job.id}/edit", body)
    assert response.status_code == 400 and response.get_json()["error"]["message"]
    assert ops.show(job.id).args == [1]
