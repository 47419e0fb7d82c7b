"""Changing jobs on Redis: retry, delete and unlock, each a guarded unit per entry.

A verb acts on the entries a listing showed (remembered in `memory.py`), and every change is
guarded by the bytes read: an entry that changed since is looked up afresh once, never acted on
blindly.

Retrying a failure entry re-enqueues its whole payload and, like resque-web, keeps the entry with
a `retried_at` mark (such entries are history, in no state); `failed_on_retry="remove"` removes it.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from qadmin.backends.redis.ids import split_ids
from qadmin.backends.redis.json_text import dumps, ruby_failed_at, with_members
from qadmin.backends.redis.memory import Memory
from qadmin.backends.redis.payloads import requeue_bytes, status_key_parts
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.records import Rec, first_found
from qadmin.backends.redis.scripts import UNITS_PER_CALL, Batch
from qadmin.backends.redis.selection import LIVE
from qadmin.backends.redis.server import Server
from qadmin.backends.redis.steps import give_back, status_steps
from qadmin.backends.redis.view import View
from qadmin.backends.redis.wanted import Wanted
from qadmin.job import JobId, JobState

#: failure entries per `requeue_failed.lua` call: a few milliseconds of Redis time
REQUEUE_PER_CALL = 1000


class Changes:
    """retry, delete, unlock (`failed_on_retry`: "mark" or "remove", what a retry does to the entry)."""

    def __init__(self, server: Server, memory: Memory, failed_on_retry: str) -> None:
        self.server = server
        self.keys = server.keys
        self.client = server.client
        self.memory = memory
        self.failed_on_retry = failed_on_retry

    def _resolve(
        self, ids: Sequence[JobId], states: frozenset[JobState], now: datetime, fresh: bool = False
    ) -> list[Rec]:
        """The stored entries these ids name, in the wanted states; an id given n times names up
        to n equal entries. Remembered entries (from the listing the ids came from) first."""
        out: list[Rec] = []
        missing: list[str] = []
        used: set[int] = set()
        with self.memory.mutex:  # once for all: a bulk verb resolves thousands of ids per call
            for raw_id in ids:
                key = str(raw_id)
                candidates = () if fresh else self.memory.recs.get(key, ())
                pick = next((r for r in candidates if id(r) not in used and r.job.state in states), None)
                if pick is None:
                    missing.append(key)
                else:
                    used.add(id(pick))
                    out.append(pick)
        if missing:
            readings = [split_ids(i) for i in missing]
            with self.server.wrap():
                found = View(self.server, now).lookup(Wanted(sorted({p for r in readings for p in r}, key=str)))
            for reading in readings:
                pick = next(
                    (r for r in first_found(reading, found) if id(r) not in used and r.job.state in states), None
                )
                if pick is not None:
                    used.add(id(pick))
                    out.append(pick)
        return out

    def _apply_units(
        self,
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
            for rec, ok in zip(planned, self.server.run(batch)):
                self.memory.forget(rec)
                if ok:
                    changed.append(rec.job.id)
                    if shifts and rec.kind in (Place.QUEUE, Place.FAILED):
                        self.memory.shift(rec)
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
                changed.extend(rec.job.id for rec, ok in zip(planned, self.server.run(batch)) if ok)
        return changed

    def retry(self, ids: Sequence[JobId], now: datetime, *, remove: bool | None = None) -> list[JobId]:
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
                guard = ("TOMB", [rec.key], [self.memory.hint(rec), rec.raw])
            else:
                guard = ("LSETEQ", [rec.key], [self.memory.hint(rec), rec.raw, _marked(rec.raw, stamp)])
            again = requeue_bytes(rec.payload)
            return [
                guard,
                ("RPUSH", [self.keys.queue(queue)], [again]),
                ("SADD", [self.keys.queues], [queue]),
                *status_steps(self.server, rec.job.meta, 1, now, None),
            ]

        # failure entries of plain payloads go in bulk, a php-resque status key needs a step of its
        # own: runs of each, in the order read, so jobs are pushed in that order
        changed: list[JobId] = []
        missed: list[JobId] = []
        for in_bulk, run in itertools.groupby(
            recs,
            key=lambda r: (
                r.kind is Place.FAILED
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

    def _requeue_failed(self, recs: list[Rec], stamp: str, remove: bool) -> tuple[list[JobId], list[JobId]]:
        """Retry failure entries REQUEUE_PER_CALL at a time with `requeue_failed.lua`: what `retry`'s
        units do (guard, mark or remove, push), in one LRANGE for a run of neighbouring entries.
        Returns the changed ids and those of entries that were not where they were read."""
        changed: list[JobId] = []
        missed: list[JobId] = []
        script = self.server.scripts.requeue
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
                assert rec.payload is not None, "a bulk run holds entries with a payload (retry)"
                push = requeue_bytes(rec.payload)
                at = raw.find(push)  # a payload is pushed as it is in the entry, bookkeeping aside
                if at < 0:
                    extra.append(push)
                raws.append(raw)
                ints += (self.memory.hint(rec), len(raw), marked, at, len(push), index)
            tomb = b"qadmin:tombstone:" + os.urandom(12).hex().encode() if remove else b""
            args: list[bytes | str | int] = [
                tomb,
                len(part),
                struct.pack(f">{len(ints)}q", *ints),
                b"".join(raws),
                b"".join(extra),
                mark,
                *names,
                self.keys.failed_index,
                self.keys.failed_at_prefix,
                self.keys.failed_twins_prefix,
            ]
            with self.server.wrap():
                results = script(keys=keys, args=args, client=self.client)
            self.memory.forget(*part)
            for rec, ok in zip(part, results):
                if ok:
                    changed.append(rec.job.id)
                    if remove:
                        self.memory.shift(rec)
                else:
                    missed.append(rec.job.id)
        return changed, missed

    def delete(self, ids: Sequence[JobId], now: datetime, states: frozenset[JobState] | None = None) -> list[JobId]:
        allowed = frozenset(states) if states else frozenset(LIVE | {JobState.FINISHED})
        recs = [r for r in self._resolve(ids, allowed, now) if r.kind is not Place.FINISHED]

        def steps(rec: Rec) -> list[Any] | None:
            if rec.kind is Place.UNREADABLE:  # a key of the wrong type: nothing in it can be told apart
                return None
            if rec.kind in (Place.QUEUE, Place.FAILED):
                guard: tuple[str, list[Any], list[Any]] = ("TOMB", [rec.key], [self.memory.hint(rec), rec.raw])
                rest: list[Any] = []
            elif rec.kind is Place.DELAYED:
                guard = ("LREM", [rec.key], [1, rec.raw])
                rest = [
                    ("SREM", [self.keys.timestamps(rec.raw)], [self.keys.stamp_member(rec.extra["ts"])]),
                    ("DROPEMPTY", [rec.key, self.keys.schedule], [rec.extra["ts"]]),
                ]
            elif rec.kind is Place.LOCKED:
                guard, rest = ("ZREM", [self.keys.locked], [rec.raw]), []
            else:  # held by a Resque worker: the job vanishes from worker:ID (the worker still runs it)
                guard, rest = ("DELEQ", [rec.key], [rec.raw]), []
            unique = rec.job.meta.get("unique")
            if unique is not None:
                rest.append(("HDELEQ", [self.keys.unique], [unique, str(rec.job.id)]))
            return [guard, *rest]

        return self._apply_units(recs, steps, allowed, now, shifts=True)

    def unlock(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """Held jobs go back to the head of their queue; a dead holder's registration is pruned."""
        states = frozenset({JobState.LOCKED})
        recs = self._resolve(ids, states, now)
        view = View(self.server, now)

        def steps(rec: Rec) -> list[Any] | None:
            if rec.kind is Place.HELD:
                dead = rec.extra.get("dead", False)
            else:
                dead = view.reader.owner_dead(rec.job.locked_by or "")
            return give_back(self.keys, rec, prune=dead)

        with self.server.wrap():
            return self._apply_units(recs, steps, states, now)


def _marked(raw: bytes, stamp: str) -> bytes:
    """A failure entry with resque-web's `retried_at` mark; every other byte stays (rule 9)."""
    if _plain_end(raw):
        return raw[:-1] + b',"retried_at":' + dumps(stamp).encode("utf-8") + b"}"
    seen: dict[str, Any] | None = {} if b'"retried_at"' not in raw else None
    return with_members(raw.decode("utf-8"), {"retried_at": stamp}, obj=seen).encode("utf-8")


def _plain_end(raw: bytes) -> bool:
    """Whether the mark goes right before the entry's closing brace, as `with_members` would put
    it: an entry as Resque writes it ends its last member there (and has no `retried_at` yet)."""
    return raw[-1:] == b"}" and raw[-2:-1] not in _NO_APPEND and b'"retried_at"' not in raw


#: bytes before an entry's closing brace that `with_members` would strip or not follow with a comma
_NO_APPEND = (b"", b" ", b"\t", b"\n", b"\r", b"{")
