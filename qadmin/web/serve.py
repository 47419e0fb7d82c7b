"""`qadmin web`: the dashboard served by waitress (the default) or granian (`--server granian`).

Waitress because it is a production WSGI server in pure Python: no C build, runs the same on
Linux, macOS and Windows, serves requests from a thread pool (so a slow backend call does not
block other users), and buffers slow clients itself. gunicorn would need a fork-based setup
and does not run on Windows; Flask's own server is for development only.

Granian (an optional dependency) parses HTTP and handles the connections in Rust, outside
Python's lock, and calls the same WSGI app from its own pool of threads: a view then costs about
half the CPU it costs under waitress, whose HTTP parsing, socket loop and thread hand-off are
Python (profiles: `python -m bench.profile web`, and py-spy on a serving process). It runs the
app in one worker process of its own, which builds the app from plain settings (`AppSpec`);
the parent only supervises. One worker, never more: the login and bearer throttles, the shared
readings and the start-up token live in that process, so an attacker cannot multiply the
throttles' budgets by reaching another process.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

from qadmin.config import Config
from qadmin.errors import ConfigError
from qadmin.ops import Ops, open_ops
from qadmin.settings import Settings
from qadmin.web.alert_thread import stop_alert_thread
from qadmin.web.credentials import password_problem
from qadmin.web.proxy import read_proxy

if TYPE_CHECKING:
    from flask import Flask

#: where the password may come from, besides `[web] password` in qadmin.toml
PASSWORD_ENV = "QADMIN_WEB_PASSWORD"
#: request threads: enough for a team's browsers plus a Prometheus scrape
THREADS = 8
#: the servers `qadmin web --server` offers; the first is the default
SERVERS = ("waitress", "granian")
#: seconds the server waits for the dashboard's first counts before it serves (`warm_up`); a
#: bigger queue is served sooner and its first views wait for the rest of that one reading
WARM_UP_WAIT = 10.0


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address."""
    if host in ("", "*"):
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]).is_loopback for info in infos)


@dataclass
class Server:
    """A waitress server bound to its port, not yet serving: `run()` blocks, `close()` stops
    it from any thread."""

    app: Flask
    #: waitress' server (waitress has no type information)
    waitress: Any
    url: str
    login_url: str | None
    _running: threading.Event = field(default_factory=threading.Event)
    _closed: bool = False

    def run(self) -> None:
        # connections wait in the listening socket's backlog meanwhile, then find the counts read
        warming = threading.Thread(target=warm_up, args=(self.app,), daemon=True, name="qadmin-web-warm-up")
        warming.start()
        warming.join(WARM_UP_WAIT)
        self._running.set()
        try:
            self.waitress.run()
        finally:
            self._running.clear()

    def _in_loop(self, action: Callable[[], None]) -> None:
        done = threading.Event()

        def run_then_signal() -> None:
            try:
                action()
            finally:
                done.set()

        self.waitress.trigger.pull_trigger(run_then_signal)
        done.wait(10)

    def close(self) -> None:
        """Stop serving and close the backends (again: nothing happens)."""
        if self._closed:
            return
        self._closed = True
        server = self.waitress
        channels = getattr(server, "_map", None) or getattr(server, "map", {})

        def stop_accepting() -> None:
            # the listening socket only: the trigger must stay to run close_rest() later
            _close_dispatcher(server)

        def close_rest() -> None:
            # run()'s loop ends when no channel is left
            server.trigger.close()
            while channels:
                for channel in list(channels.values()):
                    channel.handle_close()

        if self._running.is_set():
            # sockets belong to the loop's thread (closing them under its select() breaks it),
            # and requests in flight finish before their connections close
            self._in_loop(stop_accepting)
            server.task_dispatcher.shutdown()
            self._in_loop(close_rest)
        else:
            stop_accepting()
            close_rest()
            server.task_dispatcher.shutdown()
        stop_alert_thread(self.app)
        self.app.extensions["qadmin"].backends.close()


def warm_up(app: Flask) -> None:
    """What the first views would otherwise each wait for, done once as the server starts: the
    templates compiled, and the dashboard's counts (a full `stats()`, a second or more on a big
    SQLite queue) read into the shared reading of the default backend."""
    try:
        for name in app.jinja_env.list_templates():
            if name.startswith("qadmin/"):
                app.jinja_env.get_template(name)
        from qadmin.web.pages.readings import dashboard

        with app.test_request_context("/"):
            dashboard()
    except Exception:
        # the first view reads again and shows the error where someone sees it
        logging.getLogger("qadmin.web").debug("warming up failed", exc_info=True)


def _close_dispatcher(dispatcher: Any) -> None:
    from waitress import wasyncore

    wasyncore.dispatcher.close(dispatcher)


def build(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8080,
    read_only: bool = False,
    threads: int = THREADS,
    server: str = SERVERS[0],
    allowed_hosts: Sequence[str] = (),
) -> Server | GranianServer:
    """The app and its bound server, from the CLI's settings (the backend, the config file)."""
    if server not in SERVERS:
        raise ConfigError(f"unknown server {server!r}; expected one of: {', '.join(SERVERS)}")
    config = settings.config
    password = _password(config)
    users = config.users
    if users and password:
        raise ConfigError(
            f"both [users] and a shared password ([web] password or {PASSWORD_ENV}) are set: with users, "
            "each logs in with their own password; remove the shared one"
        )
    proxy = read_proxy(config.web, config.path)
    if not is_loopback(host) and not users:
        if not password:
            raise ConfigError(
                f"refusing to listen on {host}, which is not a loopback address, without a password: "
                f"set {PASSWORD_ENV} or [web] password in qadmin.toml (or use --host 127.0.0.1)"
            )
        weak = password_problem(password)
        if weak:
            raise ConfigError(f"refusing to listen on {host}, which is not a loopback address: {weak}")
    app_config: dict[str, Any] = {
        "QADMIN_READ_ONLY": read_only,
        "QADMIN_PASSWORD": password or None,
        "QADMIN_ALLOWED_HOSTS": tuple(host_names(host, allowed_hosts, config)),
        "QADMIN_ALERTS": config.alerts,
        "QADMIN_USERS": users,
        "QADMIN_PROXY": proxy,
    }
    if config.web.get("secret_key"):
        app_config["SECRET_KEY"] = str(config.web["secret_key"])
    if "refresh" in config.web:
        from qadmin.config import parse_duration

        app_config["QADMIN_REFRESH"] = parse_duration(config.web["refresh"])
    if server == "granian":
        return _build_granian(settings, app_config, host, port, threads)
    sources, default = _backends(settings)
    from qadmin.web import create_app

    app = create_app(config={**app_config, "QADMIN_BACKENDS": sources, "QADMIN_DEFAULT_BACKEND": default})

    import waitress

    try:
        waitress_server = waitress.create_server(app, host=host, port=port, threads=threads, ident="qadmin")
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = getattr(waitress_server, "effective_port", port)
    url = _url(host, bound)
    token = app.config["QADMIN_LOGIN_TOKEN"]
    login_url = f"{url}login?token={token}" if token else None
    return Server(app=app, waitress=waitress_server, url=url, login_url=login_url)


def host_names(host: str, extra: Sequence[str], config: Config) -> list[str]:
    """The `Host` names the dashboard answers to besides IP addresses and localhost (qadmin.web.hosts): the
    address it listens on, this machine's own names when that is every address, the command
    line's `--allowed-host`s and `[web] allowed_hosts`."""
    configured = config.web.get("allowed_hosts", [])
    if isinstance(configured, str):
        configured = [configured]
    if not isinstance(configured, list) or not all(isinstance(n, str) for n in configured):
        raise ConfigError(f"{config.path}: [web] allowed_hosts must be a list of host names")
    names = [*extra, *configured]
    if host in ("", "0.0.0.0", "::", "[::]", "*"):
        names += [socket.gethostname(), socket.getfqdn()]
    else:
        names.append(host)
    return names


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


@dataclass(frozen=True)
class AppSpec:
    """All a serving process needs to build the app itself: plain values, which a worker started
    by spawn (macOS, Windows) receives pickled. The secret key and the start-up token are made
    by the parent, so that the login URL it prints is the one the worker accepts."""

    #: (name, url, table, namespace) of each backend of the switcher (a URL may hold a password)
    sources: tuple[tuple[str, str, str | None, str], ...] = field(repr=False)
    default: str
    #: create_app's settings; never in a repr, as they hold the password and the secret key
    config: tuple[tuple[str, Any], ...] = field(repr=False)

    def make_app(self) -> Flask:
        from qadmin.web import create_app, opener

        sources = {name: opener(url, table, namespace) for name, url, table, namespace in self.sources}
        return create_app(
            config={**dict(self.config), "QADMIN_BACKENDS": sources, "QADMIN_DEFAULT_BACKEND": self.default}
        )


def _granian_app(spec: AppSpec) -> Flask:
    """The app of granian's worker process, warmed up before the worker serves (for at most
    `WARM_UP_WAIT`, as under waitress)."""
    app = spec.make_app()
    warming = threading.Thread(target=warm_up, args=(app,), daemon=True, name="qadmin-web-warm-up")
    warming.start()
    warming.join(WARM_UP_WAIT)
    return app


@dataclass
class GranianServer:
    """granian's supervising process: `run()` blocks in the main thread (granian sets signal
    handlers) until interrupted or `close()`d; the app runs in its worker process."""

    granian: Any
    spec: AppSpec
    url: str
    login_url: str | None

    def run(self) -> None:
        self.granian.serve(target_loader=partial(_granian_app, self.spec), wrap_loader=False)

    def close(self) -> None:
        # what granian's own SIGINT handler does: the serve loop ends and stops the worker
        self.granian.interrupt_signal = True
        self.granian.main_loop_interrupt.set()


def _build_granian(settings: Settings, app_config: dict[str, Any], host: str, port: int, threads: int) -> GranianServer:
    try:
        from granian import Granian
        from granian.constants import Interfaces
        from granian.log import LogLevels
    except ImportError:
        raise ConfigError("--server granian needs granian: pip install granian") from None
    sources, name = _backend_entries(settings)
    # a bad URL fails here, before anything listens; the worker opens its own connections (none
    # of this process's may cross a fork)
    current = open_ops(settings, face="web")
    try:
        current.backend.check()
    finally:
        current.close()
    app_config.setdefault("SECRET_KEY", secrets.token_hex(32))
    token = None if app_config["QADMIN_PASSWORD"] or app_config["QADMIN_USERS"] else secrets.token_urlsafe(24)
    app_config["QADMIN_LOGIN_TOKEN"] = token
    spec = AppSpec(sources=tuple(sources), default=name, config=tuple(app_config.items()))
    if port == 0:
        raise ConfigError("--server granian needs a port number (0 is not supported)")
    _check_free(host, port)
    granian = Granian(
        "qadmin.web",  # a name for its logs and process title: the app comes from _granian_app
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=1,
        blocking_threads=threads,
        # granian warns that 8 threads are many for 2 cores: they are for slow backend calls
        log_level=LogLevels.error,
        log_access=False,
    )
    base = _url(host, port)
    return GranianServer(
        granian=granian, spec=spec, url=base, login_url=f"{base}login?token={token}" if token else None
    )


def _check_free(host: str, port: int) -> None:
    """A busy port as the same clear error waitress gives, before granian starts its worker
    (granian would only log it there)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host.strip("[]"), port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8080,
    read_only: bool = False,
    out: TextIO | None = None,
    server_name: str = SERVERS[0],
    allowed_hosts: Sequence[str] = (),
) -> None:
    """Serve until interrupted. Prints where to go; the start-up token only in the login URL
    on our own output, never into any log."""
    out = out or sys.stdout
    server = build(settings, host=host, port=port, read_only=read_only, server=server_name, allowed_hosts=allowed_hosts)
    # waitress logs "Serving on ..." itself; keep its logger at warnings and above
    logging.getLogger("waitress").setLevel(logging.WARNING)
    mode = " (read-only)" if read_only else ""
    print(f"qadmin web{mode} on {server.url}", file=out)
    if server.login_url:
        print(
            "No password is configured: open this URL to log in (the token is valid until qadmin web stops):",
            file=out,
        )
        print(f"    {server.login_url}", file=out)
        print(
            f"Set {PASSWORD_ENV} or [web] password in qadmin.toml to log in with a password instead.",
            file=out,
        )
    elif settings.config.users:
        print(f"Log in as one of the {len(settings.config.users)} users of {settings.config.path}.", file=out)
    else:
        print("Log in with the configured password (as an admin: configure [users] for roles).", file=out)
        weak = password_problem(_password(settings.config) or "")
        if weak:
            print(f"Scripts cannot use it as a bearer token: {weak}.", file=out)
    proxy = read_proxy(settings.config.web, settings.config.path)
    if proxy is not None:
        trusted = ", ".join(str(network) for network in proxy.trusted)
        print(f"{proxy.user_header} names the user on requests from {trusted} (and from nowhere else).", file=out)
    out.flush()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _password(config: Config) -> str | None:
    return os.environ.get(PASSWORD_ENV) or _config_password(config)


def _config_password(config: Config) -> str | None:
    value = config.web.get("password")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{config.path}: [web] password must be a string")
    return value


def _backend_entries(settings: Settings) -> tuple[list[tuple[str, str, str | None, str]], str]:
    """(name, url, table, namespace) of the switcher's backends, the command line's first, and
    its name: the one the command line chose, then every other named backend of the config file."""
    name = settings.backend_name
    if name is None:
        name = next((n for n, e in settings.backends.items() if e.url == settings.url), "default")
    entries = [(name, settings.url, settings.table, settings.namespace)]
    for entry in settings.backends.values():
        if entry.name != name:
            entries.append((entry.name, entry.url, entry.table, entry.namespace))
    return entries, name


def _backends(settings: Settings) -> tuple[dict[str, Ops | Callable[[], Ops]], str]:
    """The switcher's backends: the command line's opened now (so a bad URL fails before the
    server starts), the others opened when first chosen."""
    from qadmin.web import opener

    entries, name = _backend_entries(settings)
    current = open_ops(settings, face="web")
    try:
        current.backend.check()
    except BaseException:
        current.close()
        raise
    sources: dict[str, Ops | Callable[[], Ops]] = {name: current}
    for other, url, table, namespace in entries[1:]:
        sources[other] = opener(url, table, namespace)
    return sources, name
