"""The scheduler loop (`qadmin.scheduler`) on SQLite with a clock of the test's: qadmin.toml's
schedules synced, due ticks fired once, one run for the latest missed tick; `[recurring.NAME]`
tables read by config; `Client.schedule`; the CLI verbs' exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

import qadmin
from qadmin.cli import main
from qadmin.config import load_config
from qadmin.errors import ConfigError, UsageError
from qadmin.filters import JobFilter
from qadmin.ops import Ops, open_ops
from qadmin.recurring import SOURCE_API, SOURCE_CONFIG, Schedule
from qadmin.scheduler import Scheduler
from qadmin.settings import resolve

NOOP = "qadmin.examples.noop"
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(seconds=30))


@pytest.fixture
def ops(sqlite_url: str, clock: Clock) -> Iterator[Ops]:
    o = open_ops(resolve(url=sqlite_url, environ={}), face="scheduler", clock=clock)
    o.backend.init()
    yield o
    o.close()


def declared(text: str, tmp_path: Path) -> tuple[Schedule, ...]:
    path = tmp_path / "qadmin.toml"
    path.write_text(text)
    return load_config(str(path)).recurring


def jobs(ops: Ops) -> list[qadmin.Job]:
    return ops.backend.find(JobFilter(), ops.clock(), limit=100).jobs


def test_due_ticks_fire_once_and_a_scheduler_that_was_down_runs_the_latest_missed_tick_once(
    ops: Ops, clock: Clock
) -> None:
    ops.recurring.save(Schedule(name="m", job_class=NOOP, args=[1], every=60.0))
    scheduler = Scheduler(ops, clock=clock)
    fired, upcoming = scheduler.run_pass()
    assert fired == [] and upcoming == T0 + timedelta(minutes=1)  # armed at save: T0 does not fire
    clock.now = T0 + timedelta(minutes=1, seconds=1)
    assert len(scheduler.run_pass()[0]) == 1
    assert scheduler.run_pass()[0] == []  # the same tick, again
    assert Scheduler(ops, clock=clock).run_pass()[0] == []  # another scheduler, the same tick
    clock.now = T0 + timedelta(minutes=10, seconds=5)  # nine ticks missed
    assert len(scheduler.run_pass()[0]) == 1
    assert scheduler.run_pass()[0] == []
    assert len(jobs(ops)) == 2


def test_a_disabled_schedule_is_not_fired_and_the_next_wake_is_the_nearest_tick(ops: Ops, clock: Clock) -> None:
    ops.recurring.save(Schedule(name="off", job_class=NOOP, every=1.0, enabled=False))
    ops.recurring.save(Schedule(name="hourly", job_class=NOOP, cron="0 * * * *"))
    clock.now = T0 + timedelta(minutes=5)
    fired, upcoming = Scheduler(ops, clock=clock).run_pass()
    assert fired == [] and upcoming == T0 + timedelta(hours=1)


def test_a_class_no_one_can_import_is_still_enqueued(ops: Ops, clock: Clock) -> None:
    ops.recurring.save(Schedule(name="x", job_class="nowhere.Missing", every=60.0))
    clock.now = T0 + timedelta(minutes=1)
    [job] = Scheduler(ops, clock=clock).run_pass()[0]
    assert job.class_name == "nowhere.Missing"


TOML = """
[recurring.report]
class = "myapp.report"
args = ["daily"]
kwargs = {format = "pdf"}
queue = "reports"
priority = 2
cron = "0 3 * * *"
timezone = "Europe/Paris"

[recurring.tidy]
class = "myapp.tidy"
every = "30s"
"""


def test_sync_stores_the_files_schedules_and_follows_the_file(ops: Ops, clock: Clock, tmp_path: Path) -> None:
    ops.recurring.save(Schedule(name="mine", job_class=NOOP, every=60.0))  # from the API: left alone
    scheduler = Scheduler(ops, clock=clock)
    report = scheduler.sync(declared(TOML, tmp_path))
    assert sorted(report.saved) == ["report", "tidy"] and report.removed == []
    stored = {e.schedule.name: e.schedule for e in ops.recurring.entries()}
    assert stored["report"].args == ["daily"] and stored["report"].kwargs == {"format": "pdf"}
    assert stored["report"].timezone == "Europe/Paris" and stored["report"].priority == 2
    assert stored["tidy"].every == 30.0 and stored["tidy"].source == SOURCE_CONFIG
    assert stored["mine"].source == SOURCE_API
    # unchanged: nothing saved, nothing audited
    audited = len(ops.audit(100))
    assert scheduler.sync(declared(TOML, tmp_path)).saved == []
    assert len(ops.audit(100)) == audited
    # tidy gone from the file, report changed: tidy removed, report replaced, mine untouched
    changed = TOML.split("[recurring.tidy]")[0].replace('"daily"', '"weekly"')
    report = scheduler.sync(declared(changed, tmp_path))
    assert report.saved == ["report"] and report.removed == ["tidy"]
    stored = {e.schedule.name: e.schedule for e in ops.recurring.entries()}
    assert sorted(stored) == ["mine", "report"] and stored["report"].args == ["weekly"]


def test_an_operators_disable_outlives_a_sync_and_the_files_enabled_false_wins(
    ops: Ops, clock: Clock, tmp_path: Path
) -> None:
    scheduler = Scheduler(ops, clock=clock)
    scheduler.sync(declared(TOML, tmp_path))
    ops.recurring.disable("tidy")
    scheduler.sync(declared(TOML.replace('"30s"', '"45s"'), tmp_path))
    tidy = ops.recurring.get("tidy").schedule
    assert not tidy.enabled and tidy.every == 45.0
    ops.recurring.enable("report")
    scheduler.sync(declared(TOML.replace("priority = 2", "priority = 2\nenabled = false"), tmp_path))
    assert not ops.recurring.get("report").schedule.enabled


def test_a_sync_keeps_the_memory_of_ticks(ops: Ops, clock: Clock, tmp_path: Path) -> None:
    scheduler = Scheduler(ops, clock=clock)
    scheduler.sync(declared(TOML, tmp_path))
    clock.now = T0 + timedelta(minutes=1)
    assert [j.class_name for j in scheduler.run_pass()[0]] == ["myapp.tidy"]
    scheduler.sync(declared(TOML.replace('class = "myapp.tidy"', 'class = "myapp.tidy2"'), tmp_path))
    assert scheduler.run_pass()[0] == []


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('[recurring.a]\nclass = "x"\n', "exactly one of cron"),
        ('[recurring.a]\nclass = "x"\ncron = "nope"\n', "not a cron expression"),
        ('[recurring.a]\nclass = "x"\nevery = "soon"\n', "every = 'soon'"),
        ('[recurring.a]\nclass = "x"\nevery = "1m"\ntimezone = "UTC"\n', "timezone applies to cron only"),
        ('[recurring.a]\nclass = "x"\ncron = "* * * * *"\ntimezone = "Mars/Base"\n', "unknown time zone"),
        ('[recurring.a]\nclass = "x"\nevery = "1m"\nqueue = 3\n', "queue must be"),
        ('[recurring.a]\nclas = "x"\nevery = "1m"\n', "unknown key"),
        ('recurring = "x"\n', "[recurring] must hold tables"),
    ],
)
def test_a_bad_recurring_table_is_a_config_error_naming_it(table: str, needle: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        declared(table, tmp_path)
    assert needle in str(caught.value) and "qadmin.toml" in str(caught.value)


def test_client_schedule_saves_through_the_backend(sqlite_url: str) -> None:
    @qadmin.job("tests.scheduled", queue="mail", priority=4)
    def send(to: str, subject: str = "") -> None: ...

    with qadmin.connect(sqlite_url) as q:
        q.backend.init()
        entry = q.schedule("mailer", send, "ann@example.com", cron="0 9 * * 1", timezone="Europe/Paris", subject="hi")
        assert entry.schedule.job_class == "tests.scheduled" and entry.schedule.queue == "mail"
        assert entry.schedule.priority == 4 and entry.schedule.kwargs == {"subject": "hi"}
        q.schedule("ticker", NOOP, every=timedelta(minutes=5), queue="q")
        names = {e.schedule.name: e.schedule for e in q.backend.schedules(datetime.now(UTC))}
        assert sorted(names) == ["mailer", "ticker"] and names["ticker"].every == 300.0
        with pytest.raises(UsageError):
            q.schedule("both", NOOP, cron="* * * * *", every=60)


def cli(*args: str) -> tuple[int, str, str]:
    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None})
    result = runner.invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_recurring_verbs_on_the_command_line(sqlite_url: str, tmp_path: Path) -> None:
    assert cli("--url", sqlite_url, "init")[0] == 0
    code, out, err = cli("--url", sqlite_url, "recurring", "add", "t", "--class", NOOP, "--every", "30s", "--json")
    assert code == 0, err
    assert json.loads(out)["schedule"]["timing"] == "every 30s"
    code, out, _ = cli("--url", sqlite_url, "recurring", "--json")
    assert [e["name"] for e in json.loads(out)] == ["t"]
    assert cli("--url", sqlite_url, "recurring", "disable", "t", "--dry-run")[0] == 0
    assert json.loads(cli("--url", sqlite_url, "recurring", "--json")[1])[0]["enabled"] is True
    code, out, _ = cli("--url", sqlite_url, "recurring", "run-now", "t", "--json")
    assert code == 0 and json.loads(out)["job"]["class"] == NOOP
    for verb in ("enable", "disable", "run-now", "remove"):
        code, _, err = cli("--url", sqlite_url, "recurring", verb, "nope")
        assert code == 2 and "no recurring schedule named 'nope'" in err
    code, _, err = cli("--url", sqlite_url, "recurring", "add", "u", "--class", NOOP)
    assert code == 2 and "--cron" in err
    code, _, err = cli("--url", sqlite_url, "recurring", "add", "u", "--class", NOOP, "--cron", "bad")
    assert code == 2 and "not a cron expression" in err
    assert cli("--url", sqlite_url, "recurring", "remove", "t")[0] == 0
    assert json.loads(cli("--url", sqlite_url, "recurring", "--json")[1]) == []


def test_scheduler_once_syncs_the_config_file(sqlite_url: str, tmp_path: Path) -> None:
    config = tmp_path / "qadmin.toml"
    config.write_text(f'[backends.b]\nurl = "{sqlite_url}"\n' + TOML)
    assert cli("--config", str(config), "init")[0] == 0
    code, _, err = cli("--config", str(config), "scheduler", "--once")
    assert code == 0, err
    code, out, _ = cli("--config", str(config), "recurring", "--json")
    assert [(e["name"], e["source"]) for e in json.loads(out)] == [("report", "qadmin.toml"), ("tidy", "qadmin.toml")]


def test_recurring_subcommands_take_the_backend_options_anywhere(sqlite_url: str) -> None:
    assert cli("--url", sqlite_url, "init")[0] == 0
    assert cli("recurring", "add", "t", "--class", NOOP, "--every", "1m", "--url", sqlite_url)[0] == 0
    assert cli("recurring", "--url", sqlite_url, "disable", "t")[0] == 0
    assert cli("--url", sqlite_url, "recurring", "enable", "t", "--url", sqlite_url)[0] == 0
    code, _, err = cli("recurring", "--url", sqlite_url, "enable", "t", "--url", "sqlite:///other.db")
    assert code == 2 and "--url given twice" in err and repr(sqlite_url) in err
