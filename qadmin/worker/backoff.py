"""Timing around failures: when a failed job runs again, and how the worker waits out a backend
that cannot be reached (at start-up, between claims, and while it records an outcome)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from qadmin.backends.base import Backend
from qadmin.errors import BackendUnavailable
from qadmin.job import backoff_seconds

#: the worker's modules share one logger: its name is what operators filter on
log = logging.getLogger("qadmin.worker")

#: tries to record one outcome before its lock is left to go stale
OUTCOME_TRIES = 8


class Backoff:
    """Waits that double after each failed attempt, up to `cap`; `reset()` after a success. With
    `event`, a wait ends early when it is set (the worker is stopping)."""

    def __init__(self, first: float = 1.0, cap: float = 30.0, event: threading.Event | None = None) -> None:
        self.first, self.cap, self.event = first, cap, event
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    def wait(self) -> None:
        if self.event is None:
            time.sleep(self.delay)
        else:
            self.event.wait(self.delay)
        self.delay = min(self.delay * 2, self.cap)


def retry_time(attempts: int, max_attempts: int, now: datetime) -> datetime | None:
    """When a job that has failed `attempts` times runs again (delayed_job's backoff), or None
    when it has used all of its `max_attempts`."""
    if attempts >= max_attempts:
        return None
    return now + timedelta(seconds=backoff_seconds(attempts))


def record_outcome(write: Callable[[], None]) -> None:
    """Record an outcome, riding out a short backend outage (the job already ran)."""
    backoff = Backoff(first=0.5, cap=10.0)  # not cut short by a stop: the job already ran
    for attempt in range(OUTCOME_TRIES):
        try:
            write()
            return
        except BackendUnavailable as exc:
            if attempt == OUTCOME_TRIES - 1:
                log.error("could not record a job outcome, its lock will go stale and it will run again: %s", exc)
                return
            log.warning("backend unavailable (%s); retrying to record the outcome in %.1fs", exc, backoff.delay)
            backoff.wait()


def wait_for_backend(backend: Backend) -> bool:
    """Check the backend until it answers, saying so and backing off while it cannot be reached
    (a worker host often boots before its database). Other errors (a missing table, ...) are
    raised. False if SIGTERM or SIGINT came first."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    backoff = Backoff(event=stop)
    try:
        while not stop.is_set():
            try:
                backend.check()
                if backoff.delay != backoff.first:
                    log.info("backend reachable: starting")
                return True
            except BackendUnavailable as exc:
                log.warning("%s; waiting for it (next try in %.0fs)", exc, backoff.delay)
                backoff.wait()
        log.info("stopped while waiting for the backend")
        return False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
