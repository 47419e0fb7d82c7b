"""Enqueueing on Redis, and resque-scheduler's move of due delayed items to their queues.

A plain job is Resque's own payload pushed at its queue's tail (docs/compatibility.md §1); a
later one goes into resque-scheduler's structures (§2). Each is returned with the id listings
give it (records.py: byte-identical twins numbered as they are read).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import redis as redis_lib

from qadmin.backends.redis.entries import delayed_item
from qadmin.backends.redis.ids import TWIN_SCAN, make_id
from qadmin.backends.redis.json_text import TOKEN_LEN, epoch, with_members, without
from qadmin.backends.redis.own_connection import OwnConnection
from qadmin.backends.redis.payloads import read_payload, schedule_second
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.records import delayed_rec, queue_rec
from qadmin.backends.redis.records import name as rename
from qadmin.backends.redis.scripts import UNITS_PER_CALL, Batch
from qadmin.backends.redis.server import Server, as_bytes
from qadmin.backends.redis.steps import push_steps
from qadmin.backends.redis.view import View
from qadmin.codecs import json_codec
from qadmin.errors import JobNotFound, QadminError, UsageError
from qadmin.job import Job, JobId, JobState, NewJob, utcnow

#: due delayed timestamps moved per claim
MOVE_STAMPS = 20
#: payloads per RPUSH of enqueue_many
PUSH_CHUNK = 1000


class Enqueuer:
    """`enqueue`, `enqueue_many` and `move_due`. `own` is the connection push.lua goes on (the
    caller's own, spared a pool checkout per job); `get` finds a unique job's live holder."""

    def __init__(self, server: Server, own: OwnConnection[Any], get: Callable[[JobId, datetime], Job]) -> None:
        self.server = server
        self.keys = server.keys
        self.client = server.client
        self.scripts = server.scripts
        self.own = own
        self.get = get

    def encode(self, new: NewJob, now: datetime) -> bytes:
        meta: dict[str, Any] = {}
        if new.max_attempts is not None:
            meta["max_attempts"] = new.max_attempts
        if new.timeout is not None:
            meta["timeout"] = new.timeout
        if new.unique is not None:
            # a unique job is no Resque payload anyway: its enqueue time keeps the next job of the
            # same key, once this one is done, from taking this one's id
            meta["unique"] = new.unique
            meta["enqueued_at"] = now.isoformat().replace("+00:00", "Z")
        # nothing else: a job with no options is Resque's own payload, byte for byte, so Resque's
        # exact-match calls (Resque.dequeue, resque-scheduler's remove_delayed) find it
        return json_codec.encode(new.class_name, list(new.args), dict(new.kwargs), meta).encode("utf-8")

    def _stored_job(self, queue: str, payload: bytes, run_at: datetime | None, now: datetime) -> Job:
        """The job as a unique enqueue records it before pushing: by its plain id, which names it
        while it waits and once it runs (a unique job has no twins: its payload holds its key)."""
        if run_at is not None and int(epoch(run_at)) > epoch(now):
            ts = int(epoch(run_at))
            rec = delayed_rec(self.keys.delayed(ts), ts, delayed_item(payload, queue), -1, now)
            scheduled: Job = replace(rec.job, id=make_id(rec.job.queue, rec.token))
            return scheduled
        job: Job = queue_rec(self.keys.queue(queue), queue, payload, -1).job
        return job

    def _push_named(self, queue: str, payloads: Sequence[bytes]) -> list[int]:
        """Push payloads at the queue's tail (`lua/push.lua`) and tell which of its byte-identical
        twins each entry now is (its `.N`, as listings number it)."""
        out = self.own.call(
            self.scripts.push,
            [self.keys.queues, self.keys.queue(queue), self.keys.locked, self.keys.workers],
            [queue, TWIN_SCAN, *payloads],
        )
        k = len(payloads)
        before, held = out[1 : k + 1], out[k + 1 :]
        if out[0]:  # a Ruby or PHP worker may hold a twin: counted as listings count them
            with self.server.wrap():
                counts = View(self.server, utcnow()).reader.lock_twins()[1]
            held = [counts[(queue, p)] for p in payloads]
        return [b + h + 1 for b, h in zip(before, held)]

    def _scheduled_named(self, pushed: Sequence[tuple[str, bytes, int]], now: datetime) -> list[Job]:
        """Scheduled jobs just pushed ((queue, payload, second) in push order), named as listings
        name them (`View.name_delayed`): plain unless a twin comes first."""
        todo: dict[tuple[str, bytes], int] = {}
        for queue, payload, ts in pushed:
            key = (self.keys.delayed(ts), delayed_item(payload, queue))
            todo[key] = todo.get(key, 0) + 1
        seen: dict[tuple[str, bytes], int] = {}
        out = []
        with self.server.wrap():
            view = View(self.server, now)
            hits = {key: self._positions(*key) for key in todo}
            for queue, payload, ts in pushed:
                key = (self.keys.delayed(ts), delayed_item(payload, queue))
                # the entries this call pushed are the last equal ones of that second's list
                j = len(hits[key]) - todo[key] + seen.get(key, 0)
                seen[key] = seen.get(key, 0) + 1
                index = hits[key][j] if 0 <= j < len(hits[key]) else -1
                rec = delayed_rec(key[0], ts, key[1], index, now)
                out.append(view.twins.name_delayed(rec, ts, max(j, 0)).job)
        return out

    def _positions(self, key: str, item: bytes) -> list[int]:
        """The indexes of every entry of the list `key` equal to `item`."""
        # redis-py sends bytes as they are; its annotation of LPOS's element says str
        found = self.client.lpos(key, item, count=0)  # type: ignore[arg-type]
        return sorted(found) if isinstance(found, list) else []

    def enqueue(self, new: NewJob) -> Job:
        _refuse_priority([new])
        now = utcnow()
        if new.unique is not None:
            return self._enqueue_unique(new, now)
        payload = self.encode(new, now)
        if new.run_at is not None and int(epoch(new.run_at)) > epoch(now):
            batch = Batch()
            batch.unit(*push_steps(self.keys, new.queue, payload, new.run_at, now))
            self.server.run(batch)
            return self._scheduled_named([(new.queue, payload, int(epoch(new.run_at)))], now)[0]
        n = self._push_named(new.queue, [payload])[0]
        job: Job = rename(queue_rec(self.keys.queue(new.queue), new.queue, payload, -1), n).job
        return job

    def _enqueue_unique(self, new: NewJob, now: datetime) -> Job:
        key = new.unique
        assert key is not None, "only a job with a unique key"
        for _ in range(10):
            with self.server.wrap():
                try:
                    current = as_bytes(self.client.hget(self.keys.unique, key))
                except redis_lib.ResponseError as exc:  # qadmin's hash of the wrong type (poison)
                    if not (str(exc).startswith("WRONGTYPE") and self.server.repair_private()):
                        raise
                    current = as_bytes(self.client.hget(self.keys.unique, key))
            if current is not None:
                try:
                    job = self.get(current.decode("utf-8"), now)
                    if job.state in (JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED):
                        return job
                except (JobNotFound, UsageError):
                    pass
            payload = self.encode(new, now)
            job = self._stored_job(new.queue, payload, new.run_at, now)
            batch = Batch()
            batch.unit(
                ("HSETEQ", [self.keys.unique], [new.unique, current or b"", str(job.id)]),
                *push_steps(self.keys, new.queue, payload, new.run_at, now),
            )
            if self.server.run(batch)[0]:
                return job
            time.sleep(0.01)  # another process took the key first: read its job next time
        raise QadminError(f"could not enqueue unique job {new.unique!r}: too much contention")

    def enqueue_many(self, news: Sequence[NewJob]) -> list[JobId]:
        """Plain jobs go in one call of `lua/push.lua` per queue and `PUSH_CHUNK` jobs; unique and
        scheduled jobs go as `enqueue` sends them, in order. A priority refuses the whole call before
        anything is written."""
        _refuse_priority(news)
        ids: list[JobId | None] = []
        pending: dict[str, list[tuple[int, bytes]]] = {}
        later: list[tuple[int, tuple[str, bytes, int]]] = []
        held = 0

        def push() -> None:
            nonlocal held
            for queue, slots in pending.items():
                numbers = self._push_named(queue, [p for _, p in slots])
                for (slot, payload), n in zip(slots, numbers):
                    # the id `get` gives it (no embedded php-resque id, no bookkeeping members)
                    ids[slot] = make_id(queue, hashlib.sha1(payload).hexdigest()[:TOKEN_LEN], None, n)
            pending.clear()
            held = 0

        batch = Batch()
        for new in news:
            now = utcnow()
            if new.unique is not None:
                push()
                self.server.run(batch)
                batch = Batch()
                ids.append(self._enqueue_unique(new, now).id)
                continue
            payload = self.encode(new, now)
            if new.run_at is not None and int(epoch(new.run_at)) > epoch(now):
                batch.unit(*push_steps(self.keys, new.queue, payload, new.run_at, now))
                later.append((len(ids), (new.queue, payload, int(epoch(new.run_at)))))
                ids.append(None)
                if batch.units >= UNITS_PER_CALL:
                    self.server.run(batch)
                    batch = Batch()
                continue
            pending.setdefault(new.queue, []).append((len(ids), payload))
            ids.append(None)
            held += 1
            if held >= PUSH_CHUNK:
                push()
        push()
        self.server.run(batch)
        if later:
            for (slot, _), job in zip(later, self._scheduled_named([p for _, p in later], utcnow())):
                ids[slot] = job.id
        named = [i for i in ids if i is not None]
        assert len(named) == len(ids), "every job enqueued has its id"
        return named

    def move_due(self, now: datetime, stamps: int = MOVE_STAMPS) -> int:
        """Move due delayed items to their queues, as resque-scheduler does (docs/compatibility.md §2.2).

        Each item moves in one guarded unit (LREM of its exact bytes, then RPUSH + SADD + SREM of
        its `timestamps:` entry), so two schedulers never both move it and none is lost. Items
        without a queue, or that are not JSON, stay where they are."""
        with self.server.wrap():
            due = Reader(self.server, now).read(
                self.keys.schedule,
                "sorted set",
                lambda: self.client.zrangebyscore(self.keys.schedule, "-inf", int(epoch(now)), start=0, num=stamps),
                [],
            )
            # a member that is no second, or whose list is of the wrong type (poison), stays as it is
            due = [m for m in due if str(schedule_second(m)) == m.decode("utf-8", "replace")]
            if not due:
                return 0
            pipe = self.client.pipeline(transaction=False)
            for member in due:
                pipe.lrange(self.keys.delayed_prefix.encode() + member, 0, 99)
            lists = pipe.execute(raise_on_error=False)
        batch = Batch()
        moves = 0
        for member, items in zip(due, lists):
            if isinstance(items, Exception):
                continue
            ts = member.decode()
            dkey = self.keys.delayed(ts)
            for raw in items:
                target = due_payload(raw)
                if target is None:
                    continue
                queue, payload = target
                batch.unit(
                    ("LREM", [dkey], [1, raw]),
                    ("RPUSH", [self.keys.queue(queue)], [payload]),
                    ("SADD", [self.keys.queues], [queue]),
                    ("SREM", [self.keys.timestamps(raw)], [self.keys.stamp_member(ts)]),
                )
                moves += 1
            batch.unit(("NOP", [], []), ("DROPEMPTY", [dkey, self.keys.schedule], [ts]))
        results = self.server.run(batch)
        return sum(results[:moves]) if moves else 0


def due_payload(raw: bytes) -> tuple[str, bytes] | None:
    """A delayed item's queue and the payload resque-scheduler pushes there when it is due (its
    `queue` member gone); None for an item without a queue, or not JSON, which stays where it is."""
    p = read_payload(raw)
    queue = p.obj.get("queue") if isinstance(p.obj, dict) else None
    if p.text is None or not isinstance(queue, str) or not queue:
        return None
    if isinstance(p.obj.get("args"), dict):
        # resque-scheduler wraps a hash `args` in an array
        return queue, with_members(p.text, {"args": [p.obj["args"]]}, drop=("queue",)).encode("utf-8")
    return queue, without(p.text, ("queue",)).encode("utf-8")


def _refuse_priority(news: Sequence[NewJob]) -> None:
    """Resque's queues have no priorities (a list runs in order): a priority asked for would be
    stored as nothing, so it is refused rather than dropped."""
    for new in news:
        if new.priority:
            raise UsageError(
                f"Redis (Resque) queues have no priorities: cannot enqueue {new.class_name} with "
                f"priority {new.priority}; leave the priority out (jobs run in queue order)"
            )
