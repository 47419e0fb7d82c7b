"""Template filters and the context every page shares (navigation, backend switcher, read-only).

Filters return plain `str`, never `Markup`: Jinja escapes whatever they produce, so a payload
holding `<script>` is shown as text wherever it appears.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import quote

from flask import Flask, current_app, session, url_for

from qadmin.errors import UsageError
from qadmin.job import Job, iso
from qadmin.web.state import backend_name, web_state

#: the states as the dashboard shows them, in workflow order ("stale" is a locked job whose
#: worker is gone)
STATES = ("pending", "scheduled", "locked", "stale", "failed", "finished")


def install(app: Flask) -> None:
    app.jinja_env.filters.update(ago=ago, isotime=iso, pretty=pretty, compact=compact, age=age)
    app.jinja_env.globals.update(state_of=state_of, STATES=STATES, job_rows=job_rows)
    app.context_processor(_shared_context)


def _shared_context() -> dict[str, Any]:
    state = web_state()
    try:
        current = backend_name()
    except UsageError:
        # the error page for a bad ?backend= must still render
        current = state.backends.default
    return {
        "read_only": bool(current_app.config["QADMIN_READ_ONLY"]),
        "refresh_seconds": int(current_app.config["QADMIN_REFRESH"] or 0),
        "backend_names": state.backends.names,
        "current_backend": current,
        "user": session.get("user"),
        "logged_in": bool(session.get("auth")),
    }


def state_of(job: Job) -> str:
    return "stale" if job.stale else job.state.value


#: what werkzeug's `path` converter leaves unquoted (url.spec.whatwg.org's path-segment set)
PATH_SAFE = "!$&'()*+,/:;=@"
#: the moment a listing row shows, by state (anything else shows when it runs)
_WHEN = {"failed": ("", "failed_at"), "locked": ("locked ", "locked_at"), "finished": ("", "finished_at")}


def job_rows(jobs: Iterable[Job], now: datetime) -> list[dict[str, Any]]:
    """What each row of a job table shows, worked out in one pass in Python: a page of rows is
    the bulk of a listing's cost, and the same markup built from macros per cell took most of
    it. Plain strings: the template still escapes every one of them."""
    # the link of every row differs only in the id: one url_for, then the id quoted as
    # werkzeug's path converter quotes it (tests compare the two)
    base = url_for("pages.job", job_id="_")[:-1]
    rows = []
    for job in jobs:
        state = "stale" if job.stale else job.state.value
        prefix, field = _WHEN.get(job.state.value, ("", "run_at"))
        moment = getattr(job, field)
        args = _squeeze(job.args)
        rows.append(
            {
                "job": job,
                "state": state,
                "href": base + quote(str(job.id), safe=PATH_SAFE),
                "when_prefix": prefix,
                "when_iso": iso(moment) if moment else "",
                "when_ago": ago(moment, now) if moment else "",
                "args_title": _cut(args, 2000),
                "args": _cut(_squeeze(job.raw), 60) if job.undecodable else _cut(args, 80),
            }
        )
    return rows


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    now = now or datetime.now(timezone.utc)
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


def _squeeze(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return " ".join(text.split())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
