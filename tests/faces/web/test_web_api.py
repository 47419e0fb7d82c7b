"""The JSON API: the CLI's `--json` shapes, error statuses, bulk verbs in one and two steps, the
OpenAPI description and /metrics. The core runs on SQLite and on Redis."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from qadmin.cli import main as cli
from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web

FAILED = JobFilter(states=frozenset({JobState.FAILED}))


@pytest.fixture
def any_web(demo_url: str):
    """A logged-in client on demo data, on SQLite and on Redis."""
    ops = Ops.open(demo_url, face="test")
    web = Web(create_app(ops, {"TESTING": True})).login()
    web.ops = ops  # type: ignore[attr-defined]
    web.url = demo_url  # type: ignore[attr-defined]
    yield web
    ops.close()


def cli_json(url: str, *args: str):
    result = CliRunner().invoke(cli, ["--url", url, *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- the same JSON as the CLI ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "endpoint,command",
    [
        ("/api/stats", ["stats"]),
        ("/api/queues", ["queues"]),
        ("/api/workers", ["workers"]),
        ("/api/errors", ["errors"]),
        ("/api/audit", ["audit"]),
    ],
)
def test_listing_json_is_the_cli_json(any_web: Web, endpoint: str, command: list[str]) -> None:
    any_web.ops.pause("images")  # something in the audit log and a paused queue
    response = any_web.get(endpoint)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == cli_json(any_web.url, *command)


def test_jobs_json_is_the_cli_json_plus_a_cursor(any_web: Web) -> None:
    body = any_web.get("/api/jobs?state=failed&limit=5").get_json()
    assert body["jobs"] == cli_json(any_web.url, "jobs", "--state", "failed", "--limit", "5")
    assert body["next_cursor"]
    rest = any_web.get(f"/api/jobs?state=failed&limit=50&cursor={body['next_cursor']}").get_json()
    ids = [j["id"] for j in body["jobs"] + rest["jobs"]]
    assert len(ids) == len(set(ids)) == 13 and rest["next_cursor"] is None


def test_show_json_is_the_cli_json(any_web: Web) -> None:
    job_id = any_web.ops.list_jobs(FAILED, limit=1).jobs[0].id
    assert any_web.get(f"/api/jobs/{job_id}").get_json() == cli_json(any_web.url, "show", str(job_id))


def test_jobs_filters(any_web: Web) -> None:
    jobs = any_web.get("/api/jobs?queue=email&class=qadmin.examples.SendEmail&search=user1").get_json()["jobs"]
    assert {j["args"][0] for j in jobs} == {"user1@example.com", "user10@example.com", "user11@example.com"}
    assert any_web.get("/api/jobs?state=stale").get_json()["jobs"][0]["stale"] is True


# --- errors map to statuses, never 200 ---------------------------------------------------------------
def test_missing_job_is_404(any_web: Web) -> None:
    missing = "987654" if any_web.url.startswith("sqlite") else "nowhere:0123456789ab"
    response = any_web.get(f"/api/jobs/{missing}")
    assert response.status_code == 404
    assert response.get_json()["error"]["type"] == "JobNotFound"
    assert any_web.api_post(f"/api/jobs/{missing}/retry").status_code == 404


def test_wrong_state_is_409(any_web: Web) -> None:
    pending = any_web.ops.list_jobs(JobFilter(states=frozenset({JobState.PENDING})), limit=1).jobs[0]
    response = any_web.api_post(f"/api/jobs/{pending.id}/retry")
    assert response.status_code == 409 and response.get_json()["error"]["type"] == "InvalidTransition"
    assert any_web.api_post(f"/api/jobs/{pending.id}/unlock").status_code == 409
    assert any_web.ops.show(pending.id).state is JobState.PENDING


@pytest.mark.parametrize("query", ["state=bogus", "limit=0", "limit=x", "sort=nope", "args=[1,", "args={}"])
def test_bad_input_is_400(any_web: Web, query: str) -> None:
    response = any_web.get(f"/api/jobs?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["type"] == "UsageError"


#: a JSON array holding a lone surrogate, as text ("\ud800" spelt with its escape)
SURROGATE_ARGS = '["\\ud800"]'


def test_crafted_input_is_400_never_500_and_changes_nothing(any_web: Web) -> None:
    any_web.app.config["PROPAGATE_EXCEPTIONS"] = False
    before = any_web.ops.stats().queues
    audit = len(any_web.ops.audit(limit=500))
    from urllib.parse import quote

    for url in (
        f"/jobs?args={quote(SURROGATE_ARGS)}",
        f"/api/jobs?args={quote(SURROGATE_ARGS)}",
        f"/errors?args={quote(SURROGATE_ARGS)}",
        "/api/jobs?cursor=%5B99999999999999999999999%5D",
        "/jobs?cursor=%5B99999999999999999999999%5D",
        "/api/jobs?cursor=99999999999999999999999",
    ):
        response = any_web.get(url)
        assert response.status_code == 400, (url, response.status_code)
    for verb in ("retry", "unlock", "dequeue", "delete"):
        bodies = [
            '{"queue": "default", "class": "X", "args": "[\\"\\ud800\\"]"}',  # args as JSON text
            '{"queue": "default", "class": "X", "args": ["\\ud800"]}',  # args as an array
            '{"queue": "\\udfff", "class": "X"}',
            '{"search": "a\\ud800b"}',
        ]
        for body in bodies:
            response = any_web.client.post(
                f"/api/{verb}",
                data=body,
                content_type="application/json",
                headers={"X-CSRFToken": any_web.csrf()},
            )
            assert response.status_code == 400, (verb, body, response.get_data(as_text=True)[:300])
            assert "lone surrogate" in response.get_json()["error"]["message"]
    for older in ("99999999999999d", 1e308, 10**30, "1e999", "nan"):
        response = any_web.api_post("/api/unlock", json={"older_than": older})
        assert response.status_code == 400, (older, response.get_data(as_text=True)[:300])
    response = any_web.api_post("/api/previews", json={"verb": "retry", "args": ["\ud800"]})
    assert response.status_code == 400
    assert any_web.ops.stats().queues == before and len(any_web.ops.audit(limit=500)) == audit


def test_unreachable_backend_is_503() -> None:
    from tests.servers import free_port

    ops = Ops.open(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")  # nobody listens there
    web = Web(create_app(ops, {"TESTING": True})).login()
    response = web.get("/api/stats")
    assert response.status_code == 503 and response.get_json()["error"]["type"] == "BackendUnavailable"
    page = web.get("/")
    assert page.status_code == 503 and "BackendUnavailable" in page.get_data(as_text=True)


def test_unknown_api_path_is_a_json_404(any_web: Web) -> None:
    response = any_web.get("/api/nothing-here")
    assert response.status_code == 404 and response.get_json()["error"]["status"] == 404


def test_body_must_be_a_json_object(any_web: Web) -> None:
    response = any_web.client.post(
        "/api/retry", data="[1]", content_type="application/json", headers={"X-CSRFToken": any_web.csrf()}
    )
    assert response.status_code == 400


# --- actions ---------------------------------------------------------------------------------------
def test_retry_one_job(any_web: Web) -> None:
    job_id = any_web.ops.list_jobs(FAILED, limit=1).jobs[0].id
    response = any_web.api_post(f"/api/jobs/{job_id}/retry")
    assert response.status_code == 200 and response.get_json()["state"] == "pending"
    assert any_web.ops.show(job_id).state is JobState.PENDING


def test_delete_and_unlock_one_job(any_web: Web) -> None:
    job_id = any_web.ops.list_jobs(FAILED, limit=1).jobs[0].id
    body = any_web.api_post(f"/api/jobs/{job_id}/delete").get_json()
    assert (body["verb"], body["matched"], body["changed"]) == ("delete", 1, 1)
    stale = any_web.ops.list_jobs(JobFilter(states=frozenset({JobState.LOCKED}), stale_only=True)).jobs[0]
    assert any_web.api_post(f"/api/jobs/{stale.id}/unlock").get_json()["changed"] == 1
    assert any_web.ops.show(stale.id).state is JobState.PENDING


def test_bulk_dry_run_changes_nothing_then_the_real_run(any_web: Web) -> None:
    dry = any_web.api_post("/api/retry", {"state": "failed", "queue": "billing", "dry_run": True}).get_json()
    assert dry["dry_run"] is True and dry["matched"] == 6 and dry["changed"] == 0 and len(dry["sample"]) == 6
    assert any_web.ops.count(FAILED) == 13
    real = any_web.api_post("/api/retry", {"state": "failed", "queue": "billing"}).get_json()
    assert (real["matched"], real["changed"], real["skipped"]) == (6, 6, 0)
    assert any_web.ops.count(FAILED) == 7


def test_bulk_retry_json_is_the_cli_json(any_web: Web) -> None:
    api = any_web.api_post("/api/retry", {"queue": "default", "state": "failed", "dry_run": True}).get_json()
    assert api == cli_json(any_web.url, "retry", "--failed", "--queue", "default", "--dry-run")


def test_bulk_with_ids_and_form_fields(any_web: Web) -> None:
    ids = [str(j.id) for j in any_web.ops.list_jobs(FAILED, limit=2).jobs]
    response = any_web.client.post(
        "/api/delete", data={"id": ids}, headers={"Authorization": f"Bearer {any_web.token}"}
    )
    assert response.get_json()["changed"] == 2


def test_bulk_refuses_an_empty_filter(any_web: Web) -> None:
    assert any_web.api_post("/api/delete", {}).status_code == 400
    assert any_web.ops.count(FAILED) == 13


def test_dequeue_by_class_and_args(any_web: Web) -> None:
    job = any_web.ops.list_jobs(JobFilter(states=frozenset({JobState.PENDING}), queues=("images",)), limit=1).jobs[0]
    body = any_web.api_post("/api/dequeue", {"queue": "images", "class": job.class_name, "args": job.args}).get_json()
    assert (body["matched"], body["changed"]) == (1, 1)
    assert any_web.api_post("/api/dequeue", {"class": job.class_name}).status_code == 400


def test_unlock_stale_and_older_than(any_web: Web) -> None:
    assert any_web.api_post("/api/unlock", {"state": "stale", "dry_run": True}).get_json()["matched"] == 1
    body = any_web.api_post("/api/unlock", {"older_than": "1h"}).get_json()
    assert (body["matched"], body["changed"]) == (1, 1)
    assert any_web.api_post("/api/unlock", {"older_than": "soon"}).status_code == 400


def test_unlocking_a_job_a_live_worker_holds_needs_force(any_web: Web) -> None:
    locked = JobFilter(states=frozenset({JobState.LOCKED}))
    held = [j for j in any_web.ops.list_jobs(locked, limit=100).jobs if not j.stale][0]
    refused = any_web.api_post(f"/api/jobs/{held.id}/unlock")
    assert refused.status_code == 409 and "may then run twice" in refused.get_json()["error"]["message"]
    bulk = any_web.api_post("/api/unlock", {"id": [str(held.id)]})
    assert bulk.status_code == 409 and "force=true" in bulk.get_json()["error"]["message"]
    assert any_web.ops.show(held.id).state is JobState.LOCKED  # refused: nothing changed
    dry = any_web.api_post("/api/unlock", {"id": [str(held.id)], "dry_run": True})
    assert dry.status_code == 200 and dry.get_json()["matched"] == 1
    preview = any_web.api_post("/api/previews", {"verb": "unlock", "id": [str(held.id)]}).get_json()
    assert preview["alive"] == 1 and "may then run twice" in preview["warning"]
    forced = any_web.api_post(f"/api/jobs/{held.id}/unlock", {"force": True})
    assert forced.status_code == 200 and forced.get_json()["changed"] == 1
    assert any_web.ops.show(held.id).state is JobState.PENDING


def test_two_step_preview_acts_on_exactly_the_frozen_ids(any_web: Web) -> None:
    created = any_web.api_post("/api/previews", {"verb": "retry", "state": "failed", "queue": "default"})
    assert created.status_code == 201
    preview = created.get_json()
    assert preview["matched"] == 4 and preview["verb"] == "retry" and preview["filter"]["queue"] == "default"
    assert any_web.get(f"/api/previews/{preview['token']}").get_json()["matched"] == 4
    frozen = [j["id"] for j in preview["sample"]]
    any_web.ops.delete(JobFilter(ids=(frozen[0],)))  # leaves the previewed set meanwhile
    result = any_web.api_post(f"/api/previews/{preview['token']}/apply").get_json()
    assert (result["matched"], result["changed"], result["skipped"]) == (4, 3, 1)
    assert all(any_web.ops.show(i).state is JobState.PENDING for i in frozen[1:])
    assert any_web.api_post(f"/api/previews/{preview['token']}/apply").status_code == 400  # used up


def test_pause_and_resume(any_web: Web) -> None:
    body = any_web.api_post("/api/queues/email/pause").get_json()
    assert body == {"queue": "email", "paused": True, "changed": True}
    assert any_web.api_post("/api/queues/email/pause").get_json()["changed"] is False
    assert any_web.get("/api/stats").get_json()["paused"] == ["email"]
    assert any_web.api_post("/api/queues/email/resume").get_json() == {
        "queue": "email",
        "paused": False,
        "changed": True,
    }


def test_backends_listing(any_web: Web) -> None:
    assert any_web.get("/api/backends").get_json() == {
        "backends": ["default"],
        "default": "default",
        "current": "default",
    }


# --- OpenAPI and metrics ---------------------------------------------------------------------------
def test_openapi_is_valid_and_describes_every_api_route(web: Web) -> None:
    spec = web.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for rule in web.app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.rule == "/metrics"):
            continue
        path = re.sub(r"<(?:path:|job_id:|schedule:)?(\w+)>", r"{\1}", rule.rule)
        variants = [path]
        choice = re.search(r"<any\(([^)]*)\):(\w+)>", rule.rule)
        if choice:
            variants = [re.sub(r"<any\([^)]*\):\w+>", word.strip(), path) for word in choice.group(1).split(",")]
        for variant in variants:
            assert variant in spec["paths"], variant
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert method.lower() in spec["paths"][variant], (variant, method)
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(spec)


def test_metrics_in_prometheus_text_format(web: Web, ops: Ops) -> None:
    response = web.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.get_data(as_text=True)
    st = ops.stats()
    assert f'qadmin_jobs{{backend="default",queue="billing",state="failed"}} {st.queues["billing"]["failed"]}' in text
    assert f'qadmin_processed_total{{backend="default"}} {st.processed}' in text
    assert f'qadmin_failed_total{{backend="default"}} {st.failed}' in text
    assert f'qadmin_workers{{backend="default"}} {st.workers}' in text
    # NaN: pending jobs whose payloads carry no enqueue time (Resque's, on Redis)
    age = r"[0-9.]+" if st.oldest_pending_at is not None or not st.totals().get("pending") else "NaN"
    assert re.search(r'^qadmin_oldest_pending_age_seconds\{backend="default"\} ' + age + "$", text, re.M)
    assert "# TYPE qadmin_processed_total counter" in text and "# TYPE qadmin_jobs gauge" in text
    for line in text.splitlines():
        assert line.startswith("#") or re.match(r"^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$", line), line


def test_metrics_escape_label_values(ops: Ops) -> None:
    from qadmin.job import NewJob

    ops.backend.enqueue(NewJob("x", [], queue='we"ird\\q'))
    web = Web(create_app(ops, {"TESTING": True})).login()
    assert 'queue="we\\"ird\\\\q"' in web.get("/metrics").get_data(as_text=True)
