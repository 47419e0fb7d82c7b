"""The enqueue API: `qadmin.connect(url)` and what it returns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from qadmin import events, registry
from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.errors import UsageError
from qadmin.job import Job, JobId, JobState, NewJob, utcnow

#: a NewJob with every field given, filled in at once: the frozen dataclass's __init__ sets
#: its eight fields one `object.__setattr__` at a time, which costs more than the rest of
#: `build` (enqueue_many builds thousands). NewJob has no __post_init__ and no defaults that
#: are not given here; tests/backends/test_sql_enqueue_rows.py checks both
_new_job = object.__new__


class Client:
    """Enqueues jobs into one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def enqueue(
        self,
        job: Any,
        *args: Any,
        queue: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
        max_attempts: int | None = None,
        unique: str | None = None,
        **kwargs: Any,
    ) -> Job:
        """Put one job on a queue. `job` is a registered name, a dotted path, or a decorated callable.

        With `unique`, a live job enqueued earlier under the same key is returned instead of a
        new one (JQJobs' coalescing); this holds across processes.
        """
        new = self.build(
            job,
            args,
            kwargs,
            queue=queue,
            priority=priority,
            run_at=run_at,
            delay=delay,
            max_attempts=max_attempts,
            unique=unique,
        )
        return self.put(new)

    def put(self, new: NewJob) -> Job:
        """Store one built job (`build`), with the enqueue events around it."""
        events.emit("before_enqueue", new)
        stored = self.backend.enqueue(new)
        events.emit("after_enqueue", stored)
        return stored

    def enqueue_many(self, jobs: Iterable[NewJob]) -> list[JobId]:
        news = list(jobs)
        for new in news:
            events.emit("before_enqueue", new)
        ids = self.backend.enqueue_many(news)
        if events.listening("after_enqueue"):
            # the job as stored, built from what was sent rather than read back: a bulk enqueue
            # stays one round trip per batch
            now = utcnow()
            for new, job_id in zip(news, ids):
                events.emit("after_enqueue", _stored(new, job_id, now))
        return ids

    @staticmethod
    def build(
        job: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
        max_attempts: int | None = None,
        unique: str | None = None,
    ) -> NewJob:
        if run_at is not None and delay is not None:
            raise UsageError("give run_at or delay, not both")
        if delay is not None:
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            if seconds < 0:
                raise UsageError("delay must not be negative")
            run_at = utcnow() + timedelta(seconds=seconds)
        if max_attempts is not None and max_attempts < 1:
            raise UsageError("max_attempts must be at least 1")
        defaults = registry.defaults_of(job)
        new = _new_job(NewJob)
        new.__dict__.update(
            class_name=registry.name_of(job),
            args=list(args),
            kwargs=dict(kwargs) if kwargs else {},
            queue=queue or defaults.get("queue") or "default",
            priority=priority if priority is not None else defaults.get("priority", 0),
            run_at=run_at,
            max_attempts=max_attempts if max_attempts is not None else defaults.get("max_attempts"),
            unique=unique,
        )
        return new

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stored(new: NewJob, job_id: JobId, now: datetime) -> Job:
    scheduled = new.run_at is not None and new.run_at > now
    return Job(
        id=job_id,
        queue=new.queue,
        class_name=new.class_name,
        args=list(new.args),
        kwargs=dict(new.kwargs),
        state=JobState.SCHEDULED if scheduled else JobState.PENDING,
        priority=new.priority,
        run_at=new.run_at,
        created_at=now,
        max_attempts=new.max_attempts,
        meta={"unique": new.unique} if new.unique is not None else {},
    )


def connect(
    url: str = "sqlite:///qadmin.db", *, table: str | None = None, namespace: str = "resque", init: bool = False
) -> Client:
    backend = open_backend(url, BackendOptions(table=table, namespace=namespace))
    if init:
        backend.init()
    return Client(backend)
