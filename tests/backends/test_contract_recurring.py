"""Recurring schedules (issue #16), the backend contract on SQLite, PostgreSQL and Redis, seen
only through `Backend` and `ops.recurring`: saving keeps the memory of ticks, a new schedule is
armed (no past tick fires), each tick enqueues exactly once, run now consumes no tick."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.errors import ScheduleNotFound, UsageError
from qadmin.job import Job
from qadmin.ops import Ops
from qadmin.ops.recurring import new_job_for
from qadmin.recurring import SOURCE_API, Schedule

NOOP = "qadmin.examples.noop"
#: 30 s into a minute: the previous tick of a one-minute schedule is T0
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def every_minute(name: str = "tidy", **fields: object) -> Schedule:
    return Schedule(name=name, job_class=NOOP, every=60.0, **fields)  # type: ignore[arg-type]


def fire(b: Backend, schedule: Schedule, tick: datetime | None, now: datetime) -> Job | None:
    return b.fire_schedule(schedule.name, tick, new_job_for(schedule), now)


def test_saved_schedules_are_listed_by_name_and_replaced_in_place(backend: Backend) -> None:
    backend.save_schedule(every_minute("b", args=[1]), T0 + timedelta(seconds=30))
    backend.save_schedule(Schedule(name="a", job_class=NOOP, cron="*/5 * * * *", timezone="Europe/Paris"), T0)
    backend.save_schedule(every_minute("b", args=[2], description="twice"), T0 + timedelta(seconds=40))
    entries = backend.schedules(T0)
    assert [e.schedule.name for e in entries] == ["a", "b"]
    a, b = entries
    assert a.schedule.cron == "*/5 * * * *" and a.schedule.timezone == "Europe/Paris" and a.schedule.every is None
    assert b.schedule.args == [2] and b.schedule.description == "twice" and b.schedule.every == 60.0
    assert b.schedule.enabled and b.schedule.source == SOURCE_API
    assert b.last_run_at is None


def test_a_new_schedule_does_not_fire_a_tick_that_passed_before_it_existed(backend: Backend) -> None:
    s = every_minute()
    backend.save_schedule(s, T0 + timedelta(seconds=30))
    assert fire(backend, s, T0, T0 + timedelta(seconds=31)) is None
    assert fire(backend, s, T0 - MINUTE, T0 + timedelta(seconds=31)) is None
    assert fire(backend, s, T0 + MINUTE, T0 + MINUTE) is not None


def test_each_tick_is_fired_once_and_a_later_tick_fires_again(backend: Backend) -> None:
    s = every_minute()
    backend.save_schedule(s, T0)
    first = fire(backend, s, T0 + MINUTE, T0 + MINUTE)
    assert first is not None
    assert fire(backend, s, T0 + MINUTE, T0 + MINUTE + timedelta(seconds=1)) is None
    second = fire(backend, s, T0 + 2 * MINUTE, T0 + 2 * MINUTE)
    assert second is not None and str(second.id) != str(first.id)
    assert fire(backend, s, T0 + MINUTE, T0 + 2 * MINUTE) is None  # an earlier tick, late
    [entry] = backend.schedules(T0 + 2 * MINUTE)
    assert entry.last_run_at == T0 + 2 * MINUTE
    assert entry.last_job_id in (None, str(second.id))


def test_racing_schedulers_enqueue_a_tick_once(any_url: str, backend: Backend) -> None:
    s = every_minute()
    backend.save_schedule(s, T0)
    others = [open_backend(any_url, BackendOptions()) for _ in range(4)]
    fired: list[Job | None] = []
    start = threading.Barrier(len(others))

    def race(b: Backend) -> None:
        start.wait()
        fired.append(fire(b, s, T0 + MINUTE, T0 + MINUTE))

    threads = [threading.Thread(target=race, args=(b,)) for b in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for b in others:
        b.close()
    assert len(fired) == 4 and sum(job is not None for job in fired) == 1


def test_replacing_a_schedule_keeps_its_tick_memory(backend: Backend) -> None:
    s = every_minute(args=[1])
    backend.save_schedule(s, T0)
    assert fire(backend, s, T0 + MINUTE, T0 + MINUTE) is not None
    changed = every_minute(args=[2], queue="other")
    backend.save_schedule(changed, T0 + MINUTE + timedelta(seconds=5))
    assert fire(backend, changed, T0 + MINUTE, T0 + MINUTE + timedelta(seconds=6)) is None
    job = fire(backend, changed, T0 + 2 * MINUTE, T0 + 2 * MINUTE)
    assert job is not None and job.args == [2] and job.queue == "other"


def test_the_job_is_enqueued_with_the_schedules_class_arguments_queue_and_priority(backend: Backend) -> None:
    s = Schedule(
        name="report",
        job_class="qadmin.examples.send_email",
        args=["ops@example.com", 3],
        kwargs={"subject": "daily", "n": [1, 2]},
        queue="reports",
        priority=7,
        every=60.0,
    )
    if backend.kind == "redis":
        # resque-scheduler runs Redis schedules too and enqueues a class and args only: refused
        # (docs/compatibility.md §2.4)
        with pytest.raises(UsageError, match="kwargs"):
            backend.save_schedule(s, T0)
        s = replace(s, kwargs={}, priority=None)
    backend.save_schedule(s, T0)
    job = fire(backend, s, T0 + MINUTE, T0 + MINUTE)
    assert job is not None
    stored = backend.get(job.id, T0 + MINUTE)
    assert stored.class_name == "qadmin.examples.send_email"
    assert stored.args == ["ops@example.com", 3]
    assert stored.kwargs == s.kwargs
    assert stored.queue == "reports"
    if backend.supports_priority:
        assert stored.priority == 7


def test_run_now_enqueues_and_consumes_no_tick(backend: Backend) -> None:
    s = every_minute()
    backend.save_schedule(s, T0)
    now = T0 + timedelta(seconds=50)
    job = fire(backend, s, None, now)
    assert job is not None and job.class_name == NOOP
    [entry] = backend.schedules(now)
    assert entry.last_run_at == now and entry.last_job_id in (None, str(job.id))
    again = fire(backend, s, None, now + timedelta(seconds=1))
    assert again is not None and str(again.id) != str(job.id)
    assert fire(backend, s, T0 + MINUTE, T0 + MINUTE) is not None  # the tick after still fires


def test_ops_run_now_is_audited_and_works_on_a_disabled_schedule(backend: Backend) -> None:
    clock = Clock(T0)
    ops = Ops(backend, face="cli", actor="tester", clock=clock)
    ops.recurring.save(every_minute(enabled=False))
    preview = ops.recurring.run_now("tidy", dry_run=True)
    assert preview.dry_run and preview.new.class_name == NOOP
    assert backend.schedules(T0)[0].last_run_at is None
    done = ops.recurring.run_now("tidy")
    assert done.job is not None and done.entry.last_run_at == T0
    [entry] = ops.audit(limit=1)
    assert entry.verb == "recurring-run-now" and entry.actor == "tester" and entry.selection["schedule"] == "tidy"


def test_disable_and_enable_through_ops_are_audited_and_stop_the_ticks(backend: Backend) -> None:
    clock = Clock(T0)
    ops = Ops(backend, face="cli", actor="tester", clock=clock)
    s = ops.recurring.save(every_minute()).schedule
    assert not ops.recurring.disable("tidy", dry_run=True).schedule.enabled
    assert ops.recurring.get("tidy").schedule.enabled  # a dry run changes nothing
    assert not ops.recurring.disable("tidy").schedule.enabled
    assert not ops.recurring.get("tidy").schedule.enabled
    assert fire(backend, s, T0 + MINUTE, T0 + MINUTE) is None  # disabled: no tick fires
    clock.now = T0 + 3 * MINUTE + timedelta(seconds=10)
    assert ops.recurring.enable("tidy").schedule.enabled
    # enabled again, it resumes at its next tick: the ticks missed while disabled are not caught up
    assert fire(backend, s, T0 + 3 * MINUTE, clock.now) is None
    assert fire(backend, s, T0 + 4 * MINUTE, T0 + 4 * MINUTE) is not None
    verbs = [(e.verb, e.changed) for e in ops.audit(limit=3)]
    assert verbs == [("recurring-enable", 1), ("recurring-disable", 1), ("recurring-save", 1)]
    ops.recurring.enable("tidy")  # already enabled: audited, nothing changed
    assert ops.audit(limit=1)[0].changed == 0


def test_remove_forgets_the_schedule(backend: Backend) -> None:
    ops = Ops(backend, face="cli", actor="tester", clock=Clock(T0))
    s = ops.recurring.save(every_minute()).schedule
    assert ops.recurring.remove("tidy", dry_run=True)
    assert [e.schedule.name for e in ops.recurring.entries()] == ["tidy"]
    assert ops.recurring.remove("tidy")
    assert ops.recurring.entries() == []
    assert ops.audit(limit=1)[0].verb == "recurring-remove"
    assert not backend.remove_schedule("tidy")
    assert fire(backend, s, T0 + MINUTE, T0 + MINUTE) is None  # a tick of a schedule that is gone


def test_a_removed_schedule_saved_again_is_armed_afresh(backend: Backend) -> None:
    s = every_minute()
    backend.save_schedule(s, T0)
    assert fire(backend, s, T0 + MINUTE, T0 + MINUTE) is not None
    backend.remove_schedule("tidy")
    backend.save_schedule(s, T0 + 5 * MINUTE + timedelta(seconds=1))
    assert fire(backend, s, T0 + 5 * MINUTE, T0 + 5 * MINUTE + timedelta(seconds=2)) is None
    assert fire(backend, s, T0 + 6 * MINUTE, T0 + 6 * MINUTE) is not None


@pytest.mark.parametrize("verb", ["get", "enable", "disable", "run_now", "remove"])
def test_an_unknown_name_is_schedule_not_found(backend: Backend, verb: str) -> None:
    ops = Ops(backend, face="cli", actor="tester", clock=Clock(T0))
    with pytest.raises(ScheduleNotFound) as caught:
        getattr(ops.recurring, verb)("nope")
    assert caught.value.exit_code == 2
