"""The enqueue API: `qadmin.connect(url)` and what it returns."""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from qadmin import events, registry
from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.errors import UsageError
from qadmin.job import Job, JobId, JobState, NewJob, utcnow
from qadmin.recurring import SOURCE_API, RecurringEntry, Schedule, parse_every
from qadmin.settings import URL_ENV

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

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
        timeout: float | timedelta | None = None,
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
            timeout=timeout,
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
        timeout: float | timedelta | None = None,
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
        if timeout is not None:
            timeout = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
            if not timeout > 0 or timeout == float("inf"):
                raise UsageError("timeout must be a positive number of seconds")
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
            timeout=timeout,
        )
        return new

    def schedule(
        self,
        name: str,
        job: Any,
        *args: Any,
        cron: str | None = None,
        every: str | float | timedelta | None = None,
        timezone: str = "UTC",
        queue: str | None = None,
        priority: int | None = None,
        **kwargs: Any,
    ) -> RecurringEntry:
        """Create or replace the recurring schedule `name`: `job(*args, **kwargs)` enqueued at
        every tick of `cron` (in `timezone`) or `every` (seconds, a timedelta, or "30s", "5m"),
        by `qadmin scheduler`. A replaced schedule keeps its memory of ticks: none fires twice.
        A registered job's own queue and priority apply where none is given."""
        defaults = registry.defaults_of(job)
        if isinstance(every, timedelta):
            every = every.total_seconds()
        schedule = Schedule(
            name=name,
            job_class=registry.name_of(job),
            args=list(args),
            kwargs=kwargs,
            queue=queue or defaults.get("queue"),
            priority=priority if priority is not None else defaults.get("priority"),
            cron=cron,
            every=None if every is None else parse_every(every),
            timezone=timezone,
            source=SOURCE_API,
        )
        return self.backend.save_schedule(schedule, utcnow())

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
        meta=_options_meta(new),
    )


def _options_meta(new: NewJob) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if new.timeout is not None:
        meta["timeout"] = new.timeout
    if new.unique is not None:
        meta["unique"] = new.unique
    return meta


def connect(
    url: str = "sqlite:///qadmin.db", *, table: str | None = None, namespace: str = "resque", init: bool = False
) -> Client:
    backend = open_backend(url, BackendOptions(table=table, namespace=namespace))
    if init:
        backend.init()
    return Client(backend)


# -- job functions: `send.delay(...)` ---------------------------------------------------------------

_default: Client | None = None
_default_lock = threading.Lock()


def configure(
    url: str | Client | None, *, table: str | None = None, namespace: str = "resque", init: bool = False
) -> Client | None:
    """Set the backend `send.delay(...)` enqueues into: a URL (opened here), a `Client`, or None to
    forget it (the client opened here is closed). Without it, `QADMIN_URL` from the environment."""
    global _default
    with _default_lock:
        previous, _default = _default, None
        if previous is not None and previous is not url:
            previous.close()
        if url is not None:
            _default = url if isinstance(url, Client) else connect(url, table=table, namespace=namespace, init=init)
        return _default


def default_client() -> Client:
    """The client `qadmin.configure` set, else one opened from `QADMIN_URL` (once, then kept)."""
    global _default
    current = _default
    if current is not None:
        return current
    with _default_lock:
        if _default is None:
            url = os.environ.get(URL_ENV)
            if not url:
                raise UsageError(
                    f"no backend to enqueue into: call qadmin.configure(url) first or set {URL_ENV} "
                    "(or pass client= to .options(...))"
                )
            _default = connect(url)
        return _default


class JobCall(Generic[P]):
    """A job function's enqueue with options chosen (`send.options(queue="urgent").delay(to)`)."""

    __slots__ = ("_name", "_options", "_client")

    def __init__(self, name: str, options: dict[str, Any], client: Client | None) -> None:
        self._name, self._options, self._client = name, options, client

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        client = self._client or default_client()
        return client.put(Client.build(self._name, args, kwargs, **self._options))

    enqueue = delay


class JobFunction(Generic[P, R]):
    """A `@qadmin.job` function: called directly it runs here, as the undecorated function would;
    `.delay(...)` enqueues it with the decorator's queue, priority and max_attempts. Its arguments
    are typed as the function's, so a type checker rejects `send.delay(1)` for `send(to: str)`."""

    def __init__(self, func: Callable[P, R], name: str) -> None:
        self.__wrapped__ = func
        functools.update_wrapper(self, func)
        #: what the registry and the worker see (the function itself runs, no wrapper between)
        self.__qadmin_target__ = func
        self.__qadmin_name__ = name
        self.__qadmin_defaults__ = registry.defaults_of(func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.__wrapped__(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<qadmin job {self.__qadmin_name__!r}>"

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue one run of this job into the default client (`qadmin.configure`)."""
        return default_client().put(Client.build(self, args, kwargs))

    enqueue = delay

    def options(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
        max_attempts: int | None = None,
        unique: str | None = None,
        timeout: float | timedelta | None = None,
        client: Client | None = None,
    ) -> JobCall[P]:
        """This job's enqueue with options other than the decorator's, and maybe another client."""
        chosen = {"queue": queue, "priority": priority, "run_at": run_at, "delay": delay}
        chosen.update(max_attempts=max_attempts, unique=unique, timeout=timeout)
        defaults = self.__qadmin_defaults__
        for key in ("queue", "priority", "max_attempts"):
            if chosen[key] is None:
                chosen[key] = defaults.get(key)
        return JobCall(self.__qadmin_name__, chosen, client)


class _Register:
    """What `@qadmin.job(...)` applies: registers, then wraps a function (a class stays itself)."""

    def __init__(self, register: Callable[[Any], Any]) -> None:
        self._register = register

    # a class is a callable too: mypy calls the overlap unsafe, but a class is meant to match first
    # and stay itself (mypy's documented remedy for an intended overlap is this ignore)
    @overload
    def __call__(self, target: type[T]) -> type[T]: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, target: Callable[P, R]) -> JobFunction[P, R]: ...
    def __call__(self, target: Any) -> Any:
        registered = self._register(target)
        if inspect.isclass(target):
            return registered
        return JobFunction(target, registry.name_of(target))


def job(
    name: str | None = None, *, queue: str | None = None, priority: int | None = None, max_attempts: int | None = None
) -> _Register:
    """Register a function or a class (with a `perform` method) under `name`; a function gets
    `.delay(...)` and `.options(...)`.

    @qadmin.job("email.send", queue="email")
    def send(to: str, subject: str) -> None: ...

    send.delay("ann@example.com", "hi")
    """
    return _Register(registry.job(name, queue=queue, priority=priority, max_attempts=max_attempts))
