"""`Ops.attempts`: a job's runs through the operations layer, by an id as a face types it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qadmin.errors import JobNotFound, UsageError
from qadmin.job import NewJob, utcnow
from qadmin.model import Outcome
from qadmin.ops import Ops


def test_ops_attempts_reads_a_jobs_runs_by_its_id_as_text(any_url: str) -> None:
    ops = Ops.open(any_url, face="test")
    try:
        ops.backend.init()
        now = utcnow()
        job = ops.backend.enqueue(NewJob("qadmin.examples.noop", ["ops"], queue="o", run_at=now - timedelta(seconds=1)))
        session = ops.backend.session("host:ops pid:1")
        (held,) = session.claim(["o"], now, 3600.0, lambda j: True)
        session.fail(held, now, "KeyError: 'x'\n", None, 0.5)
        session.close()
        (attempt,) = ops.attempts(f" {job.id} ")
        assert (attempt.number, attempt.outcome, attempt.worker) == (1, Outcome.FAILED, "host:ops pid:1")
        with pytest.raises((JobNotFound, UsageError)):
            ops.attempts("987654" if ops.backend.kind != "redis" else "q:0123456789abcdef")
    finally:
        ops.close()
