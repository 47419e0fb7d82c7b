"""The worker: claim -> run -> complete or fail with backoff, through any Backend's `WorkerSession`.

delayed_job's semantics made safe (docs/compatibility.md §8.7): jobs are claimed
atomically by priority then run_at; a failure is retried after `attempts**4 + 5` seconds until
`max_attempts`, then kept as failed; a job over `max_run_time` is interrupted and failed; SIGTERM
or SIGINT finish the current job, then stop. Only jobs the worker can decode and whose class it
can resolve are ever claimed: everything else stays where it is for its own workers.

`loop` is the worker loop, `async_pool` its variant that runs `async def` jobs N at once on one
event loop (`--pool async`; `async_running` runs one there), `running` runs a job's code (hooks,
async jobs, the time limit), `forked` runs it in a child process (`--fork`), `backoff` times retries and waits out an
unreachable backend, `options` holds what a worker is told and its exit codes.
"""

from qadmin.backends.owners import worker_name
from qadmin.job import backoff_seconds
from qadmin.worker.async_pool import AsyncWorker, refuse_async_options
from qadmin.worker.backoff import wait_for_backend
from qadmin.worker.loop import Worker
from qadmin.worker.memory import current_rss_mb
from qadmin.worker.options import EXIT_CANNOT_START, EXIT_DONE, EXIT_RECYCLE, WorkerOptions
from qadmin.worker.running import JobTimeout, format_error, job_max_run_time

__all__ = [
    "AsyncWorker",
    "EXIT_CANNOT_START",
    "EXIT_DONE",
    "EXIT_RECYCLE",
    "JobTimeout",
    "Worker",
    "WorkerOptions",
    "backoff_seconds",
    "current_rss_mb",
    "format_error",
    "job_max_run_time",
    "refuse_async_options",
    "wait_for_backend",
    "worker_name",
]
