"""An operator's keystrokes against a real backend: look, filter, open, act, and cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from textual.widgets import DataTable, Input

from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob
from qadmin.tui.messages import PreviewReady
from qadmin.tui.screens.confirm import ConfirmScreen
from qadmin.tui.screens.dequeue import DequeueScreen
from qadmin.tui.screens.errors import ErrorsScreen
from qadmin.tui.screens.job_detail import JobDetailScreen
from qadmin.tui.screens.jobs import JobsScreen
from qadmin.tui.screens.overview import STATE_COLUMNS
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import (
    confirm,
    jobs_page,
    loaded,
    move_to_queue,
    open_job,
    open_jobs,
    overview,
    rows,
    text_of,
)

#: the verbs' own behaviour is the ops tests' subject; here one backend shows the keys reach them
SQLITE_ONLY = pytest.mark.parametrize("console", ["sqlite"], indirect=True)
FAILED = frozenset({JobState.FAILED})
PENDING = frozenset({JobState.PENDING})


def test_overview_shows_every_queue_with_its_counts_and_totals(console: Console) -> None:
    expected = console.ops().stats()
    app = console.app()

    async def scenario(pilot: Any) -> None:
        screen = await overview(pilot)
        table = screen.query_one("#queues", DataTable)
        shown = {row[0]: row for row in rows(table)}
        assert set(shown) == set(expected.queues)
        for queue, counts in expected.queues.items():
            assert shown[queue][1:7] == [str(counts[state]) for state in STATE_COLUMNS]
            assert (shown[queue][7] == "paused") == (queue in expected.paused)
        totals = text_of(screen.query_one("#totals"))
        assert f"{expected.processed} processed" in totals and f"{expected.failed} failed" in totals
        assert "oldest pending" in totals and "live worker" in totals
        assert screen.query_one("#spark").data and sum(screen.query_one("#spark").data) > 0

    drive(app, scenario)


def test_a_queue_opens_its_jobs_and_the_filters_narrow_them(console: Console) -> None:
    ops = console.ops()
    app = console.app()

    async def scenario(pilot: Any) -> None:
        screen = await overview(pilot)
        await move_to_queue(pilot, screen, "billing")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs page")
        jobs: JobsScreen = app.screen  # type: ignore[assignment]
        await loaded(pilot, jobs)
        assert jobs.count == ops.count(JobFilter(queues=("billing",)))
        assert {j.queue for j in jobs.table.jobs.values()} == {"billing"}

        # class box: f focuses the queue picker, tab moves on to the class box, which completes
        # the class names it has seen (right arrow accepts)
        await pilot.press("f", "tab", *"qadmin.examples.ch", "right", "enter")
        await loaded(pilot, jobs)
        assert jobs.selection.class_name == "qadmin.examples.ChargeCard"
        assert {j.class_name for j in jobs.table.jobs.values()} == {"qadmin.examples.ChargeCard"}

        # the search box looks into the arguments
        await pilot.press("slash", *"1003", "enter")
        await loaded(pilot, jobs)
        want = ops.list_jobs(JobFilter(queues=("billing",), class_name="qadmin.examples.ChargeCard", search="1003"))
        assert [j.id for j in jobs.table.jobs.values()] == [j.id for j in want.jobs] and len(want.jobs) == 1

        # c clears every filter but the state tab
        await pilot.press("c")
        await loaded(pilot, jobs)
        assert jobs.count == ops.count(JobFilter())

    drive(app, scenario)


def test_a_job_opens_with_its_payload_error_timestamps_and_history(console: Console) -> None:
    first_failed = console.ops().list_jobs(JobFilter(states=FAILED), limit=1).jobs[0]
    app = console.app()

    async def scenario(pilot: Any) -> None:
        await jobs_page(pilot, "failed")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.job is not None, "the job detail"
        )
        detail: JobDetailScreen = app.screen  # type: ignore[assignment]
        assert detail.job.id == first_failed.id
        fields = text_of(detail.query_one("#job-fields"))
        for label in ("state", "attempts", "created_at", "run_at", "failed_at", "locked_by"):
            assert label in fields
        assert str(first_failed.args[0]) in text_of(detail.query_one("#job-payload"))
        error = text_of(detail.query_one("#job-error"))
        assert "Traceback (most recent call last)" in error and first_failed.error_message in error
        assert not detail.query_one("#job-raw").display
        await pilot.press("v")
        assert detail.query_one("#job-raw").display
        # the raw text wraps at spaces, which the wrap consumes: compare without white space
        assert "".join(first_failed.raw.split()) in "".join(text_of(detail.query_one("#job-raw")).split())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs page again")

    drive(app, scenario)


def test_retrying_a_failed_job_makes_it_pending_in_the_backend(console: Console) -> None:
    ops = console.ops()
    job = ops.list_jobs(JobFilter(states=FAILED), limit=1).jobs[0]
    app = console.app()

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, job.id)
        await pilot.press("r")
        dialog = await confirm(pilot, "y")
        assert dialog.title_text == "Retry 1 job?"
        await wait_for(
            pilot,
            lambda: detail.job is not None and detail.job.state is JobState.PENDING,
            "the detail to show the job pending",
        )
        assert "retry" in text_of(detail.query_one("#job-history"))

    drive(app, scenario)
    assert ops.show(job.id).state is JobState.PENDING
    assert ops.audit(job_id=job.id)[0].verb == "retry"


def test_a_cancelled_confirmation_changes_nothing(console: Console) -> None:
    ops = console.ops()
    before = {state: ops.count(JobFilter(states=frozenset({state}))) for state in JobState}
    audit_before = len(ops.audit())
    app = console.app()

    async def scenario(pilot: Any) -> None:
        await open_jobs(pilot, JobFilter(states=FAILED))
        await pilot.press("R")  # retry everything the filter matches...
        dialog = await confirm(pilot, "escape")  # ...and think better of it
        assert dialog.title_text.startswith("Retry ")
        await pilot.press("d")
        await confirm(pilot, "n")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)

    drive(app, scenario)
    assert {state: ops.count(JobFilter(states=frozenset({state}))) for state in JobState} == before
    assert len(ops.audit()) == audit_before


def test_a_bulk_retry_by_filter_changes_exactly_the_previewed_jobs(console: Console) -> None:
    ops = console.ops()
    previews: list[Any] = []
    app = console.app()

    def hook(message: Any) -> None:
        if isinstance(message, PreviewReady):
            previews.append(message.preview)

    async def scenario(pilot: Any) -> None:
        jobs = await open_jobs(pilot, JobFilter(states=FAILED, queues=("billing",)))
        assert jobs.count == 6
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        # another job fails in the same queue while the operator reads the confirmation
        late_id = fail_one_more(console, "billing")
        previews.append(late_id)
        await confirm(pilot, "y")

    drive(app, scenario, message_hook=hook)
    preview, late_id = previews
    expected = ops.list_jobs(JobFilter(states=FAILED, queues=("billing",)), limit=100).jobs  # only the late one
    assert [j.id for j in expected] == [late_id]
    assert preview.count == 6
    for job_id in preview.ids:
        assert ops.show(job_id).state is JobState.PENDING
    assert ops.audit(limit=1)[0].changed == 6


def fail_one_more(console: Console, queue: str) -> Any:
    backend = open_backend(console.url)
    now = console.clock()
    job = backend.enqueue(
        NewJob(
            "qadmin.examples.ChargeCard", [9999, 100], queue=queue, max_attempts=1, run_at=now - timedelta(minutes=1)
        )
    )
    claimed = backend.claim([queue], "host:late pid:1", now, 3600.0, lambda j: j.id == job.id)
    assert claimed is not None and claimed.id == job.id
    backend.fail(claimed, "host:late pid:1", now, "PaymentDeclined: card declined: late", None)
    backend.close()
    return job.id


@SQLITE_ONLY
def test_marked_jobs_are_deleted_together_and_only_they(console: Console) -> None:
    ops = console.ops()
    pending_before = ops.count(JobFilter(states=PENDING))
    app = console.app()
    marked: list[Any] = []

    async def scenario(pilot: Any) -> None:
        jobs = await open_jobs(pilot, JobFilter(states=PENDING))
        await pilot.press("space", "space")  # marks a row and moves down: two rows marked
        marked.extend(jobs.table.selected.values())
        assert len(marked) == 2
        await pilot.press("d")
        dialog = await confirm(pilot, "y")
        assert dialog.title_text == "Delete 2 jobs?"
        await loaded(pilot, jobs)
        assert not jobs.table.selected

    drive(app, scenario)
    assert ops.count(JobFilter(states=PENDING)) == pending_before - 2
    assert ops.count(JobFilter(ids=tuple(marked))) == 0


@SQLITE_ONLY
def test_an_error_group_opens_its_jobs_and_retries_as_a_whole(console: Console) -> None:
    ops = console.ops()
    group = ops.error_groups()[0]
    app = console.app()

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorsScreen) and app.screen.groups, "the error groups")
        errors: ErrorsScreen = app.screen  # type: ignore[assignment]
        assert errors.current_group.fingerprint == group.fingerprint
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the group's jobs")
        jobs: JobsScreen = app.screen  # type: ignore[assignment]
        await loaded(pilot, jobs)
        assert jobs.selection.fingerprint == group.fingerprint and jobs.count == group.count
        await pilot.press("3")
        await wait_for(pilot, lambda: app.screen is errors, "the errors page again")
        await pilot.press("r")
        await confirm(pilot, "y")

    drive(app, scenario)
    assert ops.count(JobFilter(states=FAILED, error=group.error)) == 0
    assert ops.audit(limit=1)[0].changed == group.count


@SQLITE_ONLY
def test_dequeue_removes_waiting_jobs_by_class_and_args(console: Console) -> None:
    ops = console.ops()
    target = ops.list_jobs(JobFilter(states=PENDING, search="user3@example.com")).jobs
    assert len(target) == 1
    app = console.app()

    async def scenario(pilot: Any) -> None:
        jobs = await open_jobs(pilot, JobFilter(states=PENDING))
        await pilot.press("slash", *"user3@", "enter")
        await loaded(pilot, jobs)
        assert jobs.count == 1
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, DequeueScreen), "the dequeue form")
        form: DequeueScreen = app.screen  # type: ignore[assignment]
        assert form.initial[:2] == ("email", "qadmin.examples.SendEmail")
        await pilot.press("enter")  # the form is filled from the job: queue, class and exact args
        dialog = await confirm(pilot, "y")
        assert dialog.title_text == "Dequeue 1 job?"

    drive(app, scenario)
    assert ops.count(JobFilter(search="user3@example.com")) == 0
    assert ops.audit(limit=1)[0].verb == "dequeue"


@SQLITE_ONLY
def test_pause_and_resume_a_queue_from_the_overview(console: Console) -> None:
    ops = console.ops()
    app = console.app()

    async def scenario(pilot: Any) -> None:
        screen = await overview(pilot)
        await move_to_queue(pilot, screen, "email")
        await pilot.press("p")
        dialog = await confirm(pilot, "y", report=False)
        assert dialog.title_text == "Pause queue email?"
        await wait_for(pilot, lambda: "email" in screen.stats.paused, "the overview to show email paused")
        await pilot.press("p")
        dialog = await confirm(pilot, "y", report=False)
        assert dialog.title_text == "Resume queue email?"
        await wait_for(pilot, lambda: "email" not in screen.stats.paused, "the overview to show email resumed")

    drive(app, scenario)
    assert "email" not in ops.paused()
    assert [e.verb for e in ops.audit(limit=2)] == ["resume", "pause"]


@SQLITE_ONLY
def test_unlock_stale_frees_only_the_stale_lock(console: Console) -> None:
    ops = console.ops()
    stale = ops.list_jobs(JobFilter(stale_only=True)).jobs
    assert len(stale) == 1
    app = console.app()

    async def scenario(pilot: Any) -> None:
        screen = await overview(pilot)
        await move_to_queue(pilot, screen, "reports")
        await pilot.press("U")
        dialog = await confirm(pilot, "y")
        assert dialog.title_text == "Unlock 1 job?"

    drive(app, scenario)
    assert ops.show(stale[0].id).state is JobState.PENDING
    assert ops.count(JobFilter(states=frozenset({JobState.LOCKED}))) == 1  # the live worker keeps its job


def test_the_class_and_queue_boxes_complete_the_names_the_backend_knows(console: Console) -> None:
    app = console.app()

    async def complete(pilot: Any, box: Input, typed: str, completed: str) -> None:
        box.value = ""
        box.focus()
        await pilot.press(*typed)
        await wait_for(pilot, lambda: bool(box._suggestion), f"a completion of {typed!r}")
        await pilot.press("right")
        assert box.value == completed

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        app.show_jobs(JobFilter(queues=("billing",)))  # the first page lists one class only
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs page")
        jobs: JobsScreen = app.screen  # type: ignore[assignment]
        await loaded(pilot, jobs)
        assert {j.class_name for j in jobs.table.jobs.values()} == {"qadmin.examples.ChargeCard"}
        box = jobs.query_one("#class", Input)
        known = lambda: getattr(box.suggester, "_suggestions", ())  # noqa: E731
        await wait_for(pilot, lambda: "qadmin.examples.SendEmail" in known(), "the names the backend knows")
        for typed, completed in (("qadmin.examples.se", "qadmin.examples.SendEmail"), ("sende", "SendEmail")):
            await complete(pilot, box, typed, completed)
        box.value = ""
        await loaded(pilot, jobs)
        jobs.table.focus()
        await pilot.press("x")  # the dequeue dialog completes both names too
        await wait_for(pilot, lambda: isinstance(app.screen, DequeueScreen), "the dequeue dialog")
        for field, typed, completed in (("#queue", "ema", "email"), ("#class", "sync", "sync_inventory")):
            await complete(pilot, app.screen.query_one(field, Input), typed, completed)
        await pilot.press("escape")

    drive(app, scenario)


@SQLITE_ONLY
def test_unlocking_a_job_whose_worker_looks_alive_warns_that_it_may_run_twice(console: Console) -> None:
    ops = console.ops()
    locked = JobFilter(states=frozenset({JobState.LOCKED}), queues=("reports",))
    held = [j for j in ops.list_jobs(locked).jobs if not j.stale]
    assert len(held) == 1
    app = console.app()

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        app.start_bulk("unlock", JobFilter(ids=(held[0].id,)))
        dialog = await confirm(pilot, "n")
        body = dialog.body.plain
        assert "held by a worker that looks alive" in body and "may then run twice" in body
        assert dialog.yes_label == "Unlock 1 job anyway" and dialog.destructive

    drive(app, scenario)
    assert ops.show(held[0].id).state is JobState.LOCKED  # cancelled: still held
