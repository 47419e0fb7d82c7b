"""What a worker is told (`WorkerOptions`), and the exit codes it answers its supervisor with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qadmin.job import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_RUN_TIME

#: exit codes a worker process uses to talk to its supervisor
EXIT_DONE = 0
EXIT_RECYCLE = 3
#: the worker cannot work with this backend (an error no wait mends): not restarted
EXIT_CANNOT_START = 4


@dataclass
class WorkerOptions:
    queues: Sequence[str] = ("*",)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_run_time: float = DEFAULT_MAX_RUN_TIME
    sleep: float = 5.0
    burst: bool = False
    count: int | None = None
    fork: bool = False
    max_jobs: int | None = None
    max_memory_mb: float | None = None
    heartbeat_interval: float = 5.0
    #: seconds between looks for jobs of dead qadmin workers to give back (`WorkerSession.rescue`),
    #: the first at start-up; 0 never looks
    rescue_interval: float = 15.0
    name: str | None = None
    #: jobs locked per claim (1 = claim one job at a time); the rest wait, locked, in the worker
    prefetch: int = 1
    #: let successes wait (briefly) to be written with the worker's next call, where the backend
    #: can: fewer round trips, but a SIGKILL then reruns the jobs whose success was waiting
    defer_acks: bool = False
    #: modules or packages whose classes and functions this worker runs (besides registered names)
    imports: Sequence[str] = ()
    #: count runs per minute, queue and class for the history charts (`[history] record`)
    record_history: bool = True
