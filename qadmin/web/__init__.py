"""The web dashboard: `create_app(ops=None, config=None, settings=None)` builds the Flask app.

The app reads and acts only through `qadmin.ops.Ops` objects handed to it (the CLI's `serve`
and the tests are the composition roots). Without `ops` or `QADMIN_BACKENDS`, it opens the
backends `settings` name (by default those the CLI would: `qadmin.settings.resolve`, with the
config file QADMIN_CONFIG names). Settings of the app, all optional, in `config`:

    QADMIN_BACKENDS          {name: Ops or a function returning an Ops} for the switcher;
                             without it, `ops` is the one backend ("default")
    QADMIN_DEFAULT_BACKEND   the name used when a session has not chosen one
    QADMIN_PASSWORD          the login password (else a random start-up token is made)
    QADMIN_LOGIN_TOKEN       the start-up token (made here when neither is given)
    QADMIN_USERS             qadmin.access.User entries (`[users.NAME]`): each logs in as
                             themselves, with their role; the password and token are then unused
    QADMIN_PROXY             a trusted reverse proxy's headers (qadmin.web.proxy.ProxySettings)
    QADMIN_READ_ONLY         hide and refuse (403) every action
    QADMIN_REFRESH           seconds between live refreshes of the overview and workers (0: off)
    QADMIN_PREVIEW_TTL       seconds a confirmation page stays valid (default 600)
    QADMIN_STATS_TTL         seconds the pages share one reading of the counts (default 3; 0:
                             read on every view). The JSON API and /metrics always read afresh
    QADMIN_LIST_TTL          seconds concurrent views of the same jobs page share one page of
                             rows (default 1; 0: read on every view)
    QADMIN_ALERTS            the alert rules (`qadmin.alert_rules.AlertConfig`) /api/alerts and the
                             overview show; checked by a thread when they say "web" (web.alert_thread)
    QADMIN_ALLOWED_HOSTS     names the `Host` header may give besides IP addresses and localhost (and those
                             of QADMIN_WEB_ALLOWED_HOSTS); "*" allows any (qadmin.web.hosts)
    SECRET_KEY               signs sessions and CSRF tokens; random per process by default, so
                             a restart logs everyone out

Security, in one place: the `Host` header checked before anything else (`_check_host`),
authentication before every view but login (`auth.authenticate`), 403 for any change asked
by a role that may not act (`access.enforce_role`), a CSRF token on every POST from a browser
session (Flask-WTF), 403 for actions when read-only (`pages.mutating`), and the response headers
of `_security_headers`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, g, jsonify, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from qadmin.errors import (
    BackendUnavailable,
    ConfigError,
    ErrorGroupNotFound,
    InvalidTransition,
    JobNotFound,
    LiveHolders,
    MissingTable,
    QadminError,
    ScheduleNotFound,
    UsageError,
)
from qadmin.ops import Ops, open_ops
from qadmin.settings import Settings, resolve
from qadmin.web.snapshot import DEFAULT_LIST_TTL, DEFAULT_TTL, Snapshots, listing_cache
from qadmin.web.state import Backends, PreviewStore, WebState
from qadmin.web.templating import STATIC_MAX_AGE

log = logging.getLogger("qadmin.web")

#: HTTP status of each error an ops call may raise; the first matching class wins
STATUS: tuple[tuple[type[QadminError], int], ...] = (
    (JobNotFound, 404),
    (ScheduleNotFound, 404),
    (ErrorGroupNotFound, 404),
    (InvalidTransition, 409),
    (LiveHolders, 409),
    (UsageError, 400),
    (ConfigError, 400),
    (BackendUnavailable, 503),
    (MissingTable, 503),
)

#: scripts and styles only from our own static files: no inline script can run, whatever a
#: payload contains
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def create_app(
    ops: Ops | None = None, config: Mapping[str, Any] | None = None, *, settings: Settings | None = None
) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_NAME="qadmin_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # 12 hours from the login, not from the last view: a page that refreshes itself does not
        # keep a forgotten tab logged in forever, and a read writes no cookie
        SESSION_REFRESH_EACH_REQUEST=False,
        # a dashboard stays open for hours; the token is still bound to the session
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        # checked in _guard after authentication, so that bearer requests can skip it
        WTF_CSRF_CHECK_DEFAULT=False,
        QADMIN_READ_ONLY=False,
        QADMIN_REFRESH=5,
        QADMIN_PREVIEW_TTL=600,
        QADMIN_STATS_TTL=DEFAULT_TTL,
        QADMIN_LIST_TTL=DEFAULT_LIST_TTL,
        QADMIN_PASSWORD=None,
        QADMIN_LOGIN_TOKEN=None,
        QADMIN_USERS=(),
        QADMIN_PROXY=None,
        QADMIN_ALLOWED_HOSTS=(),
        SEND_FILE_MAX_AGE_DEFAULT=STATIC_MAX_AGE,
    )
    if config:
        app.config.update(config)

    from qadmin.web.auth import Auth

    users = {user.name: user for user in app.config["QADMIN_USERS"]}
    password = None if users else (app.config["QADMIN_PASSWORD"] or None)
    token = None if password or users else (app.config["QADMIN_LOGIN_TOKEN"] or secrets.token_urlsafe(24))
    app.config["QADMIN_LOGIN_TOKEN"] = token
    app.session_interface = _Sessions()
    app.extensions["qadmin"] = WebState(
        backends=_backends(ops, app.config, settings),
        previews=PreviewStore(ttl=float(app.config["QADMIN_PREVIEW_TTL"])),
        auth=Auth(password=password, token=token, users=users, proxy=app.config["QADMIN_PROXY"]),
        snapshots=Snapshots(ttl=float(app.config["QADMIN_STATS_TTL"])),
        listings=listing_cache(float(app.config["QADMIN_LIST_TTL"])),
    )
    csrf = CSRFProtect(app)

    from qadmin.web import access, api, api_alerts, api_insight, api_recurring, auth, hosts, metrics, pages
    from qadmin.web.alert_thread import start_alert_thread
    from qadmin.web.templating import install

    allowed_hosts = hosts.normalise([*app.config["QADMIN_ALLOWED_HOSTS"], *hosts.from_env()])

    @app.before_request
    def _check_host() -> Any:
        # before authentication, so that a rebinding page cannot even reach the login throttle
        name = hosts.host_name(request.host)
        if not hosts.allowed(name, allowed_hosts):
            log.warning("refused a request for host %r from %s", name[:100], request.remote_addr)
            return _error_response(
                400,
                "BadHost",
                f"this dashboard does not answer to the host name {name[:100]!r}: add it with "
                f"qadmin web --allowed-host, [web] allowed_hosts or {hosts.ALLOWED_HOSTS_ENV}",
            )
        return None

    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp, url_prefix="/api")
    app.register_blueprint(api_recurring.bp, url_prefix="/api")
    app.register_blueprint(api_alerts.bp, url_prefix="/api")
    app.register_blueprint(api_insight.bp, url_prefix="/api")
    app.register_blueprint(metrics.bp)
    install(app)

    @app.before_request
    def _guard() -> None:
        if request.endpoint is None:
            return  # a 404 or 405: nothing to protect
        auth.authenticate()
        # before the CSRF check, so that a viewer hears why, whatever the form held
        access.enforce_role()
        if not g.via_bearer:
            csrf.protect()

    app.after_request(_security_headers)
    app.register_error_handler(QadminError, _qadmin_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    start_alert_thread(app, app.extensions["qadmin"].backends, app.config.get("QADMIN_ALERTS"))
    return app


def _backends(ops: Ops | None, config: Mapping[str, Any], settings: Settings | None) -> Backends:
    sources = dict(config.get("QADMIN_BACKENDS") or {})
    default = config.get("QADMIN_DEFAULT_BACKEND")
    if ops is not None:
        name = default or next((n for n, s in sources.items() if s is ops), "default")
        sources.setdefault(name, ops)
        default = name
    if not sources:
        # `flask --app qadmin.web run`: the backend the CLI would pick, and the config file's others
        chosen = settings if settings is not None else resolve(config_file=config.get("QADMIN_CONFIG"))
        for entry in chosen.backends.values():
            sources[entry.name] = opener(entry.url, entry.table, entry.namespace)
        name = chosen.backend_name or "default"
        sources.setdefault(name, lambda: open_ops(chosen, face="web"))
        default = default or name
    return Backends(sources, default or next(iter(sources)))


def opener(url: str, table: str | None = None, namespace: str = "resque") -> Callable[[], Ops]:
    """A function that opens this backend when the switcher first needs it."""
    settings = Settings(url=url, table=table, namespace=namespace)
    return lambda: open_ops(settings, face="web")


class _Sessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, with the signer made once per key rather than on every
    request (Flask's own makes one even for a request without a cookie)."""

    _made: tuple[Any, Any] | None = None

    def get_signing_serializer(self, app: Flask) -> Any:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        made = self._made
        if made is None or made[0] != keys:
            made = self._made = (keys, super().get_signing_serializer(app))
        return made[1]


SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    # same-origin rather than no-referrer: Flask-WTF checks the referrer on HTTPS
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def _security_headers(response: Any) -> Any:
    headers = response.headers
    # each unless the view set its own; one pass over the headers, not one per header
    present = {name.lower() for name in headers.keys()}
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    if request.endpoint != "static":
        headers["Cache-Control"] = "no-store"
    return response


def wants_json() -> bool:
    return request.blueprint in ("api", "metrics") or request.path.startswith("/api/")


def error_status(exc: QadminError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _qadmin_error(exc: QadminError) -> Any:
    status = error_status(exc)
    if status >= 500:
        log.warning("%s on %s %s: %s", type(exc).__name__, request.method, request.path, exc)
    return _error_response(status, type(exc).__name__, exc.message)


def _csrf_error(exc: CSRFError) -> Any:
    return _error_response(400, "CSRFError", f"{exc.description} Reload the page and try again.")


def _http_error(exc: HTTPException) -> Any:
    if exc.response is not None:
        return exc.response  # an abort() with a ready response (auth, throttle)
    name = (exc.name or "Error").replace(" ", "")
    response = current_app.make_response(_error_response(exc.code or 500, name, exc.description or exc.name or "error"))
    # what the exception's own answer says besides its body: a 405's Allow, a 401's WWW-Authenticate
    for key, value in exc.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


def _error_response(status: int, kind: str, message: str) -> Any:
    if wants_json():
        return jsonify({"error": {"type": kind, "message": message, "status": status}}), status
    return render_template("qadmin/error.html", status=status, kind=kind, message=message), status
