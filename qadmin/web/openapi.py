"""The OpenAPI 3.0 description of /api (served at /api/openapi.json).

Hand-written next to the views it describes: the paths here, the schemas, responses and security
schemes they refer to in `openapi_components`. tests/faces/web/test_web_api.py checks that every API
route appears here and that the document is valid OpenAPI.
"""

from __future__ import annotations

from typing import Any

from qadmin import __version__
from qadmin.web.openapi_alerts import paths as alerts_paths
from qadmin.web.openapi_alerts import schemas as alerts_schemas
from qadmin.web.openapi_components import FLAG, array, components, ref
from qadmin.web.openapi_insight import paths as insight_paths
from qadmin.web.openapi_insight import schemas as insight_schemas
from qadmin.web.openapi_recurring import paths as recurring_paths
from qadmin.web.openapi_recurring import schemas as recurring_schemas


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}
NOT_FOUND = {"404": {"$ref": "#/components/responses/NotFound"}}
CONFLICT = {"409": {"$ref": "#/components/responses/Conflict"}}
READ_ONLY = {"403": {"$ref": "#/components/responses/Forbidden"}}

BACKEND = _query("backend", "A named backend (see /api/backends); default: the session's choice or the default.")
FILTER_PARAMS = [
    _query("state", "pending, scheduled, locked, stale, failed, finished (comma-separated)"),
    _query("queue", "queue name (comma-separated for several)"),
    _query("class", "job class"),
    _query("args", "exact positional arguments as a JSON array"),
    _query("search", "case-insensitive text in the payload or decoded arguments"),
    _query("id", "job ids (comma-separated)"),
    _query("worker", "lock owner (substring)"),
    _query("error", "the first line of last_error (an exact error variant)"),
    _query("fingerprint", "an error group: failed jobs whose error has this fingerprint (/api/errors)"),
]
LIMIT = _query("limit", "page size (1-500)", {"type": "integer", "minimum": 1, "maximum": 500})


def _get(
    summary: str,
    response: dict[str, Any],
    params: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": [BACKEND, *(params or [])],
            "responses": {"200": response, **ERRORS, **(extra or {})},
        }
    }


def _post(
    summary: str,
    response: dict[str, Any],
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    status: str = "200",
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [BACKEND, *(params or [])],
        "responses": {status: response, **ERRORS, **READ_ONLY, **(extra or {})},
    }
    if body:
        op["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": ref(body)},
                "application/x-www-form-urlencoded": {"schema": ref(body)},
            },
        }
    return {"post": op}


def spec() -> dict[str, Any]:
    job_param = _path("job_id", "a job id as listings print it")
    token_param = _path("token", "the token POST /api/previews answered")
    queue_param = _path("queue", "queue name")
    paths: dict[str, Any] = {
        "/api/stats": _get("Jobs per queue and state, counters, throughput (qadmin stats --json)", _json(ref("Stats"))),
        "/api/queues": _get("Queues with counts and pause state", _json(array("QueueInfo"))),
        "/api/workers": _get("Workers and lock holders", _json(array("WorkerInfo"))),
        "/api/errors": _get(
            "Failed jobs grouped by error fingerprint, with their exact variants",
            _json(array("ErrorGroup")),
            [_query("queue", "queue"), _query("class", "job class"), _query("fingerprint", "only this group"), LIMIT],
            NOT_FOUND,
        ),
        "/api/audit": _get(
            "Who did what, newest first",
            _json(array("AuditEntry")),
            [LIMIT, _query("job", "only entries that touched this job")],
            NOT_FOUND,  # a job id no job can have (-1 in SQL)
        ),
        "/api/jobs": _get(
            "One keyset page of jobs",
            _json(ref("JobPage")),
            [
                *FILTER_PARAMS,
                LIMIT,
                _query("cursor", "next_cursor of the previous page"),
                _query("sort", "id, -id, priority, run_at, -failed_at"),
            ],
            NOT_FOUND,  # ?id= that no job can have
        ),
        "/api/jobs/{job_id}": _get(
            "One job with raw payload, audit history and attempts (qadmin show --json); sensitive values "
            "redacted unless an admin asks with reveal (audited)",
            _json(ref("JobDetail")),
            [job_param, _query("reveal", "true: the redacted values in full (admins only; audited)", FLAG)],
            {**NOT_FOUND, "403": {"$ref": "#/components/responses/Forbidden"}},
        ),
        "/api/jobs/{job_id}/retry": _post(
            "Retry one failed job; answers the job",
            _json(ref("Job")),
            params=[job_param],
            extra={**NOT_FOUND, **CONFLICT},
        ),
        "/api/backends": _get("The named backends of the switcher", _json(ref("Backends"))),
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"})},
            }
        },
        "/api/previews": _post(
            "Freeze the jobs a bulk verb would act on",
            _json(ref("Preview"), "Created"),
            body="PreviewRequest",
            status="201",
            extra=NOT_FOUND,
        ),
        "/api/previews/{token}": _get("A stored preview", _json(ref("Preview")), [token_param]),
        "/api/previews/{token}/apply": _post(
            "Act on exactly the previewed jobs (once)", _json(ref("BulkResult")), params=[token_param]
        ),
        "/api/prune": _post(
            "Prune failed jobs, finished records and dead workers past their retention (qadmin prune)",
            _json(ref("PruneReport")),
            body="PruneRequest",
            params=[_query("dry_run", "count what would be pruned, change nothing", FLAG)],
        ),
        "/metrics": {
            "get": {
                "summary": "Prometheus text format",
                "parameters": [BACKEND],
                "responses": {
                    "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "400": {"$ref": "#/components/responses/BadRequest"},
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                },
            }
        },
    }
    paths["/api/jobs"].update(
        _post("Enqueue one job (audited); answers it", _json(ref("JobDetail"), "Created"), body="NewJob", status="201")
    )
    for verb in ("delete", "unlock"):
        paths[f"/api/jobs/{{job_id}}/{verb}"] = _post(
            f"{verb.capitalize()} one job",
            _json(ref("BulkResult")),
            body="Force",
            params=[job_param],
            extra={**NOT_FOUND, **CONFLICT},
        )
    for verb, what in (
        ("retry", "Make failed jobs pending again"),
        ("delete", "Delete jobs"),
        ("dequeue", "Remove waiting jobs of one class (and exact args) from one queue"),
        ("unlock", "Release locks (stale: true for dead workers' locks)"),
    ):
        # 404: an id no job can have (-1 in SQL); an id no job has is reported as skipped
        paths[f"/api/{verb}"] = _post(
            f"{what} (dry_run: true previews)",
            _json(ref("BulkResult")),
            body="BulkRequest",
            extra={**NOT_FOUND, **CONFLICT} if verb == "unlock" else NOT_FOUND,
        )
    for verb, one, many in (
        ("run-now", "Run one scheduled job now", "Run scheduled jobs now"),
        ("kill", "Fail one job waiting for a retry now", "Fail jobs waiting for a retry now, with no more attempts"),
        (
            "cancel",
            "Cancel one job: a waiting one is removed, one a qadmin worker runs is interrupted",
            "Cancel jobs: waiting ones are removed, those qadmin workers run are interrupted",
        ),
    ):
        paths[f"/api/jobs/{{job_id}}/{verb}"] = _post(
            one, _json(ref("BulkResult")), body="Force", params=[job_param], extra={**NOT_FOUND, **CONFLICT}
        )
        paths[f"/api/{verb}"] = _post(
            f"{many} (dry_run: true previews)", _json(ref("BulkResult")), body="BulkRequest", extra=NOT_FOUND
        )
    paths["/api/jobs/{job_id}/edit"] = _post(
        "Edit one pending, scheduled or failed job (qadmin edit); answers the old and new values",
        _json(ref("EditResult")),
        body="EditRequest",
        params=[job_param],
        extra={**NOT_FOUND, **CONFLICT},
    )
    for verb, what, body in (
        ("complete", "The external service a waiting job waits for succeeded: the job is finished", "CompleteRequest"),
        (
            "fail",
            "The external service failed: the waiting job is retried, or failed at its last attempt",
            "FailRequest",
        ),
    ):
        paths[f"/api/jobs/{{job_id}}/{verb}"] = _post(
            f"{what} (qadmin {verb})",
            _json(ref("WaitingReport")),
            body=body,
            params=[job_param],
            extra={**NOT_FOUND, **CONFLICT},
        )
    for verb in ("pause", "resume"):
        # a queue name no path can carry (a line break, a leading slash) is another URL: 404
        paths[f"/api/queues/{{queue}}/{verb}"] = _post(
            f"{verb.capitalize()} a queue", _json(ref("QueueAction")), params=[queue_param], extra=NOT_FOUND
        )
    paths.update(recurring_paths(BACKEND))
    paths.update(alerts_paths(BACKEND))
    paths.update(insight_paths(BACKEND))
    described = components()
    described["schemas"].update(recurring_schemas())
    described["schemas"].update(alerts_schemas())
    described["schemas"].update(insight_schemas())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "qadmin",
            "version": __version__,
            "description": "Operate job queues: the JSON of the CLI's --json. Every POST needs a bearer "
            "token, or the session cookie with the CSRF token in X-CSRFToken.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": dict(sorted(paths.items())),
        "components": described,
    }
