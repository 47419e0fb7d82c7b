"""An alert's message POSTed to its webhook: Slack-compatible JSON (`text`, plus `blocks` that Slack
shows and other receivers ignore), sent with the standard library and a short timeout, so a webhook
that hangs holds the evaluator for seconds, not minutes. The URL's path is a secret (Slack's
is the credential itself): messages and logs name only its scheme and host (`safe_webhook`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from qadmin.alert_rules import FIRING, AlertRule, Incident, safe_webhook
from qadmin.errors import QadminError
from qadmin.job import iso

#: seconds a POST may take, connection included
TIMEOUT = 5.0

#: what sends a payload to a URL, raising WebhookError when it was not accepted (tests pass their own)
Sender = Callable[[str, dict[str, Any]], None]


class WebhookError(QadminError):
    """The webhook did not accept the message (unreachable, timed out, or not a 2xx)."""


def post_webhook(url: str, payload: dict[str, Any], timeout: float = TIMEOUT) -> None:
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "qadmin-alerts"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only (alert_rules)
            status = response.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"{safe_webhook(url)} answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookError(f"cannot reach {safe_webhook(url)}: {reason}") from None
    if not 200 <= status < 300:
        raise WebhookError(f"{safe_webhook(url)} answered {status}")


def message(rule: AlertRule, incident: Incident, kind: str, where: str) -> dict[str, Any]:
    """The Slack-compatible payload of an incident's firing or resolved message."""
    if kind == FIRING:
        headline = f":rotating_light: qadmin alert {rule.name} is firing: {incident.details}"
    else:
        headline = f":white_check_mark: qadmin alert {rule.name} resolved (open since {iso(incident.opened_at)})"
    context = f"rule: {rule.describe()} · backend: {where}"
    return {
        "text": f"{headline} ({context})",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
        "qadmin": {
            "rule": rule.name,
            "state": kind,
            "opened_at": iso(incident.opened_at),
            "resolved_at": iso(incident.resolved_at),
            "details": incident.details,
        },
    }
