"""Real servers for the tests: redis-server and PostgreSQL on loopback, free ports.

Loaded as a pytest plugin by tests/conftest.py. Fixtures:

    redis_server     (session)  RedisServer: .url .port .host .running, stop(), start()
    redis_url        (function) "redis://127.0.0.1:P/0", flushed (FLUSHALL) before the test
    postgres_server  (session)  PostgresServer: .url_for(dbname) .port .host .running, stop(), start()
    postgres_url     (function) "postgresql+psycopg://postgres@127.0.0.1:P/t_<random>", a fresh
                                empty database, dropped (WITH FORCE) after the test
    sqlite_url       (function) "sqlite:///<tmp_path>/qadmin.db"
    sql_url          (function) parametrised: sqlite, postgres  (ids "sqlite", "postgres")
    any_url          (function) parametrised: sqlite, postgres, redis

A missing server binary or client package fails the test when CI is set, and skips it
(with a "NOT TESTED" reason) otherwise. Every server process is stopped at session end,
by the fixture finaliser and again from atexit; on Linux it also dies with pytest if
pytest itself is killed.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HOST = "127.0.0.1"

__all__ = [
    "HOST",
    "PostgresServer",
    "RedisServer",
    "free_port",
    "in_ci",
    "missing",
    "wait_for_port",
]


# --------------------------------------------------------------------------- helpers


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def missing(what: str) -> None:
    """A test dependency is absent: fail under CI (it must be installed there), else skip."""
    msg = f"{what} (install it with scripts/install-test-deps)"
    if in_ci():
        pytest.fail(f"CI: {msg}", pytrace=False)
    pytest.skip(f"NOT TESTED: {msg}")


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = HOST, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


# Processes still alive at interpreter exit get killed (a crashed session, a failed
# finaliser, KeyboardInterrupt...), then temp dirs are removed. Each entry is a
# zero-argument callable.
_live: dict[int, Callable[[], None]] = {}
_cleanup: dict[int, Callable[[], None]] = {}


@atexit.register
def _kill_leftovers() -> None:
    for registry in (_live, _cleanup):
        for fn in list(registry.values()):
            try:
                fn()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        registry.clear()


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """preexec_fn: the child gets `sig` when pytest dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    PR_SET_PDEATHSIG = 1

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return preexec


def _stop_process(proc: subprocess.Popen, sig: int, timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def pytest_configure(config) -> None:
    # SIGTERM (a CI time-out, `kill`) would end Python without finalisers or atexit:
    # turn it into KeyboardInterrupt so pytest tears the servers down.
    import threading

    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):

            def _on_sigterm(signum, frame):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                raise KeyboardInterrupt(f"signal {signum}")

            signal.signal(signal.SIGTERM, _on_sigterm)


# --------------------------------------------------------------------------- redis


def find_binary(name: str) -> str | None:
    """`name` on PATH, or in the system directories a root-less PATH may leave out."""
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/bin", "/usr/local/bin", "/usr/sbin"):
        cand = os.path.join(directory, name)
        if os.access(cand, os.X_OK):
            return cand
    return None


def _redis_binary() -> str | None:
    return find_binary("redis-server")


class RedisServer:
    """A redis-server child process on loopback: no persistence, restartable on its port."""

    #: redis-server flags for what it keeps on disk (subclasses keep more)
    persistence: tuple[str, ...] = ("--save", "", "--appendonly", "no")

    def __init__(self, binary: str, workdir: Path, port: int | None = None, host: str = HOST):
        self.binary = binary
        self.workdir = Path(workdir)
        self.host = host
        self.port = port or free_port(host)
        self.log_path = self.workdir / "redis.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kw):
        import redis

        kw.setdefault("socket_timeout", 5)
        kw.setdefault("socket_connect_timeout", 2)
        return redis.Redis(host=self.host, port=self.port, db=0, **kw)

    def start(self, timeout: float = 20.0) -> RedisServer:
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            *self.persistence,
            "--daemonize", "no",
            "--dir", str(self.workdir),
            "--protected-mode", "no",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGTERM),
            )
        proc = self.proc
        _live[id(self)] = lambda: _stop_process(proc, signal.SIGKILL)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        client = self.client(socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited with {self.proc.returncode} on port {self.port}:\n" + _tail(self.log_path)
                    )
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"redis-server did not answer PING within {timeout}s:\n" + _tail(self.log_path))
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL). The port stays reserved for start()."""
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGTERM)
        _live.pop(id(self), None)

    def flushall(self) -> None:
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()

    def __repr__(self) -> str:
        return f"<RedisServer {self.url} {'running' if self.running else 'stopped'}>"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    try:
        import redis  # noqa: F401
    except ImportError:
        missing("the 'redis' Python package is not installed")
    binary = _redis_binary()
    if binary is None:
        missing("redis-server is not installed (Debian package redis-server)")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    if not redis_server.running:  # a previous test stopped it and did not restart it
        redis_server.start()
    redis_server.flushall()
    yield redis_server.url


# --------------------------------------------------------------------------- postgres


def _postgres_bindir() -> Path | None:
    """Debian's /usr/lib/postgresql/<major>/bin, newest major first (or $QADMIN_PG_BINDIR)."""
    explicit = os.environ.get("QADMIN_PG_BINDIR")
    candidates = [explicit] if explicit else []

    def major(path: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/([\d.]+)/bin$", path)
        return tuple(int(x) for x in m.group(1).split(".") if x) if m else (0,)

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)
    for cand in candidates:
        d = Path(cand)
        if (d / "initdb").is_file() and (d / "postgres").is_file():
            return d
    return None


class PostgresServer:
    """A PostgreSQL cluster in a temp dir, run as the `postgres` user when we are root
    (PostgreSQL refuses to run as root), trust auth, tuned for tests (no fsync)."""

    def __init__(self, bindir: Path, base: Path, port: int | None = None, host: str = HOST):
        self.bindir = Path(bindir)
        self.base = Path(base)
        self.data = self.base / "data"
        self.sockdir = self.base / "sock"
        self.log_path = self.base / "postgres.log"
        self.host = host
        self.port = port or free_port(host)
        self.user = "postgres"
        self.proc: subprocess.Popen | None = None
        self._as: dict = {}
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root but there is no 'postgres' system user") from None
            self._as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
        self._env = {
            "PATH": f"{self.bindir}:/usr/bin:/bin",
            "LC_ALL": "C",
            "LANG": "C",
            "HOME": str(self.base),
            "TZ": "UTC",
        }

    # URLs -----------------------------------------------------------------
    def url_for(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def connect(self, dbname: str = "postgres", autocommit: bool = True, **kw):
        import psycopg

        kw.setdefault("connect_timeout", 5)
        return psycopg.connect(self.conninfo(dbname), autocommit=autocommit, **kw)

    # lifecycle ------------------------------------------------------------
    def _chown(self, path: Path) -> None:
        if self._as:
            os.chown(path, self._uid, self._gid)

    def initdb(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self._chown(self.base)
        self.sockdir.mkdir(exist_ok=True)
        self._chown(self.sockdir)
        cmd = [
            str(self.bindir / "initdb"),
            "-D", str(self.data),
            "--auth=trust",
            "-U", self.user,
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]  # fmt: skip
        res = subprocess.run(
            cmd,
            cwd=self.base,
            env=self._env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            **self._as,
        )
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")

    def start(self, timeout: float = 60.0) -> PostgresServer:
        if self.running:
            return self
        if not (self.data / "PG_VERSION").exists():
            self.initdb()
        cmd = [
            str(self.bindir / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-h", self.host,
            "-k", str(self.sockdir),
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
            "-c", "shared_buffers=64MB",
            "-c", "listen_addresses=" + self.host,
            "-c", "logging_collector=off",
            "-c", "log_min_messages=warning",
            "-c", "timezone=UTC",
        ]  # fmt: skip
        log = open(self.log_path, "ab")
        self._chown(self.log_path)
        try:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.base,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # SIGQUIT = immediate shutdown if pytest dies
                preexec_fn=_die_with_parent(signal.SIGQUIT),
                **self._as,
            )
        finally:
            log.close()
        proc = self.proc
        _live[id(self)] = lambda: _stop_process(proc, signal.SIGQUIT, timeout=10)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self.proc.returncode} on port {self.port}:\n" + _tail(self.log_path)
                )
            try:
                with self.connect(connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"postgres not accepting connections after {timeout}s:\n" + _tail(self.log_path))
            time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: disconnects clients, rolls back). start() brings it back,
        same port and data."""
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGINT, timeout=30)
        _live.pop(id(self), None)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # databases ------------------------------------------------------------
    def create_database(self, name: str | None = None) -> str:
        name = name or f"t_{secrets.token_hex(6)}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"bad database name {name!r}")
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __repr__(self) -> str:
        return f"<PostgresServer {self.host}:{self.port} {'running' if self.running else 'stopped'}>"


def _sweep_stale_postgres_dirs(min_age: float = 600.0) -> None:
    """Remove /tmp/qadmin-pg-* left by a killed session (no live postmaster, old)."""
    for d in glob.glob(os.path.join(tempfile.gettempdir(), "qadmin-pg-*")):
        try:
            if time.time() - os.stat(d).st_mtime < min_age:
                continue
            pidfile = Path(d, "data", "postmaster.pid")
            if pidfile.exists():
                pid = int(pidfile.read_text().split()[0])
                try:
                    os.kill(pid, 0)
                    continue  # still running: someone else's
                except ProcessLookupError:
                    pass
            shutil.rmtree(d, ignore_errors=True)
        except (OSError, ValueError, IndexError):
            continue


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("the 'psycopg' Python package is not installed")
    bindir = _postgres_bindir()
    if bindir is None:
        missing("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (Debian package postgresql)")
    _sweep_stale_postgres_dirs()
    # Not pytest's tmp_path: that lives under a 0700 root-owned dir the postgres user can't enter.
    base = Path(tempfile.mkdtemp(prefix="qadmin-pg-"))
    server = PostgresServer(bindir, base)
    _cleanup[id(base)] = lambda: shutil.rmtree(base, ignore_errors=True)
    try:
        server.start()
        yield server
    finally:
        server.destroy()
        _cleanup.pop(id(base), None)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    if not postgres_server.running:
        postgres_server.start()
    name = postgres_server.create_database()
    try:
        yield postgres_server.url_for(name)
    finally:
        if not postgres_server.running:
            postgres_server.start()
        postgres_server.drop_database(name)


# --------------------------------------------------------------------------- sqlite + parametrised


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/qadmin.db"


_KIND_FIXTURE = {"sqlite": "sqlite_url", "postgres": "postgres_url", "redis": "redis_url"}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def sql_url(request) -> str:
    return request.getfixturevalue(_KIND_FIXTURE[request.param])


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def any_url(request) -> str:
    return request.getfixturevalue(_KIND_FIXTURE[request.param])
