"""`qadmin.Waiting`: what a job raises when it has handed its work to an external service, which
reports back later (`qadmin complete ID` / `qadmin fail ID`). No I/O here, and nothing of qadmin's
imported: the examples (the lowest layer) raise it."""

from __future__ import annotations

from datetime import datetime, timedelta

#: how long a waiting job waits for its service when its job names no timeout
DEFAULT_WAIT_TIMEOUT = 24 * 3600.0


class Waiting(Exception):  # noqa: N818 - a signal, not an error: the job is not failing
    """Raised by a job to end its run in the waiting state: not completed, not failed, claimed by
    no worker, until reported back or `timeout` seconds have passed (then it fails)."""

    def __init__(self, timeout: float | None = None) -> None:
        if timeout is not None and timeout <= 0:
            raise ValueError("a waiting job's timeout is a positive number of seconds")
        self.timeout = DEFAULT_WAIT_TIMEOUT if timeout is None else float(timeout)
        super().__init__(f"waiting for an external service (at most {self.timeout:g}s)")

    def deadline(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.timeout)


def timeout_error(since: datetime | None, until: datetime) -> str:
    """The error a waiting job fails with when nothing reported back before its deadline."""
    waited = "" if since is None else f" ({(until - since).total_seconds():g}s)"
    return f"WaitingTimeout: the external service did not report back within its deadline{waited}"
