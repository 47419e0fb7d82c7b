"""`ops.redaction`: what the faces show of job data, redacted (`qadmin.redaction`), and the admin's
audited reveal.

The other verbs return jobs as they are (a retry, an edit or a bulk verb works on the real
values); every face passes what it shows through here. An edit typed over a redacted view has
the hidden values put back (`restored`), so no face ever writes the marker into a job.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from qadmin.backends import Backend
from qadmin.errors import UsageError
from qadmin.job import AuditEntry, Job, JobId
from qadmin.model import Attempt, ErrorGroup, Page
from qadmin.ops.edit import EditResult
from qadmin.ops.verbs import BulkResult, Preview
from qadmin.redaction import MARKER, Redactor

#: the audit verb of an admin's reveal
REVEAL = "reveal"

Sampled = TypeVar("Sampled", Preview, BulkResult)


class RedactionOps:
    def __init__(
        self, backend: Backend, redactor: Redactor, *, clock: Callable[[], datetime], actor: str, face: str
    ) -> None:
        self.backend = backend
        self.redactor = redactor
        self.clock = clock
        self.actor = actor
        self.face = face

    # --- what the faces show ------------------------------------------------------------------
    def job(self, job: Job) -> Job:
        return self.redactor.job(job)

    def hides(self, job: Job) -> bool:
        """Whether anything of `job` is hidden (the faces then offer an admin the reveal)."""
        return self.redactor.job(job) is not job

    def jobs(self, jobs: Iterable[Job]) -> list[Job]:
        return self.redactor.jobs(jobs)

    def page(self, page: Page) -> Page:
        return replace(page, jobs=self.redactor.jobs(page.jobs))

    def audit(self, entries: Iterable[AuditEntry]) -> list[AuditEntry]:
        return self.redactor.audit(entries)

    def error_groups(self, groups: Iterable[ErrorGroup]) -> list[ErrorGroup]:
        """Groups with their error text redacted by the patterns (for display: a group's filter
        keeps the real text, which the faces hold apart)."""
        text = self.redactor.text
        return [
            replace(
                g,
                error=text(g.error),
                pattern=text(g.pattern),
                variants=[replace(v, error=text(v.error)) for v in g.variants],
            )
            for g in groups
        ]

    def attempts(self, attempts: Iterable[Attempt]) -> list[Attempt]:
        """A job's runs with their errors and backtraces redacted by the patterns."""
        text = self.redactor.text
        return [
            replace(
                a,
                error=None if a.error is None else text(a.error),
                backtrace=None if a.backtrace is None else text(a.backtrace),
            )
            for a in attempts
        ]

    def sampled(self, result: Sampled) -> Sampled:
        """A preview or a bulk result with its sample of jobs redacted (its ids untouched)."""
        shown = copy.copy(result)
        shown.sample = self.redactor.jobs(result.sample)
        return shown

    def edit_document(self, result: EditResult) -> dict[str, Any]:
        """`EditResult.to_dict()` with the old and new values redacted."""
        out = result.to_dict()
        out["before"] = self.redactor.value(out["before"])
        out["after"] = self.redactor.value(out["after"])
        return out

    def edit_values(self, result: EditResult) -> tuple[dict[str, Any], dict[str, Any]]:
        """`EditResult.values()` redacted (old, new)."""
        before, after = result.values()
        return self.redactor.value(before), self.redactor.value(after)

    def value(self, value: Any) -> Any:
        return self.redactor.value(value)

    def text(self, text: str) -> str:
        """A text (an error group's, a label) with the patterns' matches hidden."""
        return self.redactor.text(text)

    # --- the admin's reveal -------------------------------------------------------------------
    def reveal(self, job: Job) -> Job:
        """`job` in full, the reveal audited (verb "reveal", the job's id) when anything was hidden.
        The caller has checked the role (`Role.may_reveal`)."""
        if self.hides(job):
            entry = AuditEntry(
                id=None,
                at=self.clock(),
                actor=self.actor,
                face=self.face,
                verb=REVEAL,
                selection={"id": str(job.id)},
                matched=1,
                changed=0,
                skipped=0,
            )
            self.backend.record_audit(entry, [job.id])
        return job

    def view(
        self, job: Job, history: list[AuditEntry], attempts: list[Attempt], *, reveal: bool = False
    ) -> tuple[Job, list[AuditEntry], list[Attempt]]:
        """A job's page (the job, its audit history, its runs): redacted, or in full for an admin's
        reveal (audited; the caller has checked the role)."""
        if reveal:
            return self.reveal(job), history, attempts
        return self.job(job), self.audit(history), self.attempts(attempts)

    # --- edits typed over a redacted view -----------------------------------------------------
    def restored(
        self, job: Job, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None
    ) -> tuple[list[Any] | None, dict[str, Any] | None]:
        """New args and kwargs with what the view hid put back (`Redactor.keep_hidden`); a
        UsageError when a marker stands where the job has no hidden value."""
        try:
            new_args = None if args is None else list(self.redactor.keep_hidden(job.args, list(args), "args"))
            new_kwargs = None if kwargs is None else dict(self.redactor.keep_hidden(job.kwargs, dict(kwargs), "kwargs"))
        except ValueError as exc:
            raise UsageError(f"job {job.id}: {exc}") from None
        return new_args, new_kwargs

    def restored_by_id(
        self, job_id: JobId | str, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None
    ) -> tuple[list[Any] | None, dict[str, Any] | None]:
        """`restored` for a job read now, read only when the new values hold a marker."""
        if MARKER not in repr(args) and MARKER not in repr(kwargs):
            return (None if args is None else list(args)), (None if kwargs is None else dict(kwargs))
        job = self.backend.get(self.backend.parse_id(str(job_id)), self.clock())
        return self.restored(job, args, kwargs)
