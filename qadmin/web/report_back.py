"""The JSON API's `POST /api/jobs/<id>/complete` and `/fail`: the external service's verdict on a
waiting job (`qadmin.Waiting`), read from a JSON object or form fields."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from qadmin.errors import UsageError
from qadmin.ops import Ops
from qadmin.web.actions import flag


def report_back_from(ops: Ops, verb: str, job_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    dry_run = flag(body.get("dry_run"), "dry_run")
    if verb == "complete":
        result = body.get("result")
        if isinstance(result, str) and not isinstance(body, dict):  # a form field holds JSON text
            try:
                result = json.loads(result)
            except ValueError as exc:
                raise UsageError(f"result is not JSON: {exc}") from None
        job = ops.complete_waiting(job_id, result, dry_run=dry_run)
    else:
        error = body.get("error")
        if not isinstance(error, str) or not error.strip():
            raise UsageError("error: the text of what went wrong is required")
        job = ops.fail_waiting(job_id, error, dry_run=dry_run)
    return {"verb": verb, "id": str(job.id), "dry_run": dry_run, "changed": not dry_run}
