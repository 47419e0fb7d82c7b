"""One job edited from a request: the dashboard's form fields (text; an empty field keeps the
value) or the API's JSON body (typed values, or the same text; a missing member keeps it), read
through `qadmin.job_input` and applied with `Ops.edit`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qadmin.errors import UsageError
from qadmin.job_input import parse_args, parse_kwargs, parse_run_at
from qadmin.ops import EditResult, Ops
from qadmin.web.actions import flag
from qadmin.web.new_job import json_text, priority_of, text_of


def edit_from(ops: Ops, job_id: str, body: Mapping[str, Any], *, dry_run: bool | None = None) -> EditResult:
    """Edit what `body` asks for; UsageError, with nothing changed, on any bad field."""
    args_text = json_text(body, "args").strip()
    kwargs_text = json_text(body, "kwargs").strip()
    queue = text_of(body, "queue").strip()
    run_at = text_of(body, "run_at").strip()
    if dry_run is None:
        dry_run = bool(flag(body.get("dry_run"), "dry_run"))
    if not any((args_text, kwargs_text, queue, run_at)) and body.get("priority") in (None, ""):
        raise UsageError("nothing to edit: give new args, kwargs, queue, priority or run_at")
    # "[redacted]" from the redacted view stands for the value it hides (ops/redaction.py)
    args, kwargs = ops.redaction.restored_by_id(
        job_id, parse_args(args_text) if args_text else None, parse_kwargs(kwargs_text) if kwargs_text else None
    )
    return ops.edit(
        job_id,
        args=args,
        kwargs=kwargs,
        queue=queue or None,
        priority=priority_of(body.get("priority")),
        run_at=parse_run_at(run_at) if run_at else None,
        dry_run=dry_run,
    )
