"""Reading the Redis store: listings in pages, lookups by id, and who is stale.

A listing walks *segments* in a fixed order: the jobs held by workers (qadmin's locked set and
Resque's `worker:ID` keys), each `queue:NAME` list, resque-scheduler's delayed lists, the
`failed` list and qadmin's finished set. Lists are read in LRANGE windows, never whole. A page
cursor is the segment and the position of the last job shown; a list that changes between pages
may shift under it (as resque-web's pages do).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import redis as redis_lib

from qadmin.backends._redis_json import TOKEN_LEN, parse_time
from qadmin.backends._redis_records import (
    IdParts,
    Rec,
    failed_rec,
    failed_slim,
    finished_rec,
    held_rec,
    locked_rec,
    queue_rec,
    read_held,
    read_payload,
    schedule_second,
    unreadable_rec,
)
from qadmin.backends._redis_records import name as rename
from qadmin.backends._redis_twins import LIVE, Twins, Wanted, failed_token
from qadmin.backends.owners import HOSTNAME, owner_dead, pid_alive
from qadmin.codecs import UNDECODABLE
from qadmin.errors import UsageError
from qadmin.filters import JobFilter, class_matches, fold
from qadmin.job import JobState

if TYPE_CHECKING:
    from qadmin.backends.redis import RedisBackend

#: entries per LRANGE
WINDOW = 500
#: Resque prunes a worker whose heartbeat is older than this (docs/compatibility.md §1.7)
RESQUE_PRUNE_INTERVAL = 300.0

#: segment types in each sort order: (type, read backwards), and whether queue names go backwards
ORDERS: dict[str, tuple[tuple[tuple[str, bool], ...], bool]] = {
    "id": ((("L", False), ("Q", False), ("D", False), ("F", False), ("Z", False)), False),
    "priority": ((("L", False), ("Q", False), ("D", False), ("F", False), ("Z", False)), False),
    "run_at": ((("L", False), ("Q", False), ("D", False), ("F", False), ("Z", False)), False),
    "-id": ((("Z", True), ("F", True), ("D", True), ("Q", True), ("L", True)), True),
    "-failed_at": ((("F", True), ("L", False), ("Q", False), ("D", False), ("Z", False)), False),
}
#: the states each segment can hold
SEGMENT_STATES = {
    "L": {JobState.LOCKED},
    "Q": {JobState.PENDING},
    "D": {JobState.PENDING, JobState.SCHEDULED},
    "F": {JobState.FAILED},
    "Z": {JobState.FINISHED},
}


def states_and_queues_only(selection: JobFilter) -> bool:
    return JobFilter(states=selection.states, queues=selection.queues) == selection


def wanted_states(selection: JobFilter) -> frozenset[JobState]:
    """No states named means the live ones (finished jobs are history), as in SQL."""
    return frozenset(selection.states) or LIVE


def quick_token(raw: bytes) -> str:
    """`read_payload(raw).token`, without decoding when the payload cannot carry an id or bookkeeping."""
    if b'"id"' in raw or b'"attempts"' in raw or b'"last_error"' in raw or b'"queue"' in raw:
        return read_payload(raw).token
    return hashlib.sha1(raw).hexdigest()[:TOKEN_LEN]


@dataclass(slots=True)
class Lock:
    """A held job as far as counts need it; `parsed` is what its record is built from."""

    kind: str  # locked | held
    key: str
    raw: bytes
    parsed: Any
    queue: str | None
    stale: bool
    dead: bool
    rid: str | None


def class_prefilter(selection: JobFilter) -> Callable[[bytes], bool] | None:
    """A byte test that rejects stored entries which cannot hold a job of the filter's class.

    A payload's class is the JSON string of its `class` member (every codec of this backend): in
    an entry with no backslash at all no string is escaped, so that class's text is in the bytes
    verbatim, and every class the filter selects (`class_matches`: the name, or an ASCII-case-
    insensitive prefix of it or of its last part) holds the filter's text in ASCII lower case.
    An entry with a backslash (or no filter on the class) is always read, and so is every entry
    when the filter selects the undecodable ones' name, which no payload holds."""
    if selection.class_name is None or class_matches(selection.class_name, UNDECODABLE):
        return None
    # a lone surrogate (never in UTF-8 text) passes through to bytes no entry without a backslash holds
    needle = fold(selection.class_name).encode("utf-8", "surrogatepass")

    def maybe(raw: bytes) -> bool:
        return b"\\" in raw or needle in raw.lower()

    return maybe


#: characters every JSON writer (Ruby's, PHP's, Python's) writes as themselves inside a string
_VERBATIM = frozenset(chr(c) for c in range(0x20, 0x7F)) - set('"\\/')


def queue_prefilter(names: set[str] | None) -> Callable[[bytes], bool] | None:
    """A byte test that rejects failure entries which cannot be of these queues (None: any queue).

    A name of `_VERBATIM` characters is in an entry of its queue as it is. Any other is written
    escaped by some writer or all (a control character always, `/` by PHP, `é` as `\\u00e9` by PHP
    and Python), so an entry with a backslash is always read, as `class_prefilter` does."""
    if names is None:
        return None
    plain = [q.encode("utf-8") for q in names if set(q) <= _VERBATIM]
    escaped = [q.encode("utf-8", "surrogatepass") for q in names if not set(q) <= _VERBATIM]

    def maybe(raw: bytes) -> bool:
        return any(n in raw for n in plain) or (bool(escaped) and (b"\\" in raw or any(n in raw for n in escaped)))

    return maybe


class View(Twins):
    """The store as seen at `now` (one per backend call)."""

    def __init__(self, backend: RedisBackend, now: datetime, max_run_time: float | None = None) -> None:
        self.b = backend
        self.max_run_time = max_run_time or backend.options.max_run_time
        self.c = backend.client
        self.k = backend.keys
        self.now = now
        self._locked: list[Rec] | None = None
        self._locks: list[Lock] | None = None
        self._lock_recs: dict[int, Rec | None] = {}
        self._twins: tuple[list[int], Counter[tuple[str | None, bytes]]] | None = None
        self._pending: dict[tuple[str, bytes], bool] = {}
        self._known: list[str] | None = None
        #: keys of the wrong type (or counters that are no numbers) met so far: key -> why
        self.problems: dict[str, str] = {}
        self._stamp_memo: dict[bytes, list[int]] = {}
        self._ftokens: dict[bytes, str] = {}
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
                have = self.c.type(key).decode("utf-8", "replace")
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
        if self._beats is None:
            self._beats = {name: parse_time(info.get("heartbeat_at")) for name, info in self.qworkers().items()}
        return owner_dead(worker, self._beats, self.now, self.b.options.worker_timeout)

    def resque_dead(self, rid: str, beat: datetime | None) -> bool:
        """A Ruby or PHP worker is dead when its heartbeat stopped, or it was a process of this host
        that is gone (PHP workers never beat)."""
        host, pid = split_rid(rid)
        if host == HOSTNAME and pid is not None and not pid_alive(pid):
            return True
        limit = max(self.b.options.worker_timeout, RESQUE_PRUNE_INTERVAL)
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
            out.append(Lock("locked", self.k.locked, raw, env, queue, stale, False, None))
        foreign = self.foreign_rids()
        if foreign:
            values = self.c.mget([self.k.worker(r) for r in foreign])
            beats = self.resque_beats()
            for rid, value in zip(foreign, values):
                read = read_held(value) if value is not None else None
                if read is None:
                    continue
                entry = read[1]
                queue = entry.get("queue") if isinstance(entry.get("queue"), str) else None
                locked_at = parse_time(entry.get("run_at"))
                dead = self.resque_dead(rid, beats.get(rid))
                stale = dead or (locked_at is not None and locked_at < cutoff)
                out.append(Lock("held", self.k.worker(rid), value, read, queue, stale, dead, rid))
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
            owner = (lock.parsed["worker"] or "") if lock.kind == "locked" else None
            if owner is None or owner in known:
                continue
            known.add(owner)
            live += not lock.stale
        return live

    def lock_rec(self, i: int) -> Rec | None:
        """The record of `locks()[i]`, built once."""
        if i not in self._lock_recs:
            lock = self.locks()[i]
            if lock.kind == "locked":
                rec = locked_rec(lock.key, lock.raw, lock.parsed, lock.stale)
            else:
                rec = held_rec(lock.key, lock.rid or "", lock.raw, lock.parsed, lock.stale)
                if rec is not None:
                    rec.extra["dead"] = lock.dead
            if rec is not None:
                rename(rec, self.lock_twins()[0][i])
            self._lock_recs[i] = rec
        return self._lock_recs[i]

    def locked_recs(self) -> list[Rec]:
        """Every held job as a record (built on first use: counts need only `locks`)."""
        if self._locked is None:
            recs = (self.lock_rec(i) for i in range(len(self.locks())))
            self._locked = [r for r in recs if r is not None]
        return self._locked

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

    # --- reading lists in windows ---------------------------------------------------------------
    def _window(self, key: str, lo: int, hi: int, zset: bool) -> list[bytes]:
        if zset:
            return self.read(key, "sorted set", lambda: self.c.zrange(key, lo, hi), [])
        return self.read(key, "list", lambda: self.c.lrange(key, lo, hi), [])

    def _length(self, key: str, zset: bool) -> int:
        return int(
            self.read(key, "sorted set" if zset else "list", lambda: self.c.zcard(key) if zset else self.c.llen(key), 0)
        )

    def iter_list(self, key: str, after: int | None, desc: bool, zset: bool = False) -> Iterator[tuple[int, bytes]]:
        """(index, element) from just after `after` (None: from the start), forwards or backwards."""
        if not desc:
            i = 0 if after is None else after + 1
            while True:
                items = self._window(key, i, i + WINDOW - 1, zset)
                for n, raw in enumerate(items):
                    yield i + n, raw
                if len(items) < WINDOW:
                    return
                i += WINDOW
        else:
            i = self._length(key, zset) - 1 if after is None else after - 1
            while i >= 0:
                lo = max(0, i - WINDOW + 1)
                items = self._window(key, lo, i, zset)
                for n in range(len(items) - 1, -1, -1):
                    yield lo + n, items[n]
                i = lo - 1

    def iter_delayed(
        self, after: tuple[int, int] | None, desc: bool, keep: Callable[[bytes], bool] | None = None
    ) -> Iterator[tuple[tuple[int, int], bytes, int]]:
        """((timestamp, index), item, byte-identical items before it in its list) over
        resque-scheduler's delayed lists, in time order."""
        bound: str | None = None
        first = True
        while True:
            if not desc:
                lo = f"({bound}" if bound is not None else (str(after[0]) if after else "-inf")
                stamps = self.read(
                    self.k.schedule,
                    "sorted set",
                    lambda: self.c.zrangebyscore(self.k.schedule, lo, "+inf", start=0, num=200, withscores=True),
                    [],
                )
            else:
                hi = f"({bound}" if bound is not None else (str(after[0]) if after else "+inf")
                stamps = self.read(
                    self.k.schedule,
                    "sorted set",
                    lambda: self.c.zrevrangebyscore(self.k.schedule, hi, "-inf", start=0, num=200, withscores=True),
                    [],
                )
            if not stamps:
                return
            for member, _score in stamps:
                ts = schedule_second(member)
                if ts is None:  # not a second (poison): no list is named by it
                    continue
                resume = after[1] if (first and after is not None and ts == after[0]) else None
                key = self.k.delayed(ts)
                for i, raw, before in self.iter_ranked(key, resume, desc, keep):
                    yield (ts, i), raw, before
                if key in self.problems and resume is None:
                    yield (ts, -1), None, 0  # the list is of the wrong type: shown as unreadable
                first = False
            bound = repr(float(stamps[-1][1]))  # paged by score: a member need not be a number
            first = False

    # --- segments -------------------------------------------------------------------------------
    def walk(
        self, selection: JobFilter, sort: str, cursor: str | None, slim: bool = False
    ) -> Iterator[tuple[list[Any], Rec]]:
        """(position, record) of every entry that may match, in the sort's order, after the cursor.

        Entries that cannot match are skipped unread where bytes tell (`class_prefilter`, a lock's
        queue and staleness). With `slim`, failure entries come as slim records when the filter
        needs no more than their state and queue (what a bulk verb keeps of them)."""
        if sort not in ORDERS:
            raise UsageError(f"unknown sort {sort!r}; expected one of: {', '.join(ORDERS)}")
        order, names_desc = ORDERS[sort]
        start = decode_cursor(cursor, sort) if cursor else None
        states = wanted_states(selection)
        types = [t for t, _ in order]
        maybe = class_prefilter(selection)
        slim_failed = slim and states_and_queues_only(selection)
        for seg_type, desc in order:
            if not SEGMENT_STATES[seg_type] & states:
                continue
            if start is not None and types.index(seg_type) < types.index(start[0]):
                continue
            here = start is not None and seg_type == start[0]
            if seg_type == "Q":
                names = sorted(self.queue_names(selection), reverse=names_desc)
                for name in names:
                    after = None
                    if here and start is not None:
                        if (name < start[1]) if not names_desc else (name > start[1]):
                            continue
                        if name == start[1]:
                            after = start[2]
                    key = self.k.queue(name)
                    held = self.lock_twins()[1] if self.locks() else None
                    for i, raw, before in self.iter_ranked(key, after, desc, maybe):
                        rec = queue_rec(key, name, raw, i)
                        if before is None:  # counted for the entries a page shows (`named`)
                            rec.extra["_check"] = True
                        else:
                            rename(rec, before + 1 + (held[(name, raw)] if held else 0))
                        yield ["Q", name, i], rec
                    if key in self.problems and after is None:
                        yield ["Q", name, -1], unreadable_rec(key, name, JobState.PENDING, self.problems[key])
                continue
            after = start[2] if here and start is not None else None
            if seg_type == "L":
                locks = self.locks()
                indexes = range(len(locks)) if not desc else range(len(locks) - 1, -1, -1)
                for i in indexes:
                    if after is not None and ((i <= after) if not desc else (i >= after)):
                        continue
                    lock = locks[i]
                    if selection.queues and (lock.queue or "") not in selection.queues:
                        continue
                    if (selection.stale_only and not lock.stale) or (maybe is not None and not maybe(lock.raw)):
                        continue
                    rec = self.lock_rec(i)
                    if rec is not None:
                        yield ["L", "", i], rec
            elif seg_type == "D":
                for (ts, i), raw, before in self.iter_delayed(
                    tuple(after) if after else None,
                    desc,  # type: ignore[arg-type]
                    maybe,
                ):
                    yield ["D", "", [ts, i]], self.delayed(ts, i, raw, before, lazy=True)
            elif seg_type == "F":
                read = failed_slim if slim_failed else failed_rec
                for i, raw, same in self.iter_failed(after, desc, maybe):
                    rec = read(self.k.failed, raw, i)
                    if not retried_entry(rec):
                        yield ["F", "", i], self.name_failed(rec, same, lazy=True)
                if self.k.failed in self.problems and after is None:
                    yield (
                        ["F", "", -1],
                        unreadable_rec(self.k.failed, None, JobState.FAILED, self.problems[self.k.failed]),
                    )
            elif seg_type == "Z":
                for i, raw in self.iter_list(self.k.finished, after, desc, zset=True):
                    if maybe is not None and not maybe(raw):
                        continue
                    rec = finished_rec(self.k.finished, raw)
                    if rec is not None:
                        rec.index = i
                        yield ["Z", "", i], rec
            start = None

    # --- lookups by id --------------------------------------------------------------------------
    def lookup(self, wanted: Wanted, first_live: bool = False) -> dict[IdParts, list[Rec]]:
        """The stored entry each wanted id names (`Wanted.choose`), searched in the order locked,
        pending, scheduled, failed, then history. With `first_live`, stop as soon as each id has a
        live entry."""
        found: dict[IdParts, list[Rec]] = {}

        def add(rec: Rec) -> None:
            for part in wanted.hits(rec):
                found.setdefault(part, []).append(rec)

        def done() -> bool:
            return first_live and all(any(r.job.state in LIVE for r in found.get(p, ())) for p in wanted.pairs)

        for i in range(len(self.locks())):
            rec = self.lock_rec(i)
            if rec is not None:
                add(rec)
        if done():
            return wanted.choose(found)
        names = wanted.queues()
        held = self.lock_twins()[1] if self.locks() else None
        for qname in sorted(names) if names is not None else self.queue_names():
            key = self.k.queue(qname)
            for i, raw, before in self.iter_ranked(key, None, False, lambda raw: wanted.wants(quick_token(raw), qname)):
                n = before + 1 + (held[(qname, raw)] if held else 0)
                add(rename(queue_rec(key, qname, raw, i), n))
                if done():
                    return wanted.choose(found)
            if key in self.problems:
                add(unreadable_rec(key, qname, JobState.PENDING, self.problems[key]))
        for (ts, i), raw, before in self.iter_delayed(None, False, lambda raw: wanted.any_queue(quick_token(raw))):
            add(self.delayed(ts, i, raw, before))
        if done():
            return wanted.choose(found)
        maybe = queue_prefilter(names)

        def failed_wanted(raw: bytes) -> bool:
            return (maybe is None or maybe(raw)) and wanted.any_queue(failed_token(raw))

        for i, raw, same in self.iter_failed(None, False, failed_wanted):
            rec = failed_rec(self.k.failed, raw, i)
            if not retried_entry(rec):
                add(self.name_failed(rec, same))
        if self.k.failed in self.problems:
            add(unreadable_rec(self.k.failed, None, JobState.FAILED, self.problems[self.k.failed]))
        if done():
            return wanted.choose(found)
        for i, raw in self.iter_list(self.k.finished, None, True, zset=True):
            rec = finished_rec(self.k.finished, raw)
            if rec is not None:
                rec.index = i
                add(rec)
        return wanted.choose(found)


def retried_entry(rec: Rec) -> bool:
    """A failure entry marked `retried_at` (by qadmin or resque-web) is the history of a failure,
    not a job: the job lives on where the retry put it (pending, running, finished, or failed
    again in an entry of its own). It is counted and listed in no state: `finished` means
    completed successfully, on every backend."""
    return rec.kind == "failed" and rec.job.state is JobState.FINISHED


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


def encode_cursor(sort: str, pos: list[Any]) -> str:
    return json.dumps([sort, *pos], separators=(",", ":"))


def _position(value: Any) -> bool:
    """An index or score Redis takes (a 64-bit integer; JSON's true is no position)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def decode_cursor(cursor: str, sort: str) -> tuple[str, str, Any]:
    try:
        value = json.loads(cursor)
        if not (
            isinstance(value, list)
            and len(value) == 4
            and value[0] == sort
            and value[1] in SEGMENT_STATES
            and isinstance(value[2], str)
        ):
            raise ValueError("bad shape")
        pos = value[3]
        if value[1] == "D":
            if not (isinstance(pos, list) and len(pos) == 2 and all(_position(x) for x in pos)):
                raise ValueError("bad position")
        elif not _position(pos):
            raise ValueError("bad position")
        return value[1], value[2], pos
    except (ValueError, TypeError):
        raise UsageError(f"invalid page cursor {cursor!r}") from None
