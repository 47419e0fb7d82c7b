"""What a worker process runs and what it records, with real `qadmin worker` processes on SQLite
and Redis: `async def` jobs run to completion, a job's `sys.exit()` (or `os._exit` under
`--fork`) is that job's failure and the worker goes on, payloads naming a callable the worker was
not given are never run and stay where they are, paused queues are named in the log.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qadmin import registry
from qadmin.backends import open_backend
from qadmin.client import Client
from qadmin.errors import JobClassNotFound
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, utcnow
from qadmin.worker import Worker, WorkerOptions
from tests.worker.test_worker_processes import RECORD, client, lines, procs  # noqa: F401 - fixture


@pytest.fixture(
    params=[pytest.param("sqlite", id="sqlite"), pytest.param("redis", id="redis", marks=pytest.mark.redis)]
)
def url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue({"sqlite": "sqlite_url", "redis": "redis_url"}[request.param])


def jobs_of(url: str, class_name: str) -> list[Job]:
    backend = open_backend(url)
    try:
        return backend.find(JobFilter(states=frozenset(JobState), class_name=class_name), utcnow(), limit=50).jobs
    finally:
        backend.close()


def only(url: str, class_name: str) -> Job:
    found = jobs_of(url, class_name)
    assert len(found) == 1, found
    return found[0]


ASYNC_JOBS = textwrap.dedent("""
    import asyncio

    async def write(path, text):
        await asyncio.sleep(0.01)
        with open(path, "a") as fh:
            fh.write(text + "\\n")

    async def boom():
        await asyncio.sleep(0)
        raise ValueError("async boom")

    async def forever():
        await asyncio.sleep(3600)

    class AsyncPerform:
        async def perform(self, path):
            await write(path, "perform")

    def generator(path):
        with open(path, "a") as fh:
            fh.write("generator\\n")
        yield
""")


@pytest.mark.parametrize("fork", [False, True], ids=["inline", "fork"])
def test_async_jobs_run_to_completion_and_their_errors_fail_them(url: str, tmp_path: Path, procs, fork: bool) -> None:
    (tmp_path / "asyncjobs.py").write_text(ASYNC_JOBS)
    out = tmp_path / "ran.txt"
    with client(url) as c:
        c.enqueue("asyncjobs.write", str(out), "written", queue="q")
        c.enqueue("asyncjobs.AsyncPerform", str(out), queue="q")
        c.enqueue("asyncjobs.boom", queue="q", max_attempts=1)
        c.enqueue("asyncjobs.forever", queue="q", max_attempts=1)
        c.enqueue("asyncjobs.generator", str(out), queue="q", max_attempts=1)
    run = procs(url).run(
        "worker",
        "--burst",
        "--sleep",
        "0.1",
        "--max-run-time",
        "3s",
        "--import",
        "asyncjobs",
        *(["--fork"] if fork else []),
    )
    assert run.returncode == 0, run.stderr
    assert sorted(lines(out)) == ["perform", "written"], run.stderr
    assert "never awaited" not in run.stderr
    boom = only(url, "asyncjobs.boom")
    assert boom.state is JobState.FAILED and (boom.last_error or "").startswith("ValueError: async boom")
    forever = only(url, "asyncjobs.forever")
    assert forever.state is JobState.FAILED and (forever.last_error or "").startswith("JobTimeout")
    # a generator function's body never runs when it is called: not a success
    generator = only(url, "asyncjobs.generator")
    assert generator.state is JobState.FAILED and "must not yield" in (generator.last_error or "")


EXIT_JOBS = textwrap.dedent("""
    import os
    import sys

    def leave(code=None):
        sys.exit(code)

    def hard_exit(code):
        os._exit(code)

    def interrupt():
        raise KeyboardInterrupt

    class Stop(BaseException):
        pass

    def base():
        raise Stop("not an Exception")

    class ExitInHook:
        def perform(self):
            pass

        def after(self, job):
            sys.exit(5)
""")


@pytest.mark.parametrize("mode", [(), ("--concurrency", "2"), ("--fork",)], ids=["one", "concurrency2", "fork"])
def test_a_job_that_exits_fails_alone_and_the_worker_goes_on(url: str, tmp_path: Path, procs, mode: tuple) -> None:
    (tmp_path / "exitjobs.py").write_text(EXIT_JOBS)
    out = tmp_path / "ran.txt"
    exits = [
        ("exitjobs.leave", [3], "status 3"),
        ("exitjobs.leave", [], "status 0"),
        ("exitjobs.leave", ["bye"], "status 1 (bye)"),
        ("exitjobs.interrupt", [], "KeyboardInterrupt"),
        ("exitjobs.base", [], "Stop: not an Exception"),
    ]
    if "--fork" in mode:  # os._exit ends the worker's own process unless the job runs in a child
        exits += [
            ("exitjobs.hard_exit", [0], "status 0 before the job finished"),
            ("exitjobs.hard_exit", [7], "status 7 before the job finished"),
        ]
    with client(url) as c:
        c.enqueue_many(
            [NewJob(name, args, queue="q", max_attempts=1) for name, args, _ in exits]
            + [NewJob(RECORD, [str(out), f"after-{i}"], queue="q") for i in range(4)]
            + [NewJob("exitjobs.ExitInHook", [], queue="q", max_attempts=1)]
        )
    run = procs(url).run("worker", "--burst", "--sleep", "0.1", "--import", "exitjobs", *mode, timeout=120)
    assert run.returncode == 0, run.stderr
    assert sorted(lines(out)) == [f"after-{i}" for i in range(4)], run.stderr
    errors = sorted(
        (j.last_error or "").split("\n", 1)[0]
        for name in {n for n, _, _ in exits}
        for j in jobs_of(url, name)
        if j.state is JobState.FAILED
    )
    assert len(errors) == len(exits), (errors, run.stderr)
    for _, _, needle in exits:
        assert any(needle in e for e in errors), (needle, errors)
    # a hook's exit is logged; the job's outcome stands
    assert only(url, "exitjobs.ExitInHook").state is JobState.FINISHED
    assert "after hook of exitjobs.ExitInHook failed: SystemExit" in run.stderr


HOSTILE = [
    ("os.system", "touch {marker}"),
    ("builtins.exec", "open({marker!r}, 'w')"),
    ("os._exit", 0),
    ("builtins.exit", 0),
    ("subprocess.getoutput", "touch {marker}"),
    ("posix:system", "touch {marker}"),
    ("qadmin.examples.time.sleep", 0),
    ("qadmin.examples.SendEmail.__init__.__globals__", 0),
]


@pytest.mark.parametrize("fork", [False, True], ids=["inline", "fork"])
def test_a_worker_runs_only_the_job_classes_it_was_given(url: str, tmp_path: Path, procs, fork: bool) -> None:
    marker = tmp_path / "pwned"
    out = tmp_path / "ran.txt"
    with client(url) as c:
        planted = [
            c.enqueue(name, arg.format(marker=str(marker)) if isinstance(arg, str) else arg, queue="q")
            for name, arg in HOSTILE
        ]
        c.enqueue(RECORD, str(out), "allowed", queue="q")
    fork_flag = ["--fork"] if fork else []
    # given nothing (no --import), a worker runs nothing, not even qadmin's own examples
    bare = subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", url, "worker", "--burst", "--sleep", "0.1", *fork_flag],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bare.returncode == 0, bare.stderr
    assert lines(out) == [] and not marker.exists(), bare.stderr
    assert "not registered and not in a module given with --import" in bare.stderr
    # given qadmin.examples (Procs adds it), it runs those and nothing else
    run = procs(url).run("worker", "--burst", "--sleep", "0.1", *fork_flag, timeout=120)
    assert run.returncode == 0, run.stderr
    assert lines(out) == ["allowed"] and not marker.exists(), run.stderr
    for job, (name, _) in zip(planted, HOSTILE):
        left = [j for j in jobs_of(url, name) if j.id == job.id]
        assert [j.state for j in left] == [JobState.PENDING], (name, left, run.stderr)
        assert left[0].attempts == 0 and not left[0].locked_by


def test_paused_queues_are_named_by_a_burst_worker(url: str, tmp_path: Path, procs) -> None:
    out = tmp_path / "ran.txt"
    with client(url) as c:
        c.enqueue(RECORD, str(out), "held", queue="billing")
        c.enqueue(RECORD, str(out), "served", queue="email")
    backend = open_backend(url)
    try:
        backend.pause("billing", utcnow())
        backend.pause("elsewhere", utcnow())
    finally:
        backend.close()
    p = procs(url)
    run = p.run("worker", "--burst", "--sleep", "0.1")
    assert run.returncode == 0 and lines(out) == ["served"], run.stderr
    assert "paused queues not served until resumed" in run.stderr and "billing" in run.stderr, run.stderr
    # a worker of other queues names only the paused queues it serves
    only_email = p.run("worker", "--burst", "--sleep", "0.1", "--queue", "email", "--queue", "billing")
    paused_line = [ln for ln in only_email.stderr.splitlines() if "paused queue not served" in ln]
    assert len(paused_line) == 1 and "billing" in paused_line[0] and "elsewhere" not in paused_line[0]


def test_a_worker_that_lost_its_lock_does_not_log_or_record_a_failure(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given a job whose lock is taken while it runs (unlocked, then run to completion elsewhere)
    backend = open_backend(url)
    backend.init()
    other = open_backend(url)
    elsewhere = "host:elsewhere pid:1"
    held: dict[str, Job] = {}

    def lose_the_lock_then_raise() -> None:
        other.unlock([held["job"].id], utcnow())
        stolen = other.claim(["q"], elsewhere, utcnow(), 3600.0, lambda job: True)
        assert stolen is not None and stolen.id == held["job"].id
        other.complete(stolen, elsewhere, utcnow(), 0.01)
        raise RuntimeError("failed after losing the lock")

    name = f"tests.trust.lose_lock.{id(lose_the_lock_then_raise)}"
    registry.register(name, lose_the_lock_then_raise)
    try:
        held["job"] = Client(backend).enqueue(name, queue="q", max_attempts=1)
        worker = Worker(backend, WorkerOptions(queues=["q"], burst=True, heartbeat_interval=3600))
        # when the worker runs it
        with caplog.at_level(logging.INFO, logger="qadmin.worker"):
            assert worker.run_once() is True
        # then it says what happened, and records no failure over the other worker's success
        assert "FAILED" not in caplog.text
        assert "no longer holds its lock" in caplog.text and "failed after losing the lock" in caplog.text
        assert worker.failed == 0
        assert [j.state for j in jobs_of(url, name)] == [JobState.FINISHED]
    finally:
        other.close()
        backend.close()


def test_a_read_only_sqlite_file_stops_a_burst_worker_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    with client(f"sqlite:///{db}") as c:
        c.enqueue(RECORD, str(tmp_path / "ran.txt"), "never", queue="q")
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    for extra in ([], ["--concurrency", "2"]):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "qadmin",
                "--url",
                read_only,
                "worker",
                "--burst",
                "--sleep",
                "0.1",
                "--import",
                "qadmin.examples",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert run.returncode == 1, run.stderr
        assert "readonly database" in run.stderr and "Traceback" not in run.stderr, run.stderr
        assert not (tmp_path / "ran.txt").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--sleep", "1e10"], "--sleep"),
        (["--sleep", "2d"], "at most 1d"),
        (["--max-run-time", "1e12"], "--max-run-time"),
        (["--concurrency", "100000"], "at most 1024"),
        (["--prefetch", "2000000"], "at most 10000"),
    ],
)
def test_worker_numbers_it_cannot_honour_are_refused(tmp_path: Path, args: list[str], needle: str) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    client(url).close()
    run = subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", url, "worker", "--burst", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert run.returncode == 2 and needle in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_supervisor_restarts_a_child_a_job_ended_with_os_exit_0(url: str, tmp_path: Path, procs) -> None:
    # without --fork, os._exit ends the worker's own process: its supervisor must not take the
    # status 0 for a worker that finished, or nothing serves the queue any more
    (tmp_path / "exitjobs.py").write_text(EXIT_JOBS)
    out = tmp_path / "ran.txt"
    with client(url) as c:
        # the exits first (queue order: Redis has no priorities, SQL takes equal ones by run_at and id)
        c.enqueue_many(
            [NewJob("exitjobs.hard_exit", [0], queue="q") for _ in range(2)]
            + [NewJob(RECORD, [str(out), f"after-{i}"], queue="q") for i in range(4)]
        )
    run = procs(url).run(
        "worker", "--burst", "--sleep", "0.1", "--concurrency", "2", "--import", "exitjobs", timeout=120
    )
    assert sorted(lines(out)) == [f"after-{i}" for i in range(4)], run.stderr
    assert "before its worker finished" in run.stderr and run.returncode == 1, run.stderr


def test_the_config_file_lists_what_workers_run(tmp_path: Path) -> None:
    (tmp_path / "tomljobs.py").write_text("def write(path):\n    open(path, 'a').write('ran\\n')\n")
    url = f"sqlite:///{tmp_path / 'q.db'}"
    out = tmp_path / "ran.txt"
    with client(url) as c:
        c.enqueue("tomljobs.write", str(out), queue="q")

    def burst() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "qadmin", "--url", url, "worker", "--burst", "--sleep", "0.1"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )

    (tmp_path / "qadmin.toml").write_text('[worker]\nimports = "tomljobs"\n')
    bad = burst()
    assert bad.returncode == 2 and "[worker] imports must be a list" in bad.stderr, bad.stderr
    (tmp_path / "qadmin.toml").write_text('[worker]\nimports = ["tomljobs"]\n')
    assert burst().returncode == 0 and lines(out) == ["ran"]


@pytest.mark.parametrize(
    "name, given, reason",
    [
        ("os.system", ("qadmin.examples",), "not registered and not in a module given with --import"),
        ("qadmin.worker.backoff_seconds", ("qadmin.worker",), "comes from qadmin.job"),  # imported, not defined
        ("qadmin.worker.loop:os.path.join", ("qadmin.worker",), "comes from posixpath"),
        ("qadmin.worker.loop:os.system", ("qadmin.worker",), "not a job class or function"),
        ("qadmin.examples:SendEmail.__init__", ("qadmin.examples",), "is private"),
        ("qadmin", ("qadmin",), "not registered"),
        ("qadmin.examples", ("qadmin",), "not a job class or function"),
    ],
)
def test_only_classes_and_functions_defined_in_the_given_modules_resolve(name: str, given: tuple, reason: str) -> None:
    with pytest.raises(JobClassNotFound, match=reason):
        registry.resolve(name, given)


def test_given_packages_cover_their_submodules_and_registered_names_need_nothing() -> None:
    from qadmin import examples

    assert registry.resolve("qadmin.examples.record", ("qadmin",)) is examples.record
    assert registry.resolve("qadmin.examples:SendEmail", ("qadmin.examples",)) is examples.SendEmail
    registry.register("tests.trust.registered", examples.noop)
    assert registry.resolve("tests.trust.registered") is examples.noop
