"""PgBouncer in transaction mode on a free loopback port, in front of the tests' PostgreSQL.

    pgbouncer        (session)  PgBouncer: .port .host .running, url_for(dbname), stop()
    pgbouncer_url    (function) "postgresql+psycopg://postgres@127.0.0.1:B/t_<random>?prepare=off":
                                a fresh database of `postgres_server`, reached through the bouncer

Its own temp dir (config, auth_file, log, pid), trust auth on loopback (the user still has to be
in the auth_file: PgBouncer's rule), any database name forwarded to the tests' PostgreSQL. Run as
the `postgres` user when we are root: PgBouncer refuses to run as root. A missing binary fails
the test under CI and skips it otherwise, as tests/servers.py does for its servers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import (
    HOST,
    PostgresServer,
    _cleanup,
    _die_with_parent,
    _live,
    _stop_process,
    _tail,
    find_binary,
    free_port,
    missing,
)

#: the URL option that turns qadmin's server-side prepared statements off (PgBouncer 1.18 in
#: transaction mode has no protocol-level prepared statements)
NO_PREPARE = "prepare=off"


def pgbouncer_binary() -> str | None:
    return find_binary("pgbouncer")


class PgBouncer:
    """pgbouncer with `pool_mode = transaction` before `postgres`, on its own port."""

    def __init__(self, binary: str, postgres: PostgresServer, base: Path, host: str = HOST) -> None:
        self.binary = binary
        self.postgres = postgres
        self.base = Path(base)
        self.host = host
        self.port = free_port(host)
        self.ini = self.base / "pgbouncer.ini"
        self.log_path = self.base / "pgbouncer.log"
        self.proc: subprocess.Popen[bytes] | None = None
        #: (uid, gid) to run as: PgBouncer refuses to run as root
        self._ids: tuple[int, int] | None = None
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            self._ids = (pw.pw_uid, pw.pw_gid)

    def url_for(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.postgres.user}@{self.host}:{self.port}/{dbname}?{NO_PREPARE}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self._ids:
            os.chown(path, *self._ids)

    def configure(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self._ids:
            os.chown(self.base, *self._ids)
        self._write(self.base / "userlist.txt", f'"{self.postgres.user}" ""\n')
        self._write(
            self.ini,
            "[databases]\n"
            f"* = host={self.postgres.host} port={self.postgres.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = {self.host}\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.base / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            # fewer server connections than clients: what a pooler is for, and what shows a
            # statement that leans on its session
            "default_pool_size = 4\n"
            "max_client_conn = 200\n"
            # psycopg sends none of these, but libpq-based tools may
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.log_path}\n"
            f"pidfile = {self.base / 'pgbouncer.pid'}\n"
            "log_connections = 0\n"
            "log_disconnections = 0\n",
        )

    def start(self, timeout: float = 20.0) -> PgBouncer:
        if self.running:
            return self
        self.configure()
        self.proc = subprocess.Popen(
            [self.binary, str(self.ini)],
            cwd=self.base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent(signal.SIGTERM),
            user=self._ids[0] if self._ids else None,
            group=self._ids[1] if self._ids else None,
            extra_groups=[] if self._ids else None,
        )
        proc = self.proc
        _live[id(self)] = lambda: _stop_process(proc, signal.SIGKILL)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        conninfo = f"host={self.host} port={self.port} user={self.postgres.user} dbname=postgres"
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.proc.returncode}:\n" + _tail(self.log_path))
            try:
                with psycopg.connect(conninfo, connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"pgbouncer did not answer within {timeout}s:\n" + _tail(self.log_path))
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGINT: PgBouncer's safe shutdown (it waits for clients to finish their transactions)."""
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGINT, timeout=10)
        _live.pop(id(self), None)

    def __repr__(self) -> str:
        return f"<PgBouncer {self.host}:{self.port} {'running' if self.running else 'stopped'}>"


@pytest.fixture(scope="session")
def pgbouncer(postgres_server: PostgresServer) -> Iterator[PgBouncer]:
    binary = pgbouncer_binary()
    if binary is None:
        missing("pgbouncer is not installed (Debian package pgbouncer)")
        raise AssertionError("unreachable: missing() fails or skips")
    # not pytest's tmp_path: the postgres user must be able to enter it
    base = Path(tempfile.mkdtemp(prefix="qadmin-pgbouncer-"))
    _cleanup[id(base)] = lambda: shutil.rmtree(base, ignore_errors=True)
    bouncer = PgBouncer(binary, postgres_server, base)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(base, ignore_errors=True)
        _cleanup.pop(id(base), None)


@pytest.fixture
def pgbouncer_url(pgbouncer: PgBouncer, postgres_server: PostgresServer) -> Iterator[str]:
    if not postgres_server.running:
        postgres_server.start()
    name = postgres_server.create_database()
    try:
        yield pgbouncer.url_for(name)
    finally:
        if not postgres_server.running:
            postgres_server.start()
        postgres_server.drop_database(name)
