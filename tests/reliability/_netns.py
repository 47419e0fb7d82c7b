"""A small lab of network namespaces: two worker hosts and a database host on a private bridge.

    db   (qadmin-<id>-db)  bridge qbr0 10.213.0.1/24: PostgreSQL :5432, redis-server :6379
    h1   (qadmin-<id>-h1)  eth0 10.213.0.11/24        workers with host name qa-host-1
    h2   (qadmin-<id>-h2)  eth0 10.213.0.12/24        workers with host name qa-host-2

The addresses exist only inside these namespaces (the root namespace has no route to them), so
nothing leaves the machine and two labs never collide. Each worker process also gets its own UTS
namespace (`unshare --uts`) so that it sees its host's name, as a real second machine would.
Everything the lab starts is killed, and the namespaces deleted, by `close()`.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

SUBNET = "10.213.0"
DB_ADDR = f"{SUBNET}.1"
HOSTS = {"h1": ("qa-host-1", f"{SUBNET}.11"), "h2": ("qa-host-2", f"{SUBNET}.12")}


class LabUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, or no CAP_SYS_ADMIN / CAP_NET_ADMIN)."""


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise LabUnavailable(f"`ip {' '.join(args)}` failed: {res.stderr.strip()}")


def probe() -> str | None:
    """None when `ip netns` works here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root (the CI runs as root)"
    for tool in ("ip", "unshare", "setpriv"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            return f"`{tool}` is not installed (Debian packages iproute2, util-linux)"
    name = f"qadmin-probe-{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", name)
    except LabUnavailable as exc:
        return str(exc)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
    return None


class Lab:
    def __init__(self) -> None:
        self.id = secrets.token_hex(3)
        self.ns = {role: f"qadmin-{self.id}-{role}" for role in ("db", "h1", "h2")}
        self.procs: list[subprocess.Popen] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="qadmin-lab-"))
        self._made: list[str] = []
        self._dirs: list[Path] = [self.tmp]

    # --- set-up ------------------------------------------------------------------------------
    def build(self) -> Lab:
        db = self.ns["db"]
        for name in self.ns.values():
            _ip("netns", "add", name)
            self._made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", db, "link", "add", "name", "qbr0", "type", "bridge")
        _ip("-n", db, "addr", "add", f"{DB_ADDR}/24", "dev", "qbr0")
        _ip("-n", db, "link", "set", "qbr0", "up")
        for role, (_host, addr) in HOSTS.items():
            host_ns = self.ns[role]
            # both ends are made inside the namespaces: no interface ever appears in the root one
            _ip(
                "link",
                "add",
                "eth0",
                "netns",
                host_ns,
                "type",
                "veth",
                "peer",
                "name",
                f"v{role}",
                "netns",
                db,
            )
            _ip("-n", db, "link", "set", f"v{role}", "master", "qbr0")
            _ip("-n", db, "link", "set", f"v{role}", "up")
            _ip("-n", host_ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            _ip("-n", host_ns, "link", "set", "eth0", "up")
        return self

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for name in self._made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        self._made.clear()
        for path in self._dirs:
            subprocess.run(["rm", "-rf", str(path)], capture_output=True, timeout=60)

    # --- running things in a namespace ---------------------------------------------------------
    def command(self, role: str, argv: Sequence[str], hostname: str | None = None) -> list[str]:
        cmd = ["ip", "netns", "exec", self.ns[role]]
        if hostname is None:
            return [*cmd, *argv]
        # its own UTS namespace: the host name is this machine's only for this process tree
        script = f"hostname {shlex.quote(hostname)} && exec {shlex.join(argv)}"
        return [*cmd, "unshare", "--uts", "sh", "-c", script]

    def start(
        self,
        role: str,
        argv: Sequence[str],
        *,
        hostname: str | None = None,
        log: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen:
        out = open(log, "ab") if log is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                self.command(role, argv, hostname),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        finally:
            if log is not None:
                out.close()  # type: ignore[union-attr]
        self.procs.append(proc)
        return proc

    def run(
        self,
        role: str,
        argv: Sequence[str],
        *,
        hostname: str | None = None,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(role, argv, hostname),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=env,
        )

    def wait_port(self, role: str, addr: str, port: int, timeout: float = 60) -> None:
        probe_code = (
            f"import socket,sys,time\nend=time.time()+{timeout}\nwhile True:\n"
            f"  try:\n    socket.create_connection(({addr!r},{port}),timeout=1).close(); break\n"
            f"  except OSError:\n    time.sleep(0.1)\n    if time.time()>end: sys.exit(1)\n"
        )
        res = self.run(role, [sys.executable, "-c", probe_code], timeout=timeout + 10)
        if res.returncode != 0:
            raise TimeoutError(f"nothing listening on {addr}:{port} in {self.ns[role]}")

    # --- the servers ---------------------------------------------------------------------------
    def start_redis(self, port: int = 6379) -> str:
        from tests.servers import _redis_binary

        binary = _redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        workdir = self.tmp / "redis"
        workdir.mkdir()
        self.start(
            "db",
            [
                binary,
                "--port",
                str(port),
                "--bind",
                DB_ADDR,
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(workdir),
                "--protected-mode",
                "no",
            ],
            log=workdir / "redis.log",
        )
        self.wait_port("h1", DB_ADDR, port)
        return f"redis://{DB_ADDR}:{port}/0"

    def start_postgres(self, port: int = 5432) -> str:
        """initdb as the `postgres` user (tests/servers.py's), then the server inside the db namespace."""
        from tests.servers import PostgresServer, _postgres_bindir

        bindir = _postgres_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed")
        base = Path(tempfile.mkdtemp(prefix="qadmin-pg-lab-"))  # the postgres user must be able to enter it
        self._dirs.append(base)
        pg = PostgresServer(bindir, base, port=port, host=DB_ADDR)
        pg.initdb()
        with open(pg.data / "pg_hba.conf", "a") as hba:  # initdb trusts loopback only
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
        import pwd

        user = pwd.getpwnam("postgres")
        env = {"PATH": f"{bindir}:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "HOME": str(base), "TZ": "UTC"}
        self.start(
            "db",
            [
                "setpriv",
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
                str(bindir / "postgres"),
                "-D",
                str(pg.data),
                "-p",
                str(port),
                "-h",
                DB_ADDR,
                "-k",
                str(pg.sockdir),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=100",
                "-c",
                "timezone=UTC",
            ],
            log=self.tmp / "postgres.log",
            env=env,
        )
        self.wait_port("h1", DB_ADDR, port)
        url = f"postgresql+psycopg://postgres@{DB_ADDR}:{port}/qadmin"
        create = (
            "import psycopg\n"
            f"c = psycopg.connect('host={DB_ADDR} port={port} user=postgres dbname=postgres',\n"
            "                     autocommit=True)\n"
            "c.execute('CREATE DATABASE qadmin')\n"
        )
        res = self.run("h1", [sys.executable, "-c", create])
        if res.returncode != 0:
            raise RuntimeError(f"could not create the database: {res.stderr[-1000:]}")
        return url

    def kill(self, procs: Sequence[subprocess.Popen], sig: int = signal.SIGKILL) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(sig)
        for proc in procs:
            proc.wait(30)

    def wait_until(  # type: ignore[no-untyped-def]
        self, predicate, timeout: float, what: str | Callable[[], str]
    ) -> object:
        """`what` may be a function, called at the timeout: the state then, not when the wait began."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
            time.sleep(0.2)
