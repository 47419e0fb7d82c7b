"""The Redis store as read at one moment: keys of the wrong type told apart, lists read in
windows, the queue list, and who holds which job (workers, their locks, and who is stale)."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis as redis_lib

from qadmin.backends.owners import HOSTNAME, owner_dead, pid_alive
from qadmin.backends.redis.json_text import parse_time, value_span
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.records import read_held
from qadmin.backends.redis.server import Server, as_bytes
from qadmin.filters import JobFilter

#: entries per LRANGE
WINDOW = 500
#: Resque prunes a worker whose heartbeat is older than this (docs/compatibility.md §1.7)
RESQUE_PRUNE_INTERVAL = 300.0


@dataclass(slots=True)
class Lock:
    """A held job as far as counts need it; `parsed` is what its record is built from."""

    kind: Place
    key: str
    raw: bytes
    parsed: Any
    queue: str | None
    stale: bool
    dead: bool
    rid: str | None


class Reader:
    """Reads of the store at `now`, each remembered for the rest of the call (one per backend call)."""

    def __init__(self, server: Server, now: datetime, max_run_time: float | None = None) -> None:
        self.server = server
        self.options = server.options
        self.max_run_time = max_run_time or server.options.max_run_time
        self.c = server.client
        self.k = server.keys
        self.now = now
        self._locks: list[Lock] | None = None
        self._twins: tuple[list[int], Counter[tuple[str | None, bytes]]] | None = None
        self._known: list[str] | None = None
        #: keys of the wrong type (or counters that are no numbers) met so far: key -> why
        self.problems: dict[str, str] = {}
        self._beats: dict[str, datetime | None] | None = None
        self._foreign: list[str] | None = None
        self._resque_beats: dict[str, datetime | None] | None = None
        self._qworkers: dict[str, dict[str, Any]] | None = None

    # --- keys of the wrong type ---------------------------------------------------------------
    def read(self, key: str, expected: str, call: Callable[[], Any], default: Any) -> Any:
        """`call()`, or `default` when `key` holds another type than `expected` (poison in a shared
        namespace): the key is remembered in `problems`, to be shown as unreadable, and the rest
        of the store is read as usual."""
        try:
            return call()
        except redis_lib.ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            self.note(key, expected)
            return default

    def note(self, key: str, expected: str) -> None:
        if key not in self.problems:
            try:
                have = (as_bytes(self.c.type(key)) or b"none").decode("utf-8", "replace")
            except redis_lib.RedisError:
                have = "value of another type"
            self.problems[key] = f"{key} holds a {have} where a {expected} belongs (WRONGTYPE): it cannot be read"

    def number(self, key: str, value: bytes | None) -> int:
        """A counter as stored (missing: 0); one that is not an integer is noted and read as 0."""
        if value is None:
            return 0
        try:
            return int(value)
        except ValueError:
            self.problems.setdefault(key, f"{key} holds {value[:40]!r}, not a number: read as 0")
            return 0

    # --- workers and staleness -------------------------------------------------------------
    def qworkers(self) -> dict[str, dict[str, Any]]:
        if self._qworkers is None:
            out: dict[str, dict[str, Any]] = {}
            for name, value in self.read(self.k.qworkers, "hash", lambda: self.c.hgetall(self.k.qworkers), {}).items():
                try:
                    info = json.loads(value)
                except ValueError:
                    continue
                if isinstance(info, dict):
                    out[name.decode("utf-8", "replace")] = info
            self._qworkers = out
        return self._qworkers

    def owner_dead(self, worker: str) -> bool:
        return owner_dead(worker, self.heartbeats(), self.now, self.options.worker_timeout)

    def heartbeats(self) -> dict[str, datetime | None]:
        """The last heartbeat of each registered qadmin worker."""
        if self._beats is None:
            self._beats = {name: parse_time(info.get("heartbeat_at")) for name, info in self.qworkers().items()}
        return self._beats

    def resque_dead(self, rid: str, beat: datetime | None) -> bool:
        """A Ruby or PHP worker is dead when its heartbeat stopped, or it was a process of this host
        that is gone (PHP workers never beat)."""
        host, pid = split_rid(rid)
        if host == HOSTNAME and pid is not None and not pid_alive(pid):
            return True
        limit = max(self.options.worker_timeout, RESQUE_PRUNE_INTERVAL)
        return beat is not None and beat < self.now - timedelta(seconds=limit)

    def locks(self) -> list[Lock]:
        """Every held job, read only as far as its queue and staleness (what counts need): qadmin's
        locked set (oldest lock first), then Resque workers' jobs by worker."""
        if self._locks is not None:
            return self._locks
        cutoff = self.now - timedelta(seconds=self.max_run_time)
        out: list[Lock] = []
        for raw in self.read(self.k.locked, "sorted set", lambda: self.c.zrange(self.k.locked, 0, -1), []):
            try:
                env = json.loads(raw)
                env["payload"].encode("utf-8")
                worker, queue = env["worker"], env["queue"]
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            locked_at = parse_time(env.get("locked_at"))
            stale = (locked_at is not None and locked_at < cutoff) or self.owner_dead(worker or "")
            out.append(Lock(Place.LOCKED, self.k.locked, raw, env, queue, stale, False, None))
        foreign = self.foreign_rids()
        if foreign:
            values = self.c.mget([self.k.worker(r) for r in foreign])
            beats = self.resque_beats()
            for rid, reply in zip(foreign, values, strict=True):
                value = as_bytes(reply)
                read = read_held(value) if value is not None else None
                if value is None or read is None:
                    continue
                entry = read[1]
                queue = entry.get("queue") if isinstance(entry.get("queue"), str) else None
                locked_at = parse_time(entry.get("run_at"))
                dead = self.resque_dead(rid, beats.get(rid))
                stale = dead or (locked_at is not None and locked_at < cutoff)
                out.append(Lock(Place.HELD, self.k.worker(rid), value, read, queue, stale, dead, rid))
        self._locks = out
        return out

    def foreign_rids(self) -> list[str]:
        """Registered Ruby and PHP workers (Resque's `workers` set less qadmin's own)."""
        if self._foreign is None:
            own = {info.get("rid") for info in self.qworkers().values()}
            rids = sorted(
                r.decode("utf-8", "replace")
                for r in self.read(self.k.workers, "set", lambda: self.c.smembers(self.k.workers), ())
            )
            self._foreign = [r for r in rids if r not in own and not (split_rid(r)[0] or "").endswith("-qadmin")]
        return self._foreign

    def resque_beats(self) -> dict[str, datetime | None]:
        if self._resque_beats is None:
            self._resque_beats = {
                k.decode("utf-8", "replace"): parse_time(v)
                for k, v in self.read(self.k.heartbeat, "hash", lambda: self.c.hgetall(self.k.heartbeat), {}).items()
            }
        return self._resque_beats

    def live_workers(self) -> int:
        """How many of the workers `workers()` lists are not stale, read without their jobs and
        counters: qadmin's registered workers, Resque's, and holders of qadmin locks that never
        registered (alive while their lock is not stale)."""
        qworkers = self.qworkers()
        live = sum(1 for name in qworkers if not self.owner_dead(name))
        foreign = self.foreign_rids()
        beats = self.resque_beats() if foreign else {}
        live += sum(1 for rid in foreign if not self.resque_dead(rid, beats.get(rid)))
        known = set(qworkers)
        for lock in self.locks():
            owner = (lock.parsed["worker"] or "") if lock.kind is Place.LOCKED else None
            if owner is None or owner in known:
                continue
            known.add(owner)
            live += not lock.stale
        return live

    def lock_twins(self) -> tuple[list[int], Counter[tuple[str | None, bytes]]]:
        """Which of byte-identical held jobs each lock is (1-based, in `locks()` order), and how many
        locks hold each (queue, payload): pending twins are numbered after them."""
        if self._twins is None:
            held: Counter[tuple[str | None, bytes]] = Counter()
            ranks = []
            for lock in self.locks():
                if lock.kind is Place.LOCKED:
                    payload = lock.parsed["payload"].encode("utf-8")
                else:
                    text, entry = lock.parsed
                    payload = (value_span(text, entry, "payload") or "").encode("utf-8")
                held[(lock.queue, payload)] += 1
                ranks.append(held[(lock.queue, payload)])
            self._twins = (ranks, held)
        return self._twins

    def queue_names(self, selection: JobFilter | None = None) -> list[str]:
        if selection is not None and selection.queues:
            return sorted(set(selection.queues))
        return self.known_queues()

    def known_queues(self) -> list[str]:
        """The `queues` set; when that key is of the wrong type, the queues found by their keys."""
        if self._known is None:
            names = self.read(self.k.queues, "set", lambda: self.c.smembers(self.k.queues), None)
            if names is None:
                names = set()
                prefix = self.k.queue_prefix.encode()
                for key in self.c.scan_iter(match=_glob_escape(prefix) + b"*", count=1000):
                    name = key[len(prefix) :]
                    if b":temp:" not in name:  # php-resque's dequeue lists (docs/compatibility.md §3.5)
                        names.add(name)
            self._known = sorted(q.decode("utf-8", "replace") for q in names)
        return self._known

    def positions(self, key: str, item: bytes, *, count: int | None = None, maxlen: int | None = None) -> Any:
        """LPOS of these exact bytes: an index, a list of them with `count`, or None (also when
        `key` is of the wrong type, as `read` says)."""
        # redis-py sends bytes as they are; its annotation of LPOS's element says str
        call = functools.partial(self.c.lpos, key, item, count=count, maxlen=maxlen)  # type: ignore[arg-type]
        return self.read(key, "list", call, None)

    # --- reading lists in windows ---------------------------------------------------------------
    def window(self, key: str, lo: int, hi: int, zset: bool) -> list[bytes]:
        items: list[bytes]
        if zset:
            items = self.read(key, "sorted set", lambda: self.c.zrange(key, lo, hi), [])
        else:
            items = self.read(key, "list", lambda: self.c.lrange(key, lo, hi), [])
        return items

    def length(self, key: str, zset: bool) -> int:
        return int(
            self.read(key, "sorted set" if zset else "list", lambda: self.c.zcard(key) if zset else self.c.llen(key), 0)
        )

    def iter_list(self, key: str, after: int | None, desc: bool, zset: bool = False) -> Iterator[tuple[int, bytes]]:
        """(index, element) from just after `after` (None: from the start), forwards or backwards."""
        if not desc:
            i = 0 if after is None else after + 1
            while True:
                items = self.window(key, i, i + WINDOW - 1, zset)
                for n, raw in enumerate(items):
                    yield i + n, raw
                if len(items) < WINDOW:
                    return
                i += WINDOW
        else:
            i = self.length(key, zset) - 1 if after is None else after - 1
            while i >= 0:
                lo = max(0, i - WINDOW + 1)
                items = self.window(key, lo, i, zset)
                for n in range(len(items) - 1, -1, -1):
                    yield lo + n, items[n]
                i = lo - 1


def _glob_escape(text: bytes) -> bytes:
    return b"".join(b"\\" + bytes([c]) if c in b"*?[]\\" else bytes([c]) for c in text)


def split_rid(rid: str) -> tuple[str | None, int | None]:
    """A Resque worker id `HOST:PID:QUEUES` split on its first two colons."""
    parts = rid.split(":", 2)
    if len(parts) < 2:
        return None, None
    try:
        return parts[0], int(parts[1])
    except ValueError:
        return parts[0], None


def rid_queues(rid: str) -> list[str]:
    parts = rid.split(":", 2)
    return [q for q in parts[2].split(",") if q] if len(parts) == 3 else []
