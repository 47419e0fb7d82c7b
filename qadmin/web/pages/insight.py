"""The insight pages, read from the history workers record (`ops.insight`): "History" (runs,
runtimes and queue latency over 1 h, 24 h, 7 d or 30 d, narrowed to a queue or a class) and
"Metrics" (each job class over a window, sortable by every column). Both refresh themselves like
the overview: one context function feeds the page and its partial."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, render_template, request, url_for
from markupsafe import Markup

from qadmin.filters import last_component
from qadmin.insight import RANGES, TREND_POINTS, ClassMetrics, HistorySeries
from qadmin.web import history_charts
from qadmin.web.history_charts import Slot, duration
from qadmin.web.insight_params import parse_name, parse_range, parse_sort
from qadmin.web.pages.blueprint import bp
from qadmin.web.pages.readings import class_names, jobs_url, queue_names
from qadmin.web.state import backend_name, web_state

#: the sort a column's first click asks for: names ascending, numbers largest first
ASCENDING_FIRST = ("class",)
#: seconds between live refreshes by range, at least the dashboard's own: a month's hour buckets
#: change slowly, and reading them costs more
REFRESH_FLOOR = {"1h": 0, "24h": 15, "7d": 60, "30d": 60}
#: what each range is called in a sentence
RANGE_WORDS = {"1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}


# --- a class by its last part ------------------------------------------------------------------
def resolve_class(typed: str | None, known: list[str]) -> str | None:
    """The full class name for what the operator typed: the history stores full names, the jobs
    page's inputs accept a name's last part too ("SendEmail"), so the last part of exactly one
    known class selects it."""
    if typed is None:
        return None
    full = {name for name in known if last_component(name) != name and last_component(name) == typed}
    return full.pop() if len(full) == 1 else typed


# --- History -------------------------------------------------------------------------------------
def history_context() -> dict[str, Any]:
    span = parse_range(request.args.get("range"))
    queue = parse_name(request.args.get("queue"), "queue")
    typed = parse_name(request.args.get("class"), "class")
    job_class = resolve_class(typed, class_names())
    name = backend_name()
    ops = web_state().backends.get(name)

    def read() -> tuple[tuple[HistorySeries, dict[str, HistorySeries]], datetime]:
        # a read of a month's buckets costs: each view reads what it needs once. Latency is the
        # queue's, whichever class waited; the unnarrowed history is the queues' added up
        now = ops.clock()
        if queue is not None:
            series = ops.insight.history(span, queue=queue, job_class=job_class)
            whole = series if job_class is None else ops.insight.history(span, queue=queue)
            return (series, {queue: whole}), now
        per_queue = ops.insight.by_queue(span)
        if job_class is None and per_queue:
            return (history_charts.combined(list(per_queue.values())), per_queue), now
        return (ops.insight.history(span, job_class=job_class), per_queue), now

    reading = web_state().snapshots.get(name, ("history", span, queue, job_class), read)
    # the charts are worked out once per reading, however many browsers refresh the page
    made = reading.derive(("history page", typed), lambda: _charts(reading.value, span, queue, typed))
    return {**made, "job_class": job_class, "now": reading.as_of, "refresh": _refresh(span)}


def _charts(
    value: tuple[HistorySeries, dict[str, HistorySeries]], span: str, queue: str | None, typed: str | None
) -> dict[str, Any]:
    series, per_queue = value
    rows = history_charts.slots(series)
    everything = Slot(start=series.since, end=series.until)
    for point in series.points:
        everything.add(point)
    latency = []
    for name_, queue_series in sorted(per_queue.items()):
        queue_rows = history_charts.slots(queue_series)
        if any(s.latency is not None for s in queue_rows):
            latency.append(
                {
                    "queue": name_,
                    "chart": history_charts.lines(
                        queue_series,
                        queue_rows,
                        {"latency": lambda s: s.latency},
                        lambda s: f"longest wait {duration(s.latency)}",
                        height=110,
                        most_ticks=4,
                    ),
                    "worst": max(s.latency for s in queue_rows if s.latency is not None),
                }
            )
    narrowing = {k: v for k, v in (("queue", queue), ("class", typed)) if v}
    size = rows[0].end - rows[0].start
    return {
        "range": span,
        "ranges": list(RANGES),
        "range_urls": {r: _url("pages.history", {"range": r, **narrowing}) for r in RANGES},
        "partial_url": _url("pages.history_partial", {"range": span, **narrowing}),
        "range_words": RANGE_WORDS[span],
        "slot_words": slot_words(size),
        "duration": duration,
        "queue": queue,
        "typed_class": typed,
        "total": everything,
        "runs_chart": history_charts.bars(series, rows),
        "runtime_chart": history_charts.lines(
            series,
            rows,
            {"p50": lambda s: s.p50, "p95": lambda s: s.p95},
            lambda s: f"p50 {duration(s.p50)}, p95 {duration(s.p95)} ({s.runs} runs)",
        ),
        "latency": latency,
    }


def _url(endpoint: str, values: dict[str, Any]) -> str:
    return url_for(endpoint, **values)


def slot_words(size: timedelta) -> str:
    minutes = int(size.total_seconds() // 60)
    if minutes == 1:
        return "per minute"
    if minutes < 60:
        return f"per {minutes} minutes"
    if minutes == 60:
        return "per hour"
    if minutes < 1440:
        return f"per {minutes // 60} hours"
    return "per day" if minutes == 1440 else f"per {minutes // 1440} days"


def _refresh(span: str) -> int:
    seconds = int(current_app.config["QADMIN_REFRESH"] or 0)
    return max(seconds, REFRESH_FLOOR.get(span, 60)) if seconds else 0


@bp.get("/history")
def history() -> str:
    context = history_context()
    body = Markup(render_template("qadmin/partials/history_body.html", **context))
    return render_template(
        "qadmin/history.html", body=body, queue_names=queue_names(), class_names=class_names(), **context
    )


@bp.get("/partials/history")
def history_partial() -> str:
    return render_template("qadmin/partials/history_body.html", **history_context())


# --- Metrics -------------------------------------------------------------------------------------
def metrics_context() -> dict[str, Any]:
    window = parse_range(request.args.get("window"), "window")
    sort = parse_sort(request.args.get("sort"))
    queue = parse_name(request.args.get("queue"), "queue")
    name = backend_name()
    ops = web_state().backends.get(name)

    def read() -> tuple[list[ClassMetrics], datetime]:
        now = ops.clock()
        return ops.insight.class_metrics(window, sort=sort, queue=queue), now

    reading = web_state().snapshots.get(name, ("class metrics", window, sort, queue), read)
    keep = {k: v for k, v in (("window", window), ("queue", queue)) if v}
    by_queue = {"queue": queue} if queue else {}
    return {
        "window": window,
        "windows": list(RANGES),
        "window_urls": {w: _url("pages.class_metrics", {"window": w, "sort": sort, **by_queue}) for w in RANGES},
        "partial_url": _url("pages.class_metrics_partial", {**keep, "sort": sort}),
        "clear_url": url_for("pages.class_metrics", window=window, sort=sort),
        "window_words": RANGE_WORDS[window],
        "sort": sort,
        "queue": queue,
        "rows": [_metrics_row(m, window) for m in reading.value],
        "columns": [_column(key, label, sort, keep) for key, label in COLUMNS],
        "now": reading.as_of,
        "refresh": _refresh(window),
    }


#: the table's columns: the sort key each header asks for, and its heading
COLUMNS = (
    ("class", "class"),
    ("runs", "runs"),
    ("failed", "failed"),
    ("failure_rate", "failure rate"),
    ("p50", "p50"),
    ("p95", "p95"),
    ("p99", "p99"),
    ("mean", "mean"),
)


def _column(key: str, label: str, sort: str, keep: dict[str, str]) -> dict[str, Any]:
    """A header: its link sorts by the column, and again reverses the order."""
    current = sort.removeprefix("-") == key
    descending = sort.startswith("-")
    if current:
        wanted = key if descending else f"-{key}"
    else:
        wanted = key if key in ASCENDING_FIRST else f"-{key}"
    return {
        "key": key,
        "label": label,
        "sort": wanted,
        "aria": ("descending" if descending else "ascending") if current else None,
        "numeric": key != "class",
        "url": _url("pages.class_metrics", {**keep, "sort": wanted}),
    }


def _metrics_row(m: ClassMetrics, window: str) -> dict[str, Any]:
    return {
        "class": m.job_class,
        "history_url": _url("pages.history", {"range": window, "class": m.job_class}),
        "jobs_url": jobs_url({"class": m.job_class}),
        # a long dotted name breaks at its dots on a narrow screen
        "parts": re.split(r"(?<=[.:\\])(?=[^.:\\])", m.job_class),
        "runs": m.runs,
        "failed": m.failed,
        "retried": m.retried,
        "failure_rate": m.failure_rate,
        "p50": duration(m.p50),
        "p95": duration(m.p95),
        "p99": duration(m.p99),
        "mean": duration(m.mean),
        "queues": m.queues,
        "rate_trend": rate_trend(m.failure_rate_change),
        "runs_trend": runs_trend(m.runs_change),
    }


def rate_trend(change: float | None) -> dict[str, str] | None:
    """The failure rate's trend against the window before: up is bad (red), down good (green)."""
    if change is None:
        return None
    text = f"{change * 100:+.1f} pt"
    if abs(change) < TREND_POINTS:
        # a change that rounds to nothing is no change, whichever side of zero it fell
        return {"arrow": "→", "text": "±0.0 pt" if text[1:] == "0.0 pt" else text, "kind": "flat"}
    if change > 0:
        return {"arrow": "▲", "text": text, "kind": "bad"}
    return {"arrow": "▼", "text": text, "kind": "good"}


def runs_trend(ratio: float | None) -> dict[str, str]:
    """The runs against the window before (a ratio): neither good nor bad, only which way."""
    if ratio is None:
        return {"arrow": "✦", "text": "new", "kind": "new"}
    percent = (ratio - 1) * 100
    if abs(percent) < 5:
        return {"arrow": "→", "text": f"{percent:+.0f} %", "kind": "flat"}
    return {"arrow": "▲" if percent > 0 else "▼", "text": f"{percent:+.0f} %", "kind": "up" if percent > 0 else "down"}


@bp.get("/class-metrics")
def class_metrics() -> str:
    context = metrics_context()
    body = Markup(render_template("qadmin/partials/class_metrics_body.html", **context))
    return render_template("qadmin/class_metrics.html", body=body, queue_names=queue_names(), **context)


@bp.get("/partials/class-metrics")
def class_metrics_partial() -> str:
    return render_template("qadmin/partials/class_metrics_body.html", **metrics_context())
