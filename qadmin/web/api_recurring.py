"""The recurring schedules in the JSON API, under /api/recurring: the list and one schedule as
`qadmin recurring --json` gives them, and enable, disable and run-now, each with `dry_run` (in
the body or the query string) like the other verbs. A blueprint of its own beside `api`, with
the same guards: a bearer token, or the session cookie plus the CSRF header, for every POST."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.blueprints import BlueprintSetupState
from werkzeug.datastructures import MultiDict
from werkzeug.routing import PathConverter

from qadmin.errors import UsageError
from qadmin.web.actions import check_text, flag, mutating
from qadmin.web.state import get_ops

bp = Blueprint("api_recurring", __name__)


class ScheduleNameConverter(PathConverter):
    """A schedule's name in a path: slashes allowed (a name may hold one), but not ending in one
    of the verbs, so that `/api/recurring/nightly/enable` names the action alone."""

    regex = r"[^/].*?(?<!/enable)(?<!/disable)(?<!/run-now)"


@bp.record_once
def _converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["schedule"] = ScheduleNameConverter


def _dry_run() -> bool:
    """`dry_run` from a JSON object, form fields or the query string."""
    body: MultiDict[str, Any] | dict[str, Any] = request.form
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise UsageError("the request body must be a JSON object")
        check_text(data, "the request body")
        body = data
    return flag(body.get("dry_run"), "dry_run") or flag(request.args.get("dry_run"), "dry_run")


@bp.get("/recurring")
def schedules() -> Response:
    ops = get_ops()
    now = ops.clock()
    return jsonify([entry.to_dict(now) for entry in ops.recurring.entries()])


@bp.get("/recurring/<schedule:name>")
def schedule(name: str) -> Response:
    ops = get_ops()
    return jsonify(ops.recurring.get(name).to_dict(ops.clock()))


@bp.post("/recurring/<schedule:name>/<any(enable, disable):verb>")
@mutating
def set_enabled(name: str, verb: str) -> Response:
    """Answers `qadmin recurring enable|disable --json`: the schedule as it is after the change
    (or would be, in a dry run)."""
    ops = get_ops()
    dry_run = _dry_run()
    entry = (
        ops.recurring.enable(name, dry_run=dry_run)
        if verb == "enable"
        else ops.recurring.disable(name, dry_run=dry_run)
    )
    return jsonify({"dry_run": dry_run, "verb": verb, "schedule": entry.to_dict(ops.clock())})


# spelt as the CLI spells it (werkzeug's any() takes no hyphen): a route of its own
@bp.post("/recurring/<schedule:name>/run-now")
@mutating
def run_now(name: str) -> Response:
    ops = get_ops()
    return jsonify(ops.recurring.run_now(name, dry_run=_dry_run()).to_dict(ops.clock()))
