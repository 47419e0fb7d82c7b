"""Recurring schedules on Redis, in resque-scheduler's keys and bytes (docs/compatibility.md §2.4).

The Ruby side of each promise is written here as resque-scheduler writes it (lib/resque/scheduler/
scheduling_extensions.rb `set_schedule`, lib/resque/scheduler.rb `enqueue_recurring`,
lib/resque/scheduler/lock/resilient.rb); tests/interop/test_interop_resque_scheduler.py runs the
same against real Ruby.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from qadmin.backends.redis.schedule_config import parse_time_to_s, time_to_s
from qadmin.errors import ScheduleNotFound, UsageError
from qadmin.job import JobState, NewJob
from qadmin.recurring import SOURCE_RESQUE, Schedule
from tests.backends.conftest import r, redis_backend  # noqa: F401 - fixtures

pytestmark = pytest.mark.redis

NOW = datetime(2026, 12, 7, 16, 38, 28, 500000, tzinfo=UTC)
PERSISTENT = "resque:persistent_schedules"
CHANGED = "resque:schedules_changed"
LAST_RUN = "resque:delayed:last_enqueued_at"
DISABLED = "resque:qadmin:schedules:disabled"
TICKS = "resque:qadmin:schedules:ticks"
LOCK = "resque:resque:resque_scheduler_master_lock"


def job_for(s: Schedule) -> NewJob:
    return NewJob(s.job_class, list(s.args), queue=s.queue or "default")


def by_name(backend, name: str):  # type: ignore[no-untyped-def]
    return {e.schedule.name: e for e in backend.schedules(NOW)}.get(name)


def set_schedule(r, name: str, config: dict) -> None:  # type: ignore[no-untyped-def]
    """`Resque.set_schedule(name, config)` with `persist` unset: HSET of `Resque.encode(config)`
    (Ruby's json gem: compact, raw UTF-8), then SADD schedules_changed."""
    r.hset(PERSISTENT, name, json.dumps(config, separators=(",", ":"), ensure_ascii=False))
    r.sadd(CHANGED, name)


def test_a_saved_schedule_is_resque_schedulers_persisted_config(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    daily = Schedule("daily-report", "Reports::Daily", [7, "é"], queue="reports", cron="0 5 * * *",
                     timezone="Europe/Paris", description="the 5 o'clock report")  # fmt: skip
    poll = Schedule("poll", "Poller", every=90.0)
    hourly = Schedule("hourly", "Sweep", queue="low", every=3600.0)
    secs = Schedule("secs", "Secs", queue="s", cron="*/10 * * * * 30")  # croniter: seconds last
    for s in (daily, poll, hourly, secs):
        redis_backend.save_schedule(s, NOW)
    assert r.hgetall(PERSISTENT) == {
        b"daily-report": '{"class":"Reports::Daily","args":[7,"é"],"queue":"reports",'
        '"cron":"0 5 * * * Europe/Paris","description":"the 5 o\'clock report"}'.encode(),
        # no queue given: the one qadmin's enqueue picks, so Ruby's scheduler pushes to the same
        b"poll": b'{"class":"Poller","args":[],"queue":"default","every":"90s"}',
        b"hourly": b'{"class":"Sweep","args":[],"queue":"low","every":"1h"}',
        b"secs": b'{"class":"Secs","args":[],"queue":"s","cron":"30 */10 * * * *"}',  # fugit: seconds first
    }
    assert r.smembers(CHANGED) == {b"daily-report", b"poll", b"hourly", b"secs"}
    listed = [e for e in redis_backend.schedules(NOW) if e.schedule.name != "secs"]
    assert [e.schedule for e in listed] == [daily, hourly, poll]
    assert by_name(redis_backend, "secs").schedule == secs
    assert all(e.last_run_at is None and e.last_job_id is None for e in listed)
    # armed at the tick before the save: the first job comes at the next one
    assert {e.schedule.name: e.last_tick for e in listed} == {
        "daily-report": datetime(2026, 12, 7, 4, 0, tzinfo=UTC),
        "hourly": datetime(2026, 12, 7, 16, 0, tzinfo=UTC),
        "poll": datetime(2026, 12, 7, 16, 37, 30, tzinfo=UTC),
    }
    assert r.hget(TICKS, "poll") == str(int(datetime(2026, 12, 7, 16, 37, 30, tzinfo=UTC).timestamp())).encode()


def test_a_disabled_schedule_is_out_of_rubys_sight_and_comes_back_with_its_bytes(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    s = Schedule("poll", "Poller", queue="q", every=30.0)
    redis_backend.save_schedule(s, NOW)
    written = r.hget(PERSISTENT, "poll")
    r.delete(CHANGED)
    redis_backend.save_schedule(s.with_enabled(False), NOW)
    assert r.hget(PERSISTENT, "poll") is None  # `all_schedules` does not see it: Ruby does not run it
    assert r.hget(DISABLED, "poll") == written
    assert r.smembers(CHANGED) == {b"poll"}  # a running Ruby scheduler unschedules it
    assert by_name(redis_backend, "poll").schedule == s.with_enabled(False)
    assert redis_backend.fire_schedule("poll", NOW + timedelta(minutes=5), job_for(s), NOW) is None
    assert r.llen("resque:queue:q") == 0
    redis_backend.save_schedule(s, NOW)
    assert r.hget(PERSISTENT, "poll") == written and r.hget(DISABLED, "poll") is None


def test_schedules_written_by_ruby_are_listed_as_resque_scheduler_runs_them(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    set_schedule(r, "MakeTea", {"every": "1m"})  # no class: the name is the class
    set_schedule(r, "some_name", {"cron": "*/5 * * * *", "class": "DoSomeWork", "args": "work on this string",
                                  "description": "this thing works"})  # fmt: skip
    set_schedule(r, "with_hash", {"class": "Hashy", "args": {"a": 1}, "queue": "h", "cron": "0 9 * * 1-5 Asia/Tokyo"})
    set_schedule(r, "every_opts", {"class": "Opts", "every": ["30s", {"first_in": "10s"}], "queue": "o"})
    set_schedule(r, "seconds", {"class": "Secs", "cron": "*/30 * * * * *", "queue": "s"})  # fugit: seconds first
    got = {e.schedule.name: e.schedule for e in redis_backend.schedules(NOW)}
    assert got == {
        "MakeTea": Schedule("MakeTea", "MakeTea", every=60.0, source=SOURCE_RESQUE),
        "some_name": Schedule(
            "some_name",
            "DoSomeWork",
            ["work on this string"],
            cron="*/5 * * * *",
            description="this thing works",
            source=SOURCE_RESQUE,
        ),  # fmt: skip
        "with_hash": Schedule(
            "with_hash", "Hashy", [{"a": 1}], queue="h", cron="0 9 * * 1-5", timezone="Asia/Tokyo", source=SOURCE_RESQUE
        ),  # fmt: skip
        "every_opts": Schedule("every_opts", "Opts", queue="o", every=30.0, source=SOURCE_RESQUE),
        "seconds": Schedule("seconds", "Secs", queue="s", cron="* * * * * */30", source=SOURCE_RESQUE),
    }
    # disabled and enabled again through qadmin: Ruby's bytes, rufus' options and all, unchanged
    before = r.hget(PERSISTENT, "every_opts")
    redis_backend.save_schedule(got["every_opts"].with_enabled(False), NOW)
    redis_backend.save_schedule(got["every_opts"], NOW)
    assert r.hget(PERSISTENT, "every_opts") == before
    assert by_name(redis_backend, "every_opts").schedule.source == SOURCE_RESQUE


def test_a_config_that_is_not_a_schedule_is_left_out_and_logged(redis_backend, r, caplog) -> None:  # type: ignore[no-untyped-def]
    redis_backend.save_schedule(Schedule("fine", "Fine", every=60.0), NOW)
    bad = {
        b"not-json": b"{class: Foo",
        b"a-list": b'["every", "1m"]',
        b"no-timing": b'{"class":"Foo"}',
        b"custom": b'{"class":"Foo","every":"1m","custom_job_class":"Resque::JobWithStatus"}',
        b"env": b'{"class":"Foo","every":"1m","rails_env":"production"}',
        b"year": b'{"class":"Foo","cron":"0 0 1 1 * 0 2027"}',
        b"months": b'{"class":"Foo","every":"1M"}',
        b"bad-queue": b'{"class":"Foo","every":"1m","queue":7}',
        b"with space": b'{"class":"Foo","every":"1m"}',
        b"\xff": b'{"class":"Foo","every":"1m"}',
    }
    for name, raw in bad.items():
        r.hset(PERSISTENT, name, raw)
    with caplog.at_level(logging.WARNING, logger="qadmin.recurring"):
        assert [e.schedule.name for e in redis_backend.schedules(NOW)] == ["fine"]
    assert len([m for m in caplog.messages if "left out" in m]) == len(bad)
    # the key itself of another type: the disabled ones are still listed
    redis_backend.save_schedule(Schedule("off", "Off", every=60.0, enabled=False), NOW)
    r.delete(PERSISTENT)
    r.set(PERSISTENT, "poison")
    assert [e.schedule.name for e in redis_backend.schedules(NOW)] == ["off"]


def test_what_ruby_would_enqueue_differently_is_refused(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    for s, why in (
        (Schedule("kw", "Mailer", [1], kwargs={"to": "a@b"}, every=60.0), "kwargs"),
        (Schedule("prio", "Mailer", priority=5, every=60.0), "priorit"),
        (Schedule("year", "Mailer", cron="0 0 1 1 * 0 2027"), "year"),
    ):
        with pytest.raises(UsageError, match=why):
            redis_backend.save_schedule(s, NOW)
    assert r.exists(PERSISTENT, DISABLED, CHANGED, TICKS) == 0


def test_a_tick_fires_once_with_the_payload_qadmins_enqueue_writes(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    s = Schedule("poll", "Poller", [1, {"k": "v"}], queue="q", every=30.0)
    redis_backend.save_schedule(s, NOW)
    tick = datetime(2026, 12, 7, 16, 38, 30, tzinfo=UTC)
    at = tick + timedelta(seconds=0.25)
    job = redis_backend.fire_schedule("poll", tick, job_for(s), at)
    assert job is not None
    assert redis_backend.fire_schedule("poll", tick, job_for(s), at) is None
    assert redis_backend.fire_schedule("poll", tick - timedelta(seconds=30), job_for(s), at) is None
    [payload] = r.lrange("resque:queue:q", 0, -1)
    assert payload == b'{"class":"Poller","args":[1,{"k":"v"}]}' == redis_backend.enqueuer.encode(job_for(s), at)
    assert r.smembers("resque:queues") == {b"q"}
    # as `enqueue_recurring` records a run: Time.now.to_s
    assert r.hget(LAST_RUN, "poll") == b"2026-12-07 16:38:30 +0000"
    entry = by_name(redis_backend, "poll")
    assert (entry.last_tick, entry.last_run_at, entry.last_job_id) == (tick, tick, job.id)
    got = redis_backend.get(job.id, at)
    assert (got.class_name, got.args, got.state) == ("Poller", [1, {"k": "v"}], JobState.PENDING)
    # the next tick's job is the same bytes: a twin, named as enqueue and the listings name it
    later = redis_backend.fire_schedule("poll", tick + timedelta(seconds=30), job_for(s), at)
    assert later is not None and later.id == f"{job.id}.2"
    assert r.llen("resque:queue:q") == 2
    assert by_name(redis_backend, "poll").last_job_id == later.id
    assert redis_backend.get(later.id, at).id == later.id
    assert redis_backend.enqueue(job_for(s)).id == f"{job.id}.3"


def test_run_now_enqueues_without_consuming_a_tick(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    s = Schedule("poll", "Poller", queue="q", every=30.0, enabled=False)
    redis_backend.save_schedule(s, NOW)
    assert redis_backend.fire_schedule("poll", None, job_for(s), NOW) is not None  # disabled: run now still runs
    redis_backend.save_schedule(s.with_enabled(True), NOW)
    tick = datetime(2026, 12, 7, 16, 38, 30, tzinfo=UTC)
    assert redis_backend.fire_schedule("poll", None, job_for(s), NOW) is not None
    assert redis_backend.fire_schedule("poll", tick, job_for(s), NOW) is not None  # its own run is no Ruby run
    assert r.llen("resque:queue:q") == 3
    with pytest.raises(ScheduleNotFound):
        redis_backend.fire_schedule("nope", None, job_for(s), NOW)
    assert redis_backend.fire_schedule("nope", tick, job_for(s), NOW) is None
    assert r.llen("resque:queue:default") == 0


def test_a_schedule_qadmin_never_saw_is_armed_at_its_first_tick(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    set_schedule(r, "rb", {"class": "Rb", "queue": "q", "every": "30s"})
    s = by_name(redis_backend, "rb").schedule
    tick = datetime(2026, 12, 7, 16, 38, 30, tzinfo=UTC)
    assert redis_backend.fire_schedule("rb", tick, job_for(s), NOW) is None
    assert r.llen("resque:queue:q") == 0
    assert redis_backend.fire_schedule("rb", tick + timedelta(seconds=30), job_for(s), NOW) is not None


def test_a_tick_rubys_scheduler_fired_is_not_fired_again(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    """Leadership passed from Ruby to qadmin: Ruby wrote its run in its host's local time."""
    s = Schedule("daily", "Daily", queue="q", cron="0 5 * * *")
    redis_backend.save_schedule(s, datetime(2026, 12, 5, 12, 0, tzinfo=UTC))  # armed at Dec 5th 05:00
    five = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
    r.hset(LAST_RUN, "daily", "2026-12-07 06:00:01 +0100")  # Ruby (Paris) fired Dec 7th 05:00 UTC
    assert redis_backend.fire_schedule("daily", five, job_for(s), NOW) is None
    assert r.llen("resque:queue:q") == 0
    assert by_name(redis_backend, "daily").last_tick == five
    r.hset(LAST_RUN, "daily", "2026-12-07 23:59:59 -0500")  # Dec 8th 04:59:59 UTC: before the next tick
    assert redis_backend.fire_schedule("daily", five + timedelta(days=1), job_for(s), NOW) is not None


def test_time_to_s_is_rubys_text() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}", time_to_s(NOW))
    assert time_to_s(NOW) == "2026-12-07 16:38:28 +0000"
    assert parse_time_to_s(b"2026-12-07 17:38:28 +0100") == NOW.replace(microsecond=0)
    assert parse_time_to_s("2026-12-07 16:38:28 UTC") == NOW.replace(microsecond=0)  # Time.now.utc.to_s
    assert parse_time_to_s(b"yesterday") is None


def test_saving_again_keeps_the_tick_memory_and_enabling_resumes_at_the_next_tick(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    s = Schedule("poll", "Poller", queue="q", every=30.0)
    redis_backend.save_schedule(s, NOW)
    tick = datetime(2026, 12, 7, 16, 38, 30, tzinfo=UTC)
    assert redis_backend.fire_schedule("poll", tick, job_for(s), NOW) is not None
    assert redis_backend.save_schedule(s, NOW).last_tick == tick  # a save never fires a tick twice
    assert redis_backend.fire_schedule("poll", tick, job_for(s), NOW) is None
    redis_backend.save_schedule(s.with_enabled(False), NOW)
    later = NOW + timedelta(hours=1)
    entry = redis_backend.save_schedule(s, later)  # the ticks missed while disabled are not caught up
    assert entry.last_tick == s.previous_tick(later)
    assert redis_backend.fire_schedule("poll", s.previous_tick(later), job_for(s), later) is None


def test_remove_forgets_it_and_tells_ruby(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    s = Schedule("poll", "Poller", queue="q", every=30.0)
    redis_backend.save_schedule(s, NOW)
    redis_backend.fire_schedule("poll", None, job_for(s), NOW)
    r.delete(CHANGED)
    assert redis_backend.remove_schedule("poll") is True
    assert redis_backend.schedules(NOW) == []
    assert r.smembers(CHANGED) == {b"poll"}  # as `remove_schedule` does
    for key in (PERSISTENT, DISABLED, TICKS, LAST_RUN, "resque:qadmin:schedules:runs", "resque:qadmin:schedules:meta"):
        assert r.hget(key, "poll") is None
    assert redis_backend.remove_schedule("poll") is False
    assert r.llen("resque:queue:q") == 1  # its jobs stay


def test_the_master_lock_is_resque_schedulers(redis_backend, r, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert redis_backend.schedule_leader("web-1:4242", 180) is True
    assert r.get(LOCK) == b"web-1:4242"
    assert 179 <= r.ttl(LOCK) <= 180
    assert redis_backend.schedule_leader("web-2:77", 180) is False  # another holder: excluded
    assert r.get(LOCK) == b"web-1:4242"
    r.expire(LOCK, 5)
    assert redis_backend.schedule_leader("web-1:4242", 2.5) is True  # the holder extends it
    assert r.ttl(LOCK) == 3
    r.delete(LOCK)  # expired, or released
    assert redis_backend.schedule_leader("web-2:77", 180) is True
    # resque-scheduler's RESQUE_SCHEDULER_MASTER_LOCK_PREFIX names the same key for both
    from qadmin.backends import BackendOptions
    from qadmin.backends.redis import RedisBackend

    monkeypatch.setenv("RESQUE_SCHEDULER_MASTER_LOCK_PREFIX", "app")
    other = RedisBackend(redis_backend.server.safe_url, BackendOptions(namespace="jobs"))
    try:
        assert other.schedule_leader("h:1", 60) is True
    finally:
        other.close()
    assert r.get("jobs:jobs:app:resque_scheduler_master_lock") == b"h:1"


def test_a_twin_a_ruby_worker_holds_is_counted_in_the_jobs_id(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    s = Schedule("poll", "Poller", queue="q", every=30.0)
    redis_backend.save_schedule(s, NOW)
    payload = redis_backend.enqueuer.encode(job_for(s), NOW)
    r.sadd("resque:workers", "ruby-host:7:q")  # Resque's worker runs one tick's job already
    r.set("resque:worker:ruby-host:7:q", b'{"queue":"q","run_at":"2026-12-07T16:38:00Z","payload":' + payload + b"}")
    job = redis_backend.fire_schedule("poll", None, job_for(s), NOW)
    assert job is not None and job.id.endswith(".2")
    assert by_name(redis_backend, "poll").last_job_id == job.id
    assert redis_backend.get(job.id, NOW).state is JobState.PENDING
