"""One job edited: what changes (`EditResult`: the job before and after), and the audit entry
that keeps the old and new values of the fields that changed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from qadmin.job import AuditEntry, Job, JobState, iso
from qadmin.model import JobEdit

#: the fields an edit can change, as `Job` names them
EDITED_FIELDS = ("args", "kwargs", "queue", "priority", "run_at")


def _shown(field: str, job: Job) -> Any:
    value = getattr(job, field)
    return iso(value) if isinstance(value, datetime) else value


@dataclass(frozen=True)
class EditResult:
    before: Job
    after: Job
    dry_run: bool = False

    @property
    def changed_fields(self) -> list[str]:
        return [f for f in EDITED_FIELDS if _shown(f, self.before) != _shown(f, self.after)]

    def values(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The changed fields' old values and new values, as JSON."""
        fields = self.changed_fields
        return {f: _shown(f, self.before) for f in fields}, {f: _shown(f, self.after) for f in fields}

    def to_dict(self) -> dict[str, Any]:
        before, after = self.values()
        return {
            "verb": "edit",
            "dry_run": self.dry_run,
            "id": str(self.before.id),
            "new_id": str(self.after.id),
            "changed": bool(before) and not self.dry_run,
            "before": before,
            "after": after,
        }

    def audit_entry(self, at: datetime, actor: str, face: str) -> AuditEntry:
        before, after = self.values()
        details: dict[str, Any] = {"ids": str(self.before.id), "before": before, "after": after}
        if self.after.id != self.before.id:
            details["new_id"] = str(self.after.id)
        return AuditEntry(
            id=None,
            at=at,
            actor=actor,
            face=face,
            verb="edit",
            selection=details,
            matched=1,
            changed=int(bool(before)),
            skipped=0,
        )


def planned(job: Job, changes: JobEdit, now: datetime) -> Job:
    """The job as the edit would leave it (a dry run's `after`): the backend checks and writes
    the real one."""
    values: dict[str, Any] = {k: getattr(changes, k) for k in EDITED_FIELDS if getattr(changes, k) is not None}
    after = replace(job, **values)
    if changes.run_at is not None and job.state is not JobState.FAILED:
        after = replace(after, state=JobState.SCHEDULED if changes.run_at > now else JobState.PENDING)
    return after
