"""Reading the Redis store: listings in pages and lookups by id.

A listing walks *segments* in a fixed order: the jobs held by workers (qadmin's locked set and
Resque's `worker:ID` keys), each `queue:NAME` list, resque-scheduler's delayed lists, the
`failed` list and qadmin's finished set. Lists are read in LRANGE windows, never whole. A page
cursor is the segment and the position of the last job shown; a list that changes between pages
may shift under it (as resque-web's pages do).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from qadmin.backends.redis.failed_index import FailedIndex, FailedIndexUnusable
from qadmin.backends.redis.ids import IdParts
from qadmin.backends.redis.place import Segment
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.records import Rec, failed_rec, failed_slim, finished_rec, queue_rec, unreadable_rec
from qadmin.backends.redis.records import name as rename
from qadmin.backends.redis.selection import (
    LIVE,
    class_prefilter,
    decode_cursor,
    queue_prefilter,
    quick_token,
    retried_entry,
    states_and_queues_only,
    wanted_states,
)
from qadmin.backends.redis.server import Server
from qadmin.backends.redis.twins import Twins
from qadmin.backends.redis.wanted import Wanted, failed_token
from qadmin.errors import UsageError
from qadmin.filters import JobFilter
from qadmin.job import JobState

_H, _Q, _D, _F, _Z = Segment.HELD, Segment.QUEUES, Segment.DELAYED, Segment.FAILED, Segment.FINISHED
#: segments in each sort order: (segment, read backwards), and whether queue names go backwards
ORDERS: dict[str, tuple[tuple[tuple[Segment, bool], ...], bool]] = {
    "id": (((_H, False), (_Q, False), (_D, False), (_F, False), (_Z, False)), False),
    "priority": (((_H, False), (_Q, False), (_D, False), (_F, False), (_Z, False)), False),
    "run_at": (((_H, False), (_Q, False), (_D, False), (_F, False), (_Z, False)), False),
    "-id": (((_Z, True), (_F, True), (_D, True), (_Q, True), (_H, True)), True),
    "-failed_at": (((_F, True), (_H, False), (_Q, False), (_D, False), (_Z, False)), False),
}
#: the states each segment can hold
SEGMENT_STATES = {
    Segment.HELD: {JobState.LOCKED},
    Segment.QUEUES: {JobState.PENDING},
    Segment.DELAYED: {JobState.PENDING, JobState.SCHEDULED},
    Segment.FAILED: {JobState.FAILED},
    Segment.FINISHED: {JobState.FINISHED, JobState.CANCELLED},
}


class View:
    """The store as seen at `now` (one per backend call): its reads (`reader`) and the names of
    the entries read (`twins`)."""

    def __init__(self, server: Server, now: datetime, max_run_time: float | None = None) -> None:
        self.reader = Reader(server, now, max_run_time)
        self.twins = Twins(self.reader)
        self.k = server.keys
        self.now = now
        self.server = server

    @property
    def problems(self) -> dict[str, str]:
        return self.reader.problems

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
            if seg_type is Segment.QUEUES:
                names = sorted(self.reader.queue_names(selection), reverse=names_desc)
                for name in names:
                    after = None
                    if here and start is not None:
                        if (name < start[1]) if not names_desc else (name > start[1]):
                            continue
                        if name == start[1]:
                            after = start[2]
                    key = self.k.queue(name)
                    held = self.reader.lock_twins()[1] if self.reader.locks() else None
                    for i, raw, before in self.twins.iter_ranked(key, after, desc, maybe):
                        rec = queue_rec(key, name, raw, i)
                        if before is None:  # counted for the entries a page shows (`named`)
                            rec.extra["_check"] = True
                        else:
                            rename(rec, before + 1 + (held[(name, raw)] if held else 0))
                        yield [_Q.value, name, i], rec
                    if key in self.problems and after is None:
                        yield [_Q.value, name, -1], unreadable_rec(key, name, JobState.PENDING, self.problems[key])
                continue
            after = start[2] if here and start is not None else None
            if seg_type is Segment.HELD:
                locks = self.reader.locks()
                indexes = range(len(locks)) if not desc else range(len(locks) - 1, -1, -1)
                for i in indexes:
                    if after is not None and ((i <= after) if not desc else (i >= after)):
                        continue
                    lock = locks[i]
                    if selection.queues and (lock.queue or "") not in selection.queues:
                        continue
                    if (selection.stale_only and not lock.stale) or (maybe is not None and not maybe(lock.raw)):
                        continue
                    holder = self.twins.lock_rec(i)
                    if holder is not None:
                        yield [_H.value, "", i], holder
            elif seg_type is Segment.DELAYED:
                for (ts, i), item, before in self.twins.iter_delayed(tuple(after) if after else None, desc, maybe):
                    yield [_D.value, "", [ts, i]], self.twins.delayed(ts, i, item, before, lazy=True)
            elif seg_type is Segment.FAILED:
                read = failed_slim if slim_failed else failed_rec
                for i, raw, same in self.failures(selection.queues, after, desc, maybe):
                    rec = read(self.k.failed, raw, i)
                    if not retried_entry(rec):
                        yield [_F.value, "", i], self.twins.name_failed(rec, same, lazy=True)
                if self.k.failed in self.problems and after is None:
                    yield (
                        [_F.value, "", -1],
                        unreadable_rec(self.k.failed, None, JobState.FAILED, self.problems[self.k.failed]),
                    )
            elif seg_type is Segment.FINISHED:
                for i, raw in self.reader.iter_list(self.k.finished, after, desc, zset=True):
                    if maybe is not None and not maybe(raw):
                        continue
                    finished = finished_rec(self.k.finished, raw)
                    if finished is not None:
                        finished.index = i
                        yield [_Z.value, "", i], finished
            start = None

    def failures(
        self, queues: tuple[str, ...], after: int | None, desc: bool, keep: Callable[[bytes], bool] | None
    ) -> Iterator[tuple[int, bytes, int]]:
        """`Twins.iter_failed`; for named queues, their failures among the entries qadmin's
        checked index of `failed` holds (`failed_index.py`) come from it, reading only theirs,
        and the entries it does not hold yet (it is being rebuilt) from the list. Where the index
        stops describing the list halfway, the list is read from after the last entry given."""
        index = FailedIndex(self.server)
        state = index.counts() if queues else None
        if state is None:
            yield from self.twins.iter_failed(after, desc, keep)
            return
        try:
            if desc:  # the entries past the index first, then the index's
                for i, raw, same in self.twins.iter_failed(after, True, keep):
                    if i < state.indexed:
                        break
                    after = i
                    yield i, raw, same
                bound = state.indexed if after is None else min(after, state.indexed)
                for i, raw, same, _n in index.read(queues, bound, True):
                    after = i
                    if keep is None or keep(raw):
                        yield i, raw, same
                return
            indexed = state.indexed
            for i, raw, same, upto in index.read(queues, after, False):
                after, indexed = i, upto
                if keep is None or keep(raw):
                    yield i, raw, same
            if indexed and (after is None or after < indexed - 1):
                after = indexed - 1  # every failure of these queues before it was in the index
        except FailedIndexUnusable:
            pass
        yield from self.twins.iter_failed(after, desc, keep)

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

        for i in range(len(self.reader.locks())):
            lock = self.twins.lock_rec(i)
            if lock is not None:
                add(lock)
        if done():
            return wanted.choose(found)
        names = wanted.queues()
        held = self.reader.lock_twins()[1] if self.reader.locks() else None
        for qname in sorted(names) if names is not None else self.reader.queue_names():
            key = self.k.queue(qname)
            for i, raw, before in self.twins.iter_ranked(
                key, None, False, functools.partial(_wanted_in, wanted, qname)
            ):
                n = (before or 0) + 1 + (held[(qname, raw)] if held else 0)  # from the head: counted
                add(rename(queue_rec(key, qname, raw, i), n))
                if done():
                    return wanted.choose(found)
            if key in self.problems:
                add(unreadable_rec(key, qname, JobState.PENDING, self.problems[key]))
        for (ts, i), item, before in self.twins.iter_delayed(
            None, False, lambda raw: wanted.any_queue(quick_token(raw))
        ):
            add(self.twins.delayed(ts, i, item, before))
        if done():
            return wanted.choose(found)
        maybe = queue_prefilter(names)

        def failed_wanted(raw: bytes) -> bool:
            return (maybe is None or maybe(raw)) and wanted.any_queue(failed_token(raw))

        for i, raw, same in self.failures(tuple(sorted(names or ())), None, False, failed_wanted):
            rec = failed_rec(self.k.failed, raw, i)
            if not retried_entry(rec):
                add(self.twins.name_failed(rec, same))
        if self.k.failed in self.problems:
            add(unreadable_rec(self.k.failed, None, JobState.FAILED, self.problems[self.k.failed]))
        if done():
            return wanted.choose(found)
        for i, raw in self.reader.iter_list(self.k.finished, None, True, zset=True):
            finished = finished_rec(self.k.finished, raw)
            if finished is not None:
                finished.index = i
                add(finished)
        return wanted.choose(found)


def _wanted_in(wanted: Wanted, queue: str, raw: bytes) -> bool:
    """Whether an entry of `queue` may be one of the wanted ids (its token read cheaply)."""
    return wanted.wants(quick_token(raw), queue)
