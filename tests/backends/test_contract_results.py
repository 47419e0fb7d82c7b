"""A finished job's return value, on every backend: kept with its finished record when it is JSON
and small enough, noted when it is not (the job succeeds all the same), nothing for None; written
by `complete` and by `complete_and_claim` alike, and read back by `get`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from qadmin import registry
from qadmin.backends import Backend
from qadmin.filters import JobFilter
from qadmin.job import RESULT_LIMIT, JobState, NewJob, read_result, result_text, utcnow
from qadmin.worker import Worker, WorkerOptions

RETURNS = "tests.results.returns"
SETS = "tests.results.sets"
HUGE = "tests.results.huge"


def returns(value: object) -> object:
    return value


def sets() -> object:
    return {1, 2}


def huge() -> object:
    return "x" * (RESULT_LIMIT + 1)


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    for name, fn in ((RETURNS, returns), (SETS, sets), (HUGE, huge)):
        registry.register(name, fn)
    yield
    for name in (RETURNS, SETS, HUGE):
        registry._registry.pop(name, None)


def finished(backend: Backend) -> dict[object, object]:
    """Each finished job's args → what `get` says it returned."""
    now = utcnow()
    page = backend.find(JobFilter(states=frozenset({JobState.FINISHED})), now, limit=100)
    out: dict[object, object] = {}
    for listed in page.jobs:
        job = backend.get(listed.id, now)
        key = json.dumps(job.args) if job.args else job.class_name
        out[key] = job.kept_result
    return out


@pytest.mark.parametrize(
    ("prefetch", "fork"), [(1, False), (3, False), (1, True)], ids=["complete", "complete_and_claim", "fork"]
)
def test_return_values_are_kept_with_the_finished_record(backend: Backend, prefetch: int, fork: bool) -> None:
    backend.enqueue_many(
        [
            NewJob(RETURNS, [{"sent": 3, "to": ["ann"]}], queue="r"),
            NewJob(RETURNS, [None], queue="r"),
            NewJob(RETURNS, ["é ok"], queue="r"),
            NewJob(SETS, queue="r"),
            NewJob(HUGE, queue="r"),
        ]
    )
    options = WorkerOptions(queues=["r"], burst=True, sleep=0, prefetch=prefetch, heartbeat_interval=3600, fork=fork)
    w = Worker(backend, WorkerOptions(**{**options.__dict__, "rescue_interval": 0}))
    assert w.work() == 0
    assert w.failed == 0  # a value that cannot be kept never fails its job
    kept = finished(backend)
    assert kept[json.dumps([{"sent": 3, "to": ["ann"]}])] == {"result": {"sent": 3, "to": ["ann"]}}
    assert kept[json.dumps([None])] == {}
    assert kept[json.dumps(["é ok"])] == {"result": "é ok"}
    assert "not JSON" in str(kept[SETS]["result_note"])  # type: ignore[index]
    assert f"over {RESULT_LIMIT}" in str(kept[HUGE]["result_note"])  # type: ignore[index]
    done = JobFilter(states=frozenset({JobState.FINISHED}), class_name=SETS)
    shown = backend.get(backend.find(done, utcnow(), limit=1).jobs[0].id, utcnow()).to_dict()
    assert "result_note" in shown and "result" not in shown


def test_result_text_is_json_capped_and_never_raises() -> None:
    assert result_text(None) is None
    assert read_result(result_text([1, "a"]) or "") == {"result": [1, "a"]}
    assert "result_note" in read_result(result_text(float("nan")) or "")
    assert "result_note" in read_result(result_text("\ud800") or "")
    assert "result_note" in read_result(result_text(object()) or "")
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert "result_note" in read_result(result_text(deep) or "")
    assert read_result("not json") == {"result_note": "unreadable result record"}


def test_results_go_with_their_finished_records_when_pruned(backend: Backend) -> None:
    backend.enqueue(NewJob(RETURNS, [7], queue="p"))
    Worker(backend, WorkerOptions(queues=["p"], burst=True, sleep=0, heartbeat_interval=3600)).work()
    assert finished(backend) == {json.dumps([7]): {"result": 7}}
    later = utcnow() + timedelta(seconds=5)
    report = backend.prune(later, failed_before=None, finished_before=later, workers_before=None)
    assert report.finished == 1
    assert finished(backend) == {}
    if backend.records_finished and hasattr(backend, "store"):  # SQL: no result row left behind
        results = backend.store.aux["results"]
        with backend.store.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(results)).scalar_one() == 0
