"""`POST /api/prune`: dry run by a body flag or the query string, the real run and its audit
entry, and the gates every API POST passes (login or bearer, CSRF, read-only)."""

from __future__ import annotations

import pytest

from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web

FAILED = JobFilter(states=frozenset({JobState.FAILED}))


@pytest.fixture
def any_web(demo_url: str):
    """A logged-in client on demo data, on SQLite and on Redis."""
    ops = Ops.open(demo_url, face="web")
    web = Web(create_app(ops, {"TESTING": True})).login()
    web.ops = ops  # type: ignore[attr-defined]
    yield web
    ops.close()


@pytest.mark.parametrize("how", ["body", "query"])
def test_a_dry_run_counts_and_changes_nothing(any_web: Web, how: str) -> None:
    failed = any_web.ops.count(FAILED)
    assert failed > 0
    if how == "body":
        response = any_web.api_post("/api/prune", {"older_than": 0, "dry_run": True})
    else:
        response = any_web.api_post("/api/prune?dry_run=1", {"older_than": "0s"})
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert (report["verb"], report["dry_run"], report["failed"]) == ("prune", True, failed)
    assert any_web.ops.count(FAILED) == failed
    assert [e.verb for e in any_web.ops.audit(limit=1)] != ["prune"]


def test_the_real_run_prunes_and_is_audited(any_web: Web) -> None:
    failed = any_web.ops.count(FAILED)
    report = any_web.api_post("/api/prune", {"older_than": 0}).get_json()
    assert (report["dry_run"], report["failed"]) == (False, failed)
    assert any_web.ops.count(FAILED) == 0
    entry = any_web.ops.audit(limit=1)[0]
    assert (entry.verb, entry.face, entry.selection["failed"]) == ("prune", "web", failed)


def test_the_retention_settings_apply_without_older_than(any_web: Web) -> None:
    report = any_web.api_post("/api/prune", {"dry_run": True}).get_json()
    assert report["failed_before"] is not None and report["finished_before"] is not None


@pytest.mark.parametrize("older_than", ["soon", True, [1], -5])
def test_bad_older_than_is_400(any_web: Web, older_than: object) -> None:
    failed = any_web.ops.count(FAILED)
    response = any_web.api_post("/api/prune", {"older_than": older_than})
    assert response.status_code == 400
    assert any_web.ops.count(FAILED) == failed


def test_csrf_bearer_and_read_only(ops: Ops) -> None:
    failed = ops.count(FAILED)
    web = Web(create_app(ops, {"TESTING": True})).login()
    assert web.client.post("/api/prune", json={"older_than": 0}).status_code == 400  # no CSRF token
    anonymous = Web(create_app(ops, {"TESTING": True}))
    assert anonymous.client.post("/api/prune", json={"older_than": 0}).status_code == 401
    read_only = Web(create_app(ops, {"TESTING": True, "QADMIN_READ_ONLY": True}))
    bearer = {"Authorization": f"Bearer {read_only.token}"}
    assert read_only.client.post("/api/prune", json={"older_than": 0}, headers=bearer).status_code == 403
    assert ops.count(FAILED) == failed
    dry = anonymous.client.post(
        "/api/prune?dry_run=true", json={}, headers={"Authorization": f"Bearer {anonymous.token}"}
    )
    assert dry.status_code == 200 and dry.get_json()["dry_run"] is True
