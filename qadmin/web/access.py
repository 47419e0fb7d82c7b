"""Who is asking, and what they may do: the one role check every request passes.

`qadmin.web.auth.authenticate` finds the request's `Identity` (a user logged in by name, the
shared password's or token's holder, a bearer token's user, a trusted proxy's user) before any
view runs; `enforce_role` then refuses with 403 every request that may change data from a role
that may not act. The rule is keyed on the route, not on each view remembering to check:

- GET, HEAD and OPTIONS read, unless the view is marked `mutating` (qadmin.web.actions);
- every other method changes data, except the routes in `READING_POSTS`.

So a route added later is guarded the day it is added; tests/faces/web/test_web_access.py walks
`app.url_map` and tries every one as a viewer.

Other code asks `current_role()` (e.g. `current_role().may_reveal()` before showing a redacted
value in full), `current_user()` for a name, or `actions_allowed()` for whether to show the
buttons of actions (the dashboard's read-only mode counts too).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, current_app, g, request

from qadmin.access import Role

#: the methods that read (a view marked `mutating` changes data whatever its method)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: POST routes that change no data, open to every role: logging out, and choosing which backend
#: this browser looks at (a preference kept in its session)
READING_POSTS = frozenset({"auth.logout", "pages.switch_backend"})


@dataclass(frozen=True)
class Identity:
    """The person or script behind a request."""

    name: str
    role: Role
    #: how they proved it: "user" (a [users.NAME] password), "shared" (the dashboard's one password
    #: or start-up token), "bearer" (a user's API token), "proxy" (a trusted proxy's header)
    source: str
    #: the client's address as the audit records it (through a trusted proxy: the proxy's client)
    address: str

    @property
    def named(self) -> bool:
        """Whether the name is vouched for (configured, or a proxy's) rather than typed at login:
        the audit then records the role beside it."""
        return self.source != "shared"

    @property
    def can_log_out(self) -> bool:
        """A proxy's user is logged in on every request by the proxy; only it can log them out."""
        return self.source in ("user", "shared")


def current_identity() -> Identity | None:
    """This request's identity; None before authentication or on a public page (login, static)."""
    identity: Identity | None = g.get("qadmin_identity")
    return identity


def current_user() -> str | None:
    identity = current_identity()
    return identity.name if identity is not None else None


def current_role() -> Role:
    """This request's role; the weakest when nobody is authenticated (a public page)."""
    identity = current_identity()
    return identity.role if identity is not None else Role.VIEWER


def actions_allowed() -> bool:
    """Whether this request may act: its role may, and the dashboard is not read-only. Pages show
    the buttons of actions only then (the server refuses them either way)."""
    return not current_app.config["QADMIN_READ_ONLY"] and current_role().may_act()


def changes_data() -> bool:
    """Whether this request's route may change data (the rule above)."""
    if request.endpoint in READING_POSTS:
        return False
    if request.method not in SAFE_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "qadmin_mutating", False))


def enforce_role() -> None:
    """Run after authentication, before any view: 403 when this role may not make this change."""
    role = current_role()
    if role.may_act() or current_identity() is None or not changes_data():
        return
    abort(
        403,
        description=(
            f"{current_user()} is a {role.label}: a viewer may read everything and change nothing. "
            "Ask an admin for the operator role."
        ),
    )
