"""RQ's workers as the benchmarks run them: RQ's own classes, changed only in how they stop.

RQ 3.0's `unsubscribe()` (the last step of a burst, after the last job and the worker's death are
recorded) stops its pub/sub thread; redis-py 8.2's `PubSubWorkerThread.stop()` waits for that
thread, which sits in a read of up to 60 s whenever it took the unsubscribe reply before it was
told to stop. Nothing measured happens then (the stamp jobs time the run), but a worker took a
minute of wall time to exit, a run of the smoke tests several. Here the wait is bounded, as RQ's
own `join(timeout=1)` after it means it to be; the daemon thread closes its connection itself.
"""

from __future__ import annotations

from rq.worker import SimpleWorker as _SimpleWorker
from rq.worker import Worker as _Worker


class _BoundedUnsubscribe:
    pubsub = None
    pubsub_thread = None

    def unsubscribe(self) -> None:
        if self.pubsub_thread:
            self.pubsub.unsubscribe()
            try:
                self.pubsub_thread.stop(timeout=1)
            except TypeError:  # redis-py before 8.2: stop() takes no timeout, and does not wait
                self.pubsub_thread.stop()
                self.pubsub_thread.join(timeout=1)


class SimpleWorker(_BoundedUnsubscribe, _SimpleWorker):
    """Runs each job in the worker process."""


class Worker(_BoundedUnsubscribe, _Worker):
    """Forks a work horse per job (RQ's default)."""
