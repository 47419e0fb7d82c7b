"""The pages that watch: the overview, error groups, workers, the audit log, and the backend
switcher. Each page with a live refresh has one context function that feeds both the full page
and its partial (`/partials/...`), so the two never disagree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from qadmin.errors import UsageError
from qadmin.job import JobState
from qadmin.model import ErrorGroup
from qadmin.ops import Ops
from qadmin.web import charts
from qadmin.web.access import actions_allowed
from qadmin.web.actions import oldest_age, parse_filter, parse_limit
from qadmin.web.pages.blueprint import bp
from qadmin.web.pages.paging import sort_workers
from qadmin.web.pages.readings import Dashboard, class_names, dashboard, queue_names
from qadmin.web.rendering import SlottedHtml, page_render
from qadmin.web.snapshot import Reading
from qadmin.web.state import backend_name, get_ops, web_state
from qadmin.web.templating import STATES


# --- overview ----------------------------------------------------------------------------------
def overview_context(reading: Reading[Dashboard]) -> dict[str, Any]:
    # ages are measured against the moment the numbers were read, so they agree with them
    now = reading.as_of
    st, workers = reading.value
    rows = []
    for name, counts in st.queues.items():
        rows.append(
            {
                "name": name,
                "counts": counts,
                "paused": name in st.paused,
                "segments": charts.stacked(counts, STATES[:-1]),
            }
        )
    totals = st.totals()
    return {
        "now": now,
        "stats": st,
        "rows": rows,
        "totals": totals,
        "oldest_age": oldest_age(st, now),
        "chart": charts.throughput(st.throughput, now),
        "workers": workers[:8],
        "workers_total": len(workers),
        "workers_stale": sum(1 for w in workers if w.stale),
        "stale_total": totals.get("stale", 0),
    }


def overview_body() -> tuple[Reading[Dashboard], tuple[str, bool], SlottedHtml]:
    """The overview's numbers as HTML, and what they are rendered from besides the reading: the
    overview and its live refresh are the pages every open browser asks for every few seconds
    (qadmin.web.rendering says how often they are rendered)."""
    reading = dashboard()
    key = ("overview", not actions_allowed())
    html = page_render().part(reading, key, "qadmin/partials/overview_body.html", lambda: overview_context(reading))
    return reading, key, html


@bp.get("/")
def overview() -> ResponseReturnValue:
    reading, key, body = overview_body()
    return page_render().page(reading, key, "qadmin/overview.html", body)


@bp.get("/partials/overview")
def overview_partial() -> Markup:
    return overview_body()[2].for_request()


# --- errors, workers, audit --------------------------------------------------------------------
@bp.get("/errors")
def errors() -> str:
    ops = get_ops()
    selection = parse_filter(ops, request.args).with_states(JobState.FAILED)
    limit = parse_limit(request.args.get("limit"), 100)

    def read() -> tuple[list[ErrorGroup], datetime]:
        now = ops.clock()
        return ops.error_groups(selection, limit=limit), now

    # grouping reads every failed job: shared like the other dashboard numbers (the API's
    # /api/errors reads afresh)
    found = web_state().snapshots.get(backend_name(), ("errors", repr(selection), limit), read)
    params = {k: v for k, v in selection.to_params().items() if k in ("queue", "class")}
    groups = ops.redaction.error_groups(found.value)
    return render_template(
        "qadmin/errors.html",
        groups=groups,
        now=found.as_of,
        params=params,
        queue_names=queue_names(),
        class_names=class_names(),
    )


def workers_context(ops: Ops) -> dict[str, Any]:
    workers, sort = sort_workers(ops.workers(), request.args.get("sort"))
    return {"workers": workers, "now": ops.clock(), "stale": sum(1 for w in workers if w.stale), "sort": sort}


@bp.get("/workers")
def workers() -> str:
    return render_template("qadmin/workers.html", **workers_context(get_ops()))


@bp.get("/partials/workers")
def workers_partial() -> str:
    return render_template("qadmin/partials/workers_body.html", **workers_context(get_ops()))


@bp.get("/audit")
def audit() -> str:
    ops = get_ops()
    job_id = request.args.get("job") or None
    entries = ops.redaction.audit(ops.audit(limit=parse_limit(request.args.get("limit"), 100), job_id=job_id))
    return render_template("qadmin/audit.html", entries=entries, job_id=job_id, now=ops.clock())


# --- backend switcher --------------------------------------------------------------------------
@bp.post("/backend")
def switch_backend() -> ResponseReturnValue:
    """Choose the backend this browser session works on (a preference, not a data change)."""
    name = request.form.get("backend", "")
    if name not in web_state().backends.names:
        raise UsageError(f"no backend named {name!r}")
    session["backend"] = name
    flash(f"Now on backend {name}.", "info")
    return redirect(url_for("pages.overview"), code=303)
