"""Jobs of dead qadmin workers given back by the live ones (`WorkerSession.rescue`) on Redis.

Only qadmin's locked set is looked at, and in it only the locks of registered qadmin workers
whose heartbeat stopped (`owners.heartbeat_stopped`). Jobs held by Ruby or PHP Resque workers
(`worker:ID`) are left to Resque's own prune of dead workers at worker start.

Each job goes back with `unlock`'s guarded steps (`steps.give_back`): its unit is guarded by the
exact bytes of its lock, so a job is given back once however many workers rescue at once, and a
lock renewed (a new `locked_at` in its bytes) or taken by another worker meanwhile is not touched.
The rescued-jobs counter is increased in the same unit. The dead worker's registration is left
as it is: the workers list shows it dead until it is pruned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from qadmin.backends.history import rescue_error
from qadmin.backends.owners import heartbeat_stopped
from qadmin.backends.redis.attempts import history_step
from qadmin.backends.redis.audit import Audit
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.records import Rec
from qadmin.backends.redis.scripts import Batch
from qadmin.backends.redis.server import Server, Step, as_bytes
from qadmin.backends.redis.steps import give_back
from qadmin.backends.redis.view import View
from qadmin.backends.rescue import rescue_entry
from qadmin.job import JobId
from qadmin.model import Outcome


class Rescue:
    def __init__(self, server: Server, audit: Audit) -> None:
        self.server = server
        self.keys = server.keys
        self.audit = audit

    def rescue(self, worker: str, now: datetime) -> dict[str, list[JobId]]:
        timeout = self.server.options.worker_timeout
        # a lock taken after the holder's last beat is as old as that at most: both are judged
        cutoff = now - timedelta(seconds=timeout)
        view = View(self.server, now)
        with self.server.wrap():
            beats = view.reader.heartbeats()
            dead = [
                rec
                for rec in view.twins.locked_recs()
                if rec.kind is Place.LOCKED
                and heartbeat_stopped(rec.job.locked_by, beats, now, timeout)
                and rec.job.locked_at is not None
                and rec.job.locked_at < cutoff
            ]
            if not dead:
                return {}
            working = self._working(dead)
        batch = Batch()
        for rec in dead:
            holder = rec.job.locked_by or ""
            died = beats.get(holder)
            steps: list[Step] = [
                *give_back(self.keys, rec),
                ("INCR", [self.keys.rescued], []),
                history_step(
                    self.keys,
                    self.server.options,
                    rec.job.id,
                    Outcome.RESCUED,
                    rec.job.locked_at,
                    died,
                    holder,
                    rescue_error(holder, died, worker),
                ),
            ]
            rid = rec.extra.get("rid")
            if isinstance(rid, str) and rid in working:  # Resque's view: the dead worker runs nothing now
                steps.append(("DELEQ", [self.keys.worker(rid)], [working[rid]]))
            batch.unit(*steps)
        by_holder: dict[str, list[JobId]] = {}
        for rec, ok in zip(dead, self.server.run(batch), strict=True):
            if ok:
                by_holder.setdefault(rec.job.locked_by or "", []).append(rec.job.id)
        if by_holder:
            ids = [i for ids in by_holder.values() for i in ids]
            self.audit.record(rescue_entry(worker, now, timeout, by_holder, len(dead)), ids)
        return by_holder

    def _working(self, recs: list[Rec]) -> dict[str, bytes]:
        """The dead workers' Resque `worker:ID` values that name one of these jobs."""
        rids = sorted({r for r in (rec.extra.get("rid") for rec in recs) if isinstance(r, str)})
        if not rids:
            return {}
        values = self.server.client.mget([self.keys.worker(rid) for rid in rids])
        payloads = {(rec.extra.get("rid"), rec.payload) for rec in recs}
        out: dict[str, bytes] = {}
        for rid, reply in zip(rids, values, strict=True):
            value = as_bytes(reply)
            if value is None:
                continue
            if any(p is not None and r == rid and value.endswith(b',"payload":' + p + b"}") for r, p in payloads):
                out[rid] = value
        return out
