"""Waiting and cancelled jobs on the command line (issue #16), on every backend: `qadmin jobs`
lists waiting jobs under `--state waiting`, with other states, and with no state; `qadmin count`
and `qadmin stats` agree; `qadmin cancel` and `qadmin delete` take waiting jobs (dry run first),
and a cancelled job's late `qadmin complete` exits 2 saying why."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.job import NewJob, utcnow
from tests.faces.cli.test_cli import Cli, one_error_line


@pytest.fixture
def every(any_url: str, tmp_path: Path) -> Cli:
    c = Cli(any_url, tmp_path)
    assert c("init").exit_code == 0
    return c


def plant(url: str) -> tuple[list[str], str]:
    """Two jobs waiting for their service and a pending one, on queue `ext`."""
    b = open_backend(url)
    try:
        waiting = [b.enqueue(NewJob("qadmin.examples.noop", [i], queue="ext")) for i in (1, 2)]
        session = b.session("w1")
        now = utcnow()
        for job in session.claim(["ext"], now, 3600.0, lambda j: True, limit=2):
            assert session.wait(job, now, now + timedelta(hours=1))
        session.close()
        pending = b.enqueue(NewJob("qadmin.examples.noop", [3], queue="ext"))
        return [str(j.id) for j in waiting], str(pending.id)
    finally:
        b.close()


def ids(listed: list[dict]) -> list[str]:
    return sorted(str(j["id"]) for j in listed)


def test_jobs_lists_and_counts_waiting_jobs_in_any_states(every: Cli) -> None:
    waiting, pending = plant(every.url)
    assert ids(every.json("jobs", "--state", "waiting")) == sorted(waiting)
    assert ids(every.json("jobs", "--state", "waiting", "--state", "pending")) == sorted([*waiting, pending])
    assert ids(every.json("jobs")) == sorted([*waiting, pending])
    assert ids(every.json("jobs", "--queue", "ext")) == sorted([*waiting, pending])
    assert ids(every.json("jobs", "--state", "pending")) == [pending]
    stats = every.json("stats")
    assert stats["queues"]["ext"]["waiting"] == 2 and stats["queues"]["ext"]["pending"] == 1
    listed = every("jobs", "--state", "cancelled")  # none yet: an empty answer, not an error
    assert listed.exit_code == 0, listed.output


def test_cancel_and_delete_take_waiting_jobs(every: Cli) -> None:
    (a, b), pending = plant(every.url)
    before = every.snapshot()
    dry = every.json("delete", "--state", "waiting", "--dry-run")
    assert (dry["matched"], dry["changed"]) == (2, 0) and every.snapshot() == before
    done = every.json("cancel", a)
    assert (done["matched"], done["changed"]) == (1, 1)
    cancelled = every.json("jobs", "--state", "cancelled")
    assert [j["state"] for j in cancelled] == ["cancelled"] and cancelled[0]["args"] == [1]
    one_error_line(every("complete", a), 2, "cancelled", "too late")
    gone = every.json("delete", b, "--yes")
    assert gone["changed"] == 1
    assert ids(every.json("jobs")) == [pending]
    assert [e["verb"] for e in every.json("audit")][:2] == ["delete", "cancel"]
