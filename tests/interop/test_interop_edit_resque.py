"""A Resque job's arguments edited by qadmin are the bytes Ruby's json gem (Resque's encoder)
writes for the new arguments, in a queue and in resque-scheduler's delayed structures, so
`Resque.dequeue` and `remove_delayed` find the edited job (docs/compatibility.md §1.1, §8.11)."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from qadmin.job import NewJob, utcnow
from qadmin.model import JobEdit
from tests.backends.conftest import r, redis_backend  # noqa: F401 - fixtures
from tests.interop.test_interop_resque import JOBS, ruby_encode

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("ruby") is None, reason="needs Ruby (its json gem is Resque's encoder)"),
]


def test_edited_args_are_the_bytes_resque_encodes_in_a_queue_and_a_delayed_list(redis_backend, r) -> None:  # type: ignore[no-untyped-def]
    at = utcnow() + timedelta(hours=1)
    ts = int(at.timestamp())
    for cls, _args, queue in JOBS:
        pending = redis_backend.enqueue(NewJob(cls, ["old", "pending"], queue=queue))
        later = redis_backend.enqueue(NewJob(cls, ["old", "later"], queue=queue, run_at=at))
        new_args = next(a for c, a, q in JOBS if c == cls)
        redis_backend.edit(pending.id, JobEdit(args=new_args), utcnow())
        redis_backend.edit(later.id, JobEdit(args=new_args), utcnow())
    for (cls, args, queue), (encoded, item) in zip(JOBS, ruby_encode(JOBS)):
        assert r.lrange(f"resque:queue:{queue}", 0, -1) == [encoded]
        assert r.lrem(f"resque:queue:{queue}", 0, encoded) == 1  # Resque.dequeue(Klass, *args)
        assert r.smembers(b"resque:timestamps:" + item) == {f"delayed:{ts}".encode()}
        assert r.lrem(f"resque:delayed:{ts}", 0, item) == 1  # remove_delayed(Klass, *args)
