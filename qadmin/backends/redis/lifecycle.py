"""Run now and kill on Redis: a scheduled job is a resque-scheduler delayed item (docs/compatibility.md
§2.1), and each verb moves that exact item in one guarded unit, as `changes.py` does its verbs.

Run now moves the item to its queue's tail as resque-scheduler moves a due item (§2.2), so the
queue holds the bytes a Resque worker pops. Kill files a retry waiting out its backoff (qadmin keeps
its attempts and last error in the item, §8.1) as the Resque failure entry (§1.6) its worker's last
failure would have written.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from qadmin.backends.redis.changes import Changes
from qadmin.backends.redis.enqueue import due_payload
from qadmin.backends.redis.entries import failure_entry
from qadmin.backends.redis.json_text import without
from qadmin.backends.redis.outcomes import STATUS_TTL
from qadmin.backends.redis.payloads import read_payload
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.records import Rec
from qadmin.backends.redis.server import Server, Step
from qadmin.backends.redis.steps import status_steps
from qadmin.job import JobId, JobState

SCHEDULED = frozenset({JobState.SCHEDULED})


class Lifecycle:
    """run_now and kill, over `changes`' resolution of ids and its guarded units."""

    def __init__(self, server: Server, changes: Changes) -> None:
        self.server = server
        self.keys = server.keys
        self.changes = changes

    def _leave_delayed(self, rec: Rec) -> list[Step]:
        """The item removed by its exact bytes (the guard), with its `timestamps:` member, and its
        list with its zset member once empty."""
        ts = rec.extra["ts"]
        return [
            ("LREM", [rec.key], [1, rec.raw]),
            ("SREM", [self.keys.timestamps(rec.raw)], [self.keys.stamp_member(ts)]),
            ("DROPEMPTY", [rec.key, self.keys.schedule], [ts]),
        ]

    def run_now(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        def steps(rec: Rec) -> list[Any] | None:
            target = due_payload(rec.raw) if rec.kind is Place.DELAYED else None
            if target is None:
                return None
            queue, payload = target
            guard, *rest = self._leave_delayed(rec)
            return [guard, ("RPUSH", [self.keys.queue(queue)], [payload]), ("SADD", [self.keys.queues], [queue]), *rest]

        recs = self.changes._resolve(ids, SCHEDULED, now)
        with self.server.wrap():
            return self.changes._apply_units(recs, steps, SCHEDULED, now)

    def kill(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        filer = f"{socket.gethostname()}-qadmin:{os.getpid()}"

        def steps(rec: Rec) -> list[Any] | None:
            target = due_payload(rec.raw) if rec.kind is Place.DELAYED else None
            fields = read_payload(rec.raw).job_fields()
            if target is None or fields["attempts"] < 1:  # never ran: not waiting for a retry
                return None
            queue, payload = target
            # the payload as a worker's last failure files it: attempts kept, last error in the entry
            kept = without(payload.decode("utf-8"), ("last_error",))
            entry = failure_entry(kept, fields["last_error"] or "", f"{filer}:{queue}", queue, now)
            guard, *rest = self._leave_delayed(rec)
            moves: list[Any] = [guard, ("RPUSH", [self.keys.failed], [entry]), *rest]
            unique = rec.job.meta.get("unique")
            if unique is not None:
                moves.append(("HDELEQ", [self.keys.unique], [unique, str(rec.job.id)]))
            return [*moves, *status_steps(self.server, rec.job.meta, 3, now, STATUS_TTL)]

        recs = self.changes._resolve(ids, SCHEDULED, now)
        with self.server.wrap():
            return self.changes._apply_units(recs, steps, SCHEDULED, now)
