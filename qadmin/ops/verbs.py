"""The bulk verbs' vocabulary: which states each acts on, what a preview freezes and what applying
it reports."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qadmin.errors import UsageError
from qadmin.filters import JobFilter
from qadmin.job import Job, JobId, JobState

#: the filter that selects every job (the default of the listing verbs)
EVERY_JOB = JobFilter()

#: a progress callback: (done, total)
Progress = Callable[[int, int], None]

#: bulk verbs, and the states each acts on
VERBS: dict[str, frozenset[JobState]] = {
    "retry": frozenset({JobState.FAILED}),
    "delete": frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED, JobState.FAILED, JobState.WAITING}),
    "dequeue": frozenset({JobState.PENDING, JobState.SCHEDULED}),
    "unlock": frozenset({JobState.LOCKED}),
    "run_now": frozenset({JobState.SCHEDULED}),
    "kill": frozenset({JobState.SCHEDULED}),
    "cancel": frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED, JobState.WAITING}),
}

#: why a running job is not cancelled: its worker is not qadmin's
FOREIGN_RUNNING = (
    "is running in a worker qadmin cannot tell to stop (delayed_job, DJJob or Resque): "
    "only a job a qadmin worker runs can be cancelled while it runs"
)

#: verbs that act on only some jobs of their states: the jobs each keeps (kill: a scheduled job
#: that ran before is a retry waiting out its backoff; one that never ran is not)
NARROWER: dict[str, Callable[[Job], bool]] = {"kill": lambda job: job.attempts >= 1}

#: ids per backend call while applying, so progress moves and transactions stay short
APPLY_BATCH = 5000
#: jobs shown in a preview's sample
SAMPLE_SIZE = 10
#: up to this many frozen ids, `alive_holders` reads the jobs themselves; beyond, it counts
ALIVE_READ_LIMIT = 200


@dataclass
class Preview:
    """What a bulk verb would act on: the frozen ids, their count and a sample to show."""

    verb: str
    selection: JobFilter
    ids: list[JobId]
    sample: list[Job]
    created_at: datetime

    @property
    def count(self) -> int:
        return len(self.ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verb": self.verb,
            "filter": self.selection.to_params(),
            "matched": self.count,
            "sample": [j.to_dict() for j in self.sample],
        }


@dataclass
class BulkResult:
    verb: str
    matched: int
    changed: int
    skipped: list[tuple[JobId, str]] = field(default_factory=list)
    dry_run: bool = False
    sample: list[Job] = field(default_factory=list)
    changed_ids: list[JobId] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verb": self.verb,
            "matched": self.matched,
            "changed": self.changed,
            "skipped": len(self.skipped),
            "dry_run": self.dry_run,
        }
        if self.skipped:
            out["skipped_jobs"] = [{"id": i, "reason": r} for i, r in self.skipped[:100]]
        if self.dry_run:
            out["sample"] = [j.to_dict() for j in self.sample]
        return out


def alive_warning(alive: int, count: int) -> str:
    """What every face says before it unlocks jobs whose holders look alive."""
    which = (
        "this job is" if count == 1 else ("all of these jobs are" if alive == count else f"{alive} of these jobs are")
    )
    them = "it" if alive == 1 else "them"
    return (
        f"{which} held by a worker that looks alive (a fresh heartbeat, or a process that still runs): "
        f"unlocking lets another worker take {them} while the first may still be running {them}, "
        f"so {'it' if alive == 1 else 'they'} may then run twice"
    )


def default_actor() -> str:
    """Who the audit log names when a face gives no user: the operating-system account."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid())
    return user


def check_queue_name(queue: str) -> None:
    if not queue or "\x00" in queue:
        raise UsageError("a queue name must be non-empty text without NUL bytes")
