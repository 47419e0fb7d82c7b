"""Engine verbs of the Redis backend: enqueue, the scheduler's moves, claim, complete, fail, release.

A claim reads the first entries of the queues it serves, decodes them and locks only one it can
run: a guarded unit moves exactly those bytes from `queue:NAME` into qadmin's locked set and
writes Resque's `worker:ID` (formats.md rule 8). Entries it cannot run stay where they are.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Sequence

from qadmin.backends._redis_json import dumps, epoch, iso_z, with_members, without
from qadmin.backends._redis_lua import UNITS_PER_CALL, Batch
from qadmin.backends._redis_records import (Rec, delayed_item, delayed_rec, envelope, failure_entry, locked_rec,
                                            queue_rec, read_payload, status_key_parts, truthy)
from qadmin.codecs import json_codec
from qadmin.errors import JobNotFound, QadminError, UsageError
from qadmin.job import Job, JobId, JobState, NewJob, iso, utcnow

if TYPE_CHECKING:
    from qadmin.backends.redis import RedisBackend

#: entries of a queue a claim reads ahead for one it can run (delayed_job reads 5)
READ_AHEAD = (10, 100)
#: due delayed timestamps moved per claim
MOVE_STAMPS = 20
#: finished outcomes kept at most (besides the retention time)
FINISHED_CAP = 10_000
#: php-resque keeps a finished status this long (formats.md §3.3)
STATUS_TTL = 86400
#: characters of an error kept with a job
MAX_ERROR = 16_000


class EngineMixin:
    def _encode(self: RedisBackend, new: NewJob, now: datetime) -> bytes:
        meta: dict[str, Any] = {}
        if new.max_attempts is not None:
            meta["max_attempts"] = new.max_attempts
        if new.unique is not None:
            meta["unique"] = new.unique
        # when it was enqueued: the age of the oldest pending job, and distinct ids for equal jobs
        meta["enqueued_at"] = iso(now)
        return json_codec.encode(new.class_name, list(new.args), dict(new.kwargs), meta).encode("utf-8")

    def _push_steps(self: RedisBackend, queue: str, payload: bytes, run_at: datetime | None,
                    now: datetime) -> list[tuple[str, list[Any], list[Any]]]:
        """RPUSH + SADD (rule 3), or resque-scheduler's four structures for a later run (rule 15)."""
        if run_at is not None and int(epoch(run_at)) > epoch(now):
            ts = int(epoch(run_at))
            item = delayed_item(payload, queue)
            dkey = self.keys.delayed(ts)
            return [("RPUSH", [dkey], [item]), ("SADD", [self.keys.timestamps(item)], [self.keys.stamp_member(ts)]),
                    ("ZADD", [self.keys.schedule], [ts, ts])]
        return [("RPUSH", [self.keys.queue(queue)], [payload]), ("SADD", [self.keys.queues], [queue])]

    def _stored_job(self: RedisBackend, queue: str, payload: bytes, run_at: datetime | None, now: datetime) -> Job:
        if run_at is not None and int(epoch(run_at)) > epoch(now):
            ts = int(epoch(run_at))
            return delayed_rec(self.keys.delayed(ts), ts, delayed_item(payload, queue), -1, now).job
        return queue_rec(self.keys.queue(queue), queue, payload, -1).job

    def enqueue(self: RedisBackend, new: NewJob) -> Job:
        now = utcnow()
        if new.unique is not None:
            return self._enqueue_unique(new, now)
        payload = self._encode(new, now)
        batch = Batch()
        batch.unit(*self._push_steps(new.queue, payload, new.run_at, now))
        self._run(batch)
        return self._stored_job(new.queue, payload, new.run_at, now)

    def _enqueue_unique(self: RedisBackend, new: NewJob, now: datetime) -> Job:
        for _ in range(10):
            with self._wrap():
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
            batch.unit(("HSETEQ", [self.keys.unique], [new.unique, current or b"", str(job.id)]),
                       *self._push_steps(new.queue, payload, new.run_at, now))
            if self._run(batch)[0]:
                return job
            time.sleep(0.01)  # another process took the key first: read its job next time
        raise QadminError(f"could not enqueue unique job {new.unique!r}: too much contention")

    def enqueue_many(self: RedisBackend, news: Sequence[NewJob]) -> list[JobId]:
        ids: list[JobId] = []
        batch = Batch()
        for new in news:
            now = utcnow()
            if new.unique is not None:
                self._run(batch)
                batch = Batch()
                ids.append(self._enqueue_unique(new, now).id)
                continue
            payload = self._encode(new, now)
            batch.unit(*self._push_steps(new.queue, payload, new.run_at, now))
            ids.append(self._stored_job(new.queue, payload, new.run_at, now).id)
            if batch.units >= UNITS_PER_CALL:
                self._run(batch)
                batch = Batch()
        self._run(batch)
        return ids

    def move_due(self: RedisBackend, now: datetime, stamps: int = MOVE_STAMPS) -> int:
        """Move due delayed items to their queues, as resque-scheduler does (formats.md §2).

        Each item moves in one guarded unit (LREM of its exact bytes, then RPUSH + SADD + SREM of
        its `timestamps:` entry), so two schedulers never both move it and none is lost. Items
        without a queue, or that are not JSON, stay where they are."""
        with self._wrap():
            due = self.client.zrangebyscore(self.keys.schedule, "-inf", int(epoch(now)), start=0, num=stamps)
            if not due:
                return 0
            pipe = self.client.pipeline(transaction=False)
            for member in due:
                pipe.lrange(self.keys.delayed_prefix.encode() + member, 0, 99)
            lists = pipe.execute()
        batch = Batch()
        moves = 0
        for member, items in zip(due, lists):
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
                batch.unit(("LREM", [dkey], [1, raw]), ("RPUSH", [self.keys.queue(queue)], [payload]),
                           ("SADD", [self.keys.queues], [queue]),
                           ("SREM", [self.keys.timestamps(raw)], [self.keys.stamp_member(ts)]))
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
            values = pipe.execute()
        return truthy(values[0]), {n for n, v in zip(names, values[1:]) if v}

    def claim(self: RedisBackend, queues: Sequence[str], worker: str, now: datetime, max_run_time: float,
              can_run: Callable[[Job], bool], skip_ids: Sequence[JobId] = ()) -> Job | None:
        with self._wrap():
            if self.client.zrangebyscore(self.keys.schedule, "-inf", int(epoch(now)), start=0, num=1):
                self.move_due(now)
            every = any(q == "*" for q in queues)
            known = sorted(q.decode("utf-8", "replace") for q in self.client.smembers(self.keys.queues))
        names = _expand(queues, known)
        paused_all, paused = self._paused_flags(names)
        if paused_all:
            return None
        active = [n for n in names if n not in paused]
        skip = {str(i) for i in skip_ids}
        rid = self._rid(worker)
        taken = self._take_expired(active if not every else None, paused, worker, rid, now, max_run_time, can_run)
        if taken is not None:
            return taken
        for lo, hi in ((0, READ_AHEAD[0] - 1), (READ_AHEAD[0], READ_AHEAD[1] - 1)):
            with self._wrap():
                pipe = self.client.pipeline(transaction=False)
                for name in active:
                    pipe.lrange(self.keys.queue(name), lo, hi)
                windows = pipe.execute()
            for name, items in zip(active, windows):
                for i, raw in enumerate(items):
                    rec = queue_rec(self.keys.queue(name), name, raw, lo + i)
                    if str(rec.job.id) in skip or not rec.job.decodable or not can_run(rec.job):
                        continue
                    job = self._lock(rec, worker, rid, now, ("LREM", [rec.key], [1, raw]))
                    if job is not None:
                        return job
            active = [n for n, items in zip(active, windows) if len(items) == hi - lo + 1]
            if not active:
                break
        return None

    def _take_expired(self: RedisBackend, served: list[str] | None, paused: set[str], worker: str, rid: str | None,
                      now: datetime, max_run_time: float, can_run: Callable[[Job], bool]) -> Job | None:
        """A lock older than `max_run_time` may be taken over (delayed_job's rule)."""
        cutoff = epoch(now) - max_run_time
        with self._wrap():
            expired = self.client.zrangebyscore(self.keys.locked, "-inf", f"({cutoff}", start=0, num=20)
        for raw in expired:
            rec = locked_rec(self.keys.locked, raw)
            if rec is None or rec.job.queue in paused or (served is not None and rec.job.queue not in served):
                continue
            if not rec.job.decodable or not can_run(rec.job):
                continue
            job = self._lock(rec, worker, rid, now, ("ZREM", [self.keys.locked], [raw]))
            if job is not None:
                return job
        return None

    def _lock(self: RedisBackend, rec: Rec, worker: str, rid: str | None, now: datetime,
              guard: tuple[str, list[Any], list[Any]]) -> Job | None:
        payload = rec.payload or rec.raw
        queue = rec.job.queue or ""
        env = envelope(worker, rid, queue, iso(now) or "", os.urandom(4).hex(), payload)
        steps = [guard, ("ZADD", [self.keys.locked], [epoch(now), env])]
        wjson = None
        if rid is not None:
            wjson = ('{"queue":' + dumps(queue) + ',"run_at":' + dumps(iso_z(now)) + ',"payload":'
                     + payload.decode("utf-8") + "}")
            steps.append(("SET", [self.keys.worker(rid)], [wjson]))
        batch = Batch()
        batch.unit(*steps)
        if not self._run(batch)[0]:
            return None
        job = replace(rec.job, state=JobState.LOCKED, locked_at=now, locked_by=worker, stale=False)
        self._held[(worker, str(job.id))] = (env, wjson)
        return job

    def _envelope(self: RedisBackend, job: Job, worker: str) -> tuple[bytes | None, str | None]:
        held = self._held.pop((worker, str(job.id)), None)
        if held is not None:
            return held
        # reached when an earlier attempt to record this outcome lost the connection: the read
        # must raise BackendUnavailable (which the worker retries), never a driver error
        with self._wrap():
            recs = self._view(utcnow()).locked_recs()
        for rec in recs:
            if rec.kind == "locked" and rec.job.locked_by == worker and str(rec.job.id) == str(job.id):
                return rec.raw, None
        return None, None

    def _payload_of(self: RedisBackend, job: Job, env: bytes | None) -> bytes:
        if env is not None:
            return json.loads(env)["payload"].encode("utf-8")
        return job.raw.encode("utf-8")

    def _status_steps(self: RedisBackend, meta: dict[str, Any], status: int, now: datetime,
                      ttl: int | None) -> list[tuple[str, list[Any], list[Any]]]:
        """Keep php-resque's status key in step, only if it exists (formats.md §3.3, rule 6)."""
        parts = status_key_parts(meta)
        if parts is None:
            return []
        key = self.keys.status(*parts)
        with self._wrap():
            old = self.client.get(key)
        if old is None:
            return []
        return [("SETEQ", [key], [old, _status_value(old, status, now), ttl or ""])]

    def _outcome_steps(self: RedisBackend, worker: str, rid: str | None, wjson: str | None, now: datetime,
                       failed: bool) -> list[tuple[str, list[Any], list[Any]]]:
        minute = int(epoch(now)) // 60 * 60
        tkey = self.keys.throughput(minute)
        steps: list[tuple[str, list[Any], list[Any]]] = [
            ("INCR", [self.keys.processed], []), ("HINCRBY", [tkey], ["processed", 1]),
            ("EXPIRE", [tkey], [7200])]
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
        env, wjson = self._envelope(job, worker)
        payload = self._payload_of(job, env)
        rid = self._rid(worker)
        record = dumps({"finished_at": iso(now), "queue": job.queue, "worker": worker, "runtime": round(runtime, 6),
                        "attempts": job.attempts, "n": os.urandom(4).hex(), "payload": payload.decode("utf-8")})
        batch = Batch()
        release: list[tuple[str, list[Any], list[Any]]] = []
        if job.meta.get("unique") is not None:
            release.append(("HDELEQ", [self.keys.unique], [job.meta["unique"], str(job.id)]))
        if env is not None:
            batch.unit(("ZREM", [self.keys.locked], [env]), *release)
        batch.unit(("ZADD", [self.keys.finished], [epoch(now), record]),
                   ("ZREMRANGEBYSCORE", [self.keys.finished],
                    ["-inf", f"({epoch(now) - self.options.finished_retention}"]),
                   ("ZCAP", [self.keys.finished], [FINISHED_CAP]),
                   *self._outcome_steps(worker, rid, wjson, now, failed=False),
                   *self._status_steps(job.meta, 4, now, STATUS_TTL))
        self._run(batch)

    def fail(self: RedisBackend, job: Job, worker: str, now: datetime, error: str, retry_at: datetime | None) -> None:
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
        if env is not None:  # no longer held (unlocked or deleted meanwhile): only count the run
            batch.unit(("ZREM", [self.keys.locked], [env]), *moves, *status)
        batch.unit(("NOP", [], []), *self._outcome_steps(worker, rid, wjson, now, failed=True))
        self._run(batch)

    def release(self: RedisBackend, job: Job, worker: str) -> None:
        env, wjson = self._envelope(job, worker)
        if env is None:
            return
        rid = self._rid(worker)
        steps: list[tuple[str, list[Any], list[Any]]] = [
            ("ZREM", [self.keys.locked], [env]),
            ("LPUSH", [self.keys.queue(job.queue or "")], [self._payload_of(job, env)]),
            ("SADD", [self.keys.queues], [job.queue or ""])]
        if rid is not None and wjson is not None:
            steps.append(("DELEQ", [self.keys.worker(rid)], [wjson]))
        batch = Batch()
        batch.unit(*steps)
        self._run(batch)


def _status_value(old: bytes, status: int, now: datetime) -> str:
    """php-resque's status JSON in the shape the writer used: chrisboulton's `{status, updated}`
    or resque/php-resque's `{status, updated, started, result}` (formats.md §3.3)."""
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

