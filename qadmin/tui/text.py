"""Formatting shared by the screens: times, states, short values, theme-aware styles.

Job data (names, arguments, errors, lock owners, raw payloads) is written by whoever can reach
the backend: it goes on screen only through `visible`, `short`, `cell` and `clip`, so that an
escape sequence is shown as its escape and never acted on, Rich markup is shown as the brackets
it is, and a 10 MB field costs what fits on screen, not 10 MB of rendering.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.style import Style
from rich.text import Text

from qadmin.job import Job, JobState
from qadmin.text import visible, visible_json

#: state word -> theme variable its text is drawn in (theme variables keep light themes readable);
#: red means failed and nothing else: a stale lock is a warning, bold
STATE_COLOR = {
    "pending": "text-primary",
    "scheduled": "text-secondary",
    "locked": "text-warning",
    "stale": "text-warning",
    "failed": "text-error",
    "finished": "text-success",
    "cancelled": "text-muted",
    "waiting": "text-secondary",
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
        text.append(" ?", style=theme_style(app, "text-warning", bold=True))
    return text


#: characters of one string, items of one list, shown in a job's detail before a truncation marker
DETAIL_STRING, DETAIL_ITEMS = 2000, 200
#: characters of a multi-line field (last error, raw payload) shown in a job's detail
DETAIL_TEXT = 20_000


def size_of(count: int) -> str:
    """A character count as an operator reads it (10.5M characters)."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("k", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


def truncated_marker(shown: int, total: int) -> str:
    return f"… truncated: {shown:,} of {total:,} characters shown (e exports the whole job to a file)"


def bounded(value: Any, string: int = DETAIL_STRING, items: int = DETAIL_ITEMS) -> Any:
    """A copy of `value` (decoded JSON) whose long strings and lists end in a truncation marker:
    what is shown of a job, never what is sent back to the backend."""
    if isinstance(value, str):
        if len(value) <= string:
            return value
        return value[:string] + f" …[+{len(value) - string:,} characters, {size_of(len(value))} in all]"
    if isinstance(value, (list, tuple)):
        head = [bounded(v, string, items) for v in value[:items]]
        if len(value) > items:
            head.append(f"…[+{len(value) - items:,} more items]")
        return head
    if isinstance(value, dict):
        out = {}
        for index, (key, v) in enumerate(value.items()):
            if index == items:
                out["…"] = f"[+{len(value) - items:,} more keys]"
                break
            out[bounded(key, string, items) if isinstance(key, str) else key] = bounded(v, string, items)
        return out
    return value


def compact(value: Any, string: int = DETAIL_STRING) -> str:
    """`value` as one line of JSON (strings keep their quotes), long strings and lists cut."""
    try:
        return json.dumps(bounded(value, string), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)[: string * 2]


def json_text(value: Any, indent: int | None) -> str:
    """JSON for a job's detail: long values cut, controls escaped the JSON way (`\\u009b`)."""
    return visible_json(json.dumps(bounded(value), ensure_ascii=False, indent=indent, default=str))


def short(value: Any, width: int) -> str:
    """One line of at most `width` cells, controls escaped; values are JSON so that strings show
    their quotes. Only the head of a long value is read."""
    text = value if isinstance(value, str) else compact(value, width + 16)
    head = text[: width * 4 + 16]
    line = visible(" ".join(head.split()))
    if len(line) <= width and len(head) == len(text):
        return line
    return line[: max(width - 1, 0)] + "…"


def names(values: Any) -> str:
    """A list of names (queues, classes) as one line, whatever another program stored in it."""
    if isinstance(values, str):
        return values
    try:
        return ", ".join("—" if value is None else str(value) for value in values)
    except TypeError:
        return str(values)


def cell(value: Any, width: int = 200, style: Style | str = "") -> Text:
    """A table cell: `short`, never read as markup, and cut with an ellipsis by a narrower column."""
    return Text(short(value, width), style=style, no_wrap=True, overflow="ellipsis")


def clip(text: Any, limit: int = DETAIL_TEXT, *, lines: bool = True, style: Style | str = "") -> Text:
    """A field of a job's detail shown verbatim (brackets are not markup, controls escaped), its
    first `limit` characters and a marker with the full size when there is more."""
    text = "" if text is None else text if isinstance(text, str) else str(text)
    out = Text(visible(text[:limit], lines=lines), style=style)
    if len(text) > limit:
        out.append(f"\n{truncated_marker(limit, len(text))}", style="bold")
    return out


def when(job: Job, now: datetime) -> str:
    """The one moment that matters for a job in its state."""
    if job.state is JobState.FAILED:
        return ago(job.failed_at, now)
    if job.state is JobState.LOCKED:
        return f"locked {ago(job.locked_at, now)}"
    if job.state in (JobState.FINISHED, JobState.CANCELLED):
        return ago(job.finished_at, now)
    return ago(job.run_at, now)


def args_of(job: Job) -> str:
    if job.undecodable:
        return short(f"undecodable: {job.undecodable}", 200)
    if job.kwargs:
        return short({"args": job.args, "kwargs": job.kwargs}, 200)
    return short(job.args, 200)
