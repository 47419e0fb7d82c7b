"""The audit log on Redis: one JSON record per operator action (`NS qadmin:audit`), and the ids
it touched in a set per record."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from qadmin.backends.redis.ids import make_id, split_ids
from qadmin.backends.redis.json_text import dumps, parse_time
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.server import Server
from qadmin.errors import QadminError, UsageError
from qadmin.job import AuditEntry, JobId, iso, utcnow

#: audit records kept
AUDIT_CAP = 10_000


class Audit:
    """Recording and reading the audit log."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.keys = server.keys
        self.client = server.client

    def record(self, entry: AuditEntry, job_ids: Sequence[JobId]) -> None:
        try:
            self._record(entry, job_ids)
        except QadminError as exc:
            if not ("WRONGTYPE" in str(exc) or "not an integer" in str(exc)) or not self.server.repair_private():
                raise
            self._record(entry, job_ids)

    def _record(self, entry: AuditEntry, job_ids: Sequence[JobId]) -> None:
        with self.server.wrap():
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
                self.server.move_aside(jobs_key, "set")
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

    def read(self, limit: int = 100, job_id: JobId | None = None) -> list[AuditEntry]:
        out: list[AuditEntry] = []
        with self.server.wrap():
            start = 0
            reader = Reader(self.server, utcnow())
            while len(out) < limit and start < AUDIT_CAP:
                raws = reader.read(
                    self.keys.audit,
                    "list",
                    functools.partial(self.client.lrange, self.keys.audit, start, start + 199),
                    [],
                )
                if not raws:
                    break
                start += len(raws)
                entries = [e for e in map(_audit_entry, raws) if e is not None]
                if job_id is not None:
                    names = _names(job_id)
                    pipe = self.client.pipeline(transaction=False)
                    for e in entries:
                        for name in names:
                            pipe.sismember(self.keys.audit_jobs(e.id or 0), name)
                    hits = pipe.execute(raise_on_error=False)
                    # a set of the wrong type (poison) names no job
                    entries = [
                        e
                        for i, e in enumerate(entries)
                        if any(h is True or h == 1 for h in hits[i * len(names) : (i + 1) * len(names)])
                    ]
                out.extend(entries)
        return out[:limit]


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


def _names(job_id: JobId) -> list[str]:
    """The ids an entry about this job may name: its own, and for a finished record (`@z`) its
    job's plain id too, which the actions taken while the job ran were recorded against."""
    names = [str(job_id)]
    try:
        parts = split_ids(job_id)[0]
    except UsageError:
        return names
    if parts.where is not None and parts.where.startswith("z") and parts.n == 1:
        names.append(make_id(parts.queue, parts.token))
    return names
