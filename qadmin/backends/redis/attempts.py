"""Attempt history on Redis: a hash per job (`qadmin:attempts:QUEUE:TOKEN`) of its runs that did
not succeed, field `n` the runs recorded and field N the Nth run's JSON. A run is written by a
`HISTORY` step (`lua/apply.lua`) in the unit of the outcome it goes with, which also drops the
run `ATTEMPTS_KEPT` before it and renews the hash's expiry; prune deletes the hashes of the jobs it
removes. Equal Resque payloads (twins) share their token, and so one history."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from qadmin.backends.base import BackendOptions
from qadmin.backends.history import ATTEMPTS_KEPT, kept_error, split_error
from qadmin.backends.redis.ids import make_id, split_ids
from qadmin.backends.redis.json_text import dumps, parse_time
from qadmin.backends.redis.keys import Keys
from qadmin.backends.redis.server import Server, Step
from qadmin.job import JobId, iso
from qadmin.model import Attempt, Outcome

#: how long a history outlives its last run when failed jobs are kept for ever (no retention)
KEPT_FAILED_FOR_EVER = 365 * 86400.0


def history_key(keys: Keys, job_id: JobId) -> str:
    """The history of the job `job_id`, under its plain `QUEUE:TOKEN` (a scheduled, failed or
    finished id names the same job)."""
    parts = split_ids(job_id)[0]
    return keys.attempts(make_id(parts.queue, parts.token))


def history_step(
    keys: Keys,
    options: BackendOptions,
    job_id: JobId,
    outcome: Outcome,
    started_at: datetime | None,
    finished_at: datetime | None,
    worker: str | None,
    error: str | None,
) -> Step:
    """The step recording one run (add it to the outcome's unit, after its guard)."""
    entry = dumps(
        {
            "outcome": outcome.value,
            "started_at": iso(started_at),
            "finished_at": iso(finished_at),
            "worker": worker,
            "error": kept_error(error),
        }
    )
    # kept while the job may be (a failed job for its retention, then its finished record for its),
    # renewed by every run: finished records also leave by their retention as workers write new
    # ones, which no prune sees, and a history must not outlive them for ever
    failed = options.failed_retention if options.failed_retention is not None else KEPT_FAILED_FOR_EVER
    ttl = int(failed + options.finished_retention) + 86400
    return ("HISTORY", [history_key(keys, job_id)], [ATTEMPTS_KEPT, ttl, entry])


class AttemptLog:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.keys = server.keys

    def of(self, job_id: JobId) -> tuple[list[Attempt], int]:
        """The runs kept of a job, oldest first, and how many were recorded in all."""
        key = history_key(self.keys, job_id)
        with self.server.wrap():
            if self.server.client.type(key) not in (b"hash", "hash"):  # none, or poison: no history
                return [], 0
            fields: dict[Any, Any] = self.server.client.hgetall(key)
        total = 0
        runs: list[tuple[int, Any]] = []
        for name, raw in fields.items():
            label = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            if label == "n":
                total = int(raw) if str(raw, "ascii", "replace").isdigit() else 0
            elif label.isdigit():
                runs.append((int(label), raw))
        return [a for a in (_attempt(n, raw) for n, raw in sorted(runs)) if a is not None], total

    def forget(self, job_ids: list[JobId]) -> None:
        """Delete the histories of these jobs (pruned)."""
        if not job_ids:
            return
        with self.server.wrap():
            self.server.client.delete(*{history_key(self.keys, i) for i in job_ids})


def _attempt(number: int, raw: bytes) -> Attempt | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(entry, dict):
        return None
    try:
        outcome = Outcome(str(entry.get("outcome")))
    except ValueError:  # written by a later qadmin
        outcome = Outcome.FAILED
    error, backtrace = split_error(entry.get("error") if isinstance(entry.get("error"), str) else None)
    worker = entry.get("worker")
    return Attempt(
        number=number,
        outcome=outcome,
        started_at=parse_time(entry.get("started_at")),
        finished_at=parse_time(entry.get("finished_at")),
        worker=worker if isinstance(worker, str) else None,
        error=error,
        backtrace=backtrace,
    )
