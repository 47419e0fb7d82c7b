"""Redis job ids `QUEUE:TOKEN[@WHERE][.N]` of queues with odd names: control characters (which
JSON writes escaped, and the faces show as `\\x1b`), blanks where `str.strip` would take them,
and names that look like the colon, `@WHERE` or `.N` of an id. Every state, and every verb taking
an id, finds the job the listing showed, and never a job of another queue with the same payload."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.ops import Ops
from qadmin.text import visible

pytestmark = pytest.mark.redis

NAMES = [
    "q\x1b",
    "q\x07",
    "q\x00",
    "q\n",
    " q",
    "\x1fq",
    'q"\\',
    "é/q",
    "q:abcdef",
    "q:f8dfa9d2b8c1",
    "q@1",
    "q@1796650347",
    "q.2",
    "q:f8dfa9d2b8c1.2",
    "ab:cdef12@f0123abcd",
]
#: the verb each state is acted on with
VERBS = {"pending": "delete", "scheduled": "delete", "locked": "unlock", "failed": "retry"}


def stored(b: RedisBackend, queue: str, state: str) -> None:
    """A job in `state` on `queue`, and the same job pending on queue "q" (what a misread id finds)."""
    now = utcnow()
    b.enqueue(NewJob("qadmin.examples.noop", [1], queue="q"))
    run_at = now + timedelta(hours=1) if state == "scheduled" else None
    b.enqueue(NewJob("qadmin.examples.noop", [1], queue=queue, run_at=run_at))
    if state in ("locked", "failed"):
        job = b.claim([queue], "w1", now, 3600.0, lambda j: True)
        assert job is not None and job.queue == queue
        if state == "failed":
            b.fail(job, "w1", now, "RuntimeError: boom", None)


@pytest.mark.parametrize("state", list(VERBS))
@pytest.mark.parametrize("queue", NAMES)
def test_every_verb_finds_the_job_of_an_odd_queue_name(
    redis_backend: RedisBackend, redis_url: str, queue: str, state: str
) -> None:
    stored(redis_backend, queue, state)
    now = utcnow()
    listed = redis_backend.find(JobFilter(queues=(queue,), states=frozenset({JobState(state)})), now, limit=10).jobs
    assert [j.queue for j in listed] == [queue]
    job_id = listed[0].id
    fresh = RedisBackend(redis_url, BackendOptions())  # nothing remembered from the listing
    try:
        ops = Ops(fresh, clock=lambda: now)
        shown = ops.show(job_id)
        assert (str(shown.id), shown.queue, shown.state.value) == (str(job_id), queue, state)
        # typed back as the faces show it (`\x1b` for ESC), and pasted with blanks around it
        # (blanks before a name that begins with one are part of it)
        assert fresh.parse_id(visible(job_id)) == str(job_id)
        assert str(ops.show(visible(job_id)).id) == str(job_id)
        assert fresh.parse_id(f"{job_id}\n") == str(job_id)
        if not queue[0].isspace():
            assert fresh.parse_id(f"  {job_id} ") == str(job_id)
            assert str(ops.show(f"  {job_id} ").id) == str(job_id)
        result = ops.apply(ops.preview(VERBS[state], JobFilter(ids=(job_id,))))
        assert (result.matched, result.changed) == (1, 1), result.skipped
        left = fresh.find(JobFilter(queues=(queue,), states=frozenset(JobState)), utcnow(), limit=10).jobs
        assert state not in {j.state.value for j in left}
        # the same job on queue "q" is as it was
        decoy = fresh.find(JobFilter(queues=("q",)), utcnow(), limit=10).jobs
        assert [(j.queue, j.state) for j in decoy] == [("q", JobState.PENDING)]
    finally:
        fresh.close()


def test_a_failure_entry_written_by_php_with_an_escaped_queue_name_is_found_by_its_id(
    redis_backend: RedisBackend, r
) -> None:  # type: ignore[no-untyped-def]
    """php-resque writes `/` as `\\/` and `é` as `\\u00e9`: the entry is still of queue "é/q"."""
    r.rpush(
        "resque:failed",
        b'{"failed_at":"Sun Nov 22 08:41:11 UTC 2026","payload":{"class":"Mailer","args":[]},'
        b'"exception":"Exception","error":"x","backtrace":[],"worker":"h:1:x",'
        b'"queue":"\\u00e9\\/q"}',
    )
    now = utcnow()
    listed = redis_backend.find(JobFilter(queues=("é/q",)), now, limit=10).jobs
    assert [j.queue for j in listed] == ["é/q"]
    assert redis_backend.get(listed[0].id, now).queue == "é/q"
