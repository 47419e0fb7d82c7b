"""`ops.alerts` on SQLite, PostgreSQL and Redis, with a real webhook receiver (tests/webhook.py):
a failure burst fires once and clears once however many evaluators check, a latency rule with an
old ready job, a no_worker rule without and then with a live worker, a webhook down then up
delivers each message once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from qadmin.alert_rules import AlertConfig, AlertRule, read_alerts
from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.backends.redis.backend import RedisBackend
from qadmin.errors import ConfigError
from qadmin.insight import HistorySample
from qadmin.job import NewJob, WorkerInfo, utcnow
from qadmin.ops import Ops
from qadmin.ops.webhook import message
from tests.webhook import SECRET_PATH, Receiver, receiver  # noqa: F401 - the fixture

NOOP = "qadmin.examples.noop"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def backends(any_url: str) -> Iterator[list[Backend]]:
    """Two backend objects on one store: two evaluating processes."""
    opened = [open_backend(any_url, BackendOptions(worker_timeout=60.0)) for _ in range(2)]
    opened[0].init()
    try:
        yield opened
    finally:
        for b in opened:
            b.close()


def minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def burst_rule(url: str) -> AlertRule:
    return AlertRule("mail-failing", "failure_rate", url, queue="mail", window=600.0, threshold=0.2, min_runs=10)


def test_a_failure_burst_fires_once_and_clears_once_with_two_evaluators(
    backends: list[Backend], receiver: Receiver
) -> None:
    now = minute(utcnow()).replace(tzinfo=UTC)
    clock = Clock(now + timedelta(seconds=30))
    config = AlertConfig(rules=(burst_rule(receiver.url),))
    first, second = (Ops(b, clock=clock).alerts for b in backends)
    assert first.check(config).opened == []  # nothing recorded yet: fewer runs than min_runs
    backends[0].record_history(
        [
            HistorySample(now, "mail", "Mailer", processed=5, failed=3, retried=4),
            HistorySample(now, "other", "Mailer", failed=50),  # another queue: not this rule's
        ]
    )
    report = first.check(config)
    assert report.opened == ["mail-failing"] and report.sent == [("mail-failing", "firing")]
    again = second.check(config)
    assert again.opened == [] and again.sent == []
    assert [s.label for s in again.states] == ["firing"]
    assert receiver.messages() == [("mail-failing", "firing")]
    body = receiver.bodies[0]
    assert "7 of 12 runs failed (58%)" in body["text"] and body["blocks"][0]["type"] == "section"
    assert receiver.paths == [SECRET_PATH]
    [incident] = first.open_incidents()
    assert incident.rule == "mail-failing" and incident.firing_sent_at is not None
    # the burst is over: the window moves past it
    clock.now = now + timedelta(minutes=11)
    assert second.check(config).resolved == ["mail-failing"]
    assert first.check(config).resolved == []
    assert receiver.messages() == [("mail-failing", "firing"), ("mail-failing", "resolved")]
    assert first.open_incidents() == []
    assert first.check(config).sent == [] and len(receiver.bodies) == 2


def test_a_latency_rule_fires_for_an_old_ready_job(backends: list[Backend], receiver: Receiver) -> None:
    backend = backends[0]
    if isinstance(backend, RedisBackend):
        # qadmin's (and Ruby Resque's) payloads carry no enqueue time; php-resque's queue_time does
        backend.client.sadd(backend.keys.queues, "slow")
        backend.client.rpush(
            backend.keys.queue("slow"), json.dumps({"class": NOOP, "args": [], "queue_time": time.time()})
        )
    else:
        backend.enqueue(NewJob(NOOP, [], queue="slow"))
    backend.enqueue(NewJob(NOOP, [], queue="fast"))
    rule = AlertRule("slow-latency", "latency", receiver.url, queue="slow", above=300.0)
    config = AlertConfig(rules=(rule,))
    clock = Clock(utcnow() + timedelta(seconds=5))
    alerts = Ops(backend, clock=clock).alerts
    [state] = alerts.evaluate(config)
    assert not state.firing
    clock.now = utcnow() + timedelta(minutes=10)
    report = alerts.check(config)
    assert report.opened == ["slow-latency"]
    assert "oldest ready job of queue slow has waited" in report.states[0].details
    assert receiver.messages() == [("slow-latency", "firing")]


def test_a_latency_rule_reads_the_recorded_wait_where_payloads_carry_no_enqueue_time(
    backends: list[Backend], receiver: Receiver
) -> None:
    backend = backends[0]
    if not isinstance(backend, RedisBackend):
        pytest.skip("SQL rows carry their enqueue time")
    backend.enqueue(NewJob(NOOP, [], queue="slow"))
    now = utcnow()
    rule = AlertRule("slow-latency", "latency", receiver.url, queue="slow", above=300.0)
    alerts = Ops(backend).alerts
    assert not alerts.evaluate(AlertConfig(rules=(rule,)))[0].firing
    backend.record_history([HistorySample(minute(now), "slow", "X", processed=1, latency=900.0)])
    [state] = alerts.evaluate(AlertConfig(rules=(rule,)))
    assert state.firing and state.value == 900.0


def test_a_no_worker_rule_fires_without_a_live_worker_and_resolves_with_one(
    backends: list[Backend], receiver: Receiver
) -> None:
    backend = backends[0]
    rule = AlertRule("mail-unserved", "no_worker", receiver.url, queue="mail", duration=60.0)
    config = AlertConfig(rules=(rule,))
    alerts = Ops(backend).alerts
    assert alerts.check(config).opened == ["mail-unserved"]
    now = utcnow()
    backend.register_worker(
        WorkerInfo(name="host:h pid:4242", host="h", pid=4242, queues=["mail"], started_at=now, heartbeat_at=now)
    )
    report = alerts.check(config)
    assert report.resolved == ["mail-unserved"] and report.states[0].value == 1.0
    assert receiver.messages() == [("mail-unserved", "firing"), ("mail-unserved", "resolved")]


def test_a_webhook_down_then_up_gets_each_message_once(backends: list[Backend], receiver: Receiver) -> None:
    rule = AlertRule("mail-unserved", "no_worker", receiver.url, queue="mail", duration=60.0)
    config = AlertConfig(rules=(rule,))
    first, second = (Ops(b).alerts for b in backends)
    receiver.status = 500
    report = first.check(config)
    assert report.opened == ["mail-unserved"] and report.sent == []
    assert [(r, m) for r, m, _e in report.failed] == [("mail-unserved", "firing")]
    assert "answered 500" in report.failed[0][2] and SECRET_PATH not in report.failed[0][2]
    assert first.open_incidents()[0].firing_sent_at is None
    receiver.status = 200
    assert second.check(config).sent == [("mail-unserved", "firing")]
    assert first.check(config).sent == []
    assert receiver.messages() == [("mail-unserved", "firing")]


def test_a_webhook_that_is_down_is_tried_once_per_check(backends: list[Backend], receiver: Receiver) -> None:
    config = AlertConfig(
        rules=tuple(AlertRule(f"u{n}", "no_worker", receiver.url, queue=f"q{n}", duration=60.0) for n in range(3))
    )
    receiver.status = 503
    report = Ops(backends[0]).alerts.check(config)
    assert report.opened == ["u0", "u1", "u2"] and len(report.failed) == 1
    receiver.status = 200
    assert len(Ops(backends[1]).alerts.check(config).sent) == 3
    assert sorted(receiver.messages()) == [("u0", "firing"), ("u1", "firing"), ("u2", "firing")]


def test_dry_run_opens_and_sends_nothing(backends: list[Backend], receiver: Receiver) -> None:
    config = AlertConfig(rules=(AlertRule("u", "no_worker", receiver.url, queue="mail", duration=60.0),))
    alerts = Ops(backends[0]).alerts
    report = alerts.check(config, dry_run=True)
    assert report.opened == ["u"] and report.dry_run
    assert alerts.incidents() == [] and receiver.messages() == []


def test_the_incident_of_a_rule_no_longer_configured_is_resolved(backends: list[Backend], receiver: Receiver) -> None:
    backend = backends[0]
    backend.open_incident("gone", utcnow(), "was firing")
    alerts = Ops(backend).alerts
    assert alerts.check(AlertConfig(), dry_run=True).resolved == ["gone"]
    assert alerts.check(AlertConfig()).resolved == ["gone"]
    assert alerts.open_incidents() == [] and receiver.messages() == []


def test_rules_are_read_and_checked() -> None:
    config = read_alerts(
        {
            "webhook": "https://hooks.example.com/services/x",
            "every": "10s",
            "evaluate_in": ["scheduler"],
            "burst": {"kind": "failure_rate", "class": "Mailer", "window": "15m", "threshold": 0.2, "min_runs": 20},
            "slow": {"kind": "latency", "queue": "mail", "above": "5m", "webhook": "https://other.example/h"},
            "unserved": {"kind": "no_worker", "queue": "mail", "for": "2m"},
        }
    )
    burst, slow, unserved = config.rules
    assert (burst.job_class, burst.window, burst.threshold, burst.min_runs) == ("Mailer", 900.0, 0.2, 20)
    assert burst.webhook == "https://hooks.example.com/services/x" and slow.webhook == "https://other.example/h"
    assert (slow.above, unserved.duration, config.every) == (300.0, 120.0, 10.0)
    assert config.evaluated_in("scheduler") and not config.evaluated_in("web")
    assert burst.to_dict()["webhook"] == "https://hooks.example.com/…"
    bad = [
        ({"r": {"kind": "nope"}}, "kind must be one of"),
        ({"r": {"kind": "failure_rate", "threshold": 1.5}}, "threshold"),
        ({"r": {"kind": "failure_rate", "threshold": 0.1, "window": "10s"}}, "at least 1m"),
        ({"r": {"kind": "latency", "queue": "q"}}, "needs above"),
        ({"r": {"kind": "latency", "above": "soon"}}, "not a duration"),
        ({"r": {"kind": "no_worker"}}, "needs a queue"),
        ({"r": {"kind": "no_worker", "queue": "q", "threshold": 1}}, "unknown setting 'threshold'"),
        ({"r": {"kind": "no_worker", "queue": "q", "webhook": "ftp://x/y"}}, "http(s) URL"),
        ({"evaluate_in": ["cron"]}, "evaluate_in"),
        ({"r": 3}, "not a setting"),
    ]
    for table, expected in bad:
        with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            read_alerts(table)


def test_the_message_is_slack_json_without_the_webhook() -> None:
    from qadmin.alert_rules import Incident

    rule = burst_rule("https://hooks.slack.com/services/T/B/secret")
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    body = message(rule, Incident("mail-failing", now, "7 of 12 runs failed (58%)"), "firing", "sqlite:///x.db")
    assert set(body) >= {"text", "blocks"} and "firing" in body["text"] and "secret" not in str(body)
