"""The components of the OpenAPI description (qadmin.web.openapi): the schemas of what /api
answers and takes, the shared error responses, and the two ways to authenticate."""

from __future__ import annotations

from typing import Any

from qadmin.web.actions import NO, YES
from qadmin.web.openapi_errors import error_group_schema

#: a yes/no field: a JSON boolean, or one of the words a form sends (qadmin.web.actions.flag)
FLAG: dict[str, Any] = {"oneOf": [{"type": "boolean", "nullable": True}, {"type": "string", "enum": [*YES, *NO]}]}
#: a text field of a request body, which may be null (not given)
TEXT: dict[str, Any] = {"type": "string", "nullable": True}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def array(name: str) -> dict[str, Any]:
    return {"type": "array", "items": ref(name)}


def components() -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": ref("Error")}}}
    return {
        "schemas": schemas(),
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "a user's API token; without [users], the web password or the start-up token",
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
            "Forbidden": {"description": "the dashboard is read-only, or the user's role may not act", **error},
            "NotFound": {"description": "no such job (or preview)", **error},
            "Conflict": {"description": "the job is not in a state that allows this", **error},
            "Unavailable": {"description": "the backend cannot be reached", **error},
        },
    }


def schemas() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time", "nullable": True}
    job_id = {"oneOf": [{"type": "integer"}, {"type": "string"}]}
    states = ["pending", "scheduled", "locked", "failed", "finished", "cancelled", "waiting"]
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
            "cancelled_by": {"type": "string", "nullable": True, "description": "who cancelled a cancelled job"},
            "stale": {"type": "boolean"},
            "format": {"type": "string"},
            "undecodable": {"type": "string", "description": "why the payload could not be decoded"},
            "raw": {"type": "string"},
            "timeout": {"type": "number", "description": "the job's own time limit in seconds, given at enqueue"},
            "result": {"description": "a finished job's return value (JSON, at most 64 KiB), when it returned one"},
            "result_note": {"type": "string", "description": "why a finished job's return value was not kept"},
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
            "fingerprint": TEXT,
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
                        "audit": array("AuditEntry"),
                        "runs": array("Attempt"),
                    },
                },
            ]
        },
        "Attempt": attempt_schema(time),
        "JobPage": {
            "type": "object",
            "required": ["jobs", "next_cursor"],
            "properties": {
                "jobs": array("Job"),
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
                "rescued": {
                    "type": "integer",
                    "description": "Jobs of dead qadmin workers given back by live workers, ever.",
                },
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
        "ErrorGroup": error_group_schema(time),
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
                "sample": array("Job"),
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
                "sample": array("Job"),
                "alive": {"type": "integer", "description": "unlock: jobs a worker that looks alive holds"},
                "warning": {"type": "string", "description": "unlock: what freeing them means"},
            },
        },
        "NewJob": {
            "type": "object",
            "required": ["class"],
            "properties": {
                "class": {"type": "string", "description": "the job's class or function name"},
                "args": {
                    "oneOf": [{"type": "array", "items": {}}, {"type": "string"}],
                    "description": "positional arguments: an array, or its JSON text",
                },
                "kwargs": {
                    "oneOf": [{"type": "object", "additionalProperties": True}, {"type": "string"}],
                    "description": "keyword arguments: an object, or its JSON text",
                },
                "queue": {"type": "string", "description": "queue name (default: default)"},
                "priority": {
                    "type": "integer",
                    "minimum": -(2**31),
                    "maximum": 2**31 - 1,
                    "description": "lower runs first (SQL only: Redis refuses it with 400)",
                },
                "run_at": {"type": "string", "description": "ISO 8601 time (UTC unless it has an offset)"},
                "in": {
                    "oneOf": [{"type": "string"}, {"type": "number"}],
                    "description": "a delay instead of run_at: 30s, 15m, 2h, or seconds",
                },
                "timeout": {
                    "oneOf": [{"type": "string"}, {"type": "number"}],
                    "description": "this job's time limit instead of the worker's max run time: 30s, 15m, 2h, "
                    "or seconds (more than 0)",
                },
            },
        },
        "EditRequest": {
            "type": "object",
            "description": "the fields to change; a missing or empty one keeps its value",
            "properties": {
                "args": {
                    "oneOf": [{"type": "array", "items": {}}, {"type": "string"}],
                    "description": "new positional arguments: an array, or its JSON text",
                },
                "kwargs": {
                    "oneOf": [{"type": "object", "additionalProperties": True}, {"type": "string"}],
                    "description": "new keyword arguments: an object, or its JSON text (Redis: only in a "
                    "payload that has them)",
                },
                "queue": {"type": "string", "description": "move the job to this queue"},
                "priority": {
                    "oneOf": [{"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}, {"type": "string"}],
                    "description": "lower runs first (SQL only: Redis refuses it with 400)",
                },
                "run_at": {"type": "string", "description": "ISO 8601 time (UTC unless it has an offset)"},
                "dry_run": {**FLAG, "description": "answer what would change, change nothing"},
            },
        },
        "EditResult": {
            "type": "object",
            "required": ["verb", "dry_run", "id", "new_id", "changed", "before", "after"],
            "properties": {
                "verb": {"type": "string", "enum": ["edit"]},
                "dry_run": {"type": "boolean"},
                "id": {"type": "string"},
                "new_id": {"type": "string", "description": "the job's id after the edit (Redis ids follow the bytes)"},
                "changed": {"type": "boolean"},
                "before": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "old values of the changed fields",
                },
                "after": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "new values of the changed fields",
                },
            },
        },
        "CompleteRequest": {
            "type": "object",
            "properties": {
                "result": {"description": "what the job returned: any JSON value (form field: its JSON text)"},
                "dry_run": {**FLAG, "description": "check the job is waiting, change nothing"},
            },
        },
        "FailRequest": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "minLength": 1, "description": "what went wrong (the job's last error)"},
                "dry_run": {**FLAG, "description": "check the job is waiting, change nothing"},
            },
        },
        "WaitingReport": {
            "type": "object",
            "required": ["verb", "id", "dry_run", "changed"],
            "properties": {
                "verb": {"type": "string", "enum": ["complete", "fail"]},
                "id": {"type": "string"},
                "dry_run": {"type": "boolean"},
                "changed": {"type": "boolean"},
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
                    "properties": {
                        "verb": {
                            "type": "string",
                            "enum": ["retry", "delete", "dequeue", "unlock", "run_now", "kill", "cancel"],
                        }
                    },
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
        "PruneRequest": {
            "type": "object",
            "properties": {
                "dry_run": {**FLAG, "description": "count what would be pruned, change nothing"},
                "older_than": {
                    "oneOf": [{"type": "string", "nullable": True}, {"type": "number"}],
                    "description": "failed jobs and finished records older than this (30d, 12h, or seconds) "
                    "instead of their retention",
                },
            },
        },
        "PruneReport": {
            "type": "object",
            "required": ["verb", "dry_run", "failed", "finished", "workers"],
            "properties": {
                "verb": {"type": "string", "enum": ["prune"]},
                "dry_run": {"type": "boolean"},
                "failed_before": time,
                "finished_before": time,
                "workers_before": time,
                "failed": {"type": "integer"},
                "finished": {"type": "integer"},
                "workers": {"type": "integer"},
                "cancels": {
                    "type": "integer",
                    "description": "cancel requests of running jobs that ended before their worker saw them, "
                    "settled (each audited as cancel_missed)",
                },
                "failed_ids": {"type": "array", "items": {"type": "string"}},
                "worker_names": {"type": "array", "items": {"type": "string"}},
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


def attempt_schema(time: dict[str, Any]) -> dict[str, Any]:
    """One run of a job (`qadmin.model.Attempt.to_dict`), oldest first in a job's `attempts`."""
    text = {"type": "string", "nullable": True}
    outcomes = ["completed", "retried", "failed", "timed out", "cancelled", "rescued", "waiting", "running"]
    return {
        "type": "object",
        "required": ["number", "outcome", "started_at", "finished_at", "runtime", "worker", "source"],
        "properties": {
            "number": {"type": "integer", "nullable": True, "description": "1 for the job's first run"},
            "outcome": {"type": "string", "enum": outcomes},
            "started_at": time,
            "finished_at": time,
            "runtime": {"type": "number", "nullable": True, "description": "seconds it ran"},
            "worker": text,
            "error": text,
            "backtrace": text,
            "source": {
                "type": "string",
                "enum": ["recorded", "columns"],
                "description": "recorded by a qadmin worker, or read from a foreign row's own columns "
                "(delayed_job, DJJob, Resque keep no history of runs)",
            },
        },
    }
