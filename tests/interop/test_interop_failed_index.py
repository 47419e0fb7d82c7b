"""qadmin's index of `failed` (`redis/failed_index.py`) against Resque's own failure calls, made by
Ruby through redis-namespace as Resque makes them (tests/interop/resque_failure_app.rb): failures
saved, requeued in place, removed by resque-web, the list cleared. After each, counts, first pages
and a queue's ids read through the index equal what a full read of the list gives."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.ops import Ops
from tests.backends.conftest import r, redis_backend  # noqa: F401 - fixtures
from tests.backends.test_redis_failed_index import check, failed_counts

APP = Path(__file__).with_name("resque_failure_app.rb")

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("ruby") is None, reason="needs Ruby"),
]


def resque(url: str, *args: object) -> None:
    try:
        subprocess.run(["ruby", str(APP), url, *map(str, args)], check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        if b"cannot load such file" in exc.stderr:
            pytest.skip(f"Ruby's redis gems are not installed: {exc.stderr.decode()[:200]}")
        raise


def test_the_index_follows_resques_own_failure_calls(redis_backend, r, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    resque(redis_url, "save", "q", 40)
    resque(redis_url, "save", "r", 25)
    check(redis_backend)
    assert failed_counts(redis_backend) == {"q": 40, "r": 25}
    resque(redis_url, "save", "q", 5)  # appended behind qadmin's back: read from the tail only
    check(redis_backend)
    resque(redis_url, "requeue", 3)  # in place: same length, same last entry
    check(redis_backend)
    assert failed_counts(redis_backend) == {"q": 44, "r": 25}
    resque(redis_url, "remove", 50)  # resque-web's Remove
    resque(redis_url, "remove", 0)
    check(redis_backend)
    assert failed_counts(redis_backend) == {"q": 43, "r": 24}
    # qadmin retries a queue while Ruby keeps failing into the list
    assert Ops(redis_backend).retry(JobFilter(states=frozenset({JobState.FAILED}), queues=("r",))).changed == 24
    resque(redis_url, "save", "r", 3)
    check(redis_backend)
    assert failed_counts(redis_backend) == {"q": 43, "r": 3}
    resque(redis_url, "clear")
    check(redis_backend)
    assert failed_counts(redis_backend) == {}
    resque(redis_url, "save", "r", 2)
    check(redis_backend)
