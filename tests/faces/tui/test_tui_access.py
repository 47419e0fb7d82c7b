"""The console runs as the local account that reaches the backend (qadmin.access): its actions are
audited under that operating-system account, as `qadmin tui` opens its backend."""

from __future__ import annotations

import getpass
from typing import Any

import pytest

from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.ops import open_ops
from qadmin.settings import Settings
from qadmin.tui.app import QadminApp
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import confirm, open_job

FAILED = frozenset({JobState.FAILED})


@pytest.mark.parametrize("console", ["sqlite"], indirect=True)
def test_a_console_action_is_audited_under_the_os_account(console: Console) -> None:
    ops = console.ops()
    job = ops.list_jobs(JobFilter(states=FAILED), limit=1).jobs[0]
    # as qadmin.tui.app.run opens it: no actor given
    app = QadminApp(open_ops(Settings(url=console.url), face="tui", clock=console.clock), backend_name="demo")
    app.animation_level = "none"

    async def scenario(pilot: Any) -> None:
        detail = await open_job(pilot, job.id)
        await pilot.press("r")
        await confirm(pilot, "y")
        await wait_for(pilot, lambda: detail.job is not None and detail.job.state is JobState.PENDING, "the retry")

    drive(app, scenario)
    entry = ops.audit(job_id=job.id)[0]
    assert (entry.verb, entry.face, entry.actor) == ("retry", "tui", getpass.getuser())
