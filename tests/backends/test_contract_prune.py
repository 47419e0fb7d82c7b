"""`Backend.prune`, `WorkerSession.prune_if_due` and `Ops.prune` on every backend (SQLite,
PostgreSQL, Redis), plus what each backend must leave to its foreign libraries: a delayed_job row
waiting for its next attempt, a failure entry another client retried meanwhile, Resque's workers."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, WorkerInfo, utcnow
from qadmin.ops import Ops

NOOP = "qadmin.examples.noop"
ALWAYS = lambda job: True  # noqa: E731 - a claim that takes whatever comes first
HOUR = 3600.0
DAY = timedelta(days=1)


def states(*words: str) -> JobFilter:
    return JobFilter(states=frozenset(JobState(w) for w in words))


def run(b: Backend, when: datetime, *, fails: bool, queue: str = "q", arg: object = 0) -> Job:
    """A job enqueued and run at `when`: failed for good, or finished."""
    job = b.enqueue(NewJob(NOOP, [arg], queue=queue, run_at=when))
    claimed = b.claim([queue], "host:h pid:1", when, HOUR, ALWAYS)
    assert claimed is not None and str(claimed.id) == str(job.id)
    if fails:
        b.fail(claimed, "host:h pid:1", when, "RuntimeError: boom", None)
    else:
        b.complete(claimed, "host:h pid:1", when, 0.01)
    return claimed


def counts(b: Backend, now: datetime) -> tuple[int, int]:
    return b.count(states("failed"), now), b.count(states("finished"), now)


def old_and_new(b: Backend, now: datetime) -> dict[str, Job]:
    """A failure of 40 days ago and one of yesterday, in that order (Resque's `failed` list is
    oldest first); a success of 10 days ago and one of yesterday (the recent success first: a
    Redis success trims the records past the retention)."""
    return {
        "old_failed": run(b, now - 40 * DAY, fails=True, arg="of"),
        "new_failed": run(b, now - DAY, fails=True, arg="nf"),
        "new_finished": run(b, now - DAY, fails=False, arg="nz"),
        "old_finished": run(b, now - 10 * DAY, fails=False, arg="oz"),
    }


def test_prune_removes_old_failed_jobs_and_finished_records_and_keeps_recent_ones(backend: Backend) -> None:
    now = utcnow()
    jobs = old_and_new(backend, now)
    assert counts(backend, now) == (2, 2)
    cut = {"failed_before": now - 30 * DAY, "finished_before": now - 7 * DAY, "workers_before": None}

    preview = backend.prune(now, **cut, dry_run=True)
    assert (preview.failed, preview.finished, preview.workers, preview.dry_run) == (1, 1, 0, True)
    assert counts(backend, now) == (2, 2), "a dry run changes nothing"

    report = backend.prune(now, **cut)
    assert (report.failed, report.finished, report.workers) == (preview.failed, preview.finished, 0)
    assert [str(i) for i in report.failed_ids] == [str(jobs["old_failed"].id)]
    assert counts(backend, now) == (1, 1)
    left = backend.find(states("failed", "finished"), now, limit=10).jobs
    assert sorted(j.args[0] for j in left) == ["nf", "nz"]
    # a second prune finds nothing more
    again = backend.prune(now, **cut)
    assert again.total == 0


def test_a_cutoff_of_none_keeps_that_kind(backend: Backend) -> None:
    now = utcnow()
    old_and_new(backend, now)
    report = backend.prune(now, failed_before=None, finished_before=now - 7 * DAY, workers_before=None)
    assert (report.failed, report.finished) == (0, 1)
    assert counts(backend, now) == (2, 1)
    report = backend.prune(now, failed_before=now - 30 * DAY, finished_before=None, workers_before=None)
    assert (report.failed, report.finished) == (1, 0)
    assert counts(backend, now) == (1, 1)


def test_a_job_waiting_for_its_next_attempt_is_never_pruned(backend: Backend) -> None:
    now = utcnow()
    long_ago = now - 90 * DAY
    backend.enqueue(NewJob(NOOP, ["retrying"], queue="q", run_at=long_ago))
    claimed = backend.claim(["q"], "host:h pid:1", long_ago, HOUR, ALWAYS)
    assert claimed is not None
    backend.fail(claimed, "host:h pid:1", long_ago, "RuntimeError: once", long_ago + timedelta(minutes=1))
    report = backend.prune(now, failed_before=now - DAY, finished_before=now - DAY, workers_before=now - DAY)
    assert report.failed == 0
    assert backend.count(states("pending", "scheduled"), now) == 1


def _register(b: Backend, name: str, beat: datetime) -> None:
    b.register_worker(
        WorkerInfo(name=name, host="h", pid=4242, queues=["q"], started_at=beat - timedelta(hours=1), heartbeat_at=beat)
    )
    b.heartbeat(name, beat, None, None, 0, 0)


def test_dead_workers_leave_the_workers_list_after_their_retention(backend: Backend) -> None:
    now = utcnow()
    _register(backend, "host:gone pid:1", now - 2 * DAY)
    _register(backend, "host:idle pid:2", now - timedelta(hours=2))
    _register(backend, "host:live pid:3", now)
    listed = {w.name for w in backend.workers(now)}
    assert {"host:gone pid:1", "host:idle pid:2", "host:live pid:3"} <= listed

    preview = backend.prune(now, failed_before=None, finished_before=None, workers_before=now - DAY, dry_run=True)
    assert (preview.workers, preview.worker_names) == (1, ["host:gone pid:1"])
    assert "host:gone pid:1" in {w.name for w in backend.workers(now)}

    report = backend.prune(now, failed_before=None, finished_before=None, workers_before=now - DAY)
    assert (report.workers, report.worker_names) == (1, ["host:gone pid:1"])
    listed = {w.name for w in backend.workers(now)}
    assert "host:gone pid:1" not in listed
    assert {"host:idle pid:2", "host:live pid:3"} <= listed


def test_the_automatic_prune_runs_once_per_interval_for_all_workers(any_url: str) -> None:
    b = open_backend(any_url, BackendOptions(prune_every=1.0))
    b.init()
    try:
        now = utcnow()
        jobs = old_and_new(b, now)
        first, second = b.session("host:a pid:1"), b.session("host:b pid:2")
        reports = [first.prune_if_due(now), second.prune_if_due(now), first.prune_if_due(now)]
        done = [r for r in reports if r is not None]
        assert len(done) == 1, "one worker prunes, the others find it done"
        assert (done[0].failed, done[0].finished) == (1, 1)
        assert counts(b, now) == (1, 1)
        entry = b.audit(limit=1)[0]
        assert (entry.verb, entry.face, entry.actor) == ("prune", "worker", "host:a pid:1")
        assert (entry.selection["failed"], entry.selection["finished"]) == (1, 1)
        assert [e.verb for e in b.audit(job_id=jobs["old_failed"].id)] == ["prune"]
        # due again once the interval has passed (the Redis marker expires in real time)
        time.sleep(1.2)
        later = now + timedelta(seconds=2)
        again = [second.prune_if_due(later), first.prune_if_due(later)]
        assert again[0] is not None and again[1] is None
        assert again[0].total == 0
        first.close()
        second.close()
    finally:
        b.close()


def test_automatic_pruning_can_be_turned_off(any_url: str) -> None:
    b = open_backend(any_url, BackendOptions(prune_every=None))
    b.init()
    try:
        session = b.session("host:a pid:1")
        assert session.prune_if_due(utcnow()) is None
        session.close()
    finally:
        b.close()


def test_ops_prune_uses_the_retention_settings_and_records_one_audit_entry(any_url: str) -> None:
    b = open_backend(any_url, BackendOptions(failed_retention=30 * 86400.0, finished_retention=7 * 86400.0))
    b.init()
    ops = Ops(b, face="cli", actor="ann")
    try:
        now = utcnow()
        jobs = old_and_new(b, now)
        before = len(b.audit())
        dry = ops.prune(dry_run=True)
        assert (dry.failed, dry.finished, dry.dry_run) == (1, 1, True)
        assert len(b.audit()) == before, "a dry run is not audited"
        report = ops.prune()
        assert (report.failed, report.finished) == (1, 1)
        entries = b.audit()
        assert len(entries) == before + 1
        entry = entries[0]
        assert (entry.verb, entry.face, entry.actor, entry.changed) == ("prune", "cli", "ann", 2)
        assert entry.selection["failed"] == 1 and entry.selection["finished"] == 1
        assert [e.verb for e in b.audit(job_id=jobs["old_failed"].id)] == ["prune"]
        # --older-than replaces the retention of both kinds of job
        report = ops.prune(older_than=HOUR)
        assert (report.failed, report.finished) == (1, 1)
        assert counts(b, now) == (0, 0)
    finally:
        b.close()


def test_ops_prune_keeps_failed_jobs_for_ever_when_told(any_url: str) -> None:
    b = open_backend(any_url, BackendOptions(failed_retention=None))
    b.init()
    try:
        now = utcnow()
        old_and_new(b, now)
        report = Ops(b).prune()
        assert report.failed_before is None and report.failed == 0
        assert counts(b, now) == (2, 1)
    finally:
        b.close()


# --- foreign rows and entries -------------------------------------------------------------------
def test_sql_prunes_delayed_jobs_failed_rows_only(sql_url: str) -> None:
    import sqlalchemy as sa

    b: Any = open_backend(sql_url, BackendOptions())
    b.init()
    try:
        now = utcnow()
        long_ago = now - 90 * DAY
        t = b.store.jobs()
        handler = (
            "--- !ruby/object:Delayed::PerformableMethod\nobject: !ruby/object:User {}\nmethod_name: :x\nargs: []\n"
        )
        base = {"priority": 0, "handler": handler, "queue": None, "created_at": long_ago, "updated_at": long_ago}
        with b.engine.begin() as conn:
            conn.execute(
                sa.insert(t),
                [
                    # failed for good (destroy_failed_jobs = false keeps the lock columns)
                    {
                        **base,
                        "attempts": 25,
                        "run_at": long_ago,
                        "failed_at": long_ago,
                        "last_error": "boom",
                        "locked_at": long_ago,
                        "locked_by": "delayed_job host:x pid:1",
                    },
                    # waiting for its next attempt: delayed_job has not failed it
                    {
                        **base,
                        "attempts": 3,
                        "run_at": long_ago,
                        "failed_at": None,
                        "last_error": "boom",
                        "locked_at": None,
                        "locked_by": None,
                    },
                ],
            )
        report = b.prune(now, failed_before=now - DAY, finished_before=now - DAY, workers_before=now - DAY)
        assert report.failed == 1
        with b.engine.connect() as conn:
            left = conn.execute(sa.select(t.c.attempts, t.c.failed_at)).all()
        assert [(r.attempts, r.failed_at) for r in left] == [(3, None)]
    finally:
        b.close()


def test_sql_prunes_in_batches(sql_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from qadmin.backends.sql import prune as sql_prune

    monkeypatch.setattr(sql_prune, "PRUNE_BATCH", 3)
    b = open_backend(sql_url, BackendOptions())
    b.init()
    try:
        now = utcnow()
        for n in range(7):
            run(b, now - 40 * DAY, fails=True, arg=n)
        run(b, now - DAY, fails=True, arg="kept")
        report = b.prune(now, failed_before=now - 30 * DAY, finished_before=None, workers_before=None)
        assert report.failed == 7 and len(report.failed_ids) == 7
        assert b.count(states("failed"), now) == 1
    finally:
        b.close()


def test_redis_leaves_a_failure_entry_another_client_retried_meanwhile(redis_url: str, r: Any) -> None:
    from qadmin.backends.redis import RedisBackend

    b = RedisBackend(redis_url, BackendOptions())
    try:
        now = utcnow()
        run(b, now - 40 * DAY, fails=True, arg="retried")
        run(b, now - 40 * DAY, fails=True, arg="pruned")
        real_run = b.server.run

        def retried_first(batch: Any) -> list[bool]:
            # resque-web retries the first entry between the prune's read and its removal
            entry = json.loads(r.lindex("resque:failed", 0))
            entry["retried_at"] = "2026/01/01 00:00:00 UTC"
            r.lset("resque:failed", 0, json.dumps(entry))
            return real_run(batch)

        b.server.run = retried_first  # type: ignore[method-assign]
        report = b.prune(now, failed_before=now - 30 * DAY, finished_before=None, workers_before=None)
        b.server.run = real_run  # type: ignore[method-assign]
        assert report.failed == 1
        left = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
        assert [e["payload"]["args"] for e in left] == [["retried"]]
        assert "retried_at" in left[0]
    finally:
        b.close()


def test_redis_prunes_retried_entries_as_finished_history_and_stops_at_young_entries(redis_url: str, r: Any) -> None:
    from qadmin.backends.redis import RedisBackend

    def entry(arg: str, failed_at: str, **more: Any) -> str:
        payload = {"class": NOOP, "args": [arg]}
        return json.dumps(
            {
                "failed_at": failed_at,
                "payload": payload,
                "exception": "E",
                "error": "x",
                "backtrace": [],
                "worker": "w",
                "queue": "q",
                **more,
            }
        )

    r.rpush(
        "resque:failed",
        entry("old", "2020/01/01 00:00:00 UTC"),
        entry("old-retried", "2020/01/01 00:00:01 UTC", retried_at="2020/01/02 00:00:00 UTC"),
        "not json at all",
        entry("young", utcnow().strftime("%Y/%m/%d %H:%M:%S UTC")),
        entry("skewed-old-after-young", "2020/01/01 00:00:02 UTC"),
    )
    b = RedisBackend(redis_url, BackendOptions())
    try:
        now = utcnow()
        dry = b.prune(
            now, failed_before=now - 30 * DAY, finished_before=now - 7 * DAY, workers_before=None, dry_run=True
        )
        assert (dry.failed, dry.finished) == (1, 1)
        assert r.llen("resque:failed") == 5
        report = b.prune(now, failed_before=now - 30 * DAY, finished_before=now - 7 * DAY, workers_before=None)
        assert (report.failed, report.finished) == (1, 1)
        left = r.lrange("resque:failed", 0, -1)
        assert left[0] == b"not json at all"
        assert [json.loads(x)["payload"]["args"][0] for x in left[1:]] == ["young", "skewed-old-after-young"]
    finally:
        b.close()


def test_redis_leaves_resque_workers_to_resque(redis_url: str, r: Any) -> None:
    from qadmin.backends.redis import RedisBackend

    rid = "rubyhost:77:q"
    r.sadd("resque:workers", rid)
    r.set(f"resque:worker:{rid}:started", "2020-01-01 00:00:00 +0000")
    r.hset("resque:workers:heartbeat", rid, "2020-01-01T00:00:00+00:00")
    b = RedisBackend(redis_url, BackendOptions())
    try:
        now = utcnow()
        _register(b, "host:gone pid:1", now - 2 * DAY)
        qrid = json.loads(r.hget("resque:qadmin:workers", "host:gone pid:1"))["rid"]
        report = b.prune(now, failed_before=None, finished_before=None, workers_before=now - DAY)
        assert report.worker_names == ["host:gone pid:1"]
        assert r.smembers("resque:workers") == {rid.encode()}
        assert r.hget("resque:workers:heartbeat", rid) is not None
        assert r.hget("resque:workers:heartbeat", qrid) is None
        assert rid in {w.name for w in b.workers(now)}
    finally:
        b.close()


def test_redis_leaves_a_worker_that_beat_again_meanwhile(redis_url: str) -> None:
    from qadmin.backends.redis import RedisBackend

    b = RedisBackend(redis_url, BackendOptions())
    try:
        now = utcnow()
        _register(b, "host:back pid:1", now - 2 * DAY)
        real_run = b.server.run

        def beats_first(batch: Any) -> list[bool]:
            b.server.run = real_run  # type: ignore[method-assign]
            b.heartbeat("host:back pid:1", now, None, None, 1, 0)
            return real_run(batch)

        b.server.run = beats_first  # type: ignore[method-assign]
        report = b.prune(now, failed_before=None, finished_before=None, workers_before=now - DAY)
        b.server.run = real_run  # type: ignore[method-assign]
        assert report.workers == 0
        assert "host:back pid:1" in {w.name for w in b.workers(now)}
    finally:
        b.close()


def test_sql_prunes_djjobs_failed_rows_only(sql_url: str) -> None:
    """DJJob sets `failed_at` once attempts reach its max: those rows go, a row with attempts left
    (its `failed_at` NULL) stays, whatever its age."""
    import sqlalchemy as sa

    from tests.interop.test_interop_djjob import JOBS_SQL

    probe: Any = open_backend(sql_url)
    with probe.engine.begin() as conn:
        conn.exec_driver_sql(JOBS_SQL[probe.kind])
    probe.close()
    b: Any = open_backend(sql_url, BackendOptions(table="jobs"))
    try:
        now = utcnow()
        long_ago = (now - 90 * DAY).replace(microsecond=0)
        t = b.store.jobs()
        handler = 'O:8:"SendMail":1:{s:2:"to";s:3:"ann";}'
        handler_value: Any = handler.encode() if b.kind == "postgresql" else handler
        rows = [
            {"attempts": 5, "failed_at": long_ago, "error": "boom"},
            {"attempts": 2, "failed_at": None, "error": "boom"},
        ]
        with b.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    sa.insert(t).values(
                        handler=handler_value, queue="default", run_at=long_ago, created_at=long_ago, **row
                    )
                )
        report = b.prune(now, failed_before=now - DAY, finished_before=now - DAY, workers_before=now - DAY)
        assert report.failed == 1
        with b.engine.connect() as conn:
            left = conn.execute(sa.select(t.c.attempts, t.c.failed_at)).all()
        assert [(r.attempts, r.failed_at) for r in left] == [(2, None)]
    finally:
        b.close()
