"""Cancel on Redis: a waiting entry (a queue's, or a resque-scheduler delayed item) removed in one
guarded unit with its finished record marked `cancelled_by`, and a job held by a qadmin worker
asked to stop through qadmin's `qadmin:cancels` hash (job id -> when, by whom), which the worker's
heartbeat reads (`cancel_requested`) and its outcome clears (`cancelled`). A job a Resque worker
holds cannot be told: it is left alone."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from qadmin.backends.cancel_requests import SETTLE_LIMIT, CancelRequest, settle
from qadmin.backends.redis.changes import Changes
from qadmin.backends.redis.enqueue import due_payload
from qadmin.backends.redis.ids import make_id, split_ids
from qadmin.backends.redis.json_text import dumps, epoch, parse_time
from qadmin.backends.redis.keys import Keys
from qadmin.backends.redis.payloads import read_payload
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.records import Rec
from qadmin.backends.redis.server import Server, Step, as_bytes
from qadmin.backends.redis.steps import FINISHED_CAP, nonce
from qadmin.errors import UsageError
from qadmin.job import AuditEntry, Job, JobId, JobState, iso

WAITING = frozenset({JobState.PENDING, JobState.SCHEDULED})
RUNNING = frozenset({JobState.LOCKED})


def cancelled_steps(
    keys: Keys,
    retention: float,
    payload: bytes,
    queue: str | None,
    worker: str | None,
    now: datetime,
    actor: str,
    runtime: float | None = None,
) -> list[Step]:
    """The finished record of a cancelled job (what `records.finished_rec` reads), retention kept;
    `runtime`: how long a running one ran before its worker stopped it."""
    record = dumps(
        {
            "finished_at": iso(now),
            "queue": queue,
            "worker": worker,
            "runtime": None if runtime is None else round(runtime, 6),
            "attempts": read_payload(payload).job_fields()["attempts"],
            "n": nonce(),
            "payload": payload.decode("utf-8"),
            "cancelled_by": actor,
        }
    )
    return [
        ("ZADD", [keys.finished], [epoch(now), record]),
        ("ZREMRANGEBYSCORE", [keys.finished], ["-inf", f"({epoch(now) - retention}"]),
        ("ZCAP", [keys.finished], [FINISHED_CAP]),
    ]


def request_of(raw: Any) -> dict[str, Any] | None:
    """A `qadmin:cancels` value read back, or None when there is none (or it is not ours)."""
    value = as_bytes(raw)
    if value is None:
        return None
    try:
        request = json.loads(value)
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def requested_for(request: dict[str, Any] | None, job: Job) -> bool:
    """Whether a request is meant for this run of the job: one left from an earlier run (it failed
    before its worker saw the request, and was retried) is not."""
    if request is None:
        return False
    at = parse_time(request.get("at"))
    return job.locked_at is None or at is None or at >= job.locked_at


class Cancelling:
    """cancel and foreign_running, over `changes`' resolution of ids and its guarded units; the
    requests no worker will act on settled (`backends/cancel_requests.py`)."""

    def __init__(
        self,
        server: Server,
        changes: Changes,
        record_audit: Callable[[AuditEntry, list[JobId]], None],
        job_of: Callable[[JobId], Job | None],
    ) -> None:
        self.server = server
        self.keys = server.keys
        self.changes = changes
        self.record_audit = record_audit
        self.job_of = job_of

    def foreign_running(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        return [r.job.id for r in self.changes._resolve(ids, RUNNING, now) if r.kind is not Place.LOCKED]

    def cancel(self, ids: Sequence[JobId], now: datetime, actor: str) -> list[JobId]:
        k = self.keys
        retention = self.server.options.finished_retention

        def steps(rec: Rec) -> list[Any] | None:
            unique = rec.job.meta.get("unique")
            rest: list[Any] = [] if unique is None else [("HDELEQ", [k.unique], [unique, str(rec.job.id)])]
            if rec.kind is Place.LOCKED:  # a qadmin worker runs it: asked to stop while it holds it
                request = dumps({"at": iso(now), "by": actor})
                return [("ZSCORE", [k.locked], [rec.raw]), ("HSET", [k.cancels], [str(rec.job.id), request])]
            if rec.kind is Place.QUEUE:
                guard: list[Any] = [("TOMB", [rec.key], [self.changes.memory.hint(rec), rec.raw])]
                payload = rec.raw
            elif rec.kind is Place.DELAYED:
                due = due_payload(rec.raw)
                if due is None:
                    return None
                payload = due[1]
                guard = [
                    ("LREM", [rec.key], [1, rec.raw]),
                    ("SREM", [k.timestamps(rec.raw)], [k.stamp_member(rec.extra["ts"])]),
                    ("DROPEMPTY", [rec.key, k.schedule], [rec.extra["ts"]]),
                ]
            else:  # held by a Resque worker, or unreadable: nothing qadmin can stop
                return None
            return [*guard, *rest, *cancelled_steps(k, retention, payload, rec.job.queue, None, now, actor)]

        states = WAITING | RUNNING
        recs = self.changes._resolve(ids, states, now)
        with self.server.wrap():
            return self.changes._apply_units(recs, steps, states, now, shifts=True)

    @staticmethod
    def _request(job_id: JobId, raw: Any) -> CancelRequest | None:
        request = request_of(raw)
        if request is None:
            return None
        return CancelRequest(job_id, parse_time(request.get("at")), str(request.get("by") or "?"))

    def request_for(self, job_id: JobId) -> CancelRequest | None:
        """The open request of this job; a finished record (`@z`) is asked by its job's plain id."""
        try:
            parts = next(iter(split_ids(job_id)), None)
        except UsageError:  # no id of this backend: no request either
            return None
        if parts is not None and parts.where is not None and parts.where.startswith("z"):
            job_id = make_id(parts.queue, parts.token)
        with self.server.wrap():
            raw = self.server.client.hget(self.keys.cancels, str(job_id))
        return self._request(job_id, raw)

    def settle(self, now: datetime, face: str, dry_run: bool = False) -> list[JobId]:
        k = self.keys
        with self.server.wrap():
            found = self.server.client.hscan_iter(k.cancels, count=SETTLE_LIMIT)
            raws = {_text(field): as_bytes(value) for field, value in itertools.islice(found, SETTLE_LIMIT)}
        requests = [r for job_id, raw in raws.items() if (r := self._request(job_id, raw)) is not None]

        def drop(request: CancelRequest) -> bool:
            # only the request as read: one made again meanwhile (the job cancelled anew) stays
            return self.server.run_unit(("HDELEQ", [k.cancels], [str(request.job_id), raws[str(request.job_id)]]))

        settled = settle(requests, self.job_of, drop, self.record_audit, now, face, dry_run=dry_run)
        return [r.job_id for r in settled]


def _text(value: object) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
