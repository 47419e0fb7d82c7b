"""A job's own timeout from the "New job" form and from `POST /api/jobs` (SQLite and Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web

NOOP = "qadmin.examples.noop"


@pytest.fixture
def any_web(demo_url: str) -> Iterator[Web]:
    ops = Ops.open(demo_url, face="web")
    web = Web(create_app(ops, {"TESTING": True})).login()
    web.ops = ops  # type: ignore[attr-defined]
    yield web
    ops.close()


def test_the_form_and_the_api_take_a_timeout(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    assert 'name="timeout"' in any_web.html("/enqueue")
    response = any_web.post("/enqueue", {"class": NOOP, "timeout": "15m"})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert ops.show(ops.audit(limit=1)[0].selection["id"]).timeout == 900
    api = any_web.api_post("/api/jobs", {"class": NOOP, "timeout": 30})
    assert api.status_code == 201 and api.get_json()["timeout"] == 30
    assert any_web.api_post("/api/jobs", {"class": NOOP, "timeout": "2m"}).get_json()["timeout"] == 120


@pytest.mark.parametrize("bad", [0, "never", True, [1]])
def test_a_bad_timeout_is_400_and_stores_nothing(any_web: Web, bad: object) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    before = ops.count()
    response = any_web.api_post("/api/jobs", {"class": NOOP, "timeout": bad})
    assert response.status_code == 400 and "timeout" in response.get_data(as_text=True)
    assert ops.count() == before
