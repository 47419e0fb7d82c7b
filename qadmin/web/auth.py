"""Who may use the dashboard: a password, or a random token printed at start-up.

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
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import string
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from qadmin.text import visible
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
    #: the sessions logged in and not logged out
    sessions: LiveSessions = field(default_factory=lambda: LiveSessions())

    @property
    def mode(self) -> str:
        return "password" if self.password else "token"

    @property
    def bearer_refused(self) -> str | None:
        """Why the secret cannot serve as a bearer token (a weak password), or None."""
        return password_problem(self.password) if self.password else None

    def check(self, candidate: str | None) -> bool:
        """Constant-time comparison with whichever secret is configured."""
        if not candidate:
            return False
        secret = self.password or self.token
        if not secret:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "surrogatepass"), secret.encode("utf-8", "surrogatepass"))


#: the least a password must have to be guessed at no rate limit (bearer tokens) or to guard a
#: dashboard reachable from other hosts: this many characters...
MIN_PASSWORD_LENGTH = 12
#: ...this many different ones...
MIN_PASSWORD_DISTINCT = 6
#: ...and this many bits, counted as length x log2 of the alphabet its kinds of character span
MIN_PASSWORD_BITS = 64
#: the kinds of character, and how many of each there are
_ALPHABETS = (
    (frozenset(string.ascii_lowercase), 26),
    (frozenset(string.ascii_uppercase), 26),
    (frozenset(string.digits), 10),
    (frozenset(string.punctuation + " "), 33),
)


def password_problem(password: str) -> str | None:
    """What makes `password` too weak, in words for an error message; None when it is strong."""
    span = sum(size for chars, size in _ALPHABETS if any(c in chars for c in password))
    # any other character (accented, CJK, ...) counts as one of a large alphabet
    if any(not any(c in chars for chars, _ in _ALPHABETS) for c in password):
        span += 100
    bits = len(password) * math.log2(max(span, 2))
    if (
        len(password) >= MIN_PASSWORD_LENGTH
        and len(set(password)) >= MIN_PASSWORD_DISTINCT
        and bits >= MIN_PASSWORD_BITS
    ):
        return None
    return (
        f"the password is too weak ({len(password)} characters, about {int(bits)} bits): use at "
        f"least {MIN_PASSWORD_LENGTH} characters and {MIN_PASSWORD_BITS} bits, e.g. 16 letters and "
        f"digits, or python -c 'import secrets; print(secrets.token_urlsafe(18))'"
    )


class LiveSessions:
    """The ids of the sessions logged in, each until it expires or logs out. Beyond `capacity`
    the oldest login is forgotten (it must log in again)."""

    def __init__(self, capacity: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.capacity = capacity
        self._clock = clock
        self._items: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, lifetime: float) -> str:
        sid = secrets.token_urlsafe(18)
        with self._lock:
            self._items[sid] = self._clock() + lifetime
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return sid

    def alive(self, sid: object) -> bool:
        if not isinstance(sid, str):
            return False
        expires = self._items.get(sid)
        if expires is None:
            return False
        if expires <= self._clock():
            self.end(sid)
            return False
        return True

    def end(self, sid: object) -> None:
        if isinstance(sid, str):
            with self._lock:
                self._items.pop(sid, None)


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
        refused = auth.bearer_refused
        # the right token first: wrong guesses from this address never lock it out
        if refused is None and auth.check(presented):
            g.via_bearer = True
            g.bearer_user = "api"
            return
        wait = auth.bearer_throttle.retry_after(client)
        if wait > 0:
            # neither recorded nor logged: a flood of guesses must not grow memory or the log
            _too_many(wait)
        auth.bearer_throttle.failed(client)
        log.warning("rejected bearer token from %s", client)
        _unauthorised(f"bearer tokens are refused: {refused}" if refused else "invalid bearer token")
    if logged_in():
        return
    if _wants_json():
        _unauthorised("log in first, or send Authorization: Bearer <token>")
    abort(redirect(url_for("auth.login", next=request.full_path.rstrip("?"))))


def logged_in() -> bool:
    """Whether this request's session is logged in and has not logged out since."""
    return bool(session.get("auth")) and web_state().auth.sessions.alive(session.get("sid"))


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


def _login(user: str) -> None:
    # a fresh session, so that nothing from before the login (a planted id) carries over
    session.clear()
    session.permanent = True
    session["auth"] = True
    session["user"] = user
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    session["sid"] = web_state().auth.sessions.start(lifetime)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    auth: Auth = web_state().auth
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


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    # the cookie dies on the server too: a copy of it is refused from now on
    web_state().auth.sessions.end(session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login"), code=303)
