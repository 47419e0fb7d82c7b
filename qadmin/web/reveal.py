"""Sensitive values on the dashboard and in the API (`qadmin.redaction`): redacted for everyone,
in full only for an admin who asks — the job page's "Reveal" button (a POST with its CSRF token)
or `GET /api/jobs/<id>?reveal=1` — and every reveal is audited (verb "reveal").

`current_role` is the one place the request's role is read."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, request

from qadmin.access import Role
from qadmin.job import Job
from qadmin.ops import Ops
from qadmin.web import access
from qadmin.web.actions import flag


def current_role() -> Role:
    """The request's role (`qadmin.web.access`: a configured user's, a trusted proxy's, or admin
    for the holder of the one shared password or start-up token)."""
    return access.current_role()


def reveal_asked() -> bool:
    """Whether the API request asks for the values in full (`?reveal=1`); 403 unless an admin."""
    asked = flag(request.args.get("reveal"), "reveal")
    if asked:
        check_may_reveal()
    return asked


def may_reveal() -> bool:
    """An admin, on a dashboard that is not read-only (a reveal writes the audit log, and a
    read-only dashboard is one to show, not to act on)."""
    return current_role().may_reveal() and not current_app.config["QADMIN_READ_ONLY"]


def check_may_reveal() -> None:
    if not may_reveal():
        abort(403, description="Only an admin may reveal redacted values, on a dashboard that is not read-only.")


def page_context(ops: Ops, job: Job, *, revealed: bool) -> dict[str, Any]:
    """What the job page needs to offer (or note) the reveal."""
    return {
        "hidden": not revealed and ops.redaction.hides(job),
        "revealed": revealed,
        "may_reveal": may_reveal(),
    }
