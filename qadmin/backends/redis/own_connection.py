"""A connection of its own for one caller's script calls, and calls sent on it without waiting
for their replies (what pipelined successes use: `session.py`)."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import redis as redis_lib
from redis.commands.core import Script

from qadmin.backends.redis.scripts import command
from qadmin.backends.redis.server import Server, wrongtype

#: calls sent without reading their replies, at most (`OwnConnection.send`)
PENDING_MAX = 64

Tag = TypeVar("Tag")


class Wire(Protocol):
    """What the own connection is used for (redis-py's `Connection` leaves these unannotated)."""

    def send_packed_command(self, command: Sequence[bytes], check_health: bool = True) -> None: ...

    def send_command(self, *args: Any) -> None: ...

    def read_response(self) -> Any: ...

    def disconnect(self) -> None: ...


@dataclass(frozen=True)
class _Pending(Generic[Tag]):
    """A call sent on the own connection, its reply not read yet."""

    pid: int
    script: Script
    tag: Tag


class OwnConnection(Generic[Tag]):
    """Script calls on a connection this caller holds, when no other thread is using it. A
    worker calls one script per job: redis-py's per-command pool checkout, which polls the socket
    before every command (three system calls), would cost more than the script runs. Other
    threads (heartbeats, a web face's) go through the pool as usual.

    `replies(sent, applied)` hears of the calls `send` sent once their replies are read (or lost
    with the connection): the tags of all of them, and of those that ran."""

    def __init__(self, server: Server, replies: Callable[[list[Tag], list[Tag]], None] | None = None) -> None:
        self.server = server
        self._replies = replies
        self._lock = threading.Lock()
        self._own: tuple[int, Wire] | None = None
        #: calls sent whose replies are not read yet, in order (guarded by `_lock`)
        self._pending: deque[_Pending[Tag]] = deque()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def busy(self) -> threading.Lock:
        """The lock a thread holds while it uses the connection (tests hold it to stand in for one)."""
        return self._lock

    def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Call a registered script, on the own connection when no other thread is using it."""
        server = self.server
        if not self._lock.acquire(blocking=False):
            return server.call(script, keys, args)
        try:
            with server.wrap():  # connecting is the first thing to fail on a server that is down
                self._drain_locked()  # the reply of a call sent before answers first
                conn = self._conn()
            packed = [command(["EVALSHA", script.sha, len(keys), *keys, *args])]
            with server.wrap():
                try:
                    try:
                        conn.send_packed_command(packed)
                        return conn.read_response()
                    except redis_lib.ResponseError as exc:  # read whole: the connection is in step
                        if isinstance(exc, redis_lib.exceptions.NoScriptError) or not (
                            wrongtype(exc) and server.repair_private()
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
                        conn.send_packed_command(packed)
                        return conn.read_response()
                    except redis_lib.exceptions.NoScriptError:  # a restarted or flushed server
                        conn.send_command("SCRIPT", "LOAD", script.script)
                        conn.read_response()
                        conn.send_packed_command(packed)
                        return conn.read_response()
                except redis_lib.ResponseError:
                    raise  # the reply was read whole: the connection is still in step
                except BaseException:
                    conn.disconnect()  # a reply half read would answer the next call
                    raise
        finally:
            self._lock.release()

    def _conn(self) -> Wire:
        if self._own is None or self._own[0] != os.getpid():  # never a connection of the parent
            self._own = (os.getpid(), self.server.client.connection_pool.get_connection())
        return self._own[1]

    def send(self, script: Script, keys: Sequence[Any], args: Sequence[Any], tag: Tag) -> bool:
        """Send a call without waiting for its reply, which the next other use of the connection
        reads (`drain`). Sends follow each other without reading replies (reading one would wait
        for the server: what pipelining saves). False when the connection is busy with another
        thread or the send failed: the caller then calls and waits, as without."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if len(self._pending) >= PENDING_MAX:
                self._drain_locked()
            conn = self._conn()
            try:
                # no health check: its PING would read the reply of a call sent before
                conn.send_packed_command(
                    [command(["EVALSHA", script.sha, len(keys), *keys, *args])], check_health=False
                )
            except BaseException as exc:
                # a part sent would run into the next call's bytes; the replies of the calls sent
                # before are lost with the connection
                conn.disconnect()
                lost = [p.tag for p in self._pending]
                self._pending.clear()
                self._report([*lost, tag], [])
                if not isinstance(exc, Exception):
                    raise
                return False
            self._pending.append(_Pending(os.getpid(), script, tag))
            return True
        finally:
            self._lock.release()

    def drain(self) -> None:
        """Read the replies of the calls sent without waiting, unless another thread is using the
        connection (that thread reads them first, before its own call)."""
        if self._pending and self._lock.acquire(blocking=False):
            try:
                self._drain_locked()
            finally:
                self._lock.release()

    def _drain_locked(self) -> None:
        """Read the replies of the calls sent without waiting, in order, and report those that
        ran. An error reply, or a broken read (applied or not, unknown), is reported as not run."""
        if not self._pending:
            return
        pendings = list(self._pending)
        self._pending.clear()
        applied: list[Tag] = []
        conn = None
        if self._own is not None and self._own[0] == os.getpid():  # a forked child leaves them alone
            conn = self._own[1]
        try:
            reload = None
            for pending in pendings:
                if conn is None or pending.pid != os.getpid():  # sent by the parent of this forked process
                    continue
                try:
                    conn.read_response()
                    applied.append(pending.tag)
                except redis_lib.exceptions.NoScriptError:  # not run (a restarted or flushed server)
                    reload = pending.script
                except redis_lib.ResponseError:
                    pass  # read whole: the connection is still in step
            if conn is not None and reload is not None:  # after every reply sent before: its own comes last
                conn.send_command("SCRIPT", "LOAD", reload.script)
                conn.read_response()
        except BaseException as exc:
            if conn is not None:
                conn.disconnect()  # a reply half read would answer the next call
            if not isinstance(exc, Exception):
                raise
            # else the next call meets the connection's trouble, and reports it
        finally:
            self._report([p.tag for p in pendings], applied)

    def _report(self, sent: list[Tag], applied: list[Tag]) -> None:
        if self._replies is not None and sent:
            self._replies(sent, applied)

    def close(self) -> None:
        """Read what is in flight, then let the connection go (the next call opens another)."""
        self.drain()
        with self._lock:
            if self._own is not None:
                self._own[1].disconnect()
                self._own = None
