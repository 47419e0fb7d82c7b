"""Blueprint "api": JSON under /api, the same JSON as the CLI's `--json`.

Listings are GETs; every change is a POST (a JSON object or form fields) that needs a bearer
token, or a session cookie plus the CSRF token in an `X-CSRFToken` header. Bulk verbs work in
one step with `dry_run` like the CLI (`POST /api/retry`), or in the dashboard's two steps:
`POST /api/previews` freezes the matching ids and answers a token, `POST
/api/previews/<token>/apply` acts on exactly those. The description is at /api/openapi.json.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.blueprints import BlueprintSetupState
from werkzeug.datastructures import MultiDict
from werkzeug.routing import PathConverter

from qadmin.config import parse_duration
from qadmin.errors import ConfigError, UsageError
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState
from qadmin.ops import Ops, Preview, alive_warning
from qadmin.web.actions import (
    act_on_one,
    check_bulk,
    check_text,
    flag,
    listed_dict,
    listed_sample,
    mutating,
    parse_filter,
    parse_limit,
    parse_sort,
    preview,
    show_dict,
    stats_dict,
)
from qadmin.web.job_edit import edit_from
from qadmin.web.new_job import enqueue_from
from qadmin.web.report_back import report_back_from
from qadmin.web.reveal import reveal_asked
from qadmin.web.state import QueueChange, backend_name, get_ops, web_state

bp = Blueprint("api", __name__)


class JobIdConverter(PathConverter):
    """A job id in a path: any text, slashes included (a Redis id holds its queue's name), but
    not ending in one of a job's verbs, so that `/api/jobs/1/retry` names the action alone (a GET
    of it is 405, and its OPTIONS lists only POST)."""

    regex = r"[^/].*?(?<!/retry)(?<!/delete)(?<!/unlock)(?<!/run-now)(?<!/kill)(?<!/edit)(?<!/cancel)(?<!/complete)(?<!/fail)"


@bp.record_once
def _converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["job_id"] = JobIdConverter


def _body() -> MultiDict[str, Any] | dict[str, Any]:
    """A POST's parameters: a JSON object, or form fields."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise UsageError("the request body must be a JSON object")
        check_text(data, "the request body")
        return data
    return request.form


# --- listings ----------------------------------------------------------------------------------
@bp.get("/stats")
def stats() -> Response:
    return jsonify(stats_dict(get_ops().stats()))


@bp.get("/queues")
def queues() -> Response:
    return jsonify([q.to_dict() for q in get_ops().queues()])


@bp.get("/workers")
def workers() -> Response:
    return jsonify([w.to_dict() for w in get_ops().workers()])


@bp.get("/errors")
def errors() -> Response:
    ops = get_ops()
    selection = parse_filter(ops, request.args).with_states(JobState.FAILED)
    groups = ops.redaction.error_groups(ops.error_groups(selection, limit=parse_limit(request.args.get("limit"), 50)))
    return jsonify([g.to_dict() for g in groups])


@bp.get("/audit")
def audit() -> Response:
    ops = get_ops()
    entries = ops.redaction.audit(
        ops.audit(limit=parse_limit(request.args.get("limit"), 50), job_id=request.args.get("job") or None)
    )
    return jsonify([e.to_dict() for e in entries])


@bp.get("/jobs")
def jobs() -> Response:
    ops = get_ops()
    page = ops.list_jobs(
        parse_filter(ops, request.args),
        limit=parse_limit(request.args.get("limit")),
        cursor=request.args.get("cursor") or None,
        sort=parse_sort(request.args.get("sort")),
    )
    shown = ops.redaction.jobs(page.jobs)
    return jsonify({"jobs": [listed_dict(j) for j in shown], "next_cursor": page.next_cursor})


@bp.get("/jobs/<job_id:job_id>")
def job(job_id: str) -> Response:
    """Redacted (README: Sensitive arguments); `?reveal=1` in full, for an admin only, audited."""
    ops = get_ops()
    return jsonify(show_dict(ops, ops.show(job_id), reveal=reveal_asked()))


@bp.get("/backends")
def backends() -> Response:
    state = web_state()
    return jsonify({"backends": state.backends.names, "default": state.backends.default, "current": backend_name()})


@bp.get("/openapi.json")
def openapi() -> Response:
    from qadmin.web.openapi import spec

    return jsonify(spec())


# --- one job -----------------------------------------------------------------------------------
@bp.post("/jobs")
@mutating
def enqueue() -> tuple[Response, int]:
    ops = get_ops()
    job = enqueue_from(ops, _body())
    return jsonify(show_dict(ops, job)), 201


@bp.post("/jobs/<job_id:job_id>/<any(retry, delete, unlock, kill, cancel):verb>")
@mutating
def job_action(job_id: str, verb: str) -> Response:
    force = flag(_body().get("force"), "force")
    ops = get_ops()
    done = act_on_one(ops, verb, job_id, force=force)
    return jsonify((ops.redaction.job(done) if isinstance(done, Job) else done).to_dict())


# spelt as the CLI spells it (werkzeug's any() takes no hyphen): a route of its own
@bp.post("/jobs/<job_id:job_id>/run-now")
@mutating
def job_run_now(job_id: str) -> Response:
    return jsonify(act_on_one(get_ops(), "run_now", job_id).to_dict())


@bp.post("/jobs/<job_id:job_id>/edit")
@mutating
def job_edit(job_id: str) -> Response:
    """New values for one job (`qadmin edit --json`): the fields given change, the others stay."""
    ops = get_ops()
    return jsonify(ops.redaction.edit_document(edit_from(ops, job_id, _body())))


@bp.post("/jobs/<job_id:job_id>/<any(complete, fail):verb>")
@mutating
def job_report_back(job_id: str, verb: str) -> Response:
    """The external service's verdict on a waiting job (`qadmin complete` / `qadmin fail`)."""
    return jsonify(report_back_from(get_ops(), verb, job_id, _body()))


# --- bulk verbs, one step (like the CLI) ---------------------------------------------------------
@bp.post("/run-now")
@mutating
def bulk_run_now() -> Response:
    return _bulk("run_now")


@bp.post("/<any(retry, delete, dequeue, unlock, kill, cancel):verb>")
@mutating
def bulk(verb: str) -> Response:
    return _bulk(verb)


def _bulk(verb: str) -> Response:
    ops = get_ops()
    body = _body()
    selection = parse_filter(ops, body)
    dry_run = flag(body.get("dry_run"), "dry_run")
    force = flag(body.get("force"), "force")
    if verb == "unlock" and body.get("older_than") not in (None, ""):
        if isinstance(body["older_than"], (bool, dict, list)):
            raise UsageError("older_than must be a duration such as 30m or 2h, or seconds")
        try:
            older_than = parse_duration(body["older_than"])
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        if selection.is_empty and not selection.stale_only:
            selection = JobFilter(states=frozenset({JobState.LOCKED}))
        frozen = ops.unlock_preview(selection, older_than=older_than)
    else:
        check_bulk(verb, selection)
        frozen = ops.preview(verb, selection)
    frozen = ops.redaction.sampled(frozen)  # a dry run shows the sample; the ids are acted on
    if verb == "unlock" and not (dry_run or force):
        ops.refuse_live_holders(frozen)
    result = ops.apply(frozen, dry_run=dry_run)
    return jsonify(listed_sample(result.to_dict(), result.sample))


# --- bulk verbs, two steps (like the dashboard) --------------------------------------------------
@bp.post("/previews")
@mutating
def create_preview() -> tuple[Response, int]:
    ops = get_ops()
    body = _body()
    verb = str(body.get("verb") or "")
    frozen = preview(ops, verb, parse_filter(ops, body))
    store = web_state().previews
    token = store.put(frozen, backend_name(), "/")
    return jsonify(
        {
            "token": token,
            "expires_in": int(store.ttl),
            "backend": backend_name(),
            **listed_sample(frozen.to_dict(), frozen.sample),
            **_live_holders(ops, frozen),
        }
    ), 201


def _live_holders(ops: Ops, frozen: Preview) -> dict[str, Any]:
    """An unlock preview says how many of its jobs a live worker holds, and what that means."""
    alive = ops.alive_holders(frozen)
    return {"alive": alive, "warning": alive_warning(alive, frozen.count)} if alive else {}


@bp.get("/previews/<token>")
def show_preview(token: str) -> Response:
    stored = web_state().previews.get(token)
    found = stored.preview
    sample = getattr(found, "sample", [])  # a page's queue change has none
    return jsonify({"token": token, "backend": stored.backend, **listed_sample(found.to_dict(), sample)})


@bp.post("/previews/<token>/apply")
@mutating
def apply_preview(token: str) -> Response:
    stored = web_state().previews.take(token)
    if isinstance(stored.preview, QueueChange):  # a page's queue change: the queue action's answer
        change = stored.preview
        ops = get_ops(stored.backend)
        changed = ops.pause(change.queue) if change.verb == "pause" else ops.resume(change.queue)
        return jsonify({"queue": change.queue, "paused": change.verb == "pause", "changed": changed})
    return jsonify(get_ops(stored.backend).apply(stored.preview).to_dict())


# --- queues ------------------------------------------------------------------------------------
@bp.post("/queues/<path:queue>/<any(pause, resume):verb>")
@mutating
def queue_action(queue: str, verb: str) -> Response:
    ops = get_ops()
    changed = ops.pause(queue) if verb == "pause" else ops.resume(queue)
    return jsonify({"queue": queue, "paused": verb == "pause", "changed": changed})


# --- retention ---------------------------------------------------------------------------------
@bp.post("/prune")
@mutating
def prune() -> Response:
    """`qadmin prune`: failed jobs, finished records and dead workers past their retention
    (`older_than` replaces the retention of both kinds of job); `dry_run` in the body or the
    query string counts and changes nothing."""
    body = _body()
    dry_run = flag(body.get("dry_run"), "dry_run") or flag(request.args.get("dry_run"), "dry_run")
    older_than = body.get("older_than")
    if older_than in (None, ""):
        older_than = None
    elif isinstance(older_than, (bool, dict, list)):
        raise UsageError("older_than must be a duration such as 30d or 12h, or seconds")
    else:
        try:
            older_than = parse_duration(older_than)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
    return jsonify(get_ops().prune(older_than, dry_run=dry_run).to_dict())
