"""The "Edit" form of a job's page: new args, kwargs, queue, priority or run time for a pending,
scheduled or failed job (`Ops.edit`: guarded, audited with the old and new values)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from qadmin.errors import InvalidTransition, UsageError
from qadmin.job import Job, iso
from qadmin.text import visible
from qadmin.web.actions import mutating
from qadmin.web.job_edit import edit_from
from qadmin.web.pages.blueprint import bp
from qadmin.web.pages.readings import queue_names
from qadmin.web.state import get_ops


def _current(job: Job) -> dict[str, str]:
    """The job's values as the form's fields show them."""
    return {
        "args": json.dumps(job.args, ensure_ascii=False),
        "kwargs": json.dumps(job.kwargs, ensure_ascii=False),
        "queue": job.queue or "",
        "priority": str(job.priority),
        "run_at": iso(job.run_at) or "",
    }


def _form(job: Job, values: Mapping[str, Any], problem: str | None = None) -> str:
    return render_template(
        "qadmin/edit.html",
        job=job,
        values=values,
        problem=problem,
        queue_names=[q for q in queue_names() if q],
        supports_priority=get_ops().supports_priority,
        arguments_fixed=job.format in ("delayed_job", "djjob"),
    )


@bp.get("/edit/<path:job_id>")
def edit_form(job_id: str) -> str:
    ops = get_ops()
    job = ops.redaction.job(ops.show(job_id))  # "[redacted]" left in place keeps its value (job_edit.py)
    return _form(job, _current(job))


@bp.post("/edit/<path:job_id>")
@mutating
def edit_job(job_id: str) -> ResponseReturnValue:
    ops = get_ops()
    job = ops.redaction.job(ops.show(job_id))  # the form showed this view: compare with it
    current = _current(job)
    # only the fields the operator changed: an unchanged field is no edit (and a foreign row's
    # arguments, shown but fixed, are never sent back as one)
    changed = {k: v for k, v in request.form.items() if k in current and v.strip() != current[k]}
    try:
        result = edit_from(ops, job_id, changed, dry_run=False)
    except (UsageError, InvalidTransition) as exc:
        return _form(job, request.form, str(exc)), 400
    fields = ", ".join(result.changed_fields) or "nothing"
    flash(f"edited job {visible(str(result.before.id))}: {fields}", "success")
    return redirect(url_for("pages.job", job_id=result.after.id), code=303)
