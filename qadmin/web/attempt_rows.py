"""A job's attempts as the job page's table shows them: a colour per outcome, a readable duration."""

from __future__ import annotations

from typing import Any

from qadmin.model import FROM_COLUMNS, Attempt, Outcome
from qadmin.text import runtime_text

#: the chip (colour) of each outcome: green done, amber tried again, red failed, grey stopped by
#: an operator, magenta taken back from a dead worker, blue running or waiting
OUTCOME_CHIPS = {
    Outcome.COMPLETED: "finished",
    Outcome.RETRIED: "locked",
    Outcome.FAILED: "failed",
    Outcome.TIMED_OUT: "failed",
    Outcome.CANCELLED: "cancelled",
    Outcome.RESCUED: "stale",
    Outcome.WAITING: "pending",
    Outcome.RUNNING: "scheduled",
}


def attempt_rows(attempts: list[Attempt]) -> list[dict[str, Any]]:
    """Newest first, as a page reads a history."""
    return [
        {
            "attempt": a,
            "chip": OUTCOME_CHIPS.get(a.outcome, "failed"),
            "duration": runtime_text(a.runtime),
            "from_columns": a.source == FROM_COLUMNS,
        }
        for a in reversed(attempts)
    ]
