"""The OpenAPI description of /api/history, /api/history/queues and /api/metrics
(qadmin.web.api_insight): their paths and schemas, which qadmin.web.openapi adds to the document."""

from __future__ import annotations

from typing import Any

from qadmin.insight import METRIC_SORTS, RANGES
from qadmin.web.openapi_components import array, ref

_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_RANGE = {"type": "string", "enum": list(RANGES), "default": "24h"}
_NAME = {"type": "string"}


def _get(summary: str, schema: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}, **_ERRORS},
        }
    }


def paths(backend: dict[str, Any]) -> dict[str, Any]:
    """The path items, each taking `backend` (the query parameter every operation has)."""
    span = _query("range", "how far back: one point per minute (1h, 24h) or per hour (7d, 30d)", _RANGE)
    sorts = [*METRIC_SORTS, *(f"-{s}" for s in METRIC_SORTS)]
    return {
        "/api/history": _get(
            "Runs, runtimes and latency over a range, one point per bucket (empty buckets included)",
            ref("HistorySeries"),
            [
                backend,
                span,
                _query("queue", "only this queue (exact name)", _NAME),
                _query("class", "only this job class (exact name)", _NAME),
            ],
        ),
        "/api/history/queues": _get(
            "The history of each queue with anything recorded in the range (queue latency per queue)",
            ref("HistoryByQueue"),
            [backend, span],
        ),
        "/api/metrics": _get(
            "Each job class over a window: runs, failures, runtime percentiles and the trend against the window before",
            ref("ClassMetricsList"),
            [
                backend,
                _query(
                    "window",
                    "the window: 1h, 24h, 7d, 30d or a duration (90m, 3d, at least a minute)",
                    {"type": "string", "default": "24h"},
                ),
                _query(
                    "sort",
                    "the column to sort by; a leading - sorts descending",
                    {
                        "type": "string",
                        "enum": sorts,
                        "default": "-runs",
                    },
                ),
                _query("queue", "only runs on this queue (exact name)", _NAME),
            ],
        ),
    }


def schemas() -> dict[str, Any]:
    seconds = {"type": "number", "nullable": True, "description": "seconds; null when nothing was recorded"}
    count = {"type": "integer", "minimum": 0}
    return {
        "HistoryPoint": {
            "type": "object",
            "required": ["at", "processed", "failed", "retried", "runtime_total", "p50", "p95", "latency"],
            "properties": {
                "at": {"type": "string", "format": "date-time", "description": "the bucket's start"},
                "processed": count,
                "failed": count,
                "retried": count,
                "runtime_total": {"type": "number", "description": "seconds, all runs of the bucket"},
                "p50": seconds,
                "p95": seconds,
                "latency": {**seconds, "description": "the longest wait of a ready job in the bucket, seconds"},
            },
        },
        "HistorySeries": {
            "type": "object",
            "required": ["range", "resolution", "since", "until", "queue", "class", "points"],
            "properties": {
                "range": {"type": "string", "enum": list(RANGES)},
                "resolution": {"type": "string", "enum": ["minute", "hour"]},
                "since": {"type": "string", "format": "date-time"},
                "until": {"type": "string", "format": "date-time"},
                "queue": {"type": "string", "nullable": True},
                "class": {"type": "string", "nullable": True},
                "points": array("HistoryPoint"),
            },
        },
        "HistoryByQueue": {
            "type": "object",
            "required": ["range", "queues"],
            "properties": {
                "range": {"type": "string", "enum": list(RANGES)},
                "queues": {"type": "object", "additionalProperties": ref("HistorySeries")},
            },
        },
        "ClassMetricsList": {
            "type": "object",
            "required": ["window", "sort", "queue", "classes"],
            "properties": {
                "window": {"type": "string"},
                "sort": {"type": "string"},
                "queue": {"type": "string", "nullable": True},
                "classes": array("ClassMetrics"),
            },
        },
        "ClassMetrics": {
            "type": "object",
            "required": ["class", "runs", "processed", "failed", "retried", "failure_rate", "p50", "p95", "p99"],
            "properties": {
                "class": {"type": "string"},
                "runs": count,
                "processed": count,
                "failed": count,
                "retried": count,
                "failure_rate": {"type": "number", "minimum": 0, "description": "(failed + retried) / runs"},
                "p50": seconds,
                "p95": seconds,
                "p99": seconds,
                "mean": seconds,
                "failure_rate_change": {
                    "type": "number",
                    "nullable": True,
                    "description": "the failure rate minus that of the window before",
                },
                "runs_change": {
                    "type": "number",
                    "nullable": True,
                    "description": "runs / the runs of the window before; null when it had none",
                },
                "queues": {"type": "array", "items": {"type": "string"}},
            },
        },
    }
