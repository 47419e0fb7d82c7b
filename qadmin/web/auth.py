"""Who may use the dashboard: a password, or a random token printed at start-up.

Every page, API call and `/metrics` needs authentication, reads included: job payloads carry
customer data, and "loopback only" still means every local user and every local process.
A browser logs in once (a signed session cookie); scripts and Prometheus send
`Authorization: Bearer <password or token>` on each request.

The secret is either the configured password (`QADMIN_WEB_PASSWORD` or `[web] password`) or,
without one, a random token made at start-up and printed once as a login URL, as notebook
servers do; it lives only in memory and dies with the process. Neither is ever logged.
Wrong guesses are throttled per client address and in total (`Throttle`), with one budget for
the login form and another for bearer tokens: someone mistyping (or guessing) the password in a
browser never locks out Prometheus or a script that sends the right token, and a guesser gains
at most the second budget by switching to bearer headers.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for

from qadmin.web.state import web_state

log = logging.getLogger("qadmin.web")

bp = Blueprint("auth", __name__)

#: endpoints reachable without logging in
PUBLIC_ENDPOINTS = frozenset({"auth.login", "auth.logout", "static"})


class Throttle:
    """At most `per_client` failed attempts per client address, and `overall` in total, within
    `window` seconds. The overall ceiling stops a guesser with many addresses, at the price of
    locking everyone out for a while under such an attack, which is the safe side."""

    def __init__(
        self,
        per_client: int = 5,
        overall: int = 50,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client, self.overall, self.window = per_client, overall, window
        self._clock = clock
        self._clients: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may try now."""
        with self._lock:
            now = self._clock()
            self._trim(now)
            waits = [0.0]
            mine = self._clients.get(client)
            if mine is not None and len(mine) >= self.per_client:
                waits.append(mine[0] + self.window - now)
            if len(self._all) >= self.overall:
                waits.append(self._all[0] + self.window - now)
            return max(waits)

    def failed(self, client: str) -> None:
        with self._lock:
            now = self._clock()
            self._clients.setdefault(client, deque()).append(now)
            self._all.append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _trim(self, now: float) -> None:
        cutoff = now - self.window
        while self._all and self._all[0] <= cutoff:
            self._all.popleft()
        for client in list(self._clients):
            times = self._clients[client]
            while times and times[0] <= cutoff:
                times.popleft()
            if not times:
                del self._clients[client]


@dataclass
class Auth:
    #: the configured password, or None
    password: str | None
    #: the start-up token, used when no password is configured
    token: str | None
    #: failed logins (the form, or a login URL's token)
    throttle: Throttle = field(default_factory=Throttle)
    #: failed bearer tokens
    bearer_throttle: Throttle = field(default_factory=Throttle)

    @property
    def mode(self) -> str:
        return "password" if self.password else "token"

    def check(self, candidate: str | None) -> bool:
        """Constant-time comparison with whichever secret is configured."""
        if not candidate:
            return False
        secret = self.password or self.token
        if not secret:
            return False
        return hmac.compare_digest(candidate.encode("utf-8"), secret.encode("utf-8"))


def _client() -> str:
    return request.remote_addr or "unknown"


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate() -> None:
    """Run before every request: let it through, or answer 401 / send the browser to login.

    Sets `g.via_bearer` when the request carried a valid bearer token: such a request cannot be
    forged by another site (browsers never add that header on their own), so it needs no CSRF
    token.
    """
    g.via_bearer = False
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    auth: Auth = web_state().auth
    presented = _bearer()
    if presented is not None:
        client = _client()
        wait = auth.bearer_throttle.retry_after(client)
        if wait > 0:
            _too_many(wait)
        if auth.check(presented):
            auth.bearer_throttle.succeeded(client)
            g.via_bearer = True
            g.bearer_user = "api"
            return
        auth.bearer_throttle.failed(client)
        log.warning("rejected bearer token from %s", client)
        _unauthorised("invalid bearer token")
    if session.get("auth"):
        return
    if _wants_json():
        _unauthorised("log in first, or send Authorization: Bearer <token>")
    abort(redirect(url_for("auth.login", next=request.full_path.rstrip("?"))))


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics" or request.blueprint == "api"


def _unauthorised(message: str) -> None:
    from flask import jsonify

    response = jsonify({"error": {"type": "Unauthorized", "message": message}})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="qadmin"'
    abort(response)


def _too_many(wait: float) -> None:
    from flask import jsonify

    message = f"too many failed attempts; try again in {int(wait) + 1} s"
    if _wants_json():
        response = jsonify({"error": {"type": "TooManyRequests", "message": message}})
    else:
        response = current_app.make_response(
            (
                render_template(
                    "qadmin/login.html", error=message, next=safe_next(request.values.get("next"))
                ),
                429,
            )
        )
    response.status_code = 429
    response.headers["Retry-After"] = str(int(wait) + 1)
    abort(response)


def safe_next(target: str | None) -> str:
    """Only a path of this app: an absolute or scheme-relative URL would make login an open
    redirect."""
    if not target:
        return url_for("pages.overview")
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return url_for("pages.overview")
    return target


def _login(user: str) -> None:
    # a fresh session, so that nothing from before the login (a planted id) carries over
    session.clear()
    session.permanent = True
    session["auth"] = True
    session["user"] = user


@bp.route("/login", methods=["GET", "POST"])
def login():
    auth: Auth = web_state().auth
    target = safe_next(request.values.get("next"))
    # the login URL carries the start-up token; a password never travels in a URL
    token = request.args.get("token") if request.method == "GET" and auth.mode == "token" else None
    if request.method == "GET" and not token:
        if session.get("auth"):
            return redirect(target)
        return render_template("qadmin/login.html", next=target, error=None, mode=auth.mode)
    client = _client()
    wait = auth.throttle.retry_after(client)
    if wait > 0:
        _too_many(wait)
    secret = token if token else request.form.get("password", "")
    if not auth.check(secret):
        auth.throttle.failed(client)
        log.warning("failed login from %s", client)
        return render_template(
            "qadmin/login.html", next=target, error="Wrong password or token.", mode=auth.mode
        ), 401
    auth.throttle.succeeded(client)
    name = (request.form.get("name") or "").strip()[:40] or "web"
    _login(name)
    log.info("login from %s as %s", client, name)
    # a redirect, so that the token leaves the address bar at once
    return redirect(target, code=303)


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("auth.login"), code=303)
