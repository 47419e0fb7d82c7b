"""The recurring schedules' verbs (`ops.recurring`): list, save, remove, enable, disable and run
now, each audited like every other change, with a dry run that changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qadmin.backends import Backend
from qadmin.client import Client
from qadmin.errors import ScheduleNotFound
from qadmin.job import AuditEntry, Job, JobId, NewJob
from qadmin.recurring import RecurringEntry, Schedule


def new_job_for(schedule: Schedule) -> NewJob:
    """The job one tick of `schedule` enqueues (the scheduler and "run now" build it alike)."""
    return Client.build(
        schedule.job_class, schedule.args, schedule.kwargs, queue=schedule.queue, priority=schedule.priority
    )


@dataclass(frozen=True)
class RunNow:
    """What "run now" enqueued (`job`), or in a dry run would enqueue (`new`, `job` None)."""

    entry: RecurringEntry
    new: NewJob
    job: Job | None

    @property
    def dry_run(self) -> bool:
        return self.job is None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """The JSON every face gives for a run now (`qadmin recurring run-now --json`, the API)."""
        new = self.new
        return {
            "dry_run": self.dry_run,
            "schedule": self.entry.to_dict(now),
            "job": None if self.job is None else self.job.to_dict(),
            "would_enqueue": {
                "class": new.class_name,
                "args": new.args,
                "kwargs": new.kwargs,
                "queue": new.queue,
                "priority": new.priority,
            },
        }


class RecurringOps:
    def __init__(self, backend: Backend, *, clock: Callable[[], datetime], actor: str, face: str) -> None:
        self.backend = backend
        self.clock = clock
        self.actor = actor
        self.face = face

    def entries(self) -> list[RecurringEntry]:
        return self.backend.schedules(self.clock())

    def get(self, name: str) -> RecurringEntry:
        for entry in self.entries():
            if entry.schedule.name == name:
                return entry
        raise ScheduleNotFound(name)

    def save(self, schedule: Schedule, *, dry_run: bool = False) -> RecurringEntry:
        """Create or replace a schedule (its tick memory kept: `Backend.save_schedule`)."""
        if dry_run:
            return RecurringEntry(schedule)
        entry = self.backend.save_schedule(schedule, self.clock())
        self._audit("recurring-save", schedule.name, {"class": schedule.job_class, "timing": schedule.timing})
        return entry

    def remove(self, name: str, *, dry_run: bool = False) -> bool:
        self.get(name)
        if dry_run:
            return True
        removed = self.backend.remove_schedule(name)
        self._audit("recurring-remove", name, changed=int(removed))
        return removed

    def enable(self, name: str, *, dry_run: bool = False) -> RecurringEntry:
        return self._set_enabled(name, True, dry_run)

    def disable(self, name: str, *, dry_run: bool = False) -> RecurringEntry:
        return self._set_enabled(name, False, dry_run)

    def _set_enabled(self, name: str, enabled: bool, dry_run: bool) -> RecurringEntry:
        entry = self.get(name)
        wanted = entry.schedule.with_enabled(enabled)
        if dry_run:
            return RecurringEntry(wanted, entry.last_run_at, entry.last_tick, entry.last_job_id)
        changed = entry.schedule.enabled != enabled
        after = self.backend.save_schedule(wanted, self.clock()) if changed else entry
        self._audit("recurring-enable" if enabled else "recurring-disable", name, changed=int(changed))
        return after

    def run_now(self, name: str, *, dry_run: bool = False) -> RunNow:
        """Enqueue the schedule's job at once, whether or not it is enabled; its ticks go on as
        before (a run now consumes none)."""
        entry = self.get(name)
        new = new_job_for(entry.schedule)
        if dry_run:
            return RunNow(entry, new, None)
        job = self.backend.fire_schedule(name, None, new, self.clock())
        if job is None:  # the schedule went away between the read and the run
            raise ScheduleNotFound(name)
        self._audit("recurring-run-now", name, {"class": new.class_name, "queue": new.queue}, ids=[job.id])
        return RunNow(self.get(name), new, job)

    def _audit(
        self,
        verb: str,
        name: str,
        details: dict[str, Any] | None = None,
        *,
        changed: int = 1,
        ids: list[JobId] | None = None,
    ) -> None:
        entry = AuditEntry(
            id=None,
            at=self.clock(),
            actor=self.actor,
            face=self.face,
            verb=verb,
            selection={"schedule": name, **(details or {})},
            matched=1,
            changed=changed,
            skipped=0,
        )
        self.backend.record_audit(entry, ids or [])
