"""`/metrics`: the numbers of `qadmin stats` in Prometheus' text exposition format (0.0.4).

Written by hand rather than with prometheus_client: a handful of gauges and counters read
fresh from the backend on each scrape, with no registry or process-global state to manage.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, Response

from qadmin.web.actions import oldest_age
from qadmin.web.state import backend_name, get_ops

bp = Blueprint("metrics", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: the window of the per-class lines
CLASS_WINDOW = "1h"


@bp.get("/metrics")
def metrics() -> Response:
    ops = get_ops()
    st = ops.stats()
    backend = backend_name()
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{_labels({'backend': backend, **labels})} {_value(value)}")

    family(
        "qadmin_jobs",
        "gauge",
        "Jobs per queue and state (stale locks also count as locked).",
        (({"queue": q, "state": s}, n) for q, counts in st.queues.items() for s, n in counts.items()),
    )
    family(
        "qadmin_queue_paused",
        "gauge",
        "1 when the queue is paused.",
        (({"queue": q}, 1 if q in st.paused else 0) for q in st.queues),
    )
    family("qadmin_processed_total", "counter", "Jobs run by workers, failures included.", [({}, st.processed)])
    family("qadmin_failed_total", "counter", "Job runs that raised.", [({}, st.failed)])
    family("qadmin_workers", "gauge", "Live workers.", [({}, st.workers)])
    family(
        "qadmin_jobs_rescued_total",
        "counter",
        "Jobs of dead qadmin workers given back by live workers.",
        [({}, st.rescued)],
    )
    family(
        "qadmin_unreadable",
        "gauge",
        "1 for each stored structure that cannot be read (a Redis key of the wrong type, a counter that is no number).",
        (({"key": key}, 1) for key in st.unreadable),
    )
    age = oldest_age(st, ops.clock())
    if age is None and st.totals().get("pending"):
        age = float("nan")  # pending jobs whose payloads carry no enqueue time (Resque's)
    family(
        "qadmin_oldest_pending_age_seconds",
        "gauge",
        "Seconds the oldest pending job has waited (0 when none is pending, NaN when unknown).",
        [({}, age or 0.0)],
    )
    # each job class of each queue over the last hour, from the history the workers record
    per_queue = {
        q: ops.insight.class_metrics(CLASS_WINDOW, queue=q)
        for q in sorted({q for m in ops.insight.class_metrics(CLASS_WINDOW) for q in m.queues})
    }
    classes = [(q, m) for q, ms in per_queue.items() for m in ms]
    family(
        "qadmin_class_runs",
        "gauge",
        f"Runs of the job class on the queue in the last {CLASS_WINDOW}, failures included.",
        (({"queue": q, "class": m.job_class}, m.runs) for q, m in classes),
    )
    family(
        "qadmin_class_failures",
        "gauge",
        f"Runs of the job class on the queue that failed in the last {CLASS_WINDOW} (retried or not).",
        (({"queue": q, "class": m.job_class}, m.failed + m.retried) for q, m in classes),
    )
    family(
        "qadmin_class_runtime_seconds",
        "gauge",
        f"Runtime quantiles of the job class on the queue in the last {CLASS_WINDOW} (from a histogram, within 5 %).",
        (
            ({"queue": q, "class": m.job_class, "quantile": quantile}, value)
            for q, m in classes
            for quantile, value in (("0.5", m.p50), ("0.95", m.p95), ("0.99", m.p99))
            if value is not None
        ),
    )
    return Response("\n".join(lines) + "\n", content_type=CONTENT_TYPE)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value: float) -> str:
    if value != value:
        return "NaN"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(round(float(value), 3))
