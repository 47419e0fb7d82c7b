"""A new job from a request: the dashboard's form fields (text) or the API's JSON body (typed
values, or the same text), read through `qadmin.job_input` and enqueued with `Ops.enqueue`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from qadmin.errors import UsageError
from qadmin.job import Job
from qadmin.job_input import parse_args, parse_delay, parse_kwargs, parse_priority, parse_run_at, parse_timeout
from qadmin.ops import Ops


def enqueue_from(ops: Ops, body: Mapping[str, Any]) -> Job:
    """Enqueue what `body` asks for; UsageError, with nothing stored, on any bad field."""
    class_name = text_of(body, "class")
    if not class_name.strip():
        raise UsageError("class is required: name the job's class or function")
    run_at_text = text_of(body, "run_at").strip()
    delay = body.get("in")
    if isinstance(delay, str):
        delay = delay.strip()
    if run_at_text and delay not in (None, ""):
        raise UsageError("give run_at or in, not both")
    return ops.enqueue(
        class_name.strip(),
        parse_args(json_text(body, "args")),
        parse_kwargs(json_text(body, "kwargs").strip() or "{}"),
        queue=text_of(body, "queue").strip() or None,
        priority=priority_of(body.get("priority")),
        run_at=parse_run_at(run_at_text) if run_at_text else None,
        delay=None if delay in (None, "") else parse_delay(_duration(delay)),
        timeout=_timeout(body.get("timeout")),
    )


def text_of(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UsageError(f"{key} must be text, not {type(value).__name__}")
    return value


def json_text(body: Mapping[str, Any], key: str) -> str:
    """A JSON body's array or object as text, so that it is read as strictly as a form's text
    (a NaN that Python's JSON reader lets through is no value a Resque client could read back)."""
    value = body.get(key)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return text_of(body, key)


def _duration(value: Any) -> str | float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError("in must be a delay such as 30s, 15m or 2h, or seconds")
    return value


def _timeout(value: Any) -> float | None:
    if isinstance(value, str):
        value = value.strip()
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError("timeout must be a duration such as 30s, 15m or 2h, or seconds")
    return parse_timeout(value)


def priority_of(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UsageError("priority must be a whole number")
    return parse_priority(value)
