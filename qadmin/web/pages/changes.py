"""Every change the pages make, in the same steps: a form asks, the matching jobs (or the queue's
state) are frozen in a preview, a confirmation page shows it, and only then is it applied."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from qadmin.errors import InvalidTransition, UsageError
from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.ops import VERBS
from qadmin.web.actions import mutating, parse_filter, past, preview, summary
from qadmin.web.auth import safe_next
from qadmin.web.pages.blueprint import bp
from qadmin.web.pages.readings import class_names, queue_names
from qadmin.web.state import QueueChange, StoredPreview, backend_name, get_ops, web_state

#: what a job page's buttons may ask
ONE_JOB_VERBS = ("retry", "unlock", "delete", "run_now", "kill", "cancel")


@bp.post("/job-action")
@mutating
def job_action() -> ResponseReturnValue:
    """One job's button: the same preview and confirmation as a bulk action (an unlock of a job
    whose worker is alive, a retry or a delete all deserve a second look)."""
    verb = request.form.get("verb", "")
    job_id = request.form.get("id", "")
    if not job_id:
        raise UsageError("which job? the form sent no id")
    if verb not in ONE_JOB_VERBS:
        raise UsageError(f"unknown action {verb!r} for one job; expected one of: {', '.join(ONE_JOB_VERBS)}")
    ops = get_ops()
    found = ops.show(job_id)
    if found.state not in VERBS[verb]:
        raise InvalidTransition(found.id, found.state.value, verb)
    if verb == "kill" and found.attempts < 1:
        raise InvalidTransition(found.id, "scheduled and never ran (kill acts on jobs waiting for a retry)", verb)
    # after a delete the job page is gone: back to the list
    back = url_for("pages.jobs") if verb == "delete" else url_for("pages.job", job_id=found.id)
    return _store_preview(verb, JobFilter(ids=(found.id,)), back=back)


# --- bulk actions: preview -> confirm -> apply ---------------------------------------------------
@bp.post("/actions/preview")
@mutating
def action_preview() -> ResponseReturnValue:
    """A form names the action as `action=VERB:SCOPE` (or `verb` and `scope` fields): SCOPE
    `selected` acts on the ticked `id` checkboxes, `filter` on everything the `f.`-prefixed
    filter fields match (prefixed, so a checkbox can never widen or narrow the filter)."""
    form = request.form
    verb, _, scope = (form.get("action") or f"{form.get('verb', '')}:{form.get('scope', 'filter')}").partition(":")
    ops = get_ops()
    if scope == "selected":
        ids = [i for i in form.getlist("id") if i]
        if not ids:
            raise UsageError(f"select the jobs to {verb} first")
        selection = parse_filter(ops, MultiDict([("id", i) for i in ids]))
    elif scope == "filter":
        selection = parse_filter(ops, MultiDict([(k[2:], v) for k, v in form.items(multi=True) if k.startswith("f.")]))
    else:
        raise UsageError(f"unknown scope {scope!r}: expected selected or filter")
    return _store_preview(verb, selection, back=form.get("back"))


def _store_preview(verb: str, selection: JobFilter, back: str | None) -> ResponseReturnValue:
    ops = get_ops()
    frozen = preview(ops, verb, selection)
    token = web_state().previews.put(frozen, backend_name(), safe_next(back))
    return redirect(url_for("pages.confirm", token=token), code=303)


@bp.get("/actions/<token>")
def confirm(token: str) -> str:
    stored = web_state().previews.get(token)
    ops = get_ops(stored.backend)
    if isinstance(stored.preview, QueueChange):
        return render_template(
            "qadmin/confirm_queue.html",
            token=token,
            stored=stored,
            change=stored.preview,
            ttl=int(web_state().previews.ttl),
        )
    return render_template(
        "qadmin/confirm.html",
        token=token,
        stored=stored,
        preview=stored.preview,
        describe=stored.preview.selection.describe(),
        now=ops.clock(),
        ttl=int(web_state().previews.ttl),
        alive=ops.alive_holders(stored.preview),
    )


@bp.post("/actions/<token>/apply")
@mutating
def apply(token: str) -> ResponseReturnValue:
    stored = web_state().previews.take(token)
    if isinstance(stored.preview, QueueChange):
        return _apply_queue_change(stored, stored.preview)
    result = get_ops(stored.backend).apply(stored.preview)
    flash(summary(result), "success" if not result.skipped else "warning")
    for job_id, reason in result.skipped[:5]:
        flash(f"skipped {job_id}: {reason}", "warning")
    return redirect(stored.back, code=303)


@bp.post("/actions/<token>/cancel")
def cancel(token: str) -> ResponseReturnValue:
    store = web_state().previews
    try:
        back = store.get(token).back
    except UsageError:
        back = url_for("pages.overview")
    store.discard(token)
    flash("Cancelled: nothing changed.", "info")
    return redirect(back, code=303)


# --- queues ------------------------------------------------------------------------------------
@bp.post("/queues/<path:queue>/<any(pause, resume):verb>")
@mutating
def queue_action(queue: str, verb: str) -> ResponseReturnValue:
    """A queue's pause button: confirmed first, as every change is (a paused queue stops work)."""
    ops = get_ops()
    pending = ops.count(JobFilter(queues=(queue,), states=frozenset({JobState.PENDING})))
    change = QueueChange(verb, queue, pending=pending, paused=queue in ops.paused())
    token = web_state().previews.put(change, backend_name(), safe_next(request.form.get("back")))
    return redirect(url_for("pages.confirm", token=token), code=303)


def _apply_queue_change(stored: StoredPreview, change: QueueChange) -> ResponseReturnValue:
    ops = get_ops(stored.backend)
    changed = ops.pause(change.queue) if change.verb == "pause" else ops.resume(change.queue)
    if changed:
        flash(f"{past(change.verb).capitalize()} queue {change.queue}.", "success")
    else:
        state = "already paused" if change.verb == "pause" else "not paused"
        flash(f"Queue {change.queue} was {state}: nothing changed.", "info")
    return redirect(stored.back, code=303)


@bp.get("/dequeue")
def dequeue_form() -> str:
    return render_template(
        "qadmin/dequeue.html", queue_names=queue_names(), class_names=class_names(), values=request.args
    )
