"""Formatting shared by the screens: times, states, short values, theme-aware styles."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.style import Style
from rich.text import Text

from qadmin.job import Job, JobState

#: state word -> theme variable its text is drawn in (theme variables keep light themes readable)
STATE_COLOR = {
    "pending": "text-primary", "scheduled": "text-secondary", "locked": "text-warning",
    "stale": "text-error", "failed": "text-error", "finished": "text-success",
}


def theme_style(app: Any, variable: str, *, bold: bool = False) -> Style:
    """A Rich style in one of the current theme's colours (so it follows dark/light switches)."""
    color = getattr(app, "theme_variables", {}).get(variable)
    if not color or color.startswith("auto"):
        return Style(bold=bold)
    return Style(color=color, bold=bold)


def ts(moment: datetime | None) -> str:
    """An absolute time, always UTC: operators compare it with logs from other machines."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            whole = int(seconds // size)
            rest = int((seconds % size) // (size / (24 if unit == "d" else 60)))
            sub = {"d": "h", "h": "m", "m": "s"}[unit]
            return f"{whole}{unit}{rest}{sub}" if rest and whole < 10 else f"{whole}{unit}"
    return f"{int(seconds)}s"


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (now - moment).total_seconds()
    return f"in {duration(seconds)}" if seconds < 0 else f"{duration(seconds)} ago"


def state_word(job: Job) -> str:
    return "stale" if job.stale and job.state is JobState.LOCKED else job.state.value


def state_text(app: Any, job: Job) -> Text:
    word = state_word(job)
    text = Text(word, style=theme_style(app, STATE_COLOR.get(word, "foreground"), bold=word in ("failed", "stale")))
    if job.undecodable:
        text.append(" ?", style=theme_style(app, "text-error", bold=True))
    return text


def short(value: Any, width: int) -> str:
    """One line of at most `width` cells; values are JSON so that strings show their quotes."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def when(job: Job, now: datetime) -> str:
    """The one moment that matters for a job in its state."""
    if job.state is JobState.FAILED:
        return ago(job.failed_at, now)
    if job.state is JobState.LOCKED:
        return f"locked {ago(job.locked_at, now)}"
    if job.state is JobState.FINISHED:
        return ago(job.finished_at, now)
    return ago(job.run_at, now)


def args_of(job: Job) -> str:
    if job.undecodable:
        return f"undecodable: {job.undecodable}"
    if job.kwargs:
        return short({"args": job.args, "kwargs": job.kwargs}, 200)
    return short(job.args, 200)


def plain(text: str | None) -> Text:
    """Text shown verbatim: tracebacks and payloads contain brackets that are not markup."""
    return Text(text or "")
