"""The web's error groups by fingerprint (issue #17), on SQLite and Redis demo data: one group
for failures differing only in a value, its page with the exact variants and a sample, retry and
delete of the group through the confirmation page (counted first, CSRF as every form), and the
API's new fields and `fingerprint` filter on /api/errors, /api/jobs and the bulk verbs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import pytest

from qadmin.filters import JobFilter
from qadmin.fingerprints import fingerprint
from qadmin.job import JobState, NewJob, utcnow
from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web

RECIPIENTS = [f"ValueError: invalid recipient 'customer{i}'" for i in range(3)]
GROUP = fingerprint(RECIPIENTS[0]).id


@pytest.fixture
def any_web(demo_url: str) -> Iterator[Web]:
    ops = Ops.open(demo_url, face="test")
    web = Web(create_app(ops, {"TESTING": True})).login()
    web.ops = ops  # type: ignore[attr-defined]
    web.ids = []  # type: ignore[attr-defined]
    for n, error in enumerate(RECIPIENTS):
        job = ops.backend.enqueue(NewJob("qadmin.examples.SendEmail", [n], queue="fp-mail"))
        claimed = ops.backend.claim(["fp-mail"], "w", utcnow(), 3600, lambda j, job=job: j.id == job.id)
        assert claimed is not None
        ops.backend.fail(claimed, "w", utcnow(), error + "\nTraceback", None)
        web.ids.append(str(job.id))  # type: ignore[attr-defined]
    yield web
    ops.close()


def test_the_errors_page_lists_one_group_with_its_pattern_and_sample(any_web: Web) -> None:
    html = unescape(any_web.html("/errors"))
    assert "ValueError: invalid recipient '<…>'" in html and "3 variants" in html
    assert f"/errors/{GROUP}" in html and 'name="f.fingerprint" value="' + GROUP in html
    assert "e.g. ValueError: invalid recipient 'customer" in html
    assert "first failed" in html


def test_a_group_page_shows_its_variants_and_a_sample(any_web: Web) -> None:
    html = unescape(any_web.html(f"/errors/{GROUP}"))
    for error in RECIPIENTS:
        assert error in html
    assert "3 exact messages" in html and f"fingerprint={GROUP}" in html
    assert any(f"/jobs/{i}" in html for i in any_web.ids)  # type: ignore[attr-defined]
    assert any_web.get("/errors/000000000000").status_code == 404
    assert any_web.get("/errors/nonsense").status_code == 400
    listed = any_web.html(f"/jobs?state=failed&fingerprint={GROUP}")
    assert all(f"/jobs/{i}" in listed for i in any_web.ids)  # type: ignore[attr-defined]


def test_retry_of_a_group_is_counted_then_confirmed(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    before = ops.count(JobFilter(states=frozenset({JobState.FAILED})))
    form = {"action": "retry:filter", "f.state": "failed", "f.fingerprint": GROUP, "back": "/errors"}
    asked = any_web.post("/actions/preview", form)
    assert asked.status_code == 303, asked.get_data(as_text=True)[:300]
    page = any_web.html(asked.headers["Location"])
    assert "data-preview-count>3<" in page
    assert ops.count(JobFilter(states=frozenset({JobState.FAILED}))) == before  # nothing yet
    refused = any_web.client.post(asked.headers["Location"] + "/apply")  # no CSRF token
    assert refused.status_code == 400
    applied = any_web.post(asked.headers["Location"] + "/apply")
    assert applied.status_code == 303
    assert {ops.show(i).state for i in any_web.ids} == {JobState.PENDING}  # type: ignore[attr-defined]
    assert ops.count(JobFilter(states=frozenset({JobState.FAILED}))) == before - 3
    assert ops.audit(1)[0].selection.get("fingerprint") == GROUP


def test_delete_of_a_group_from_its_page(any_web: Web) -> None:
    ops: Ops = any_web.ops  # type: ignore[attr-defined]
    html = any_web.html(f"/errors/{GROUP}")
    assert re.search(r'value="delete:filter"', html)
    any_web.confirmed("/actions/preview", {"action": "delete:filter", "f.state": "failed", "f.fingerprint": GROUP})
    assert ops.count(JobFilter(fingerprint=GROUP)) == 0


def test_the_api_carries_groups_and_filters_by_fingerprint(any_web: Web) -> None:
    groups = any_web.get("/api/errors").get_json()
    group = next(g for g in groups if g["fingerprint"] == GROUP)
    assert group["count"] == 3 and group["pattern"] == "ValueError: invalid recipient '<…>'"
    assert sorted(v["error"] for v in group["variants"]) == RECIPIENTS and group["first_failed_at"]
    assert [g["fingerprint"] for g in any_web.get(f"/api/errors?fingerprint={GROUP}").get_json()] == [GROUP]
    jobs = any_web.get(f"/api/jobs?fingerprint={GROUP}").get_json()["jobs"]
    assert sorted(str(j["id"]) for j in jobs) == sorted(any_web.ids)  # type: ignore[attr-defined]
    assert any_web.get("/api/jobs?fingerprint=xyz").status_code == 400
    dry = any_web.api_post("/api/retry", {"fingerprint": GROUP, "dry_run": True}).get_json()
    assert dry["matched"] == 3 and dry["changed"] == 0
    preview = any_web.api_post("/api/previews", {"verb": "delete", "fingerprint": GROUP}).get_json()
    assert preview["matched"] == 3
    assert any_web.api_post(f"/api/previews/{preview['token']}/apply").get_json()["changed"] == 3
