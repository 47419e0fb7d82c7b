"""Waiting jobs on Redis (`qadmin.Waiting`): out of every Resque structure, in qadmin's own
`qadmin:waiting` hash (id -> payload, queue, since, deadline, worker) with the ids by deadline in
`qadmin:waiting:deadlines`. Each move out of it is one unit guarded by the HDEL of its entry:
the first writer wins (a report and an expiry, or two expiring workers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from qadmin.backends.redis.cancel import cancelled_steps
from qadmin.backends.redis.entries import failure_entry
from qadmin.backends.redis.json_text import dumps, epoch, parse_time, with_members
from qadmin.backends.redis.outcomes import STATUS_TTL, Outcomes, _capped
from qadmin.backends.redis.payloads import read_payload
from qadmin.backends.redis.server import Server, Step, as_bytes
from qadmin.backends.redis.steps import FINISHED_CAP, nonce, outcome_steps, payload_of, push_steps, status_steps
from qadmin.errors import InvalidTransition
from qadmin.job import DEFAULT_MAX_ATTEMPTS, Job, JobId, JobState, iso, retry_after
from qadmin.waiting import timeout_error


def wait(outcomes: Outcomes, job: Job, now: datetime, until: datetime) -> bool:
    """Move the job the session's worker holds from the locked set into the waiting hash."""
    env, wjson = outcomes.envelope(job)
    if env is None:
        return False
    k, rid = outcomes.keys, outcomes.rid()
    entry = {
        "payload": payload_of(job, env).decode("utf-8"),
        "queue": job.queue,
        "since": iso(now),
        "deadline": iso(until),
        "worker": outcomes.worker,
    }
    clear: list[Step] = [] if rid is None or wjson is None else [("DELEQ", [k.worker(rid)], [wjson])]
    moved = outcomes.server.run_unit(
        ("ZREM", [k.locked], [env]),
        ("HSET", [k.waiting], [str(job.id), dumps(entry)]),
        ("ZADD", [k.waiting_deadlines], [epoch(until), str(job.id)]),
        *clear,
    )
    outcomes.held.pop(str(job.id), None)
    return moved


class Waiting:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.keys = server.keys

    def _raw(self, job_id: JobId) -> bytes | None:
        with self.server.wrap():
            return as_bytes(self.server.client.hget(self.keys.waiting, str(job_id)))

    def _entry(self, job_id: JobId) -> dict[str, Any] | None:
        raw = self._raw(job_id)
        return None if raw is None else self._decode(raw)

    @staticmethod
    def _decode(raw: bytes) -> dict[str, Any] | None:
        try:
            entry = json.loads(raw)
        except ValueError:
            return None
        return entry if isinstance(entry, dict) and isinstance(entry.get("payload"), str) else None

    @staticmethod
    def to_job(job_id: JobId, entry: dict[str, Any]) -> Job:
        fields = read_payload(entry["payload"].encode("utf-8")).job_fields()
        meta = {**fields.pop("meta", {}), "waiting_since": entry.get("since"), "waiting_until": entry.get("deadline")}
        return Job(id=job_id, queue=entry.get("queue"), state=JobState.WAITING, meta=meta, **fields)

    def get(self, job_id: JobId) -> Job | None:
        entry = self._entry(job_id)
        return None if entry is None else self.to_job(job_id, entry)

    def listing(self, limit: int = 1000) -> list[Job]:
        with self.server.wrap():
            ids = [_text(i) for i in self.server.client.zrange(self.keys.waiting_deadlines, 0, limit - 1)]
            raws = self.server.client.hmget(self.keys.waiting, ids) if ids else []
        jobs = []
        for job_id, raw in zip(ids, raws, strict=True):
            entry = None if raw is None else self._decode(as_bytes(raw) or b"")
            if entry is not None:
                jobs.append(self.to_job(job_id, entry))
        return jobs

    def _taken(self, job_id: JobId, verb: str) -> tuple[dict[str, Any], list[Step]]:
        raw = self._raw(job_id)
        entry = None if raw is None else self._decode(raw)
        if raw is None or entry is None:
            raise InvalidTransition(job_id, "not waiting", verb)
        k = self.keys
        # guarded by the entry as read: a report racing an expiry moves the job once
        guard: list[Step] = [
            ("HDELEQ", [k.waiting], [str(job_id), raw]),
            ("ZREM", [k.waiting_deadlines], [str(job_id)]),
        ]
        return entry, guard

    def complete(self, job_id: JobId, now: datetime, result: str | None) -> Job:
        entry, guard = self._taken(job_id, "complete")
        job = self.to_job(job_id, entry)
        k = self.keys
        since = parse_time(entry.get("since"))
        record: dict[str, Any] = {
            "finished_at": iso(now),
            "queue": job.queue,
            "worker": entry.get("worker"),
            "runtime": None if since is None else round((now - since).total_seconds(), 6),
            "attempts": job.attempts,
            "n": nonce(),
            "payload": entry["payload"],
        }
        if result is not None:
            record["result"] = result
        release: list[Step] = []
        if job.meta.get("unique") is not None:
            release.append(("HDELEQ", [k.unique], [job.meta["unique"], str(job.id)]))
        retention = self.server.options.finished_retention
        done = self.server.run_unit(
            *guard,
            *release,
            ("ZADD", [k.finished], [epoch(now), dumps(record)]),
            ("ZREMRANGEBYSCORE", [k.finished], ["-inf", f"({epoch(now) - retention}"]),
            ("ZCAP", [k.finished], [FINISHED_CAP]),
            *outcome_steps(k, None, None, now, failed=False),
            *status_steps(self.server, job.meta, 4, now, STATUS_TTL),
        )
        if not done:
            raise InvalidTransition(job_id, "not waiting", "complete")
        return job

    def fail(self, job_id: JobId, now: datetime, error: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Job:
        entry, guard = self._taken(job_id, "fail")
        job = self.to_job(job_id, entry)
        k = self.keys
        payload, queue = entry["payload"], job.queue or ""
        attempts = job.attempts + 1
        error = _capped(error)
        retry_at = retry_after(attempts, job.max_attempts or max_attempts, now)
        if retry_at is not None:
            again = with_members(payload, {"attempts": attempts, "last_error": error}).encode("utf-8")
            moves = push_steps(k, queue, again, retry_at, now)
            status = status_steps(self.server, job.meta, 1, now, None)
        else:
            kept = with_members(payload, {"attempts": attempts}, drop=("last_error",))
            moves = [("RPUSH", [k.failed], [failure_entry(kept, error, str(entry.get("worker") or "?"), queue, now)])]
            if job.meta.get("unique") is not None:
                moves.append(("HDELEQ", [k.unique], [job.meta["unique"], str(job.id)]))
            status = status_steps(self.server, job.meta, 3, now, STATUS_TTL)
        done = self.server.run_unit(*guard, *moves, *status, *outcome_steps(k, None, None, now, failed=True))
        if not done:
            raise InvalidTransition(job_id, "not waiting", "fail")
        return job

    def remove(self, ids: Sequence[JobId], now: datetime, cancelled_by: str | None) -> list[JobId]:
        """Delete these waiting entries, each in one unit guarded by its entry as read, recording
        each as cancelled by `cancelled_by` when given (`Backend.remove_waiting`)."""
        k, retention = self.keys, self.server.options.finished_retention
        removed: list[JobId] = []
        for job_id in ids:
            try:
                entry, guard = self._taken(job_id, "cancel" if cancelled_by else "delete")
            except InvalidTransition:  # not waiting (any more)
                continue
            job = self.to_job(job_id, entry)
            steps: list[Step] = list(guard)
            if job.meta.get("unique") is not None:
                steps.append(("HDELEQ", [k.unique], [job.meta["unique"], str(job_id)]))
            if cancelled_by is not None:
                payload = entry["payload"].encode("utf-8")
                steps += cancelled_steps(k, retention, payload, job.queue, None, now, cancelled_by)
            if self.server.run_unit(*steps):
                removed.append(job_id)
        return removed

    def expire(self, now: datetime) -> list[JobId]:
        with self.server.wrap():
            due = self.server.client.zrangebyscore(self.keys.waiting_deadlines, "-inf", epoch(now))
        failed: list[JobId] = []
        for raw_id in due:
            job_id = _text(raw_id)
            entry = self._entry(job_id)
            if entry is None:
                continue
            error = timeout_error(parse_time(entry.get("since")), parse_time(entry.get("deadline")) or now)
            try:
                self.fail(job_id, now, error)
            except InvalidTransition:  # reported back, or expired by another worker, meanwhile
                continue
            failed.append(job_id)
        return failed


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
