"""Admin verbs of the Redis backend: get, find, count, and the guarded retry, delete and unlock.

A verb acts on the entries a listing showed: records read by `iter_ids`/`find` are remembered
(slim) so that a bulk verb needs no second search, and every change is guarded by the bytes read.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qadmin.backends import _redis_scan as scan
from qadmin.backends._redis_json import dumps, ruby_failed_at, with_members
from qadmin.backends._redis_lua import UNITS_PER_CALL, Batch
from qadmin.backends._redis_records import (
    Rec,
    delayed_rec,
    failed_rec,
    finished_rec,
    first_found,
    name,
    queue_rec,
    requeue_bytes,
    split_ids,
    status_key_parts,
)
from qadmin.backends.base import SORTS, Page
from qadmin.errors import JobNotFound, UsageError
from qadmin.filters import JobFilter
from qadmin.job import Job, JobId, JobState

if TYPE_CHECKING:
    from qadmin.backends.redis import RedisBackend

#: records remembered between a listing and a verb, so bulk verbs need not search again
REMEMBER = 200_000
#: failure entries per `requeue_failed.lua` call: a few milliseconds of Redis time
REQUEUE_PER_CALL = 1000
_GENERATIONS = itertools.count(1)


class AdminMixin:
    def _remember(self: RedisBackend, recs: Sequence[Rec]) -> None:
        """Remember every entry of an id (equal jobs share one), so that a verb acts on each."""
        grouped: dict[str, list[Rec]] = {}
        for rec in recs:
            grouped.setdefault(str(rec.job.id), []).append(rec.slim())
        with self._mutex:
            for key, group in grouped.items():
                self._recs.pop(key, None)
                self._recs[key] = group
            while len(self._recs) > REMEMBER:
                self._recs.popitem(last=False)

    # --- admin verbs --------------------------------------------------------------------------
    def get(self: RedisBackend, job_id: JobId, now: datetime) -> Job:
        readings = split_ids(job_id)
        with self._wrap():
            found = first_found(readings, self._view(now).lookup(scan.Wanted(list(readings)), first_live=True))
        if not found:
            raise JobNotFound(job_id)
        live = [r for r in found if r.job.state in scan.LIVE]
        rec = (live or found)[0]
        self._remember([rec])
        job = rec.job
        parts = status_key_parts(job.meta)
        if parts is not None:
            key = self.keys.status(*parts)
            with self._wrap():  # a status key of the wrong type (poison) is no status
                status = self._view(now).read(key, "string", lambda: self.client.get(key), None)
            if status is not None:
                try:
                    job = replace(job, meta={**job.meta, "status": json.loads(status)})
                except ValueError:
                    pass
        return job

    def find(
        self: RedisBackend,
        selection: JobFilter,
        now: datetime,
        *,
        limit: int,
        cursor: str | None = None,
        sort: str = "id",
    ) -> Page:
        if sort not in SORTS:
            raise UsageError(f"unknown sort {sort!r}; expected one of: {', '.join(SORTS)}")
        if selection.ids:
            return self._find_ids(selection, now, limit, cursor)
        states = scan.wanted_states(selection)
        out: list[Rec] = []
        last: list[Any] | None = None
        more = False
        with self._wrap():
            view = self._view(now)
            for pos, rec in view.walk(selection, sort, cursor):
                if rec.job.state not in states or not selection.matches(rec.job):
                    continue
                if len(out) == limit:
                    more = True
                    break
                out.append(view.named(rec))  # which of its twins it is, for the entries shown
                last = pos
        self._remember(out)
        return Page([r.job for r in out], scan.encode_cursor(sort, last) if more and last is not None else None)

    def _by_ids(self: RedisBackend, selection: JobFilter, now: datetime) -> list[Rec]:
        readings = [split_ids(i) for i in selection.ids]
        rest = replace(selection, ids=())
        states = scan.wanted_states(selection)
        with self._wrap():
            found = self._view(now).lookup(scan.Wanted(sorted({p for r in readings for p in r}, key=str)))
        out: list[Rec] = []
        seen: set[int] = set()
        for reading in readings:
            for rec in first_found(reading, found):
                if id(rec) not in seen and rec.job.state in states and rest.matches(rec.job):
                    seen.add(id(rec))
                    out.append(rec)
        return out

    def _find_ids(self: RedisBackend, selection: JobFilter, now: datetime, limit: int, cursor: str | None) -> Page:
        try:
            offset = int(cursor.removeprefix("ids:")) if cursor else 0
        except ValueError:
            raise UsageError(f"invalid page cursor {cursor!r}") from None
        # ids from a listing or a preview just made (a preview's sample) are read back where they
        # were, without a search; the remembered entries stay as the listing left them
        rest = replace(selection, ids=())
        states = scan.wanted_states(selection)
        recs = self._reread(
            selection.ids, now, lambda r: r.job.state in states and rest.matches(r.job), offset + limit + 1
        )
        if recs is None:
            recs = self._by_ids(selection, now)
            self._remember(recs)
        page = recs[offset : offset + limit]
        more = offset + limit < len(recs)
        return Page([r.job for r in page], f"ids:{offset + limit}" if more else None)

    def iter_ids(self: RedisBackend, selection: JobFilter, now: datetime, batch: int = 5000) -> Iterator[list[JobId]]:
        if selection.ids:
            recs = self._by_ids(selection, now)
            gen = _generation()
            for rec in recs:
                rec.extra["gen"] = gen
            self._remember(recs)
            for start in range(0, len(recs), batch):
                yield [r.job.id for r in recs[start : start + batch]]
            return
        states = scan.wanted_states(selection)
        gen = _generation()
        chunk: list[Rec] = []
        with self._wrap():
            for _pos, rec in self._view(now).walk(selection, "id", None, slim=True):
                if rec.job.state not in states or not selection.matches(rec.job):
                    continue
                rec.extra["gen"] = gen
                chunk.append(rec)
                if len(chunk) == batch:
                    self._remember(chunk)
                    yield [r.job.id for r in chunk]
                    chunk = []
        if chunk:
            self._remember(chunk)
            yield [r.job.id for r in chunk]

    def _reread(
        self: RedisBackend, ids: Sequence[JobId], now: datetime, wanted: Callable[[Rec], bool], cap: int
    ) -> list[Rec] | None:
        """The remembered entries of these ids, read back where they were and rebuilt in full, the
        wanted ones up to `cap`; None when an id is not remembered or an entry moved (then only a
        search can tell where it is)."""
        with self._mutex:
            groups = [list(self._recs.get(str(i), ())) for i in dict.fromkeys(str(i) for i in ids)]
        # only a bulk scan (`iter_ids`, which marks its entries with their scan) saw every entry of
        # an id; a listing's page may have shown one of several equal jobs
        if not all(groups) or not all("gen" in r.extra for g in groups for r in g):
            return None
        view = self._view(now)
        out: list[Rec] = []
        with self._wrap():
            for group in groups:
                for start in range(0, len(group), 100):
                    part = group[start : start + 100]
                    pipe = self.client.pipeline(transaction=False)
                    for rec in part:
                        if rec.kind == "finished":
                            pipe.zscore(rec.key, rec.raw)
                        elif rec.kind in ("queue", "failed", "delayed"):
                            pipe.lindex(rec.key, self._hint(rec))
                        else:
                            pipe.exists(rec.key)
                    # an entry in a key of the wrong type meanwhile is one that moved: found afresh
                    for rec, seen in zip(part, pipe.execute(raise_on_error=False)):
                        if isinstance(seen, Exception):
                            return None
                        full = self._rebuilt(rec, seen, view)
                        if full is None:
                            return None
                        if wanted(full):
                            out.append(full)
                            if len(out) >= cap:
                                return out
        return out

    def _rebuilt(self: RedisBackend, rec: Rec, seen: Any, view: scan.View) -> Rec | None:
        """A remembered (slim) entry as a full record, if it is still stored as it was read."""
        index = self._hint(rec)
        if rec.kind == "unreadable":
            return None
        if rec.kind == "finished":
            full = finished_rec(rec.key, rec.raw) if seen is not None else None
            if full is not None:
                full.index = rec.index
            return full
        if rec.kind in ("locked", "held"):
            return next((r for r in view.locked_recs() if r.raw == rec.raw and r.key == rec.key), None)
        if seen != rec.raw:
            return None
        if rec.kind == "queue":
            full = queue_rec(rec.key, rec.job.queue or "", rec.raw, index)
        elif rec.kind == "delayed":
            full = delayed_rec(rec.key, rec.extra["ts"], rec.raw, index, view.now)
        else:
            full = failed_rec(rec.key, rec.raw, index)
        return name(full, rec.extra.get("n", 1), rec.extra.get("where"))  # which of its twins it was read as

    def count(self: RedisBackend, selection: JobFilter, now: datetime) -> int:
        simple = replace(selection, states=frozenset(), queues=())
        if simple.is_empty:
            states = scan.wanted_states(selection)
            counts = self._counts(now, selection.queues or None, states=states)
            return sum(c.get(s.value, 0) for c in counts.values() for s in states)
        return sum(len(ids) for ids in self.iter_ids(selection, now))

    # --- changing jobs ------------------------------------------------------------------------
    def _resolve(
        self: RedisBackend, ids: Sequence[JobId], states: frozenset[JobState], now: datetime, fresh: bool = False
    ) -> list[Rec]:
        """The stored entries these ids name, in the wanted states; an id given n times names up
        to n equal entries. Remembered entries (from the listing the ids came from) first."""
        out: list[Rec] = []
        missing: list[str] = []
        used: set[int] = set()
        with self._mutex:  # once for all: a bulk verb resolves thousands of ids per call
            for raw_id in ids:
                key = str(raw_id)
                candidates = () if fresh else self._recs.get(key, ())
                pick = next((r for r in candidates if id(r) not in used and r.job.state in states), None)
                if pick is None:
                    missing.append(key)
                else:
                    used.add(id(pick))
                    out.append(pick)
        if missing:
            readings = [split_ids(i) for i in missing]
            with self._wrap():
                found = self._view(now).lookup(scan.Wanted(sorted({p for r in readings for p in r}, key=str)))
            for reading in readings:
                pick = next(
                    (r for r in first_found(reading, found) if id(r) not in used and r.job.state in states), None
                )
                if pick is not None:
                    used.add(id(pick))
                    out.append(pick)
        return out

    def _apply_units(
        self: RedisBackend,
        recs: list[Rec],
        steps_of: Callable[[Rec], list[Any] | None],
        states: frozenset[JobState],
        now: datetime,
        shifts: bool = False,
    ) -> list[JobId]:
        """Run one guarded unit per entry, in batches; entries that changed since they were read are
        looked up afresh once (the guard keeps a changed entry safe)."""
        changed: list[JobId] = []
        retry: list[JobId] = []
        for start in range(0, len(recs), UNITS_PER_CALL):
            part = recs[start : start + UNITS_PER_CALL]
            batch = Batch()
            planned: list[Rec] = []
            for rec in part:
                steps = steps_of(rec)
                if steps:
                    batch.unit(*steps)
                    planned.append(rec)
            for rec, ok in zip(planned, self._run(batch)):
                self._forget(rec)
                if ok:
                    changed.append(rec.job.id)
                    if shifts and rec.kind in ("queue", "failed"):
                        self._shift(rec)
                else:
                    retry.append(rec.job.id)
        if retry:
            again = self._resolve(retry, states, now, fresh=True)
            for start in range(0, len(again), UNITS_PER_CALL):
                batch = Batch()
                planned = []
                for rec in again[start : start + UNITS_PER_CALL]:
                    steps = steps_of(rec)
                    if steps:
                        batch.unit(*steps)
                        planned.append(rec)
                changed.extend(rec.job.id for rec, ok in zip(planned, self._run(batch)) if ok)
        return changed

    def _forget(self: RedisBackend, *recs: Rec) -> None:
        with self._mutex:
            for rec in recs:
                key = str(rec.job.id)
                group = self._recs.get(key)
                if group is not None:
                    if len(group) == 1 and group[0] is rec:
                        del self._recs[key]
                        continue
                    group[:] = [r for r in group if r is not rec]
                    if not group:
                        del self._recs[key]

    def _hint(self: RedisBackend, rec: Rec) -> int:
        """The entry's index now: its index when read, less the entries removed before it since."""
        with self._mutex:
            removed = self._removed.get(rec.extra.get("gen", -1), {}).get(rec.key)
            if not removed or rec.index < 0:
                return rec.index
            return rec.index - bisect.bisect_left(removed, rec.index)

    def _shift(self: RedisBackend, rec: Rec) -> None:
        gen = rec.extra.get("gen")
        if gen is None or rec.index < 0:
            return
        with self._mutex:
            removed = self._removed.setdefault(gen, {}).setdefault(rec.key, [])
            if not removed or removed[-1] < rec.index:
                removed.append(rec.index)
            else:
                bisect.insort(removed, rec.index)
            while len(self._removed) > 4:
                self._removed.pop(min(self._removed))

    def retry(self: RedisBackend, ids: Sequence[JobId], now: datetime, *, remove: bool | None = None) -> list[JobId]:
        """Re-enqueue failure entries' whole payloads (qadmin's attempts reset); mark each entry
        `retried_at` as resque-web does, or remove it (`remove=True`, or `failed_on_retry="remove"`)."""
        remove = self.failed_on_retry == "remove" if remove is None else remove
        states = frozenset({JobState.FAILED})
        recs = self._resolve(ids, states, now)
        stamp = ruby_failed_at(now)

        def steps(rec: Rec) -> list[Any] | None:
            queue = rec.job.queue
            # an undecodable payload goes back as it is, like any other (Job's contract: it can be
            # retried, no qadmin worker runs it); an entry with no payload has nothing to re-enqueue
            if rec.payload is None or not queue:
                return None
            if remove:
                guard = ("TOMB", [rec.key], [self._hint(rec), rec.raw])
            else:
                guard = ("LSETEQ", [rec.key], [self._hint(rec), rec.raw, _marked(rec.raw, stamp)])
            again = requeue_bytes(rec.payload)
            return [
                guard,
                ("RPUSH", [self.keys.queue(queue)], [again]),
                ("SADD", [self.keys.queues], [queue]),
                *self._status_steps(rec.job.meta, 1, now, None),
            ]

        # failure entries of plain payloads go in bulk, a php-resque status key needs a step of its
        # own: runs of each, in the order read, so jobs are pushed in that order
        changed: list[JobId] = []
        missed: list[JobId] = []
        for in_bulk, run in itertools.groupby(
            recs,
            key=lambda r: (
                r.kind == "failed"
                and r.payload is not None
                and bool(r.job.queue)
                and status_key_parts(r.job.meta) is None
            ),
        ):
            if in_bulk:
                done, lost = self._requeue_failed(list(run), stamp, remove)
                changed += done
                missed += lost
            else:
                changed += self._apply_units(list(run), steps, states, now, shifts=remove)
        if missed:  # moved since they were read: found afresh, once
            changed += self._apply_units(
                self._resolve(missed, states, now, fresh=True), steps, states, now, shifts=remove
            )
        return changed

    def _requeue_failed(
        self: RedisBackend, recs: list[Rec], stamp: str, remove: bool
    ) -> tuple[list[JobId], list[JobId]]:
        """Retry failure entries REQUEUE_PER_CALL at a time with `requeue_failed.lua`: what `retry`'s
        units do (guard, mark or remove, push), in one LRANGE for a run of neighbouring entries.
        Returns the changed ids and those of entries that were not where they were read."""
        changed: list[JobId] = []
        missed: list[JobId] = []
        script = self._requeue
        mark = b',"retried_at":' + dumps(stamp).encode("utf-8") + b"}"
        for start in range(0, len(recs), REQUEUE_PER_CALL):
            part = recs[start : start + REQUEUE_PER_CALL]
            keys: list[Any] = [self.keys.failed, self.keys.queues]
            names: list[str] = []
            key_index: dict[str, int] = {}
            ints: list[int] = []
            raws: list[bytes] = []
            extra: list[bytes] = []
            for rec in part:
                queue = rec.job.queue
                index = key_index.get(queue)
                if index is None:
                    keys.append(self.keys.queue(queue))
                    names.append(queue)
                    index = key_index[queue] = len(keys)
                raw = rec.raw
                if remove or _plain_end(raw):
                    marked = -1
                else:
                    new = _marked(raw, stamp)
                    extra.append(new)
                    marked = len(new)
                push = requeue_bytes(rec.payload)
                at = raw.find(push)  # a payload is pushed as it is in the entry, bookkeeping aside
                if at < 0:
                    extra.append(push)
                raws.append(raw)
                ints += (self._hint(rec), len(raw), marked, at, len(push), index)
            tomb = b"qadmin:tombstone:" + os.urandom(12).hex().encode() if remove else b""
            args = [
                tomb,
                len(part),
                struct.pack(f">{len(ints)}q", *ints),
                b"".join(raws),
                b"".join(extra),
                mark,
                *names,
            ]
            with self._wrap():
                results = script(keys=keys, args=args, client=self.client)
            self._forget(*part)
            for rec, ok in zip(part, results):
                if ok:
                    changed.append(rec.job.id)
                    if remove:
                        self._shift(rec)
                else:
                    missed.append(rec.job.id)
        return changed, missed

    def delete(self: RedisBackend, ids: Sequence[JobId], now: datetime, states: frozenset | None = None) -> list[JobId]:
        allowed = frozenset(states) if states else frozenset(scan.LIVE | {JobState.FINISHED})
        recs = [r for r in self._resolve(ids, allowed, now) if r.kind != "finished"]

        def steps(rec: Rec) -> list[Any] | None:
            if rec.kind == "unreadable":  # a key of the wrong type: nothing in it can be told apart
                return None
            if rec.kind in ("queue", "failed"):
                guard: tuple[str, list[Any], list[Any]] = ("TOMB", [rec.key], [self._hint(rec), rec.raw])
                rest: list[Any] = []
            elif rec.kind == "delayed":
                guard = ("LREM", [rec.key], [1, rec.raw])
                rest = [
                    ("SREM", [self.keys.timestamps(rec.raw)], [self.keys.stamp_member(rec.extra["ts"])]),
                    ("DROPEMPTY", [rec.key, self.keys.schedule], [rec.extra["ts"]]),
                ]
            elif rec.kind == "locked":
                guard, rest = ("ZREM", [self.keys.locked], [rec.raw]), []
            else:  # held by a Resque worker: the job vanishes from worker:ID (the worker still runs it)
                guard, rest = ("DELEQ", [rec.key], [rec.raw]), []
            unique = rec.job.meta.get("unique")
            if unique is not None:
                rest.append(("HDELEQ", [self.keys.unique], [unique, str(rec.job.id)]))
            return [guard, *rest]

        return self._apply_units(recs, steps, allowed, now, shifts=True)

    def unlock(self: RedisBackend, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """Held jobs go back to the head of their queue; a dead holder's registration is pruned."""
        states = frozenset({JobState.LOCKED})
        recs = self._resolve(ids, states, now)
        view = self._view(now)

        def steps(rec: Rec) -> list[Any] | None:
            if rec.kind == "held":
                dead = rec.extra.get("dead", False)
            else:
                dead = view.owner_dead(rec.job.locked_by or "")
            return self._give_back(rec, prune=dead)

        with self._wrap():
            return self._apply_units(recs, steps, states, now)


def _marked(raw: bytes, stamp: str) -> bytes:
    """A failure entry with resque-web's `retried_at` mark; every other byte stays (rule 9)."""
    if _plain_end(raw):
        return raw[:-1] + b',"retried_at":' + dumps(stamp).encode("utf-8") + b"}"
    seen = {} if b'"retried_at"' not in raw else None
    return with_members(raw.decode("utf-8"), {"retried_at": stamp}, obj=seen).encode("utf-8")


def _plain_end(raw: bytes) -> bool:
    """Whether the mark goes right before the entry's closing brace, as `with_members` would put
    it: an entry as Resque writes it ends its last member there (and has no `retried_at` yet)."""
    return raw[-1:] == b"}" and raw[-2:-1] not in _NO_APPEND and b'"retried_at"' not in raw


#: bytes before an entry's closing brace that `with_members` would strip or not follow with a comma
_NO_APPEND = (b"", b" ", b"\t", b"\n", b"\r", b"{")


def _generation() -> int:
    """Each scan's indexes are a coordinate system of their own (see `_hint`)."""
    return next(_GENERATIONS)
