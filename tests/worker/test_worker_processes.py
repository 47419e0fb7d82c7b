"""Workers as real processes (`python -m qadmin worker ...`) on real databases.

Jobs append a token to a file (`qadmin.examples.record`), so counting lines tells how often each
job ran. Nothing here asserts a duration: waits have generous limits and only bound a hang.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.client import Client
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow

RECORD = "qadmin.examples.record"
SLEEP_RECORD = "qadmin.examples.sleep_then_record"
#: (out, token, gate): runs until the test creates `gate`; `running(gate)` says it has started
HOLD_RECORD = "qadmin.examples.record_when_released"


def running(gate: Path) -> Callable[[], bool]:
    return Path(f"{gate}.running").exists


# --- helpers ----------------------------------------------------------------------------------
class Procs:
    """Worker processes started by a test, their logs, and their cleanup."""

    def __init__(self, url: str, cwd: Path) -> None:
        self.url = url
        self.cwd = cwd
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def cmd(self, *args: str) -> list[str]:
        # a worker runs only the job classes it is given: the tests' jobs are qadmin's examples
        given = ("--import", "qadmin.examples") if args[:1] == ("worker",) else ()
        return [sys.executable, "-m", "qadmin", "--url", self.url, *args, *given]

    def start(self, *args: str) -> subprocess.Popen:
        log = self.cwd / f"worker-{len(self.started)}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                self.cmd(*args), cwd=self.cwd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.started.append((proc, log))
        return proc

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.cmd(*args), cwd=self.cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name} (exit {p.poll()})\n{log.read_text(errors='replace')[-4000:]}" for p, log in self.started
        )

    def wait_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc, _ in self.started:
            left = max(deadline - time.monotonic(), 0.1)
            try:
                proc.wait(left)
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker {proc.pid} still running after {timeout}s\n{self.logs()}")

    def stop_all(self) -> None:
        for proc, _ in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.started:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[[str], Procs]]:
    made: list[Procs] = []

    def make(url: str) -> Procs:
        p = Procs(url, tmp_path)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop_all()


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, logs: Callable[[], str] = lambda: ""
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{logs()}")
        time.sleep(0.05)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def client(url: str) -> Client:
    backend = open_backend(url)
    backend.init()
    return Client(backend)


def count(url: str, *words: str) -> int:
    backend = open_backend(url)
    try:
        return backend.count(JobFilter(states=frozenset(JobState(w) for w in words)), utcnow())
    finally:
        backend.close()


def assert_clean(log_text: str) -> None:
    assert "Traceback" not in log_text, log_text
    assert "database is locked" not in log_text, log_text


PID_JOBS = textwrap.dedent("""
    import os

    def record_pid(path, token):
        with open(path, "a") as fh:
            fh.write(f"{token} {os.getpid()}\\n")
""")


# --- many workers, many jobs ------------------------------------------------------------------
@pytest.mark.slow
def test_four_workers_run_each_of_2000_jobs_exactly_once(sql_url: str, tmp_path: Path, procs) -> None:
    out = tmp_path / "ran.txt"
    with client(sql_url) as c:
        c.enqueue_many(NewJob(RECORD, [str(out), f"job-{i}"], queue=("a", "b")[i % 2]) for i in range(2000))
    p = procs(sql_url)
    for _ in range(4):
        p.start("worker", "--burst", "--sleep", "0.2")
    p.wait_all(timeout=180)
    ran = Counter(lines(out))
    assert len(ran) == 2000, f"{2000 - len(ran)} jobs never ran\n{p.logs()}"
    assert [t for t, n in ran.items() if n > 1] == [], "jobs ran twice"
    assert all(proc.returncode == 0 for proc, _ in p.started), p.logs()
    assert_clean(p.logs())
    assert count(sql_url, "pending", "scheduled", "locked", "failed") == 0
    assert count(sql_url, "finished") == 2000


# --- signals and crashes ----------------------------------------------------------------------
def test_sigterm_lets_the_current_job_finish_then_exits(sqlite_url: str, tmp_path: Path, procs) -> None:
    out, gate = tmp_path / "ran.txt", tmp_path / "gate"
    with client(sqlite_url) as c:
        first = c.enqueue(HOLD_RECORD, str(out), "first", str(gate), queue="q")
        # due at once, as it was when the first job slept 3 s: the worker could take it next
        second = c.enqueue(RECORD, str(out), "second", queue="q")
    p = procs(sqlite_url)
    worker = p.start("worker", "--sleep", "0.1")
    # the job is running, not merely claimed: a signal between the claim and the run gives it back
    wait_for(running(gate), 30, "the worker to start the first job", p.logs)
    worker.send_signal(signal.SIGTERM)
    gate.touch()
    assert worker.wait(30) == 0, p.logs()
    assert lines(out) == ["first"], p.logs()
    backend = open_backend(sqlite_url)
    now = utcnow()
    assert backend.get(first.id, now).state is JobState.FINISHED
    # the next job was left for another worker, unlocked
    assert backend.get(second.id, now).state is JobState.PENDING
    assert backend.workers(now) == []
    backend.close()
    assert "stopping after the current job" in p.logs()


def test_a_sigkilled_workers_job_is_recovered_by_unlock_stale(sqlite_url: str, tmp_path: Path, procs) -> None:
    out = tmp_path / "ran.txt"
    with client(sqlite_url) as c:
        job = c.enqueue(SLEEP_RECORD, str(out), "once", 3.0, queue="q")
    p = procs(sqlite_url)
    worker = p.start("worker", "--sleep", "0.1")
    wait_for(lambda: count(sqlite_url, "locked"), 30, "the worker to take the job", p.logs)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    # the lock is still there, held by a dead process: stale, and nothing else takes it yet
    dry = p.run("unlock", "--stale", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["matched"] == 1
    assert count(sqlite_url, "locked") == 1
    done = p.run("unlock", "--stale", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == 1
    assert count(sqlite_url, "pending") == 1
    rerun = p.run("worker", "--burst", "--sleep", "0.1")
    assert rerun.returncode == 0, rerun.stderr
    assert lines(out) == ["once"]
    backend = open_backend(sqlite_url)
    assert backend.get(job.id, utcnow()).state is JobState.FINISHED
    audit = backend.audit(5, job_id=job.id)
    assert [a.verb for a in audit] == ["unlock"]
    backend.close()


# --- supervision ------------------------------------------------------------------------------
def _live_workers(p: Procs) -> list[dict]:
    res = p.run("workers", "--json")
    if res.returncode != 0:
        return []
    return [w for w in json.loads(res.stdout) if not w["stale"]]


@pytest.mark.slow
def test_the_supervisor_restarts_a_child_that_dies(sqlite_url: str, tmp_path: Path, procs) -> None:
    client(sqlite_url).close()
    p = procs(sqlite_url)
    supervisor = p.start("worker", "--concurrency", "2", "--sleep", "0.2")

    def live_pids(without: int | None = None) -> set[int] | None:
        pids = {w["pid"] for w in _live_workers(p)}
        return pids if len(pids) == 2 and without not in pids else None

    pids = wait_for(live_pids, 60, "two live children", p.logs)
    assert supervisor.pid not in pids
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    new_pids = wait_for(lambda: live_pids(without=victim), 60, "a replacement child", p.logs)
    assert len(new_pids - pids) == 1 and supervisor.poll() is None
    # the dead child's registration is shown as stale, not as alive
    everyone = json.loads(p.run("workers", "--json").stdout)
    assert any(w["pid"] == victim and w["stale"] for w in everyone)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(30) == 0, p.logs()
    assert "restarting it" in p.logs()


def test_max_jobs_per_child_recycles_the_process(sqlite_url: str, tmp_path: Path, procs) -> None:
    (tmp_path / "pidjobs.py").write_text(PID_JOBS)
    out = tmp_path / "ran.txt"
    with client(sqlite_url) as c:
        c.enqueue_many(NewJob("pidjobs.record_pid", [str(out), f"t{i}"], queue="q") for i in range(7))
    p = procs(sqlite_url)
    run = p.run("worker", "--burst", "--sleep", "0.1", "--max-jobs-per-child", "3", "--import", "pidjobs")
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in lines(out)]
    assert sorted(t for t, _ in rows) == sorted(f"t{i}" for i in range(7))
    per_pid = Counter(pid for _, pid in rows)
    assert sorted(per_pid.values()) == [1, 3, 3], per_pid
    assert "recycling after 3 jobs" in run.stderr


def test_fork_runs_each_job_in_its_own_child(sqlite_url: str, tmp_path: Path, procs) -> None:
    (tmp_path / "pidjobs.py").write_text(PID_JOBS)
    out = tmp_path / "ran.txt"
    with client(sqlite_url) as c:
        c.enqueue_many(NewJob("pidjobs.record_pid", [str(out), f"t{i}"], queue="q") for i in range(3))
        c.enqueue("qadmin.examples.ChargeCard", 3, 100, queue="q", max_attempts=1)
    p = procs(sqlite_url)
    worker = p.start("worker", "--burst", "--sleep", "0.1", "--fork", "--import", "pidjobs")
    p.wait_all(60)
    assert worker.returncode == 0, p.logs()
    pids = [pid for _, pid in (line.split() for line in lines(out))]
    assert len(pids) == 3 and len(set(pids)) == 3 and str(worker.pid) not in pids
    backend = open_backend(sqlite_url)
    failed = backend.find(JobFilter(states=frozenset({JobState.FAILED})), utcnow(), limit=5).jobs
    backend.close()
    # an exception in the forked child still comes back as the job's error
    assert len(failed) == 1 and failed[0].last_error.startswith("PaymentDeclined: card declined: expired card")


# --- enqueue races ----------------------------------------------------------------------------
UNIQUE_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import qadmin
    url, start = sys.argv[1], float(sys.argv[2])
    c = qadmin.connect(url)
    while time.time() < start:
        time.sleep(0.001)
    ids = {}
    for k in range(40):
        ids[k] = c.enqueue("qadmin.examples.noop", k, queue="u", unique=f"key-{k}").id
    print(json.dumps(ids))
""")


def test_processes_enqueueing_the_same_unique_key_create_one_job(sql_url: str, tmp_path: Path) -> None:
    client(sql_url).close()
    script = tmp_path / "enqueue_unique.py"
    script.write_text(UNIQUE_SCRIPT)
    start = time.time() + 1.5
    runners = [
        subprocess.Popen(
            [sys.executable, str(script), sql_url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = []
    for r in runners:
        stdout, stderr = r.communicate(timeout=120)
        assert r.returncode == 0, stderr
        results.append(json.loads(stdout))
    assert all(res == results[0] for res in results), "processes got different jobs for one key"
    assert count(sql_url, "pending") == 40


# --- the database goes away -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_survives_a_database_restart(postgres_server, postgres_url: str, tmp_path: Path, procs) -> None:
    out = tmp_path / "ran.txt"
    with client(postgres_url) as c:
        c.enqueue(RECORD, str(out), "before", queue="q")
    p = procs(postgres_url)
    worker = p.start("worker", "--sleep", "0.2")
    wait_for(lambda: lines(out) == ["before"], 60, "the first job", p.logs)
    postgres_server.stop()
    try:
        wait_for(lambda: "backend unavailable" in p.logs(), 60, "the worker to notice the outage", p.logs)
        assert worker.poll() is None, p.logs()
    finally:
        postgres_server.start()
    with client(postgres_url) as c:
        c.enqueue(RECORD, str(out), "after", queue="q")
    wait_for(lambda: lines(out) == ["before", "after"], 90, "the job enqueued after the restart", p.logs)
    assert worker.poll() is None
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, p.logs()
