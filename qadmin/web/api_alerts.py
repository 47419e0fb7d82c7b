"""The alerts in the JSON API (`GET /api/alerts`: the rules of `[alerts]` evaluated now and the
open incidents, as `qadmin alerts --json` gives them) and the overview's banner of open incidents
(`open_alerts()`, a template global). The rules are the app's `QADMIN_ALERTS` (an `AlertConfig`;
`qadmin web` passes qadmin.toml's)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify

from qadmin.alert_rules import AlertConfig, Incident
from qadmin.errors import QadminError
from qadmin.web.state import get_ops

log = logging.getLogger("qadmin.web")

bp = Blueprint("api_alerts", __name__)


def alert_config() -> AlertConfig:
    config = current_app.config.get("QADMIN_ALERTS")
    return config if isinstance(config, AlertConfig) else AlertConfig()


@bp.get("/alerts")
def alerts() -> Response:
    ops = get_ops()
    states = ops.alerts.evaluate(alert_config())
    return jsonify(
        {"rules": [s.to_dict() for s in states], "incidents": [i.to_dict() for i in ops.alerts.open_incidents()]}
    )


@bp.app_template_global("open_alerts")
def open_alerts() -> list[Incident]:
    """The open incidents the overview shows until they resolve: none read where no rule is
    configured, and none shown (rather than an error page) when the backend cannot say."""
    if not alert_config().rules:
        return []
    try:
        return get_ops().alerts.open_incidents()
    except QadminError as exc:
        log.warning("open alert incidents not shown: %s", exc)
        return []
