"""A worker's claims on Redis (`lua/claim.lua`).

A claim reads the first entries of the queues it serves, decodes them and locks only those it
can run: a guarded step moves exactly those bytes from `queue:NAME` into qadmin's locked set and
writes Resque's `worker:ID` (docs/compatibility.md §8.5). Entries it cannot run stay where they are.

A worker's steady state is one round trip per job: the outcome of the job it ran, the locks on
the next ones it chose from the previous read, and the next read, together. What a claim needs
only now and then (due scheduled jobs, expired locks, the queue list of `*`) is read at most once
a `HOUSEKEEPING` interval, and whenever a claim finds nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qadmin.backends.redis.entries import envelope
from qadmin.backends.redis.json_text import dumps, epoch, iso_z
from qadmin.backends.redis.keys import Keys
from qadmin.backends.redis.own_connection import OwnConnection
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.records import Rec, locked_rec, queue_rec
from qadmin.backends.redis.scripts import Batch
from qadmin.backends.redis.server import Server
from qadmin.backends.redis.steps import FINISHED_CAP, nonce
from qadmin.job import Job, JobId, JobState, iso

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
#: the claim states a session keeps (one per list of queues it serves), at most
CLAIMERS_CAP = 64

#: what a held job's lock is, by the id the worker knows it by: its locked-set envelope, and the
#: `worker:ID` value written with it (None when the worker is not registered)
Held = dict[str, tuple[bytes, str | None]]


@dataclass
class ClaimState:
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
    #: what every call of this worker sends alike, built once (`Claims.args`): its Resque id, the
    #: keys, and per queue the starts of its envelopes and worker:RID values; and run_at (whole
    #: seconds) with the second it is for
    fixed: tuple[str | None, list[Any], list[tuple[str, str]]] | None = None
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
class Done:
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


class Claims:
    """One worker's claims: what it remembers between calls (its last read of each queue list,
    decoded queue heads) and the jobs it holds (`held`, shared with its session)."""

    def __init__(
        self,
        server: Server,
        own: OwnConnection[Any],
        worker: str,
        held: Held,
        rid: Callable[[], str | None],
        settle: Callable[[Sequence[Done]], None],
        move_due: Callable[[datetime], int],
    ) -> None:
        self.server = server
        self.keys = server.keys
        self.client = server.client
        self.options = server.options
        self.own = own
        self.worker = worker
        self.held = held
        self.rid = rid
        self.settle = settle
        self.move_due = move_due
        self._claimers: dict[tuple[str, ...], ClaimState] = {}
        self._decoded: dict[tuple[str, bytes], Rec] = {}

    def claim(
        self,
        queues: Sequence[str],
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int,
        skip_ids: Sequence[JobId],
        dones: Sequence[Done],
    ) -> list[Job]:
        """Lock up to `limit` runnable jobs, in Resque's order (queues in the order served, each
        from its head), writing the outcomes `dones` with the first call (`settle` hears when).
        Each stays locked until the worker completes, fails or releases it; if the worker dies it
        is a stale lock, recovered as any."""
        c = self.state(queues)
        skip = {str(i) for i in skip_ids}
        rid = self.rid()
        jobs: list[Job] = []
        kept = False
        if time.monotonic() - c.checked_at >= HOUSEKEEPING:
            jobs += self._housekeep(c, rid, now, max_run_time, can_run, limit, skip)
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
            got, paused_all = self.call(c, rid, now, picks, want, per, dones)
            self.settle(dones)
            dones = []
            jobs += got
            tried.update(rec.raw for rec in picks)
            if got or len(jobs) >= limit or paused_all:  # fewer than wanted is fine: it is what is free
                return jobs
            contended = bool(self._picks(c, can_run, skip, tried, 1))
            if not contended:
                break
        if c.full or contended:  # past entries this worker cannot run, or taken as it chose: look further
            jobs += self._scan_claim(c, rid, now, can_run, limit - len(jobs), skip)
        if not jobs and not kept:
            # nothing ready: before saying so, move due scheduled jobs, take back expired locks and
            # read the queue list again (otherwise done at most once a HOUSEKEEPING interval)
            c.checked_at = float("-inf")
            return self.claim(queues, now, max_run_time, can_run, limit, skip_ids, [])
        return jobs

    def state(self, queues: Sequence[str]) -> ClaimState:
        """What claims on this list of queues remember between calls."""
        key = tuple(queues)
        c = self._claimers.get(key)
        if c is None:
            if len(self._claimers) >= CLAIMERS_CAP:
                self._claimers.clear()
            c = self._claimers[key] = ClaimState(tuple(queues))
            c.set_names(_expand(queues, []), self.keys)
        return c

    def _housekeep(
        self,
        c: ClaimState,
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
        with self.server.wrap():
            pipe = self.client.pipeline(transaction=False)
            pipe.zrangebyscore(self.keys.schedule, "-inf", int(epoch(now)), start=0, num=1)
            pipe.zrangebyscore(self.keys.locked, "-inf", f"({cutoff}", start=0, num=20)
            due, expired = pipe.execute(raise_on_error=False)
        # keys of the wrong type (poison): the schedule is left as it is, qadmin's own set moved aside
        if isinstance(due, Exception):
            due = []
        if isinstance(expired, Exception):
            self.server.repair_private()
            expired = []
        if due:
            self.move_due(now)  # (they may make new queues, read next)
        if globbed:
            with self.server.wrap():  # the `queues` set, or the queue keys when it is of the wrong type
                known = Reader(self.server, now).known_queues()
            c.set_names(_expand(c.patterns, known), self.keys)
        if not expired:
            return []
        every = any(q == "*" for q in c.patterns)
        paused_all, paused = self.server.paused_flags(c.names)
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
            job = self._lock(rec, rid, now, ("ZREM", [self.keys.locked], [raw]))
            if job is not None:
                jobs.append(job)
                if len(jobs) >= limit:
                    break
        return jobs

    def _picks(
        self, c: ClaimState, can_run: Callable[[Job], bool], skip: set[str], tried: set[bytes], n: int
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

    def call(
        self,
        c: ClaimState,
        rid: str | None,
        now: datetime,
        picks: list[Rec],
        want: int,
        per: int,
        dones: Sequence[Done],
    ) -> tuple[list[Job], bool]:
        """One call of `claim.lua`: the outcomes in `dones`, locks on `picks` (at most `want`), and
        a read of `per` entries from the heads of the queues, kept in `c` for the next claim."""
        keys, args = self.args(c, rid, now, picks, want, per, dones)
        _completed, envs, paused_all, windows = self.own.call(self.server.scripts.claim, keys, args)
        assert c.fixed is not None, "args() built it"
        heads, run_at = c.fixed[2], c.run_at[1]
        got: list[Job] = []
        for rec, env in zip(picks, envs):
            if not env:
                c.lost_at = time.monotonic()
                continue
            wjson = None
            if rid is not None and not got:
                wjson = heads[c.index[rec.job.queue] - 1][1] + run_at + rec.raw.decode("utf-8") + "}"
            self._decoded.pop((rec.job.queue, rec.raw), None)
            job = _locked(rec.job, self._own_id(rec.job.id), now, self.worker)
            self.held[str(job.id)] = (env, wjson)
            got.append(job)
        c.windows = [w if isinstance(w, list) else [] for w in windows]
        c.full = any(len(w) >= per for w in c.windows)
        c.read_at = time.monotonic()
        return got, bool(paused_all)

    def args(
        self,
        c: ClaimState,
        rid: str | None,
        now: datetime,
        picks: list[Rec],
        want: int,
        per: int,
        dones: Sequence[Done],
    ) -> tuple[list[Any], list[Any]]:
        """The keys and arguments of a `claim.lua` call (`call`)."""
        if c.fixed is None or c.fixed[0] != rid:
            k = self.keys
            env_head = '{"worker":' + dumps(self.worker) + ',"rid":' + dumps(rid) + ',"queue":'
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
            args += [c.index[rec.job.queue], rec.raw, nonce()]
        return keys, args

    def _scan_claim(
        self,
        c: ClaimState,
        rid: str | None,
        now: datetime,
        can_run: Callable[[Job], bool],
        limit: int,
        skip: set[str],
    ) -> list[Job]:
        """A claim that reads further down the queues, past entries this worker cannot run."""
        paused_all, paused = self.server.paused_flags(c.names)
        if paused_all:
            return []
        active = [n for n in c.names if n not in paused]
        jobs: list[Job] = []
        for lo, hi in ((0, READ_AHEAD[0] - 1), (READ_AHEAD[0], READ_AHEAD[1] - 1)):
            with self.server.wrap():
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
                    job = self._lock(rec, rid, now, ("LREM", [rec.key], [1, raw]))
                    if job is not None:
                        jobs.append(job)
                        if len(jobs) >= limit:
                            return jobs
            active = [n for n, items in zip(active, windows) if len(items) == hi - lo + 1]
            if not active:
                break
        return jobs

    def _lock(
        self,
        rec: Rec,
        rid: str | None,
        now: datetime,
        guard: tuple[str, list[Any], list[Any]],
    ) -> Job | None:
        payload = rec.payload or rec.raw
        queue = rec.job.queue or ""
        env = envelope(self.worker, rid, queue, iso(now) or "", nonce(), payload)
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
        if not self.server.run(batch)[0]:
            return None
        job = _locked(rec.job, self._own_id(rec.job.id), now, self.worker)
        self.held[str(job.id)] = (env, wjson)
        return job

    def _own_id(self, job_id: JobId) -> str:
        """The id a worker knows a job it claims by: byte-identical twins it holds at once are
        `.2`, `.3`... (as listings number them), so each outcome goes to its own lock."""
        base, n = str(job_id), 1
        own = base
        while own in self.held:
            n += 1
            own = f"{base}.{n}"
        return own


def _locked(job: Job, job_id: str, now: datetime, worker: str) -> Job:
    """The job as this worker holds it: `dataclasses.replace(job, id=..., state=LOCKED, ...)`
    without its walk over every field, which cost more than the rest of a claim's decoding (Job
    is a frozen dataclass with no `__post_init__`: its fields are its instance dictionary)."""
    held: Job = object.__new__(Job)
    fields = held.__dict__
    fields.update(job.__dict__)
    fields.update(id=job_id, state=JobState.LOCKED, locked_at=now, locked_by=worker, stale=False)
    return held


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
