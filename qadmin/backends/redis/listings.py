"""Reading jobs on Redis for the admin faces: get, find (keyset pages), iter_ids and count.

Records read by `iter_ids`/`find` are remembered (slim, `memory.py`) so that a bulk verb needs no
second search; ids from a listing just made are read back where they were.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from qadmin.backends.redis.ids import split_ids
from qadmin.backends.redis.memory import Memory, generation
from qadmin.backends.redis.payloads import status_key_parts
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.records import Rec, delayed_rec, failed_rec, finished_rec, first_found, name, queue_rec
from qadmin.backends.redis.selection import LIVE, encode_cursor, wanted_states
from qadmin.backends.redis.server import Server
from qadmin.backends.redis.stats import Counts
from qadmin.backends.redis.view import View
from qadmin.backends.redis.wanted import Wanted
from qadmin.errors import JobNotFound, UsageError
from qadmin.filters import JobFilter
from qadmin.job import Job, JobId
from qadmin.model import SORTS, Page


class Listings:
    """get, find, iter_ids, count."""

    def __init__(self, server: Server, memory: Memory, counts: Counts) -> None:
        self.server = server
        self.keys = server.keys
        self.client = server.client
        self.memory = memory
        self.counts = counts

    def get(self, job_id: JobId, now: datetime) -> Job:
        readings = split_ids(job_id)
        with self.server.wrap():
            found = first_found(readings, View(self.server, now).lookup(Wanted(list(readings)), first_live=True))
        if not found:
            raise JobNotFound(job_id)
        live = [r for r in found if r.job.state in LIVE]
        rec = (live or found)[0]
        self.memory.remember([rec])
        job: Job = rec.job
        parts = status_key_parts(job.meta)
        if parts is not None:
            key = self.keys.status(*parts)
            with self.server.wrap():  # a status key of the wrong type (poison) is no status
                status = Reader(self.server, now).read(key, "string", lambda: self.client.get(key), None)
            if status is not None:
                try:
                    job = replace(job, meta={**job.meta, "status": json.loads(status)})
                except ValueError:
                    pass
        return job

    def find(
        self,
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
        states = wanted_states(selection)
        out: list[Rec] = []
        last: list[Any] | None = None
        more = False
        with self.server.wrap():
            view = View(self.server, now)
            for pos, rec in view.walk(selection, sort, cursor):
                if rec.job.state not in states or not selection.matches(rec.job):
                    continue
                if len(out) == limit:
                    more = True
                    break
                out.append(view.twins.named(rec))  # which of its twins it is, for the entries shown
                last = pos
        self.memory.remember(out)
        return Page([r.job for r in out], encode_cursor(sort, last) if more and last is not None else None)

    def _by_ids(self, selection: JobFilter, now: datetime) -> list[Rec]:
        readings = [split_ids(i) for i in selection.ids]
        rest = replace(selection, ids=())
        states = wanted_states(selection)
        with self.server.wrap():
            found = View(self.server, now).lookup(Wanted(sorted({p for r in readings for p in r}, key=str)))
        out: list[Rec] = []
        seen: set[int] = set()
        for reading in readings:
            for rec in first_found(reading, found):
                if id(rec) not in seen and rec.job.state in states and rest.matches(rec.job):
                    seen.add(id(rec))
                    out.append(rec)
        return out

    def _find_ids(self, selection: JobFilter, now: datetime, limit: int, cursor: str | None) -> Page:
        try:
            offset = int(cursor.removeprefix("ids:")) if cursor else 0
        except ValueError:
            raise UsageError(f"invalid page cursor {cursor!r}") from None
        # ids from a listing or a preview just made (a preview's sample) are read back where they
        # were, without a search; the remembered entries stay as the listing left them
        rest = replace(selection, ids=())
        states = wanted_states(selection)
        recs = self._reread(
            selection.ids, now, lambda r: r.job.state in states and rest.matches(r.job), offset + limit + 1
        )
        if recs is None:
            recs = self._by_ids(selection, now)
            self.memory.remember(recs)
        page = recs[offset : offset + limit]
        more = offset + limit < len(recs)
        return Page([r.job for r in page], f"ids:{offset + limit}" if more else None)

    def iter_ids(self, selection: JobFilter, now: datetime, batch: int = 5000) -> Iterator[list[JobId]]:
        if selection.ids:
            recs = self._by_ids(selection, now)
            gen = generation()
            for rec in recs:
                rec.extra["gen"] = gen
            self.memory.remember(recs)
            for start in range(0, len(recs), batch):
                yield [r.job.id for r in recs[start : start + batch]]
            return
        states = wanted_states(selection)
        gen = generation()
        chunk: list[Rec] = []
        with self.server.wrap():
            for _pos, rec in View(self.server, now).walk(selection, "id", None, slim=True):
                if rec.job.state not in states or not selection.matches(rec.job):
                    continue
                rec.extra["gen"] = gen
                chunk.append(rec)
                if len(chunk) == batch:
                    self.memory.remember(chunk)
                    yield [r.job.id for r in chunk]
                    chunk = []
        if chunk:
            self.memory.remember(chunk)
            yield [r.job.id for r in chunk]

    def _reread(self, ids: Sequence[JobId], now: datetime, wanted: Callable[[Rec], bool], cap: int) -> list[Rec] | None:
        """The remembered entries of these ids, read back where they were and rebuilt in full, the
        wanted ones up to `cap`; None when an id is not remembered or an entry moved (then only a
        search can tell where it is)."""
        with self.memory.mutex:
            groups = [list(self.memory.recs.get(str(i), ())) for i in dict.fromkeys(str(i) for i in ids)]
        # only a bulk scan (`iter_ids`, which marks its entries with their scan) saw every entry of
        # an id; a listing's page may have shown one of several equal jobs
        if not all(groups) or not all("gen" in r.extra for g in groups for r in g):
            return None
        view = View(self.server, now)
        out: list[Rec] = []
        with self.server.wrap():
            for group in groups:
                for start in range(0, len(group), 100):
                    part = group[start : start + 100]
                    pipe = self.client.pipeline(transaction=False)
                    for rec in part:
                        if rec.kind is Place.FINISHED:
                            pipe.zscore(rec.key, rec.raw)
                        elif rec.kind.indexed:
                            pipe.lindex(rec.key, self.memory.hint(rec))
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

    def _rebuilt(self, rec: Rec, seen: Any, view: View) -> Rec | None:
        """A remembered (slim) entry as a full record, if it is still stored as it was read."""
        index = self.memory.hint(rec)
        if rec.kind is Place.UNREADABLE:
            return None
        if rec.kind is Place.FINISHED:
            full = finished_rec(rec.key, rec.raw) if seen is not None else None
            if full is not None:
                full.index = rec.index
            return full
        if rec.kind.held:
            return next((r for r in view.twins.locked_recs() if r.raw == rec.raw and r.key == rec.key), None)
        if seen != rec.raw:
            return None
        if rec.kind is Place.QUEUE:
            full = queue_rec(rec.key, rec.job.queue or "", rec.raw, index)
        elif rec.kind is Place.DELAYED:
            full = delayed_rec(rec.key, rec.extra["ts"], rec.raw, index, view.now)
        else:
            full = failed_rec(rec.key, rec.raw, index)
        return name(full, rec.extra.get("n", 1), rec.extra.get("where"))  # which of its twins it was read as

    def count(self, selection: JobFilter, now: datetime) -> int:
        simple = replace(selection, states=frozenset(), queues=())
        if simple.is_empty:
            states = wanted_states(selection)
            counts = self.counts.counts(now, selection.queues or None, states=states)
            return sum(c.get(s.value, 0) for c in counts.values() for s in states)
        return sum(len(ids) for ids in self.iter_ids(selection, now))
