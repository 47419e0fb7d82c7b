"""History and class metrics in the JSON API: `/api/history` (one chart's series),
`/api/history/queues` (each queue's, for latency) and `/api/metrics` (each job class over a
window), in the shapes of `qadmin history --json` and `qadmin metrics --json`. Read afresh on every request, like the rest of the API; a blueprint of its own beside
`api`, under the same authentication."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from qadmin.web.insight_params import DEFAULT_RANGE, parse_name, parse_range, parse_sort
from qadmin.web.state import get_ops

bp = Blueprint("api_insight", __name__)


@bp.get("/history")
def history() -> Response:
    span = parse_range(request.args.get("range"))
    queue = parse_name(request.args.get("queue"), "queue")
    job_class = parse_name(request.args.get("class"), "class")
    return jsonify(get_ops().insight.history(span, queue=queue, job_class=job_class).to_dict())


@bp.get("/history/queues")
def history_by_queue() -> Response:
    span = parse_range(request.args.get("range"))
    found = get_ops().insight.by_queue(span)
    return jsonify({"range": span, "queues": {name: series.to_dict() for name, series in sorted(found.items())}})


@bp.get("/metrics")
def metrics() -> Response:
    """What `qadmin metrics --json` prints. The window is a range's name or, as on the command
    line, any duration (`90m`, `3d`): ops says what it takes."""
    window = parse_name(request.args.get("window"), "window") or DEFAULT_RANGE
    sort = parse_sort(request.args.get("sort"))
    queue = parse_name(request.args.get("queue"), "queue")
    found = get_ops().insight.class_metrics(window, sort=sort, queue=queue)
    return jsonify({"window": window, "sort": sort, "queue": queue, "classes": [m.to_dict() for m in found]})
