"""Pruning on Redis: old entries of Resque's `failed` list, qadmin's finished records and dead
qadmin workers' registrations, and the marker that lets one worker at a time prune.

The `failed` list is oldest first (Resque appends): it is walked from its head and the walk stops
at the first entry too young for any cutoff. Each removal is a guarded unit of `lua/apply.lua`
holding the exact bytes read, so an entry that another client retried (resque-web marks it
`retried_at`) or removed meanwhile is left alone. Resque's own workers are never touched: Resque
prunes those itself when a worker starts (docs/compatibility.md §1.7)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from qadmin.backends.redis.attempts import AttemptLog
from qadmin.backends.redis.audit import Audit
from qadmin.backends.redis.json_text import epoch, parse_time, strict_loads
from qadmin.backends.redis.records import failed_rec, finished_rec
from qadmin.backends.redis.scripts import UNITS_PER_CALL, Batch
from qadmin.backends.redis.server import Server, Step, as_bytes
from qadmin.backends.redis.steps import forget_resque_worker
from qadmin.job import JobId
from qadmin.model import PRUNE_IDS_SHOWN, PruneReport

#: entries of the `failed` list read per LRANGE, finished records removed per ZREM
PRUNE_WINDOW = UNITS_PER_CALL


class RedisPrune:
    def __init__(self, server: Server, audit: Audit, attempts: AttemptLog) -> None:
        self.server = server
        self.keys = server.keys
        self.client = server.client
        self.audit = audit
        #: the histories of the jobs pruned go with them
        self.attempts = attempts

    def prune(
        self,
        now: datetime,
        *,
        failed_before: datetime | None,
        finished_before: datetime | None,
        workers_before: datetime | None,
        dry_run: bool = False,
    ) -> PruneReport:
        report = PruneReport(failed_before, finished_before, workers_before, dry_run=dry_run)
        if failed_before is not None or finished_before is not None:
            self._failed_list(report)
        if finished_before is not None:
            self._finished(report, finished_before)
        if workers_before is not None:
            self._workers(report, workers_before)
        return report

    def _holds(self, key: str, kind: bytes) -> bool:
        """Whether `key` holds a `kind` (or nothing): a value of another type (poison in a shared
        namespace) is left as it is, and nothing in it pruned."""
        with self.server.wrap():
            return as_bytes(self.client.type(key)) in (kind, b"none")

    def _failed_list(self, report: PruneReport) -> None:
        """Failure entries older than `failed_before`, and entries a retry marked `retried_at`
        (history: finished) older than `finished_before`."""
        key = self.keys.failed
        if not self._holds(key, b"list"):
            return
        failed_before, finished_before = report.failed_before, report.finished_before
        # no entry at or after the latest cutoff can be pruned, nor (oldest first) any behind it
        limit = max(c for c in (failed_before, finished_before) if c is not None)
        at = 0
        while True:
            with self.server.wrap():
                # the client decodes no replies (`decode_responses=False`): bytes only
                window = [r for r in self.client.lrange(key, at, at + PRUNE_WINDOW - 1) if isinstance(r, bytes)]
            batch = Batch()
            planned: list[tuple[bytes, int, bool]] = []
            done = False
            for offset, raw in enumerate(window):
                failed_at, retried_at = _ages(raw)
                if failed_at is None:  # no time to judge by: kept
                    continue
                if failed_at >= limit:
                    done = True
                    break
                if retried_at is not None:
                    if finished_before is None or retried_at >= finished_before:
                        continue
                elif failed_before is None or failed_at >= failed_before:
                    continue
                planned.append((raw, at + offset, retried_at is not None))
                if not report.dry_run:
                    batch.unit(("TOMB", [key], [at + offset, raw]))
            results = [True] * len(planned) if report.dry_run or not planned else self.server.run(batch)
            removed = 0
            gone: list[JobId] = []
            for (raw, index, finished), ok in zip(planned, results):
                if not ok:  # retried, removed or moved by another client since it was read
                    continue
                removed += 1
                if not finished and not report.dry_run:  # a retried entry's job lives on, with its history
                    gone.append(failed_rec(key, raw, index).job.id)
                if finished:
                    report.finished += 1
                elif len(report.failed_ids) < PRUNE_IDS_SHOWN:
                    report.note_failed([_failed_id(key, raw, index)])
                else:
                    report.failed += 1
            self.attempts.forget(gone)
            if done or len(window) < PRUNE_WINDOW:
                return
            at += len(window) - (0 if report.dry_run else removed)

    def _finished(self, report: PruneReport, before: datetime) -> None:
        key = self.keys.finished
        if not self._holds(key, b"zset"):
            return
        cut = f"({epoch(before)}"
        with self.server.wrap():
            if report.dry_run:
                report.finished += int(self.client.zcount(key, "-inf", cut))
                return
            while True:
                members = self.client.zrangebyscore(key, "-inf", cut, start=0, num=PRUNE_WINDOW)
                if not members:
                    return
                # ZREM names each record by its bytes: one a worker just wrote is another member
                report.finished += int(self.client.zrem(key, *members))
                recs = (finished_rec(key, raw) for raw in members if isinstance(raw, bytes))
                self.attempts.forget([rec.job.id for rec in recs if rec is not None])
                if len(members) < PRUNE_WINDOW:
                    return

    def _workers(self, report: PruneReport, before: datetime) -> None:
        """qadmin's own registrations (and the Resque ids they registered as); a worker that
        beats again meanwhile rewrote its record, which the guard then no longer holds."""
        key = self.keys.qworkers
        if not self._holds(key, b"hash"):
            return
        with self.server.wrap():
            records = {
                k: v for k, v in self.client.hgetall(key).items() if isinstance(k, bytes) and isinstance(v, bytes)
            }
        batch = Batch()
        names: list[str] = []
        for name, raw in sorted(records.items()):
            try:
                info = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(info, dict):
                continue
            beat = parse_time(info.get("heartbeat_at")) or parse_time(info.get("started_at"))
            if beat is None or beat >= before:
                continue
            steps: list[Step] = [("HDELEQ", [key], [name, raw])]
            rid = info.get("rid")
            if isinstance(rid, str) and rid:
                steps += forget_resque_worker(self.keys, rid)
            names.append(name.decode("utf-8", "replace"))
            if not report.dry_run:
                batch.unit(*steps)
        results = [True] * len(names) if report.dry_run or not names else self.server.run(batch)
        report.worker_names = [n for n, ok in zip(names, results) if ok]
        report.workers = len(report.worker_names)

    def take_turn(self, now: datetime, every: float) -> bool:
        """Whether this caller prunes now: the one whose SET NX of the marker succeeds; the key
        expires `every` seconds later, when the next prune is due."""
        with self.server.wrap():
            return bool(self.client.set(self.keys.last_prune, int(epoch(now)), nx=True, ex=max(math.ceil(every), 1)))


def _ages(raw: bytes) -> tuple[datetime | None, datetime | None]:
    """A failure entry's `failed_at`, and its `retried_at` when a retry marked it (resque-web
    marks with a time; any other truthy mark counts as its failure time)."""
    try:
        entry: Any = strict_loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, None
    if not isinstance(entry, dict):
        return None, None
    failed_at = parse_time(entry.get("failed_at"))
    mark = entry.get("retried_at")
    retried_at = parse_time(mark) or (failed_at if mark else None)
    return failed_at, retried_at


def _failed_id(key: str, raw: bytes, index: int) -> JobId:
    job_id: JobId = failed_rec(key, raw, index).job.id
    return job_id
