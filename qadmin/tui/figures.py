"""How the history and metrics pages write their numbers: runtimes, rates, counts, spans, trends.

A failure rate's change is in percentage points, not percent of
a percent, so that "+12.0pt" reads the same whatever the rate was before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qadmin.insight import HOUR
from qadmin.text import runtime_text
from qadmin.tui.text import duration

#: a change in runs (this window / the one before) marked as a rise, or a fall
RUNS_RISE, RUNS_FALL = 1.5, 1 / 1.5


def runtime(seconds: float | None) -> str:
    """A runtime or a wait as every face writes one (`runtime_text`); `—` when none was recorded."""
    return runtime_text(seconds) or "—"


def count(n: float) -> str:
    """A count with thousands separators (a column's sum is whole; a mean is not shown here)."""
    return f"{round(n):,}"


def rate(fraction: float) -> str:
    """A failure rate as a percentage: `0%`, `0.4%`, `12.5%`, `100%`."""
    if fraction <= 0:
        return "0%"
    if fraction >= 1:
        return "100%"
    return f"{fraction * 100:.1f}%"


def span(buckets: int, resolution: str) -> str:
    """How long `buckets` minutes or hours are: `15m`, `2h`, `1d`."""
    length = timedelta(hours=buckets) if resolution == HOUR else timedelta(minutes=buckets)
    return duration(length.total_seconds())


def rate_change(points: float | None) -> str:
    """A failure rate's change against the window before, in percentage points."""
    if points is None:
        return ""
    shown = f"{abs(points) * 100:.1f}"
    sign = "±" if shown == "0.0" else "+" if points > 0 else "−"
    return f"{sign}{shown}pt"


def runs_change(ratio: float | None) -> str:
    """Runs of this window against the one before: `×2.1`; `new` when that one had none."""
    if ratio is None:
        return "new"
    return f"×{ratio:.2f}" if ratio < 10 else f"×{ratio:.0f}"


def moment(when: datetime, resolution: str) -> str:
    """A bucket's start, UTC: its minute within the day, or its day and hour."""
    when = when.astimezone(UTC)
    return when.strftime("%m-%d %H:00Z" if resolution == HOUR else "%m-%d %H:%MZ")
