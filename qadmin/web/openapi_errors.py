"""The OpenAPI schema of an error group (`/api/errors`): failed jobs grouped by error fingerprint
(`qadmin.fingerprints`), with the exact first lines as its variants."""

from __future__ import annotations

from typing import Any


def error_group_schema(time: dict[str, Any]) -> dict[str, Any]:
    job_id = {"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True}
    return {
        "type": "object",
        "properties": {
            "error": {
                "type": "string",
                "description": "the sample message: the group's most frequent exact first line",
            },
            "exception": {"type": "string", "description": "the exception class (empty when the error names none)"},
            "count": {"type": "integer"},
            "queues": {"type": "array", "items": {"type": "string"}},
            "classes": {"type": "array", "items": {"type": "string"}},
            "last_failed_at": time,
            "sample_id": {**job_id, "description": "a job of the sample message"},
            "fingerprint": {
                "type": "string",
                "pattern": "^[0-9a-f]{12}$",
                "description": "the group's id: the `fingerprint` filter of /api/jobs and the bulk verbs",
            },
            "pattern": {"type": "string", "description": "exception class and normalised message"},
            "first_failed_at": time,
            "variants": {
                "type": "array",
                "description": "the exact first lines, most frequent first (capped)",
                "items": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "count": {"type": "integer"}},
                },
            },
            "variants_left_out": {"type": "integer", "description": "variants past the cap"},
        },
    }
