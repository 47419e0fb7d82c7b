"""`RedisWorkerSession`: one worker's verbs on Redis and everything it keeps between calls (its
own connection for script calls, its claims' memory, the jobs it holds, the successes waiting to
be written). The backend keeps none of it: the web and the TUI share the backend.

How a success travels (`SuccessWrites`):

- AWAITED: its call's reply is read before the worker runs its next job.
- PIPELINED (the default): a worker that holds prefetched jobs sends the success on its own
  connection and starts its next job without reading the reply; the next use of the connection
  or of the waiting successes reads it. The call is in the kernel's hands before the next job
  starts, and the kernel delivers what a killed process sent, so a SIGKILL still reruns at most
  the job in hand. Until its reply is read the success stays waiting: an error reply or a dropped
  connection sends it again with the next call, which records nothing twice (claim.lua records
  an outcome only while its lock is there). A worker holding no other job needs the reply (its
  next locks come with it): it waits.

Deferred successes (opt-in: `defer_successes`, `qadmin worker --defer-acks`) go further: a
success then waits for the worker's next call (the next outcome, or the claim after the batch),
so a batch of N jobs costs one round trip. It waits only for a registered worker (its heartbeats
write what waits), at most `DEFER_FOR`, and only while the worker still holds other jobs; flush(),
heartbeats, releases, failures and unregistering write what waits. A worker killed meanwhile
leaves the job in the locked set: recovered as any stale lock, it runs again (never lost).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from qadmin.backends.base import retention_cutoffs
from qadmin.backends.redis import waiting
from qadmin.backends.redis.cancel import request_of, requested_for
from qadmin.backends.redis.claims import Claims, ClaimState, Done, Held
from qadmin.backends.redis.outcomes import Outcomes
from qadmin.backends.redis.own_connection import OwnConnection
from qadmin.backends.redis.pauses import Pauses
from qadmin.backends.redis.prune import RedisPrune
from qadmin.backends.redis.rescue import Rescue
from qadmin.backends.redis.server import Server
from qadmin.backends.redis.workers import Workers
from qadmin.job import Job, JobId, WorkerInfo, utcnow
from qadmin.model import Attempt, PruneReport

#: successes a worker's next call may carry, and how long one may wait for it (seconds)
DEFER_MAX = 100
DEFER_FOR = 0.5


class SuccessWrites(Enum):
    """How a session writes a success while the worker holds prefetched jobs (module docstring)."""

    AWAITED = "awaited"
    PIPELINED = "pipelined"


class RedisWorkerSession:
    """One worker loop's session (`qadmin.backends.base.WorkerSession`). Its verbs run on the
    worker's thread, `heartbeat` on its heartbeat thread: what both touch is guarded."""

    def __init__(
        self,
        server: Server,
        worker: str,
        *,
        workers: Workers,
        pauses: Pauses,
        rescuer: Rescue,
        move_due: Callable[[datetime], int],
        pruner: RedisPrune,
        settle_cancels: Callable[[datetime, str], list[JobId]],
        defer_successes: bool = False,
        success_writes: SuccessWrites = SuccessWrites.PIPELINED,
        own: OwnConnection[Any] | None = None,
    ) -> None:
        self.worker = worker
        self.server = server
        #: a registered worker's successes may wait for its next call (module docstring)
        self.defer_successes = defer_successes
        self.success_writes = success_writes
        self._workers = workers
        self._pauses = pauses
        self._rescuer = rescuer
        self._pruner = pruner
        self._settle_cancels = settle_cancels
        self._mutex = threading.RLock()
        #: successes not written yet, in order; the ids of those sent whose reply is unread
        self._deferred: list[Done] = []
        self._sending: set[int] = set()
        self._record: dict[str, Any] | None = None
        self._rid: str | None = None
        self._rid_known = False
        self.held: Held = {}
        self.own: OwnConnection[list[Done]] = own if own is not None else OwnConnection(server, self._replies)
        self.claims = Claims(server, self.own, worker, self.held, self.rid, self._settle, move_due)
        self.outcomes = Outcomes(server, worker, self.held, self.rid)
        #: the calls that only write successes serve no queue: what they send alike is built once
        self._acks = ClaimState(())

    def rid(self) -> str | None:
        """This worker's Resque id, once registered (read from its record when another session
        or process registered it)."""
        if not self._rid_known:
            self._rid = self.server.rid(self.worker)
            self._rid_known = True
        return self._rid

    # --- the worker contract ------------------------------------------------------------------
    def claim(
        self,
        queues: Sequence[str],
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int = 1,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        # successes not written yet go with the first call
        return self.claims.claim(queues, now, max_run_time, can_run, limit, skip_ids, self._waiting())

    def complete(self, job: Job, now: datetime, runtime: float, result: str | None = None) -> None:
        done = self.outcomes.completion(job, now, runtime, result)
        if done is None:  # a php-resque status to keep in step, or a lock not remembered here
            self._write_deferred()
            self.outcomes.complete(job, now, runtime, result)
            return
        with self._mutex:
            self._deferred.append(done)
        if self._may_wait():
            return
        if self.success_writes is SuccessWrites.PIPELINED and self._holds_more() and self._send_deferred():
            return
        self._write_deferred()

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
        result: str | None = None,
    ) -> list[Job]:
        """Usually one round trip, which records the outcome, locks the jobs chosen from the
        previous read of the queues and reads them again. Repeating it after BackendUnavailable
        neither counts the job twice (the outcome is recorded only while this worker's lock on it
        is still there to remove) nor loses it."""
        done = self.outcomes.completion(job, now, runtime, result)
        if done is None:
            self.complete(job, now, runtime, result)
        else:
            with self._mutex:
                self._deferred.append(done)
        return self.claim(queues, now, max_run_time, can_run, limit, skip_ids)

    def fail(
        self, job: Job, now: datetime, error: str, retry_at: datetime | None, runtime: float | None = None
    ) -> None:
        self._write_deferred()
        self.outcomes.fail(job, now, error, retry_at, Attempt.span(now, runtime))

    def refresh(self, job: Job, now: datetime) -> bool:
        self._write_deferred()
        return self.outcomes.refresh(job, now)

    def release(self, jobs: Sequence[Job]) -> None:
        self._write_deferred()
        self.outcomes.release(jobs)

    def register(self, info: WorkerInfo) -> None:
        record = self._workers.register(info)
        self._record = record
        self._rid, self._rid_known = record["rid"], True

    def heartbeat(
        self, now: datetime, current_job: JobId | None, job_started_at: datetime | None, processed: int, failed: int
    ) -> None:
        self._write_deferred()  # a success waits for the next call at most until then
        self._workers.heartbeat(self.worker, self._record, now, current_job, job_started_at, processed, failed)

    def unregister(self) -> None:
        self._write_deferred()
        self._workers.unregister(self.worker, self.rid())
        self._record = None
        self._rid, self._rid_known = None, False

    def rescue(self, now: datetime) -> dict[str, list[JobId]]:
        return self._rescuer.rescue(self.worker, now)

    def wait(self, job: Job, now: datetime, until: datetime) -> bool:
        self._write_deferred()
        return waiting.wait(self.outcomes, job, now, until)

    def settle_cancels(self, now: datetime) -> list[JobId]:
        return self._settle_cancels(now, "worker")

    def expire_waiting(self, now: datetime) -> list[JobId]:
        return waiting.Waiting(self.server).expire(now)

    def cancel_requested(self, job: Job) -> bool:
        with self.server.wrap():
            raw = self.server.client.hget(self.server.keys.cancels, str(job.id))
        return requested_for(request_of(raw), job)

    def cancelled(self, job: Job, now: datetime) -> bool:
        self._write_deferred()
        return self.outcomes.cancelled(job, now)

    def paused(self) -> list[str]:
        return self._pauses.paused()

    def flush(self) -> None:
        self._write_deferred()

    def close(self) -> None:
        self.flush()
        self.own.close()

    # --- successes waiting ----------------------------------------------------------------------
    def _waiting(self, drain: bool = True) -> list[Done]:
        """The successes to write with the next call: those waiting, less those sent whose reply
        is still to read (when read, they are settled, or left for a next call)."""
        if drain:
            self.own.drain()
        with self._mutex:
            return [d for d in self._deferred if id(d) not in self._sending]

    def _may_wait(self) -> bool:
        if not self.defer_successes or self._record is None:  # only a registered worker: its beats write
            return False
        with self._mutex:
            waiting = self._deferred
            if not waiting or len(waiting) >= DEFER_MAX or time.monotonic() - waiting[0].at >= DEFER_FOR:
                return False
        return self._holds_more()

    def _holds_more(self) -> bool:
        """Whether the worker holds jobs besides those whose successes wait: prefetched jobs it
        will run next, without needing a reply to get them."""
        with self._mutex:
            ids = {d.job_id for d in self._deferred}
            return any(job_id not in ids for job_id in self.held)

    def _send_deferred(self) -> bool:
        """Send the waiting successes without reading the reply (PIPELINED); False when they
        must be written and waited for instead."""
        dones = self._waiting(drain=False)
        if not dones:
            return True  # written meanwhile by another thread
        keys, args = self.claims.args(self._acks, self.rid(), utcnow(), [], 0, 0, dones)
        ids = {id(d) for d in dones}
        with self._mutex:
            self._sending |= ids
        if self.own.send(self.server.scripts.claim, keys, args, dones):
            return True
        with self._mutex:
            self._sending -= ids
        return False

    def _replies(self, sent: list[list[Done]], applied: list[list[Done]]) -> None:
        """The replies of sent calls were read (or lost): the successes of those that ran are written."""
        with self._mutex:
            for dones in sent:
                self._sending -= {id(d) for d in dones}
        for dones in applied:
            self._settle(dones)

    def _settle(self, dones: Sequence[Done]) -> None:
        """These successes are written: forget them and their locks."""
        if not dones:
            return
        with self._mutex:
            written = {id(d) for d in dones}
            self._deferred = [d for d in self._deferred if id(d) not in written]
            for d in dones:
                self.held.pop(d.job_id, None)

    def _write_deferred(self) -> None:
        """Write the successes waiting for the worker's next call, and wait for the reply."""
        dones = self._waiting()
        if dones:
            self.claims.call(self._acks, self.rid(), utcnow(), [], 0, 0, dones)
            self._settle(dones)

    def prune_if_due(self, now: datetime) -> PruneReport | None:
        options = self.server.options
        if options.prune_every is None or not self._pruner.take_turn(now, options.prune_every):
            return None
        failed, finished, workers = retention_cutoffs(options, now)
        report = self._pruner.prune(now, failed_before=failed, finished_before=finished, workers_before=workers)
        if report.total:  # an hourly prune that found nothing is not worth an audit entry
            self._pruner.audit.record(report.audit_entry(now, self.worker, "worker"), report.failed_ids)
        return report
