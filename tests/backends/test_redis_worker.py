"""Real processes on a real redis-server: a worker killed mid-job loses nothing, two schedulers never
move a delayed job twice, and every CLI verb works on Redis end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend
from qadmin.cli import main
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow

pytestmark = pytest.mark.redis


def qadmin(url: str, *args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    # a worker runs only the job classes it is given: the jobs here are qadmin's examples
    given = ("--import", "qadmin.examples") if args[:1] == ("worker",) else ()
    return subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", url, *args, *given],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def wait_for(check: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_sigkilled_worker_loses_nothing_and_unlock_stale_recovers(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    backend = RedisBackend(redis_url, BackendOptions())
    out = tmp_path / "ran.txt"
    job = backend.enqueue(NewJob("qadmin.examples.sleep_then_record", [str(out), "tok", 3.0], queue="slow"))
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qadmin",
            "--url",
            redis_url,
            "worker",
            "--queue",
            "slow",
            "--import",
            "qadmin.examples",
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: backend.count(JobFilter(states=frozenset({JobState.LOCKED})), utcnow()) == 1,
            what="the worker to take the job",
        )
        assert r.scard("resque:workers") == 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        log.close()
    # the job is still there, held by a worker that is gone
    held = backend.get(job.id, utcnow())
    assert held.state is JobState.LOCKED and held.stale and not out.exists()
    assert r.llen("resque:queue:slow") == 0
    done = qadmin(redis_url, "unlock", "--stale", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == 1
    assert backend.get(job.id, utcnow()).state is JobState.PENDING
    # the dead worker's registrations went with it
    assert not r.smembers("resque:workers") and not r.hgetall("resque:qadmin:workers")
    assert not r.keys("resque:worker:*") and not r.hgetall("resque:workers:heartbeat")
    run = qadmin(redis_url, "worker", "--queue", "slow", "--burst", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert out.read_text().splitlines() == ["tok"]
    assert backend.get(job.id, utcnow()).state is JobState.FINISHED


SCHEDULER = """
import sys
from datetime import datetime, timezone
from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend
b = RedisBackend(sys.argv[1], BackendOptions())
now = datetime.now(timezone.utc)
idle = 0
while idle < 3:
    idle = idle + 1 if b.move_due(now, stamps=3) == 0 else 0
"""


def test_two_schedulers_never_duplicate_or_lose_a_delayed_job(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    base = int(time.time()) - 1000
    pipe = r.pipeline(transaction=False)
    expected = set()
    for t in range(40):
        ts = base + t
        for i in range(15):
            item = f'{{"class":"Archive","args":[{t},{i}],"queue":"q{i % 3}"}}'
            expected.add(f'{{"class":"Archive","args":[{t},{i}]}}')
            pipe.rpush(f"resque:delayed:{ts}", item)
            pipe.sadd(f"resque:timestamps:{item}", f"delayed:{ts}")
        pipe.zadd("resque:delayed_queue_schedule", {str(ts): ts})
    pipe.execute()
    procs = [subprocess.Popen([sys.executable, "-c", SCHEDULER, redis_url], cwd=tmp_path) for _ in range(2)]
    for p in procs:
        assert p.wait(120) == 0
    moved = [e.decode() for q in ("q0", "q1", "q2") for e in r.lrange(f"resque:queue:{q}", 0, -1)]
    assert len(moved) == 600 and set(moved) == expected
    assert not r.zcard("resque:delayed_queue_schedule")
    assert not r.keys("resque:delayed:*") and not r.keys("resque:timestamps:*")


def test_every_cli_verb_works_on_redis(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url)
    r.rpush(
        "resque:failed",
        '{"failed_at":"2026/11/22 08:41:11 UTC","payload":{"class":"Archive","args":[36,"bad"]},'
        '"exception":"ArgumentError","error":"boom 36","backtrace":[],"worker":"web1:1:files","queue":"files"}',
        '{"failed_at":"Sun Nov 22 08:42:47 UTC 2026","payload":{"class":"My_Job","args":[{"a":1}],'
        '"id":"48816519aaa5034aeac8e18728917051","queue_time":1795336967.27},"exception":"RuntimeException",'
        '"error":"boom \\/x","backtrace":["#0 {main}"],"worker":"web1:2:default","queue":"default"}',
    )
    r.rpush(
        "resque:queue:default",
        '{"class":"My_Job","args":[{"path":"\\/data\\/in.csv"}],'
        '"id":"674bf373172c6a426dbbc0a07d97df58","queue_time":1795336978.38}',
    )
    r.sadd("resque:queues", "default")
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, ["--url", redis_url, *args], catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        return result.output

    out = tmp_path / "ran.txt"
    cli("enqueue", "qadmin.examples.record", str(out), "e2e", "--queue", "e2e")
    stats = json.loads(cli("stats", "--json"))
    assert stats["totals"]["pending"] == 2 and stats["totals"]["failed"] == 2
    failed = json.loads(cli("jobs", "--state", "failed", "--json"))
    ids = {j["class"]: j["id"] for j in failed}
    shown = json.loads(cli("show", ids["Archive"], "--json"))
    assert shown["state"] == "failed" and shown["last_error"] == "ArgumentError: boom 36"
    assert "Retried 1 of 1" in cli("retry", ids["Archive"])
    assert r.lrange("resque:queue:files", 0, -1) == [b'{"class":"Archive","args":[36,"bad"]}']
    assert json.loads(cli("retry", "--failed", "--dry-run", "--json"))["matched"] == 1
    cli("delete", ids["My_Job"], "--yes")
    assert json.loads(cli("jobs", "--state", "failed", "--json")) == []
    result = json.loads(
        cli("dequeue", "--queue", "default", "--class", "My_Job", "--args", '[{"path": "/data/in.csv"}]', "--json")
    )
    assert result["changed"] == 1 and not r.exists("resque:queue:default")
    assert "No jobs matched" in cli("unlock", "--stale")
    cli("pause", "e2e")
    assert r.get("resque:pause:queue:e2e") == b"true"
    assert qadmin(redis_url, "worker", "--queue", "e2e", "--burst", cwd=tmp_path).returncode == 0
    assert not out.exists()
    cli("resume", "e2e")
    run = qadmin(redis_url, "worker", "--queue", "e2e", "--burst", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert out.read_text().splitlines() == ["e2e"]
    assert json.loads(cli("stats", "--json"))["processed"] == 1
    assert "Archive" in cli("jobs", "--queue", "files")
    cli("show", "not-an-id", code=2)
    cli("show", "files:0123456789ab", code=2)
    audit = json.loads(cli("audit", "--json"))
    assert [a["verb"] for a in audit][:4] == ["resume", "pause", "unlock", "dequeue"]
