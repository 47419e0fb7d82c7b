"""`qadmin web`: the dashboard served by waitress.

Waitress because it is a production WSGI server in pure Python: no C build, runs the same on
Linux, macOS and Windows, serves requests from a thread pool (so a slow backend call does not
block other users), and buffers slow clients itself. gunicorn would need a fork-based setup
and does not run on Windows; Flask's own server is for development only.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from qadmin.config import Config, load_config
from qadmin.errors import ConfigError
from qadmin.ops import Ops

#: where the password may come from, besides `[web] password` in qadmin.toml
PASSWORD_ENV = "QADMIN_WEB_PASSWORD"
#: request threads: enough for a team's browsers plus a Prometheus scrape
THREADS = 8
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
    return bool(infos) and all(
        ipaddress.ip_address(info[4][0].split("%", 1)[0]).is_loopback for info in infos
    )


@dataclass
class Server:
    """A waitress server bound to its port, not yet serving: `run()` blocks, `close()` stops
    it from any thread."""

    app: Any
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
        self.app.extensions["qadmin"].backends.close()


def warm_up(app: Any) -> None:
    """What the first views would otherwise each wait for, done once as the server starts: the
    templates compiled, and the dashboard's counts (a full `stats()`, a second or more on a big
    SQLite queue) read into the shared reading of the default backend."""
    try:
        for name in app.jinja_env.list_templates():
            if name.startswith("qadmin/"):
                app.jinja_env.get_template(name)
        from qadmin.web.pages import dashboard

        with app.test_request_context("/"):
            dashboard()
    except Exception:
        # the first view reads again and shows the error where someone sees it
        logging.getLogger("qadmin.web").debug("warming up failed", exc_info=True)


def _close_dispatcher(dispatcher: Any) -> None:
    from waitress import wasyncore

    wasyncore.dispatcher.close(dispatcher)


def build(
    state: Any, host: str = "127.0.0.1", port: int = 8080, read_only: bool = False, threads: int = THREADS
) -> Server:
    """The app and its bound server, from the CLI's context (backend settings, config file)."""
    config = load_config(state.config_file)
    password = os.environ.get(PASSWORD_ENV) or _config_password(config)
    if not password and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host}, which is not a loopback address, without a password: "
            f"set {PASSWORD_ENV} or [web] password in qadmin.toml (or use --host 127.0.0.1)"
        )
    sources, default = _backends(state, config)
    from qadmin.web import create_app

    app_config: dict[str, Any] = {
        "QADMIN_BACKENDS": sources,
        "QADMIN_DEFAULT_BACKEND": default,
        "QADMIN_READ_ONLY": read_only,
        "QADMIN_PASSWORD": password or None,
    }
    if config.web.get("secret_key"):
        app_config["SECRET_KEY"] = str(config.web["secret_key"])
    if "refresh" in config.web:
        from qadmin.config import parse_duration

        app_config["QADMIN_REFRESH"] = parse_duration(config.web["refresh"])
    app = create_app(config=app_config)

    import waitress

    try:
        server = waitress.create_server(app, host=host, port=port, threads=threads, ident="qadmin")
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = getattr(server, "effective_port", port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/"
    token = app.config["QADMIN_LOGIN_TOKEN"]
    login_url = f"{url}login?token={token}" if token else None
    return Server(app=app, waitress=server, url=url, login_url=login_url)


def serve(
    state: Any, host: str = "127.0.0.1", port: int = 8080, read_only: bool = False, out: TextIO | None = None
) -> None:
    """Serve until interrupted. Prints where to go; the start-up token only in the login URL
    on our own output, never into any log."""
    out = out or sys.stdout
    server = build(state, host=host, port=port, read_only=read_only)
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
    else:
        print("Log in with the configured password.", file=out)
    out.flush()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _config_password(config: Config) -> str | None:
    value = config.web.get("password")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{config.path}: [web] password must be a string")
    return value


def _backends(state: Any, config: Config) -> tuple[dict[str, Ops | Callable[[], Ops]], str]:
    """The switcher's backends: the one the command line chose (opened now, so a bad URL fails
    before the server starts) and every other named backend of the config file (opened when
    first chosen)."""
    from qadmin.web import opener

    url, _options = state.settings()
    current = state.ops(face="web")
    current.backend.check()
    name = state.backend_name or (config.default if not state.url_option else None)
    if name is None:
        name = next((n for n, e in config.backends.items() if e.url == url), "default")
    sources: dict[str, Ops | Callable[[], Ops]] = {name: current}
    for entry in config.backends.values():
        if entry.name not in sources:
            sources[entry.name] = opener(entry.url, entry.table, entry.namespace)
    return sources, name
