"""An error group's page: its pattern, counts, first and last failure, sample job, and its exact
variants (the messages as they were), with retry and delete of the whole group through the
confirmation page. The list of groups is `monitor.errors`."""

from __future__ import annotations

from flask import render_template, request

from qadmin.web.actions import parse_filter
from qadmin.web.pages.blueprint import bp
from qadmin.web.state import get_ops


@bp.get("/errors/<fingerprint>")
def error_group(fingerprint: str) -> str:
    ops = get_ops()
    within = parse_filter(ops, request.args)
    group = ops.redaction.error_groups([ops.error_group.group(fingerprint, within)])[0]
    params = {k: v for k, v in within.to_params().items() if k in ("queue", "class")}
    return render_template("qadmin/error_group.html", g=group, now=ops.clock(), params=params)
