"""Workers on Redis: registering, heartbeats, unregistering, and the list of every worker.

A qadmin worker registers twice: in qadmin's own `NS qadmin:workers` hash (its heartbeat and
counters) and as a Resque worker (`workers`, `worker:ID:started`, `workers:heartbeat`) under an id
whose host part ends in `-qadmin`, which Ruby and PHP pruners leave alone (docs/compatibility.md §8.7).
Ruby and PHP workers are listed from Resque's registry, and holders of qadmin locks that never
registered as workers too.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from qadmin.backends.owners import parse_owner
from qadmin.backends.redis.json_text import dumps, iso_offset, parse_time, ruby_to_s
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.reader import rid_queues, split_rid
from qadmin.backends.redis.scripts import Batch
from qadmin.backends.redis.server import Server, Step
from qadmin.backends.redis.steps import forget_resque_worker, give_back
from qadmin.backends.redis.view import View
from qadmin.job import JobId, WorkerInfo, iso, utcnow


class Workers:
    """Worker registrations. Holds nothing between calls: a session keeps its worker's record."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.keys = server.keys
        self.client = server.client

    def register(self, info: WorkerInfo) -> dict[str, Any]:
        """Register a worker; returns the record written (its heartbeats update it)."""
        # a distinct host part keeps Ruby and PHP pruners off qadmin workers (rule 16)
        rid = f"{info.host}-qadmin:{info.pid}:{','.join(info.queues)}"
        started = info.started_at or utcnow()
        record: dict[str, Any] = {
            "host": info.host,
            "pid": info.pid,
            "queues": list(info.queues),
            "rid": rid,
            "started_at": iso(started),
            "heartbeat_at": iso(info.heartbeat_at or started),
            "current_job": None,
            "job_started_at": None,
            "processed": 0,
            "failed": 0,
        }
        with self.server.wrap():
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self.keys.qworkers, info.name, dumps(record))
            pipe.sadd(self.keys.workers, rid)
            pipe.set(self.keys.started(rid), ruby_to_s(started))
            pipe.hset(self.keys.heartbeat, rid, iso_offset(info.heartbeat_at or started))
            done = pipe.execute(raise_on_error=False)
        # a key of the wrong type (poison) in Resque's registry does not keep the worker from working;
        # in qadmin's own, it is moved aside and the registration made again
        if isinstance(done[0], Exception):
            if not (str(done[0]).startswith("WRONGTYPE") and self.server.repair_private()):
                with self.server.wrap():
                    raise done[0]
            with self.server.wrap():
                self.client.hset(self.keys.qworkers, info.name, dumps(record))
        return record

    def heartbeat(
        self,
        name: str,
        record: dict[str, Any] | None,
        now: datetime,
        current_job: JobId | None,
        job_started_at: datetime | None,
        processed: int,
        failed: int,
    ) -> None:
        """Write a worker's heartbeat into its `record` (read from Redis when None)."""
        if record is None:
            with self.server.wrap():
                value = self.client.hget(self.keys.qworkers, name)
            if value is None:
                return
            record = json.loads(value)
            if not isinstance(record, dict):
                return
        record.update(
            heartbeat_at=iso(now),
            current_job=None if current_job is None else str(current_job),
            job_started_at=iso(job_started_at),
            processed=processed,
            failed=failed,
        )
        steps: list[Step] = [
            ("HEXISTS", [self.keys.qworkers], [name]),
            ("HSET", [self.keys.qworkers], [name, dumps(record)]),
        ]
        if record.get("rid"):
            steps.append(("HSET", [self.keys.heartbeat], [record["rid"], iso_offset(now)]))
        self.server.run_unit(*steps)  # a beat racing with unregister must not bring the worker back

    def unregister(self, name: str, rid: str | None) -> None:
        """Forget a worker (`rid`: its Resque id); like delayed_job's ClearLocks, what it still
        holds goes back to its queues."""
        view = View(self.server, utcnow())
        with self.server.wrap():  # a worker stopping while Redis is down logs a warning, it does not crash
            mine = [r for r in view.twins.locked_recs() if r.kind is Place.LOCKED and r.job.locked_by == name]
        batch = Batch()
        for rec in mine:
            batch.unit(*give_back(self.keys, rec))
        steps: list[Step] = [("HDEL", [self.keys.qworkers], [name])]
        if rid:
            steps += forget_resque_worker(self.keys, rid)
        batch.unit(("NOP", [], []), *steps)
        self.server.run(batch)

    def listed(self, now: datetime) -> list[WorkerInfo]:
        """Every worker: qadmin's, Ruby and PHP ones, and holders of locks that never registered."""
        view = View(self.server, now)
        out: list[WorkerInfo] = []
        with self.server.wrap():
            qworkers = view.reader.qworkers()
            for name, info in sorted(qworkers.items()):
                current = info.get("current_job")
                out.append(
                    WorkerInfo(
                        name=name,
                        host=str(info.get("host", "")),
                        pid=_int(info.get("pid")),
                        queues=list(info.get("queues") or []),
                        started_at=parse_time(info.get("started_at")),
                        heartbeat_at=parse_time(info.get("heartbeat_at")),
                        current_job=current,
                        job_started_at=parse_time(info.get("job_started_at")),
                        processed=_int(info.get("processed")),
                        failed=_int(info.get("failed")),
                        stale=view.reader.owner_dead(name),
                    )
                )
            foreign = view.reader.foreign_rids()
            held = {r.extra["rid"]: r for r in view.twins.locked_recs() if r.kind is Place.HELD}
            pipe = self.client.pipeline(transaction=False)
            for rid in foreign:
                pipe.get(self.keys.started(rid))
                pipe.hget(self.keys.heartbeat, rid)
                pipe.get(self.keys.stat("processed", rid))
                pipe.get(self.keys.stat("failed", rid))
            # a value of the wrong type (poison) reads as missing
            values = [None if isinstance(v, Exception) else v for v in pipe.execute(raise_on_error=False)]
        for n, rid in enumerate(foreign):
            started, beat, processed, failed = values[4 * n : 4 * n + 4]
            host, pid = split_rid(rid)
            rec = held.get(rid)
            beat_at = parse_time(beat)
            out.append(
                WorkerInfo(
                    name=rid,
                    host=host or "",
                    pid=pid or 0,
                    queues=rid_queues(rid),
                    started_at=parse_time(started),
                    heartbeat_at=beat_at,
                    current_job=rec.job.id if rec else None,
                    job_started_at=rec.job.locked_at if rec else None,
                    processed=_int(processed),
                    failed=_int(failed),
                    stale=view.reader.resque_dead(rid, beat_at),
                )
            )
        # holders of qadmin locks that never registered show as workers too
        known = set(qworkers)
        for rec in view.twins.locked_recs():
            owner = rec.job.locked_by or ""
            if rec.kind is not Place.LOCKED or owner in known:
                continue
            known.add(owner)
            host, pid = parse_owner(owner)
            out.append(
                WorkerInfo(
                    name=owner,
                    host=host or "",
                    pid=pid or 0,
                    queues=[],
                    started_at=None,
                    heartbeat_at=None,
                    current_job=rec.job.id,
                    job_started_at=rec.job.locked_at,
                    stale=rec.job.stale,
                )
            )
        return out


def _int(value: Any) -> int:
    """A count or pid as stored; one that is no integer reads as 0."""
    try:
        return int(value or 0)
    except (ValueError, TypeError, OverflowError):
        return 0
