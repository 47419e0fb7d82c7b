"""Template filters and the context every page shares (navigation, backend switcher, read-only).
How a page is rendered, once for everyone or for each request, is qadmin.web.rendering's.

Filters return plain `str`, never `Markup`: Jinja escapes whatever they produce, so a payload
holding `<script>` is shown as text wherever it appears. The one exception is `job_table`, the
rows of a listing built in Python for speed: it passes every value through `escape` itself
(tests/faces/web/test_web_shared_pages.py puts markup in every field and checks it comes out as text).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Flask, current_app, request, session, url_for
from markupsafe import Markup, escape

from qadmin.errors import UsageError
from qadmin.job import Job, JobState, iso
from qadmin.text import plural
from qadmin.text import visible as _visible
from qadmin.web.access import actions_allowed, current_identity, current_role, current_user
from qadmin.web.auth import logged_in
from qadmin.web.rendering import csrf_token
from qadmin.web.state import backend_name, web_state

#: the states as the dashboard shows them, the jobs not done first ("stale" is a locked job whose
#: worker is gone; "waiting" one handed to an external service, `qadmin.Waiting`)
STATES = ("pending", "scheduled", "locked", "stale", "failed", "waiting", "finished", "cancelled")


def install(app: Flask) -> None:
    app.jinja_env.filters.update(
        ago=ago, isotime=iso, pretty=pretty, compact=compact, age=age, plural=plural, visible=visible
    )
    app.jinja_env.globals.update(state_of=state_of, STATES=STATES, job_rows=job_rows, job_table=job_table)
    # Flask-WTF's own global, except on bearer requests: they need no CSRF token (a POST with the
    # header is exempt) and making one would write a session cookie into every scripted read
    app.jinja_env.globals["csrf_token"] = csrf_token
    # every {{ value }} of every template shows control characters as visible escapes
    app.jinja_env.finalize = _finalize
    app.jinja_env.globals["url_for"] = link
    app.context_processor(_shared_context)


def link(endpoint: str, **values: Any) -> str:
    """`url_for`, remembered for the links that never change (no values but a static file name):
    every page has a dozen of them in its header, and building one costs as much as a row.

    A static file's link carries a digest of its content (`v=`), so browsers may keep the file
    for `STATIC_MAX_AGE` without asking again, and still fetch a changed one at once."""
    if values and (endpoint != "static" or any(k.startswith("_") for k in values)):
        return url_for(endpoint, **values)
    known = web_state().links
    key = (request.script_root, endpoint, tuple(values.items()))
    found = known.get(key)
    if found is None:
        if endpoint == "static" and "filename" in values:
            values["v"] = _digest(current_app, values["filename"])
        found = known[key] = url_for(endpoint, **values)
    return found


#: seconds a browser keeps a static file (their links change with their content)
STATIC_MAX_AGE = 86400


def _digest(app: Flask, filename: str) -> str:
    try:
        data = (Path(app.static_folder or "") / filename).read_bytes()
    except OSError:
        return "0"
    return hashlib.sha256(data).hexdigest()[:12]


def _shared_context() -> dict[str, Any]:
    state = web_state()
    identity = current_identity()
    try:
        current = backend_name()
    except UsageError:
        # the error page for a bad ?backend= must still render
        current = state.backends.default
    return {
        # actions hidden: the dashboard is read-only, or this role may not act
        "read_only": not actions_allowed(),
        "read_only_why": "This dashboard is read-only"
        if current_app.config["QADMIN_READ_ONLY"]
        else f"You are a {current_role().label}",
        "refresh_seconds": int(current_app.config["QADMIN_REFRESH"] or 0),
        "backend_names": state.backends.names,
        "current_backend": current,
        "user": current_user() or session.get("user"),
        "role": current_role().label if identity is not None else None,
        "can_log_out": identity is None or identity.can_log_out,
        # the frame (navigation, user, log out) for a browser: logged in, or sent by a proxy; a
        # script's bearer request gets the page alone
        "logged_in": logged_in() or (identity is not None and identity.source == "proxy"),
        # over Flask-WTF's context processor too (macros see the globals, pages the context)
        "csrf_token": csrf_token,
    }


def state_of(job: Job) -> str:
    return "stale" if job.stale else job.state.value


#: what werkzeug's `path` converter leaves unquoted (url.spec.whatwg.org's path-segment set)
PATH_SAFE = "!$&'()*+,/:;=@"
#: the moment a listing row shows, by state (anything else shows when it runs)
_WHEN = {
    "failed": ("", "failed_at"),
    "locked": ("locked ", "locked_at"),
    "finished": ("", "finished_at"),
    "cancelled": ("", "finished_at"),
}


def job_rows(jobs: Iterable[Job], now: datetime) -> list[dict[str, Any]]:
    """What each row of a job table shows, worked out in one pass in Python: a page of rows is
    the bulk of a listing's cost, and the same markup built from macros per cell took most of
    it. Plain strings: `job_table` escapes every one of them."""
    # the link of every row differs only in the id: one url_for, then the id quoted as
    # werkzeug's path converter quotes it (tests compare the two)
    base = url_for("pages.job", job_id="_")[:-1]
    rows = []
    for job in jobs:
        state = "stale" if job.stale else job.state.value
        prefix, field = _WHEN.get(job.state.value, ("", "run_at"))
        moment = getattr(job, field)
        # a listing shows the start of each field: a 10 MB payload costs no more than a short one
        args = _squeeze(_head(job.args))
        rows.append(
            {
                "job": job,
                "state": state,
                "href": base + _path(job.id),
                "when_prefix": prefix,
                "when_iso": iso(moment) if moment else "",
                "when_ago": ago(moment, now) if moment else "",
                "args_title": _cut(args, 2000),
                "args": _cut(_squeeze(job.raw[:LISTED]), 60) if job.undecodable else _cut(args, 80),
                "error": _cut(job.error_message or "", ERROR_TITLE),
            }
        )
    return rows


def _path(job_id: Any) -> str:
    """A job id as werkzeug's path converter quotes it; surrogatepass, so that an id holding bytes
    a decoder kept as surrogates still links."""
    if type(job_id) is int:
        return str(job_id)
    return quote(str(job_id), safe=PATH_SAFE, errors="surrogatepass")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    now = now or datetime.now(UTC)
    if moment.tzinfo is None:  # a foreign writer's naive time: UTC, as delayed_job writes it
        moment = moment.replace(tzinfo=UTC)
    seconds = (now - moment).total_seconds()
    text = age(abs(seconds))
    return f"in {text}" if seconds < 0 else f"{text} ago"


def age(seconds: float | None) -> str:
    """A short human duration: 45s, 12m, 5h 3m, 2d 4h."""
    if seconds is None:
        return ""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def compact(value: Any, width: int = 80) -> str:
    return _cut(_squeeze(value), width)


def visible(text: Any) -> str:
    """`text` with every control character shown as an escape (`\\x1b`), never raw: job data
    reaches pages from anyone who can write to a queue. Line feeds and tabs stay."""
    return _visible(text, lines=True)


def _finalize(value: Any) -> Any:
    # Markup is ours (already escaped and made visible); numbers and None need nothing
    if type(value) is str:
        return visible(value)
    if isinstance(value, (list, tuple, dict)):
        return visible(str(value))
    return value


def _squeeze(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return " ".join(text.split())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


#: characters of a field a listing reads (the job page shows it all)
LISTED = 4000
#: characters of an error's first line a listing shows in its tooltip
ERROR_TITLE = 500


def _head(value: Any) -> Any:
    """`value`, with any string in it longer than `LISTED` cut to that (a list of args holding
    one 10 MB string is shown by its start, and never serialised whole for a listing)."""
    if isinstance(value, str):
        return value if len(value) <= LISTED else value[:LISTED] + "…"
    if isinstance(value, list):
        return [_head(v) for v in value[:100]] + (["…"] if len(value) > 100 else [])
    if isinstance(value, dict):
        return {k: _head(v) for k, v in list(value.items())[:100]}
    return value


_TH = (
    '<th>id</th><th>state</th><th>queue</th><th>class</th><th class="col-args">args</th><th class="num">pri</th>'
    '<th class="num">att</th><th>when</th><th>error</th>'
)
#: the job table's columns: (key, header, class)
_COLUMNS = (
    ("id", "id", ""),
    ("state", "state", ""),
    ("queue", "queue", ""),
    ("class", "class", ""),
    ("args", "args", "col-args"),
    ("pri", "pri", "num"),
    ("att", "att", "num"),
    ("when", "when", ""),
    ("error", "error", ""),
)
#: what a header of a sortable table says of a column it cannot sort by
UNSORTABLE = "cannot sort by this column (sortable: id, pri, when)"
_MARKS = {"ascending": "▲", "descending": "▼"}


def _sortable_head(sorts: Mapping[str, tuple[str, str | None]]) -> str:
    """The header row with a link on each sortable column (`pages.paging.sort_links`)."""
    cells = []
    for key, label, cls in _COLUMNS:
        found = sorts.get(key)
        if found is None:
            classes = f"{cls} unsortable".strip()
            cells.append(f'<th class="{classes}" title="{UNSORTABLE}">{label}</th>')
            continue
        href, state = found
        mark = f' <span class="sort-mark" aria-hidden="true">{_MARKS[state]}</span>' if state else ""
        aria = f' aria-sort="{state}"' if state else ""
        attr = f' class="{cls}"' if cls else ""
        cells.append(f'<th{attr}{aria}><a class="sort" href="{escape(href)}" data-sort="{key}">{label}{mark}</a></th>')
    return "".join(cells)


_TH_CHECK = '<th class="check"><input type="checkbox" data-select-all aria-label="select all on this page"></th>'


def job_table(
    jobs: Iterable[Job],
    now: datetime,
    selectable: bool = False,
    sorts: Mapping[str, tuple[str, str | None]] | None = None,
) -> Markup:
    """The job table of a listing, as partials/job_table.html used to render it: one f-string per
    row instead of some forty template lookups and escapes per row, which took most of a page's
    time. Every value goes through `escape` (`_e`); nothing from a job is ever inserted raw.
    `sorts` makes the headers links (column -> its link and aria-sort, `pages.paging.sort_links`);
    without it the headers are plain, as on a confirmation."""

    def _e(value: Any) -> Markup:
        return escape(visible(value)) if isinstance(value, str) else escape(value)

    out = ['<table class="table jobs-table">\n<thead><tr>']
    if selectable:
        out.append(_TH_CHECK)
    out.append((_sortable_head(sorts) if sorts else _TH) + '</tr></thead>\n<tbody data-rows="jobs">\n')
    for row in job_rows(jobs, now):
        job = row["job"]
        state = row["state"]  # a JobState value or "stale"
        # an int needs no escaping (SQL ids, priorities, attempts); anything else does
        jid = job.id if type(job.id) is int else _e(job.id)
        if selectable:
            check = (
                f'<td class="check"><input type="checkbox" name="id" value="{jid}" aria-label="select job {jid}"></td>'
            )
        else:
            check = ""
        if job.undecodable:
            why = _e(job.undecodable)
            chip = f' <span class="chip chip-undecodable" title="{why}">undecodable</span>'
            args = f'<span class="muted">{_e(row["args"])}</span>'
            err = title = why
        else:
            chip = ""
            args = _e(row["args"])
            err = title = _e(row["error"])
        err_class = "err"
        if err and job.state is not JobState.FAILED and not job.undecodable:
            # a job that failed and was retried: its error is history, not a failure
            err_class = "err err-old muted"
            title = _e("last attempt's error: " + row["error"])
            err = Markup('<span class="err-label">last attempt: </span>') + err
        when = row["when_prefix"]  # words of ours
        if row["when_iso"]:
            # made by iso() and ago() from a datetime: digits, letters, "-:.+ "
            moment = row["when_iso"]
            when += f'<time datetime="{moment}" title="{moment}">{row["when_ago"]}</time>'
        cls = _e(job.class_name)
        out.append(
            f'<tr class="row-{state}">{check}'
            f'<td><a class="mono" href="{_e(row["href"])}">{jid}</a></td>'
            f'<td class="nowrap"><span class="chip chip-{state}">{state}</span>{chip}</td>'
            f"<td>{_e(job.queue or '')}</td>"
            f'<td class="mono ellipsis cls" title="{cls}">{cls}</td>'
            f'<td class="mono ellipsis args" title="{_e(row["args_title"])}">{args}</td>'
            f'<td class="num">{_int(job.priority)}</td>'
            f'<td class="num">{_int(job.attempts)}</td>'
            f'<td class="nowrap">{when}</td>'
            f'<td class="ellipsis {err_class}" title="{title}">{err}</td></tr>\n'
        )
    out.append("</tbody>\n</table>")
    return Markup("".join(out))


def _int(value: Any) -> Any:
    """A number as it is; anything else a foreign payload put there, escaped."""
    return value if type(value) is int else escape(visible(value))
