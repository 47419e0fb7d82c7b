"""The backend contract, written once and run against every backend (sqlite, postgres, redis).

Only the `Backend` protocol is used here: no SQL, no Redis commands. What a backend must do is
what `qadmin/backends/base.py` documents; each test names one promise.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from qadmin.backends import Backend
from qadmin.backends.owners import worker_name
from qadmin.errors import JobNotFound, QadminError, UsageError
from qadmin.filters import JobFilter
from qadmin.job import AuditEntry, Job, JobState, NewJob, WorkerInfo, utcnow
from qadmin.model import SORTS

NOOP = "qadmin.examples.noop"
ALWAYS = lambda job: True  # noqa: E731 - a claim that takes whatever comes first
HOUR = 3600.0


def states(*words: str) -> JobFilter:
    return JobFilter(states=frozenset(JobState(w) for w in words))


def ids_of(jobs: list[Job]) -> list[str]:
    return [str(j.id) for j in jobs]


def enqueue(b: Backend, cls: str = NOOP, *args: object, **kw: object) -> Job:
    return b.enqueue(NewJob(cls, list(args), **kw))  # type: ignore[arg-type]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- set-up -----------------------------------------------------------------------------------
def test_init_is_idempotent_and_check_passes(backend: Backend) -> None:
    backend.init()
    backend.check()
    assert backend.count(JobFilter(), utcnow()) == 0


def test_parse_id_round_trips_a_printed_id(backend: Backend) -> None:
    job = enqueue(backend)
    assert str(backend.parse_id(str(job.id))) == str(job.id)
    assert backend.get(backend.parse_id(str(job.id)), utcnow()).id == job.id


# --- enqueue ----------------------------------------------------------------------------------
def test_enqueue_stores_a_pending_job_with_its_fields(backend: Backend) -> None:
    job = backend.enqueue(
        NewJob(
            "qadmin.examples.record",
            ["/tmp/x", "tok"],
            {"k": [1, "é"]},
            queue="mail",
            priority=3 if backend.supports_priority else 0,
            max_attempts=4,
        )
    )
    got = backend.get(job.id, utcnow())
    assert got.id == job.id
    assert got.state is JobState.PENDING
    assert (got.class_name, got.args, got.kwargs, got.queue) == (
        "qadmin.examples.record",
        ["/tmp/x", "tok"],
        {"k": [1, "é"]},
        "mail",
    )
    assert got.attempts == 0 and got.failed_at is None and got.locked_by is None
    assert got.max_attempts == 4
    assert got.decodable
    if backend.supports_priority:
        assert got.priority == 3
    data = got.to_dict()
    for key in (
        "id",
        "queue",
        "class",
        "args",
        "kwargs",
        "state",
        "priority",
        "attempts",
        "run_at",
        "locked_at",
        "locked_by",
        "failed_at",
        "last_error",
        "created_at",
    ):
        assert key in data
    assert data["state"] == "pending" and data["class"] == "qadmin.examples.record"


@pytest.mark.parametrize("due", ["now", "later"])
def test_enqueue_returns_the_job_as_get_reads_it(backend: Backend, due: str) -> None:
    """The job enqueue hands back is built without reading the row again: it must be the stored
    job to the last field (args a list even when given a tuple, keys as JSON keeps them)."""
    run_at = utcnow() + timedelta(hours=1) if due == "later" else None
    new = NewJob(
        "qadmin.examples.record",
        ("/tmp/x", 1.5, None, {"n": (1, 2)}),
        {"k": ["é", True]},
        queue="mail",
        priority=2 if backend.supports_priority else 0,
        max_attempts=3,
        run_at=run_at,
    )
    job = backend.enqueue(new)
    got = backend.get(job.id, utcnow())
    assert job.to_dict() == got.to_dict()
    assert (job.raw, job.format, job.meta, job.max_attempts) == (got.raw, got.format, got.meta, got.max_attempts)


def test_a_job_due_later_is_scheduled_and_not_claimed(backend: Backend) -> None:
    now = utcnow()
    job = backend.enqueue(NewJob(NOOP, [], queue="q", run_at=now + timedelta(hours=1)))
    assert backend.get(job.id, now).state is JobState.SCHEDULED
    assert backend.claim(["*"], "w1", now, HOUR, ALWAYS) is None
    # once due it is pending and claimable
    later = now + timedelta(hours=2)
    assert backend.get(job.id, later).state is JobState.PENDING
    claimed = backend.claim(["*"], "w1", later, HOUR, ALWAYS)
    assert claimed is not None and claimed.id == job.id


def test_enqueue_many_stores_every_job_in_order(backend: Backend) -> None:
    news = [NewJob(NOOP, [i], queue="bulk") for i in range(120)]
    ids = backend.enqueue_many(news)
    assert len(ids) == 120 and len({str(i) for i in ids}) == 120
    assert backend.count(JobFilter(queues=("bulk",)), utcnow()) == 120
    assert [backend.get(i, utcnow()).args for i in ids[:3]] == [[0], [1], [2]]


def test_unique_returns_the_live_job_instead_of_a_duplicate(backend: Backend) -> None:
    first = backend.enqueue(NewJob(NOOP, [1], queue="u", unique="report:7"))
    second = backend.enqueue(NewJob(NOOP, [2], queue="u", unique="report:7"))
    other = backend.enqueue(NewJob(NOOP, [3], queue="u", unique="report:8"))
    assert str(second.id) == str(first.id)
    assert str(other.id) != str(first.id)
    assert backend.count(JobFilter(queues=("u",)), utcnow()) == 2


def test_unique_key_is_free_again_once_its_job_finished(backend: Backend) -> None:
    first = backend.enqueue(NewJob(NOOP, [], queue="u", unique="k"))
    claimed = backend.claim(["u"], "w1", utcnow(), HOUR, ALWAYS)
    assert claimed is not None
    backend.complete(claimed, "w1", utcnow(), 0.01)
    again = backend.enqueue(NewJob(NOOP, [], queue="u", unique="k"))
    assert str(again.id) != str(first.id)
    assert backend.get(again.id, utcnow()).state is JobState.PENDING


# --- claim ------------------------------------------------------------------------------------
def test_claim_takes_lowest_priority_then_earliest_run_at(backend: Backend) -> None:
    now = utcnow()
    if backend.supports_priority:
        late_urgent = backend.enqueue(
            NewJob(NOOP, ["late-urgent"], queue="q", priority=0, run_at=now - timedelta(seconds=10))
        )
        early_lazy = backend.enqueue(
            NewJob(NOOP, ["early-lazy"], queue="q", priority=5, run_at=now - timedelta(seconds=60))
        )
        early_urgent = backend.enqueue(
            NewJob(NOOP, ["early-urgent"], queue="q", priority=0, run_at=now - timedelta(seconds=30))
        )
        expected = [early_urgent, late_urgent, early_lazy]
    else:
        expected = [backend.enqueue(NewJob(NOOP, [i], queue="q")) for i in range(3)]
    got = []
    for n in range(3):
        job = backend.claim(["q"], f"w{n}", now, HOUR, ALWAYS)
        assert job is not None
        got.append(str(job.id))
    assert got == ids_of(expected)
    assert backend.claim(["q"], "w9", now, HOUR, ALWAYS) is None


def test_claim_locks_the_job_for_its_worker(backend: Backend) -> None:
    job = enqueue(backend, NOOP, queue="q")
    now = utcnow()
    claimed = backend.claim(["q"], "host:h pid:1", now, HOUR, ALWAYS)
    assert claimed is not None and claimed.id == job.id
    assert claimed.state is JobState.LOCKED and claimed.locked_by == "host:h pid:1"
    stored = backend.get(job.id, now)
    assert stored.state is JobState.LOCKED and stored.locked_by == "host:h pid:1"
    assert stored.locked_at is not None
    # a second worker does not get it
    assert backend.claim(["q"], "host:h pid:2", now, HOUR, ALWAYS) is None


def test_claim_serves_only_its_queues_and_star_serves_all(backend: Backend) -> None:
    a = enqueue(backend, NOOP, queue="a")
    b = enqueue(backend, NOOP, queue="b")
    now = utcnow()
    assert backend.claim(["c"], "w1", now, HOUR, ALWAYS) is None
    got_b = backend.claim(["b", "c"], "w1", now, HOUR, ALWAYS)
    assert got_b is not None and got_b.id == b.id
    got_a = backend.claim(["*"], "w2", now, HOUR, ALWAYS)
    assert got_a is not None and got_a.id == a.id


def test_claim_never_locks_a_job_it_cannot_run(backend: Backend) -> None:
    blocked = backend.enqueue(NewJob("no.such.Job", [], queue="q"))
    runnable = backend.enqueue(NewJob(NOOP, [], queue="q"))
    now = utcnow()
    job = backend.claim(["q"], "w1", now, HOUR, lambda j: j.class_name == NOOP)
    assert job is not None and job.id == runnable.id
    left = backend.get(blocked.id, now)
    assert left.state is JobState.PENDING and left.locked_by is None and left.locked_at is None
    assert backend.claim(["q"], "w2", now, HOUR, lambda j: j.class_name == NOOP) is None
    assert backend.get(blocked.id, now).state is JobState.PENDING


def test_a_paused_queue_is_skipped_until_resumed(backend: Backend) -> None:
    enqueue(backend, NOOP, queue="slow")
    now = utcnow()
    assert backend.pause("slow", now) is True
    assert backend.pause("slow", now) is False
    assert backend.is_paused("slow") and backend.paused() == ["slow"]
    assert backend.claim(["*"], "w1", now, HOUR, ALWAYS) is None
    assert backend.claim(["slow"], "w1", now, HOUR, ALWAYS) is None
    assert backend.resume("slow") is True
    assert backend.resume("slow") is False
    assert backend.paused() == [] and not backend.is_paused("slow")
    assert backend.claim(["slow"], "w1", now, HOUR, ALWAYS) is not None


def test_an_expired_lock_can_be_taken_back_by_another_worker(backend: Backend) -> None:
    then = utcnow() - timedelta(hours=5)
    job = backend.enqueue(NewJob(NOOP, [], queue="q", run_at=then - timedelta(seconds=1)))
    assert backend.claim(["q"], "host:gone pid:1", then, 4 * HOUR, ALWAYS) is not None
    now = utcnow()
    assert backend.claim(["q"], "host:other pid:2", now, 10 * HOUR, ALWAYS) is None
    again = backend.claim(["q"], "host:other pid:2", now, 4 * HOUR, ALWAYS)
    assert again is not None and again.id == job.id and again.locked_by == "host:other pid:2"


# --- outcomes ---------------------------------------------------------------------------------
def test_complete_removes_the_job_and_records_it(backend: Backend) -> None:
    job = enqueue(backend, NOOP, 1, queue="q")
    now = utcnow()
    claimed = backend.claim(["q"], "w1", now, HOUR, ALWAYS)
    assert claimed is not None
    backend.complete(claimed, "w1", now, 0.25)
    live = backend.count(JobFilter(), now)
    assert live == 0
    assert backend.claim(["q"], "w2", now, HOUR, ALWAYS) is None
    stats = backend.stats(utcnow(), HOUR)
    assert stats.processed == 1 and stats.failed == 0
    if backend.records_finished:
        finished = backend.get(job.id, now)
        assert finished.state is JobState.FINISHED and finished.args == [1]
        assert backend.count(states("finished"), now) == 1
        assert stats.totals().get("finished") == 1


def test_fail_with_retry_at_reschedules_and_keeps_the_error(backend: Backend) -> None:
    job = enqueue(backend, NOOP, queue="q")
    now = utcnow()
    claimed = backend.claim(["q"], "w1", now, HOUR, ALWAYS)
    assert claimed is not None
    backend.fail(claimed, "w1", now, "ValueError: boom\ntraceback line", now + timedelta(seconds=6))
    got = backend.get(job.id, now)
    assert got.state is JobState.SCHEDULED
    assert got.attempts == 1 and got.locked_by is None and got.failed_at is None
    assert got.last_error == "ValueError: boom\ntraceback line"
    assert got.error_message == "ValueError: boom"
    assert got.run_at is not None and abs((got.run_at - (now + timedelta(seconds=6))).total_seconds()) < 1.5
    # due again after the backoff, with its attempts carried
    again = backend.claim(["q"], "w1", now + timedelta(seconds=7), HOUR, ALWAYS)
    assert again is not None and again.id == job.id and again.attempts == 1


def test_fail_without_retry_at_fails_the_job_for_good(backend: Backend) -> None:
    job = enqueue(backend, NOOP, queue="q")
    now = utcnow()
    claimed = backend.claim(["q"], "w1", now, HOUR, ALWAYS)
    assert claimed is not None
    backend.fail(claimed, "w1", now, "RuntimeError: nope\n  at x", None)
    got = backend.get(job.id, now)
    assert got.state is JobState.FAILED and got.failed_at is not None and got.attempts == 1
    assert got.last_error.startswith("RuntimeError: nope")
    assert backend.claim(["q"], "w2", now + timedelta(days=1), HOUR, ALWAYS) is None
    stats = backend.stats(utcnow(), HOUR)
    assert stats.failed == 1 and stats.totals()["failed"] == 1


def test_release_gives_a_claimed_job_back_untouched(backend: Backend) -> None:
    job = enqueue(backend, NOOP, queue="q")
    now = utcnow()
    claimed = backend.claim(["q"], "w1", now, HOUR, ALWAYS)
    assert claimed is not None
    backend.release(claimed, "w1")
    got = backend.get(job.id, now)
    assert got.state is JobState.PENDING and got.attempts == 0 and got.locked_by is None


# --- reading ----------------------------------------------------------------------------------
def test_get_of_an_unknown_id_raises_job_not_found(backend: Backend) -> None:
    enqueue(backend)
    unknown = backend.parse_id("987654321")
    with pytest.raises(JobNotFound):
        backend.get(unknown, utcnow())


def _mixed(backend: Backend) -> dict[str, list[Job]]:
    """Jobs in every live state on two queues, with mixed priorities and times."""
    now = utcnow()
    out: dict[str, list[Job]] = {"pending": [], "scheduled": [], "locked": [], "failed": []}
    for i in range(9):
        out["pending"].append(
            backend.enqueue(
                NewJob(
                    NOOP,
                    [i],
                    queue="a" if i % 2 else "b",
                    priority=(i * 7) % 4 if backend.supports_priority else 0,
                    run_at=now - timedelta(minutes=i % 3),
                )
            )
        )
    for i in range(4):
        out["scheduled"].append(
            backend.enqueue(NewJob(NOOP, [100 + i], queue="a", run_at=now + timedelta(hours=1 + i)))
        )
    for i in range(5):
        job = backend.enqueue(
            NewJob("qadmin.examples.ChargeCard", [200 + i, 5], queue="b", run_at=now - timedelta(hours=1))
        )
        claimed = backend.claim(["b"], f"w-fail-{i}", now, HOUR, lambda j, job=job: j.id == job.id)
        assert claimed is not None
        backend.fail(
            claimed,
            f"w-fail-{i}",
            now - timedelta(seconds=i),
            "PaymentDeclined: card declined" if i % 2 else "KeyError: 'x'\nTraceback",
            None,
        )
        out["failed"].append(job)
    for i in range(2):
        job = backend.enqueue(NewJob(NOOP, [300 + i], queue="a", run_at=now - timedelta(hours=1)))
        claimed = backend.claim(["a"], worker_name(), now, HOUR, lambda j, job=job: j.id == job.id)
        assert claimed is not None
        out["locked"].append(job)
    return out


def test_count_by_state_queue_class_args_search_and_ids(backend: Backend) -> None:
    made = _mixed(backend)
    now = utcnow()
    for word, jobs in made.items():
        assert backend.count(states(word), now) == len(jobs), word
    assert backend.count(JobFilter(), now) == sum(len(v) for v in made.values())
    assert backend.count(JobFilter(queues=("a",)), now) == 4 + 4 + 2
    assert backend.count(states("pending", "scheduled"), now) == 13
    assert backend.count(JobFilter(class_name="qadmin.examples.ChargeCard"), now) == 5
    assert backend.count(JobFilter(args=(201, 5)), now) == 1
    assert backend.count(JobFilter(args=(201,)), now) == 0
    assert backend.count(JobFilter(search="chargecard"), now) == 5
    some = tuple(j.id for j in made["failed"][:2])
    assert backend.count(JobFilter(ids=some), now) == 2
    assert backend.count(JobFilter(ids=some, states=frozenset({JobState.PENDING})), now) == 0
    assert backend.count(JobFilter(error="PaymentDeclined: card declined"), now) == 2
    assert backend.count(JobFilter(locked_by=worker_name()), now) == 2


def test_find_filters_exactly_what_count_counts(backend: Backend) -> None:
    made = _mixed(backend)
    now = utcnow()
    page = backend.find(states("failed"), now, limit=100)
    assert sorted(ids_of(page.jobs)) == sorted(ids_of(made["failed"]))
    assert page.next_cursor is None
    assert all(j.state is JobState.FAILED for j in page.jobs)
    page = backend.find(JobFilter(queues=("a",), states=frozenset({JobState.SCHEDULED})), now, limit=100)
    assert sorted(ids_of(page.jobs)) == sorted(ids_of(made["scheduled"]))


@pytest.mark.parametrize("sort", SORTS)
def test_keyset_pages_have_no_duplicates_or_gaps(backend: Backend, sort: str) -> None:
    made = _mixed(backend)
    now = utcnow()
    everything = {str(j.id) for jobs in made.values() for j in jobs}
    seen: list[Job] = []
    cursor = None
    for _ in range(50):
        page = backend.find(JobFilter(), now, limit=4, cursor=cursor, sort=sort)
        assert len(page.jobs) <= 4
        seen.extend(page.jobs)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(ids_of(seen)) == len(set(ids_of(seen))), "a job appeared on two pages"
    assert set(ids_of(seen)) == everything, "a job was missing from every page"
    whole = backend.find(JobFilter(), now, limit=1000, sort=sort)
    assert ids_of(whole.jobs) == ids_of(seen), "paging changed the order"
    if sort in ("id", "-id") and backend.kind != "redis":
        numeric = [int(i) for i in ids_of(seen)]
        assert numeric == sorted(numeric, reverse=sort == "-id")
    if sort == "priority" and backend.supports_priority:
        prios = [j.priority for j in seen]
        assert prios == sorted(prios)
    if sort == "-failed_at":
        failed_first = [j.state is JobState.FAILED for j in seen]
        assert failed_first == sorted(failed_first, reverse=True)


def test_pages_of_a_post_filtered_selection_are_complete(backend: Backend) -> None:
    # class and args are checked on the decoded payload: pages must still be full and gapless
    now = utcnow()
    wanted = []
    for i in range(30):
        cls = "qadmin.examples.resize_image" if i % 3 == 0 else NOOP
        job = backend.enqueue(NewJob(cls, [i], queue="p"))
        if i % 3 == 0:
            wanted.append(job)
    selection = JobFilter(class_name="qadmin.examples.resize_image")
    seen: list[Job] = []
    cursor = None
    while True:
        page = backend.find(selection, now, limit=3, cursor=cursor)
        seen.extend(page.jobs)
        if page.next_cursor is None:
            break
        assert len(page.jobs) == 3
        cursor = page.next_cursor
    assert sorted(ids_of(seen)) == sorted(ids_of(wanted)) and len(seen) == len(wanted)


def test_iter_ids_yields_every_match_once(backend: Backend) -> None:
    ids = backend.enqueue_many([NewJob(NOOP, [i], queue="it") for i in range(57)])
    got = [str(i) for batch in backend.iter_ids(JobFilter(queues=("it",)), utcnow(), batch=10) for i in batch]
    assert sorted(got) == sorted(str(i) for i in ids) and len(got) == 57


def test_an_unknown_sort_or_a_forged_cursor_is_a_usage_error(backend: Backend) -> None:
    enqueue(backend)
    with pytest.raises(UsageError):
        backend.find(JobFilter(), utcnow(), limit=5, sort="bogus")
    with pytest.raises(QadminError):
        backend.find(JobFilter(), utcnow(), limit=5, cursor="not a cursor {")


# --- admin verbs ------------------------------------------------------------------------------
def test_retry_changes_only_failed_jobs(backend: Backend) -> None:
    made = _mixed(backend)
    now = utcnow()
    target = [made["failed"][0].id, made["failed"][1].id, made["pending"][0].id, made["locked"][0].id]
    changed = backend.retry(target, now)
    assert sorted(str(i) for i in changed) == sorted(str(i) for i in target[:2])
    for job_id in target[:2]:
        got = backend.get(job_id, now)
        assert got.state is JobState.PENDING and got.attempts == 0 and got.failed_at is None
    assert backend.get(made["locked"][0].id, now).state is JobState.LOCKED
    # retrying again changes nothing: they are no longer failed
    assert backend.retry(target[:2], now) == []


def test_delete_honours_the_state_guard(backend: Backend) -> None:
    made = _mixed(backend)
    now = utcnow()
    target = [made["pending"][0].id, made["failed"][0].id, made["scheduled"][0].id]
    removed = backend.delete(target, now, frozenset({JobState.PENDING, JobState.SCHEDULED}))
    assert sorted(str(i) for i in removed) == sorted(str(made[k][0].id) for k in ("pending", "scheduled"))
    assert backend.get(made["failed"][0].id, now).state is JobState.FAILED
    with pytest.raises(JobNotFound):
        backend.get(made["pending"][0].id, now)
    removed = backend.delete([made["failed"][0].id, made["pending"][0].id], now)
    assert [str(i) for i in removed] == [str(made["failed"][0].id)]


def test_unlock_makes_locked_jobs_pending_again(backend: Backend) -> None:
    made = _mixed(backend)
    now = utcnow()
    target = [made["locked"][0].id, made["pending"][1].id]
    assert [str(i) for i in backend.unlock(target, now)] == [str(made["locked"][0].id)]
    got = backend.get(made["locked"][0].id, now)
    assert got.state is JobState.PENDING and got.locked_by is None
    assert backend.claim(["a"], "w-new", now, HOUR, lambda j: j.id == got.id) is not None


def test_stale_locks_of_old_claims_and_dead_owners(backend: Backend) -> None:
    now = utcnow()
    due = now - timedelta(hours=6)
    old, dead, silent, live = (
        backend.enqueue(NewJob(NOOP, [word], queue="s", run_at=due)) for word in ("old", "dead", "silent", "live")
    )
    only = lambda job: lambda j: j.id == job.id  # noqa: E731
    assert backend.claim(["s"], "host:elsewhere pid:77", now - timedelta(hours=5), 4 * HOUR, only(old))
    assert backend.claim(["s"], worker_name(dead_pid()), now, 4 * HOUR, only(dead))
    silent_name = "host:elsewhere pid:78"
    backend.register_worker(
        WorkerInfo(
            name=silent_name,
            host="elsewhere",
            pid=78,
            queues=["s"],
            started_at=now - timedelta(hours=1),
            heartbeat_at=now - timedelta(hours=1),
        )
    )
    assert backend.claim(["s"], silent_name, now, 4 * HOUR, only(silent))
    assert backend.claim(["s"], worker_name(), now, 4 * HOUR, only(live))
    stale = backend.find(JobFilter(stale_only=True, states=frozenset({JobState.LOCKED})), now, limit=10).jobs
    assert sorted(ids_of(stale)) == sorted(str(j.id) for j in (old, dead, silent))
    assert all(j.stale for j in stale)
    assert backend.get(live.id, now).stale is False
    stats = backend.stats(now, 4 * HOUR)
    assert stats.queues["s"]["locked"] == 4 and stats.queues["s"]["stale"] == 3


def test_stats_counts_per_queue_and_state(backend: Backend) -> None:
    _mixed(backend)
    now = utcnow()
    stats = backend.stats(now, HOUR)
    a, b = stats.queues["a"], stats.queues["b"]
    assert (a["pending"], a["scheduled"], a["locked"], a["failed"]) == (4, 4, 2, 0)
    assert (b["pending"], b["scheduled"], b["locked"], b["failed"]) == (5, 0, 0, 5)
    assert stats.totals()["pending"] == 9
    if backend.kind == "redis":
        # a Resque payload says nothing of when it was enqueued (no qadmin field in it): unknown
        assert stats.oldest_pending_at is None or stats.oldest_pending_at <= now
    else:
        assert stats.oldest_pending_at is not None and stats.oldest_pending_at <= now
    names = {q.name: q for q in backend.queues(now)}
    assert names["a"].counts["scheduled"] == 4 and not names["a"].paused
    backend.pause("b", now)
    assert {q.name: q.paused for q in backend.queues(now)}["b"] is True


def test_error_groups_group_failures_by_first_line(backend: Backend) -> None:
    _mixed(backend)
    groups = backend.error_groups(states("failed"), utcnow())
    by_error = {g.error: g for g in groups}
    assert by_error["KeyError: 'x'"].count == 3
    assert by_error["PaymentDeclined: card declined"].count == 2
    assert by_error["PaymentDeclined: card declined"].exception == "PaymentDeclined"
    assert by_error["KeyError: 'x'"].queues == ["b"]
    assert by_error["KeyError: 'x'"].classes == ["qadmin.examples.ChargeCard"]
    assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)


def test_workers_register_beat_and_unregister(backend: Backend) -> None:
    job = enqueue(backend, NOOP, queue="a")
    now = utcnow()
    name = worker_name()
    backend.register_worker(
        WorkerInfo(name=name, host="h", pid=123, queues=["a", "b"], started_at=now, heartbeat_at=now)
    )
    claimed = backend.claim(["a"], name, now, HOUR, ALWAYS)
    assert claimed is not None
    backend.heartbeat(name, now + timedelta(seconds=5), claimed.id, now, 3, 1)
    mine = [w for w in backend.workers(now + timedelta(seconds=6)) if w.name == name]
    assert len(mine) == 1
    w = mine[0]
    assert str(w.current_job) == str(job.id) and w.processed == 3 and w.failed == 1
    assert w.queues == ["a", "b"] and not w.stale
    backend.unregister_worker(name)
    assert [w for w in backend.workers(now) if w.name == name] == []
    # a stopping worker gives back what it still held
    assert backend.get(job.id, now).state is JobState.PENDING


def test_audit_records_are_listed_newest_first_and_by_job(backend: Backend) -> None:
    job = enqueue(backend)
    now = utcnow()
    for verb, ids in (("retry", [job.id]), ("delete", [])):
        backend.record_audit(
            AuditEntry(
                id=None,
                at=now,
                actor="ann",
                face="cli",
                verb=verb,
                selection={"queue": "q"},
                matched=1,
                changed=len(ids),
                skipped=0,
            ),
            ids,
        )
    entries = backend.audit(10)
    assert [e.verb for e in entries] == ["delete", "retry"]
    assert entries[1].actor == "ann" and entries[1].face == "cli" and entries[1].selection == {"queue": "q"}
    assert [e.verb for e in backend.audit(10, job_id=job.id)] == ["retry"]


def test_times_are_utc_aware(backend: Backend) -> None:
    job = enqueue(backend)
    got = backend.get(job.id, utcnow())
    for moment in (got.run_at, got.created_at):
        if moment is not None:
            assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert isinstance(got.run_at, datetime) or got.run_at is None
    assert got.to_dict()["run_at"] is None or got.to_dict()["run_at"].endswith("Z")


# --- one meaning of every state and filter on every backend ------------------------------------
def test_finished_means_completed_successfully(backend: Backend) -> None:
    """A job that failed for good, was retried and failed again is one failed job, never a finished
    one; once retried again and completed, it is one finished job."""
    job = enqueue(backend, NOOP, "twice", queue="f")
    now = utcnow()
    for attempt in range(2):
        claimed = backend.claim(["f"], "w1", now, HOUR, ALWAYS)
        assert claimed is not None and str(claimed.id) == str(job.id)
        backend.fail(claimed, "w1", now, "RuntimeError: again", None)
        if attempt == 0:
            assert [str(i) for i in backend.retry([job.id], now)] == [str(job.id)]
    assert backend.count(states("finished"), now) == 0
    assert backend.find(states("finished"), now, limit=10).jobs == []
    assert backend.count(states("failed"), now) == 1
    totals = backend.stats(now, HOUR).totals()
    assert (totals.get("failed", 0), totals.get("finished", 0)) == (1, 0)
    assert [str(i) for i in backend.retry([job.id], now)] == [str(job.id)]
    claimed = backend.claim(["f"], "w1", now, HOUR, ALWAYS)
    assert claimed is not None
    backend.complete(claimed, "w1", now, 0.1)
    getattr(backend, "flush", lambda: None)()
    assert backend.count(states("failed"), now) == 0
    totals = backend.stats(now, HOUR).totals()
    assert totals.get("failed", 0) == 0
    if backend.records_finished:
        assert backend.count(states("finished"), now) == 1
        assert totals.get("finished", 0) == 1
        assert backend.get(job.id, now).state is JobState.FINISHED


def test_search_matches_class_args_kwargs_payload_and_last_error(backend: Backend) -> None:
    """`search` is one case-insensitive substring test over the class name, the args and kwargs,
    the raw payload and the last error text, on every backend."""
    cls = enqueue(backend, "qadmin.examples.SearchableThing", 1, queue="s")
    arg = enqueue(backend, NOOP, "Needle-In-Args", queue="s")
    kw = backend.enqueue(NewJob(NOOP, [2], {"where": "KwargNeedle"}, queue="s"))
    failing = enqueue(backend, NOOP, 3, queue="s")
    now = utcnow()
    claimed = backend.claim(["s"], "w1", now, HOUR, lambda j: j.id == failing.id)
    assert claimed is not None
    backend.fail(claimed, "w1", now, 'RuntimeError: Disk "Full" on /Var\n  at Line 9', None)
    retrying = enqueue(backend, NOOP, 4, queue="s")
    now = utcnow()  # a SQL job is ready from its run_at, which is after the first `now`
    claimed = backend.claim(["s"], "w1", now, HOUR, lambda j: j.id == retrying.id)
    assert claimed is not None
    backend.fail(claimed, "w1", now, "TimeoutError: Upstream Slow", now + timedelta(hours=1))

    def found(text: str) -> list[str]:
        selection = JobFilter(search=text)
        page = backend.find(selection, now, limit=50)
        assert backend.count(selection, now) == len(page.jobs), text
        return ids_of(page.jobs)

    assert found("searchablething") == [str(cls.id)]
    assert found("NEEDLE-in-args") == [str(arg.id)]
    assert found("kwargneedle") == [str(kw.id)]
    # the error as shown (quotes unescaped), any part of it, the backtrace too
    assert found('runtimeerror: disk "full" on /var') == [str(failing.id)]
    assert found("at line 9") == [str(failing.id)]
    # the last error of a job waiting for its retry
    assert found("upstream slow") == [str(retrying.id)]
    assert found("no such text anywhere") == []


def test_identical_jobs_are_two_jobs_with_two_ids(backend: Backend) -> None:
    """Two stored jobs with the same class, args and queue are two jobs on every verb: two ids,
    each shown on its own, and acting on one leaves the other."""
    a = enqueue(backend, NOOP, "same", queue="d")
    b = enqueue(backend, NOOP, "same", queue="d")
    now = utcnow()
    later = [backend.enqueue(NewJob(NOOP, ["later"], queue="d", run_at=now + timedelta(hours=h))) for h in (1, 2)]
    pending = backend.find(states("pending"), now, limit=10).jobs
    scheduled = backend.find(states("scheduled"), now, limit=10).jobs
    assert len(pending) == 2 and len(set(ids_of(pending))) == 2
    assert len(scheduled) == 2 and len(set(ids_of(scheduled))) == 2
    for job in (*pending, *scheduled):
        got = backend.get(job.id, now)
        assert (str(got.id), got.state, got.run_at) == (str(job.id), job.state, job.run_at)
    # the ids enqueue handed back name stored jobs (on Redis a twin's names the first of them)
    for job in (a, b, *later):
        assert backend.get(job.id, now).args == job.args
    assert backend.count(JobFilter(ids=(pending[0].id,)), now) == 1
    # deleting one leaves its twin, in each place
    assert ids_of_changed(backend.delete([pending[0].id], now)) == [str(pending[0].id)]
    assert ids_of_changed(backend.delete([scheduled[1].id], now)) == [str(scheduled[1].id)]
    left = backend.find(JobFilter(), now, limit=10).jobs
    assert sorted((j.state.value, j.args[0]) for j in left) == [("pending", "same"), ("scheduled", "later")]
    assert [j.run_at for j in left if j.state is JobState.SCHEDULED] == [scheduled[0].run_at]
    # two failed twins: retrying one retries one
    twins = [enqueue(backend, NOOP, "twin", queue="t") for _ in range(2)]
    now = utcnow()
    for _ in twins:
        claimed = backend.claim(["t"], "w1", now, HOUR, ALWAYS)
        assert claimed is not None
        backend.fail(claimed, "w1", now, "RuntimeError: twin", None)
    failed = backend.find(states("failed"), now, limit=10).jobs
    assert len(failed) == 2 and len(set(ids_of(failed))) == 2
    assert len(backend.retry([failed[0].id], now)) == 1
    assert backend.count(states("failed"), now) == 1
    assert backend.count(JobFilter(queues=("t",), states=frozenset({JobState.PENDING})), now) == 1


def ids_of_changed(changed: list) -> list[str]:
    return [str(i) for i in changed]
