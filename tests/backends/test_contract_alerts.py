"""Alert incidents (issue #17), the backend contract on SQLite, PostgreSQL and Redis: one incident
per rule opened and resolved by compare-and-set, racing openers and senders of which exactly one
wins, a delivery claimed for a lease, released when it failed, never claimed again once sent."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from qadmin.alert_rules import FIRING, RESOLVED
from qadmin.backends import Backend, BackendOptions, open_backend

T0 = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
S = timedelta(seconds=1)


def test_an_incident_opens_once_and_resolves_once(backend: Backend) -> None:
    assert backend.alert_incidents(T0) == []
    assert backend.open_incident("mail-failing", T0, "42% of 50 runs failed")
    assert not backend.open_incident("mail-failing", T0 + S, "again")
    [incident] = backend.alert_incidents(T0 + S)
    assert incident.rule == "mail-failing" and incident.open
    assert incident.opened_at == T0 and incident.details == "42% of 50 runs failed"
    assert incident.firing_sent_at is None and incident.resolved_at is None
    assert backend.resolve_incident("mail-failing", T0 + 2 * S)
    assert not backend.resolve_incident("mail-failing", T0 + 3 * S)
    assert not backend.resolve_incident("never-opened", T0)
    [resolved] = backend.alert_incidents(T0 + 3 * S)
    assert not resolved.open and resolved.resolved_at == T0 + 2 * S


def test_a_new_incident_replaces_the_resolved_one(backend: Backend) -> None:
    backend.open_incident("slow", T0, "first")
    backend.resolve_incident("slow", T0 + S)
    assert backend.open_incident("slow", T0 + 2 * S, "second")
    backend.open_incident("other", T0, "x")
    incidents = backend.alert_incidents(T0 + 3 * S)
    assert [i.rule for i in incidents] == ["other", "slow"]
    slow = incidents[1]
    assert slow.open and slow.opened_at == T0 + 2 * S and slow.details == "second" and slow.resolved_at is None


def test_a_delivery_is_claimed_by_one_released_on_failure_and_never_claimed_once_sent(backend: Backend) -> None:
    backend.open_incident("r", T0, "d")
    assert backend.claim_alert_delivery("r", T0, FIRING, T0, lease=30)
    assert not backend.claim_alert_delivery("r", T0, FIRING, T0 + S, lease=30)  # leased to the first
    assert not backend.claim_alert_delivery("r", T0 + S, FIRING, T0 + S, lease=30)  # not this incident
    assert not backend.claim_alert_delivery("r", T0, RESOLVED, T0 + S, lease=30)  # not resolved yet
    backend.finish_alert_delivery("r", T0, FIRING, None)  # the webhook was down
    assert backend.claim_alert_delivery("r", T0, FIRING, T0 + 2 * S, lease=30)
    backend.finish_alert_delivery("r", T0, FIRING, T0 + 2 * S)
    assert not backend.claim_alert_delivery("r", T0, FIRING, T0 + 60 * S, lease=30)
    [incident] = backend.alert_incidents(T0)
    assert incident.firing_sent_at == T0 + 2 * S and incident.resolved_sent_at is None
    backend.resolve_incident("r", T0 + 3 * S)
    assert backend.claim_alert_delivery("r", T0, RESOLVED, T0 + 3 * S, lease=30)
    backend.finish_alert_delivery("r", T0, RESOLVED, T0 + 4 * S)
    assert not backend.claim_alert_delivery("r", T0, RESOLVED, T0 + 5 * S, lease=30)
    [done] = backend.alert_incidents(T0)
    assert done.resolved_sent_at == T0 + 4 * S


def test_a_lease_that_ran_out_lets_another_sender_retry(backend: Backend) -> None:
    backend.open_incident("r", T0, "d")
    assert backend.claim_alert_delivery("r", T0, FIRING, T0, lease=10)
    assert not backend.claim_alert_delivery("r", T0, FIRING, T0 + 9 * S, lease=10)
    assert backend.claim_alert_delivery("r", T0, FIRING, T0 + 11 * S, lease=10)


def _race(any_url: str, step: Callable[[Backend], bool], n: int = 4) -> list[bool]:
    """`step` run at once by `n` processes' worth of backends (each its own connections)."""
    others = [open_backend(any_url, BackendOptions()) for _ in range(n)]
    results: list[bool] = []
    start = threading.Barrier(n)

    def run(b: Backend) -> None:
        start.wait()
        results.append(step(b))

    threads = [threading.Thread(target=run, args=(b,)) for b in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for b in others:
        b.close()
    return results


def test_racing_evaluators_open_one_incident(any_url: str, backend: Backend) -> None:
    results = _race(any_url, lambda b: b.open_incident("burst", T0, "d"))
    assert len(results) == 4 and sum(results) == 1
    # and again after it resolved: the replacement is a compare-and-set too
    backend.resolve_incident("burst", T0 + S)
    results = _race(any_url, lambda b: b.open_incident("burst", T0 + 2 * S, "d"))
    assert sum(results) == 1
    assert [i.opened_at for i in backend.alert_incidents(T0)] == [T0 + 2 * S]


def test_racing_senders_claim_one_delivery_and_racing_resolvers_resolve_once(any_url: str, backend: Backend) -> None:
    backend.open_incident("burst", T0, "d")
    assert sum(_race(any_url, lambda b: b.claim_alert_delivery("burst", T0, FIRING, T0, 30))) == 1
    assert sum(_race(any_url, lambda b: b.resolve_incident("burst", T0 + S))) == 1


RACER = """
import sys, time
from datetime import datetime
from qadmin.backends import BackendOptions, open_backend
url, start, opened_at = sys.argv[1], float(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
b = open_backend(url, BackendOptions())
b.alert_incidents(opened_at)  # connected before the start
time.sleep(max(0.0, start - time.time()))
print(int(b.open_incident("burst", opened_at, "d")))
b.close()
"""


def test_racing_processes_open_one_incident(any_url: str, backend: Backend) -> None:
    start = time.time() + 3.0
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, any_url, repr(start), T0.isoformat()], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in racers]
    assert all(p.returncode == 0 for p in racers)
    assert sorted(outputs) == ["0", "0", "1"]
    [incident] = backend.alert_incidents(T0)
    assert incident.open and incident.opened_at == T0
