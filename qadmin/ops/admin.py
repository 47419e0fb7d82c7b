"""`Ops`: the admin verbs every face calls (the package docstring tells how bulk verbs work)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.backends.base import retention_cutoffs
from qadmin.client import Client
from qadmin.errors import InvalidTransition, JobNotFound, LiveHolders, UsageError
from qadmin.filters import JobFilter, last_component
from qadmin.job import AuditEntry, Job, JobId, JobState, QueueInfo, WorkerInfo, utcnow
from qadmin.model import Attempt, ErrorGroup, JobEdit, Page, PruneReport, Stats, check_edit
from qadmin.ops.areas import Areas
from qadmin.ops.attempts import attempts_of
from qadmin.ops.cancel_notes import noted
from qadmin.ops.edit import EditResult, planned
from qadmin.ops.verbs import (
    ALIVE_READ_LIMIT,
    APPLY_BATCH,
    EVERY_JOB,
    FOREIGN_RUNNING,
    NARROWER,
    SAMPLE_SIZE,
    VERBS,
    BulkResult,
    Preview,
    Progress,
    alive_warning,
    check_queue_name,
    default_actor,
)
from qadmin.ops.waiting import REMOVING_VERBS, cancel_or_delete, count_waiting, report_back
from qadmin.ops.waiting_listing import by_ids, count_with_waiting, find_with_waiting, preview_ids


class Ops(Areas):
    """Admin verbs over one backend. Faces build one with `Ops.open(url, ...)`."""

    def __init__(
        self,
        backend: Backend,
        *,
        face: str = "api",
        actor: str | None = None,
        max_run_time: float | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.backend = backend
        self.face = face
        self.actor = actor or default_actor()
        self.max_run_time: float = max_run_time or backend.options.max_run_time
        self.clock = clock

    @classmethod
    def open(
        cls, url: str, *, options: BackendOptions | None = None, face: str = "api", actor: str | None = None
    ) -> Ops:
        backend = open_backend(url, options)
        return cls(backend, face=face, actor=actor)

    def close(self) -> None:
        self.backend.close()

    # --- reading ------------------------------------------------------------------------------
    def list_jobs(
        self, selection: JobFilter = EVERY_JOB, *, limit: int = 50, cursor: str | None = None, sort: str = "id"
    ) -> Page:
        if limit < 1:
            raise UsageError("limit must be at least 1")
        # waiting jobs are kept apart from the jobs the backend pages through: after them
        return find_with_waiting(self.backend, selection, self.clock(), limit=limit, cursor=cursor, sort=sort)

    def count(self, selection: JobFilter = EVERY_JOB) -> int:
        return count_with_waiting(self.backend, selection, self.clock())

    def show(self, job_id: JobId | str) -> Job:
        return self.backend.get(self.backend.parse_id(str(job_id)), self.clock())

    def attempts(self, job_id: JobId | str) -> list[Attempt]:
        """Every run of the job kept, oldest first (`ops/attempts.py`)."""
        return attempts_of(self.backend, job_id, self.clock())

    def stats(self) -> Stats:
        return count_waiting(self.backend.stats(self.clock(), self.max_run_time), self.backend, self.clock())

    def queues(self) -> list[QueueInfo]:
        return self.backend.queues(self.clock())

    def queue_names(self) -> list[str]:
        """The queues a menu offers, read without counting where the backend can (Redis)."""
        return self.backend.queue_names(self.clock())

    def class_names(self, sample: int = 200, short: bool = False) -> list[str]:
        """The job classes a filter box offers: those of the newest `sample` jobs and of the most
        recently failed half as many, and with `short` the last part of each too (either selects
        the class), full names last. No backend keeps a list of classes (payloads hold them): two
        keyset pages, never a scan (error groups would read every failed job)."""
        jobs = self.list_jobs(limit=sample, sort="-id").jobs
        failed = JobFilter(states=frozenset({JobState.FAILED}))
        jobs += self.list_jobs(failed, limit=max(sample // 2, 1), sort="-failed_at").jobs
        full = {j.class_name for j in jobs if j.decodable and isinstance(j.class_name, str)} - {""}
        if not short:
            return sorted(full)
        names = full | {last_component(n) for n in full}
        return sorted(names, key=lambda n: (n.count(".") + n.count("::"), n.lower()))

    def noted(self, job: Job, history: Sequence[AuditEntry]) -> Job:
        """`job` with the note of a cancel that did not stop it in its meta (`ops/cancel_notes.py`)."""
        return noted(self.backend, job, history)

    def workers(self) -> list[WorkerInfo]:
        return self.backend.workers(self.clock())

    def error_groups(self, selection: JobFilter = EVERY_JOB, limit: int = 100) -> list[ErrorGroup]:
        return self.backend.error_groups(selection, self.clock(), limit)

    def audit(self, limit: int = 100, job_id: JobId | str | None = None) -> list[AuditEntry]:
        parsed = None if job_id is None else self.backend.parse_id(str(job_id))
        return self.backend.audit(limit, parsed)

    def paused(self) -> list[str]:
        return self.backend.paused()

    # --- bulk verbs ---------------------------------------------------------------------------
    def selection_for(self, verb: str, selection: JobFilter) -> JobFilter:
        """Narrow a filter to the states the verb can act on (`retry` -> failed, ...)."""
        if verb not in VERBS:
            raise UsageError(f"unknown verb {verb!r}")
        allowed = VERBS[verb]
        if selection.states:
            states = frozenset(selection.states) & allowed
            if not states:
                wanted = ", ".join(sorted(s.value for s in selection.states))
                raise UsageError(f"{verb} acts on {', '.join(sorted(s.value for s in allowed))} jobs, not {wanted}")
            return JobFilter(**{**selection.__dict__, "states": states})
        return JobFilter(**{**selection.__dict__, "states": allowed})

    def preview(self, verb: str, selection: JobFilter) -> Preview:
        """Freeze the ids a bulk verb would act on. Explicit ids that are not in an allowed
        state are left out here and reported as skipped by `apply`."""
        now = self.clock()
        narrowed = self.selection_for(verb, selection)
        ids = preview_ids(self.backend, narrowed, now)
        keep = NARROWER.get(verb)
        if keep is not None and ids:
            kept = {str(j.id) for j in self._jobs_by_ids(ids) if keep(j)}
            ids = [i for i in ids if str(i) in kept]
        if verb == "cancel" and ids and JobState.LOCKED in narrowed.states:
            # a running job whose worker cannot be told is left out, and reported so by `apply`
            foreign = {str(i) for i in self.backend.foreign_running(ids, now)}
            ids = [i for i in ids if str(i) not in foreign]
        return Preview(verb=verb, selection=selection, ids=ids, sample=self._sample(narrowed, ids, now), created_at=now)

    def alive_holders(self, preview: Preview) -> int:
        """How many of the jobs an unlock would free are held by a worker that looks alive (a
        fresh heartbeat, or a live process): unlocking those lets them run twice. Every face says
        so before it unlocks. Read now, not when the preview was made, since the confirmation may
        come minutes later."""
        if preview.verb != "unlock" or not preview.count:
            return 0
        if preview.count <= ALIVE_READ_LIMIT:
            jobs = self.list_jobs(JobFilter(ids=tuple(preview.ids)), limit=ALIVE_READ_LIMIT).jobs
            return sum(1 for j in jobs if j.state is JobState.LOCKED and not j.stale)
        locked = replace(preview.selection, states=frozenset({JobState.LOCKED}), stale_only=False)
        return max(self.count(locked) - self.count(replace(locked, stale_only=True)), 0)

    def refuse_live_holders(self, preview: Preview) -> None:
        """LiveHolders, saying why, when a worker that looks alive holds any job `preview` would
        unlock: for callers that cannot ask (the JSON API without `force`)."""
        alive = self.alive_holders(preview)
        if alive:
            raise LiveHolders(f"not unlocking: {alive_warning(alive, preview.count)}; send force=true to unlock anyway")

    def _sample(self, narrowed: JobFilter, ids: Sequence[JobId], now: datetime) -> list[Job]:
        """The first previewed jobs, read by their frozen ids (a second search of a big queue would
        cost as much as the preview itself)."""
        first: dict[str, JobId] = {}
        for job_id in ids:
            if len(first) == SAMPLE_SIZE:
                break
            first.setdefault(str(job_id), job_id)
        if not first:
            return []
        return by_ids(self.backend, narrowed, tuple(first.values()), now, SAMPLE_SIZE)

    def apply(self, preview: Preview, progress: Progress | None = None, *, dry_run: bool = False) -> BulkResult:
        """Act on exactly the previewed ids; those that changed state meanwhile are skipped."""
        verb, ids = preview.verb, preview.ids
        skipped: list[tuple[JobId, str]] = []
        if preview.selection.ids:
            wanted = [self.backend.parse_id(str(i)) for i in preview.selection.ids]
            found = {str(i) for i in ids}
            for job_id in wanted:
                if str(job_id) not in found:
                    skipped.append((job_id, self._why_not(verb, job_id)))
        if dry_run:
            result = BulkResult(verb, matched=len(ids), changed=0, skipped=skipped, dry_run=True, sample=preview.sample)
            return result
        changed: list[JobId] = []
        total = len(ids)
        states = self.selection_for(verb, preview.selection).states
        if progress:
            progress(0, total)
        for start in range(0, total, APPLY_BATCH):
            chunk = ids[start : start + APPLY_BATCH]
            changed.extend(self._apply_chunk(verb, chunk, states))
            if progress:
                progress(min(start + APPLY_BATCH, total), total)
        changed_set = {str(i) for i in changed}
        skipped.extend((i, "changed state since the preview") for i in ids if str(i) not in changed_set)
        result = BulkResult(verb, matched=total, changed=len(changed), skipped=skipped, changed_ids=changed)
        self._audit(verb, preview.selection, result, changed)
        return result

    def _apply_chunk(self, verb: str, chunk: Sequence[JobId], states: frozenset[JobState]) -> list[JobId]:
        now = self.clock()
        if verb in REMOVING_VERBS and JobState.WAITING in states:
            return cancel_or_delete(self.backend, verb, chunk, states, now, self.actor)
        if verb == "retry":
            return self.backend.retry(chunk, now)
        if verb == "unlock":
            return self.backend.unlock(chunk, now)
        if verb == "run_now":
            return self.backend.run_now(chunk, now)
        if verb == "kill":
            return self.backend.kill(chunk, now)
        if verb == "cancel":
            return self.backend.cancel(chunk, now, self.actor)
        # only jobs still in the states the operator previewed: deleting "pending" must never
        # delete a job a worker claimed since the preview
        return self.backend.delete(chunk, now, states)

    def _why_not(self, verb: str, job_id: JobId) -> str:
        try:
            job = self.backend.get(job_id, self.clock())
        except Exception as exc:  # noqa: BLE001 - a reason string, the verb goes on
            return str(exc)
        if verb == "kill" and job.state is JobState.SCHEDULED:
            return "is scheduled and never ran, kill acts on jobs waiting for a retry"
        if verb == "cancel" and job.state is JobState.LOCKED:
            return FOREIGN_RUNNING
        return f"is {job.state.value}, {verb} acts on {'/'.join(sorted(s.value for s in VERBS[verb]))} jobs"

    def _bulk(self, verb: str, selection: JobFilter, dry_run: bool, progress: Progress | None) -> BulkResult:
        return self.apply(self.preview(verb, selection), progress, dry_run=dry_run)

    def retry(self, selection: JobFilter, *, dry_run: bool = False, progress: Progress | None = None) -> BulkResult:
        """Failed jobs become pending again: failed_at, locks cleared, run_at now, attempts 0."""
        return self._bulk("retry", selection, dry_run, progress)

    def delete(self, selection: JobFilter, *, dry_run: bool = False, progress: Progress | None = None) -> BulkResult:
        return self._bulk("delete", selection, dry_run, progress)

    def run_now(self, selection: JobFilter, *, dry_run: bool = False, progress: Progress | None = None) -> BulkResult:
        """Scheduled jobs (a later run, or a retry waiting out its backoff) become pending now."""
        return self._bulk("run_now", selection, dry_run, progress)

    def kill(self, selection: JobFilter, *, dry_run: bool = False, progress: Progress | None = None) -> BulkResult:
        """Jobs waiting for a retry fail now, with no more attempts (attempts and error kept)."""
        return self._bulk("kill", selection, dry_run, progress)

    def cancel(self, selection: JobFilter, *, dry_run: bool = False, progress: Progress | None = None) -> BulkResult:
        """Pending, scheduled and waiting jobs are removed and recorded as cancelled; a job a qadmin
        worker runs is interrupted by that worker within seconds and recorded as cancelled."""
        return self._bulk("cancel", selection, dry_run, progress)

    def dequeue(
        self,
        queue: str,
        class_name: str,
        args: Sequence[Any] | None = None,
        *,
        job_ids: Sequence[JobId] = (),
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> BulkResult:
        """Remove waiting jobs of one class (and exact args) from one queue, like Resque.dequeue.

        `queue=""` names the unnamed queue (delayed_job's default queue is a NULL `queue`)."""
        if queue is None or not class_name:
            raise UsageError("dequeue needs a queue and a class")
        selection = JobFilter(
            queues=(queue,), class_name=class_name, args=tuple(args) if args is not None else None, ids=tuple(job_ids)
        )
        return self._bulk("dequeue", selection, dry_run, progress)

    def unlock(
        self,
        selection: JobFilter = EVERY_JOB,
        *,
        stale: bool = False,
        older_than: float | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> BulkResult:
        """Release locks (of dead workers with `stale`, or older than `older_than` seconds)."""
        return self.apply(self.unlock_preview(selection, stale=stale, older_than=older_than), progress, dry_run=dry_run)

    def unlock_preview(
        self, selection: JobFilter = EVERY_JOB, *, stale: bool = False, older_than: float | None = None
    ) -> Preview:
        """The locks `unlock` would release, frozen (see `alive_holders` before applying it)."""
        if stale:
            selection = JobFilter(**{**selection.__dict__, "stale_only": True})
        if older_than is None:
            return self.preview("unlock", selection)
        if older_than < 0:
            raise UsageError("--older-than must not be negative")
        now = self.clock()
        cutoff = now - timedelta(seconds=older_than)
        expired = now - timedelta(seconds=self.max_run_time)
        preview = self.preview("unlock", JobFilter(**{**selection.__dict__, "stale_only": False}))

        def wanted(job: Job) -> bool:
            if job.locked_at is None:
                return False
            if job.locked_at <= cutoff:
                return True
            # with --stale, --older-than replaces the max run time as the age limit; a lock of
            # a dead worker is stale at any age
            return stale and job.stale and job.locked_at > expired

        keep = {str(j.id) for j in self._jobs_by_ids(preview.ids) if wanted(j)}
        preview.ids = [i for i in preview.ids if str(i) in keep]
        preview.sample = [j for j in preview.sample if str(j.id) in keep]
        return preview

    def _jobs_by_ids(self, ids: Sequence[JobId]) -> list[Job]:
        out: list[Job] = []
        for start in range(0, len(ids), 500):
            chunk = tuple(ids[start : start + 500])
            out.extend(self.backend.find(JobFilter(ids=chunk), self.clock(), limit=len(chunk)).jobs)
        return out

    def retry_job(self, job_id: JobId | str) -> Job:
        """Retry one job; InvalidTransition if it is not failed."""
        job = self.show(job_id)
        if job.state is not JobState.FAILED:
            raise InvalidTransition(job.id, job.state.value, "retry")
        result = self.retry(JobFilter(ids=(job.id,)))
        if not result.changed:
            raise InvalidTransition(job.id, "no longer failed", "retry")
        try:
            return self.show(job.id)
        except JobNotFound:
            # a failed Redis twin's id (`@f…`) names a failure entry, which the retry consumed:
            # the job is pending again under the id its queue gives it, which the caller lists
            return replace(job, state=JobState.PENDING, failed_at=None, locked_at=None, locked_by=None)

    # --- one new job --------------------------------------------------------------------------
    @property
    def supports_priority(self) -> bool:
        """Whether the backend orders jobs by priority (Resque's queues on Redis have none)."""
        return self.backend.supports_priority

    def enqueue(
        self,
        class_name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
        delay: float | None = None,
        max_attempts: int | None = None,
        unique: str | None = None,
        timeout: float | None = None,
    ) -> Job:
        """An operator's new job, enqueued as the Python API enqueues one (its checks, its events)
        and audited: the entry names the class and queue, and touches the new job's id."""
        if not class_name.strip():
            raise UsageError("a job needs a class: name the job's class or function")
        if queue:
            check_queue_name(queue)
        client = Client(self.backend)
        new = client.build(
            class_name,
            args,
            dict(kwargs or {}),
            queue=queue,
            priority=priority,
            run_at=run_at,
            delay=delay,
            max_attempts=max_attempts,
            unique=unique,
            timeout=timeout,
        )
        job = client.put(new)
        details = JobFilter(ids=(job.id,), queues=(job.queue or "",), class_name=job.class_name)
        self._audit("enqueue", details, BulkResult("enqueue", 1, 1), [job.id])
        return job

    # --- one job edited -----------------------------------------------------------------------
    def edit(
        self,
        job_id: JobId | str,
        *,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
        dry_run: bool = False,
    ) -> EditResult:
        """Edit a pending, scheduled or failed job (`Backend.edit`: its format's limits, guarded).
        `dry_run` checks what the backend checks before writing and changes nothing; an edit is
        audited with the old and new values of the fields it changed."""
        if queue is not None:
            check_queue_name(queue)
        if run_at is not None and run_at.tzinfo is None:  # the Python API's naive times are UTC
            run_at = run_at.replace(tzinfo=UTC)
        changes = JobEdit(
            args=None if args is None else list(args),
            kwargs=None if kwargs is None else dict(kwargs),
            queue=queue,
            priority=priority,
            run_at=run_at,
        )
        if changes.is_empty:
            raise UsageError("nothing to edit: give new args, kwargs, queue, priority or run_at")
        now = self.clock()
        before = self.show(job_id)
        check_edit(before, changes)
        if changes.priority is not None and not self.backend.supports_priority:
            raise UsageError(f"job {before.id}: Redis (Resque) queues have no priorities; leave the priority out")
        if dry_run:
            return EditResult(before, planned(before, changes, now), dry_run=True)
        result = EditResult(before, self.backend.edit(before.id, changes, now))
        touched = [before.id] if result.after.id == before.id else [before.id, result.after.id]
        self.backend.record_audit(result.audit_entry(now, self.actor, self.face), touched)
        return result

    # --- waiting jobs (`qadmin.Waiting`): the external service's verdict (`ops/waiting.py`) ---
    def complete_waiting(self, job_id: JobId | str, result: Any = None, *, dry_run: bool = False) -> Job:
        return self._report_back("complete", job_id, result=result, dry_run=dry_run)

    def fail_waiting(self, job_id: JobId | str, error: str, *, dry_run: bool = False) -> Job:
        return self._report_back("fail", job_id, error=error, dry_run=dry_run)

    def _report_back(self, verb: str, job_id: JobId | str, **verdict: Any) -> Job:
        return report_back(self.backend, self.show(job_id), verb, self.clock(), self.actor, self.face, **verdict)

    # --- queues -------------------------------------------------------------------------------
    def pause(self, queue: str) -> bool:
        check_queue_name(queue)
        changed = self.backend.pause(queue, self.clock())
        self._audit("pause", JobFilter(queues=(queue,)), BulkResult("pause", 1, int(changed)), [])
        return changed

    def resume(self, queue: str) -> bool:
        check_queue_name(queue)
        changed = self.backend.resume(queue)
        self._audit("resume", JobFilter(queues=(queue,)), BulkResult("resume", 1, int(changed)), [])
        return changed

    # --- retention ----------------------------------------------------------------------------
    def prune(self, older_than: float | None = None, *, dry_run: bool = False) -> PruneReport:
        """Remove failed jobs, finished records and dead qadmin workers older than the backend's
        retention settings (`[retention]`); `older_than` seconds replaces the retention of both
        kinds of job. `dry_run` counts and changes nothing (and, as every dry run, is not audited);
        a prune is one audit entry, its counts in the details."""
        if older_than is not None and older_than < 0:
            raise UsageError("--older-than must not be negative")
        now = self.clock()
        failed, finished, workers = retention_cutoffs(self.backend.options, now, older_than)
        report = self.backend.prune(
            now, failed_before=failed, finished_before=finished, workers_before=workers, dry_run=dry_run
        )
        if not dry_run:
            self.backend.record_audit(report.audit_entry(now, self.actor, self.face), report.failed_ids)
        return report

    # --- audit --------------------------------------------------------------------------------
    def _audit(self, verb: str, selection: JobFilter, result: BulkResult, ids: Sequence[JobId]) -> None:
        entry = AuditEntry(
            id=None,
            at=self.clock(),
            actor=self.actor,
            face=self.face,
            verb=verb,
            selection=selection.to_params(),
            matched=result.matched,
            changed=result.changed,
            skipped=len(result.skipped),
            dry_run=result.dry_run,
        )
        self.backend.record_audit(entry, ids)
