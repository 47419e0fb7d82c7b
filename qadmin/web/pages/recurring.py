"""The "Recurring" page: every schedule with its timing, next and last run, and its state; enable,
disable and "run now" per row (`ops.recurring`, audited). Each change is asked for by a row's
button, shown on a confirmation page (the dry run), and made only when that page is confirmed."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from qadmin.ops import Ops
from qadmin.recurring import RecurringEntry
from qadmin.text import visible
from qadmin.web.actions import mutating
from qadmin.web.pages.blueprint import bp
from qadmin.web.state import backend_name, get_ops

#: where a run now leaves the id of the job it enqueued for the next view of the page to link
RAN_KEY = "qadmin_recurring_ran"


@bp.get("/recurring")
def recurring() -> str:
    ops = get_ops()
    now = ops.clock()
    entries = ops.recurring.entries()
    ran: dict[str, str] | None = session.pop(RAN_KEY, None)
    return render_template(
        "qadmin/recurring.html",
        rows=[_row(entry, now) for entry in entries],
        now=now,
        ran=ran,
        enabled=sum(1 for e in entries if e.schedule.enabled),
    )


def _row(entry: RecurringEntry, now: Any) -> dict[str, Any]:
    s = entry.schedule
    return {
        "name": s.name,
        "description": s.description,
        "timing": s.timing,
        "class": s.job_class,
        "queue": s.queue,
        "enabled": s.enabled,
        "source": s.source,
        "next_run": entry.next_run(now),
        "last_run": entry.last_run_at,
        "last_job": entry.last_job_id,
    }


@bp.post("/recurring/<path:name>/<any(enable, disable):verb>")
@mutating
def recurring_action(name: str, verb: str) -> ResponseReturnValue:
    return _change(name, verb)


# spelt as the CLI spells it (werkzeug's any() takes no hyphen): a route of its own
@bp.post("/recurring/<path:name>/run-now")
@mutating
def recurring_run_now(name: str) -> ResponseReturnValue:
    return _change(name, "run-now")


def _change(name: str, verb: str) -> ResponseReturnValue:
    """A row's button shows what the change would do (a dry run); that page's own button, sent
    with `confirmed=1`, makes it."""
    ops = get_ops()
    if request.form.get("confirmed") != "1":
        return _confirmation(ops, name, verb)
    if verb == "run-now":
        job = ops.recurring.run_now(name).job
        assert job is not None  # not a dry run
        # shown by the page with a link to the job (a flash message is text)
        session[RAN_KEY] = {"schedule": name, "job": str(job.id)}
    else:
        before = ops.recurring.get(name).schedule.enabled
        if verb == "enable":
            ops.recurring.enable(name)
        else:
            ops.recurring.disable(name)
        wanted = verb == "enable"
        if before == wanted:
            flash(f"Schedule {visible(name)} was already {verb}d: nothing changed.", "info")
        else:
            flash(f"Schedule {visible(name)} {verb}d.", "success")
    return redirect(url_for("pages.recurring"), code=303)


def _confirmation(ops: Ops, name: str, verb: str) -> str:
    now = ops.clock()
    entry = ops.recurring.get(name)
    after: RecurringEntry | None = None
    run: dict[str, Any] | None = None
    if verb == "run-now":
        new = ops.recurring.run_now(name, dry_run=True).new
        run = {"class": new.class_name, "args": new.args, "kwargs": new.kwargs, "queue": new.queue}
    elif verb == "enable":
        after = ops.recurring.enable(name, dry_run=True)
    else:
        after = ops.recurring.disable(name, dry_run=True)
    return render_template(
        "qadmin/recurring_confirm.html",
        verb=verb,
        row=_row(entry, now),
        next_after=after.next_run(now) if after is not None else None,
        nothing_to_do=after is not None and after.schedule.enabled == entry.schedule.enabled,
        run=run,
        backend=backend_name(),
        now=now,
    )
