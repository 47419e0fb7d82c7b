"""Telling equal stored jobs apart on Redis: the ids `_redis_records` describes, given as the
store is read (`View` inherits `Twins`), and the lookup of an id (`Wanted`).

Resque stores equal jobs as equal bytes. A held or pending twin is numbered in the order held,
then each queue from its head (running tallies, or one LPOS per distinct entry of a page further
on); a scheduled or failed entry keeps its plain id unless a twin comes first: held, among the
first `TWIN_SCAN` pending entries of its queue, scheduled earlier (resque-scheduler's
`timestamps:` index), or (a failure) among the `TWIN_WINDOW` entries before it.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from qadmin.backends._redis_json import TOKEN_LEN, token, value_span, without
from qadmin.backends._redis_records import (
    TWIN_SCAN,
    TWIN_WINDOW,
    IdParts,
    Rec,
    SlimJob,
    delayed_item,
    delayed_rec,
    failed_where,
    make_id,
    requeue_bytes,
    unreadable_rec,
    where_of,
)
from qadmin.backends._redis_records import name as rename
from qadmin.job import JobState

if TYPE_CHECKING:
    from qadmin.backends._redis_scan import View

#: the states of live jobs (finished ones are history)
LIVE = frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED, JobState.FAILED})


def failed_token(raw: bytes) -> str:
    """`failed_rec(...).token` (the token of the entry's payload) without building the job."""
    try:
        text = raw.decode("utf-8")
        entry = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return token(raw)
    payload = entry.get("payload") if isinstance(entry, dict) else None
    if not isinstance(payload, dict):
        return token(raw)
    span = value_span(text, entry, "payload")
    return token(raw) if span is None else token(span.encode("utf-8"), span, payload)


class Wanted:
    """Ids being looked up (`IdParts`: a queue or None, a token prefix, where and which twin)."""

    def __init__(self, parts: list[IdParts]) -> None:
        self.pairs = parts
        self.exact: dict[str, list[IdParts]] = {}
        self.short: list[IdParts] = []
        for part in parts:
            if len(part.token) in (TOKEN_LEN, 32):
                self.exact.setdefault(part.token, []).append(part)
            else:
                self.short.append(part)

    def _candidates(self, tok: str) -> list[IdParts]:
        return self.exact.get(tok, []) + [p for p in self.short if tok.startswith(p.token)]

    def wants(self, tok: str, queue: str | None) -> bool:
        return any(p.queue is None or p.queue == queue for p in self._candidates(tok))

    def hits(self, rec: Rec) -> list[IdParts]:
        """The wanted ids this entry answers to: its own, or a plain one of its token."""
        out = []
        for p in self._candidates(rec.token):
            if p.queue is not None and p.queue != rec.job.queue:
                continue
            if p.plain or (p.where == where_of(rec) and p.n == rec.extra.get("n", 1)):
                out.append(p)
        return out

    def any_queue(self, tok: str) -> bool:
        return bool(self._candidates(tok))

    def queues(self) -> set[str] | None:
        """The queues to search, None for all."""
        if any(p.queue is None for p in self.pairs):
            return None
        return {p.queue for p in self.pairs if p.queue is not None}

    def choose(self, found: dict[IdParts, list[Rec]]) -> dict[IdParts, list[Rec]]:
        """One entry per id: the entry that has it as its own; for a plain id without such an entry,
        the first live one of its token (a job keeps its plain id as it moves), else the first."""
        out: dict[IdParts, list[Rec]] = {}
        for part, recs in found.items():
            own = [r for r in recs if where_of(r) is None and r.extra.get("n", 1) == 1] if part.plain else recs
            live = [r for r in recs if r.job.state in LIVE]
            rec = (own or live or recs)[0]
            if not own and part.queue is not None and len(part.token) in (TOKEN_LEN, 32):
                # the job as asked for: the id it was enqueued with, now scheduled or failed
                job = rec.job
                asked = make_id(part.queue, part.token)
                if isinstance(job, SlimJob):
                    job = SlimJob(asked, job.queue, job.state, job.decodable, job.meta, job.locked_by)
                else:
                    job = replace(job, id=asked)
                rec = replace(rec, job=job, extra={k: v for k, v in rec.extra.items() if k != "n"})
            out[part] = [rec]
        return out


class Twins:
    """The twin-naming reads of a `View`."""

    def lock_twins(self: View) -> tuple[list[int], Counter[tuple[str | None, bytes]]]:
        """Which of byte-identical held jobs each lock is (1-based, in `locks()` order), and how many
        locks hold each (queue, payload): pending twins are numbered after them."""
        if self._twins is None:
            held: Counter[tuple[str | None, bytes]] = Counter()
            ranks = []
            for lock in self.locks():
                if lock.kind == "locked":
                    payload = lock.parsed["payload"].encode("utf-8")
                else:
                    text, entry = lock.parsed
                    payload = (value_span(text, entry, "payload") or "").encode("utf-8")
                held[(lock.queue, payload)] += 1
                ranks.append(held[(lock.queue, payload)])
            self._twins = (ranks, held)
        return self._twins

    def iter_ranked(
        self: View, key: str, after: int | None, desc: bool, keep: Callable[[bytes], bool] | None = None
    ) -> Iterator[tuple[int, bytes, int | None]]:
        """(index, element, how many byte-identical elements come before it) of the elements `keep`
        accepts, as `iter_list` walks them. Counted as read from the head; else (a page further
        on, or backwards) None: `count_before` counts it for the entries a page shows."""
        seen: Counter[bytes] | None = Counter() if not desc and after is None else None
        for i, raw in self.iter_list(key, after, desc):
            if keep is None or keep(raw):
                if seen is None:
                    yield i, raw, None
                else:
                    yield i, raw, seen[raw]
                    seen[raw] += 1

    def count_before(self: View, key: str, raw: bytes, index: int) -> int:
        """Byte-identical elements before `index` (one LPOS: its cost grows with the depth)."""
        if index <= 0:
            return 0
        hits = self.read(key, "list", lambda: self.c.lpos(key, raw, count=0, maxlen=index), None)
        return len(hits or ())

    def named(self: View, rec: Rec) -> Rec:
        """An entry a walk left to name (`_check`): named as a lookup names it. Called for the
        entries a page shows, not for every entry a filter passes over."""
        if rec.extra.pop("_check", None) is None:
            return rec
        if rec.kind == "queue":
            held = self.lock_twins()[1] if self.locks() else None
            n = self.count_before(rec.key, rec.raw, rec.index) + 1 + (held[(rec.job.queue, rec.raw)] if held else 0)
            return rename(rec, n)
        if rec.kind == "delayed":
            before = rec.extra.pop("_before", None)
            if before is None:
                before = self.count_before(rec.key, rec.raw, rec.index)
            return self.name_delayed(rec, rec.extra["ts"], before)
        return self.name_failed(rec, 0)

    def iter_failed(
        self: View, after: int | None, desc: bool, keep: Callable[[bytes], bool] | None = None
    ) -> Iterator[tuple[int, bytes, int]]:
        """(index, entry, byte-identical entries among the `TWIN_WINDOW` before it) of the failed
        entries `keep` accepts, as `iter_list` walks them: a page anywhere costs one more read."""
        key = self.k.failed
        if not desc:
            start = 0 if after is None else after + 1
            near: deque[bytes] = deque()
            counts: Counter[bytes] = Counter()
            if start > 0:
                near.extend(self._window(key, max(0, start - TWIN_WINDOW), start - 1, False))
                counts.update(near)
            for i, raw in self.iter_list(key, after, False):
                if keep is None or keep(raw):
                    yield i, raw, counts[raw]
                near.append(raw)
                counts[raw] += 1
                if len(near) > TWIN_WINDOW:
                    old = near.popleft()
                    counts[old] -= 1
            return
        buf: list[tuple[int, bytes]] = []
        for i, raw in self.iter_list(key, after, True):
            buf.append((i, raw))
            if len(buf) >= 50:
                yield from self._failed_near(buf, keep)
                buf = []
        yield from self._failed_near(buf, keep)

    def _failed_near(
        self: View, buf: list[tuple[int, bytes]], keep: Callable[[bytes], bool] | None
    ) -> Iterator[tuple[int, bytes, int]]:
        if not buf:
            return
        at = self._near(min(i for i, _ in buf))
        at.update(buf)
        for i, raw in buf:
            if keep is None or keep(raw):
                yield i, raw, sum(1 for j in range(max(0, i - TWIN_WINDOW), i) if at.get(j) == raw)

    def _near(self: View, lo: int) -> dict[int, bytes]:
        """The `TWIN_WINDOW` failure entries before index `lo`, by index."""
        start = max(0, lo - TWIN_WINDOW)
        return {start + n: raw for n, raw in enumerate(self._window(self.k.failed, start, lo - 1, False))} if lo else {}

    # --- naming twins (`_redis_records`: ids) ------------------------------------------------------
    def _pending_twin(self: View, queue: str | None, payload: bytes | None) -> bool:
        """Whether a job with these payload bytes is held, or among the first `TWIN_SCAN` pending
        entries of its queue."""
        if not queue or not payload:
            return False
        held = self.lock_twins()[1] if self.locks() else None
        if held and held[(queue, payload)]:
            return True
        key = (queue, payload)
        if key not in self._pending:
            qkey = self.k.queue(queue)
            self._pending[key] = (
                self.read(qkey, "list", lambda: self.c.lpos(qkey, payload, maxlen=TWIN_SCAN), None) is not None
            )
        return self._pending[key]

    def _stamps(self: View, item: bytes) -> list[int]:
        """The seconds resque-scheduler's `timestamps:` index lists for this delayed item."""
        if item not in self._stamp_memo:
            out = []
            key = self.k.timestamps(item)
            for member in self.read(key.decode("utf-8", "replace"), "set", lambda: self.c.smembers(key), ()):
                try:
                    out.append(int(member.rsplit(b":", 1)[-1]))
                except ValueError:
                    continue
            self._stamp_memo[item] = out
        return self._stamp_memo[item]

    def delayed(self: View, ts: int, i: int, raw: bytes | None, before: int | None, lazy: bool = False) -> Rec:
        """A delayed entry as read by `iter_delayed` (`raw` None: its list is unreadable)."""
        key = self.k.delayed(ts)
        if raw is None:
            run_at = datetime.fromtimestamp(ts, UTC) if abs(ts) < 1 << 36 else None
            later = run_at is not None and run_at > self.now
            return unreadable_rec(
                key, None, JobState.SCHEDULED if later else JobState.PENDING, self.problems[key], run_at
            )
        return self.name_delayed(delayed_rec(key, ts, raw, i, self.now), ts, before, lazy)

    def name_delayed(self: View, rec: Rec, ts: int, before: int | None, lazy: bool = False) -> Rec:
        """Plain unless a twin comes first: held, pending, scheduled earlier, or before it here.
        `lazy` (a walk): what needs more reads is left to `named`."""
        if before:
            return rename(rec, before + 1, str(ts))
        if lazy:
            rec.extra["_check"] = True
            rec.extra["_before"] = before
            return rec
        payload = None
        if rec.job.queue:
            payload = without(rec.raw.decode("utf-8", "replace"), ("queue",)).encode("utf-8")
        if self._pending_twin(rec.job.queue, payload) or any(t < ts for t in self._stamps(rec.raw)):
            return rename(rec, 1, str(ts))
        return rec

    def name_failed(self: View, rec: Rec, same: int, lazy: bool = False) -> Rec:
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

    def _failed_token(self: View, raw: bytes) -> str:
        tok = self._ftokens.get(raw)
        if tok is None:
            if len(self._ftokens) > 4 * TWIN_WINDOW:
                self._ftokens.clear()
            tok = self._ftokens[raw] = failed_token(raw)
        return tok
