"""The jobs listing (state tabs, filters, keyset pages, bulk selection) and one job's page."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue

from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.model import Page
from qadmin.ops.attempts import from_columns_note
from qadmin.web.access import actions_allowed
from qadmin.web.actions import mutating, parse_filter, parse_limit, parse_sort
from qadmin.web.attempt_rows import attempt_rows
from qadmin.web.pages.blueprint import bp
from qadmin.web.pages.paging import pager, sort_links, tab_total
from qadmin.web.pages.readings import class_names, dashboard, jobs_url, queue_names
from qadmin.web.rendering import page_render
from qadmin.web.reveal import check_may_reveal, page_context
from qadmin.web.state import ListingQuery, backend_name, get_ops, web_state
from qadmin.web.templating import STATES, job_table

#: most parsed query strings of the jobs page kept per app (`listing_query`)
PARSED_CAPACITY = 256


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


def listing_query(name: str) -> ListingQuery:
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
        found = ListingQuery(selection, sort, limit, cursor, listing_key, _tab_base(selection))
        # a few pages are what browsers look at; made-up query strings must not grow it for ever
        if len(parsed) >= PARSED_CAPACITY:
            parsed.clear()
        parsed[memo_key] = found
    return found


@bp.get("/jobs")
def jobs() -> ResponseReturnValue:
    name = backend_name()
    selection, sort, limit, cursor, listing_key, tabs = listing_query(name)

    def read() -> tuple[Page, datetime]:
        ops = get_ops(name)
        now = ops.clock()
        # redacted before it is shared: every viewer of the listing sees the same rows
        return ops.redaction.page(ops.list_jobs(selection, limit=limit, cursor=cursor, sort=sort)), now

    # concurrent views of the same page share one read of its rows, for a second at most
    # (qadmin.web.snapshot); the rows' ages are measured against that read
    listed = web_state().listings.get(name, listing_key, read)
    page, now = listed.value, listed.as_of
    counts, counted_at = _tab_counts(tabs)
    menu = queue_names()
    classes = class_names()
    priorities = get_ops(name).supports_priority
    here = request.full_path.rstrip("?")
    acting = actions_allowed()
    prev = request.args.getlist("prev")

    def context() -> dict[str, Any]:
        params = selection.to_params()
        state_word = params.get("state", "")
        bulk_verbs = _bulk_verbs(state_word, selection)
        selectable = bool(bulk_verbs and page.jobs) and acting
        listing = {
            k: v
            for k, v in (("sort", sort if sort != "id" else None), ("limit", limit if limit != 50 else None))
            if v is not None
        }
        query = {**params, **listing}
        paged = pager(
            query,
            cursor=cursor,
            prev=prev,
            next_cursor=page.next_cursor,
            shown=len(page.jobs),
            limit=limit,
            total=tab_total(counts, state_word, STATES),
            url=jobs_url,
        )
        sorts = sort_links(
            {**params, **({"limit": limit} if limit != 50 else {})},
            sort,
            state_word,
            jobs_url,
            priorities=priorities,
        )
        rest = {k: v for k, v in params.items() if k != "state"}
        tab_urls = {"": jobs_url({**rest, **listing})}
        tab_urls.update({w: jobs_url({**rest, "state": w, **listing}) for w in STATES})
        return {
            "now": now,
            "page": page,
            "table": job_table(page.jobs, now, selectable, sorts),
            "selectable": selectable,
            "selection": selection,
            "params": params,
            "state_word": state_word,
            "sort": sort,
            "limit": limit,
            "cursor": cursor,
            "tab_urls": tab_urls,
            "pager": paged,
            "first_url": paged.first_url,
            "next_url": paged.next_url,
            "here": here,
            "counts": counts,
            "counted_at": counted_at,
            "queue_names": menu,
            "class_names": classes,
            "bulk_verbs": bulk_verbs,
        }

    # the same rows, counts and address make the same page (the listing key already holds the
    # filter, sort and cursor)
    shape = (here, counted_at, tuple(counts.items()), tuple(menu), tuple(classes), acting)
    render = page_render()
    body = render.part(listed, ("page", shape), "qadmin/partials/jobs_body.html", context)
    return render.page(listed, shape, "qadmin/jobs.html", body)


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
        "waiting": ["cancel", "delete"],
        "finished": [],
        "cancelled": [],
    }.get(state_word, ["retry", "unlock", "delete"])
    if state_word in ("pending", "scheduled") and len(selection.queues) == 1 and selection.class_name:
        verbs = ["dequeue", *verbs]
    return verbs


@bp.get("/jobs/<path:job_id>")
def job(job_id: str) -> str:
    return _job_page(job_id, reveal=False)


@bp.post("/jobs/<path:job_id>/reveal")
@mutating  # it writes the audit log: a POST with CSRF, refused when read-only, as every action
def reveal_job(job_id: str) -> str:
    """The job page with its redacted values in full: an admin's, with the CSRF token, audited."""
    check_may_reveal()
    return _job_page(job_id, reveal=True)


def _job_page(job_id: str, *, reveal: bool) -> str:
    ops = get_ops()
    found = ops.show(job_id)
    history = ops.audit(limit=50, job_id=found.id)
    found = ops.noted(found, history)  # a cancel that did not stop it: "… — it finished first"
    offer = page_context(ops, found, revealed=reveal)
    found, history, attempts = ops.redaction.view(found, history, ops.attempts(found.id), reveal=reveal)
    return render_template(
        "qadmin/job.html",
        job=found,
        history=history,
        attempts=attempt_rows(attempts),
        attempts_note=from_columns_note(found, attempts),
        now=ops.clock(),
        payload={"args": found.args, "kwargs": found.kwargs} if found.display is None else found.display,
        **offer,
    )
