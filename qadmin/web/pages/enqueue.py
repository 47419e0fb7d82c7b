"""The "New job" form: an operator enqueues one job from the dashboard (audited by `Ops.enqueue`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from qadmin.errors import UsageError
from qadmin.text import visible
from qadmin.web.actions import mutating
from qadmin.web.new_job import enqueue_from
from qadmin.web.pages.blueprint import bp
from qadmin.web.pages.readings import class_names, queue_names
from qadmin.web.state import get_ops


def _form(values: Mapping[str, Any], problem: str | None = None) -> str:
    return render_template(
        "qadmin/enqueue.html",
        values=values,
        problem=problem,
        queue_names=[q for q in queue_names() if q],
        class_names=class_names(),
        supports_priority=get_ops().supports_priority,
    )


@bp.get("/enqueue")
def enqueue_form() -> str:
    return _form(request.args)


@bp.post("/enqueue")
@mutating
def enqueue_job() -> ResponseReturnValue:
    try:
        job = enqueue_from(get_ops(), request.form)
    except UsageError as exc:
        return _form(request.form, str(exc)), 400
    flash(
        f"enqueued job {visible(str(job.id))} ({visible(job.class_name)} on {visible(job.queue)}, {job.state.value})",
        "success",
    )
    return redirect(url_for("pages.job", job_id=job.id), code=303)
