"""The read-side types every face shows: a page of jobs, error groups, statistics.

They belong to the model, not to a backend: the faces get them from the operations layer and
never import `qadmin.backends` (an import-linter contract in pyproject.toml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qadmin.job import Job, JobId, iso

#: how listings may be ordered; each is a keyset order ending in the id
SORTS = ("id", "-id", "priority", "run_at", "-failed_at")


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    #: opaque keyset cursor for the next page, None on the last page
    next_cursor: str | None = None


@dataclass(frozen=True)
class ErrorGroup:
    """Failed jobs sharing an exception class and message (the first line of last_error)."""

    error: str
    count: int
    queues: list[str]
    classes: list[str]
    last_failed_at: datetime | None
    sample_id: JobId | None = None

    @property
    def exception(self) -> str:
        head = self.error.split(":", 1)[0].strip()
        return head if head and " " not in head else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "exception": self.exception,
            "count": self.count,
            "queues": self.queues,
            "classes": self.classes,
            "last_failed_at": iso(self.last_failed_at),
            "sample_id": self.sample_id,
        }


@dataclass(frozen=True)
class Stats:
    #: queue -> state -> count ("stale" is counted inside "locked" and on its own)
    queues: dict[str, dict[str, int]]
    processed: int
    failed: int
    oldest_pending_at: datetime | None
    paused: list[str]
    workers: int
    #: (minute start, processed, failed), oldest first, for the last hour
    throughput: list[tuple[datetime, int, int]] = field(default_factory=list)
    #: stored structures that cannot be read (a Redis key of the wrong type, a counter that is no
    #: number): name -> why. A queue or list of the wrong type counts (and lists) as one
    #: undecodable entry naming it
    unreadable: dict[str, str] = field(default_factory=dict)
    #: jobs of dead qadmin workers given back by live workers (`WorkerSession.rescue`), ever
    rescued: int = 0

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for counts in self.queues.values():
            for state, n in counts.items():
                out[state] = out.get(state, 0) + n
        return out
