"""What the thread workers tell the screens. Every backend answer arrives as one of these.

Workers run ops calls off the event loop and post one message per answer (`post_message` is
thread-safe); screens update their widgets only in the handlers, on the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from qadmin.job import AuditEntry, Job, JobId, WorkerInfo
from qadmin.model import Attempt, ErrorGroup, Page, Stats
from qadmin.ops import BulkResult, Ops, Preview


@dataclass
class StatsLoaded(Message):
    stats: Stats


@dataclass
class JobsLoaded(Message):
    #: which request this answers; answers to an older filter or sort are dropped
    token: int
    page: Page
    #: True when this page extends the rows already shown (lazy paging)
    append: bool


@dataclass
class CountLoaded(Message):
    token: int
    count: int
    queues: list[str]
    paused: list[str]


@dataclass
class NamesLoaded(Message):
    """The queue and class names the backend knows, for the filter and dequeue boxes."""

    queues: list[str]
    classes: list[str]


@dataclass
class JobLoaded(Message):
    job: Job
    audit: list[AuditEntry]
    attempts: list[Attempt] = field(default_factory=list)


@dataclass
class JobGone(Message):
    """The job no longer exists (finished, deleted, or dequeued meanwhile), or its id names
    none (`reason` says why: a worker's record may hold anything)."""

    job_id: JobId
    reason: str | None = None


@dataclass
class ErrorGroupsLoaded(Message):
    groups: list[ErrorGroup]


@dataclass
class WorkersLoaded(Message):
    workers: list[WorkerInfo]


@dataclass
class AuditLoaded(Message):
    entries: list[AuditEntry]


@dataclass
class LoadFinished(Message):
    """A refresh ended, well or not: the screen may start the next one."""

    token: int
    ok: bool


@dataclass
class OpFailed(Message):
    """An ops call raised. `action` is False for refreshes (the status line shows those)."""

    what: str
    error: BaseException
    action: bool = False


@dataclass
class PreviewReady(Message):
    preview: Preview
    label: str
    #: called with the BulkResult (or None) once the operator closes the report
    on_done: Callable[[BulkResult | None], None] | None = None
    #: of an unlock's jobs, how many a worker that looks alive holds (they may run twice)
    alive: int = 0


@dataclass
class BulkProgress(Message):
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        # a flood of progress ticks collapses into the latest one
        return isinstance(message, BulkProgress)


@dataclass
class BulkFinished(Message):
    result: BulkResult


@dataclass
class PauseState(Message):
    queue: str
    paused: bool


@dataclass
class QueueToggled(Message):
    queue: str
    paused: bool
    changed: bool


@dataclass
class BackendOpened(Message):
    name: str
    ops: Ops
    label: str = ""


@dataclass
class Notice(Message):
    """A line for the operator (action outcomes)."""

    text: str
    severity: str = "information"
    extra: dict[str, Any] = field(default_factory=dict)
