"""Template filters and the context every page shares (navigation, backend switcher, read-only).

Filters return plain `str`, never `Markup`: Jinja escapes whatever they produce, so a payload
holding `<script>` is shown as text wherever it appears.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from flask import Flask, current_app, session

from qadmin.errors import UsageError
from qadmin.job import Job, iso
from qadmin.web.state import backend_name, web_state

#: the states as the dashboard shows them, in workflow order ("stale" is a locked job whose
#: worker is gone)
STATES = ("pending", "scheduled", "locked", "stale", "failed", "finished")


def install(app: Flask) -> None:
    app.jinja_env.filters.update(ago=ago, isotime=iso, pretty=pretty, compact=compact, age=age)
    app.jinja_env.globals.update(state_of=state_of, STATES=STATES)
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
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
