"""TRANSITIONAL (removed when each backend has its own session class): a `WorkerSession` made
of the backend's former engine verbs, which still keep their state on the backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from qadmin.job import Job, JobId, WorkerInfo


class LegacySession:
    def __init__(self, backend: Any, worker: str, defer_successes: bool = False) -> None:
        self.backend = backend
        self.worker = worker
        if defer_successes and hasattr(backend, "defer_successes"):
            backend.defer_successes = True

    def claim(
        self,
        queues: Sequence[str],
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int = 1,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        kwargs = {"skip_ids": list(skip_ids)} if skip_ids else {}
        if limit > 1:
            return list(self.backend.claim_many(list(queues), self.worker, now, max_run_time, can_run, limit, **kwargs))
        job = self.backend.claim(list(queues), self.worker, now, max_run_time, can_run, **kwargs)
        return [job] if job is not None else []

    def complete(self, job: Job, now: datetime, runtime: float) -> None:
        self.backend.complete(job, self.worker, now, runtime)

    def complete_and_claim(
        self,
        job: Job,
        now: datetime,
        runtime: float,
        queues: Sequence[str],
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        kwargs = {"skip_ids": list(skip_ids)} if skip_ids else {}
        return list(
            self.backend.complete_and_claim(
                job, self.worker, now, runtime, list(queues), max_run_time, can_run, limit, **kwargs
            )
        )

    def fail(self, job: Job, now: datetime, error: str, retry_at: datetime | None) -> None:
        self.backend.fail(job, self.worker, now, error, retry_at)

    def refresh(self, job: Job, now: datetime) -> bool:
        return bool(self.backend.refresh_lock(job, self.worker, now))

    def release(self, jobs: Sequence[Job]) -> None:
        self.backend.release_many(list(jobs), self.worker)

    def register(self, info: WorkerInfo) -> None:
        self.backend.register_worker(info)

    def heartbeat(
        self, now: datetime, current_job: JobId | None, job_started_at: datetime | None, processed: int, failed: int
    ) -> None:
        self.backend.heartbeat(self.worker, now, current_job, job_started_at, processed, failed)

    def unregister(self) -> None:
        self.backend.unregister_worker(self.worker)

    def paused(self) -> list[str]:
        return list(self.backend.paused())

    def flush(self) -> None:
        self.backend.flush()

    def close(self) -> None:
        self.flush()
