"""Blueprint "pages": the server-rendered dashboard. Views parse, call ops, render.

Each page with a live refresh has one context function that feeds both the full page and its
partial (`/partials/...`), so the two never disagree.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from werkzeug.datastructures import MultiDict

from qadmin.errors import InvalidTransition, UsageError
from qadmin.filters import JobFilter
from qadmin.job import JobState, WorkerInfo
from qadmin.model import Stats
from qadmin.ops import VERBS, Ops
from qadmin.web import charts
from qadmin.web.actions import (
    mutating,
    oldest_age,
    parse_filter,
    parse_limit,
    parse_sort,
    past,
    preview,
    summary,
)
from qadmin.web.auth import safe_next
from qadmin.web.snapshot import Reading
from qadmin.web.state import QueueChange, backend_name, get_ops, web_state
from qadmin.web.templating import STATES, SharedHtml, csrf_token, job_table, link, render_shared, shared_page

bp = Blueprint("pages", __name__)


# --- the shared readings ------------------------------------------------------------------------
def dashboard() -> Reading:
    """Stats and workers of this request's backend as all pages share them (qadmin.web.snapshot):
    `.value` is (Stats, [WorkerInfo]), `.as_of` the backend's clock when they were read."""
    name = backend_name()
    # one reading per request, so the tabs and the menus of a page agree even with a ttl of 0
    mine = g.get("qadmin_dashboard")
    if mine is not None and mine[0] == name:
        return mine[1]
    # the shared Ops, not this request's copy (get_ops): a reading writes no audit entry, and it
    # may run after the request, in a background thread
    ops = web_state().backends.get(name)

    def read() -> tuple[tuple[Stats, list[WorkerInfo]], datetime]:
        now = ops.clock()
        return (ops.stats(), ops.workers()), now

    reading = web_state().snapshots.get(name, "dashboard", read)
    g.qadmin_dashboard = (name, reading)
    return reading


def queue_names() -> list[str]:
    """The queues of the filter menus, from the shared reading (a menu needs no exact count)."""
    return dashboard().derive("queue_names", lambda: list(dashboard().value[0].queues))


#: the newest jobs the class menus learn names from (a menu needs the names in use, not every one)
CLASS_SAMPLE = 200


def class_names() -> list[str]:
    """The job classes the filter inputs offer (a <datalist>): the full names of the newest jobs
    and of the most recently failed ones, and the last part of each (either selects the class),
    read once per dashboard reading. Two keyset pages, never a scan: error groups would read
    every failed job."""
    name = backend_name()
    ops = web_state().backends.get(name)

    def read() -> tuple[list[str], datetime]:
        now = ops.clock()
        return ops.class_names(CLASS_SAMPLE, short=True), now

    return web_state().snapshots.get(name, "class names", read).value


def jobs_url(params: dict[str, Any]) -> str:
    """`url_for("pages.jobs", **params)`, built as werkzeug builds its query string, for the many
    links of a page (a url_for costs as much as a table row)."""
    pairs = [(k, v) for k, v in params.items() if v is not None]
    query = urlencode(pairs, safe="!$'()*,/:;?@", quote_via=quote)
    base = link("pages.jobs")
    return f"{base}?{query}" if query else base


# --- overview ----------------------------------------------------------------------------------
def overview_context(reading: Reading) -> dict[str, Any]:
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


def overview_body() -> tuple[Reading, bool, SharedHtml]:
    """The overview's numbers as HTML, rendered once per reading and mode: the overview and its
    live refresh are the pages every open browser asks for every few seconds. The forms' CSRF
    token is each request's own, put in after (see templating.render_shared)."""
    reading = dashboard()
    read_only = bool(current_app.config["QADMIN_READ_ONLY"])
    html = reading.derive(
        ("overview", read_only),
        lambda: render_shared("qadmin/partials/overview_body.html", **overview_context(reading)),
    )
    return reading, read_only, html


@bp.get("/")
def overview():
    reading, read_only, body = overview_body()
    return shared_page(reading, ("overview", read_only), "qadmin/overview.html", body)


@bp.get("/partials/overview")
def overview_partial():
    return overview_body()[2].with_csrf(csrf_token())


# --- jobs --------------------------------------------------------------------------------------
def _tab_base(selection: JobFilter) -> tuple[JobFilter, bool]:
    """The filter of the state tabs (the selection, its state aside), and whether it is one of
    queues alone."""
    base = replace(selection, states=frozenset(), stale_only=False)
    return base, base == JobFilter(queues=base.queues)


def _tab_counts(tabs: tuple[JobFilter, bool]) -> tuple[dict[str, int], datetime]:
    """The count of each state tab under the filter (`_tab_base`), and when it was read.

    A filter of queues alone (the overview's links, the queue menu) is answered from the shared
    stats reading, which holds every queue x state count already; other filters (class, args,
    search...) need counts of their own, shared the same way for the same filter."""
    base, queues_only = tabs
    if queues_only:
        reading = dashboard()

        def sums() -> dict[str, int]:
            per_queue = reading.value[0].queues
            names = base.queues or tuple(per_queue)
            return {w: sum(per_queue.get(q, {}).get(w, 0) for q in names) for w in STATES}

        return reading.derive(("tabs", base.queues), sums), reading.as_of
    ops = get_ops()

    def read() -> tuple[dict[str, int], datetime]:
        now = ops.clock()
        out: dict[str, int] = {}
        for word in STATES:
            if word == "stale":
                narrowed = replace(base, states=frozenset({JobState.LOCKED}), stale_only=True)
            else:
                narrowed = replace(base, states=frozenset({JobState(word)}))
            out[word] = ops.count(narrowed)
        return out, now

    # repr, not the filter itself: `extra` is a dict, so a JobFilter does not hash
    found = web_state().snapshots.get(backend_name(), ("tabs", repr(base)), read)
    return found.value, found.as_of


def _listing_query(name: str) -> tuple[Any, ...]:
    """The jobs page's filter, sort, limit and cursor from the query string, and the key of its
    rows in the shared listings: worked out once per backend and query string, as the views of
    one page all ask the same (a bad query raises every time, and is never kept)."""
    parsed = web_state().parsed
    memo_key = (name, request.query_string)
    found = parsed.get(memo_key)
    if found is None:
        selection = parse_filter(web_state().backends.get(name), request.args)
        sort = parse_sort(request.args.get("sort"))
        limit = parse_limit(request.args.get("limit"))
        cursor = request.args.get("cursor") or None
        listing_key = ("jobs", repr(selection), sort, limit, cursor)
        found = (selection, sort, limit, cursor, listing_key, _tab_base(selection))
        # a few pages are what browsers look at; made-up query strings must not grow it for ever
        if len(parsed) >= PARSED_CAPACITY:
            parsed.clear()
        parsed[memo_key] = found
    return found


#: most parsed query strings of the jobs page kept per app (`_listing_query`)
PARSED_CAPACITY = 256


@bp.get("/jobs")
def jobs():
    name = backend_name()
    selection, sort, limit, cursor, listing_key, tabs = _listing_query(name)

    def read() -> tuple[Any, datetime]:
        ops = get_ops(name)
        now = ops.clock()
        return ops.list_jobs(selection, limit=limit, cursor=cursor, sort=sort), now

    # concurrent views of the same page share one read of its rows, for a second at most
    # (qadmin.web.snapshot); the rows' ages are measured against that read
    listed = web_state().listings.get(name, listing_key, read)
    page, now = listed.value, listed.as_of
    counts, counted_at = _tab_counts(tabs)
    menu = queue_names()
    classes = class_names()
    here = request.full_path.rstrip("?")

    def body() -> Any:
        params = selection.to_params()
        state_word = params.get("state", "")
        bulk_verbs = _bulk_verbs(state_word, selection)
        selectable = bool(bulk_verbs and page.jobs) and not current_app.config["QADMIN_READ_ONLY"]
        listing = {
            k: v
            for k, v in (("sort", sort if sort != "id" else None), ("limit", limit if limit != 50 else None))
            if v is not None
        }
        rest = {k: v for k, v in params.items() if k != "state"}
        tab_urls = {"": jobs_url({**rest, **listing})}
        tab_urls.update({w: jobs_url({**rest, "state": w, **listing}) for w in STATES})
        return render_shared(
            "qadmin/partials/jobs_body.html",
            now=now,
            page=page,
            table=job_table(page.jobs, now, selectable),
            selectable=selectable,
            selection=selection,
            params=params,
            state_word=state_word,
            sort=sort,
            limit=limit,
            cursor=cursor,
            tab_urls=tab_urls,
            first_url=jobs_url({**params, **listing}) if cursor else None,
            next_url=jobs_url({**params, **listing, "cursor": page.next_cursor}) if page.next_cursor else None,
            here=here,
            counts=counts,
            counted_at=counted_at,
            queue_names=menu,
            class_names=classes,
            bulk_verbs=bulk_verbs,
        )

    # the same rows, counts and address make the same page: rendered once for all the views
    # that share this page of rows (the listing key already holds the filter, sort and cursor)
    shape = (here, counted_at, tuple(counts.items()), tuple(menu), tuple(classes))
    return shared_page(listed, shape, "qadmin/jobs.html", listed.derive(("page", shape), body))


def _bulk_verbs(state_word: str, selection: JobFilter) -> list[str]:
    """The bulk actions that make sense on a state tab; dequeue once one queue and a class are
    chosen, as Resque's dequeue needs."""
    verbs = {
        "": ["retry", "unlock", "delete"],
        "failed": ["retry", "delete"],
        "locked": ["unlock", "delete"],
        "stale": ["unlock", "delete"],
        "pending": ["delete"],
        "scheduled": ["delete"],
        "finished": [],
    }.get(state_word, ["retry", "unlock", "delete"])
    if state_word in ("pending", "scheduled") and len(selection.queues) == 1 and selection.class_name:
        verbs = ["dequeue", *verbs]
    return verbs


@bp.get("/jobs/<path:job_id>")
def job(job_id: str):
    ops = get_ops()
    found = ops.show(job_id)
    history = ops.audit(limit=50, job_id=found.id)
    return render_template(
        "qadmin/job.html",
        job=found,
        history=history,
        now=ops.clock(),
        payload={"args": found.args, "kwargs": found.kwargs} if found.display is None else found.display,
    )


@bp.post("/job-action")
@mutating
def job_action():
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
    # after a delete the job page is gone: back to the list
    back = url_for("pages.jobs") if verb == "delete" else url_for("pages.job", job_id=found.id)
    return _store_preview(verb, JobFilter(ids=(found.id,)), back=back)


#: what a job page's buttons may ask
ONE_JOB_VERBS = ("retry", "unlock", "delete")


# --- bulk actions: preview -> confirm -> apply ---------------------------------------------------
@bp.post("/actions/preview")
@mutating
def action_preview():
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


def _store_preview(verb: str, selection: JobFilter, back: str | None) -> Any:
    ops = get_ops()
    frozen = preview(ops, verb, selection)
    token = web_state().previews.put(frozen, backend_name(), safe_next(back))
    return redirect(url_for("pages.confirm", token=token), code=303)


@bp.get("/actions/<token>")
def confirm(token: str):
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
def apply(token: str):
    stored = web_state().previews.take(token)
    if isinstance(stored.preview, QueueChange):
        return _apply_queue_change(stored)
    result = get_ops(stored.backend).apply(stored.preview)
    flash(summary(result), "success" if not result.skipped else "warning")
    for job_id, reason in result.skipped[:5]:
        flash(f"skipped {job_id}: {reason}", "warning")
    return redirect(stored.back, code=303)


@bp.post("/actions/<token>/cancel")
def cancel(token: str):
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
def queue_action(queue: str, verb: str):
    """A queue's pause button: confirmed first, as every change is (a paused queue stops work)."""
    ops = get_ops()
    pending = ops.count(JobFilter(queues=(queue,), states=frozenset({JobState.PENDING})))
    change = QueueChange(verb, queue, pending=pending, paused=queue in ops.paused())
    token = web_state().previews.put(change, backend_name(), safe_next(request.form.get("back")))
    return redirect(url_for("pages.confirm", token=token), code=303)


def _apply_queue_change(stored: Any) -> Any:
    change: QueueChange = stored.preview
    ops = get_ops(stored.backend)
    changed = ops.pause(change.queue) if change.verb == "pause" else ops.resume(change.queue)
    if changed:
        flash(f"{past(change.verb).capitalize()} queue {change.queue}.", "success")
    else:
        state = "already paused" if change.verb == "pause" else "not paused"
        flash(f"Queue {change.queue} was {state}: nothing changed.", "info")
    return redirect(stored.back, code=303)


@bp.get("/dequeue")
def dequeue_form():
    return render_template(
        "qadmin/dequeue.html", queue_names=queue_names(), class_names=class_names(), values=request.args
    )


# --- errors, workers, audit --------------------------------------------------------------------
@bp.get("/errors")
def errors():
    ops = get_ops()
    selection = parse_filter(ops, request.args).with_states(JobState.FAILED)
    limit = parse_limit(request.args.get("limit"), 100)

    def read() -> tuple[list[Any], datetime]:
        now = ops.clock()
        return ops.error_groups(selection, limit=limit), now

    # grouping reads every failed job: shared like the other dashboard numbers (the API's
    # /api/errors reads afresh)
    found = web_state().snapshots.get(backend_name(), ("errors", repr(selection), limit), read)
    params = {k: v for k, v in selection.to_params().items() if k in ("queue", "class")}
    return render_template(
        "qadmin/errors.html",
        groups=found.value,
        now=found.as_of,
        params=params,
        queue_names=queue_names(),
        class_names=class_names(),
    )


def workers_context(ops: Ops) -> dict[str, Any]:
    workers = ops.workers()
    return {"workers": workers, "now": ops.clock(), "stale": sum(1 for w in workers if w.stale)}


@bp.get("/workers")
def workers():
    return render_template("qadmin/workers.html", **workers_context(get_ops()))


@bp.get("/partials/workers")
def workers_partial():
    return render_template("qadmin/partials/workers_body.html", **workers_context(get_ops()))


@bp.get("/audit")
def audit():
    ops = get_ops()
    job_id = request.args.get("job") or None
    entries = ops.audit(limit=parse_limit(request.args.get("limit"), 100), job_id=job_id)
    return render_template("qadmin/audit.html", entries=entries, job_id=job_id, now=ops.clock())


# --- backend switcher --------------------------------------------------------------------------
@bp.post("/backend")
def switch_backend():
    """Choose the backend this browser session works on (a preference, not a data change)."""
    name = request.form.get("backend", "")
    if name not in web_state().backends.names:
        raise UsageError(f"no backend named {name!r}")
    session["backend"] = name
    flash(f"Now on backend {name}.", "info")
    return redirect(url_for("pages.overview"), code=303)
