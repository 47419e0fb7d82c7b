"""Who may use the dashboard: users of `qadmin.toml`, a trusted proxy's user, or else one password
or a random token printed at start-up.

With `[users.NAME]` tables, each person logs in with their name and password (checked against
their slow hash) and scripts send their own API token; the role is the user's. Without users,
the dashboard has one secret, described below, and whoever knows it is an admin (as before
roles existed: existing setups keep working). A trusted reverse proxy's user header
(qadmin.web.proxy) works with either. Who the request is, and the role check every request then
passes, are qadmin.web.access's.

Every page, API call and `/metrics` needs authentication, reads included: job payloads carry
customer data, and "loopback only" still means every local user and every local process.
A browser logs in once (a signed session cookie); scripts and Prometheus send
`Authorization: Bearer <password or token>` on each request.

The secret is either the configured password (`QADMIN_WEB_PASSWORD` or `[web] password`) or,
without one, a random token made at start-up and printed once as a login URL, as notebook
servers do; it lives only in memory and dies with the process. Neither is ever logged.
Wrong guesses are throttled per client address and in total (`Throttle`), with one budget for
the login form and another for bearer tokens.

The login form is for people: once its budget is spent, even the right password waits for the
window to pass, so a guesser never learns which guess was right. A bearer token is for scripts
and Prometheus, which must not be locked out by another client on the same address (a
misconfigured scraper, another local user): a right token is always accepted, and only wrong
ones count and are refused (429 once the budget is spent). That leaves a guesser unthrottled
against the bearer secret, so the secret must be unguessable: the start-up token has 192 random
bits, and a configured password is accepted as a bearer token only when it is strong
(`password_problem`); a weaker one still logs in through the form.

Logging out ends the session on the server too: each login gets a random id kept in
`Auth.sessions`, checked on every request, and dropped at logout, so a copied cookie dies
with it (and with a restart of the server).

The rest of this note is about the one shared secret.

This module is the checks each request passes and the login and logout pages; the state they
keep (`Auth`, `Throttle`, `LiveSessions`, `password_problem`) is qadmin.web.credentials'.
"""

from __future__ import annotations

import logging
from typing import NoReturn
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from qadmin.access import MAX_NAME, Role
from qadmin.text import visible
from qadmin.web.access import Identity
from qadmin.web.credentials import Auth as Auth  # create_app builds its Auth from here
from qadmin.web.proxy import client_address, header_groups, header_name
from qadmin.web.state import web_state

log = logging.getLogger("qadmin.web")

bp = Blueprint("auth", __name__)

#: endpoints reachable without logging in
PUBLIC_ENDPOINTS = frozenset({"auth.login", "auth.logout", "static"})


def _client() -> str:
    return request.remote_addr or "unknown"


def _recorded(auth: Auth) -> str:
    """The client's address as the audit records it: through a trusted proxy, the proxy's client
    (qadmin.web.proxy.client_address); else the connection's peer. Throttles count the peer."""
    peer = _client()
    if auth.proxy is not None and auth.proxy.trusts(peer):
        return client_address(request.headers.get("X-Forwarded-For"), peer)
    return peer


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate() -> None:
    """Run before every request: find who is asking (`g.qadmin_identity`, qadmin.web.access), or
    answer 401 / send the browser to login.

    In order: a bearer token (the shared secret's, or a user's API token), a trusted proxy's user
    header (qadmin.web.proxy), the session's login. Sets `g.via_bearer` when the request carried
    a valid bearer token: such a request cannot be forged by another site (browsers never add
    that header on their own), so it needs no CSRF token.
    """
    g.via_bearer = False
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    auth = web_state().auth
    presented = _bearer()
    if presented is not None:
        g.qadmin_identity = _bearer_identity(auth, presented)
        g.via_bearer = True
        return
    identity = _proxied(auth) or _session_identity(auth)
    if identity is not None:
        g.qadmin_identity = identity
        return
    if _wants_json():
        _unauthorised("log in first, or send Authorization: Bearer <token>")
    abort(redirect(url_for("auth.login", next=request.full_path.rstrip("?"))))


def _bearer_identity(auth: Auth, presented: str) -> Identity:
    """The identity of a bearer token, or an abort: 401, or 429 once wrong ones used the budget."""
    client = _client()
    refused = auth.bearer_refused
    # the right token first: wrong guesses from this address never lock it out
    if auth.users:
        user = auth.bearer_user(presented)
        if user is not None:
            return Identity(user.name, user.role, "bearer", _recorded(auth))
    elif refused is None and auth.check(presented):
        return Identity("api", Role.ADMIN, "shared", _recorded(auth))
    wait = auth.bearer_throttle.retry_after(client)
    if wait > 0:
        # neither recorded nor logged: a flood of guesses must not grow memory or the log
        _too_many(wait)
    auth.bearer_throttle.failed(client)
    log.warning("rejected bearer token from %s", client)
    _unauthorised(f"bearer tokens are refused: {refused}" if refused else "invalid bearer token")


def _proxied(auth: Auth) -> Identity | None:
    """The user a trusted proxy names in its header; None without the header, or when the request
    did not come from a trusted proxy (the header is then ignored, and logged once per address)."""
    proxy = auth.proxy
    if proxy is None:
        return None
    raw = request.headers.get(proxy.user_header)
    if raw is None:
        return None
    peer = _client()
    if not proxy.trusts(peer):
        if auth.note_untrusted(peer):
            log.warning("ignored %s from %s, which is not one of trusted_proxies", proxy.user_header, peer)
        return None
    name = header_name(raw)
    if name is None:
        log.warning("ignored %s from %s: not a usable name", proxy.user_header, peer)
        return None
    groups = header_groups(request.headers.get(proxy.groups_header)) if proxy.groups_header else []
    role = proxy.role_of(name, groups, auth.users)
    if role is None:
        abort(403, description=f"{name} has no role here: no group of theirs is in [web] proxy_roles")
    return Identity(name, role, "proxy", _recorded(auth))


def _session_identity(auth: Auth) -> Identity | None:
    """The identity of the session's login, or None. A user's role is read from the users each
    time, so that a session never outlives the user's entry."""
    if not logged_in():
        return None
    name = str(session.get("user") or "web")
    if session.get("kind") == "user":
        user = auth.users.get(name)
        return Identity(user.name, user.role, "user", _recorded(auth)) if user is not None else None
    if auth.users:
        return None  # the shared secret logs nobody in once there are users
    return Identity(name, Role.ADMIN, "shared", _recorded(auth))


def logged_in() -> bool:
    """Whether this request's session is logged in and has not logged out since."""
    return bool(session.get("auth")) and web_state().auth.sessions.alive(session.get("sid"))


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics" or request.blueprint == "api"


def _unauthorised(message: str) -> NoReturn:
    from flask import jsonify

    response = jsonify({"error": {"type": "Unauthorized", "message": message}})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="qadmin"'
    abort(response)


def _too_many(wait: float) -> NoReturn:
    from flask import jsonify

    message = f"too many failed attempts; try again in {int(wait) + 1} s"
    if _wants_json():
        response = jsonify({"error": {"type": "TooManyRequests", "message": message}})
    else:
        response = current_app.make_response(
            (
                render_template("qadmin/login.html", error=message, next=safe_next(request.values.get("next"))),
                429,
            )
        )
    response.status_code = 429
    response.headers["Retry-After"] = str(int(wait) + 1)
    abort(response)


def safe_next(target: str | None) -> str:
    """Only a path of this app: an absolute or scheme-relative URL would make login an open
    redirect."""
    # a control character (a CR or LF would split the Location header) or a lone surrogate: home
    if not target or visible(target) != target:
        return url_for("pages.overview")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pages.overview")
    return target


def _login(user: str, kind: str = "shared") -> None:
    # a fresh session, so that nothing from before the login (a planted id) carries over
    session.clear()
    session.permanent = True
    session["auth"] = True
    session["user"] = user
    # "user": a [users.NAME], whose role is looked up on each request; "shared": the one password
    session["kind"] = kind
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    session["sid"] = web_state().auth.sessions.start(lifetime)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    auth = web_state().auth
    target = safe_next(request.values.get("next"))
    # the login URL carries the start-up token; a password never travels in a URL
    token = request.args.get("token") if request.method == "GET" and auth.mode == "token" else None
    if request.method == "GET" and not token:
        if logged_in():
            return redirect(target)
        return render_template("qadmin/login.html", next=target, error=None, mode=auth.mode)
    client = _client()
    wait = auth.throttle.retry_after(client)
    if wait > 0:
        _too_many(wait)
    if auth.mode == "users":
        return _login_user(auth, client, target)
    secret = token if token else request.form.get("password", "")
    if not auth.check(secret):
        auth.throttle.failed(client)
        log.warning("failed login from %s", client)
        return render_template("qadmin/login.html", next=target, error="Wrong password or token.", mode=auth.mode), 401
    auth.throttle.succeeded(client)
    # shown in the header and written to the audit log: printable text only
    typed = request.form.get("name") or ""
    name = "".join(c for c in typed if c.isprintable()).strip()[:40] or "web"
    _login(name)
    log.info("login from %s as %s", client, name)
    # a redirect, so that the token leaves the address bar at once
    return redirect(target, code=303)


def _login_user(auth: Auth, client: str, target: str) -> ResponseReturnValue:
    """The login form of `[users.NAME]`: a name and that user's password."""
    name = (request.form.get("name") or "").strip()
    user = auth.check_user(name, request.form.get("password") or "")
    if user is None:
        auth.throttle.failed(client)
        log.warning("failed login from %s as %s", client, visible(name[:MAX_NAME]))
        return render_template("qadmin/login.html", next=target, error="Wrong name or password.", mode=auth.mode), 401
    auth.throttle.succeeded(client)
    _login(user.name, kind="user")
    log.info("login from %s as %s (%s)", client, user.name, user.role.label)
    return redirect(target, code=303)


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    # the cookie dies on the server too: a copy of it is refused from now on
    web_state().auth.sessions.end(session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login"), code=303)
