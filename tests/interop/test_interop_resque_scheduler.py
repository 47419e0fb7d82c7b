"""Ruby's resque-scheduler and qadmin operate each other's recurring schedules (docs/compatibility.md §2.4).

The resque gems are not installable here, so resque_scheduler_app.rb runs resque-scheduler's own
lines for persisted schedules, the master lock and a recurring enqueue on the libraries it runs
them on: redis-rb behind Redis::Namespace, the json gem, rufus-scheduler and fugit (Debian's
ruby-redis, ruby-redis-namespace, ruby-rufus-scheduler, ruby-fugit).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from qadmin.backends.redis.schedule_config import parse_time_to_s
from qadmin.job import utcnow
from qadmin.ops.recurring import new_job_for
from qadmin.recurring import SOURCE_RESQUE, Schedule
from tests.backends.conftest import r, redis_backend  # noqa: F401 - fixtures
from tests.interop._support import cli, need_ruby

pytestmark = pytest.mark.redis

APP = Path(__file__).resolve().parent / "resque_scheduler_app.rb"
LOCK = "resque:resque:resque_scheduler_master_lock"


@pytest.fixture
def ruby(redis_url: str):  # type: ignore[no-untyped-def]
    """Run a command of resque_scheduler_app.rb on the test Redis (a Ruby host on UTC: rufus
    reads a zone-less cron, and Time#to_s writes, in the host's local time)."""
    need_ruby("redis", "redis/namespace", "rufus-scheduler", "fugit")

    def run(command: str, **opts: Any) -> Any:
        res = subprocess.run(
            ["ruby", str(APP), command, json.dumps({"url": redis_url, **opts})],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TZ": "UTC"},
        )
        assert res.returncode == 0, f"ruby {command} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        return json.loads(res.stdout)

    return run


def test_a_schedule_set_in_ruby_is_listed_fired_and_disabled_by_qadmin(ruby, redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    ruby(
        "set_schedule",
        schedules={
            "nightly": {
                "class": "Maintenance::Vacuum",
                "args": {"full": True},
                "queue": "maint",
                "cron": "30 2 * * * Europe/Paris",
                "description": "vacuum",
                "persist": True,
            },  # fmt: skip
            "Heartbeat": {"every": ["30s", {"first_in": "5s"}], "queue": "hb"},
        },
    )
    now = utcnow()
    listed = {e.schedule.name: e.schedule for e in redis_backend.schedules(now)}
    assert listed == {
        "nightly": Schedule(
            "nightly",
            "Maintenance::Vacuum",
            [{"full": True}],
            queue="maint",
            cron="30 2 * * *",
            timezone="Europe/Paris",
            description="vacuum",
            source=SOURCE_RESQUE,
        ),  # fmt: skip
        "Heartbeat": Schedule("Heartbeat", "Heartbeat", queue="hb", every=30.0, source=SOURCE_RESQUE),
    }
    # qadmin never saw it: its first tick arms it, the next one enqueues what Ruby would
    nightly = listed["nightly"]
    first = nightly.next_tick(now)
    assert redis_backend.fire_schedule("nightly", first, new_job_for(nightly), first) is None
    second = nightly.next_tick(first)
    job = redis_backend.fire_schedule("nightly", second, new_job_for(nightly), second)
    assert job is not None
    ruby("enqueue_from_config", name="nightly")
    ours, rubys = r.lrange("resque:queue:maint", 0, -1)
    assert ours == rubys == b'{"class":"Maintenance::Vacuum","args":[{"full":true}]}'
    assert redis_backend.get(job.id, second).args == [{"full": True}]
    # disabled by qadmin: out of Ruby's all_schedules, and a running scheduler told to reload it
    redis_backend.save_schedule(nightly.with_enabled(False), now)
    assert set(ruby("all_schedules", **{"from": now.timestamp()})) == {"Heartbeat"}
    assert b"nightly" in r.smembers("resque:schedules_changed")
    redis_backend.save_schedule(nightly, now)
    assert ruby("all_schedules", **{"from": now.timestamp()})["nightly"]["config"] == {
        "class": "Maintenance::Vacuum", "args": {"full": True}, "queue": "maint",
        "cron": "30 2 * * * Europe/Paris", "description": "vacuum"}  # fmt: skip


def test_rufus_reads_qadmins_schedules_as_qadmin_ticks_them(ruby, redis_backend) -> None:  # type: ignore[no-untyped-def]
    now = datetime(2026, 12, 7, 16, 38, 28, tzinfo=UTC)
    saved = [
        Schedule("ny", "Report", queue="r", cron="0 5 * * *", timezone="America/New_York"),
        Schedule("office", "Sync", queue="s", cron="*/15 9-17 * * 1-5"),
        Schedule("dst", "Paris", queue="p", cron="30 2 * * *", timezone="Europe/Paris"),
        Schedule("macro", "Hourly", queue="h", cron="@hourly"),
        Schedule("secs", "Secs", queue="s", cron="*/20 * * * * 15,45", timezone="Asia/Kolkata"),
        Schedule("poll", "Poller", queue="q", every=90.0),
        Schedule("long", "Long", queue="q", every=5400.0),
        Schedule("half", "Half", queue="q", every=1.5),
    ]
    for s in saved:
        redis_backend.save_schedule(s, now)
    seen = ruby("all_schedules", **{"from": now.timestamp()})
    assert set(seen) == {s.name for s in saved}
    for s in saved:
        got = seen[s.name]
        if s.cron is not None:
            assert got["type"] == "cron"
            assert got["zone"] == (None if s.timezone == "UTC" else s.timezone)
            ticks, at = [], now
            for _ in range(4):
                at = s.next_tick(at)
                ticks.append(int(at.timestamp()))
            assert got["next"] == ticks, s.name
        else:
            assert (got["type"], got["frequency"]) == ("every", s.every), s.name


def test_rubys_scheduler_runs_a_schedule_saved_by_qadmin(ruby, redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    s = Schedule("tick", "Ticker", [1, "a"], queue="t", every=1.0)
    redis_backend.save_schedule(s, utcnow())
    assert ruby("run_scheduler", seconds=3.5)["master"] is True
    pushed = r.lrange("resque:queue:t", 0, -1)
    assert len(pushed) >= 2
    assert set(pushed) == {redis_backend.enqueuer.encode(new_job_for(s), utcnow())}
    # Ruby's run, recorded as Ruby records it, is this schedule's last run for qadmin too
    [entry] = redis_backend.schedules(utcnow())
    ran = parse_time_to_s(r.hget("resque:delayed:last_enqueued_at", "tick"))
    assert ran is not None and entry.last_run_at == ran and entry.last_job_id is None
    assert abs((utcnow() - ran).total_seconds()) < 5
    # leadership passes to qadmin: the tick Ruby fired is not fired again, the next one is
    r.delete(LOCK)
    assert redis_backend.schedule_leader("qadmin-host:1", 180) is True
    assert redis_backend.fire_schedule("tick", ran, new_job_for(s), utcnow()) is None
    assert redis_backend.fire_schedule("tick", ran + timedelta(seconds=1), new_job_for(s), utcnow()) is not None


def test_the_master_lock_keeps_one_scheduler_either_way(ruby, redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    got = ruby("master", times=2)  # acquire!, then locked? extends it
    assert got["master"] == [True, True]
    assert got["key"] == "resque:resque_scheduler_master_lock"  # sent through the namespace: doubled
    assert r.get(LOCK) == got["value"].encode() and 170 <= r.ttl(LOCK) <= 180
    assert redis_backend.schedule_leader("qadmin-host:1", 180) is False
    assert r.get(LOCK) == got["value"].encode()
    r.delete(LOCK)  # Ruby's master stopped (its lock expired, or released)
    assert redis_backend.schedule_leader("qadmin-host:1", 180) is True
    assert ruby("master", times=2)["master"] == [False, False]
    # while qadmin leads, Ruby's scheduler enqueues nothing
    redis_backend.save_schedule(Schedule("tick", "Ticker", queue="t", every=1.0), utcnow())
    assert ruby("run_scheduler", seconds=2.5)["master"] is False
    assert r.llen("resque:queue:t") == 0 and r.hget("resque:delayed:last_enqueued_at", "tick") is None
    # and a holder Ruby names as qadmin does keeps it, as one process would
    assert ruby("master", holder="qadmin-host:1")["master"] == [True]


def test_the_recurring_cli_operates_a_schedule_set_in_ruby(ruby, redis_url, r) -> None:  # type: ignore[no-untyped-def]
    ruby(
        "set_schedule", schedules={"Heartbeat": {"class": "Heartbeat", "every": "30s", "queue": "hb", "args": ["ping"]}}
    )
    [listed] = cli(redis_url, "recurring", "--json")
    assert (listed["name"], listed["class"], listed["args"], listed["timing"]) == (
        "Heartbeat", "Heartbeat", ["ping"], "every 30s")  # fmt: skip
    assert (listed["source"], listed["enabled"]) == ("resque-scheduler", True)
    ran = cli(redis_url, "recurring", "run-now", "Heartbeat", "--json")
    ruby("enqueue_from_config", name="Heartbeat")
    ours, rubys = r.lrange("resque:queue:hb", 0, -1)
    assert ours == rubys == b'{"class":"Heartbeat","args":["ping"]}'
    [listed] = cli(redis_url, "recurring", "--json")
    assert listed["last_job_id"] == ran["job"]["id"] and listed["last_run_at"] is not None
    cli(redis_url, "recurring", "disable", "Heartbeat", "--json")
    assert ruby("all_schedules", **{"from": 0}) == {}  # Ruby's scheduler no longer runs it
    [listed] = cli(redis_url, "recurring", "--json")
    assert (listed["enabled"], listed["source"]) == (False, "resque-scheduler")
    cli(redis_url, "recurring", "enable", "Heartbeat")
    assert (
        r.hget("resque:persistent_schedules", "Heartbeat")
        == b'{"class":"Heartbeat","every":"30s","queue":"hb","args":["ping"]}'
    )
    # what Ruby's scheduler would enqueue differently is refused, nothing written
    out = cli(redis_url, "recurring", "add", "kw", "--class", "Mailer", "--every", "1m", "--kwargs", '{"to": "a"}',
              expect=2)  # fmt: skip
    assert "kwargs" in out and r.hget("resque:persistent_schedules", "kw") is None
