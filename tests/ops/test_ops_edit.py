"""`Ops.edit`: one job edited, audited with the old and new values of what changed; a dry run
changes and audits nothing. On SQLite, PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from qadmin.backends import BackendOptions
from qadmin.errors import InvalidTransition, UsageError
from qadmin.job import JobState, iso, utcnow
from qadmin.ops import EditResult, Ops

NOOP = "qadmin.examples.noop"


@pytest.fixture
def ops(any_url: str) -> Iterator[Ops]:
    o = Ops.open(any_url, options=BackendOptions(), face="test", actor="tester")
    o.backend.init()
    yield o
    o.close()


def test_an_edit_is_audited_with_the_old_and_new_values_of_what_changed(ops: Ops) -> None:
    job = ops.enqueue(NOOP, [1], queue="mail")
    result = ops.edit(job.id, args=[2, "x"], queue="mail", kwargs={})
    assert isinstance(result, EditResult) and not result.dry_run
    assert result.before.args == [1] and result.after.args == [2, "x"]
    assert ops.show(result.after.id).args == [2, "x"]
    entry = ops.audit(limit=1)[0]
    assert (entry.verb, entry.actor, entry.face, entry.matched, entry.changed) == ("edit", "tester", "test", 1, 1)
    # only what changed: the queue and kwargs were given as they were
    assert entry.selection["before"] == {"args": [1]} and entry.selection["after"] == {"args": [2, "x"]}
    assert [e.verb for e in ops.audit(job_id=result.after.id)][0] == "edit"
    assert result.to_dict()["before"] == {"args": [1]}


def test_a_run_at_edit_is_audited_as_iso_times(ops: Ops) -> None:
    job = ops.enqueue(NOOP, [1], queue="q")
    later = (utcnow() + timedelta(hours=3)).replace(microsecond=0)
    result = ops.edit(job.id, run_at=later)
    assert result.after.state is JobState.SCHEDULED
    entry = ops.audit(limit=1)[0]
    assert entry.selection["after"]["run_at"] == iso(later)
    assert "run_at" in entry.selection["before"]


def test_a_dry_run_shows_the_change_and_writes_and_audits_nothing(ops: Ops) -> None:
    job = ops.enqueue(NOOP, [1], queue="q")
    audited = len(ops.audit())
    result = ops.edit(job.id, args=[9], queue="other", dry_run=True)
    assert result.dry_run and result.after.args == [9] and result.after.queue == "other"
    assert result.changed_fields == ["args", "queue"]
    stored = ops.show(job.id)
    assert stored.args == [1] and stored.queue == "q"
    assert len(ops.audit()) == audited


def test_a_dry_run_refuses_what_the_edit_would_refuse(ops: Ops) -> None:
    job = ops.enqueue(NOOP, [1], queue="q")
    with pytest.raises(UsageError, match="nothing to edit"):
        ops.edit(job.id)
    with pytest.raises(UsageError, match="queue name"):
        ops.edit(job.id, queue="a\x00b", dry_run=True)
    if not ops.supports_priority:
        with pytest.raises(UsageError, match="no priorities"):
            ops.edit(job.id, priority=3, dry_run=True)
    claimed = ops.backend.claim(["q"], "w1", utcnow(), 3600.0, lambda j: True)
    assert claimed is not None
    with pytest.raises(InvalidTransition, match="only pending, scheduled and failed"):
        ops.edit(job.id, args=[2], dry_run=True)
