"""The faces under load: web dashboards served by waitress or granian, and the TUI's first screen.

    python -m bench.faces rq-dashboard REDIS_URL PORT [waitress|granian]   (serves rq-dashboard)

Both dashboards run on the same server with the same settings in a comparison: waitress with
`THREADS` threads, or granian with one worker process and `THREADS` threads (`qadmin web
--server granian`'s settings). Neither gets more processes than the other.

`load()` drives a server with a few concurrent keep-alive clients for a fixed time and returns page
views per second and each view's latency; a *view* is every request a browser needs to show the
listing (rq-dashboard's jobs page is an HTML shell that fetches its rows as JSON: both count).
`tui_first_screen()` starts `qadmin tui` in a pseudo-terminal and times until a queue name is drawn.
"""

from __future__ import annotations

import http.client
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.common import ROOT, Skip, child_env

#: concurrent clients of the web load: "a small concurrent load" (a team's browsers)
CLIENTS = 4
#: request threads of the servers (qadmin web's default)
THREADS = 8
#: the password the bench's qadmin web runs with; its clients send it as a bearer token
PASSWORD = "bench-Password-0123456789"  # strong enough to be a bearer token
AUTH = {"Authorization": f"Bearer {PASSWORD}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(port: int, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answered on port {port} after {timeout:.0f}s") from None
            time.sleep(0.1)


@contextmanager
def serve(cmd: Sequence[str], port: int, probe: str, log: Path, **env: str) -> Iterator[int]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(cmd), cwd=ROOT, env=child_env(**env), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        try:
            wait_for_http(port, probe)
        except RuntimeError as exc:
            if proc.poll() is not None:
                tail = " / ".join(log.read_text(errors="replace").splitlines()[-5:])
                raise RuntimeError(f"{cmd[2:5]} exited with {proc.returncode}: {tail}") from exc
            raise
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_ready(server: str) -> None:
    if server == "granian":
        try:
            import granian  # noqa: F401
        except ImportError as exc:
            raise Skip("PyPI granian is not installed") from exc


@contextmanager
def qadmin_web(url: str, log: Path, server: str = "waitress") -> Iterator[int]:
    if not (ROOT / "qadmin" / "web" / "__init__.py").exists():
        raise Skip("qadmin/web/__init__.py does not exist yet")
    _server_ready(server)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "qadmin",
        "--url",
        url,
        "web",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--read-only",
        "--server",
        server,
    ]
    with serve(cmd, port, "/", log, QADMIN_WEB_PASSWORD=PASSWORD) as p:
        yield p


@contextmanager
def rq_dashboard(redis_url: str, log: Path, server: str = "waitress") -> Iterator[int]:
    try:
        import rq_dashboard  # noqa: F401
    except ImportError as exc:
        raise Skip("PyPI rq-dashboard is not installed") from exc
    _server_ready(server)
    port = free_port()
    cmd = [sys.executable, "-m", "bench.faces", "rq-dashboard", redis_url, str(port), server]
    with serve(cmd, port, "/", log) as p:
        yield p


def load(
    port: int,
    views: Sequence[Sequence[str]],
    seconds: float,
    clients: int = CLIENTS,
    headers: dict[str, str] | None = None,
) -> tuple[float, list[float]]:
    """(views per second, latency of each view in ms) under `clients` concurrent keep-alive clients.

    `views` are cycled through; each is a list of paths fetched one after another."""
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []

    def client(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        n = slot
        try:
            while time.monotonic() < stop:
                started = time.perf_counter()
                for path in views[n % len(views)]:
                    conn.request("GET", path, headers=headers or {})
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        errors.append(f"GET {path}: HTTP {response.status}")
                        return
                latencies[slot].append((time.perf_counter() - started) * 1000)
                n += 1
        except OSError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    if errors:
        raise RuntimeError(errors[0])
    flat = [x for lst in latencies for x in lst]
    return len(flat) / elapsed, flat


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def tui_first_screen(url: str, marker: bytes, timeout: float = 120.0) -> float:
    """Seconds from starting `qadmin tui` to the first frame that shows `marker` (a queue name)."""
    if not (ROOT / "qadmin" / "tui" / "app.py").exists():
        raise Skip("qadmin/tui/app.py does not exist yet")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = child_env(TERM="xterm-256color", COLUMNS="120", LINES="40")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qadmin", "--url", url, "tui", "--read-only"],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        while True:
            left = timeout - (time.perf_counter() - started)
            if left <= 0:
                raise RuntimeError(f"the TUI did not show {marker!r} within {timeout:.0f}s")
            ready, _, _ = select.select([master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise RuntimeError(
                        "the TUI exited before its first screen: " + seen[-300:].decode(errors="replace")
                    )
                seen = (seen + chunk)[-200000:]
                if marker in seen:
                    return time.perf_counter() - started
            elif proc.poll() is not None:
                raise RuntimeError(f"the TUI exited with {proc.returncode}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        os.close(master)


def _rq_dashboard_app(redis_url: str) -> object:
    from rq_dashboard.cli import make_flask_app
    from rq_dashboard.web import setup_rq_connection

    app = make_flask_app(None, None, None, "")
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
    app.config["DEPRECATED_OPTIONS"] = []
    setup_rq_connection(app)
    return app


def _serve_rq_dashboard(redis_url: str, port: int, server: str = "waitress") -> None:
    import logging

    if server == "granian":
        from functools import partial

        from granian import Granian

        # as qadmin web --server granian serves: one worker process, THREADS threads
        Granian(
            "rq_dashboard",
            address="127.0.0.1",
            port=port,
            interface="wsgi",
            workers=1,
            blocking_threads=THREADS,
            log_level="error",
            log_access=False,
        ).serve(target_loader=partial(_rq_dashboard_app, redis_url), wrap_loader=False)
        return
    import waitress

    app = _rq_dashboard_app(redis_url)
    logging.getLogger("waitress").setLevel(logging.ERROR)
    waitress.serve(app, host="127.0.0.1", port=port, threads=THREADS)


if __name__ == "__main__":
    if len(sys.argv) in (4, 5) and sys.argv[1] == "rq-dashboard" and sys.argv[4:] in ([], ["waitress"], ["granian"]):
        _serve_rq_dashboard(sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
    else:
        sys.exit(__doc__)
