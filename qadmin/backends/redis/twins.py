"""Telling equal stored jobs apart on Redis: the ids records.py describes, given as the store
is read.

Resque stores equal jobs as equal bytes. A held or pending twin is numbered in the order held,
then each queue from its head (running tallies, or one LPOS per distinct entry of a page further
on); a scheduled or failed entry keeps its plain id unless a twin comes first: held, among the
first `TWIN_SCAN` pending entries of its queue, scheduled earlier (resque-scheduler's
`timestamps:` index), or (a failure) among the `TWIN_WINDOW` entries before it.
"""

from __future__ import annotations

import functools
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from qadmin.backends.redis.entries import delayed_item
from qadmin.backends.redis.ids import TWIN_SCAN, TWIN_WINDOW
from qadmin.backends.redis.json_text import without
from qadmin.backends.redis.payloads import requeue_bytes, schedule_second
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.records import Rec, delayed_rec, failed_where, held_rec, locked_rec, unreadable_rec
from qadmin.backends.redis.records import name as rename
from qadmin.backends.redis.wanted import failed_token
from qadmin.job import JobState


class Twins:
    """The twin-naming reads of one view of the store (`reader`), remembered for its call."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.k = reader.k
        self._locked: list[Rec] | None = None
        self._lock_recs: dict[int, Rec | None] = {}
        self._pending: dict[tuple[str, bytes], bool] = {}
        self._stamp_memo: dict[bytes, list[int]] = {}
        self._ftokens: dict[bytes, str] = {}

    def lock_rec(self, i: int) -> Rec | None:
        """The record of `locks()[i]`, built once."""
        if i not in self._lock_recs:
            lock = self.reader.locks()[i]
            if lock.kind is Place.LOCKED:
                rec = locked_rec(lock.key, lock.raw, lock.parsed, lock.stale)
            else:
                rec = held_rec(lock.key, lock.rid or "", lock.raw, lock.parsed, lock.stale)
                if rec is not None:
                    rec.extra["dead"] = lock.dead
            if rec is not None:
                rename(rec, self.reader.lock_twins()[0][i])
            self._lock_recs[i] = rec
        return self._lock_recs[i]

    def locked_recs(self) -> list[Rec]:
        """Every held job as a record (built on first use: counts need only `locks`)."""
        if self._locked is None:
            recs = (self.lock_rec(i) for i in range(len(self.reader.locks())))
            self._locked = [r for r in recs if r is not None]
        return self._locked

    def iter_delayed(
        self, after: tuple[int, int] | None, desc: bool, keep: Callable[[bytes], bool] | None = None
    ) -> Iterator[tuple[tuple[int, int], bytes | None, int | None]]:
        """((timestamp, index), item, byte-identical items before it in its list) over
        resque-scheduler's delayed lists, in time order; a list of the wrong type comes as one
        item None. Items before are counted when read from the head, else None (`iter_ranked`)."""
        bound: str | None = None
        first = True
        while True:
            if not desc:
                lo = f"({bound}" if bound is not None else (str(after[0]) if after else "-inf")
                stamps = self.reader.read(
                    self.k.schedule,
                    "sorted set",
                    functools.partial(
                        self.reader.c.zrangebyscore, self.k.schedule, lo, "+inf", start=0, num=200, withscores=True
                    ),
                    [],
                )
            else:
                hi = f"({bound}" if bound is not None else (str(after[0]) if after else "+inf")
                stamps = self.reader.read(
                    self.k.schedule,
                    "sorted set",
                    functools.partial(
                        self.reader.c.zrevrangebyscore, self.k.schedule, hi, "-inf", start=0, num=200, withscores=True
                    ),
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
                if key in self.reader.problems and resume is None:
                    yield (ts, -1), None, 0  # the list is of the wrong type: shown as unreadable
                first = False
            bound = repr(float(stamps[-1][1]))  # paged by score: a member need not be a number
            first = False

    def iter_ranked(
        self, key: str, after: int | None, desc: bool, keep: Callable[[bytes], bool] | None = None
    ) -> Iterator[tuple[int, bytes, int | None]]:
        """(index, element, how many byte-identical elements come before it) of the elements `keep`
        accepts, as `iter_list` walks them. Counted as read from the head; else (a page further
        on, or backwards) None: `count_before` counts it for the entries a page shows."""
        seen: Counter[bytes] | None = Counter() if not desc and after is None else None
        for i, raw in self.reader.iter_list(key, after, desc):
            if keep is None or keep(raw):
                if seen is None:
                    yield i, raw, None
                else:
                    yield i, raw, seen[raw]
                    seen[raw] += 1

    def count_before(self, key: str, raw: bytes, index: int) -> int:
        """Byte-identical elements before `index` (one LPOS: its cost grows with the depth)."""
        if index <= 0:
            return 0
        hits = self.reader.positions(key, raw, count=0, maxlen=index)
        return len(hits or ())

    def named(self, rec: Rec) -> Rec:
        """An entry a walk left to name (`_check`): named as a lookup names it. Called for the
        entries a page shows, not for every entry a filter passes over."""
        if rec.extra.pop("_check", None) is None:
            return rec
        if rec.kind is Place.QUEUE:
            held = self.reader.lock_twins()[1] if self.reader.locks() else None
            n = self.count_before(rec.key, rec.raw, rec.index) + 1 + (held[(rec.job.queue, rec.raw)] if held else 0)
            return rename(rec, n)
        if rec.kind is Place.DELAYED:
            before = rec.extra.pop("_before", None)
            if before is None:
                before = self.count_before(rec.key, rec.raw, rec.index)
            return self.name_delayed(rec, rec.extra["ts"], before)
        return self.name_failed(rec, 0)

    def iter_failed(
        self, after: int | None, desc: bool, keep: Callable[[bytes], bool] | None = None
    ) -> Iterator[tuple[int, bytes, int]]:
        """(index, entry, byte-identical entries among the `TWIN_WINDOW` before it) of the failed
        entries `keep` accepts, as `iter_list` walks them: a page anywhere costs one more read."""
        key = self.k.failed
        if not desc:
            start = 0 if after is None else after + 1
            near: deque[bytes] = deque()
            counts: Counter[bytes] = Counter()
            if start > 0:
                near.extend(self.reader.window(key, max(0, start - TWIN_WINDOW), start - 1, False))
                counts.update(near)
            for i, raw in self.reader.iter_list(key, after, False):
                if keep is None or keep(raw):
                    yield i, raw, counts[raw]
                near.append(raw)
                counts[raw] += 1
                if len(near) > TWIN_WINDOW:
                    old = near.popleft()
                    counts[old] -= 1
            return
        buf: list[tuple[int, bytes]] = []
        for i, raw in self.reader.iter_list(key, after, True):
            buf.append((i, raw))
            if len(buf) >= 50:
                yield from self._failed_near(buf, keep)
                buf = []
        yield from self._failed_near(buf, keep)

    def _failed_near(
        self, buf: list[tuple[int, bytes]], keep: Callable[[bytes], bool] | None
    ) -> Iterator[tuple[int, bytes, int]]:
        if not buf:
            return
        at = self._near(min(i for i, _ in buf))
        at.update(buf)
        for i, raw in buf:
            if keep is None or keep(raw):
                yield i, raw, sum(1 for j in range(max(0, i - TWIN_WINDOW), i) if at.get(j) == raw)

    def _near(self, lo: int) -> dict[int, bytes]:
        """The `TWIN_WINDOW` failure entries before index `lo`, by index."""
        start = max(0, lo - TWIN_WINDOW)
        return (
            {start + n: raw for n, raw in enumerate(self.reader.window(self.k.failed, start, lo - 1, False))}
            if lo
            else {}
        )

    # --- naming twins (records.py: ids) --------------------------------------------------------------
    def _pending_twin(self, queue: str | None, payload: bytes | None) -> bool:
        """Whether a job with these payload bytes is held, or among the first `TWIN_SCAN` pending
        entries of its queue."""
        if not queue or not payload:
            return False
        held = self.reader.lock_twins()[1] if self.reader.locks() else None
        if held and held[(queue, payload)]:
            return True
        key = (queue, payload)
        if key not in self._pending:
            qkey = self.k.queue(queue)
            self._pending[key] = self.reader.positions(qkey, payload, maxlen=TWIN_SCAN) is not None
        return self._pending[key]

    def _stamps(self, item: bytes) -> list[int]:
        """The seconds resque-scheduler's `timestamps:` index lists for this delayed item."""
        if item not in self._stamp_memo:
            out = []
            key = self.k.timestamps(item)
            for member in self.reader.read(
                key.decode("utf-8", "replace"), "set", lambda: self.reader.c.smembers(key), ()
            ):
                try:
                    out.append(int(member.rsplit(b":", 1)[-1]))
                except ValueError:
                    continue
            self._stamp_memo[item] = out
        return self._stamp_memo[item]

    def delayed(self, ts: int, i: int, raw: bytes | None, before: int | None, lazy: bool = False) -> Rec:
        """A delayed entry as read by `iter_delayed` (`raw` None: its list is unreadable)."""
        key = self.k.delayed(ts)
        if raw is None:
            run_at = datetime.fromtimestamp(ts, UTC) if abs(ts) < 1 << 36 else None
            later = run_at is not None and run_at > self.reader.now
            return unreadable_rec(
                key, None, JobState.SCHEDULED if later else JobState.PENDING, self.reader.problems[key], run_at
            )
        return self.name_delayed(delayed_rec(key, ts, raw, i, self.reader.now), ts, before, lazy)

    def name_delayed(self, rec: Rec, ts: int, before: int | None, lazy: bool = False) -> Rec:
        """Plain unless a twin comes first: held, pending, scheduled earlier, or before it here.
        `lazy` (a walk): what needs more reads is left to `named`."""
        if before:
            return rename(rec, before + 1, Place.DELAYED.where(str(ts)))
        if lazy:
            rec.extra["_check"] = True
            rec.extra["_before"] = before
            return rec
        payload = None
        if rec.job.queue:
            payload = without(rec.raw.decode("utf-8", "replace"), ("queue",)).encode("utf-8")
        if self._pending_twin(rec.job.queue, payload) or any(t < ts for t in self._stamps(rec.raw)):
            return rename(rec, 1, Place.DELAYED.where(str(ts)))
        return rec

    def name_failed(self, rec: Rec, same: int, lazy: bool = False) -> Rec:
        """Plain unless a twin comes first: held, pending, scheduled, or failed just before it
        (`same`: byte-identical entries just before it). `lazy`: as for `name_delayed`."""
        if same:
            return rename(rec, same + 1, failed_where(rec))
        if lazy:
            rec.extra["_check"] = True
            return rec
        payload = requeue_bytes(rec.payload) if rec.payload else None
        near = self._near(rec.index).values() if rec.index > 0 else ()
        if (
            any(self._failed_token(r) == rec.token for r in near)
            or self._pending_twin(rec.job.queue, payload)
            or (payload and rec.job.queue and self._stamps(delayed_item(payload, rec.job.queue)))
        ):
            return rename(rec, 1, failed_where(rec))
        return rec

    def _failed_token(self, raw: bytes) -> str:
        tok = self._ftokens.get(raw)
        if tok is None:
            if len(self._ftokens) > 4 * TWIN_WINDOW:
                self._ftokens.clear()
            tok = self._ftokens[raw] = failed_token(raw)
        return tok
