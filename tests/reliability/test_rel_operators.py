"""Operators acting while four workers run: bulk retry, delete and dequeue, through `qadmin.ops.Ops`
and the CLI at once. No job runs twice or disappears, and the counts every verb reports add up
against what the backend holds at the end.

Bookkeeping: each `sleep_then_record` job either ran (its token is in the file, once) or was removed by a
delete or dequeue that reported it as changed; never both, never neither. The failing jobs are
retried again and again and fail again; at the end there are exactly as many of them as were made.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.chaos import WorkerPool, child_env, qadmin_cmd
from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.ops import BulkResult, Ops

pytestmark = pytest.mark.slow

RECORD = "qadmin.examples.sleep_then_record"
#: seconds each job takes: the workers are busy for a few seconds, while the operators act
JOB_SECONDS = 0.04
CHARGE = "qadmin.examples.ChargeCard"
JOBS = 400
FAILING = 40
QUEUES = ("q0", "q1", "q2", "q3")


def cli_json(url: str, *args: str) -> dict[str, Any]:
    res = subprocess.run(
        qadmin_cmd(url, *args, "--json"),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=child_env(),
    )
    assert res.returncode == 0, (args, res.stderr)
    return json.loads(res.stdout)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def adds_up(result: dict[str, Any] | BulkResult, named: int | None = None) -> dict[str, Any]:
    """Every matched job was either changed or skipped with a reason; with jobs named by id, every
    one named was (those not in a state the verb acts on are skipped too)."""
    out = result.to_dict() if isinstance(result, BulkResult) else result
    assert (named if named is not None else out["matched"]) == out["changed"] + out["skipped"], out
    return out


def test_bulk_verbs_while_workers_run_lose_and_duplicate_nothing(any_url: str, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    backend = open_backend(any_url)
    backend.init()
    ids = backend.enqueue_many(
        [NewJob(RECORD, [str(tokens), f"j{i}", JOB_SECONDS], queue=QUEUES[i % 4]) for i in range(JOBS)]
    )
    token_of = {str(job_id): f"j{i}" for i, job_id in enumerate(ids)}
    backend.enqueue_many([NewJob(CHARGE, [i, 100], queue="billing", max_attempts=1) for i in range(FAILING)])
    backend.close()

    pool = WorkerPool(lambda _slot: qadmin_cmd(any_url, "worker", "--sleep", "0.05"), 4, tmp_path / "logs")
    removed: list[str] = []  # ids a delete or dequeue reported as changed
    deleted: set[str] = set()  # of those, the ones a delete removed
    removed_by_cli = 0
    deleted_by_cli = 0
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def operator(name: str, steps: Any) -> None:
        ops = Ops.open(any_url, face="api", actor=name)
        try:
            for step in steps:
                result, named = step(ops)
                with lock:
                    results.append(adds_up(result, named))
                    if result.verb in ("delete", "dequeue"):
                        removed.extend(str(i) for i in result.changed_ids)
                    if result.verb == "delete":
                        deleted.update(str(i) for i in result.changed_ids)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            ops.close()

    pending = frozenset({JobState.PENDING})
    rng = random.Random(5)
    chunks = [ids[k : k + 8] for k in range(0, JOBS, 8)]
    rng.shuffle(chunks)
    # small deletes by id race the workers for the same jobs: some are claimed between preview and apply
    deleter: list[Any] = [
        (lambda c: lambda ops: (ops.delete(JobFilter(states=pending, ids=tuple(c))), len(c)))(c) for c in chunks[:25]
    ]
    deleter.insert(12, lambda ops: (ops.delete(JobFilter(states=pending, queues=("q3",))), None))
    dequeuer = [
        (lambda k: lambda ops: (ops.dequeue("q2", RECORD, [str(tokens), f"j{k}", JOB_SECONDS]), None))(k)
        for k in range(JOBS - 2, 0, -24)
    ]
    retrier = [lambda ops: (ops.retry(JobFilter(states=frozenset({JobState.FAILED}))), None)] * 6
    pool.start_all()
    try:
        deadline = time.monotonic() + 60
        while len(lines(tokens)) < 40 and time.monotonic() < deadline:  # the workers are at work
            time.sleep(0.05)
        threads = [
            threading.Thread(target=operator, args=(name, steps))
            for name, steps in (("deleter", deleter), ("dequeuer", dequeuer), ("retrier", retrier))
        ]
        for t in threads:
            t.start()
        # meanwhile, an operator at a shell
        out = adds_up(cli_json(any_url, "dequeue", "--queue", "q1", "--class", RECORD))
        results.append(out)
        removed_by_cli += out["changed"]
        for _ in range(2):
            results.append(adds_up(cli_json(any_url, "retry", "--failed", "--queue", "billing")))
        out = adds_up(cli_json(any_url, "delete", "--state", "pending", "--queue", "q0", "--search", "j1", "--yes"))
        results.append(out)
        removed_by_cli += out["changed"]
        deleted_by_cli += out["changed"]
        for t in threads:
            t.join(120)
        assert not errors, errors
    finally:
        pool.stop_all()
    assert pool.unexpected == [], pool.logs()
    # what the workers left is run to the end: the failing jobs fail again, for good
    final = subprocess.run(
        qadmin_cmd(any_url, "worker", "--burst", "--sleep", "0.05"),
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(),
    )
    assert final.returncode == 0, final.stderr[-2000:]

    ran = Counter(lines(tokens))
    assert [t for t, n in ran.items() if n > 1] == [], "a job ran twice"
    removed_tokens = [token_of[i] for i in removed]
    assert len(removed_tokens) == len(set(removed_tokens)), "one job reported removed twice"
    both = set(removed_tokens) & set(ran)
    # a dequeue never removes a job that runs, nor does a delete of pending jobs (the test below
    # pins that a job claimed between the preview and the delete is skipped)
    assert both <= {token_of[i] for i in deleted}, f"dequeued jobs that also ran: {sorted(both)[:10]}"
    total_removed = len(removed) + removed_by_cli
    # every job ran or was removed (fewer: a job was lost); more only by such deletes
    overlap = len(ran) + total_removed - JOBS
    assert 0 <= overlap <= len(both) + deleted_by_cli, (len(ran), total_removed, sorted(both))
    assert sum(r["changed"] for r in results if r["verb"] in ("delete", "dequeue")) == total_removed

    backend = open_backend(any_url)
    try:
        now = utcnow()
        for state in (JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED):
            assert backend.count(JobFilter(states=frozenset({state})), now) == 0, state
        failed = backend.find(JobFilter(states=frozenset({JobState.FAILED})), now, limit=1000).jobs
        assert sorted(j.args[0] for j in failed) == list(range(FAILING)), "a failing job was lost or doubled"
        assert all(j.class_name == CHARGE for j in failed)
        # every verb that changed something left an audit entry with the counts it reported
        audited = [(a.verb, a.matched, a.changed) for a in backend.audit(1000) if a.verb != "pause"]
        reported = [(r["verb"], r["matched"], r["changed"]) for r in results]
        assert Counter(audited) == Counter(reported)
    finally:
        backend.close()
    print(
        f"\noperators on {backend.kind}: ran {len(ran)}, removed {total_removed} "
        f"({len(removed)} through Ops, {removed_by_cli} through the CLI), "
        f"retried {sum(r['changed'] for r in results if r['verb'] == 'retry')} times, {len(results)} verbs, "
        f"{sum(r['skipped'] for r in results)} skipped, {overlap} deleted while running"
    )


def test_deleting_pending_jobs_skips_one_a_worker_claimed_after_the_preview(any_url: str) -> None:
    backend = open_backend(any_url)
    backend.init()
    backend.enqueue(NewJob("qadmin.examples.noop", [1], queue="q"))
    ops = Ops(backend, face="test")
    try:
        preview = ops.preview("delete", JobFilter(states=frozenset({JobState.PENDING})))
        assert preview.count == 1
        claimed = backend.claim(["q"], "host:elsewhere pid:1", utcnow(), 3600, lambda job: True)
        assert claimed is not None
        result = ops.apply(preview)
        assert (result.changed, len(result.skipped)) == (0, 1), result.to_dict()
        assert backend.count(JobFilter(states=frozenset({JobState.LOCKED})), utcnow()) == 1
    finally:
        ops.close()
