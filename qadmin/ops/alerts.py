"""`ops.alerts`: the rules of `[alerts]` evaluated now, incidents opened and resolved, their
messages sent once each.

A check (`check`) is safe to run in any number of processes at once (the scheduler, the web
process, on several hosts): the backend's compare-and-set lets one of them open (or resolve) an
incident, and one of them claim each message for a lease before sending it. A message that could
not be delivered (the webhook down) stays unsent and is tried again at the next check, by any
process; once delivered it is recorded on the incident and never sent again. An incident whose
firing message never got through is announced before its resolution, so the receiver's story is
whole. The open incident of a rule no longer configured is resolved (without a message: its
webhook is not known any more).

- failure_rate: (failed + retried) / runs of the recorded history (`Backend.history`) over the
  rule's window, narrowed to its class and queue; fires above the threshold with at least
  `min_runs` runs.
- latency: the age of the oldest ready job of the queue (of every queue without one). A Resque
  queue whose payloads carry no enqueue time (qadmin's and Ruby Resque's do not; php-resque's
  `queue_time` does) uses the longest wait its workers recorded in the last five minutes.
- no_worker: no live worker serves the queue (by name or `*`), and none has for the rule's `for`:
  since the last heartbeat of a dead one still registered, or at once when none ever was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from qadmin.alert_rules import (
    FAILURE_RATE,
    FIRING,
    LATENCY,
    RESOLVED,
    AlertConfig,
    AlertRule,
    Incident,
    RuleState,
    format_duration,
)
from qadmin.backends import Backend
from qadmin.errors import QadminError
from qadmin.insight import HOUR, MINUTE
from qadmin.job import QueueInfo, WorkerInfo
from qadmin.ops.webhook import Sender, WebhookError, message, post_webhook

log = logging.getLogger("qadmin.alerts")

#: how long a claimed message is another sender's to retry only after (several webhook timeouts)
DELIVERY_LEASE = 30.0
#: how far back a queue without enqueue times looks for the waits its workers recorded, seconds
RECORDED_LATENCY_SPAN = 300.0


@dataclass
class CheckReport:
    """What one check saw and did (or, with `dry_run`, would do)."""

    states: list[RuleState]
    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    #: (rule, "firing" | "resolved") delivered, and those that failed with why
    sent: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "rules": [s.to_dict() for s in self.states],
            "opened": self.opened,
            "resolved": self.resolved,
            "sent": [{"rule": r, "message": m} for r, m in self.sent],
            "failed": [{"rule": r, "message": m, "error": e} for r, m, e in self.failed],
        }


class _Readings:
    """What the rules of one check read, each at most once."""

    def __init__(self, backend: Backend, now: datetime) -> None:
        self.backend = backend
        self.now = now
        self._queues: list[QueueInfo] | None = None
        self._workers: list[WorkerInfo] | None = None

    def queues(self) -> list[QueueInfo]:
        if self._queues is None:
            self._queues = self.backend.queues(self.now)
        return self._queues

    def workers(self) -> list[WorkerInfo]:
        if self._workers is None:
            self._workers = self.backend.workers(self.now)
        return self._workers


class AlertsOps:
    def __init__(self, backend: Backend, *, clock: Callable[[], datetime], send: Sender = post_webhook) -> None:
        self.backend = backend
        self.clock = clock
        self.send = send

    # --- reading -------------------------------------------------------------------------------
    def incidents(self) -> list[Incident]:
        """Every stored incident (open, and each rule's last resolved one)."""
        return self.backend.alert_incidents(self.clock())

    def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents() if i.open]

    def evaluate(self, config: AlertConfig) -> list[RuleState]:
        """Each rule evaluated now, with its stored incident; changes nothing."""
        now = self.clock()
        incidents = {i.rule: i for i in self.backend.alert_incidents(now)}
        readings = _Readings(self.backend, now)
        return [self._state(rule, readings, incidents.get(rule.name)) for rule in config.rules]

    # --- checking ------------------------------------------------------------------------------
    def check(self, config: AlertConfig, *, dry_run: bool = False) -> CheckReport:
        """Evaluate every rule; open an incident for each that fires without one, resolve the open
        incident of each that no longer fires; send the messages not yet delivered. `dry_run`
        reports what would open and resolve, and changes and sends nothing."""
        states = self.evaluate(config)
        report = CheckReport(states, dry_run=dry_run)
        now = self.clock()
        for state in states:
            if state.error is not None:
                continue  # a reading that failed says nothing about the incident
            is_open = state.incident is not None and state.incident.open
            name = state.rule.name
            if state.firing and not is_open:
                if dry_run or self.backend.open_incident(name, now, state.details):
                    report.opened.append(name)
                    if not dry_run:
                        log.warning("alert %r firing: %s", name, state.details)
            elif not state.firing and is_open:
                if dry_run or self.backend.resolve_incident(name, now):
                    report.resolved.append(name)
                    if not dry_run:
                        log.warning("alert %r resolved", name)
        configured = {rule.name for rule in config.rules}
        for incident in self.backend.alert_incidents(now):
            # a rule taken out of qadmin.toml: its incident would stay open on the overviews for ever
            if incident.open and incident.rule not in configured:
                if dry_run or self.backend.resolve_incident(incident.rule, now):
                    report.resolved.append(incident.rule)
        if not dry_run:
            self._deliver(config, report)
        return report

    def _deliver(self, config: AlertConfig, report: CheckReport) -> None:
        incidents = {i.rule: i for i in self.backend.alert_incidents(self.clock())}
        #: webhooks that failed in this check: not tried again before the next one, so a webhook
        #: that is down costs one timeout per check, not one per message
        down: set[str] = set()
        for rule in config.rules:
            incident = incidents.get(rule.name)
            if rule.webhook is None or incident is None or rule.webhook in down:
                continue
            if incident.firing_sent_at is None and not self._send(rule, incident, FIRING, report, down):
                continue  # the resolution waits for the firing message
            if not incident.open and incident.resolved_sent_at is None:
                self._send(rule, incident, RESOLVED, report, down)

    def _send(self, rule: AlertRule, incident: Incident, kind: str, report: CheckReport, down: set[str]) -> bool:
        """Claim, send and record one message; True when it is delivered (by us, now)."""
        assert rule.webhook is not None
        if not self.backend.claim_alert_delivery(rule.name, incident.opened_at, kind, self.clock(), DELIVERY_LEASE):
            return False  # another process sends it, or did
        try:
            self.send(rule.webhook, message(rule, incident, kind, self.backend.safe_url))
        except WebhookError as exc:
            log.warning("alert %r: the %s message was not delivered, will retry: %s", rule.name, kind, exc)
            report.failed.append((rule.name, kind, str(exc)))
            down.add(rule.webhook)
            self.backend.finish_alert_delivery(rule.name, incident.opened_at, kind, None)
            return False
        self.backend.finish_alert_delivery(rule.name, incident.opened_at, kind, self.clock())
        report.sent.append((rule.name, kind))
        return True

    # --- the rules -----------------------------------------------------------------------------
    def _state(self, rule: AlertRule, readings: _Readings, incident: Incident | None) -> RuleState:
        try:
            if rule.kind == FAILURE_RATE:
                firing, value, details = self._failure_rate(rule, readings.now)
            elif rule.kind == LATENCY:
                firing, value, details = self._latency(rule, readings)
            else:
                firing, value, details = self._no_worker(rule, readings)
        except QadminError as exc:
            log.warning("alert %r cannot be evaluated: %s", rule.name, exc)
            return RuleState(rule, False, f"cannot evaluate: {exc}", None, incident, error=str(exc))
        return RuleState(rule, firing, details, value, incident)

    def _failure_rate(self, rule: AlertRule, now: datetime) -> tuple[bool, float | None, str]:
        since = now - timedelta(seconds=rule.window)
        resolution = MINUTE if rule.window <= self.backend.options.history_minutes else HOUR
        rows = self.backend.history(resolution, since, now, queue=rule.queue, job_class=rule.job_class)
        runs = sum(r.processed + r.failed + r.retried for r in rows)
        bad = sum(r.failed + r.retried for r in rows)
        rate = bad / runs if runs else 0.0
        span = format_duration(rule.window)
        details = f"{bad} of {runs} runs failed ({rate:.0%}) in the last {span}"
        if runs < rule.min_runs:
            details += f"; fewer than {rule.min_runs} runs"
        return runs >= rule.min_runs and rate > rule.threshold, rate if runs else None, details

    def _latency(self, rule: AlertRule, readings: _Readings) -> tuple[bool, float | None, str]:
        queues = [q for q in readings.queues() if rule.queue is None or q.name == rule.queue]
        ages = [
            ((readings.now - q.oldest_pending_at).total_seconds(), q.name)
            for q in queues
            if q.oldest_pending_at is not None
        ]
        # a Resque payload carries no enqueue time unless its producer wrote one (php-resque's
        # queue_time): for such a queue, the longest wait its workers recorded lately
        unknown = {q.name for q in queues if q.oldest_pending_at is None and q.counts.get("pending", 0) > 0}
        if unknown:
            since = readings.now - timedelta(seconds=RECORDED_LATENCY_SPAN)
            for row in self.backend.history(MINUTE, since, readings.now, queue=rule.queue):
                if row.queue in unknown and row.latency is not None:
                    ages.append((row.latency, row.queue))
        if not ages:
            return False, 0.0, f"no ready job in {rule.scope() or 'any queue'}"
        age, name = max(ages)
        age = max(age, 0.0)
        return (
            age > rule.above,
            age,
            f"the oldest ready job of queue {name} has waited {format_duration(round(age))}",
        )

    def _no_worker(self, rule: AlertRule, readings: _Readings) -> tuple[bool, float | None, str]:
        assert rule.queue is not None
        serving = [w for w in readings.workers() if "*" in w.queues or rule.queue in w.queues]
        live = [w for w in serving if not w.stale]
        if live:
            return False, float(len(live)), f"{len(live)} live worker(s) serve queue {rule.queue}"
        beats = [w.heartbeat_at for w in serving if w.heartbeat_at is not None]
        if not beats:
            return True, 0.0, f"no worker serves queue {rule.queue}"
        last = max(beats)
        unserved = (readings.now - last).total_seconds()
        return (
            unserved >= rule.duration,
            0.0,
            f"no live worker has served queue {rule.queue} since {last.isoformat(timespec='seconds')}",
        )
