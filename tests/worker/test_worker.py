"""The worker in-process: `Worker.run_once()` on a real SQLite database and a clock the test moves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from qadmin import events, registry
from qadmin.backends import Backend, open_backend
from qadmin.client import Client
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, backoff_seconds, utcnow
from qadmin.worker import Worker, WorkerOptions


class Clock:
    def __init__(self) -> None:
        self.now = utcnow() + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def backend(sqlite_url: str) -> Iterator[Backend]:
    b = open_backend(sqlite_url)
    b.init()
    yield b
    b.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def calls() -> Iterator[list[tuple[Any, ...]]]:
    """Hook and event calls, in order; listeners are removed after the test."""
    seen: list[tuple[Any, ...]] = []
    listeners = {name: (lambda *a, name=name: seen.append(("event", name, *a))) for name in events.NAMES}
    for name, fn in listeners.items():
        events.on(name, fn)
    yield seen
    for name, fn in listeners.items():
        events.off(name, fn)


def worker(backend: Backend, clock: Clock, **options: Any) -> Worker:
    options.setdefault("heartbeat_interval", 3600)
    options.setdefault("imports", ["qadmin.examples"])
    return Worker(backend, WorkerOptions(**options), clock=clock)


def get(backend: Backend, job: Job, clock: Clock) -> Job:
    return backend.get(job.id, clock())


_counter = iter(range(10**6))


def register(target: Any) -> str:
    """Register a job class under a name no other test uses."""
    name = f"tests.worker.{getattr(target, '__name__', 'job')}.{next(_counter)}"
    registry.register(name, target)
    return name


# --- success, failure, backoff ----------------------------------------------------------------
def test_a_job_that_succeeds_is_finished(backend: Backend, clock: Clock) -> None:
    got: list[Any] = []
    name = register(lambda *a, **kw: got.append((a, kw)))
    job = Client(backend).enqueue(name, 1, "two", three=3)
    assert worker(backend, clock).run_once() is True
    assert got == [((1, "two"), {"three": 3})]
    assert get(backend, job, clock).state is JobState.FINISHED
    assert worker(backend, clock).run_once() is False


def test_failures_back_off_attempts_to_the_fourth_plus_five_then_fail(
    backend: Backend, clock: Clock, calls: list
) -> None:
    def always_fails() -> None:
        raise KeyError("missing")

    job = Client(backend).enqueue(register(always_fails), max_attempts=3)
    w = worker(backend, clock)
    for attempt in (1, 2):
        assert w.run_once() is True
        got = get(backend, job, clock)
        assert got.state is JobState.SCHEDULED and got.attempts == attempt
        assert got.run_at == clock.now + timedelta(seconds=attempt**4 + 5)
        assert got.error_message == "KeyError: 'missing'"
        assert "Traceback (most recent call last)" in got.last_error
        # not before its time
        clock.advance(backoff_seconds(attempt) - 1)
        assert w.run_once() is False
        clock.advance(1)
    assert w.run_once() is True
    got = get(backend, job, clock)
    assert got.state is JobState.FAILED and got.attempts == 3 and got.failed_at == clock.now
    assert [c[1] for c in calls if c[1] == "on_failure"] == ["on_failure"]
    assert (w.processed, w.failed) == (3, 3)


def test_the_worker_max_attempts_applies_when_the_job_has_none(backend: Backend, clock: Clock) -> None:
    job = Client(backend).enqueue("qadmin.examples.sync_inventory", "SKU-1")
    w = worker(backend, clock, max_attempts=2)
    w.run_once()
    clock.advance(backoff_seconds(1))
    w.run_once()
    got = get(backend, job, clock)
    assert got.state is JobState.FAILED and got.attempts == 2
    assert got.error_message == "InventoryUnavailable: inventory service timed out"


def test_a_job_over_its_max_run_time_is_interrupted_and_failed(backend: Backend, clock: Clock) -> None:
    job = Client(backend).enqueue("qadmin.examples.generate_report", "slow", 30)
    started = time.monotonic()
    assert worker(backend, clock, max_run_time=0.3).run_once() is True
    assert time.monotonic() - started < 25, "the job was not interrupted"
    got = get(backend, job, clock)
    assert got.state is JobState.SCHEDULED and got.attempts == 1
    assert got.error_message == "JobTimeout: execution expired (max run time 0.3s)"


def test_every_job_gets_its_time_limit_and_the_alarm_handler_is_put_back(backend: Backend, clock: Clock) -> None:
    import signal

    def mine(*_: Any) -> None:
        pass

    previous = signal.signal(signal.SIGALRM, mine)
    try:
        c = Client(backend)
        slow = [c.enqueue("qadmin.examples.generate_report", "slow", 30) for _ in range(2)]
        quick = c.enqueue("qadmin.examples.noop", 1)
        started = time.monotonic()
        worker(backend, clock, max_run_time=0.3, burst=True).work()
        assert time.monotonic() - started < 50, "a job was not interrupted"
        assert [get(backend, j, clock).error_message for j in slow] == [
            "JobTimeout: execution expired (max run time 0.3s)"
        ] * 2
        assert backend.count(JobFilter(states=frozenset({JobState.FINISHED})), clock()) == 1
        assert quick.id not in [j.id for j in backend.find(JobFilter(), clock(), limit=10).jobs]
        # the worker's handler stayed from job to job, and is gone once it stops
        assert signal.getsignal(signal.SIGALRM) is mine
    finally:
        signal.signal(signal.SIGALRM, previous)


# --- hooks and events -------------------------------------------------------------------------
class Hooked:
    log: list[tuple[str, Any]] = []

    def __init__(self) -> None:
        self.me = object()

    def perform(self, fail: bool = False) -> None:
        Hooked.log.append(("perform", self.me))
        if fail:
            raise RuntimeError("asked to fail")

    def before(self, job: Job) -> None:
        Hooked.log.append(("before", self.me))

    def after(self, job: Job) -> None:
        Hooked.log.append(("after", self.me))

    def success(self, job: Job) -> None:
        Hooked.log.append(("success", self.me))

    def error(self, job: Job, exc: BaseException) -> None:
        Hooked.log.append(("error", type(exc).__name__))

    def failure(self, job: Job) -> None:
        Hooked.log.append(("failure", None))


def test_hooks_of_a_successful_run(backend: Backend, clock: Clock, calls: list) -> None:
    Hooked.log = []
    job = Client(backend).enqueue(register(Hooked))
    worker(backend, clock).run_once()
    assert [name for name, _ in Hooked.log] == ["before", "perform", "success", "after"]
    assert len({me for _, me in Hooked.log}) == 1, "every hook of one run sees the same job object"
    assert [c[1] for c in calls] == ["before_enqueue", "after_enqueue", "before_perform", "after_perform"]
    assert calls[-1][2].id == job.id


def test_hooks_of_a_failing_run_and_of_the_final_failure(backend: Backend, clock: Clock, calls: list) -> None:
    Hooked.log = []
    Client(backend).enqueue(register(Hooked), fail=True, max_attempts=2)
    w = worker(backend, clock)
    w.run_once()
    assert [name for name, _ in Hooked.log] == ["before", "perform", "error", "after"]
    assert ("error", "RuntimeError") in Hooked.log
    Hooked.log = []
    clock.advance(backoff_seconds(1))
    w.run_once()
    assert [name for name, _ in Hooked.log] == ["before", "perform", "error", "after", "failure"]
    names = [c[1] for c in calls]
    assert names.count("before_perform") == 2 and "after_perform" not in names
    assert names[-1] == "on_failure"


def test_a_failing_hook_or_listener_does_not_change_the_outcome(backend: Backend, clock: Clock) -> None:
    class BadHooks:
        def perform(self) -> None:
            pass

        def before(self, job: Job) -> None:
            raise ValueError("hook bug")

    def bad_listener(job: Job) -> None:
        raise ValueError("listener bug")

    events.on("after_perform", bad_listener)
    try:
        job = Client(backend).enqueue(register(BadHooks))
        assert worker(backend, clock).run_once() is True
    finally:
        events.off("after_perform", bad_listener)
    assert get(backend, job, clock).state is JobState.FINISHED


def test_a_listener_that_exits_does_not_stop_the_worker(backend: Backend, clock: Clock) -> None:
    def exiting_listener(job: Job, error: str) -> None:
        raise SystemExit(3)

    events.on("on_failure", exiting_listener)
    try:
        job = Client(backend).enqueue(register(failing_job), max_attempts=1)
        after = Client(backend).enqueue(register(quiet_job))
        w = worker(backend, clock)
        assert w.run_once() is True
        assert w.run_once() is True
    finally:
        events.off("on_failure", exiting_listener)
    assert get(backend, job, clock).state is JobState.FAILED
    assert get(backend, after, clock).state is JobState.FINISHED


def test_the_worker_log_shows_job_data_escaped(backend: Backend, clock: Clock, caplog) -> None:
    name = "evil\x1b]0;title\x07\x1b[2J"
    registry.register(name, failing_job)
    Client(backend).enqueue(name, max_attempts=1)
    with caplog.at_level("INFO", logger="qadmin.worker"):
        assert worker(backend, clock).run_once() is True
    text = caplog.text
    assert "FAILED permanently after 1 attempt:" in text
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b]0;title\\x07\\x1b[2J" in text


def failing_job() -> None:
    raise ValueError("fails")


def quiet_job() -> None:
    pass


# --- what a worker must not take --------------------------------------------------------------
def test_a_job_of_an_unknown_class_is_never_locked(backend: Backend, clock: Clock) -> None:
    client = Client(backend)
    unknown = client.enqueue("no_such_module.NoSuchJob", priority=0)
    bare = client.enqueue("NotADottedPath", priority=0)
    runnable = client.enqueue("qadmin.examples.noop", priority=5)
    w = worker(backend, clock)
    assert w.run_once() is True
    assert get(backend, runnable, clock).state is JobState.FINISHED
    assert w.run_once() is False
    for job in (unknown, bare):
        left = get(backend, job, clock)
        assert left.state is JobState.PENDING and left.locked_by is None and left.locked_at is None


def test_a_paused_queue_is_skipped(backend: Backend, clock: Clock) -> None:
    client = Client(backend)
    held = client.enqueue("qadmin.examples.noop", queue="held")
    backend.pause("held", clock())
    w = worker(backend, clock)
    assert w.run_once() is False
    assert get(backend, held, clock).state is JobState.PENDING
    backend.resume("held")
    assert w.run_once() is True
    assert get(backend, held, clock).state is JobState.FINISHED


def test_a_worker_serves_only_its_queues(backend: Backend, clock: Clock) -> None:
    client = Client(backend)
    other = client.enqueue("qadmin.examples.noop", queue="other")
    mine = client.enqueue("qadmin.examples.noop", queue="mine")
    w = worker(backend, clock, queues=["mine"])
    assert w.run_once() is True and w.run_once() is False
    assert get(backend, mine, clock).state is JobState.FINISHED
    assert get(backend, other, clock).state is JobState.PENDING


def test_a_stopping_worker_gives_a_claimed_job_back(backend: Backend, clock: Clock) -> None:
    job = Client(backend).enqueue("qadmin.examples.noop")
    w = worker(backend, clock)
    w.stop()
    assert w.run_once() is False
    assert get(backend, job, clock).state is JobState.PENDING


# --- enqueue ----------------------------------------------------------------------------------
def test_unique_key_returns_the_waiting_job(backend: Backend, clock: Clock) -> None:
    client = Client(backend)
    first = client.enqueue("qadmin.examples.noop", 1, unique="nightly")
    again = client.enqueue("qadmin.examples.noop", 2, unique="nightly")
    assert again.id == first.id and again.args == [1]
    worker(backend, clock).run_once()
    fresh = client.enqueue("qadmin.examples.noop", 3, unique="nightly")
    assert fresh.id != first.id and fresh.args == [3]


def test_decorated_jobs_carry_their_defaults(backend: Backend, clock: Clock) -> None:
    seen: list[int] = []

    @registry.job(f"tests.worker.decorated.{next(_counter)}", queue="deco", priority=7, max_attempts=2)
    def decorated(n: int) -> None:
        seen.append(n)

    job = Client(backend).enqueue(decorated, 5)
    assert (job.queue, job.priority, job.max_attempts) == ("deco", 7, 2)
    assert worker(backend, clock, queues=["deco"]).run_once() is True
    assert seen == [5]


# --- the loop ---------------------------------------------------------------------------------
def test_burst_works_the_queue_off_and_count_stops_early(backend: Backend, clock: Clock) -> None:
    backend.enqueue_many([NewJob("qadmin.examples.noop", [i]) for i in range(5)])
    w = worker(backend, clock, burst=True, count=2, sleep=0)
    assert w.work() == 0
    assert w.processed == 2
    w = worker(backend, clock, burst=True, sleep=0)
    assert w.work() == 0
    assert w.processed == 3
    assert backend.count(JobFilter(), clock()) == 0
    # a worker that stopped leaves no registration behind
    assert backend.workers(clock()) == []


def test_max_jobs_asks_to_be_recycled(backend: Backend, clock: Clock) -> None:
    backend.enqueue_many([NewJob("qadmin.examples.noop", [i]) for i in range(5)])
    w = worker(backend, clock, max_jobs=2, sleep=0)
    assert w.work() == 3  # EXIT_RECYCLE: the supervisor starts a fresh process
    assert w.processed == 2


def test_a_forked_job_reports_a_large_error_in_full(backend: Backend, clock: Clock) -> None:
    def loud() -> None:
        raise ValueError("x" * 300_000)

    job = Client(backend).enqueue(register(loud), max_attempts=1)
    assert worker(backend, clock, fork=True, max_run_time=60).run_once() is True
    got = get(backend, job, clock)
    assert got.state is JobState.FAILED
    assert got.error_message.startswith("ValueError: xxx") and len(got.last_error) > 300_000


def test_a_runnable_job_behind_many_unrunnable_ones_is_reached(backend: Backend, clock: Clock) -> None:
    # another application's jobs, first in line: this worker cannot run them and must not stall
    backend.enqueue_many([NewJob("other_app.jobs.Report", [i], priority=0) for i in range(120)])
    mine = Client(backend).enqueue("qadmin.examples.noop", priority=5)
    w = worker(backend, clock)
    assert w.run_once() is True
    assert get(backend, mine, clock).state is JobState.FINISHED
    assert backend.count(JobFilter(states=frozenset({JobState.PENDING})), clock()) == 120
