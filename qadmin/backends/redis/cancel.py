"""Cancel on Redis: a waiting entry (a queue's, or a resque-scheduler delayed item) removed in one
guarded unit with its finished record marked `cancelled_by`, and a job held by a qadmin worker
asked to stop through qadmin's `qadmin:cancels` hash (job id -> when, by whom), which the worker's
heartbeat reads (`cancel_requested`) and its outcome clears (`cancelled`). A job a Resque worker
holds cannot be told: it is left alone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from qadmin.backends.redis.changes import Changes
from qadmin.backends.redis.enqueue import due_payload
from qadmin.backends.redis.json_text import dumps, epoch, parse_time
from qadmin.backends.redis.keys import Keys
from qadmin.backends.redis.payloads import read_payload
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.records import Rec
from qadmin.backends.redis.server import Server, Step, as_bytes
from qadmin.backends.redis.steps import FINISHED_CAP, nonce
from qadmin.job import Job, JobId, JobState, iso

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
    """cancel and foreign_running, over `changes`' resolution of ids and its guarded units."""

    def __init__(self, server: Server, changes: Changes) -> None:
        self.server = server
        self.keys = server.keys
        self.changes = changes

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
