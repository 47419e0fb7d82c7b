"""`qadmin scheduler`: the loop that enqueues recurring schedules' jobs, tick by tick.

At start it stores the schedules `qadmin.toml` declares (`sync`). Then, pass after pass, it fires
each enabled schedule whose latest tick is later than the last one fired, through
`Backend.fire_schedule`, whose compare-and-set keeps each tick to one job however many schedulers
run on however many hosts; it sleeps until the next tick or `poll` seconds, whichever comes first.

- A scheduler that was down fires one job for the latest tick it missed, not one per missed tick.
- It never imports job code: a class no worker can import is still enqueued (the worker reports it).
- The schedules of `qadmin.toml` (source "qadmin.toml") follow the file: one declared there is
  created, or replaced when its definition changed (its tick memory kept); one no longer there is
  removed. Schedules from other sources (the Python API, the consoles, resque-scheduler) are left
  alone. An operator's disable outlives restarts; `enabled = false` in the file always disables.
  A scheduler started without a config file syncs nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from qadmin.alert_rules import AlertConfig
from qadmin.errors import QadminError, ScheduleNotFound
from qadmin.job import Job, utcnow
from qadmin.ops import Ops
from qadmin.ops.recurring import new_job_for
from qadmin.recurring import SOURCE_CONFIG, RecurringEntry, Schedule

log = logging.getLogger("qadmin.scheduler")

#: the longest sleep between passes, in seconds (`--poll`): how soon a schedule saved or enabled
#: elsewhere is seen
DEFAULT_POLL = 5.0
#: how long a leader's lock lasts without being extended (Redis: resque-scheduler's master lock),
#: at least three polls: a scheduler that died hands over to another after this
LEADER_TTL = 60.0
#: woken this long after a tick, so that the tick is the latest at or before the clock
_AFTER_TICK = timedelta(milliseconds=20)


@dataclass
class SyncReport:
    """What `Scheduler.sync` changed: the names saved (new or changed) and removed."""

    saved: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def holder_name() -> str:
    """This process as the leader lock names it: HOST:PID."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Scheduler:
    def __init__(
        self,
        ops: Ops,
        *,
        poll: float = DEFAULT_POLL,
        holder: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        alerts: AlertConfig | None = None,
    ) -> None:
        self.ops = ops
        #: `[alerts]`, checked after the passes when it says "scheduler" (`check_alerts`)
        self.alerts = alerts if alerts is not None and alerts.evaluated_in("scheduler") else None
        self._alerts_checked: datetime | None = None
        self.poll = poll
        self.holder = holder or holder_name()
        self.leader_ttl = max(LEADER_TTL, 3 * poll)
        self.clock = clock
        self._stop = threading.Event()

    # --- the schedules of qadmin.toml --------------------------------------------------------
    def sync(self, declared: Sequence[Schedule]) -> SyncReport:
        """Make the stored "qadmin.toml" schedules those `declared` (module docstring)."""
        report = SyncReport()
        stored = {e.schedule.name: e for e in self.ops.recurring.entries()}
        for schedule in declared:
            wanted = _as_stored(schedule, stored.get(schedule.name))
            current = stored.get(schedule.name)
            if current is None or current.schedule != wanted:
                self.ops.recurring.save(wanted)
                report.saved.append(wanted.name)
        names = {s.name for s in declared}
        for name, entry in stored.items():
            if entry.schedule.source == SOURCE_CONFIG and name not in names:
                try:
                    self.ops.recurring.remove(name)
                except ScheduleNotFound:  # another scheduler removed it first
                    continue
                report.removed.append(name)
        for name in report.saved:
            log.info("schedule %r stored from qadmin.toml", name)
        for name in report.removed:
            log.info("schedule %r removed: no longer in qadmin.toml", name)
        return report

    # --- the passes ----------------------------------------------------------------------------
    def run_pass(self) -> tuple[list[Job], datetime | None]:
        """Fire every due tick once: the jobs this process enqueued, and when the next tick of
        an enabled schedule comes (None: none is enabled, or another process leads)."""
        backend = self.ops.backend
        if not backend.schedule_leader(self.holder, self.leader_ttl):
            return [], None
        now = self.clock()
        fired: list[Job] = []
        upcoming: datetime | None = None
        for entry in self.ops.recurring.entries():
            schedule = entry.schedule
            if not schedule.enabled:
                continue
            job = self._fire_due(entry, now)
            if job is not None:
                fired.append(job)
            following = schedule.next_tick(now)
            upcoming = following if upcoming is None else min(upcoming, following)
        return fired, upcoming

    def _fire_due(self, entry: RecurringEntry, now: datetime) -> Job | None:
        schedule = entry.schedule
        tick = schedule.previous_tick(now)
        if entry.last_tick is not None and tick <= entry.last_tick:
            return None
        try:
            job = self.ops.backend.fire_schedule(schedule.name, tick, new_job_for(schedule), now)
        except QadminError as exc:  # one schedule's trouble must not hold up the others
            log.warning("schedule %r: tick %s not enqueued: %s", schedule.name, tick.isoformat(), exc)
            return None
        if job is not None:
            log.info(
                "schedule %r: enqueued job %s (%s on %s) for tick %s",
                schedule.name,
                job.id,
                job.class_name,
                job.queue,
                tick.isoformat(),
            )
        return job

    def run(self, declared: Sequence[Schedule] | None = None, *, once: bool = False) -> int:
        """Sync `declared` (None: nothing to sync), then fire ticks until `stop()` (or one pass
        with `once`). A backend that cannot be reached is tried again every poll."""
        log.info("scheduler %s started (poll %gs)", self.holder, self.poll)
        while not self._stop.is_set():
            try:
                if declared is not None:  # until it succeeds: the backend may come up after us
                    self.sync(declared)
                    declared = None
                _fired, upcoming = self.run_pass()
                self.check_alerts()
            except QadminError as exc:
                if once:
                    raise
                log.warning("scheduler pass failed, trying again in %gs: %s", self.poll, exc)
                upcoming = None
            if once:
                break
            wait = self.poll
            if upcoming is not None:
                wait = min(wait, max(0.0, (upcoming + _AFTER_TICK - self.clock()).total_seconds()))
            self._stop.wait(wait)
        log.info("scheduler %s stopped", self.holder)
        return 0

    def check_alerts(self) -> None:
        """The alert rules checked (`ops.alerts`), at most once per `[alerts] every`; any number
        of schedulers may check at once (each incident and message is taken by one of them)."""
        if self.alerts is None:
            return
        now = self.clock()
        if self._alerts_checked is not None and (now - self._alerts_checked).total_seconds() < self.alerts.every:
            return
        self._alerts_checked = now
        try:
            self.ops.alerts.check(self.alerts)
        except QadminError as exc:  # the schedules' ticks must not wait for the alerts
            log.warning("alert check failed, trying again in %gs: %s", self.alerts.every, exc)

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT end the loop after the pass in progress."""

        def on_signal(_signum: int, _frame: object) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)


def _as_stored(declared: Schedule, current: RecurringEntry | None) -> Schedule:
    """The file's schedule as it is stored: an operator's disable of a schedule the file declares
    is kept, and `enabled = false` in the file wins over an operator's enable."""
    keep_disabled = current is not None and current.schedule.source == SOURCE_CONFIG and not current.schedule.enabled
    return replace(declared, enabled=declared.enabled and not keep_disabled, source=SOURCE_CONFIG)


class SchedulerThread:
    """A scheduler running beside a worker in its process (`qadmin worker --scheduler`)."""

    def __init__(self, scheduler: Scheduler, declared: Sequence[Schedule] | None) -> None:
        self.scheduler = scheduler
        self.thread = threading.Thread(target=self._run, args=(declared,), name="qadmin-scheduler", daemon=True)

    def _run(self, declared: Sequence[Schedule] | None) -> None:
        try:
            self.scheduler.run(declared)
        except QadminError as exc:
            log.error("the scheduler stopped: %s", exc)

    def start(self) -> SchedulerThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.scheduler.stop()
        self.thread.join(timeout)
