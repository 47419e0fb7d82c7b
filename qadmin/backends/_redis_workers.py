"""Workers, pauses and the audit log of the Redis backend.

A qadmin worker registers twice: in qadmin's own `NS qadmin:workers` hash (its heartbeat and
counters) and as a Resque worker (`workers`, `worker:ID:started`, `workers:heartbeat`) under an id
whose host part ends in `-qadmin`, which Ruby and PHP pruners leave alone (docs/compatibility.md §8.7).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from qadmin.backends import _redis_scan as scan
from qadmin.backends._redis_json import dumps, iso_offset, parse_time, ruby_to_s
from qadmin.backends._redis_lua import Batch
from qadmin.backends._redis_records import Rec, truthy
from qadmin.backends.owners import parse_owner
from qadmin.errors import QadminError
from qadmin.job import AuditEntry, JobId, WorkerInfo, iso, utcnow

if TYPE_CHECKING:
    from qadmin.backends.redis import RedisBackend

#: audit records kept
AUDIT_CAP = 10_000


class WorkersMixin:
    # --- workers ------------------------------------------------------------------------------
    def register_worker(self: RedisBackend, info: WorkerInfo) -> None:
        # a distinct host part keeps Ruby and PHP pruners off qadmin workers (rule 16)
        rid = f"{info.host}-qadmin:{info.pid}:{','.join(info.queues)}"
        started = info.started_at or utcnow()
        record = {
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
        self._winfo[info.name] = record
        self._rids[info.name] = rid
        with self._wrap():
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self.keys.qworkers, info.name, dumps(record))
            pipe.sadd(self.keys.workers, rid)
            pipe.set(self.keys.started(rid), ruby_to_s(started))
            pipe.hset(self.keys.heartbeat, rid, iso_offset(info.heartbeat_at or started))
            done = pipe.execute(raise_on_error=False)
        # a key of the wrong type (poison) in Resque's registry does not keep the worker from working;
        # in qadmin's own, it is moved aside and the registration made again
        if isinstance(done[0], Exception):
            if not (str(done[0]).startswith("WRONGTYPE") and self._repair_private()):
                with self._wrap():
                    raise done[0]
            with self._wrap():
                self.client.hset(self.keys.qworkers, info.name, dumps(record))

    def heartbeat(
        self: RedisBackend,
        name: str,
        now: datetime,
        current_job: JobId | None,
        job_started_at: datetime | None,
        processed: int,
        failed: int,
    ) -> None:
        self._write_deferred(name)  # a success waits for the next call at most until then
        record = self._winfo.get(name)
        if record is None:
            with self._wrap():
                value = self.client.hget(self.keys.qworkers, name)
            if value is None:
                return
            record = json.loads(value)
        record.update(
            heartbeat_at=iso(now),
            current_job=None if current_job is None else str(current_job),
            job_started_at=iso(job_started_at),
            processed=processed,
            failed=failed,
        )
        steps: list[tuple[str, list[Any], list[Any]]] = [
            ("HEXISTS", [self.keys.qworkers], [name]),
            ("HSET", [self.keys.qworkers], [name, dumps(record)]),
        ]
        if record.get("rid"):
            steps.append(("HSET", [self.keys.heartbeat], [record["rid"], iso_offset(now)]))
        batch = Batch()
        batch.unit(*steps)  # a beat racing with unregister must not bring the worker back
        self._run(batch)

    def unregister_worker(self: RedisBackend, name: str) -> None:
        self._write_deferred(name)
        # like delayed_job's ClearLocks, a stopping worker gives back what it still holds
        view = self._view(utcnow())
        with self._wrap():  # a worker stopping while Redis is down logs a warning, it does not crash
            mine = [r for r in view.locked_recs() if r.kind == "locked" and r.job.locked_by == name]
        rid = self._rid(name)
        batch = Batch()
        for rec in mine:
            batch.unit(*self._give_back(rec))
        steps: list[tuple[str, list[Any], list[Any]]] = [("HDEL", [self.keys.qworkers], [name])]
        if rid:
            steps += self._forget_resque_worker(rid)
        batch.unit(("NOP", [], []), *steps)
        self._run(batch)
        self._winfo.pop(name, None)
        self._rids.pop(name, None)

    def _forget_resque_worker(self: RedisBackend, rid: str) -> list[tuple[str, list[Any], list[Any]]]:
        """Resque's unregister (docs/compatibility.md §1.7), without the failure entry: the job went back."""
        return [
            ("SREM", [self.keys.workers], [rid]),
            ("DEL", [self.keys.worker(rid)], []),
            ("DEL", [self.keys.started(rid)], []),
            ("HDEL", [self.keys.heartbeat], [rid]),
            ("DEL", [self.keys.stat("processed", rid)], []),
            ("DEL", [self.keys.stat("failed", rid)], []),
        ]

    def _give_back(self: RedisBackend, rec: Rec, prune: bool = False) -> list[tuple[str, list[Any], list[Any]]]:
        """Steps that put a held job back at the head of its queue (guard first)."""
        queue = rec.job.queue or ""
        back = [("LPUSH", [self.keys.queue(queue)], [rec.payload]), ("SADD", [self.keys.queues], [queue])]
        if rec.kind == "held":
            rid = rec.extra["rid"]
            steps = [("DELEQ", [rec.key], [rec.raw]), *back]
            if prune:
                steps += self._forget_resque_worker(rid)
            return steps
        steps = [("ZREM", [self.keys.locked], [rec.raw]), *back]
        if prune:
            owner = rec.job.locked_by or ""
            steps.append(("HDEL", [self.keys.qworkers], [owner]))
            if rec.extra.get("rid"):
                steps += self._forget_resque_worker(rec.extra["rid"])
        return steps

    def workers(self: RedisBackend, now: datetime) -> list[WorkerInfo]:
        view = self._view(now)
        out: list[WorkerInfo] = []
        with self._wrap():
            qworkers = view.qworkers()
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
                        stale=view.owner_dead(name),
                    )
                )
            foreign = view.foreign_rids()
            held = {r.extra["rid"]: r for r in view.locked_recs() if r.kind == "held"}
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
            host, pid = scan.split_rid(rid)
            rec = held.get(rid)
            beat_at = parse_time(beat)
            out.append(
                WorkerInfo(
                    name=rid,
                    host=host or "",
                    pid=pid or 0,
                    queues=scan.rid_queues(rid),
                    started_at=parse_time(started),
                    heartbeat_at=beat_at,
                    current_job=rec.job.id if rec else None,
                    job_started_at=rec.job.locked_at if rec else None,
                    processed=_int(processed),
                    failed=_int(failed),
                    stale=view.resque_dead(rid, beat_at),
                )
            )
        # holders of qadmin locks that never registered show as workers too
        known = set(qworkers)
        for rec in view.locked_recs():
            owner = rec.job.locked_by or ""
            if rec.kind != "locked" or owner in known:
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

    # --- pauses (resque-pause's `pause:queue:NAME`, Resque's `pause-all-workers`) -------------
    def is_paused(self: RedisBackend, queue: str) -> bool:
        paused_all, paused = self._paused_flags([queue])
        return paused_all or queue in paused

    def pause(self: RedisBackend, queue: str, now: datetime) -> bool:
        key = self.keys.pause_all if queue == "*" else self.keys.pause(queue)
        with self._wrap():
            if queue == "*":
                if truthy(self.client.get(key)):
                    return False
                return bool(self.client.set(key, "true"))
            pipe = self.client.pipeline(transaction=True)
            pipe.set(key, "true", nx=True)
            pipe.sadd(self.keys.paused, queue)
            return bool(pipe.execute()[0])

    def resume(self: RedisBackend, queue: str) -> bool:
        key = self.keys.pause_all if queue == "*" else self.keys.pause(queue)
        with self._wrap():
            if queue == "*":
                was = truthy(self.client.get(key))
                self.client.delete(key)
                return was
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(key)
            pipe.srem(self.keys.paused, queue)
            return bool(pipe.execute()[0])

    def paused(self: RedisBackend, view: scan.View | None = None) -> list[str]:
        """Paused queues: those with a `pause:queue:NAME` key among the known queues and the ones
        qadmin paused (no keyspace SCAN); `*` when `pause-all-workers` is set."""
        view = view or self._view(utcnow())
        with self._wrap():
            known = set(view.known_queues()) | {
                n.decode("utf-8", "replace")
                for n in view.read(self.keys.paused, "set", lambda: self.client.smembers(self.keys.paused), ())
            }
        names = sorted(known)
        paused_all, paused = self._paused_flags(names)
        return sorted(paused | ({"*"} if paused_all else set()))

    # --- audit ----------------------------------------------------------------------------------
    def record_audit(self: RedisBackend, entry: AuditEntry, job_ids: Sequence[JobId]) -> None:
        try:
            self._record_audit(entry, job_ids)
        except QadminError as exc:
            if not ("WRONGTYPE" in str(exc) or "not an integer" in str(exc)) or not self._repair_private():
                raise
            self._record_audit(entry, job_ids)

    def _record_audit(self: RedisBackend, entry: AuditEntry, job_ids: Sequence[JobId]) -> None:
        with self._wrap():
            entry_id = int(self.client.incr(self.keys.audit_seq))
            record = dumps(
                {
                    "id": entry_id,
                    "at": iso(entry.at),
                    "actor": entry.actor,
                    "face": entry.face,
                    "verb": entry.verb,
                    "selection": entry.selection,
                    "matched": entry.matched,
                    "changed": entry.changed,
                    "skipped": entry.skipped,
                    "dry_run": entry.dry_run,
                }
            )
            jobs_key = self.keys.audit_jobs(entry_id)
            if self.client.type(jobs_key) not in (b"none", b"set"):  # poison under qadmin's own name
                self._move_aside(jobs_key, "set")
            pipe = self.client.pipeline(transaction=False)
            pipe.lpush(self.keys.audit, record)
            ids = [str(i) for i in job_ids]
            for start in range(0, len(ids), 5000):
                pipe.sadd(self.keys.audit_jobs(entry_id), *ids[start : start + 5000])
            pipe.execute()
            if self.client.llen(self.keys.audit) > AUDIT_CAP:
                old = self.client.lrange(self.keys.audit, AUDIT_CAP, -1)
                pipe = self.client.pipeline(transaction=False)
                for raw in old:
                    try:
                        pipe.delete(self.keys.audit_jobs(json.loads(raw)["id"]))
                    except (ValueError, KeyError, TypeError):
                        pass
                pipe.ltrim(self.keys.audit, 0, AUDIT_CAP - 1)
                pipe.execute()

    def audit(self: RedisBackend, limit: int = 100, job_id: JobId | None = None) -> list[AuditEntry]:
        out: list[AuditEntry] = []
        with self._wrap():
            start = 0
            view = self._view(utcnow())
            while len(out) < limit and start < AUDIT_CAP:
                raws = view.read(
                    self.keys.audit, "list", lambda: self.client.lrange(self.keys.audit, start, start + 199), []
                )
                if not raws:
                    break
                start += len(raws)
                entries = [_audit_entry(r) for r in raws]
                entries = [e for e in entries if e is not None]
                if job_id is not None:
                    pipe = self.client.pipeline(transaction=False)
                    for e in entries:
                        pipe.sismember(self.keys.audit_jobs(e.id), str(job_id))  # type: ignore[arg-type]
                    # a set of the wrong type (poison) names no job
                    entries = [
                        e for e, hit in zip(entries, pipe.execute(raise_on_error=False)) if hit is True or hit == 1
                    ]
                out.extend(entries)
        return out[:limit]


def _int(value: Any) -> int:
    """A count or pid as stored; one that is no integer reads as 0."""
    try:
        return int(value or 0)
    except (ValueError, TypeError, OverflowError):
        return 0


def _audit_entry(raw: bytes) -> AuditEntry | None:
    try:
        r = json.loads(raw)
        return AuditEntry(
            id=r["id"],
            at=parse_time(r["at"]) or datetime.now(UTC),
            actor=r["actor"],
            face=r["face"],
            verb=r["verb"],
            selection=r.get("selection") or {},
            matched=r["matched"],
            changed=r["changed"],
            skipped=r["skipped"],
            dry_run=bool(r.get("dry_run")),
        )
    except (ValueError, KeyError, TypeError):
        return None
