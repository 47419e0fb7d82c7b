"""Counting the Redis store: per-queue counts, stats, queues and error groups.

The failed list and the delayed lists are counted by one Lua script (`lua/count.lua`) in windows,
so a count never moves every entry over the network and never blocks Redis for long; held jobs
are counted from `View.locks`, without building their jobs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from qadmin.backends.error_groups import ExactLines, error_groups
from qadmin.backends.redis.failed_index import FailedIndex
from qadmin.backends.redis.json_text import dumps, epoch, parse_time
from qadmin.backends.redis.pauses import Pauses
from qadmin.backends.redis.payloads import read_payload, schedule_second
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.records import Rec, failed_rec, plainly_decodable
from qadmin.backends.redis.selection import retried_entry, states_and_queues_only, wanted_states
from qadmin.backends.redis.server import Server, as_bytes
from qadmin.backends.redis.view import View
from qadmin.codecs import MAX_DECODE_BYTES
from qadmin.filters import JobFilter
from qadmin.fingerprints import NO_ERROR, fingerprint
from qadmin.job import Job, JobId, JobState, QueueInfo
from qadmin.model import ErrorGroup, Stats

#: failed entries counted per script call
FAILED_WINDOW = 5000
#: delayed timestamps counted per script call
DELAYED_WINDOW = 500


def _empty() -> dict[str, int]:
    return {"pending": 0, "scheduled": 0, "locked": 0, "stale": 0, "failed": 0, "finished": 0}


class Counts:
    """Counts per queue and state, the dashboard's stats, queues and error groups."""

    def __init__(self, server: Server, pauses: Pauses) -> None:
        self.server = server
        self.keys = server.keys
        self.client = server.client
        self.pauses = pauses
        self.failed_index = FailedIndex(server)

    def counts(
        self,
        now: datetime,
        queues: tuple[str, ...] | None = None,
        max_run_time: float | None = None,
        states: frozenset[JobState] = frozenset(JobState),
        reader: Reader | None = None,
    ) -> dict[str, dict[str, int]]:
        """queue -> state -> count, reading only the structures that hold the wanted states."""
        counts: dict[str, dict[str, int]] = {}

        def slot(name: str) -> dict[str, int]:
            return counts.setdefault(name, _empty())

        reader = reader or Reader(self.server, now, max_run_time)
        with self.server.wrap():
            names = list(queues) if queues else reader.queue_names()
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.llen(self.keys.queue(name))
            for name, n in zip(names, pipe.execute(raise_on_error=False)):
                if isinstance(n, Exception):  # a key of the wrong type: one unreadable entry, as listed
                    if not str(n).startswith("WRONGTYPE"):
                        raise n
                    reader.note(self.keys.queue(name), "list")
                    n = 1
                slot(name)["pending"] += int(n)
            wanted = {s.value for s in states}
            stamps = (
                int(reader.read(self.keys.schedule, "sorted set", lambda: self.client.zcard(self.keys.schedule), 0))
                if wanted & {"pending", "scheduled"}
                else 0
            )
            for start in range(0, stamps, DELAYED_WINDOW):
                flat = self.server.call(
                    self.server.scripts.count,
                    [self.keys.schedule],
                    ["delayed", start, start + DELAYED_WINDOW - 1, self.keys.delayed_prefix, epoch(now)],
                )
                for i in range(0, len(flat), 3):
                    name = flat[i].decode("utf-8", "replace")
                    if name.startswith("\0"):  # a delayed list of the wrong type (count.lua)
                        reader.note(name[1:], "list")
                        name = ""
                    c = slot(name)
                    c["pending"] += int(flat[i + 1])
                    c["scheduled"] += int(flat[i + 2])
            failed = reader.length(self.keys.failed, False) if "failed" in wanted else 0
            if self.keys.failed in reader.problems and "failed" in wanted:
                slot("")["failed"] += 1  # the list of the wrong type, listed as one unreadable entry
            indexed = self.failed_index.counts() if failed else None
            if indexed is not None:  # checked against the list in the step that answered
                for name, n in indexed.failed.items():
                    slot(name)["failed"] += n
            # what the index does not hold yet (it is being rebuilt) is counted from the list
            for start in range(indexed.indexed if indexed else 0, failed, FAILED_WINDOW):
                flat = self.server.call(
                    self.server.scripts.count, [self.keys.failed], ["list", start, start + FAILED_WINDOW - 1]
                )
                for i in range(0, len(flat), 3):  # retried entries (flat[i + 2]) are history: no state
                    slot(flat[i].decode("utf-8", "replace"))["failed"] += int(flat[i + 1])
            for lock in reader.locks() if "locked" in wanted else ():
                c = slot(lock.queue or "")
                c["locked"] += 1
                c["stale"] += int(lock.stale)
            history = wanted & {"finished", "cancelled"}
            finished = reader.iter_list(self.keys.finished, None, False, zset=True) if history else ()
            for _i, raw in finished:
                try:
                    record = json.loads(raw)
                    queue = record.get("queue") or ""
                except (ValueError, AttributeError):
                    continue
                # "cancelled" only where there are any: the counts read as before elsewhere
                outcome = "finished" if record.get("cancelled_by") is None else "cancelled"
                c = slot(str(queue))
                c[outcome] = c.get(outcome, 0) + 1
        if queues:
            counts = {q: c for q, c in counts.items() if q in queues}
        return {q: c for q, c in counts.items() if q in names or any(c.values())}

    def stats(self, now: datetime, max_run_time: float | None = None) -> Stats:
        reader = Reader(self.server, now, max_run_time)
        counts = self.counts(now, None, max_run_time, reader=reader)
        with self.server.wrap():
            processed_raw, failed_raw, rescued_raw = self.client.mget(
                [self.keys.processed, self.keys.failed_count, self.keys.rescued]
            )
            processed = reader.number(self.keys.processed, as_bytes(processed_raw))
            failed = reader.number(self.keys.failed_count, as_bytes(failed_raw))
            rescued = reader.number(self.keys.rescued, as_bytes(rescued_raw))
            oldest = min(
                (t for t in self._oldest_pending(now, list(counts), reader).values() if t is not None), default=None
            )
            minute = int(epoch(now)) // 60 * 60
            minutes = [minute - 60 * i for i in range(59, -1, -1)]
            pipe = self.client.pipeline(transaction=False)
            for m in minutes:
                pipe.hmget(self.keys.throughput(m), "processed", "failed")
            throughput = []
            for m, values in zip(minutes, pipe.execute(raise_on_error=False)):
                key = self.keys.throughput(m)
                if isinstance(values, Exception):
                    reader.note(key, "hash")
                    continue
                p, f = (reader.number(key, v) for v in values)
                if p or f:
                    throughput.append((datetime.fromtimestamp(m, UTC), p, f))
        paused = self.pauses.paused(reader)
        with self.server.wrap():
            workers = reader.live_workers()
        for name in paused:
            if name != "*":
                counts.setdefault(name, _empty())
        return Stats(
            queues=dict(sorted(counts.items())),
            processed=processed,
            failed=failed,
            oldest_pending_at=oldest,
            paused=paused,
            workers=workers,
            throughput=throughput,
            unreadable=dict(sorted(reader.problems.items())),
            rescued=rescued,
        )

    def _oldest_pending(
        self, now: datetime, names: list[str], reader: Reader | None = None
    ) -> dict[str, datetime | None]:
        """When the head of each queue was enqueued (php-resque `queue_time`, the `enqueued_at` of payloads older qadmin versions wrote,
        ActiveJob's `enqueued_at`), or since when a due delayed item waits."""
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.lindex(self.keys.queue(name), 0)
        out: dict[str, datetime | None] = {}
        reader = reader or Reader(self.server, now)
        for name, head in zip(names, pipe.execute(raise_on_error=False)):
            readable = head is not None and not isinstance(head, Exception)
            out[name] = read_payload(head).job_fields()["created_at"] if readable else None
        for member, _score in reader.read(
            self.keys.schedule,
            "sorted set",
            lambda: self.client.zrangebyscore(
                self.keys.schedule, "-inf", int(epoch(now)), start=0, num=20, withscores=True
            ),
            [],
        ):
            ts = schedule_second(member)  # the first due second (a member that is none is passed over)
            if ts is not None:
                try:
                    out["(due delayed)"] = datetime.fromtimestamp(ts, UTC)
                except (OverflowError, OSError, ValueError):
                    continue
                break
        return out

    def queues(self, now: datetime) -> list[QueueInfo]:
        reader = Reader(self.server, now)
        counts = self.counts(now, reader=reader)
        paused_all, paused = self.server.paused_flags(list(counts))
        with self.server.wrap():
            oldest = self._oldest_pending(now, list(counts), reader)
        return [
            QueueInfo(
                name=q,
                counts=c,
                paused=paused_all or q in paused,
                oldest_pending_at=oldest.get(q),
                unreadable=reader.problems.get(self.keys.queue(q)),
            )
            for q, c in sorted(counts.items())
        ]

    def error_groups(self, selection: JobFilter, now: datetime, limit: int = 100) -> list[ErrorGroup]:
        selection = selection if selection.states else selection.with_states(JobState.FAILED)
        states = wanted_states(selection)
        lines = ExactLines()
        add = lines.add

        with self.server.wrap():
            view = View(self.server, now)
            # an error group's own groups (`qadmin errors show`) read quickly too: fingerprints by line
            quick = states == {JobState.FAILED} and states_and_queues_only(replace(selection, fingerprint=None))
            wanted = selection.fingerprint
            if quick:
                for i, raw, same in view.twins.iter_failed(None, False):
                    entry = _failure_groupable(raw)
                    if entry is None:  # read as a listing would
                        rec = view.twins.name_failed(failed_rec(self.keys.failed, raw, i), same, lazy=True)
                        job = rec.job
                        if not retried_entry(rec) and job.state in states and selection.matches(job):
                            add(
                                job.error_message,
                                job.queue,
                                job.class_name,
                                job.failed_at,
                                partial(_named_id, view, rec),
                            )
                        continue
                    queue = entry.get("queue") if isinstance(entry.get("queue"), str) else None
                    retried = entry.get("retried_at")
                    if retried or parse_time(retried) is not None:
                        continue  # history of a retried job, in no state (`selection.retried_entry`)
                    if JobState.FAILED not in states or (selection.queues and (queue or "") not in selection.queues):
                        continue
                    key = _error_key(entry)
                    if wanted is not None and fingerprint(key).id != wanted:
                        continue
                    add(
                        key,
                        queue,
                        entry["payload"]["class"],
                        parse_time(entry.get("failed_at")),
                        partial(_failure_id, view, self.keys.failed, raw, i, same),
                    )
            else:
                for _pos, rec in view.walk(replace(selection, ids=()), "id", None):
                    job = rec.job
                    if job.state not in states or not selection.matches(job):
                        continue
                    add(
                        job.error_message,
                        job.queue,
                        job.class_name,
                        job.failed_at,
                        partial(_named_id, view, rec),
                    )
        # folded by fingerprint: one `fingerprint` per distinct line
        return error_groups(lines.lines.values(), limit)


def _named_id(view: View, rec: Rec) -> JobId:
    job: Job = view.twins.named(rec).job
    return job.id


def _failure_id(view: View, failed_key: str, raw: bytes, index: int, same: int) -> JobId:
    """The id of a failure entry as listings name it (read only for an error group's sample)."""
    job: Job = view.twins.name_failed(failed_rec(failed_key, raw, index), same).job
    return job.id


def _failure_groupable(raw: bytes) -> dict[str, Any] | None:
    """A failure entry whose error group, class and time read straight from its JSON (what
    `failed_rec` would make of them), else None."""
    try:
        entry = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(entry, dict):
        return None
    payload = entry.get("payload")
    if not isinstance(payload, dict) or not plainly_decodable(payload) or len(raw) > MAX_DECODE_BYTES:
        return None
    return entry


def _error_key(entry: dict[str, Any]) -> str:
    """`failed_rec(...).job.error_message`, or the placeholder of a failure with none."""
    exception = entry.get("exception") if isinstance(entry.get("exception"), str) else ""
    error = entry.get("error")
    error = "" if error is None else (error if isinstance(error, str) else dumps(error))
    head = f"{exception}: {error}" if exception and error else (exception or error)
    return head.split("\n", 1)[0] or NO_ERROR
