"""What a worker records for the history charts (`qadmin.insight`): every run's outcome and
runtime and every claimed job's wait, counted in memory per minute, queue and class, and written
through `Backend.record_history` every `FLUSH_EVERY` seconds and when the worker stops.

Counting costs a dictionary lookup per run; the write is one statement batch (SQL) or one script
call (Redis) per flush, whatever the number of jobs. A flush that fails (the backend is down)
keeps its counts for the next one, up to `MAX_BUFFERED` samples (the oldest minutes go first),
and never stops the worker. Once a minute the worker also samples the age of the oldest ready job
of each queue it serves (`Backend.oldest_ready`), so a queue's latency shows while no worker
claims from it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from qadmin.backends.base import Backend
from qadmin.insight import HistorySample
from qadmin.job import Job
from qadmin.waiting import Waiting

log = logging.getLogger("qadmin.worker")

#: seconds between two writes of a busy worker's counts
FLUSH_EVERY = 10.0
#: seconds between two samples of the served queues' oldest ready job
LATENCY_EVERY = 60.0
ONE_MINUTE = timedelta(minutes=1)
#: samples kept while the backend cannot be written (a day of one busy queue and class, and more)
MAX_BUFFERED = 20_000


class HistoryRecorder:
    """A worker's history counts. `settled` after every run (the worker's `_settle`), `flush`
    whenever the worker flushes its other counts (idle, and at its stop)."""

    def __init__(
        self,
        backend: Backend,
        queues: Sequence[str],
        max_attempts: int,
        *,
        enabled: bool = True,
        clock: Callable[[], datetime],
    ) -> None:
        self.backend = backend
        self.queues = list(queues)
        self.max_attempts = max_attempts
        self.enabled = enabled
        self.clock = clock
        self._samples: dict[tuple[datetime, str, str], HistorySample] = {}
        self._next_flush = time.monotonic() + FLUSH_EVERY
        self._next_latency = time.monotonic()
        self._warned = False
        #: the sample the last run went to, and its minute's bounds
        self._last: HistorySample | None = None
        self._last_minute = self._last_end = datetime.min

    def _sample(self, minute: datetime, queue: str, job_class: str) -> HistorySample:
        key = (minute, queue, job_class)
        sample = self._samples.get(key)
        if sample is None:
            sample = self._samples[key] = HistorySample(minute, queue, job_class)
        return sample

    def settled(self, job: Job, runtime: float, error: str | None, cancelled: bool, waiting: Waiting | None) -> None:
        """Count a run that ended: succeeded (processed), failed with attempts left (retried) or
        without (failed); a cancelled or parked run counts only its wait. The failure's kind is
        delayed_job's rule, as the worker's `_fail` applies it."""
        if not self.enabled:
            return
        started = self.clock() - timedelta(seconds=runtime)
        queue = job.queue or ""
        # a busy worker's runs mostly fall in the minute, queue and class of the run before
        sample = self._last
        if (
            sample is None
            or not self._last_minute <= started < self._last_end
            or sample.queue != queue
            or sample.job_class != job.class_name
        ):
            minute = started.replace(second=0, microsecond=0)
            sample = self._last = self._sample(minute, queue, job.class_name)
            self._last_minute, self._last_end = minute, minute + ONE_MINUTE
        ready = job.run_at or job.created_at
        if ready is not None:
            waited = (started - ready).total_seconds()
            if sample.latency is None or waited > sample.latency:
                sample.latency = max(waited, 0.0)
        if not cancelled and (error is not None or waiting is None):
            sample.add_run(runtime)
            if error is None:
                sample.processed += 1
            elif job.attempts + 1 >= (job.max_attempts or self.max_attempts):
                sample.failed += 1
            else:
                sample.retried += 1
        if time.monotonic() >= self._next_flush:
            self.flush()

    def sample_latency(self) -> None:
        """The served queues' oldest ready job, as each queue's latency this minute (at most once
        per `LATENCY_EVERY`)."""
        at = time.monotonic()
        if at < self._next_latency:
            return
        self._next_latency = at + LATENCY_EVERY
        now = self.clock()
        minute = now.replace(second=0, microsecond=0)
        for queue, since in self.backend.oldest_ready(self.queues, now).items():
            # the class is unknown here: "" stands for "any class" in the queue's latency
            self._sample(minute, queue, "").add_latency(max((now - since).total_seconds(), 0.0))

    def flush(self) -> None:
        """Write the counts (and a latency sample when due); on failure keep them for the next
        flush, within `MAX_BUFFERED`. Never raises."""
        if not self.enabled:
            return
        self._next_flush = time.monotonic() + FLUSH_EVERY
        try:
            self.sample_latency()
        except Exception as exc:  # noqa: BLE001 - a chart's sample must never stop the worker
            log.debug("could not sample the queues' latency: %s", exc)
        if not self._samples:
            return
        taken, self._samples = self._samples, {}
        self._last = None
        try:
            self.backend.record_history(list(taken.values()))
            self._warned = False
        except Exception as exc:  # noqa: BLE001 - history is never worth a worker
            if not self._warned:
                log.warning("could not write history (kept for the next try): %s", exc)
                self._warned = True
            self._keep(taken)

    def _keep(self, taken: dict[tuple[datetime, str, str], HistorySample]) -> None:
        """Put unwritten samples back, merged with any counted since, the oldest minutes dropped
        beyond `MAX_BUFFERED`."""
        for key, old in taken.items():
            new = self._samples.get(key)
            if new is None:
                self._samples[key] = old
                continue
            new.add(old)
        if len(self._samples) > MAX_BUFFERED:
            for key in sorted(self._samples)[: len(self._samples) - MAX_BUFFERED]:
                del self._samples[key]
