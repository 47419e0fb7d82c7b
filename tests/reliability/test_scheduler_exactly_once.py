"""Three `qadmin scheduler` processes on one backend enqueue each tick of a schedule exactly once
(issue #16): an `every = "1s"` schedule and a cron with a seconds field, for about six seconds.

Each scheduler logs every job it enqueued with its tick. Every job stored for a schedule must be
one of those lines, and no tick may appear twice, whichever process fired it. Then `qadmin worker
--scheduler --burst` enqueues a due tick and runs its job, end to end.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench.chaos import child_env, qadmin_cmd
from qadmin.backends import BackendOptions, open_backend
from qadmin.filters import JobFilter
from qadmin.job import utcnow
from qadmin.recurring import Schedule

NOOP = "qadmin.examples.noop"
RECORD = "qadmin.examples.record"
#: "schedule 'NAME': enqueued job ID (...) for tick ISO", as `qadmin.scheduler` logs it
FIRED = re.compile(r"schedule '([^']+)': enqueued job (\S+) \(.*\) for tick (\S+)")
SCHEDULERS = 3
RUN_SECONDS = 6.0


def test_three_schedulers_enqueue_each_tick_once(any_url: str, tmp_path: Path) -> None:
    backend = open_backend(any_url, BackendOptions())
    backend.init()
    now = utcnow()
    backend.save_schedule(Schedule(name="every-second", job_class=NOOP, args=["every"], every=1.0), now)
    backend.save_schedule(Schedule(name="cron-second", job_class=NOOP, args=["cron"], cron="* * * * * *"), now)
    logs = [tmp_path / f"scheduler-{n}.log" for n in range(SCHEDULERS)]
    procs = []
    for log in logs:
        with log.open("w") as out:
            procs.append(
                subprocess.Popen(
                    qadmin_cmd(any_url, "scheduler", "--poll", "1"),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=child_env(),
                )
            )
    try:
        # the clock starts once every scheduler is up (starting Python takes seconds on a busy machine)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all("started" in log.read_text() for log in logs):
            time.sleep(0.1)
        time.sleep(RUN_SECONDS)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=30) for p in procs]
    text = {log.name: log.read_text() for log in logs}
    assert codes == [0] * SCHEDULERS, text

    fired = [m.groups() for t in text.values() for m in FIRED.finditer(t)]
    for name, marker in (("every-second", "every"), ("cron-second", "cron")):
        ticks = [tick for schedule, _job, tick in fired if schedule == name]
        twice = [tick for tick, n in Counter(ticks).items() if n > 1]
        assert not twice, f"{name}: ticks enqueued more than once: {twice}\n{text}"
        stored = [
            str(j.id) for j in backend.find(JobFilter(class_name=NOOP), utcnow(), limit=1000).jobs if j.args == [marker]
        ]
        logged = sorted(job for schedule, job, _tick in fired if schedule == name)
        assert sorted(stored) == logged, f"{name}: every stored job is one logged tick\n{text}"
        # a tick a second for six seconds, less the first (armed at save) and some slack for a
        # loaded machine, where a late pass fires the latest tick only
        assert len(ticks) >= 3, f"{name}: only {len(ticks)} ticks fired\n{text}"
    backend.close()


def test_worker_with_scheduler_runs_a_due_schedule_end_to_end(any_url: str, tmp_path: Path) -> None:
    done = tmp_path / "ran.txt"
    backend = open_backend(any_url, BackendOptions())
    backend.init()
    backend.save_schedule(Schedule(name="recorder", job_class=RECORD, args=[str(done), "tick"], every=1.0), utcnow())
    backend.close()
    time.sleep(1.2)  # the schedule's next tick has come
    result = subprocess.run(
        qadmin_cmd(any_url, "worker", "--scheduler", "--burst"),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "schedule 'recorder': enqueued job" in result.stderr
    assert done.read_text().splitlines() == ["tick"]


def test_a_scheduler_stops_cleanly_on_sigint(sqlite_url: str) -> None:
    open_backend(sqlite_url, BackendOptions()).init()
    p = subprocess.Popen(
        qadmin_cmd(sqlite_url, "scheduler"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=child_env(),
        text=True,
    )
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0 and "stopped" in out, out


def test_a_worker_with_scheduler_runs_ticks_as_they_come_and_stops_on_sigterm(sql_url: str, tmp_path: Path) -> None:
    done = tmp_path / "ran.txt"
    backend = open_backend(sql_url, BackendOptions())
    backend.init()
    backend.save_schedule(Schedule(name="recorder", job_class=RECORD, args=[str(done), "tick"], every=1.0), utcnow())
    backend.close()
    p = subprocess.Popen(
        qadmin_cmd(sql_url, "worker", "--scheduler", "--sleep", "0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=child_env(),
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(done.read_text().splitlines() if done.exists() else []) < 3:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out
    assert len(done.read_text().splitlines()) >= 3, out
    assert "scheduler" in out and "stopped" in out, out
