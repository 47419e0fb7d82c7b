"""What every backend's rescue (`WorkerSession.rescue`) records: its audit entry."""

from __future__ import annotations

from datetime import datetime

from qadmin.job import AuditEntry, JobId


def rescue_entry(
    worker: str, now: datetime, worker_timeout: float, by_holder: dict[str, list[JobId]], matched: int
) -> AuditEntry:
    """The audit entry of one rescue by `worker`: the dead holders and the jobs given back from
    each (`matched` were found, the others were renewed or taken meanwhile)."""
    changed = sum(len(ids) for ids in by_holder.values())
    return AuditEntry(
        id=None,
        at=now,
        actor=worker,
        face="worker",
        verb="rescue",
        selection={
            "dead_workers": {holder: [str(i) for i in ids] for holder, ids in sorted(by_holder.items())},
            "worker_timeout": worker_timeout,
        },
        matched=matched,
        changed=changed,
        skipped=matched - changed,
    )
