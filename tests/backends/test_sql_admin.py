"""The SQL backend's admin verbs where they take their own paths at scale: stats counted from
index ranges per queue, bulk retry with its audit rows written in one statement, previews that
read bare ids in big statements, and finished jobs selected together with live ones.

Each figure is checked against another way of getting it (a count per state through `count`,
the audit log per job), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import qadmin.backends.sql.reads as sql_reads
from qadmin.backends import BackendOptions, open_backend
from qadmin.backends.owners import worker_name
from qadmin.filters import JobFilter
from qadmin.job import AuditEntry, JobState, NewJob, utcnow
from qadmin.ops import Ops

NOOP = "qadmin.examples.noop"
HOUR = 3600.0


def _dead_owner() -> str:
    """A lock owner on this host whose process has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return worker_name(proc.pid)


@pytest.fixture
def backend(sql_backend: Any) -> Any:
    return sql_backend


def _rows(backend: Any, rows: list[dict[str, Any]]) -> None:
    """Rows as delayed_job (or another writer) leaves them, straight into the table."""
    t = backend.store.jobs()
    now = utcnow()
    with backend.engine.begin() as conn:
        conn.execute(
            sa.insert(t),
            [
                {
                    "priority": 0,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                    "run_at": now - timedelta(minutes=5),
                    "queue": None,
                    "locked_at": None,
                    "locked_by": None,
                    "failed_at": None,
                    "last_error": None,
                    "handler": json.dumps({"class": NOOP, "args": [i]}),
                    **row,
                }
                for i, row in enumerate(rows)
            ],
        )


@pytest.mark.parametrize("indexes", ["qadmin's", "the owner's only"])
def test_stats_agree_with_the_counts_of_each_state_in_each_queue(sql_url: str, indexes: str) -> None:
    if indexes != "qadmin's":
        # a table delayed_job created keeps its own indexes: stats read it by another path
        setup = open_backend(sql_url, BackendOptions())
        setup.init()
        with setup.engine.begin() as conn:
            for index in ("failed_at", "locked_at", "queue", "claim", "state"):
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS qadmin_delayed_jobs_{index}")
        setup.close()
    backend = open_backend(sql_url, BackendOptions(max_run_time=4 * HOUR))
    backend.init()
    assert backend.store.has_state_index() is (indexes == "qadmin's")
    now = utcnow()
    dead = _dead_owner()
    _rows(
        backend,
        [
            {"queue": None},
            {"queue": None, "run_at": None},  # delayed_job's default queue
            {"queue": "a", "run_at": now - timedelta(days=2)},  # the oldest pending
            {"queue": "a", "run_at": now + timedelta(hours=1)},  # scheduled
            {"queue": "a", "failed_at": now, "last_error": "Boom\ntrace"},
            {"queue": "a", "locked_at": now, "locked_by": worker_name()},  # held by this live process
            {"queue": "b", "locked_at": now - timedelta(hours=5), "locked_by": "host:x pid:2"},  # expired
            {"queue": "b", "locked_at": now - timedelta(minutes=1), "locked_by": dead},  # its worker is gone
            {"queue": "b", "failed_at": now, "locked_at": now, "locked_by": dead},  # failed wins over locked
            {"queue": "zz"},
        ],
    )
    stats = backend.stats(now, 4 * HOUR)
    assert sorted(stats.queues) == ["", "a", "b", "zz"]
    for queue, counts in stats.queues.items():
        for state in (JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED, JobState.FAILED):
            selection = JobFilter(states=frozenset({state}), queues=(queue,))
            assert counts[state.value] == backend.count(selection, now), (queue, state)
        stale = JobFilter(states=frozenset({JobState.LOCKED}), queues=(queue,), stale_only=True)
        assert counts["stale"] == backend.count(stale, now), queue
    assert stats.queues[""]["pending"] == 2
    assert stats.queues["a"] == {"pending": 1, "scheduled": 1, "locked": 1, "stale": 0, "failed": 1, "finished": 0}
    assert stats.queues["b"] == {"pending": 0, "scheduled": 0, "locked": 2, "stale": 2, "failed": 1, "finished": 0}
    assert stats.oldest_pending_at is not None
    assert abs((stats.oldest_pending_at - (now - timedelta(days=2))).total_seconds()) < 1
    backend.close()


def test_stats_of_an_empty_table(backend: Any) -> None:
    stats = backend.stats(utcnow(), HOUR)
    assert stats.queues == {} and stats.oldest_pending_at is None


def test_retry_of_many_failed_jobs_audits_every_one(sql_url: str) -> None:
    ops = Ops.open(sql_url, face="test")
    ops.backend.init()
    now = utcnow()
    n = 12_345  # more than one batch of the preview, the apply and the audit
    _rows(
        ops.backend,
        [{"queue": "q", "failed_at": now, "last_error": "E"} for _ in range(n)] + [{"queue": "q"} for _ in range(3)],
    )
    result = ops.retry(JobFilter(states=frozenset({JobState.FAILED})))
    assert result.changed == n and not result.skipped
    assert ops.backend.count(JobFilter(states=frozenset({JobState.PENDING})), utcnow()) == n + 3
    entry = ops.backend.audit(limit=1)[0]
    assert entry.verb == "retry" and entry.changed == n
    for job_id in (result.changed_ids[0], result.changed_ids[n // 2], result.changed_ids[-1]):
        assert [e.id for e in ops.backend.audit(job_id=job_id)] == [entry.id]
    a = ops.backend.store.aux["audit_jobs"]
    with ops.backend.engine.connect() as conn:
        stored = [r[0] for r in conn.execute(sa.select(a.c.job_id).where(a.c.audit_id == entry.id))]
    assert sorted(stored, key=int) == [str(i) for i in sorted(result.changed_ids)]
    ops.close()


def test_record_audit_without_jobs(backend: Any) -> None:
    entry = AuditEntry(
        id=None, at=utcnow(), actor="me", face="cli", verb="pause", selection={}, matched=1, changed=1, skipped=0
    )
    backend.record_audit(entry, [])
    assert backend.audit(limit=1)[0].verb == "pause"


def test_bare_ids_are_read_in_big_statements_and_handed_out_in_batches(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rows(backend, [{"queue": "q"} for _ in range(20)] + [{"queue": "r"} for _ in range(5)])
    monkeypatch.setattr(sql_reads, "ID_BATCH", 7)
    now = utcnow()
    selection = JobFilter(queues=("q",))
    batches = list(backend.iter_ids(selection, now, batch=3))
    assert all(0 < len(b) <= 3 for b in batches)
    flat = [i for b in batches for i in b]
    assert flat == sorted(flat) and len(flat) == 20
    assert flat == sorted(j.id for j in backend.find(selection, now, limit=100).jobs)
    # with a check only Python can make, rows are read a batch at a time as before
    by_args = JobFilter(queues=("q",), args=(4,))
    assert [i for b in backend.iter_ids(by_args, now, batch=3) for i in b] == [
        j.id for j in backend.find(by_args, now, limit=100).jobs
    ]


def test_finished_and_live_jobs_page_together(backend: Any) -> None:
    jobs = backend.enqueue_many([NewJob(NOOP, [i], queue="q") for i in range(7)])
    now = utcnow()
    for _ in range(4):
        job = backend.claim(["q"], "host:w pid:1", now, HOUR, lambda job: True)
        backend.complete(job, "host:w pid:1", now, 0.01)
    mixed = JobFilter(states=frozenset({JobState.PENDING, JobState.FINISHED}), queues=("q",))
    assert backend.count(mixed, now) == 7
    for limit in (1, 2, 3, 4, 7, 50):
        seen: list[Any] = []
        states: list[JobState] = []
        cursor = None
        while True:
            page = backend.find(mixed, now, limit=limit, cursor=cursor)
            assert len(page.jobs) <= limit
            seen += [j.id for j in page.jobs]
            states += [j.state for j in page.jobs]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(jobs), limit
        # live jobs first, then the finished ones
        assert states == [JobState.PENDING] * 3 + [JobState.FINISHED] * 4, limit
    by_args = JobFilter(states=frozenset({JobState.FINISHED}), args=(0,))
    assert [j.args for j in backend.find(by_args, now, limit=10).jobs] == [[0]]
    assert backend.count(by_args, now) == 1
    assert backend.count(JobFilter(states=frozenset({JobState.FINISHED}), class_name="Other"), now) == 0
    assert backend.count(JobFilter(states=frozenset({JobState.FINISHED}), locked_by="host:w"), now) == 4
