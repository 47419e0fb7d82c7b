"""The TUI's error groups by fingerprint (issue #17), on SQLite and Redis: failures differing only
in an id are one row with its pattern; the highlighted group's exact variants show under the
table; `r` retries exactly the group's jobs after the confirmation (counted first)."""

from __future__ import annotations

from typing import Any

from qadmin.filters import JobFilter
from qadmin.fingerprints import fingerprint
from qadmin.job import JobState, NewJob, utcnow
from qadmin.tui.screens.errors import ErrorsScreen
from tests.faces.tui.harness import Console, drive, wait_for
from tests.faces.tui.helpers import confirm, overview

ORDERS = [f"OrderMissing: no order {n} for customer {n * 7}" for n in (101, 202, 303, 404, 505, 606)]
GROUP = fingerprint(ORDERS[0]).id
FAILED = frozenset({JobState.FAILED})


def plant(console: Console) -> list[str]:
    ops = console.ops()
    ids = []
    for n, error in enumerate(ORDERS):
        job = ops.backend.enqueue(NewJob("qadmin.examples.ChargeCard", [n], queue="fp-orders"))
        claimed = ops.backend.claim(["fp-orders"], "w", utcnow(), 3600, lambda j, job=job: j.id == job.id)
        assert claimed is not None
        ops.backend.fail(claimed, "w", utcnow(), error + "\nTraceback", None)
        ids.append(str(job.id))
    ops.backend.close()
    return ids


def test_a_group_shows_its_variants_and_retries_as_a_whole(console: Console) -> None:
    ids = plant(console)
    ops = console.ops()
    failed_before = ops.count(JobFilter(states=FAILED))
    app = console.app()
    seen: dict[str, Any] = {}

    async def scenario(pilot: Any) -> None:
        await overview(pilot)
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorsScreen) and app.screen.groups, "the error groups")
        errors: ErrorsScreen = app.screen  # type: ignore[assignment]
        group = errors.groups[GROUP]
        assert group.count == 6 and group.pattern == "OrderMissing: no order <n> for customer <n>"
        table = errors.query_one("#errors")
        while errors.current_group is None or errors.current_group.fingerprint != GROUP:
            before = table.cursor_row
            await pilot.press("down")
            assert table.cursor_row != before, "the group is not in the table"
        detail = str(errors.query_one("#errors-detail").render())
        seen["detail"] = detail
        await pilot.press("r")
        dialog = await confirm(pilot, "y")
        seen["dialog"] = f"{dialog.title_text} {dialog.body}"

    drive(app, scenario)
    assert GROUP in seen["detail"] and "6 exact messages" in seen["detail"]
    assert ORDERS[0] in seen["detail"] or any(o in seen["detail"] for o in ORDERS)
    assert "6" in seen["dialog"] and GROUP in seen["dialog"]
    assert {ops.show(i).state for i in ids} == {JobState.PENDING}
    assert ops.count(JobFilter(states=FAILED)) == failed_before - 6
    entry = ops.audit(limit=1)[0]
    assert entry.verb == "retry" and entry.selection.get("fingerprint") == GROUP and entry.changed == 6
