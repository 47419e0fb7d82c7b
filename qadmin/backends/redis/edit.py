"""Edit one Redis job: its arguments rewritten as Resque's own encoder writes them (compact, raw
UTF-8, every other member kept in place; docs/compatibility.md §1.1, §1.3), its queue or run time
changed by moving the entry (a queue's list, resque-scheduler's delayed structures, §2.1), in one
unit guarded by the exact bytes read, as every Redis change is (`lua/apply.lua`).

Resque has no keyword arguments and no priorities: kwargs are only edited in a payload that
already carries qadmin's `kwargs` member, and a priority is refused. A pending job stays where it
is in its queue when only its arguments change."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from qadmin.backends.redis.changes import Changes
from qadmin.backends.redis.entries import delayed_item
from qadmin.backends.redis.ids import make_id
from qadmin.backends.redis.json_text import epoch, with_members, without
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.records import Rec, delayed_rec, failed_rec, queue_rec
from qadmin.backends.redis.scripts import Batch
from qadmin.backends.redis.server import Server, Step
from qadmin.backends.redis.steps import push_steps
from qadmin.codecs.json_codec import KWARGS_KEY
from qadmin.errors import InvalidTransition, JobNotFound, UsageError
from qadmin.job import Job, JobId
from qadmin.model import EDITABLE_STATES, JobEdit, check_edit


class Edit:
    def __init__(self, server: Server, changes: Changes) -> None:
        self.server = server
        self.keys = server.keys
        self.changes = changes

    def _rec(self, job_id: JobId, now: datetime) -> Rec:
        recs = self.changes._resolve([job_id], EDITABLE_STATES, now, fresh=True)
        if not recs:
            raise JobNotFound(job_id, f"job {job_id} is not a pending, scheduled or failed job (or is gone)")
        return recs[0]

    def edit(self, job_id: JobId, changes: JobEdit, now: datetime) -> Job:
        rec = self._rec(job_id, now)
        job: Job = rec.job
        check_edit(job, changes)
        if changes.priority is not None:
            raise UsageError(f"job {job.id}: Redis (Resque) queues have no priorities; leave the priority out")
        if rec.kind is Place.FAILED:
            steps, after = self._failed(rec, changes)
        elif rec.kind in (Place.QUEUE, Place.DELAYED):
            steps, after = self._waiting(rec, changes, now)
        else:
            raise InvalidTransition(job.id, job.state.value, "edit")
        if not steps:
            return job
        unique = job.meta.get("unique")
        if unique is not None and after.id != job.id:  # a unique key names its job by id
            steps.append(("HSETEQ", [self.keys.unique], [unique, str(job.id), str(after.id)]))
        batch = Batch()
        batch.unit(*steps)
        if not self.server.run(batch)[0]:
            raise InvalidTransition(job.id, "changed since it was read", "edit")
        self.changes.memory.forget(rec)
        return after

    def _payload_text(self, rec: Rec, payload: str, changes: JobEdit) -> str:
        """The payload with the new arguments; the very same text when they are not changed."""
        obj = json.loads(payload)
        values: dict[str, Any] = {}
        drop: list[str] = []
        if changes.args is not None:
            values["args"] = list(changes.args)
        if changes.kwargs is not None and changes.kwargs != (obj.get(KWARGS_KEY) or {}):
            if KWARGS_KEY not in obj:
                raise UsageError(
                    f"job {rec.job.id} is a plain Resque job: Resque has no keyword arguments, so its "
                    "kwargs cannot be set; edit its args"
                )
            if changes.kwargs:
                values[KWARGS_KEY] = dict(changes.kwargs)
            else:
                drop.append(KWARGS_KEY)
        if not values and not drop:
            return payload
        return with_members(payload, values, drop=drop)

    def _waiting(self, rec: Rec, changes: JobEdit, now: datetime) -> tuple[list[Step], Job]:
        raw = rec.raw.decode("utf-8")
        old_queue = rec.job.queue or ""
        if rec.kind is Place.DELAYED:
            payload = without(raw, ("queue",))
            old_at: datetime | None = datetime.fromtimestamp(rec.extra["ts"], UTC)
        else:
            payload, old_at = raw, None
        new_payload = self._payload_text(rec, payload, changes).encode("utf-8")
        queue = changes.queue if changes.queue is not None else old_queue
        run_at = changes.run_at if changes.run_at is not None else old_at
        new_ts = int(epoch(run_at)) if run_at is not None and int(epoch(run_at)) > epoch(now) else None
        later = new_ts is not None
        if rec.kind is Place.QUEUE and not later:
            if queue == old_queue:
                if new_payload == rec.raw:
                    return [], rec.job
                steps: list[Step] = [("LSETEQ", [rec.key], [rec.index, rec.raw, new_payload])]
            else:
                steps = [("LREM", [rec.key], [1, rec.raw]), *push_steps(self.keys, queue, new_payload, None, now)]
            return steps, queue_rec(self.keys.queue(queue), queue, new_payload, -1).job
        if rec.kind is Place.DELAYED:
            ts = rec.extra["ts"]
            if new_ts == ts and delayed_item(new_payload, queue) == rec.raw:
                return [], rec.job
            leave: list[Step] = [
                ("LREM", [rec.key], [1, rec.raw]),
                ("SREM", [self.keys.timestamps(rec.raw)], [self.keys.stamp_member(ts)]),
            ]
            tail: list[Step] = [("DROPEMPTY", [rec.key, self.keys.schedule], [ts])]
        else:
            leave, tail = [("LREM", [rec.key], [1, rec.raw])], []
        steps = [*leave, *push_steps(self.keys, queue, new_payload, run_at if later else None, now), *tail]
        if new_ts is not None:
            moved = delayed_rec(self.keys.delayed(new_ts), new_ts, delayed_item(new_payload, queue), -1, now)
            return steps, replace(moved.job, id=make_id(moved.job.queue, moved.token))
        return steps, queue_rec(self.keys.queue(queue), queue, new_payload, -1).job

    def _failed(self, rec: Rec, changes: JobEdit) -> tuple[list[Step], Job]:
        """A failure entry keeps its place in `failed`: its payload (and queue) rewritten in place."""
        if changes.run_at is not None:
            raise UsageError(f"job {rec.job.id} is a failed Redis job: it has no run time until it is retried")
        raw = rec.raw.decode("utf-8")
        entry = json.loads(raw)
        payload = entry.get("payload")
        if not isinstance(payload, dict):
            raise UsageError(f"job {rec.job.id}: its failure entry holds no payload qadmin can edit")
        new_payload = self._payload_text(rec, json.dumps(payload, separators=(",", ":"), ensure_ascii=False), changes)
        values: dict[str, Any] = {}
        if new_payload != json.dumps(payload, separators=(",", ":"), ensure_ascii=False):
            values["payload"] = json.loads(new_payload)
        if changes.queue is not None and changes.queue != entry.get("queue"):
            values["queue"] = changes.queue
        if not values:
            return [], rec.job
        new_entry = with_members(raw, values).encode("utf-8")
        steps: list[Step] = [("LSETEQ", [rec.key], [rec.index, rec.raw, new_entry])]
        return steps, failed_rec(rec.key, new_entry, rec.index).job
