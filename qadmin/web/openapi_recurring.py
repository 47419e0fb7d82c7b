"""The OpenAPI description of /api/recurring (qadmin.web.api_recurring): its paths and schemas,
which qadmin.web.openapi adds to the document."""

from __future__ import annotations

from typing import Any

from qadmin.web.openapi_components import FLAG, array, ref

_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    # no such schedule (or a name no schedule can have)
    "404": {"$ref": "#/components/responses/NotFound"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "a schedule's name as `qadmin recurring` lists it",
    "schema": {"type": "string"},
}
_DRY_RUN = {
    "name": "dry_run",
    "in": "query",
    "required": False,
    "description": "say what would change, change nothing",
    "schema": FLAG,
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def paths(backend: dict[str, Any]) -> dict[str, Any]:
    """The path items, each taking `backend` (the query parameter every operation has)."""

    def get(summary: str, schema: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "parameters": [backend, *params],
                "responses": {"200": _json(schema), **_ERRORS},
            }
        }

    def post(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
        body = {"schema": ref("DryRunRequest")}
        return {
            "post": {
                "summary": summary,
                "parameters": [backend, _NAME, _DRY_RUN],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": body, "application/x-www-form-urlencoded": body},
                },
                "responses": {
                    "200": _json(schema),
                    **_ERRORS,
                    "403": {"$ref": "#/components/responses/Forbidden"},
                },
            }
        }

    return {
        "/api/recurring": {
            "get": {
                "summary": "The recurring schedules with their next and last run (qadmin recurring --json)",
                "parameters": [backend],
                "responses": {"200": _json(array("RecurringEntry")), **_ERRORS},
            }
        },
        "/api/recurring/{name}": get("One recurring schedule", ref("RecurringEntry"), [_NAME]),
        "/api/recurring/{name}/enable": post(
            "Enable a schedule (audited); answers it as it is after", ref("RecurringChange")
        ),
        "/api/recurring/{name}/disable": post(
            "Disable a schedule: its ticks enqueue nothing (audited); answers it as it is after",
            ref("RecurringChange"),
        ),
        "/api/recurring/{name}/run-now": post(
            "Enqueue the schedule's job now, enabled or not; its ticks go on (audited)", ref("RecurringRunNow")
        ),
    }


def schemas() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time", "nullable": True}
    nullable_text = {"type": "string", "nullable": True}
    return {
        "RecurringEntry": {
            "type": "object",
            "required": ["name", "class", "enabled", "source", "timing", "next_run_at", "last_run_at"],
            "properties": {
                "name": {"type": "string"},
                "class": {"type": "string"},
                "args": {"type": "array", "items": {}},
                "kwargs": {"type": "object", "additionalProperties": True},
                "queue": {**nullable_text, "description": "null: the class's own queue"},
                "priority": {"type": "integer", "nullable": True},
                "cron": {**nullable_text, "description": "a cron expression (or null: `every`)"},
                "every": {"type": "number", "nullable": True, "description": "seconds between ticks"},
                "timezone": {"type": "string", "description": "the cron expression's time zone"},
                "description": {"type": "string"},
                "enabled": {"type": "boolean"},
                "source": {"type": "string", "description": "qadmin.toml, api or resque-scheduler"},
                "timing": {"type": "string", "description": "the cron expression (and zone) or `every 30s`"},
                "next_run_at": {**time, "description": "null while disabled"},
                "last_run_at": time,
                "last_job_id": {
                    "oneOf": [{"type": "integer"}, {"type": "string"}],
                    "nullable": True,
                    "description": "the last job it enqueued, where the backend keeps it",
                },
            },
        },
        "RecurringChange": {
            "type": "object",
            "required": ["dry_run", "verb", "schedule"],
            "properties": {
                "dry_run": {"type": "boolean"},
                "verb": {"type": "string", "enum": ["enable", "disable"]},
                "schedule": ref("RecurringEntry"),
            },
        },
        "RecurringRunNow": {
            "type": "object",
            "required": ["dry_run", "schedule", "job", "would_enqueue"],
            "properties": {
                "schedule": ref("RecurringEntry"),
                "dry_run": {"type": "boolean"},
                "would_enqueue": {
                    "type": "object",
                    "description": "the job it enqueued (or would, in a dry run)",
                    "properties": {
                        "class": {"type": "string"},
                        "args": {"type": "array", "items": {}},
                        "kwargs": {"type": "object", "additionalProperties": True},
                        "queue": {"type": "string"},
                        "priority": {"type": "integer"},
                    },
                },
                "job": {"allOf": [ref("Job")], "nullable": True, "description": "null in a dry run"},
            },
        },
        "DryRunRequest": {
            "type": "object",
            "properties": {"dry_run": {**FLAG, "description": "say what would change, change nothing"}},
        },
    }
