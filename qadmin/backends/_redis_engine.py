"""Engine verbs of the Redis backend: enqueue, the scheduler's moves, claim, complete, fail, release.

A claim reads the first entries of the queues it serves, decodes them and locks only those it
can run: a guarded step moves exactly those bytes from `queue:NAME` into qadmin's locked set and
writes Resque's `worker:ID` (docs/compatibility.md §8.5). Entries it cannot run stay where they are.

A worker's steady state is one round trip per job (`lua/claim.lua`): the outcome of the job it
ran, the locks on the next ones it chose from the previous read, and the next read, together.
What a claim needs only now and then (due scheduled jobs, expired locks, the queue list of `*`)
is read at most once a `HOUSEKEEPING` interval, and whenever a claim finds nothing. While it holds
prefetched jobs, a worker does not even wait for that round trip: it sends each success and runs
its next job, and reads the replies later ("Pipelined successes" below).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis as redis_lib

from qadmin.backends._redis_json import TOKEN_LEN, dumps, epoch, iso_z, with_members, without
from qadmin.backends._redis_lua import UNITS_PER_CALL, Batch
from qadmin.backends._redis_records import (
    TWIN_SCAN,
    Keys,
    Rec,
    delayed_item,
    delayed_rec,
    envelope,
    failure_entry,
    locked_rec,
    make_id,
    queue_rec,
    read_payload,
    schedule_second,
    status_key_parts,
    truthy,
)
from qadmin.backends._redis_records import name as rename
from qadmin.codecs import json_codec
from qadmin.errors import JobNotFound, QadminError, UsageError
from qadmin.job import Job, JobId, JobState, NewJob, iso, utcnow

if TYPE_CHECKING:
    from qadmin.backends.redis import RedisBackend

#: entries of a queue a claim reads ahead for one it can run, when the usual read finds none
#: (delayed_job reads 5)
READ_AHEAD = (10, 100)
#: entries read and offered to the lock beyond the jobs wanted, in case another worker takes some
#: first (doubled on each retry of a claim); offered only for CONTENDED seconds after a claim lost
#: one: a worker alone on its queues would read, send and parse them on every call for nothing
SPARES = 2
CONTENDED = 1.0
#: seconds between a worker's reads of what changes rarely (see the module docstring)
HOUSEKEEPING = 1.0
#: script calls a claim makes at most before it reads further down the queues
CALLS_PER_CLAIM = 4
#: decoded queue entries remembered, so that a queue head read again is not decoded again
DECODED_CAP = 1000
#: due delayed timestamps moved per claim
MOVE_STAMPS = 20
#: finished outcomes kept at most (besides the retention time)
FINISHED_CAP = 10_000
#: php-resque keeps a finished status this long (docs/compatibility.md §3.3)
STATUS_TTL = 86400
#: characters of an error kept with a job
MAX_ERROR = 16_000
#: successes a worker's next call may carry, and how long one may wait for it (seconds)
DEFER_MAX = 100
DEFER_FOR = 0.5
#: payloads per RPUSH of enqueue_many
PUSH_CHUNK = 1000


@dataclass
class _Claimer:
    """What the claims of one worker (on one list of queues) remember between calls."""

    patterns: tuple[str, ...]
    #: the queues served, expanded, in claim order; `keys`: their queue and pause keys for claim.lua
    names: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    #: the last read of each queue's head (aligned with `names`; shorter when the read stopped early)
    windows: list[list[bytes]] = field(default_factory=list)
    #: whether a read filled its window (more entries may wait behind), and how many it could not run
    full: bool = False
    skipped: int = 0
    read_at: float = float("-inf")
    checked_at: float = float("-inf")
    #: when a call last failed to lock an entry it offered (another worker took it first)
    lost_at: float = float("-inf")
    #: what every call of this worker sends alike, built once (`_claim_call`): its Resque id, the
    #: keys, and per queue the starts of its envelopes and worker:RID values; and run_at (whole
    #: seconds) with the second it is for
    fixed: tuple[Any, ...] | None = None
    run_at: tuple[int, str] = (-1, "")

    def set_names(self, names: list[str], keys: Keys) -> None:
        if names == self.names and self.keys:
            return
        self.names = names
        self.keys = [k for name in names for k in (keys.queue(name), keys.pause(name))]
        self.index = {name: i + 1 for i, name in enumerate(names)}
        self.windows = []
        self.fixed = None


@dataclass(frozen=True)
class _Done:
    """A success to record, in the same call as the worker's next claim when it can wait for it."""

    job_id: str
    env: bytes
    wjson: str | None
    record: str
    unique: str | None
    #: its finished score, the throughput hash of its minute, and when it was deferred (monotonic)
    score: float
    tkey: str
    at: float


# Nonces keep equal payloads apart in the locked and finished sets; they need to differ, not to be
# secret. A private generator (reseeded from os.urandom in a forked child, so that the worker
# processes of a supervisor draw apart) spares the worker a getrandom() system call or two a job,
# and cannot be reseeded by job code that calls random.seed().
_rng = random.Random()
if hasattr(os, "register_at_fork"):  # POSIX: where a worker can fork
    os.register_at_fork(after_in_child=_rng.seed)


def _nonce() -> str:
    return f"{_rng.getrandbits(32):08x}"


class EngineMixin:
    def _encode(self: RedisBackend, new: NewJob, now: datetime) -> bytes:
        meta: dict[str, Any] = {}
        if new.max_attempts is not None:
            meta["max_attempts"] = new.max_attempts
        if new.unique is not None:
            # a unique job is no Resque payload anyway: its enqueue time keeps the next job of the
            # same key, once this one is done, from taking this one's id
            meta["unique"] = new.unique
            meta["enqueued_at"] = now.isoformat().replace("+00:00", "Z")
        # nothing else: a job with no options is Resque's own payload, byte for byte, so Resque's
        # exact-match calls (Resque.dequeue, resque-scheduler's remove_delayed) find it
        return json_codec.encode(new.class_name, list(new.args), dict(new.kwargs), meta).encode("utf-8")

    def _push_steps(
        self: RedisBackend, queue: str, payload: bytes, run_at: datetime | None, now: datetime
    ) -> list[tuple[str, list[Any], list[Any]]]:
        """RPUSH + SADD (rule 3), or resque-scheduler's four structures for a later run (rule 15)."""
        if run_at is not None and int(epoch(run_at)) > epoch(now):
            ts = int(epoch(run_at))
            item = delayed_item(payload, queue)
            dkey = self.keys.delayed(ts)
            return [
                ("RPUSH", [dkey], [item]),
                ("SADD", [self.keys.timestamps(item)], [self.keys.stamp_member(ts)]),
                ("ZADD", [self.keys.schedule], [ts, ts]),
            ]
        return [("RPUSH", [self.keys.queue(queue)], [payload]), ("SADD", [self.keys.queues], [queue])]

    def _stored_job(self: RedisBackend, queue: str, payload: bytes, run_at: datetime | None, now: datetime) -> Job:
        """The job as a unique enqueue records it before pushing: by its plain id, which names it
        while it waits and once it runs (a unique job has no twins: its payload holds its key)."""
        if run_at is not None and int(epoch(run_at)) > epoch(now):
            ts = int(epoch(run_at))
            rec = delayed_rec(self.keys.delayed(ts), ts, delayed_item(payload, queue), -1, now)
            return replace(rec.job, id=make_id(rec.job.queue, rec.token))
        return queue_rec(self.keys.queue(queue), queue, payload, -1).job

    def _push_named(self: RedisBackend, queue: str, payloads: Sequence[bytes]) -> list[int]:
        """Push payloads at the queue's tail (`lua/push.lua`) and tell which of its byte-identical
        twins each entry now is (its `.N`, as listings number it)."""
        out = self._script(
            self._push,
            [self.keys.queues, self.keys.queue(queue), self.keys.locked, self.keys.workers],
            [queue, TWIN_SCAN, *payloads],
        )
        k = len(payloads)
        before, held = out[1 : k + 1], out[k + 1 :]
        if out[0]:  # a Ruby or PHP worker may hold a twin: counted as listings count them
            with self._wrap():
                counts = self._view(utcnow()).lock_twins()[1]
            held = [counts[(queue, p)] for p in payloads]
        return [b + h + 1 for b, h in zip(before, held)]

    def _scheduled_named(self: RedisBackend, pushed: Sequence[tuple[str, bytes, int]], now: datetime) -> list[Job]:
        """Scheduled jobs just pushed ((queue, payload, second) in push order), named as listings
        name them (`View.name_delayed`): plain unless a twin comes first."""
        todo: dict[tuple[str, bytes], int] = {}
        for queue, payload, ts in pushed:
            key = (self.keys.delayed(ts), delayed_item(payload, queue))
            todo[key] = todo.get(key, 0) + 1
        seen: dict[tuple[str, bytes], int] = {}
        out = []
        with self._wrap():
            view = self._view(now)
            hits = {key: sorted(self.client.lpos(key[0], key[1], count=0) or []) for key in todo}
            for queue, payload, ts in pushed:
                key = (self.keys.delayed(ts), delayed_item(payload, queue))
                # the entries this call pushed are the last equal ones of that second's list
                j = len(hits[key]) - todo[key] + seen.get(key, 0)
                seen[key] = seen.get(key, 0) + 1
                index = hits[key][j] if 0 <= j < len(hits[key]) else -1
                rec = delayed_rec(key[0], ts, key[1], index, now)
                out.append(view.name_delayed(rec, ts, max(j, 0)).job)
        return out

    def enqueue(self: RedisBackend, new: NewJob) -> Job:
        _refuse_priority([new])
        now = utcnow()
        if new.unique is not None:
            return self._enqueue_unique(new, now)
        payload = self._encode(new, now)
        if new.run_at is not None and int(epoch(new.run_at)) > epoch(now):
            batch = Batch()
            batch.unit(*self._push_steps(new.queue, payload, new.run_at, now))
            self._run(batch)
            return self._scheduled_named([(new.queue, payload, int(epoch(new.run_at)))], now)[0]
        n = self._push_named(new.queue, [payload])[0]
        return rename(queue_rec(self.keys.queue(new.queue), new.queue, payload, -1), n).job

    def _enqueue_unique(self: RedisBackend, new: NewJob, now: datetime) -> Job:
        for _ in range(10):
            with self._wrap():
                try:
                    current = self.client.hget(self.keys.unique, new.unique)
                except redis_lib.ResponseError as exc:  # qadmin's hash of the wrong type (poison)
                    if not (str(exc).startswith("WRONGTYPE") and self._repair_private()):
                        raise
                    current = self.client.hget(self.keys.unique, new.unique)
            if current is not None:
                try:
                    job = self.get(current.decode("utf-8"), now)
                    if job.state in (JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED):
                        return job
                except (JobNotFound, UsageError):
                    pass
            payload = self._encode(new, now)
            job = self._stored_job(new.queue, payload, new.run_at, now)
            batch = Batch()
            batch.unit(
                ("HSETEQ", [self.keys.unique], [new.unique, current or b"", str(job.id)]),
                *self._push_steps(new.queue, payload, new.run_at, now),
            )
            if self._run(batch)[0]:
                return job
            time.sleep(0.01)  # another process took the key first: read its job next time
        raise QadminError(f"could not enqueue unique job {new.unique!r}: too much contention")

    def enqueue_many(self: RedisBackend, news: Sequence[NewJob]) -> list[JobId]:
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
                self._run(batch)
                batch = Batch()
                ids.append(self._enqueue_unique(new, now).id)
                continue
            payload = self._encode(new, now)
            if new.run_at is not None and int(epoch(new.run_at)) > epoch(now):
                batch.unit(*self._push_steps(new.queue, payload, new.run_at, now))
                later.append((len(ids), (new.queue, payload, int(epoch(new.run_at)))))
                ids.append(None)
                if batch.units >= UNITS_PER_CALL:
                    self._run(batch)
                    batch = Batch()
                continue
            pending.setdefault(new.queue, []).append((len(ids), payload))
            ids.append(None)
            held += 1
            if held >= PUSH_CHUNK:
                push()
        push()
        self._run(batch)
        if later:
            for (slot, _), job in zip(later, self._scheduled_named([p for _, p in later], utcnow())):
                ids[slot] = job.id
        named = [i for i in ids if i is not None]
        assert len(named) == len(ids), "every job enqueued has its id"
        return named

    def move_due(self: RedisBackend, now: datetime, stamps: int = MOVE_STAMPS) -> int:
        """Move due delayed items to their queues, as resque-scheduler does (docs/compatibility.md §2.2).

        Each item moves in one guarded unit (LREM of its exact bytes, then RPUSH + SADD + SREM of
        its `timestamps:` entry), so two schedulers never both move it and none is lost. Items
        without a queue, or that are not JSON, stay where they are."""
        with self._wrap():
            view = self._view(now)
            due = view.read(
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
                p = read_payload(raw)
                queue = p.obj.get("queue") if isinstance(p.obj, dict) else None
                if p.text is None or not isinstance(queue, str) or not queue:
                    continue
                if isinstance(p.obj.get("args"), dict):
                    # resque-scheduler wraps a hash `args` in an array
                    payload = with_members(p.text, {"args": [p.obj["args"]]}, drop=("queue",)).encode("utf-8")
                else:
                    payload = without(p.text, ("queue",)).encode("utf-8")
                batch.unit(
                    ("LREM", [dkey], [1, raw]),
                    ("RPUSH", [self.keys.queue(queue)], [payload]),
                    ("SADD", [self.keys.queues], [queue]),
                    ("SREM", [self.keys.timestamps(raw)], [self.keys.stamp_member(ts)]),
                )
                moves += 1
            batch.unit(("NOP", [], []), ("DROPEMPTY", [dkey, self.keys.schedule], [ts]))
        results = self._run(batch)
        return sum(results[:moves]) if moves else 0

    def _rid(self: RedisBackend, worker: str) -> str | None:
        """The Resque worker id of a registered qadmin worker."""
        if worker not in self._rids:
            with self._wrap():
                value = self.client.hget(self.keys.qworkers, worker)
            rid = None
            if value is not None:
                try:
                    rid = json.loads(value).get("rid")
                except (ValueError, AttributeError):
                    rid = None
            self._rids[worker] = rid
        return self._rids[worker]

    def _paused_flags(self: RedisBackend, names: Sequence[str]) -> tuple[bool, set[str]]:
        with self._wrap():
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.keys.pause_all)
            for name in names:
                pipe.exists(self.keys.pause(name))
            values = pipe.execute(raise_on_error=False)
        # a pause-all key of the wrong type (poison) pauses nothing, as for Resque's own workers
        paused_all = not isinstance(values[0], Exception) and truthy(values[0])
        return paused_all, {n for n, v in zip(names, values[1:]) if v is True or v == 1}

    # --- claims ----------------------------------------------------------------------------------
    def claim(
        self: RedisBackend,
        queues: Sequence[str],
        worker: str,
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        skip_ids: Sequence[JobId] = (),
    ) -> Job | None:
        jobs = self.claim_many(queues, worker, now, max_run_time, can_run, 1, skip_ids)
        return jobs[0] if jobs else None

    def claim_many(
        self: RedisBackend,
        queues: Sequence[str],
        worker: str,
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        """Lock up to `limit` runnable jobs for `worker`, in Resque's order (queues in the order
        served, each from its head). Each stays locked until the worker completes, fails or
        releases it; if the worker dies it is a stale lock, recovered as any."""
        return self._claim(queues, worker, now, max_run_time, can_run, limit, skip_ids)

    def complete_and_claim(
        self: RedisBackend,
        job: Job,
        worker: str,
        now: datetime,
        runtime: float,
        queues: Sequence[str],
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        """`complete(job)`, then `claim_many(...)`: usually one round trip, which records the
        outcome, locks the jobs chosen from the previous read of the queues and reads them again.
        Repeating it after BackendUnavailable neither counts the job twice (the outcome is
        recorded only while this worker's lock on it is still there to remove) nor loses it."""
        done = self._completion(job, worker, now, runtime)
        if done is None:  # a php-resque status to keep in step, or a lock no longer known here
            self.complete(job, worker, now, runtime)
        else:
            self._defer(worker, done)
        return self._claim(queues, worker, now, max_run_time, can_run, limit, skip_ids)

    def _claim(
        self: RedisBackend,
        queues: Sequence[str],
        worker: str,
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int,
        skip_ids: Sequence[JobId],
    ) -> list[Job]:
        c = self._claimer(worker, queues)
        skip = {str(i) for i in skip_ids}
        rid = self._rid(worker)
        dones = self._deferred_of(worker)  # outcomes not written yet go with the first call
        jobs: list[Job] = []
        kept = False
        if time.monotonic() - c.checked_at >= HOUSEKEEPING:
            jobs += self._housekeep(c, worker, rid, now, max_run_time, can_run, limit, skip)
            kept = True
        if not dones or time.monotonic() - c.read_at >= HOUSEKEEPING:
            # choose from a read made by the previous call only when that call locked the job
            # just run: a worker's claim is then one call, and its read as fresh as the run is short
            c.windows = []
        tried: set[bytes] = set()
        contended = False
        for attempt in range(CALLS_PER_CLAIM):
            want = limit - len(jobs)
            # more spares on each retry: the entries offered before were taken by other workers
            spares = SPARES << attempt if attempt or time.monotonic() - c.lost_at < CONTENDED else 0
            picks = self._picks(c, can_run, skip, tried, want + spares) if want > 0 else []
            per = min(limit + spares + c.skipped, READ_AHEAD[1])
            got, paused_all = self._claim_call(c, worker, rid, now, picks, want, per, dones)
            self._settle(worker, dones)
            dones = []
            jobs += got
            tried.update(rec.raw for rec in picks)
            if got or len(jobs) >= limit or paused_all:  # fewer than wanted is fine: it is what is free
                return jobs
            contended = bool(self._picks(c, can_run, skip, tried, 1))
            if not contended:
                break
        if c.full or contended:  # past entries this worker cannot run, or taken as it chose: look further
            jobs += self._scan_claim(c, worker, rid, now, can_run, limit - len(jobs), skip)
        if not jobs and not kept:
            # nothing ready: before saying so, move due scheduled jobs, take back expired locks and
            # read the queue list again (otherwise done at most once a HOUSEKEEPING interval)
            c.checked_at = float("-inf")
            return self._claim(queues, worker, now, max_run_time, can_run, limit, skip_ids)
        return jobs

    def _claimer(self: RedisBackend, worker: str, queues: Sequence[str]) -> _Claimer:
        key = (worker, tuple(queues))
        c = self._claimers.get(key)
        if c is None:
            if len(self._claimers) >= 64:
                self._claimers.clear()
            c = self._claimers[key] = _Claimer(tuple(queues))
            c.set_names(_expand(queues, []), self.keys)
        return c

    def _housekeep(
        self: RedisBackend,
        c: _Claimer,
        worker: str,
        rid: str | None,
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int,
        skip: set[str],
    ) -> list[Job]:
        """What a claim needs now and then rather than every time: due scheduled jobs moved to
        their queues, the queue list for `*` and globs, and locks past `max_run_time` taken over."""
        c.checked_at = time.monotonic()
        globbed = any(ch in q for q in c.patterns for ch in "*?[")
        cutoff = epoch(now) - max_run_time
        with self._wrap():
            pipe = self.client.pipeline(transaction=False)
            pipe.zrangebyscore(self.keys.schedule, "-inf", int(epoch(now)), start=0, num=1)
            pipe.zrangebyscore(self.keys.locked, "-inf", f"({cutoff}", start=0, num=20)
            due, expired = pipe.execute(raise_on_error=False)
        # keys of the wrong type (poison): the schedule is left as it is, qadmin's own set moved aside
        if isinstance(due, Exception):
            due = []
        if isinstance(expired, Exception):
            self._repair_private()
            expired = []
        if due:
            self.move_due(now)  # (they may make new queues, read next)
        if globbed:
            with self._wrap():  # the `queues` set, or the queue keys when it is of the wrong type
                known = self._view(now).known_queues()
            c.set_names(_expand(c.patterns, known), self.keys)
        if not expired:
            return []
        every = any(q == "*" for q in c.patterns)
        paused_all, paused = self._paused_flags(c.names)
        if paused_all:
            return []
        served = None if every else set(c.names)
        jobs: list[Job] = []
        for raw in expired:
            rec = locked_rec(self.keys.locked, raw)
            if rec is None or rec.job.queue in paused or (served is not None and rec.job.queue not in served):
                continue
            if str(rec.job.id) in skip or not rec.job.decodable or not can_run(rec.job):
                continue
            job = self._lock(rec, worker, rid, now, ("ZREM", [self.keys.locked], [raw]))
            if job is not None:
                jobs.append(job)
                if len(jobs) >= limit:
                    break
        return jobs

    def _picks(
        self: RedisBackend, c: _Claimer, can_run: Callable[[Job], bool], skip: set[str], tried: set[bytes], n: int
    ) -> list[Rec]:
        """Up to `n` entries of the last read this worker can run, in claim order: decoded (once:
        a head read again is not decoded again) and accepted by `can_run` before any is locked."""
        picks: list[Rec] = []
        skipped = 0
        for name, items in zip(c.names, c.windows):
            for raw in items:
                if raw in tried:
                    continue
                rec = self._decoded.get((name, raw))
                if rec is None:
                    if len(self._decoded) >= DECODED_CAP:
                        self._decoded.clear()
                    rec = self._decoded[(name, raw)] = queue_rec(self.keys.queue(name), name, raw, -1)
                if str(rec.job.id) in skip or not rec.job.decodable or not can_run(rec.job):
                    skipped += 1
                    continue
                picks.append(rec)
                if len(picks) >= n:
                    return picks
        c.skipped = skipped
        return picks

    def _claim_call(
        self: RedisBackend,
        c: _Claimer,
        worker: str,
        rid: str | None,
        now: datetime,
        picks: list[Rec],
        want: int,
        per: int,
        dones: Sequence[_Done],
    ) -> tuple[list[Job], bool]:
        """One call of `claim.lua`: the outcomes in `dones`, locks on `picks` (at most `want`), and
        a read of `per` entries from the heads of the queues, kept in `c` for the next claim."""
        keys, args = self._claim_args(c, worker, rid, now, picks, want, per, dones)
        _completed, envs, paused_all, windows = self._script(self._claim_script, keys, args)
        heads, run_at = c.fixed[2], c.run_at[1]  # type: ignore[index]
        got: list[Job] = []
        for rec, env in zip(picks, envs):
            if not env:
                c.lost_at = time.monotonic()
                continue
            wjson = None
            if rid is not None and not got:
                wjson = heads[c.index[rec.job.queue] - 1][1] + run_at + rec.raw.decode("utf-8") + "}"
            self._decoded.pop((rec.job.queue, rec.raw), None)
            job = replace(
                rec.job,
                id=self._own_id(worker, rec.job.id),
                state=JobState.LOCKED,
                locked_at=now,
                locked_by=worker,
                stale=False,
            )
            self._held[(worker, str(job.id))] = (env, wjson)
            got.append(job)
        c.windows = [w if isinstance(w, list) else [] for w in windows]
        c.full = any(len(w) >= per for w in c.windows)
        c.read_at = time.monotonic()
        return got, bool(paused_all)

    def _claim_args(
        self: RedisBackend,
        c: _Claimer,
        worker: str,
        rid: str | None,
        now: datetime,
        picks: list[Rec],
        want: int,
        per: int,
        dones: Sequence[_Done],
    ) -> tuple[list[Any], list[Any]]:
        """The keys and arguments of a `claim.lua` call (`_claim_call`)."""
        if c.fixed is None or c.fixed[0] != rid:
            k = self.keys
            env_head = '{"worker":' + dumps(worker) + ',"rid":' + dumps(rid) + ',"queue":'
            c.fixed = (
                rid,
                [
                    k.locked,
                    k.pause_all,
                    k.worker(rid or ""),
                    k.finished,
                    k.processed,
                    k.stat("processed", rid or ""),
                    k.unique,
                    *c.keys,
                ],
                [(env_head + quoted, '{"queue":' + quoted + ',"run_at":') for quoted in map(dumps, c.names)],
            )
        _rid, keys, heads = c.fixed
        if dones:
            keys = keys + [d.tkey for d in dones]
        at = epoch(now)
        if c.run_at[0] != int(at):
            c.run_at = (int(at), dumps(iso_z(now)) + ',"payload":')
        run_at = c.run_at[1]
        args: list[Any] = [
            at,
            f"({at - self.options.finished_retention}",
            FINISHED_CAP,
            "1" if rid is not None else "",
            want,
            per,
            len(c.names),
            len(dones),
        ]
        env_tail = ',"locked_at":' + dumps(iso(now) or "") + ',"n":"'
        for env_head, wjson_head in heads:
            args += [env_head + env_tail, wjson_head + run_at]
        for d in dones:
            args += [d.env, d.record, d.score, d.wjson or "", d.unique or "", d.job_id]
        for rec in picks:
            args += [c.index[rec.job.queue], rec.raw, _nonce()]
        return keys, args

    def _scan_claim(
        self: RedisBackend,
        c: _Claimer,
        worker: str,
        rid: str | None,
        now: datetime,
        can_run: Callable[[Job], bool],
        limit: int,
        skip: set[str],
    ) -> list[Job]:
        """A claim that reads further down the queues, past entries this worker cannot run."""
        paused_all, paused = self._paused_flags(c.names)
        if paused_all:
            return []
        active = [n for n in c.names if n not in paused]
        jobs: list[Job] = []
        for lo, hi in ((0, READ_AHEAD[0] - 1), (READ_AHEAD[0], READ_AHEAD[1] - 1)):
            with self._wrap():
                pipe = self.client.pipeline(transaction=False)
                for name in active:
                    pipe.lrange(self.keys.queue(name), lo, hi)
                # a queue key of the wrong type (poison) reads as empty: the others are served
                windows = [[] if isinstance(w, Exception) else w for w in pipe.execute(raise_on_error=False)]
            for name, items in zip(active, windows):
                for i, raw in enumerate(items):
                    rec = queue_rec(self.keys.queue(name), name, raw, lo + i)
                    if str(rec.job.id) in skip or not rec.job.decodable or not can_run(rec.job):
                        continue
                    job = self._lock(rec, worker, rid, now, ("LREM", [rec.key], [1, raw]))
                    if job is not None:
                        jobs.append(job)
                        if len(jobs) >= limit:
                            return jobs
            active = [n for n, items in zip(active, windows) if len(items) == hi - lo + 1]
            if not active:
                break
        return jobs

    def _lock(
        self: RedisBackend,
        rec: Rec,
        worker: str,
        rid: str | None,
        now: datetime,
        guard: tuple[str, list[Any], list[Any]],
    ) -> Job | None:
        payload = rec.payload or rec.raw
        queue = rec.job.queue or ""
        env = envelope(worker, rid, queue, iso(now) or "", _nonce(), payload)
        steps = [guard, ("ZADD", [self.keys.locked], [epoch(now), env])]
        wjson = None
        if rid is not None:
            wjson = (
                '{"queue":'
                + dumps(queue)
                + ',"run_at":'
                + dumps(iso_z(now))
                + ',"payload":'
                + payload.decode("utf-8")
                + "}"
            )
            steps.append(("SET", [self.keys.worker(rid)], [wjson]))
        batch = Batch()
        batch.unit(*steps)
        if not self._run(batch)[0]:
            return None
        job = replace(
            rec.job,
            id=self._own_id(worker, rec.job.id),
            state=JobState.LOCKED,
            locked_at=now,
            locked_by=worker,
            stale=False,
        )
        self._held[(worker, str(job.id))] = (env, wjson)
        return job

    def _own_id(self: RedisBackend, worker: str, job_id: JobId) -> str:
        """The id a worker knows a job it claims by: byte-identical twins it holds at once are
        `.2`, `.3`... (as listings number them), so each outcome goes to its own lock."""
        base, n = str(job_id), 1
        own = base
        while (worker, own) in self._held:
            n += 1
            own = f"{base}.{n}"
        return own

    def refresh_lock(self: RedisBackend, job: Job, worker: str, now: datetime) -> bool:
        """Renew the lock of a prefetched job before it runs (its envelope says since when, its
        score when it expires): False if this worker no longer holds it, so it must not run it."""
        self._write_deferred(worker)
        env, wjson = self._envelope(job, worker)
        if env is None:
            return False
        try:
            value = json.loads(env)
        except ValueError:
            return False
        value["locked_at"] = iso(now)
        renewed = dumps(value).encode("utf-8")
        batch = Batch()
        batch.unit(("ZREM", [self.keys.locked], [env]), ("ZADD", [self.keys.locked], [epoch(now), renewed]))
        if not self._run(batch)[0]:
            self._held.pop((worker, str(job.id)), None)
            return False
        self._held[(worker, str(job.id))] = (renewed, wjson)
        return True

    def _envelope(self: RedisBackend, job: Job, worker: str) -> tuple[bytes | None, str | None]:
        """The locked-set entry of a job this worker holds. It stays remembered until its
        outcome is written, so that a write retried after BackendUnavailable finds it again."""
        held = self._held.get((worker, str(job.id)))
        if held is not None:
            return held
        # reached when the lock was taken by another process of this worker name (or the
        # memory was lost): the read must raise BackendUnavailable, never a driver error
        with self._wrap():
            recs = self._view(utcnow()).locked_recs()
        for rec in recs:
            if rec.kind == "locked" and rec.job.locked_by == worker and str(rec.job.id) == str(job.id):
                return rec.raw, None
        return None, None

    def _completion(self: RedisBackend, job: Job, worker: str, now: datetime, runtime: float) -> _Done | None:
        """The outcome of a success as `claim.lua` records it, or None when it needs `complete`
        (php-resque status keys are kept in step there)."""
        held = self._held.get((worker, str(job.id)))
        if held is None or status_key_parts(job.meta) is not None:
            return None
        env, wjson = held
        record = dumps(
            {
                "finished_at": iso(now),
                "queue": job.queue,
                "worker": worker,
                "runtime": round(runtime, 6),
                "attempts": job.attempts,
                "n": _nonce(),
                "payload": self._payload_of(job, env).decode("utf-8"),
            }
        )
        unique = job.meta.get("unique")
        at = epoch(now)
        return _Done(
            str(job.id),
            env,
            wjson,
            record,
            None if unique is None else str(unique),
            at,
            self.keys.throughput(int(at) // 60 * 60),
            time.monotonic(),
        )

    # --- outcomes written with the next call -------------------------------------------------------
    # Opt-in (`defer_successes`, `qadmin worker --defer-acks`). A worker holding prefetched jobs
    # calls again as soon as the next one has run: a success is
    # then written with that call (the next outcome, or the claim after the batch), so a batch of N
    # jobs costs one round trip. A success waits only for a registered worker (this backend made
    # its heartbeats), at most DEFER_FOR, and only while the worker still holds other jobs;
    # flush(), heartbeats, releases, failures and unregistering write what waits. If the worker
    # is killed meanwhile, the job is still in the locked set: recovered as any stale lock, it runs
    # again (never lost).
    def _defer(self: RedisBackend, worker: str, done: _Done) -> None:
        with self._mutex:
            self._deferred.setdefault(worker, []).append(done)

    def _deferred_of(self: RedisBackend, worker: str, drain: bool = True) -> list[_Done]:
        """The outcomes to write with a worker's next call: those waiting, less those sent whose
        reply is still to read (when read, they are settled, or left for a next call)."""
        if drain:
            self._drain()
        with self._mutex:
            return [d for d in self._deferred.get(worker, ()) if id(d) not in self._sending]

    def _may_wait(self: RedisBackend, worker: str) -> bool:
        if (
            not self.defer_successes or worker not in self._winfo
        ):  # only a registered worker: its heartbeats write what waits
            return False
        with self._mutex:
            waiting = self._deferred.get(worker) or []
            if not waiting or len(waiting) >= DEFER_MAX or time.monotonic() - waiting[0].at >= DEFER_FOR:
                return False
        return self._holds_more(worker)

    def _holds_more(self: RedisBackend, worker: str) -> bool:
        """Whether the worker holds jobs besides those whose outcomes wait: prefetched jobs it will
        run next, without needing a reply to get them."""
        with self._mutex:
            ids = {d.job_id for d in self._deferred.get(worker, ())}
            return any(w == worker and job_id not in ids for w, job_id in self._held)

    # Pipelined successes (`pipeline_successes`, on by default): a worker that holds prefetched jobs
    # sends a success on the backend's own connection and starts its next job without reading the
    # reply; the next use of the connection or of the deferred outcomes reads it
    # (`RedisBackend._drain_locked`). The guarantee stays: the call is in the kernel's hands before
    # the next job starts, and the kernel delivers what a killed process sent, so a SIGKILL reruns
    # at most the job in hand. Until its reply is read the outcome stays deferred: an error reply
    # or a dropped connection sends it again with the next call, which records nothing twice. A
    # worker holding no other job needs the reply (its next locks come with it): it waits.
    def _send_deferred(self: RedisBackend, worker: str) -> bool:
        dones = self._deferred_of(worker, drain=False)
        if not dones:
            return True  # written meanwhile by another thread
        keys, args = self._claim_args(self._claimer(worker, ()), worker, self._rid(worker), utcnow(), [], 0, 0, dones)
        return self._send(self._claim_script, keys, args, worker, dones)

    def _settle(self: RedisBackend, worker: str, dones: Sequence[_Done]) -> None:
        """These outcomes are written: forget them and their locks."""
        if not dones:
            return
        with self._mutex:
            written = {id(d) for d in dones}
            left = [d for d in self._deferred.get(worker, ()) if id(d) not in written]
            if left:
                self._deferred[worker] = left
            else:
                self._deferred.pop(worker, None)
            for d in dones:
                self._held.pop((worker, d.job_id), None)

    def _write_deferred(self: RedisBackend, worker: str | None = None) -> None:
        """Write the outcomes waiting for a worker's next call (every worker's with None)."""
        self._drain()
        for name in [worker] if worker is not None else list(self._deferred):
            dones = self._deferred_of(name)
            if dones:
                self._claim_call(_Claimer(()), name, self._rid(name), utcnow(), [], 0, 0, dones)
                self._settle(name, dones)

    def _payload_of(self: RedisBackend, job: Job, env: bytes | None) -> bytes:
        if env is not None:
            return json.loads(env)["payload"].encode("utf-8")
        return job.raw.encode("utf-8")

    def _status_steps(
        self: RedisBackend, meta: dict[str, Any], status: int, now: datetime, ttl: int | None
    ) -> list[tuple[str, list[Any], list[Any]]]:
        """Keep php-resque's status key in step, only if it exists (docs/compatibility.md §3.3, §8.6)."""
        parts = status_key_parts(meta)
        if parts is None:
            return []
        key = self.keys.status(*parts)
        with self._wrap():  # a status key of the wrong type (poison) is left as it is
            old = self._view(now).read(key, "string", lambda: self.client.get(key), None)
        if old is None:
            return []
        return [("SETEQ", [key], [old, _status_value(old, status, now), ttl or ""])]

    def _outcome_steps(
        self: RedisBackend, worker: str, rid: str | None, wjson: str | None, now: datetime, failed: bool
    ) -> list[tuple[str, list[Any], list[Any]]]:
        minute = int(epoch(now)) // 60 * 60
        tkey = self.keys.throughput(minute)
        steps: list[tuple[str, list[Any], list[Any]]] = [
            ("INCR", [self.keys.processed], []),
            ("HINCRBY", [tkey], ["processed", 1]),
            ("EXPIRE", [tkey], [7200]),
        ]
        if failed:
            steps += [("INCR", [self.keys.failed_count], []), ("HINCRBY", [tkey], ["failed", 1])]
        if rid is not None:
            steps.append(("INCR", [self.keys.stat("processed", rid)], []))
            if failed:
                steps.append(("INCR", [self.keys.stat("failed", rid)], []))
            if wjson is not None:
                steps.append(("DELEQ", [self.keys.worker(rid)], [wjson]))
        return steps

    def complete(self: RedisBackend, job: Job, worker: str, now: datetime, runtime: float) -> None:
        done = self._completion(job, worker, now, runtime)
        if done is not None:
            self._defer(worker, done)
            if self._may_wait(worker):
                return
            if self.pipeline_successes and self._holds_more(worker) and self._send_deferred(worker):
                return
            self._write_deferred(worker)
            return
        self._write_deferred(worker)
        env, wjson = self._envelope(job, worker)
        if env is None:  # no longer held by this worker (a repeat, or unlocked meanwhile): as on SQL,
            return  # the outcome belongs to whoever holds the job now
        payload = self._payload_of(job, env)
        rid = self._rid(worker)
        record = dumps(
            {
                "finished_at": iso(now),
                "queue": job.queue,
                "worker": worker,
                "runtime": round(runtime, 6),
                "attempts": job.attempts,
                "n": _nonce(),
                "payload": payload.decode("utf-8"),
            }
        )
        release: list[tuple[str, list[Any], list[Any]]] = []
        if job.meta.get("unique") is not None:
            release.append(("HDELEQ", [self.keys.unique], [job.meta["unique"], str(job.id)]))
        # recorded only while the lock is still there to remove: a write repeated after
        # BackendUnavailable does not count the job twice
        batch = Batch()
        batch.unit(
            ("ZREM", [self.keys.locked], [env]),
            *release,
            ("ZADD", [self.keys.finished], [epoch(now), record]),
            ("ZREMRANGEBYSCORE", [self.keys.finished], ["-inf", f"({epoch(now) - self.options.finished_retention}"]),
            ("ZCAP", [self.keys.finished], [FINISHED_CAP]),
            *self._outcome_steps(worker, rid, wjson, now, failed=False),
            *self._status_steps(job.meta, 4, now, STATUS_TTL),
        )
        self._run(batch)
        self._held.pop((worker, str(job.id)), None)

    def fail(self: RedisBackend, job: Job, worker: str, now: datetime, error: str, retry_at: datetime | None) -> None:
        self._write_deferred(worker)
        env, wjson = self._envelope(job, worker)
        payload = self._payload_of(job, env).decode("utf-8")
        rid = self._rid(worker)
        queue = job.queue or ""
        attempts = job.attempts + 1
        error = _capped(error)
        if retry_at is not None:
            again = with_members(payload, {"attempts": attempts, "last_error": error}).encode("utf-8")
            moves = self._push_steps(queue, again, retry_at, now)
            status = self._status_steps(job.meta, 1, now, None)
        else:
            kept = with_members(payload, {"attempts": attempts}, drop=("last_error",))
            entry = failure_entry(kept, error, rid or worker, queue, now)
            moves = [("RPUSH", [self.keys.failed], [entry])]
            if job.meta.get("unique") is not None:
                moves.append(("HDELEQ", [self.keys.unique], [job.meta["unique"], str(job.id)]))
            status = self._status_steps(job.meta, 3, now, STATUS_TTL)
        batch = Batch()
        if env is not None:  # counted only with the move, so that a repeated write counts once
            batch.unit(
                ("ZREM", [self.keys.locked], [env]),
                *moves,
                *status,
                *self._outcome_steps(worker, rid, wjson, now, failed=True),
            )
        else:  # no longer held (unlocked or deleted meanwhile): only count the run
            batch.unit(("NOP", [], []), *self._outcome_steps(worker, rid, wjson, now, failed=True))
        self._run(batch)
        self._held.pop((worker, str(job.id)), None)

    def release(self: RedisBackend, job: Job, worker: str) -> None:
        self.release_many([job], worker)

    def release_many(self: RedisBackend, jobs: Sequence[Job], worker: str) -> None:
        """Give claimed jobs back, at the head of their queues, in their claim order (a stopping
        worker's unrun prefetched jobs)."""
        self._write_deferred(worker)
        rid = self._rid(worker)
        batch = Batch()
        held = []
        for job in reversed(jobs):  # LPUSHed last, the first claimed ends up first again
            env, wjson = self._envelope(job, worker)
            if env is None:
                continue
            held.append(job)
            steps: list[tuple[str, list[Any], list[Any]]] = [
                ("ZREM", [self.keys.locked], [env]),
                ("LPUSH", [self.keys.queue(job.queue or "")], [self._payload_of(job, env)]),
                ("SADD", [self.keys.queues], [job.queue or ""]),
            ]
            if rid is not None and wjson is not None:
                steps.append(("DELEQ", [self.keys.worker(rid)], [wjson]))
            batch.unit(*steps)
        self._run(batch)
        for job in held:
            self._held.pop((worker, str(job.id)), None)


def _refuse_priority(news: Sequence[NewJob]) -> None:
    """Resque's queues have no priorities (a list runs in order): a priority asked for would be
    stored as nothing, so it is refused rather than dropped."""
    for new in news:
        if new.priority:
            raise UsageError(
                f"Redis (Resque) queues have no priorities: cannot enqueue {new.class_name} with "
                f"priority {new.priority}; leave the priority out (jobs run in queue order)"
            )


def _status_value(old: bytes, status: int, now: datetime) -> str:
    """php-resque's status JSON in the shape the writer used: chrisboulton's `{status, updated}`
    or resque/php-resque's `{status, updated, started, result}` (docs/compatibility.md §3.3)."""
    updated = int(epoch(now))
    try:
        previous = json.loads(old)
    except ValueError:
        previous = None
    if isinstance(previous, dict) and "started" in previous and "result" in previous:
        return dumps({"status": status, "updated": updated, "started": previous["started"], "result": None})
    return dumps({"status": status, "updated": updated})


def _capped(error: str) -> str:
    """Errors travel inside payloads and key names (resque-scheduler's `timestamps:`): keep them
    bounded, the first line whole."""
    if len(error) <= MAX_ERROR:
        return error
    head, _, rest = error.partition("\n")
    return head + "\n" + rest[:MAX_ERROR] + "\n[... truncated]"


def _expand(patterns: Sequence[str], known: Sequence[str]) -> list[str]:
    """Resque's queue list: names in order, `*` and globs expanded against `queues` (alphabetical)."""
    from fnmatch import fnmatchcase

    out: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            out.extend(q for q in known if fnmatchcase(q, pattern) and q not in out)
        elif pattern not in out:
            out.append(pattern)
    return out
