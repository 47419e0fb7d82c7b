"""What qadmin enqueues on Redis is what Resque writes for the same class and args, to the byte.

Resque (and resque-scheduler) encode a job with Ruby's json gem (`Resque.encode`, docs/compatibility.md §1.1)
and find one by those bytes: `Resque.dequeue(Klass, *args)` is `LREM queue:Q 0 <encoded>`,
resque-scheduler's `remove_delayed` reads `timestamps:<encoded item>` and `LREM`s each list it
names (§1.5, §2). The resque gems are not installed here, so the bytes come from the json gem
Resque calls, run by the real Ruby, and the Redis side of each call is made as they make it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import timedelta

import pytest

from qadmin.filters import JobFilter
from qadmin.job import NewJob, utcnow
from tests.backends.conftest import r, redis_backend  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("ruby") is None, reason="needs Ruby (its json gem is Resque's encoder)"),
]

JOBS = [
    ("Archive", [35, "tar"], "file_serve"),
    ("Reports::Monthly", [{"path": "/data/in.csv", "name": "é ✓"}, None, True, False], "reports"),
    ("Mailer", ['quote " backslash \\ newline \n tab \t', -7, 2.5, [1, [2, {"a": []}]]], "mail"),
    ("NoArgs", [], "default"),
]


def ruby_encode(jobs: list[tuple[str, list, str]]) -> list[tuple[bytes, bytes]]:
    """(Resque.encode of the job, resque-scheduler's delayed item) for each, by Ruby's json gem."""
    script = (
        'require "json"; JSON.parse(STDIN.read).each { |c, a, q| '
        'puts JSON.dump({"class" => c, "args" => a}); puts JSON.dump({"class" => c, "args" => a, "queue" => q}) }'
    )
    out = subprocess.run(
        ["ruby", "-e", script], input=json.dumps(jobs).encode(), capture_output=True, check=True, timeout=60
    ).stdout
    lines = out.split(b"\n")
    return [(lines[2 * i], lines[2 * i + 1]) for i in range(len(jobs))]


def test_an_enqueued_job_is_byte_identical_to_resques_and_resque_dequeue_finds_it(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    for cls, args, queue in JOBS:
        redis_backend.enqueue(NewJob(cls, args, queue=queue))
    for (cls, args, queue), (encoded, _item) in zip(JOBS, ruby_encode(JOBS)):
        assert r.lrange(f"resque:queue:{queue}", 0, -1) == [encoded]
        # Resque.dequeue(Klass, *args): one LREM of the bytes Ruby encodes
        assert r.lrem(f"resque:queue:{queue}", 0, encoded) == 1


def test_a_scheduled_job_is_resque_schedulers_item_and_remove_delayed_finds_it(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    at = utcnow() + timedelta(hours=1)
    ts = int(at.timestamp())
    for cls, args, queue in JOBS:
        redis_backend.enqueue(NewJob(cls, args, queue=queue, run_at=at))
    items = [item for _encoded, item in ruby_encode(JOBS)]
    assert r.lrange(f"resque:delayed:{ts}", 0, -1) == items
    assert r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True) == [(str(ts).encode(), float(ts))]
    for item in items:
        # remove_delayed(Klass, *args): the lists `timestamps:<item>` names, each LREM'd by the item's bytes
        stamps = r.smembers(b"resque:timestamps:" + item)
        assert stamps == {f"delayed:{ts}".encode()}
        assert sum(r.lrem(b"resque:" + key, 0, item) for key in stamps) == 1


def test_payloads_written_with_qadmins_old_enqueued_at_are_still_read(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    old = '{"class":"Archive","args":[1],"enqueued_at":"2026-11-22T08:41:11.123456Z"}'
    r.rpush("resque:queue:q", old)
    r.sadd("resque:queues", "q")
    [job] = redis_backend.find(JobFilter(), utcnow(), limit=5).jobs
    assert (job.class_name, job.args, job.raw) == ("Archive", [1], old)
    assert job.created_at is not None and job.created_at.isoformat() == "2026-11-22T08:41:11.123456+00:00"
    assert "enqueued_at" not in job.meta or job.meta["enqueued_at"] == "2026-11-22T08:41:11.123456Z"


def test_a_plain_jobs_enqueue_time_is_shown_as_unknown(redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from qadmin.cli import main

    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None})
    with runner.isolated_filesystem(temp_dir=tmp_path):
        assert runner.invoke(main, ["--url", redis_url, "enqueue", "Archive", "1"]).exit_code == 0
        stats = runner.invoke(main, ["--url", redis_url, "stats"])
        shown = runner.invoke(main, ["--url", redis_url, "jobs", "--json"])
    assert stats.exit_code == 0 and "oldest pending unknown" in stats.output, stats.output
    assert "none pending" not in stats.output
    assert [j["created_at"] for j in json.loads(shown.stdout)] == [None]
