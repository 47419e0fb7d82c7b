"""The OpenAPI description of /api/alerts (qadmin.web.api_alerts), added to the document by
qadmin.web.openapi."""

from __future__ import annotations

from typing import Any

from qadmin.web.openapi_components import array, ref


def paths(backend: dict[str, Any]) -> dict[str, Any]:
    return {
        "/api/alerts": {
            "get": {
                "summary": "The alert rules of qadmin.toml evaluated now, and the open incidents (qadmin alerts --json)",
                "parameters": [backend],
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": ref("Alerts")}}},
                    "400": {"$ref": "#/components/responses/BadRequest"},
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "503": {"$ref": "#/components/responses/Unavailable"},
                },
            }
        }
    }


def schemas() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time", "nullable": True}
    seconds = {"type": "number", "description": "seconds"}
    incident = {
        "type": "object",
        "required": ["rule", "opened_at", "details", "resolved_at"],
        "properties": {
            "rule": {"type": "string"},
            "opened_at": {**time, "nullable": False},
            "details": {"type": "string", "description": "what the rule measured when it started firing"},
            "resolved_at": time,
            "firing_sent_at": {**time, "description": "when the webhook took the firing message"},
            "resolved_sent_at": time,
        },
    }
    rule = {
        "type": "object",
        "required": ["name", "kind", "state", "details", "rule"],
        "properties": {
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": ["failure_rate", "latency", "no_worker"]},
            "state": {"type": "string", "enum": ["firing", "ok", "error"]},
            "rule": {"type": "string", "description": "the rule in words"},
            "details": {"type": "string", "description": "what it measured now"},
            "value": {"type": "number", "nullable": True},
            "queue": {"type": "string", "nullable": True},
            "class": {"type": "string", "nullable": True},
            "window": seconds,
            "threshold": {"type": "number"},
            "min_runs": {"type": "integer"},
            "above": seconds,
            "for": seconds,
            "webhook": {
                "type": "string",
                "nullable": True,
                "description": "scheme and host only: the path is a secret",
            },
            "incident": {"allOf": [ref("AlertIncident")], "nullable": True},
        },
    }
    return {
        "AlertIncident": incident,
        "AlertRuleState": rule,
        "Alerts": {
            "type": "object",
            "required": ["rules", "incidents"],
            "properties": {"rules": array("AlertRuleState"), "incidents": array("AlertIncident")},
        },
    }
