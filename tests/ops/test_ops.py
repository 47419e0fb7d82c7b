"""The operations layer: previews freeze what a bulk verb acts on, results say exactly what changed,
every bulk verb is audited. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest

from qadmin.backends import BackendOptions
from qadmin.backends.owners import worker_name
from qadmin.errors import InvalidTransition, JobNotFound, UsageError
from qadmin.filters import JobFilter
from qadmin.job import Job, JobState, NewJob, utcnow
from qadmin.ops import APPLY_BATCH, Ops

NOOP = "qadmin.examples.noop"
FAILED = frozenset({JobState.FAILED})


@pytest.fixture
def ops(sql_url: str) -> Iterator[Ops]:
    o = Ops.open(sql_url, options=BackendOptions(), face="test", actor="tester")
    o.backend.init()
    yield o
    o.close()


def make_failed(
    ops: Ops,
    n: int,
    queue: str = "email",
    cls: str = "qadmin.examples.SendEmail",
    error: str = "ValueError: bad address",
) -> list[Job]:
    """Jobs failed for good, through the engine verbs a worker uses."""
    b = ops.backend
    past = utcnow() - timedelta(minutes=5)
    ids = b.enqueue_many([NewJob(cls, [f"user{i}", "hi"], queue=queue, run_at=past) for i in range(n)])
    out = []
    for job_id in ids:
        claimed = b.claim([queue], "w", utcnow(), 3600, lambda j, job_id=job_id: str(j.id) == str(job_id))
        assert claimed is not None
        b.fail(claimed, "w", utcnow(), f"{error}\n  File x", None)
        out.append(b.get(job_id, utcnow()))
    return out


def pending(ops: Ops, n: int, queue: str = "default", cls: str = NOOP, args: list | None = None) -> list[Job]:
    due = utcnow() - timedelta(hours=12)  # so that claims dated in the past can take them
    ids = ops.backend.enqueue_many(
        [NewJob(cls, args if args is not None else [i], queue=queue, run_at=due) for i in range(n)]
    )
    return [ops.backend.get(i, utcnow()) for i in ids]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def state_of(ops: Ops, job: Job) -> JobState:
    return ops.show(job.id).state


# --- preview and apply ------------------------------------------------------------------------
def test_preview_counts_and_samples_without_changing_anything(ops: Ops) -> None:
    jobs = make_failed(ops, 12)
    preview = ops.preview("retry", JobFilter(states=FAILED))
    assert preview.count == 12
    assert sorted(str(i) for i in preview.ids) == sorted(str(j.id) for j in jobs)
    assert 0 < len(preview.sample) <= 10 and all(j.state is JobState.FAILED for j in preview.sample)
    # the sample is the first previewed jobs, read by their frozen ids
    assert [str(j.id) for j in preview.sample] == [str(i) for i in preview.ids[: len(preview.sample)]]
    assert ops.count(JobFilter(states=FAILED)) == 12
    result = ops.retry(JobFilter(states=FAILED), dry_run=True)
    assert (result.matched, result.changed, result.dry_run) == (12, 0, True)
    assert ops.count(JobFilter(states=FAILED)) == 12


def test_apply_acts_only_on_the_previewed_ids(ops: Ops) -> None:
    before = make_failed(ops, 3)
    preview = ops.preview("retry", JobFilter(states=FAILED, queues=("email",)))
    late = make_failed(ops, 2)  # failed after the preview: not what the operator confirmed
    result = ops.apply(preview)
    assert (result.matched, result.changed, len(result.skipped)) == (3, 3, 0)
    assert all(state_of(ops, j) is JobState.PENDING for j in before)
    assert all(state_of(ops, j) is JobState.FAILED for j in late)


def test_jobs_that_changed_since_the_preview_are_skipped_and_reported(ops: Ops) -> None:
    jobs = make_failed(ops, 5)
    preview = ops.preview("retry", JobFilter(states=FAILED))
    # meanwhile: someone else retried one, deleted another, and a worker took the retried one
    ops.backend.retry([jobs[0].id], utcnow())
    ops.backend.delete([jobs[1].id], utcnow())
    claimed = ops.backend.claim(
        ["email"], worker_name(), utcnow() + timedelta(seconds=1), 3600, lambda j: str(j.id) == str(jobs[0].id)
    )
    assert claimed is not None
    result = ops.apply(preview)
    assert (result.matched, result.changed) == (5, 3)
    assert sorted(str(i) for i, _ in result.skipped) == sorted(str(j.id) for j in jobs[:2])
    assert all(reason == "changed state since the preview" for _, reason in result.skipped)
    assert state_of(ops, jobs[0]) is JobState.LOCKED, "a job a worker holds was not touched"
    assert result.matched == result.changed + len(result.skipped)
    entry = ops.audit(1)[0]
    assert (entry.verb, entry.matched, entry.changed, entry.skipped) == ("retry", 5, 3, 2)


def test_delete_after_a_worker_took_the_job_still_deletes_only_what_is_allowed(ops: Ops) -> None:
    jobs = pending(ops, 4, queue="q")
    preview = ops.preview("dequeue", JobFilter(queues=("q",), class_name=NOOP))
    assert preview.count == 4
    claimed = ops.backend.claim(
        ["q"], worker_name(), utcnow() + timedelta(seconds=1), 3600, lambda j: str(j.id) == str(jobs[2].id)
    )
    assert claimed is not None
    result = ops.apply(preview)
    assert (result.matched, result.changed, len(result.skipped)) == (4, 3, 1)
    assert state_of(ops, jobs[2]) is JobState.LOCKED


def test_progress_is_reported_in_batches_up_to_the_total(ops: Ops) -> None:
    total = APPLY_BATCH * 2 + 17
    ops.backend.enqueue_many([NewJob(NOOP, [i], queue="bulk") for i in range(total)])
    seen: list[tuple[int, int]] = []
    result = ops.delete(JobFilter(queues=("bulk",)), progress=lambda done, of: seen.append((done, of)))
    assert result.changed == total
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 4
    assert ops.count(JobFilter(queues=("bulk",))) == 0


# --- each verb --------------------------------------------------------------------------------
def test_retry_resets_failed_jobs_of_one_queue_only(ops: Ops) -> None:
    email = make_failed(ops, 3, queue="email")
    billing = make_failed(ops, 2, queue="billing", cls="qadmin.examples.ChargeCard")
    result = ops.retry(JobFilter(states=FAILED, queues=("email",)))
    assert (result.matched, result.changed) == (3, 3)
    for job in email:
        got = ops.show(job.id)
        assert got.state is JobState.PENDING and got.attempts == 0 and got.failed_at is None
    assert all(state_of(ops, j) is JobState.FAILED for j in billing)


def test_retry_of_explicit_ids_reports_the_ones_that_are_not_failed(ops: Ops) -> None:
    failed = make_failed(ops, 1)[0]
    waiting = pending(ops, 1)[0]
    result = ops.retry(JobFilter(ids=(failed.id, waiting.id)))
    assert (result.matched, result.changed) == (1, 1)
    assert result.skipped == [(waiting.id, "is pending, retry acts on failed jobs")]


def test_retry_job_refuses_a_job_that_is_not_failed(ops: Ops) -> None:
    waiting = pending(ops, 1)[0]
    with pytest.raises(InvalidTransition, match="it is pending"):
        ops.retry_job(waiting.id)
    with pytest.raises(JobNotFound):
        ops.retry_job(987654)
    failed = make_failed(ops, 1)[0]
    assert ops.retry_job(failed.id).state is JobState.PENDING


def test_a_verb_on_states_it_cannot_act_on_is_a_usage_error(ops: Ops) -> None:
    with pytest.raises(UsageError, match="retry acts on failed jobs"):
        ops.retry(JobFilter(states=frozenset({JobState.PENDING})))
    with pytest.raises(UsageError):
        ops.preview("explode", JobFilter())
    with pytest.raises(UsageError):
        ops.list_jobs(limit=0)


def test_dequeue_removes_waiting_jobs_of_a_class_with_exact_args(ops: Ops) -> None:
    match = pending(ops, 2, queue="mail", cls="qadmin.examples.SendEmail", args=["a@x", "hi"])
    other_args = pending(ops, 1, queue="mail", cls="qadmin.examples.SendEmail", args=["b@x", "hi"])
    other_queue = pending(ops, 1, queue="else", cls="qadmin.examples.SendEmail", args=["a@x", "hi"])
    failed = make_failed(ops, 1, queue="mail")
    result = ops.dequeue("mail", "qadmin.examples.SendEmail", ["a@x", "hi"])
    assert (result.matched, result.changed) == (2, 2)
    for job in match:
        with pytest.raises(JobNotFound):
            ops.show(job.id)
    assert state_of(ops, other_args[0]) is JobState.PENDING
    assert state_of(ops, other_queue[0]) is JobState.PENDING
    assert state_of(ops, failed[0]) is JobState.FAILED
    everything = ops.dequeue("mail", "qadmin.examples.SendEmail")
    assert everything.changed == 1
    with pytest.raises(UsageError):
        ops.dequeue("mail", "")


def test_unlock_stale_frees_only_dead_or_expired_locks(ops: Ops) -> None:
    jobs = pending(ops, 3, queue="s")
    b = ops.backend
    now = utcnow() + timedelta(seconds=1)
    only = lambda job: lambda j: str(j.id) == str(job.id)  # noqa: E731
    b.claim(["s"], "host:gone pid:1", now - timedelta(hours=6), 4 * 3600, only(jobs[0]))
    b.claim(["s"], worker_name(), now, 4 * 3600, only(jobs[1]))  # this process: alive
    b.claim(["s"], "host:elsewhere pid:9", now - timedelta(minutes=30), 4 * 3600, only(jobs[2]))
    dry = ops.unlock(stale=True, dry_run=True)
    assert (dry.matched, dry.changed) == (1, 0)
    result = ops.unlock(stale=True)
    assert (result.matched, result.changed) == (1, 1)
    assert state_of(ops, jobs[0]) is JobState.PENDING
    assert state_of(ops, jobs[1]) is JobState.LOCKED and state_of(ops, jobs[2]) is JobState.LOCKED
    # --older-than judges by age alone, whoever holds the lock
    result = ops.unlock(older_than=20 * 60)
    assert (result.matched, result.changed) == (1, 1)
    assert state_of(ops, jobs[2]) is JobState.PENDING and state_of(ops, jobs[1]) is JobState.LOCKED
    with pytest.raises(UsageError):
        ops.unlock(older_than=-1)


def test_unlock_stale_with_older_than_also_frees_dead_owners(ops: Ops) -> None:
    jobs = pending(ops, 2, queue="s")
    now = utcnow() + timedelta(seconds=1)
    ops.backend.claim(["s"], worker_name(dead_pid()), now, 4 * 3600, lambda j: str(j.id) == str(jobs[0].id))
    ops.backend.claim(
        ["s"], "host:elsewhere pid:9", now - timedelta(hours=1), 4 * 3600, lambda j: str(j.id) == str(jobs[1].id)
    )
    result = ops.unlock(stale=True, older_than=30 * 60)
    assert (result.matched, result.changed) == (2, 2)


def test_delete_by_state_queue_and_search(ops: Ops) -> None:
    pending(ops, 3, queue="a")
    keep = pending(ops, 2, queue="b")
    failed = make_failed(ops, 2, queue="a")
    result = ops.delete(JobFilter(queues=("a",), states=frozenset({JobState.PENDING})))
    assert result.changed == 3
    assert all(state_of(ops, j) is JobState.FAILED for j in failed)
    result = ops.delete(JobFilter(search="user1"))
    assert result.changed == 1
    assert all(state_of(ops, j) is JobState.PENDING for j in keep)


# --- pause, reading, audit --------------------------------------------------------------------
def test_pause_and_resume_are_audited(ops: Ops) -> None:
    assert ops.pause("email") is True and ops.pause("email") is False
    assert ops.paused() == ["email"]
    assert ops.resume("email") is True
    verbs = [(e.verb, e.changed) for e in ops.audit(10)]
    assert verbs == [("resume", 1), ("pause", 0), ("pause", 1)]


def test_every_bulk_verb_writes_an_audit_record_with_its_jobs(ops: Ops) -> None:
    failed = make_failed(ops, 2)
    ops.retry(JobFilter(states=FAILED))
    ops.delete(JobFilter(ids=(failed[0].id,)))
    entries = ops.audit(10)
    assert [e.verb for e in entries] == ["delete", "retry"]
    retry = entries[1]
    assert (retry.actor, retry.face, retry.matched, retry.changed, retry.skipped) == ("tester", "test", 2, 2, 0)
    assert retry.selection == {"state": "failed"}
    assert [e.verb for e in ops.audit(10, job_id=failed[0].id)] == ["delete", "retry"]
    assert [e.verb for e in ops.audit(10, job_id=failed[1].id)] == ["retry"]


def test_reading_verbs(ops: Ops) -> None:
    make_failed(ops, 3, error="ValueError: one")
    make_failed(ops, 1, queue="billing", cls="qadmin.examples.ChargeCard", error="PaymentDeclined: no")
    pending(ops, 2, queue="images")
    stats = ops.stats()
    assert stats.queues["email"]["failed"] == 3 and stats.queues["images"]["pending"] == 2
    assert {q.name for q in ops.queues()} == {"email", "billing", "images"}
    assert ops.queue_names() == ["billing", "email", "images"]
    groups = ops.error_groups()
    assert [(g.error, g.count) for g in groups] == [("ValueError: one", 3), ("PaymentDeclined: no", 1)]
    page = ops.list_jobs(JobFilter(states=FAILED), limit=2)
    assert len(page.jobs) == 2 and page.next_cursor
    rest = ops.list_jobs(JobFilter(states=FAILED), limit=2, cursor=page.next_cursor)
    assert len(rest.jobs) == 2 and rest.next_cursor is None
    with pytest.raises(UsageError):
        ops.show("not-an-id")


def test_a_secret_in_a_selection_never_reaches_the_stored_audit_log(ops: Ops) -> None:
    # read back from the backend itself, not through a face's redaction: the stored entry holds no secret
    pending(ops, 1, queue="billing", cls="Billing::Charge", args=[{"password": "hunter2", "amount": 5}])
    result = ops.dequeue("billing", "Billing::Charge", [{"password": "hunter2", "amount": 5}])
    assert result.changed == 1
    [entry] = [e for e in ops.backend.audit(limit=10) if e.verb == "dequeue"]
    assert "hunter2" not in json.dumps(entry.selection)
    assert json.loads(entry.selection["args"]) == [{"password": "[redacted]", "amount": 5}]
