"""`Ops.enqueue`: an operator's new job, checked as the Python API checks one and audited, on
SQLite, PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from qadmin.backends import BackendOptions
from qadmin.errors import UsageError
from qadmin.filters import JobFilter
from qadmin.job import JobState, utcnow
from qadmin.ops import Ops

NOOP = "qadmin.examples.noop"


@pytest.fixture
def ops(any_url: str) -> Iterator[Ops]:
    o = Ops.open(any_url, options=BackendOptions(), face="test", actor="tester")
    o.backend.init()
    yield o
    o.close()


def test_enqueue_stores_the_job_and_audits_it(ops: Ops) -> None:
    job = ops.enqueue(NOOP, [1, "two"], {"three": 3}, queue="mail")
    stored = ops.show(job.id)
    assert (stored.class_name, stored.args, stored.kwargs, stored.queue) == (NOOP, [1, "two"], {"three": 3}, "mail")
    assert stored.state is JobState.PENDING
    entry = ops.audit(limit=1)[0]
    assert (entry.verb, entry.actor, entry.face, entry.matched, entry.changed) == ("enqueue", "tester", "test", 1, 1)
    assert entry.selection["class"] == NOOP and entry.selection["queue"] == "mail"
    assert [e.verb for e in ops.audit(job_id=job.id)] == ["enqueue"]


def test_enqueue_later_is_scheduled(ops: Ops) -> None:
    delayed = ops.enqueue(NOOP, delay=3600)
    at = ops.enqueue(NOOP, run_at=utcnow() + timedelta(hours=2))
    for job in (delayed, at):
        assert ops.show(job.id).state is JobState.SCHEDULED
    assert ops.count(JobFilter(states=frozenset({JobState.SCHEDULED}))) == 2


def test_enqueue_refuses_bad_input_and_stores_nothing(ops: Ops) -> None:
    for bad in (
        lambda: ops.enqueue("  "),
        lambda: ops.enqueue(NOOP, queue="a\x00b"),
        lambda: ops.enqueue(NOOP, delay=-1),
        lambda: ops.enqueue(NOOP, run_at=utcnow(), delay=5),
    ):
        with pytest.raises(UsageError):
            bad()
    assert ops.count() == 0
    assert ops.audit() == []


def test_priority_where_the_backend_has_one(ops: Ops) -> None:
    if ops.supports_priority:
        assert ops.show(ops.enqueue(NOOP, priority=-5).id).priority == -5
        return
    with pytest.raises(UsageError, match="no priorities"):
        ops.enqueue(NOOP, priority=3)
    assert ops.count() == 0 and ops.audit() == []
    # no priority asked for is fine on Redis
    assert ops.show(ops.enqueue(NOOP).id).state is JobState.PENDING


def test_supports_priority_is_the_backends(any_url: str) -> None:
    ops = Ops.open(any_url, options=BackendOptions(), face="test")
    try:
        assert ops.supports_priority is (not any_url.startswith("redis"))
    finally:
        ops.close()
