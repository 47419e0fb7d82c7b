"""What a worker writes about the jobs it holds: success, failure, a renewed lock, jobs given back.

Each write is one guarded unit (`lua/apply.lua`) that happens only while this worker's lock is
still there to remove, so a write repeated after BackendUnavailable counts nothing twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from qadmin.backends.history import failure_outcome
from qadmin.backends.redis.attempts import history_step
from qadmin.backends.redis.cancel import cancelled_steps, request_of
from qadmin.backends.redis.claims import Done, Held
from qadmin.backends.redis.entries import failure_entry
from qadmin.backends.redis.json_text import dumps, epoch, with_members
from qadmin.backends.redis.payloads import status_key_parts
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.scripts import Batch
from qadmin.backends.redis.server import Server, Step, as_bytes
from qadmin.backends.redis.steps import FINISHED_CAP, nonce, outcome_steps, payload_of, push_steps, status_steps
from qadmin.backends.redis.twins import Twins
from qadmin.job import Job, iso, utcnow

#: php-resque keeps a finished status this long (docs/compatibility.md §3.3)
STATUS_TTL = 86400
#: characters of an error kept with a job
MAX_ERROR = 16_000


class Outcomes:
    """The outcome writes of one worker (`worker`), for the jobs it holds (`held`, shared with its
    session and claims); a job it does not remember holding is looked up in the locked set."""

    def __init__(self, server: Server, worker: str, held: Held, rid: Callable[[], str | None]) -> None:
        self.server = server
        self.keys = server.keys
        self.options = server.options
        self.worker = worker
        self.held = held
        self.rid = rid

    def envelope(self, job: Job) -> tuple[bytes | None, str | None]:
        """The locked-set entry of a job this worker holds, and its `worker:ID` value. It stays
        remembered until its outcome is written, so that a write retried after
        BackendUnavailable finds it again."""
        held = self.held.get(str(job.id))
        if held is not None:
            return held
        # reached when the lock was taken by another process or session of this worker name (or
        # the memory was lost): the read must raise BackendUnavailable, never a driver error
        server = self.server
        with server.wrap():
            recs = Twins(Reader(server, utcnow())).locked_recs()
            for rec in recs:
                if rec.kind is Place.LOCKED and rec.job.locked_by == self.worker and str(rec.job.id) == str(job.id):
                    return rec.raw, self._resque_value(rec.extra.get("rid"), rec.payload)
        return None, None

    def _resque_value(self, rid: object, payload: bytes | None) -> str | None:
        """`worker:ID`'s value while it names this job (so that its outcome clears it)."""
        if not isinstance(rid, str) or payload is None:
            return None
        value = as_bytes(self.server.client.get(self.keys.worker(rid)))
        if value is None or not value.endswith(b',"payload":' + payload + b"}"):
            return None
        return value.decode("utf-8")

    def _record(self, job: Job, env: bytes | None, now: datetime, runtime: float, result: str | None = None) -> str:
        """A finished record (qadmin's finished set); `result` (`result_text`'s JSON) as a string
        member, like the payload, only when the job returned something. Its text is
        `dumps({"finished_at", "queue", "worker", "runtime", "attempts", "n", "payload"[, "result"]})`,
        written out: the payload member is copied from the envelope, which ends with it quoted
        the same way, rather than decoded and quoted again for every job."""
        quoted = _quoted_payload(env)
        if quoted is None:
            quoted = dumps(payload_of(job, env).decode("utf-8"))
        return (
            '{"finished_at":'
            + dumps(iso(now))
            + ',"queue":'
            + dumps(job.queue)
            + ',"worker":'
            + dumps(self.worker)
            + ',"runtime":'
            + dumps(round(runtime, 6))
            + ',"attempts":'
            + dumps(job.attempts)
            + ',"n":"'
            + nonce()
            + '","payload":'
            + quoted
            + ("}" if result is None else ',"result":' + dumps(result) + "}")
        )

    def completion(self, job: Job, now: datetime, runtime: float, result: str | None = None) -> Done | None:
        """The outcome of a success as `claim.lua` records it, or None when it needs `complete`
        (php-resque status keys are kept in step there, and a lock not remembered is looked up)."""
        held = self.held.get(str(job.id))
        if held is None or status_key_parts(job.meta) is not None:
            return None
        env, wjson = held
        unique = job.meta.get("unique")
        at = epoch(now)
        return Done(
            str(job.id),
            env,
            wjson,
            self._record(job, env, now, runtime, result),
            None if unique is None else str(unique),
            at,
            self.keys.throughput(int(at) // 60 * 60),
            time.monotonic(),
        )

    def complete(self, job: Job, now: datetime, runtime: float, result: str | None = None) -> None:
        """Write a success in a unit of its own."""
        env, wjson = self.envelope(job)
        if env is None:  # no longer held by this worker (a repeat, or unlocked meanwhile): as on SQL,
            return  # the outcome belongs to whoever holds the job now
        k = self.keys
        release: list[Step] = []
        if job.meta.get("unique") is not None:
            release.append(("HDELEQ", [k.unique], [job.meta["unique"], str(job.id)]))
        # recorded only while the lock is still there to remove: a write repeated after
        # BackendUnavailable does not count the job twice
        self.server.run_unit(
            ("ZREM", [k.locked], [env]),
            *release,
            ("ZADD", [k.finished], [epoch(now), self._record(job, env, now, runtime, result)]),
            ("ZREMRANGEBYSCORE", [k.finished], ["-inf", f"({epoch(now) - self.options.finished_retention}"]),
            ("ZCAP", [k.finished], [FINISHED_CAP]),
            *outcome_steps(k, self.rid(), wjson, now, failed=False),
            *status_steps(self.server, job.meta, 4, now, STATUS_TTL),
        )
        self.held.pop(str(job.id), None)

    def fail(
        self, job: Job, now: datetime, error: str, retry_at: datetime | None, started_at: datetime | None = None
    ) -> None:
        k = self.keys
        env, wjson = self.envelope(job)
        payload = payload_of(job, env).decode("utf-8")
        rid = self.rid()
        queue = job.queue or ""
        attempts = job.attempts + 1
        error = _capped(error)
        if retry_at is not None:
            again = with_members(payload, {"attempts": attempts, "last_error": error}).encode("utf-8")
            moves = push_steps(k, queue, again, retry_at, now)
            status = status_steps(self.server, job.meta, 1, now, None)
        else:
            kept = with_members(payload, {"attempts": attempts}, drop=("last_error",))
            entry = failure_entry(kept, error, rid or self.worker, queue, now)
            moves = [("RPUSH", [k.failed], [entry])]
            if job.meta.get("unique") is not None:
                moves.append(("HDELEQ", [k.unique], [job.meta["unique"], str(job.id)]))
            status = status_steps(self.server, job.meta, 3, now, STATUS_TTL)
        counts = outcome_steps(k, rid, wjson, now, failed=True)
        run = history_step(
            k,
            self.options,
            job.id,
            failure_outcome(error, retry_at),
            started_at or job.locked_at,
            now,
            self.worker,
            error,
        )
        if env is not None:  # counted only with the move, so that a repeated write counts once
            self.server.run_unit(("ZREM", [k.locked], [env]), *moves, *status, *counts, run)
        else:  # no longer held (unlocked or deleted meanwhile): only count the run
            self.server.run_unit(("NOP", [], []), *counts)
        self.held.pop(str(job.id), None)

    def cancelled(self, job: Job, now: datetime) -> bool:
        """The job interrupted at an operator's request: recorded as cancelled, the request dropped."""
        k = self.keys
        with self.server.wrap():
            request = request_of(self.server.client.hget(k.cancels, str(job.id))) or {}
        env, wjson = self.envelope(job)
        drop: Step = ("HDEL", [k.cancels], [str(job.id)])
        if env is None:  # no longer held by this worker: the outcome belongs to whoever holds it
            self.server.run_unit(("NOP", [], []), drop)
            return False
        release: list[Step] = []
        if job.meta.get("unique") is not None:
            release.append(("HDELEQ", [k.unique], [job.meta["unique"], str(job.id)]))
        actor = str(request.get("by") or "?")
        done = self.server.run_unit(
            ("ZREM", [k.locked], [env]),
            *release,
            *cancelled_steps(
                k,
                self.options.finished_retention,
                payload_of(job, env),
                job.queue,
                self.worker,
                now,
                actor,
                None if job.locked_at is None else max((now - job.locked_at).total_seconds(), 0.0),
            ),
            *outcome_steps(k, self.rid(), wjson, now, failed=False),
            drop,
        )
        self.held.pop(str(job.id), None)
        return done

    def release(self, jobs: Sequence[Job]) -> None:
        """Give claimed jobs back, at the head of their queues, in their claim order (a stopping
        worker's unrun prefetched jobs)."""
        k = self.keys
        rid = self.rid()
        batch = Batch()
        given = []
        for job in reversed(jobs):  # LPUSHed last, the first claimed ends up first again
            env, wjson = self.envelope(job)
            if env is None:
                continue
            given.append(job)
            steps: list[Step] = [
                ("ZREM", [k.locked], [env]),
                ("LPUSH", [k.queue(job.queue or "")], [payload_of(job, env)]),
                ("SADD", [k.queues], [job.queue or ""]),
            ]
            if rid is not None and wjson is not None:
                steps.append(("DELEQ", [k.worker(rid)], [wjson]))
            batch.unit(*steps)
        self.server.run(batch)
        for job in given:
            self.held.pop(str(job.id), None)

    def refresh(self, job: Job, now: datetime) -> bool:
        """Renew the lock of a prefetched job before it runs (its envelope says since when, its
        score when it expires): False if this worker no longer holds it, so it must not run it."""
        env, wjson = self.envelope(job)
        if env is None:
            return False
        try:
            value = json.loads(env)
        except ValueError:
            return False
        value["locked_at"] = iso(now)
        renewed = dumps(value).encode("utf-8")
        k = self.keys
        if not self.server.run_unit(("ZREM", [k.locked], [env]), ("ZADD", [k.locked], [epoch(now), renewed])):
            self.held.pop(str(job.id), None)
            return False
        self.held[str(job.id)] = (renewed, wjson)
        return True


#: how a locked-set envelope ends: its payload member, a JSON string, last (`entries.envelope`,
#: claim.lua, `refresh`)
PAYLOAD_MEMBER = b',"payload":"'


def _quoted_payload(env: bytes | None) -> str | None:
    """The payload member of an envelope as it is quoted there, or None for one of another shape.
    No quote inside a JSON string is followed by `,"payload":"` unescaped, so the first such
    member is the envelope's own."""
    if env is None or not env.endswith(b'"}'):
        return None
    at = env.find(PAYLOAD_MEMBER)
    if at < 0:
        return None
    return env[at + len(PAYLOAD_MEMBER) - 1 : -1].decode("utf-8")


def _capped(error: str) -> str:
    """Errors travel inside payloads and key names (resque-scheduler's `timestamps:`): keep them
    bounded, the first line whole."""
    if len(error) <= MAX_ERROR:
        return error
    head, _, rest = error.partition("\n")
    return head + "\n" + rest[:MAX_ERROR] + "\n[... truncated]"
