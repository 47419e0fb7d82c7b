"""The Redis backend, in Resque's key layout (docs/compatibility.md §1–§3, §8).

Resque, php-resque and resque-scheduler keep working on the same keys: qadmin writes their
payloads, failure entries, delayed items and worker records byte for byte, and keeps its own
bookkeeping under `NS qadmin:` (outside `queue:` and out of the `queues` set).

Reliable reserve (rule 8): a worker reads the first entries of a queue, decodes them, and only
claims one it can run, with a Lua script that moves exactly those bytes into qadmin's locked set
(`NS qadmin:locked`, scored by lock time) and writes Resque's `worker:ID`. A worker killed mid-job
loses nothing: its entry stays in the locked set until the job completes, fails, or an operator
unlocks it (`qadmin unlock --stale` puts it back at the head of its queue).

Every change is a guarded unit of `lua/apply.lua`: it happens only while the entry still holds
the bytes that were read, so an operator never acts on something else than what was shown.

Retrying a failure entry re-enqueues its whole payload and, like resque-web, keeps the entry
with a `retried_at` mark (such entries are history, in no state); `failed_on_retry="remove"` (or
`?failed_on_retry=remove` in the URL) removes it instead.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis as redis_lib

from qadmin.backends import _redis_scan as scan
from qadmin.backends._redis_admin import AdminMixin
from qadmin.backends._redis_engine import EngineMixin
from qadmin.backends._redis_lua import Batch, command, script_source
from qadmin.backends._redis_records import Keys, Rec, readings
from qadmin.backends._redis_stats import StatsMixin
from qadmin.backends._redis_workers import WorkersMixin
from qadmin.backends.base import BackendOptions
from qadmin.errors import BackendUnavailable, ConfigError, QadminError
from qadmin.job import JobId, utcnow

#: what `?failed_on_retry=` may say
RETRY_MODES = ("mark", "remove")
_log = logging.getLogger("qadmin.redis")
#: calls sent without reading their replies, at most (`RedisBackend._send`)
PENDING_MAX = 64


class RedisBackend(EngineMixin, WorkersMixin, AdminMixin, StatsMixin):
    kind = "redis"
    supports_priority = False
    records_finished = True

    def __init__(self, url: str, options: BackendOptions | None = None, *, failed_on_retry: str | None = None) -> None:
        self.options = options or BackendOptions()
        url, params = _own_params(url)
        self.failed_on_retry = failed_on_retry or params.get("failed_on_retry", "mark")
        if self.failed_on_retry not in RETRY_MODES:
            raise ConfigError(f"failed_on_retry must be one of {', '.join(RETRY_MODES)}, not {self.failed_on_retry!r}")
        parts = urlsplit(url)
        self.safe_url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
        self.client = _connect(url, self.safe_url)
        self.keys = Keys(self.options.namespace)
        self._apply = self.client.register_script(script_source("apply.lua"))
        self._count = self.client.register_script(script_source("count.lua"))
        self._requeue = self.client.register_script(script_source("requeue_failed.lua"))
        self._claim_script = self.client.register_script(script_source("claim.lua"))
        self._push = self.client.register_script(script_source("push.lua"))
        # the web face calls from several threads: these memories are shared
        self._mutex = threading.RLock()
        self._own_lock = threading.Lock()
        self._own: tuple[int, Any] | None = None
        #: calls sent on the own connection whose replies are not read yet (`_send`), in order,
        #: guarded by `_own_lock`; the ids of the outcomes they carry, guarded by `_mutex`
        self._pending: deque[_Pending] = deque()
        self._sending: set[int] = set()
        self._recs: OrderedDict[str, list[Rec]] = OrderedDict()
        self._removed: dict[int, dict[str, list[int]]] = {}
        self._held: dict[tuple[str, str], tuple[bytes, str | None]] = {}
        self._rids: dict[str, str | None] = {}
        # a worker's claim memory (_redis_engine): per worker and queue list, and decoded queue heads
        self._claimers: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._decoded: dict[tuple[str, bytes], Rec] = {}
        self._deferred: dict[str, list[Any]] = {}
        #: a registered worker's successes may wait for its next call (opt-in: `qadmin worker
        #: --defer-acks`); off, each success is written before the worker runs its next job, so a
        #: SIGKILL reruns at most the job in hand
        self.defer_successes = False
        #: a worker that holds prefetched jobs sends a success and runs its next job without
        #: waiting for the reply (`_redis_engine.complete`); the success is on its way to the server
        #: before the next job starts, so a SIGKILL still reruns at most the job in hand
        self.pipeline_successes = True
        self._winfo: dict[str, dict[str, Any]] = {}

    # --- plumbing ----------------------------------------------------------------------------
    @contextmanager
    def _wrap(self) -> Iterator[None]:
        try:
            yield
        except QadminError:
            raise
        except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
            raise BackendUnavailable(f"cannot reach {self.safe_url}: {exc}") from exc
        except redis_lib.RedisError as exc:
            raise QadminError(f"redis error at {self.safe_url}: {exc}") from exc

    def _script(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """Call a registered script, on this backend's own connection when no other thread is
        using it. A worker calls one script per job: redis-py's per-command pool checkout, which
        polls the socket before every command (three system calls), would cost more than the
        script runs. Other threads (heartbeats, a web face's) go through the pool as usual."""
        if not self._own_lock.acquire(blocking=False):
            with self._wrap():
                return script(keys=keys, args=args, client=self.client)
        try:
            with self._wrap():  # connecting is the first thing to fail on a server that is down
                self._drain_locked()  # the reply of a call sent before answers first
                conn = self._own_conn()
            call = [command(["EVALSHA", script.sha, len(keys), *keys, *args])]
            with self._wrap():
                try:
                    try:
                        conn.send_packed_command(call)
                        return conn.read_response()
                    except redis_lib.ResponseError as exc:  # read whole: the connection is in step
                        if isinstance(exc, redis_lib.exceptions.NoScriptError) or not (
                            _wrongtype(exc) and self._repair_private()
                        ):
                            raise
                except redis_lib.exceptions.NoScriptError:
                    pass  # loaded again below
                except redis_lib.ResponseError:
                    raise
                except BaseException:
                    conn.disconnect()
                    raise
                try:
                    try:
                        conn.send_packed_command(call)
                        return conn.read_response()
                    except redis_lib.exceptions.NoScriptError:  # a restarted or flushed server
                        conn.send_command("SCRIPT", "LOAD", script.script)
                        conn.read_response()
                        conn.send_packed_command(call)
                        return conn.read_response()
                except redis_lib.ResponseError:
                    raise  # the reply was read whole: the connection is still in step
                except BaseException:
                    conn.disconnect()  # a reply half read would answer the next call
                    raise
        finally:
            self._own_lock.release()

    def _own_conn(self) -> Any:
        if self._own is None or self._own[0] != os.getpid():  # never a connection of the parent
            self._own = (os.getpid(), self.client.connection_pool.get_connection())
        return self._own[1]

    def _send(self, script: Any, keys: list[Any], args: list[Any], worker: str, dones: list[Any]) -> bool:
        """Send a call writing these outcomes of `worker` (`_redis_engine._Done`) without waiting
        for its reply, which the next other user of the connection reads (`_drain_locked`): until
        then the outcomes stay deferred, so that a lost call goes again with the next one (claim.lua
        records an outcome only once). Sends follow each other without reading replies (reading
        one would wait for the server: what pipelining saves). False when the connection is busy
        with another thread or the send failed: the caller writes them and waits, as without."""
        if not self._own_lock.acquire(blocking=False):
            return False
        try:
            if len(self._pending) >= PENDING_MAX:
                self._drain_locked()
            conn = self._own_conn()
            ids = {id(d) for d in dones}
            with self._mutex:
                self._sending |= ids
            try:
                # no health check: its PING would read the reply of a call sent before
                conn.send_packed_command(
                    [command(["EVALSHA", script.sha, len(keys), *keys, *args])], check_health=False
                )
            except BaseException as exc:
                # a part sent would run into the next call's bytes; the replies of the calls sent
                # before are lost with the connection: their outcomes go again with the next call
                conn.disconnect()
                with self._mutex:
                    self._sending -= ids
                    for pending in self._pending:
                        self._sending -= pending.ids
                self._pending.clear()
                if not isinstance(exc, Exception):
                    raise
                return False
            self._pending.append(_Pending(os.getpid(), script, worker, dones, ids))
            return True
        finally:
            self._own_lock.release()

    def _drain(self) -> None:
        """Read the replies of the calls sent without waiting, unless another thread is using the
        connection (that thread reads them first, before its own call)."""
        if self._pending and self._own_lock.acquire(blocking=False):
            try:
                self._drain_locked()
            finally:
                self._own_lock.release()

    def _drain_locked(self) -> None:
        """Read the replies of the calls sent without waiting, in order, and settle the outcomes
        of those that ran. The others stay deferred and go again with the next call, which
        records none twice: an error reply, or a broken read (applied or not, unknown)."""
        if not self._pending:
            return
        pendings = list(self._pending)
        self._pending.clear()
        applied = []
        conn = None
        if self._own is not None and self._own[0] == os.getpid():  # a forked child leaves them alone
            conn = self._own[1]
        try:
            reload = None
            for pending in pendings if conn is not None else ():
                if pending.pid != os.getpid():  # sent by the parent of this forked process
                    continue
                try:
                    conn.read_response()
                    applied.append(pending)
                except redis_lib.exceptions.NoScriptError:  # not run (a restarted or flushed server)
                    reload = pending.script
                except redis_lib.ResponseError:
                    pass  # read whole: the connection is still in step
            if reload is not None:  # after every reply sent before: its own reply comes last
                conn.send_command("SCRIPT", "LOAD", reload.script)
                conn.read_response()
        except BaseException as exc:
            conn.disconnect()  # type: ignore[union-attr]  # a reply half read would answer the next call
            if not isinstance(exc, Exception):
                raise
            # else the next call meets the connection's trouble, and reports it
        finally:
            with self._mutex:
                for pending in pendings:
                    self._sending -= pending.ids
            for pending in applied:
                self._settle(pending.worker, pending.dones)

    def _run(self, batch: Batch) -> list[bool]:
        with self._wrap():
            try:
                return batch.run(self._apply, self.client)
            except redis_lib.ResponseError as exc:
                if not (_wrongtype(exc) and self._repair_private()):
                    raise
                return batch.run(self._apply, self.client)

    def _repair_private(self) -> bool:
        """Move aside each of qadmin's own keys that holds a value of another type than qadmin
        writes there (poison: no qadmin process wrote it), so that workers go on; the value is kept
        under `KEY:wrongtype:EPOCH` and the move is logged. Resque's own keys are never touched.
        True if one was moved."""
        wanted = {
            self.keys.locked: b"zset",
            self.keys.finished: b"zset",
            self.keys.qworkers: b"hash",
            self.keys.unique: b"hash",
            self.keys.paused: b"set",
            self.keys.audit: b"list",
        }
        with self._wrap():
            pipe = self.client.pipeline(transaction=False)
            for key in wanted:
                pipe.type(key)
            types = pipe.execute()
            moved = False
            seq = self.client.get(self.keys.audit_seq) if self.client.type(self.keys.audit_seq) == b"string" else b"0"
            if not (seq or b"0").lstrip(b"-").isdigit():  # the audit counter must count
                wanted[self.keys.audit_seq] = b"string"
                types.append(b"not an integer")
            for (key, want), have in zip(wanted.items(), types):
                if have not in (b"none", want):
                    self._move_aside(key, want.decode() if key != self.keys.audit_seq else "counter", have)
                    moved = True
        return moved

    def _move_aside(self, key: str, want: str, have: bytes | None = None) -> None:
        """Keep a value of one of qadmin's own keys that qadmin cannot use under `KEY:wrongtype:EPOCH`."""
        with self._wrap():
            have = have or self.client.type(key)
            aside = f"{key}:wrongtype:{int(time.time())}"
            self.client.rename(key, aside)
        _log.warning("%s held a %s where qadmin keeps a %s: moved aside to %s", key, have.decode(), want, aside)

    def _view(self, now: datetime) -> scan.View:
        return scan.View(self, now)

    # --- set-up ------------------------------------------------------------------------------
    def init(self) -> None:
        self.check()

    def check(self) -> None:
        with self._wrap():
            self.client.ping()

    def session(self, worker: str, *, defer_successes: bool = False) -> Any:
        from qadmin.backends._legacy_session import LegacySession

        return LegacySession(self, worker, defer_successes)

    def close(self) -> None:
        self._drain()
        if self._own is not None:
            self._own[1].disconnect()
        self.client.close()

    def flush(self) -> None:
        """Write the successes waiting for their worker's next call (`_redis_engine`)."""
        self._write_deferred()

    def parse_id(self, text: str) -> JobId:
        """The first reading of an id that names a job (`_redis_records.readings`: as listed, as
        shown, as pasted); when none does, the id as typed without blanks around it."""
        found = readings(text)
        plain = str(text).strip()
        if len(found) == 1:
            return next(iter(found))
        try:
            with self._wrap():
                hits = self._view(utcnow()).lookup(scan.Wanted(list(found.values())), first_live=True)
        except BackendUnavailable:  # the verb that follows says so
            hits = {}
        return next(
            (t for t, parts in found.items() if hits.get(parts)), plain if plain in found else next(iter(found))
        )


@dataclass(frozen=True)
class _Pending:
    """A call sent on the own connection, its reply not read yet."""

    pid: int
    script: Any
    worker: str
    dones: list[Any]
    ids: set[int]


def _connect(url: str, safe_url: str) -> redis_lib.Redis:
    """A client for `redis://`, `rediss://`, `unix://`, or `redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`
    (the master of a Sentinel-monitored service)."""
    # redis-py 8 reads with a 5 s timeout unless told otherwise: an admin script over a million
    # entries can take longer, and would be reported as an unreachable server while it still ran.
    # A minute still ends a read from a server that vanished silently.
    options: dict[str, Any] = {
        "decode_responses": False,
        "socket_connect_timeout": 5,
        "socket_timeout": 60,
        "health_check_interval": 30,
    }
    parts = urlsplit(url)
    try:
        if parts.scheme.lower() != "redis+sentinel":
            return redis_lib.Redis.from_url(url, **options)
        from redis.sentinel import Sentinel

        hosts = []
        for item in parts.netloc.rsplit("@", 1)[-1].split(","):
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
            hosts.append((host or "127.0.0.1", int(port or 26379)))
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError("name the Sentinel service: redis+sentinel://HOST:PORT/SERVICE[/DB]")
        password = parts.password
        sentinel = Sentinel(hosts, socket_timeout=5, socket_connect_timeout=5)
        return sentinel.master_for(
            path[0],
            db=int(path[1]) if len(path) > 1 else 0,
            password=password,
            decode_responses=False,
            socket_connect_timeout=5,
            socket_timeout=60,
        )
    except ValueError as exc:
        raise ConfigError(f"bad Redis URL {safe_url}: {exc}") from exc


def _wrongtype(exc: Exception) -> bool:
    return str(exc).startswith("WRONGTYPE")


def _own_params(url: str) -> tuple[str, dict[str, str]]:
    """Take qadmin's own query parameters out of a Redis URL."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    theirs = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "failed_on_retry":
            ours[key] = value
        else:
            theirs.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(theirs))), ours
