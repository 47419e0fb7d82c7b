"""Sensitive arguments on the dashboard and in the API: redacted on the job page, the listing, the
audit page, previews and the API for everyone; an admin's reveal (a POST with CSRF on the page,
`?reveal=1` in the API) shows them and is audited; a viewer or an operator cannot reveal; the edit
form keeps the hidden values. A Resque JSON payload on Redis and a delayed_job YAML row on SQLite
have their raw payloads redacted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from qadmin.access import Role
from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import Job, utcnow
from qadmin.ops import Ops
from qadmin.redaction import HIDDEN_RAW, MARKER
from tests.faces.web.support import Web, make_web

SECRETS = {"password": "hunter2", "card": "4111 1111 1111 1111", "token": "abc"}
LEAKS = ("hunter2", "4111", '"abc"', "&#34;abc&#34;")


def leaks(text: str) -> list[str]:
    return [s for s in LEAKS if s in text]


@pytest.fixture(params=["sqlite", "redis"])
def secret_web(request: pytest.FixtureRequest) -> Iterator[tuple[Web, Ops, Job]]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "redis_url")
    ops = Ops.open(url, face="web")
    ops.backend.init()
    job = ops.enqueue("qadmin.examples.SendEmail", ["to@example.com", SECRETS], queue="mail")
    web = make_web(ops).login()
    yield web, ops, job
    ops.close()


def as_role(monkeypatch: pytest.MonkeyPatch, role: Role) -> None:
    monkeypatch.setattr("qadmin.web.reveal.current_role", lambda: role)


def test_no_face_of_the_dashboard_shows_the_values(secret_web: tuple[Web, Ops, Job]) -> None:
    web, ops, job = secret_web
    path = quote(str(job.id))
    page = web.html(f"/jobs/{path}")
    assert not leaks(page) and MARKER in page and "data-reveal" in page
    for url in ("/jobs", "/jobs?queue=mail", "/audit", f"/edit/{path}"):
        assert not leaks(web.html(url)), url
    for url in (f"/api/jobs/{path}", "/api/jobs", "/api/audit"):
        response = web.get(url)
        assert response.status_code == 200 and not leaks(response.get_data(as_text=True)), url
    detail = web.get(f"/api/jobs/{path}").get_json()
    assert detail["args"][1] == {"password": MARKER, "card": MARKER, "token": MARKER}
    assert "hunter2" not in detail["raw"]
    dry = web.api_post("/api/delete", {"queue": "mail", "dry_run": True})
    assert dry.status_code == 200 and not leaks(dry.get_data(as_text=True)) and dry.get_json()["sample"]
    asked = web.post("/actions/preview", {"action": "delete:filter", "f.queue": "mail"})
    assert asked.status_code == 303
    assert not leaks(web.html(asked.headers["Location"]))
    dequeued = web.api_post(
        "/api/dequeue",
        {"queue": "mail", "class": "qadmin.examples.SendEmail", "args": json.dumps(["to@example.com", SECRETS])},
    )
    assert dequeued.status_code == 200 and dequeued.get_json()["changed"] == 1
    assert not leaks(web.html("/audit")) and not leaks(web.get("/api/audit").get_data(as_text=True))


def test_an_admin_reveals_on_the_page_and_in_the_api_and_both_are_audited(secret_web: tuple[Web, Ops, Job]) -> None:
    web, ops, job = secret_web
    path = quote(str(job.id))
    page = web.post(f"/jobs/{path}/reveal")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "hunter2" in html and "data-revealed" in html
    entry = ops.audit(limit=1)[0]
    assert (entry.verb, entry.selection, entry.face) == ("reveal", {"id": str(job.id)}, "web")
    detail = web.get(f"/api/jobs/{path}?reveal=1").get_json()
    assert detail["args"][1] == SECRETS
    assert [e.verb for e in ops.audit(limit=2)] == ["reveal", "reveal"]
    assert web.client.post(f"/jobs/{path}/reveal").status_code == 400  # no CSRF token


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_cannot_reveal(
    secret_web: tuple[Web, Ops, Job], monkeypatch: pytest.MonkeyPatch, role: Role
) -> None:
    web, ops, job = secret_web
    as_role(monkeypatch, role)
    path = quote(str(job.id))
    page = web.html(f"/jobs/{path}")
    assert not leaks(page) and "data-reveal" not in page
    assert web.post(f"/jobs/{path}/reveal").status_code == 403
    response = web.get(f"/api/jobs/{path}?reveal=1")
    assert response.status_code == 403 and not leaks(response.get_data(as_text=True))
    assert all(e.verb != "reveal" for e in ops.audit(limit=10))


def test_the_edit_form_and_api_keep_the_hidden_values(secret_web: tuple[Web, Ops, Job]) -> None:
    web, ops, job = secret_web
    path = quote(str(job.id))
    shown = json.dumps(["new@example.com", {"password": MARKER, "card": MARKER, "token": MARKER}])
    response = web.post(f"/edit/{path}", {"args": shown, "kwargs": "{}", "queue": "mail", "run_at": ""})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    [after] = ops.list_jobs(JobFilter(queues=("mail",))).jobs
    assert after.args == ["new@example.com", SECRETS]
    answer = web.api_post(f"/api/jobs/{quote(str(after.id))}/edit", {"args": ["x@example.com", {"password": MARKER}]})
    assert answer.status_code == 200 and not leaks(answer.get_data(as_text=True))
    [final] = ops.list_jobs(JobFilter(queues=("mail",))).jobs
    assert final.args == ["x@example.com", {"password": "hunter2"}]
    assert not leaks(web.html("/audit"))


def test_a_resque_payload_on_redis_has_its_raw_redacted(redis_url: str) -> None:
    import redis

    r = redis.Redis.from_url(redis_url)
    r.sadd("resque:queues", "legacy")
    r.rpush(
        "resque:queue:legacy", json.dumps({"class": "Charge", "args": [{"api_key": "sk_live_1"}, "4111111111111111"]})
    )
    ops = Ops.open(redis_url, face="web")
    try:
        web = make_web(ops).login()
        [job] = ops.list_jobs().jobs
        detail = web.get(f"/api/jobs/{quote(str(job.id))}").get_json()
        assert "sk_live_1" not in json.dumps(detail) and "4111" not in json.dumps(detail)
        assert json.loads(detail["raw"])["args"] == [{"api_key": MARKER}, MARKER]
        assert "sk_live_1" not in web.html(f"/jobs/{quote(str(job.id))}")
    finally:
        ops.close()


def test_a_delayed_job_yaml_row_has_its_raw_hidden(sqlite_url: str) -> None:
    import sqlalchemy as sa

    b: Any = open_backend(sqlite_url)
    b.init()
    now = utcnow()
    handler = "--- !ruby/object:PaymentJob\npassword: hunter2\namount: 5\n"
    with b.engine.begin() as conn:
        conn.execute(
            sa.insert(b.store.jobs()).values(
                priority=0, attempts=0, handler=handler, queue=None, run_at=now, created_at=now, updated_at=now
            )
        )
    b.close()
    ops = Ops.open(sqlite_url, face="web")
    try:
        web = make_web(ops).login()
        [job] = ops.list_jobs().jobs
        detail = web.get(f"/api/jobs/{job.id}").get_json()
        assert detail["raw"] == HIDDEN_RAW and "hunter2" not in json.dumps(detail)
        page = web.html(f"/jobs/{job.id}")
        assert "hunter2" not in page and "amount" in page
        assert "hunter2" in web.get(f"/api/jobs/{job.id}?reveal=1").get_json()["raw"]
    finally:
        ops.close()


def test_an_error_holding_a_card_number_is_redacted_in_groups_and_attempts(secret_web: tuple[Web, Ops, Job]) -> None:
    web, ops, _job = secret_web
    b = ops.backend
    failing = ops.enqueue("qadmin.examples.ChargeCard", [3], queue="billing")
    claimed = b.claim(["billing"], "w", utcnow(), 3600, lambda j: True)
    assert claimed is not None and str(claimed.id) == str(failing.id)
    b.fail(claimed, "w", utcnow(), "PaymentDeclined: card 4111 1111 1111 1111 declined\n  File x", None)
    page = web.html("/errors")
    assert "4111" not in page and MARKER in page
    assert not leaks(web.get("/api/errors").get_data(as_text=True))
    [failed] = ops.list_jobs(JobFilter(queues=("billing",))).jobs
    assert "4111" not in web.html(f"/jobs/{quote(str(failed.id))}")
    assert "4111" not in web.get(f"/api/jobs/{quote(str(failed.id))}").get_data(as_text=True)
