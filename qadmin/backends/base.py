"""The `Backend` interface both backends implement, and `open_backend(url)`.

A backend is where jobs live. Every method is atomic on its own; none of them is a
read-modify-write across calls. Methods that change jobs take ids (frozen by the operations
layer at preview time) and return the ids that *really* changed, so that a job which changed
state in the meantime is reported as skipped, never acted on blindly.

Errors: every method raises only `QadminError`s — `BackendUnavailable` when the server cannot
be reached (driver error chained as `__cause__`), `MissingTable` when the SQL table is absent,
`JobNotFound` from `get`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from qadmin.errors import ConfigError
from qadmin.filters import JobFilter
from qadmin.job import AuditEntry, Job, JobId, NewJob, QueueInfo, WorkerInfo

#: URL schemes qadmin knows, for error messages
KNOWN_SCHEMES = (
    "sqlite://",
    "postgresql://",
    "postgres://",
    "postgresql+psycopg://",
    "mysql+pymysql://",
    "redis://",
    "rediss://",
)

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
        from qadmin.job import iso

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

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for counts in self.queues.values():
            for state, n in counts.items():
                out[state] = out.get(state, 0) + n
        return out


@runtime_checkable
class Backend(Protocol):
    """Where jobs live (see the module docstring for the error contract)."""

    #: a short word for messages: "sqlite", "postgresql", "redis"
    kind: str
    #: whether jobs carry a meaningful priority (Resque queues have none)
    supports_priority: bool
    #: whether `finished` jobs are recorded for a retention window
    records_finished: bool

    # --- set-up ------------------------------------------------------------------------------
    def init(self) -> None:
        """Create qadmin's tables if missing (SQL); a no-op where nothing needs creating."""

    def check(self) -> None:
        """Raise BackendUnavailable / MissingTable unless the backend is usable."""

    def close(self) -> None: ...

    def parse_id(self, text: str) -> JobId:
        """Turn an id as printed by a listing back into this backend's id (UsageError if malformed)."""

    # --- engine verbs (clients and workers) --------------------------------------------------
    def enqueue(self, new: NewJob) -> Job:
        """Store one job; with `new.unique`, return the existing live job of that key instead."""

    def enqueue_many(self, news: Sequence[NewJob]) -> list[JobId]:
        """Store many jobs in as few round trips as the backend allows."""

    def claim(
        self, queues: Sequence[str], worker: str, now: datetime, max_run_time: float, can_run: Callable[[Job], bool]
    ) -> Job | None:
        """Lock one ready job for `worker`: lowest priority number, then earliest run_at.

        Only jobs for which `can_run(job)` is true are locked; others are left untouched.
        Two callers never get the same job. Paused queues are skipped. `queues` may be ["*"].
        """

    def complete(self, job: Job, worker: str, now: datetime, runtime: float) -> None:
        """The job succeeded: remove it from the queue and record the outcome."""

    def fail(self, job: Job, worker: str, now: datetime, error: str, retry_at: datetime | None) -> None:
        """The job raised: attempts + 1, last_error kept; rescheduled at `retry_at`, or failed
        for good when `retry_at` is None."""

    def release(self, job: Job, worker: str) -> None:
        """Give a claimed job back untouched (the worker is stopping before running it)."""

    # Optional engine verbs, found by the worker with getattr (a backend without them still
    # works, one job per claim and one round trip more per job):
    #
    #   claim_many(queues, worker, now, max_run_time, can_run, limit, skip_ids=()) -> list[Job]
    #       `claim` for up to `limit` jobs at once, in claim order (the worker's --prefetch).
    #   refresh_lock(job, worker, now) -> bool
    #       renew the lock of a prefetched job before it runs; False if no longer ours.
    #   release_many(jobs, worker) -> None
    #       give back prefetched jobs not run.
    #   complete_and_claim(job, worker, now, runtime, queues, max_run_time, can_run, limit,
    #                      skip_ids=()) -> list[Job]
    #       `complete(job)` then `claim_many(...)`, in as few round trips as the backend can
    #       (one transaction on SQL). The worker retries it after BackendUnavailable, so the
    #       completion must be harmless to repeat: a second call neither counts the job twice
    #       nor touches a job no longer locked by `worker`.

    def register_worker(self, info: WorkerInfo) -> None: ...

    def heartbeat(
        self,
        name: str,
        now: datetime,
        current_job: JobId | None,
        job_started_at: datetime | None,
        processed: int,
        failed: int,
    ) -> None: ...

    def unregister_worker(self, name: str) -> None: ...

    def is_paused(self, queue: str) -> bool: ...

    # --- admin verbs (the operations layer) ---------------------------------------------------
    def get(self, job_id: JobId, now: datetime) -> Job:
        """The job with this id, in any state (JobNotFound otherwise)."""

    def find(
        self, selection: JobFilter, now: datetime, *, limit: int, cursor: str | None = None, sort: str = "id"
    ) -> Page:
        """One keyset page of matching jobs; never loads the whole table or list."""

    def iter_ids(self, selection: JobFilter, now: datetime, batch: int = 5000) -> Any:
        """Every matching id, in batches (an iterator of lists), for previews of bulk verbs."""

    def count(self, selection: JobFilter, now: datetime) -> int: ...

    def retry(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """Make these failed jobs pending again (attempts reset, error kept until they run).
        Returns the ids that were failed and changed."""

    def delete(self, ids: Sequence[JobId], now: datetime, states: frozenset | None = None) -> list[JobId]:
        """Remove these jobs (only those still in `states`, when given). Returns the ids removed."""

    def unlock(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """Release these locks so the jobs are pending again. Returns the ids released."""

    def stats(self, now: datetime, max_run_time: float) -> Stats: ...

    def error_groups(self, selection: JobFilter, now: datetime, limit: int = 100) -> list[ErrorGroup]: ...

    def queues(self, now: datetime) -> list[QueueInfo]: ...

    def workers(self, now: datetime) -> list[WorkerInfo]: ...

    def pause(self, queue: str, now: datetime) -> bool:
        """Pause a queue; False if it already was."""

    def resume(self, queue: str) -> bool:
        """Resume a queue; False if it was not paused."""

    def paused(self) -> list[str]: ...

    def record_audit(self, entry: AuditEntry, job_ids: Sequence[JobId]) -> None: ...

    def audit(self, limit: int = 100, job_id: JobId | None = None) -> list[AuditEntry]: ...


@dataclass(frozen=True)
class BackendOptions:
    table: str | None = None
    namespace: str = "resque"
    #: seconds after which a lock counts as stale (delayed_job's max_run_time)
    max_run_time: float = 4 * 3600.0
    #: seconds without a heartbeat after which a qadmin worker counts as dead
    worker_timeout: float = 60.0
    #: how long finished outcomes are kept
    finished_retention: float = 7 * 24 * 3600.0


#: the install command for a driver module that is missing, by module name
DRIVER_INSTALL = {
    "psycopg": "pip install 'qadmin[postgres]'",
    "psycopg2": "pip install 'qadmin[postgres]'",
    "pymysql": "pip install 'qadmin[mysql]'",
    "MySQLdb": "pip install 'qadmin[mysql]' and use a mysql+pymysql:// URL",
    "redis": "pip install 'qadmin[redis]'",
}


def open_backend(url: str, options: BackendOptions | None = None) -> Backend:
    """Open the backend a URL names. Drivers are imported only for the scheme in use.

    A URL that cannot be read, or whose driver is not installed, is one ConfigError that says
    what to fix (never a driver's traceback)."""
    options = options or BackendOptions()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    base = scheme.split("+", 1)[0]
    if base in ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "redis", "rediss"):
        _check_url(url, base)
    try:
        if base in ("sqlite", "postgresql", "postgres", "mysql", "mariadb"):
            import sqlalchemy.exc

            from qadmin.backends.sql import SqlBackend

            try:
                return SqlBackend(url, options)
            except sqlalchemy.exc.NoSuchModuleError:
                raise ConfigError(
                    f"unknown SQL driver in {scheme}://; known schemes: {', '.join(KNOWN_SCHEMES)}"
                ) from None
            except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
                raise ConfigError(f"bad URL {_redacted(url)}: {exc}") from None
        if base in ("redis", "rediss"):
            from qadmin.backends.redis import RedisBackend

            return RedisBackend(url, options)
    except ImportError as exc:
        module = (exc.name or "").split(".", 1)[0]
        if module not in DRIVER_INSTALL:
            raise
        raise ConfigError(
            f"{scheme}:// needs the {module} driver, which is not installed: {DRIVER_INSTALL[module]}"
        ) from None
    raise ConfigError(f"unknown URL scheme {scheme + '://' if scheme else url!r}; known: {', '.join(KNOWN_SCHEMES)}")


def _redacted(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _check_url(url: str, base: str) -> None:
    """Refuse what drivers would misread or crash on: a broken host or port, and a Redis
    database that is not a number (redis-py quietly uses database 0 for `redis://host/abc`)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError as exc:
        raise ConfigError(f"bad URL {_redacted(url)}: {exc}") from None
    if base.startswith("redis") and not url.lower().startswith("redis+sentinel"):
        db = parts.path.strip("/")
        if db and not (db.isascii() and db.isdigit() and int(db) < 2**31):
            raise ConfigError(
                f"bad Redis URL {_redacted(url)}: the database {db!r} is not a number (redis://HOST:PORT/0)"
            )
