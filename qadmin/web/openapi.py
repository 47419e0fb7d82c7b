"""The OpenAPI 3.0 description of /api (served at /api/openapi.json).

Hand-written next to the views it describes; tests/web/test_web_api.py checks that every
API route appears here and that the document is valid OpenAPI.
"""

from __future__ import annotations

from typing import Any

from qadmin import __version__
from qadmin.web.actions import NO, YES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _array(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


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
    _query("error", "the first line of last_error (an error group)"),
]
#: a yes/no field: a JSON boolean, or one of the words a form sends (qadmin.web.actions.flag)
FLAG: dict[str, Any] = {"oneOf": [{"type": "boolean", "nullable": True}, {"type": "string", "enum": [*YES, *NO]}]}
#: a text field of a request body, which may be null (not given)
TEXT: dict[str, Any] = {"type": "string", "nullable": True}
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
                "application/json": {"schema": _ref(body)},
                "application/x-www-form-urlencoded": {"schema": _ref(body)},
            },
        }
    return {"post": op}


def _schemas() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time", "nullable": True}
    job_id = {"oneOf": [{"type": "integer"}, {"type": "string"}]}
    states = ["pending", "scheduled", "locked", "failed", "finished"]
    job = {
        "type": "object",
        "required": ["id", "queue", "class", "args", "kwargs", "state"],
        "properties": {
            "id": job_id,
            "queue": {"type": "string", "nullable": True},
            "class": {"type": "string"},
            "args": {"type": "array", "items": {}},
            "kwargs": {"type": "object", "additionalProperties": True},
            "state": {"type": "string", "enum": states},
            "priority": {"type": "integer"},
            "attempts": {"type": "integer"},
            "run_at": time,
            "locked_at": time,
            "locked_by": {"type": "string", "nullable": True},
            "failed_at": time,
            "last_error": {"type": "string", "nullable": True},
            "created_at": time,
            "finished_at": time,
            "stale": {"type": "boolean"},
            "format": {"type": "string"},
            "undecodable": {"type": "string", "description": "why the payload could not be decoded"},
            "raw": {"type": "string"},
            "truncated": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "in listings: the fields cut to 4096 characters, each with its full size; "
                "GET /api/jobs/{job_id} gives them whole",
            },
        },
    }
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    filter_body = {
        "type": "object",
        "description": "Which jobs: the same fields as the listing's query parameters (null: not given).",
        "properties": {
            "state": {"oneOf": [TEXT, {"type": "array", "items": {"type": "string"}}]},
            "queue": {"oneOf": [TEXT, {"type": "array", "items": {"type": "string"}}]},
            "class": TEXT,
            "args": {"oneOf": [{"type": "array", "items": {}}, TEXT]},
            "search": TEXT,
            "id": {"oneOf": [job_id, {"type": "array", "items": job_id}], "nullable": True},
            "worker": TEXT,
            "error": TEXT,
            "stale": FLAG,
            "undecodable": FLAG,
        },
    }
    return {
        "Job": job,
        "JobDetail": {
            "allOf": [
                job,
                {
                    "type": "object",
                    "properties": {
                        "decoded": {"description": "a readable structure of a Ruby or PHP payload"},
                        "meta": {"type": "object", "additionalProperties": True},
                        "audit": _array("AuditEntry"),
                    },
                },
            ]
        },
        "JobPage": {
            "type": "object",
            "required": ["jobs", "next_cursor"],
            "properties": {
                "jobs": _array("Job"),
                "next_cursor": {
                    "type": "string",
                    "nullable": True,
                    "description": "pass as ?cursor= for the next page",
                },
            },
        },
        "Stats": {
            "type": "object",
            "properties": {
                "queues": {"type": "object", "additionalProperties": counts},
                "totals": counts,
                "processed": {"type": "integer"},
                "failed": {"type": "integer"},
                "oldest_pending_at": time,
                "paused": {"type": "array", "items": {"type": "string"}},
                "workers": {"type": "integer"},
                "throughput": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "minute": {"type": "string", "format": "date-time"},
                            "processed": {"type": "integer"},
                            "failed": {"type": "integer"},
                        },
                    },
                },
                "unreadable": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Stored structures that cannot be read (a Redis key of the wrong "
                    "type, a counter that is no number): name -> why. Present when any.",
                },
            },
        },
        "QueueInfo": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "counts": counts,
                "paused": {"type": "boolean"},
                "oldest_pending_at": time,
                "unreadable": {"type": "string", "description": "Why the queue cannot be read. Present when so."},
            },
        },
        "WorkerInfo": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "host": {"type": "string"},
                "pid": {"type": "integer"},
                "queues": {"type": "array", "items": {"type": "string"}},
                "started_at": time,
                "heartbeat_at": time,
                "current_job": {"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True},
                "job_started_at": time,
                "processed": {"type": "integer"},
                "failed": {"type": "integer"},
                "stale": {"type": "boolean"},
            },
        },
        "ErrorGroup": {
            "type": "object",
            "properties": {
                "error": {"type": "string"},
                "exception": {"type": "string"},
                "count": {"type": "integer"},
                "queues": {"type": "array", "items": {"type": "string"}},
                "classes": {"type": "array", "items": {"type": "string"}},
                "last_failed_at": time,
                "sample_id": {"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True},
            },
        },
        "AuditEntry": {
            "type": "object",
            "properties": {
                "id": {"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True},
                "at": {"type": "string", "format": "date-time"},
                "actor": {"type": "string"},
                "face": {"type": "string"},
                "verb": {"type": "string"},
                "selection": {"type": "object", "additionalProperties": {"type": "string"}},
                "matched": {"type": "integer"},
                "changed": {"type": "integer"},
                "skipped": {"type": "integer"},
            },
        },
        "BulkResult": {
            "type": "object",
            "required": ["verb", "matched", "changed", "skipped", "dry_run"],
            "properties": {
                "verb": {"type": "string"},
                "matched": {"type": "integer"},
                "changed": {"type": "integer"},
                "skipped": {"type": "integer"},
                "dry_run": {"type": "boolean"},
                "skipped_jobs": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"id": job_id, "reason": {"type": "string"}}},
                },
                "sample": _array("Job"),
            },
        },
        "Preview": {
            "type": "object",
            "properties": {
                "token": {"type": "string"},
                "expires_in": {"type": "integer"},
                "backend": {"type": "string"},
                "verb": {"type": "string"},
                "filter": {"type": "object", "additionalProperties": {"type": "string"}},
                "matched": {"type": "integer"},
                "sample": _array("Job"),
                "alive": {"type": "integer", "description": "unlock: jobs a worker that looks alive holds"},
                "warning": {"type": "string", "description": "unlock: what freeing them means"},
            },
        },
        "Force": {
            "type": "object",
            "properties": {
                "force": {
                    **FLAG,
                    "description": "unlock: free a job a worker that looks alive holds "
                    "(it may then run twice; refused with 409 otherwise)",
                },
            },
        },
        "Filter": filter_body,
        "BulkRequest": {
            "allOf": [
                filter_body,
                {
                    "type": "object",
                    "properties": {
                        "dry_run": {**FLAG, "description": "report what would change, change nothing"},
                        "force": {
                            **FLAG,
                            "description": "unlock only: free jobs a worker that looks alive "
                            "holds (they may then run twice; refused with 409 otherwise)",
                        },
                        "older_than": {
                            "oneOf": [{"type": "string", "nullable": True}, {"type": "number"}],
                            "description": "unlock only: locks older than this (30m, 2h, or seconds)",
                        },
                    },
                },
            ]
        },
        "PreviewRequest": {
            "allOf": [
                filter_body,
                {
                    "type": "object",
                    "required": ["verb"],
                    "properties": {"verb": {"type": "string", "enum": ["retry", "delete", "dequeue", "unlock"]}},
                },
            ]
        },
        "QueueAction": {
            "type": "object",
            "properties": {
                "queue": {"type": "string"},
                "paused": {"type": "boolean"},
                "changed": {"type": "boolean"},
            },
        },
        "Backends": {
            "type": "object",
            "properties": {
                "backends": {"type": "array", "items": {"type": "string"}},
                "default": {"type": "string"},
                "current": {"type": "string"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "message": {"type": "string"},
                        "status": {"type": "integer"},
                    },
                }
            },
        },
    }


def spec() -> dict[str, Any]:
    job_param = _path("job_id", "a job id as listings print it")
    token_param = _path("token", "the token POST /api/previews answered")
    queue_param = _path("queue", "queue name")
    paths: dict[str, Any] = {
        "/api/stats": _get(
            "Jobs per queue and state, counters, throughput (qadmin stats --json)", _json(_ref("Stats"))
        ),
        "/api/queues": _get("Queues with counts and pause state", _json(_array("QueueInfo"))),
        "/api/workers": _get("Workers and lock holders", _json(_array("WorkerInfo"))),
        "/api/errors": _get(
            "Failed jobs grouped by error",
            _json(_array("ErrorGroup")),
            [_query("queue", "queue"), _query("class", "job class"), LIMIT],
            NOT_FOUND,
        ),
        "/api/audit": _get(
            "Who did what, newest first",
            _json(_array("AuditEntry")),
            [LIMIT, _query("job", "only entries that touched this job")],
            NOT_FOUND,  # a job id no job can have (-1 in SQL)
        ),
        "/api/jobs": _get(
            "One keyset page of jobs",
            _json(_ref("JobPage")),
            [
                *FILTER_PARAMS,
                LIMIT,
                _query("cursor", "next_cursor of the previous page"),
                _query("sort", "id, -id, priority, run_at, -failed_at"),
            ],
            NOT_FOUND,  # ?id= that no job can have
        ),
        "/api/jobs/{job_id}": _get(
            "One job with raw payload and audit history (qadmin show --json)",
            _json(_ref("JobDetail")),
            [job_param],
            NOT_FOUND,
        ),
        "/api/jobs/{job_id}/retry": _post(
            "Retry one failed job; answers the job",
            _json(_ref("Job")),
            params=[job_param],
            extra={**NOT_FOUND, **CONFLICT},
        ),
        "/api/backends": _get("The named backends of the switcher", _json(_ref("Backends"))),
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"})},
            }
        },
        "/api/previews": _post(
            "Freeze the jobs a bulk verb would act on",
            _json(_ref("Preview"), "Created"),
            body="PreviewRequest",
            status="201",
            extra=NOT_FOUND,
        ),
        "/api/previews/{token}": _get("A stored preview", _json(_ref("Preview")), [token_param]),
        "/api/previews/{token}/apply": _post(
            "Act on exactly the previewed jobs (once)", _json(_ref("BulkResult")), params=[token_param]
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
    for verb in ("delete", "unlock"):
        paths[f"/api/jobs/{{job_id}}/{verb}"] = _post(
            f"{verb.capitalize()} one job",
            _json(_ref("BulkResult")),
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
            _json(_ref("BulkResult")),
            body="BulkRequest",
            extra={**NOT_FOUND, **CONFLICT} if verb == "unlock" else NOT_FOUND,
        )
    for verb in ("pause", "resume"):
        # a queue name no path can carry (a line break, a leading slash) is another URL: 404
        paths[f"/api/queues/{{queue}}/{verb}"] = _post(
            f"{verb.capitalize()} a queue", _json(_ref("QueueAction")), params=[queue_param], extra=NOT_FOUND
        )
    error = {"content": {"application/json": {"schema": _ref("Error")}}}
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
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the web password, or the token printed at start-up",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "qadmin_session",
                    "description": "the dashboard's login; POSTs also need X-CSRFToken",
                },
            },
            "responses": {
                "BadRequest": {
                    "description": "bad input, an unknown filter value, or a missing CSRF token",
                    **error,
                },
                "Unauthorized": {"description": "not logged in and no valid bearer token", **error},
                "Forbidden": {"description": "the dashboard is read-only", **error},
                "NotFound": {"description": "no such job (or preview)", **error},
                "Conflict": {"description": "the job is not in a state that allows this", **error},
                "Unavailable": {"description": "the backend cannot be reached", **error},
            },
        },
    }
