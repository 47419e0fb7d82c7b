"""Error groups by fingerprint (issue #17), the backend contract on SQLite, PostgreSQL and Redis:
failures differing only in an id, an e-mail, a UUID or a quoted value are one group with its
exact variants; classes stay apart; first and last seen; a group's jobs selected exactly, and
retried or deleted as a whole through the preview."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from qadmin.backends import Backend
from qadmin.errors import ErrorGroupNotFound
from qadmin.filters import JobFilter
from qadmin.fingerprints import fingerprint
from qadmin.job import Job, JobState, NewJob, utcnow
from qadmin.ops import Ops

HOUR = 3600.0
FAILED = JobFilter(states=frozenset({JobState.FAILED}))


def failed(backend: Backend, error: str, at: datetime, queue: str = "mail", cls: str = "qadmin.examples.noop") -> Job:
    job = backend.enqueue(NewJob(cls, [error], queue=queue, run_at=at - timedelta(hours=1)))
    claimed = backend.claim([queue], "w-fp", at, HOUR, lambda j: j.id == job.id)
    assert claimed is not None
    backend.fail(claimed, "w-fp", at, f"{error}\nTraceback (most recent call last):", None)
    return job


RECIPIENTS = [f"ValueError: invalid recipient 'customer{i}'" for i in range(3)]


def test_failures_differing_only_in_a_value_form_one_group(backend: Backend) -> None:
    now = utcnow().replace(microsecond=0)
    jobs = [failed(backend, e, now - timedelta(minutes=10 - i)) for i, e in enumerate(RECIPIENTS)]
    for error in ("E: mail to ann@example.com bounced", "E: mail to bob@example.org bounced"):
        failed(backend, error, now, queue="other", cls="qadmin.examples.SendEmail")
    failed(backend, "E: no job 123e4567-e89b-12d3-a456-426614174000", now)
    failed(backend, "E: no job 00000000-0000-4000-8000-000000000000", now)
    failed(backend, "KeyError: 'customer0'", now)
    failed(backend, "IndexError: 'customer0'", now)
    groups = backend.error_groups(FAILED, utcnow())
    by_fp = {g.fingerprint: g for g in groups}

    recipient = by_fp[fingerprint(RECIPIENTS[0]).id]
    assert recipient.count == 3 and len(recipient.variants) == 3 and recipient.variants_left_out == 0
    assert sorted(v.error for v in recipient.variants) == RECIPIENTS
    assert {v.count for v in recipient.variants} == {1}
    assert recipient.pattern == "ValueError: invalid recipient '<…>'" and recipient.exception == "ValueError"
    assert recipient.first_failed_at == now - timedelta(minutes=10)
    assert recipient.last_failed_at == now - timedelta(minutes=8)
    assert recipient.error in RECIPIENTS and recipient.queues == ["mail"]
    assert recipient.classes == ["qadmin.examples.noop"]
    assert str(recipient.sample_id) in {str(j.id) for j in jobs}

    mail = by_fp[fingerprint("E: mail to x@y.z bounced").id]
    assert (mail.count, len(mail.variants), mail.queues, mail.classes) == (
        2,
        2,
        ["other"],
        ["qadmin.examples.SendEmail"],
    )
    assert by_fp[fingerprint("E: no job 123e4567-e89b-12d3-a456-426614174000").id].count == 2
    # the same quoted value under another exception class is another group
    assert by_fp[fingerprint("KeyError: 'customer0'").id].count == 1
    assert by_fp[fingerprint("IndexError: 'customer0'").id].count == 1
    assert len(groups) == 5 and [g.count for g in groups] == [3, 2, 2, 1, 1]
    assert groups[0].to_dict()["variants"][0]["count"] == 1


def test_a_group_selects_exactly_its_jobs(backend: Backend) -> None:
    now = utcnow()
    mine = [failed(backend, e, now) for e in RECIPIENTS]
    failed(backend, "KeyError: 'customer0'", now)
    # a pending job that once failed the same way is no member (an error group is failed jobs)
    backend.enqueue(NewJob("qadmin.examples.noop", [1], queue="mail"))
    fp = fingerprint(RECIPIENTS[0]).id
    selection = JobFilter(fingerprint=fp)
    assert backend.count(selection, utcnow()) == 3
    page = backend.find(selection, utcnow(), limit=10)
    assert sorted(str(j.id) for j in page.jobs) == sorted(str(j.id) for j in mine)
    assert all(selection.matches(j) for j in page.jobs)
    assert backend.count(JobFilter(fingerprint=fp, queues=("elsewhere",)), utcnow()) == 0
    assert backend.count(JobFilter(fingerprint=fp, states=frozenset({JobState.PENDING})), utcnow()) == 0
    # the group's own groups: one, with its variants
    (group,) = backend.error_groups(JobFilter(states=FAILED.states, fingerprint=fp), utcnow())
    assert group.fingerprint == fp and group.count == 3


def test_retry_and_delete_of_a_group_act_on_exactly_its_jobs(backend: Backend) -> None:
    now = utcnow()
    mine = [failed(backend, e, now) for e in RECIPIENTS]
    other = failed(backend, "KeyError: 'customer0'", now)
    ops = Ops(backend, actor="alice")
    selection = ops.error_group.selection(fingerprint(RECIPIENTS[1]).id)
    preview = ops.preview("retry", selection)
    assert preview.count == 3 and sorted(map(str, preview.ids)) == sorted(str(j.id) for j in mine)
    result = ops.apply(preview)
    assert sorted(map(str, result.changed_ids)) == sorted(str(j.id) for j in mine)
    assert backend.get(other.id, utcnow()).state is JobState.FAILED
    assert all(backend.get(j.id, utcnow()).state is JobState.PENDING for j in mine)
    assert ops.audit(5)[0].verb == "retry" and ops.audit(5)[0].selection["fingerprint"] == selection.fingerprint

    gone = ops.delete(ops.error_group.selection(fingerprint("KeyError: 'x'").id))
    assert [str(i) for i in gone.changed_ids] == [str(other.id)]
    assert backend.error_groups(FAILED, utcnow()) == []


def test_a_group_found_by_its_id(backend: Backend) -> None:
    for e in RECIPIENTS:
        failed(backend, e, utcnow())
    ops = Ops(backend)
    group = ops.error_group.group(fingerprint(RECIPIENTS[0]).id.upper())
    assert group.count == 3 and len(group.variants) == 3
    with pytest.raises(ErrorGroupNotFound):
        ops.error_group.group("000000000000")


def test_a_group_of_many_distinct_lines_is_still_selected_exactly(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `GROUP_LINES` distinct lines SQL selects by the exception class and checks each row."""
    from qadmin.backends.sql import selection

    monkeypatch.setattr(selection, "GROUP_LINES", 1)
    now = utcnow()
    mine = [failed(backend, e, now) for e in RECIPIENTS]
    failed(backend, "ValueError: something else entirely", now)
    failed(backend, "KeyError: 'customer0'", now)
    fp = fingerprint(RECIPIENTS[0]).id
    assert backend.count(JobFilter(fingerprint=fp), utcnow()) == 3
    found = backend.find(JobFilter(fingerprint=fp), utcnow(), limit=10).jobs
    assert sorted(str(j.id) for j in found) == sorted(str(j.id) for j in mine)
    (group,) = backend.error_groups(JobFilter(states=FAILED.states, fingerprint=fp), utcnow())
    assert group.count == 3 and len(group.variants) == 3
