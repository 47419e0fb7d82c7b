"""`qadmin metrics` (each job class over a window: runs, failures, p50/p95/p99, trend) and
`qadmin history` (throughput, runtimes and queue latency per minute or hour of a range), read
from what the workers record (`ops.insight`)."""

from __future__ import annotations

import click

from qadmin.cli.context import QadminCommand, current_ops
from qadmin.cli.output import make_console, print_json, short
from qadmin.cli.params import complete_classes, complete_queues, json_option
from qadmin.insight import METRIC_SORTS, RANGES, ClassMetrics, HistoryPoint, failure_level, percentile
from qadmin.text import visible

#: the colour of a failure rate's level (`insight.failure_level`)
RATE_STYLES = {"high": "red", "notable": "yellow", "low": "green"}
#: the sparkline's steps, lowest first
SPARKS = "▁▂▃▄▅▆▇█"
#: at most this many rows in `qadmin history`'s table: longer ranges are grouped
HISTORY_ROWS = 24


def seconds_text(value: float | None) -> str:
    """A runtime or a wait, as short as it reads: 4ms, 1.25s, 3m10s, 2h05m."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.2f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def rate_text(rate: float) -> str:
    style = RATE_STYLES[failure_level(rate)]
    return f"[{style}]{rate * 100:.1f}%[/]"


def trend_text(m: ClassMetrics) -> str:
    """Runs against the window before (×), and the failure rate's change in points: red when
    failures rise, green when they fall."""
    if m.runs_change is None or m.failure_rate_change is None:
        return "[dim]new[/]"
    change = m.failure_rate_change * 100
    style = "red" if change > 0.5 else "green" if change < -0.5 else "dim"
    return f"runs ×{m.runs_change:.2f}  [{style}]fail {change:+.1f}pt[/]"


def sparkline(values: list[int], width: int = 60) -> str:
    """One character per point, or per group of points summed, at most `width` characters."""
    size = max(1, -(-len(values) // width))
    values = [sum(values[i : i + size]) for i in range(0, len(values), size)]
    top = max(values, default=0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, (v * (len(SPARKS) - 1) + top - 1) // top)] for v in values)


@click.command(cls=QadminCommand)
@click.option("--window", default="24h", show_default=True, help="1h, 24h, 7d, 30d, or a duration (90m, 3d).")
@click.option(
    "--sort",
    default="-runs",
    show_default=True,
    help=f"One of {', '.join(METRIC_SORTS)}; a leading - sorts descending.",
)
@click.option("--queue", default=None, shell_complete=complete_queues, help="Only runs of this queue.")
@json_option
def metrics(window: str, sort: str, queue: str | None, as_json: bool) -> None:
    """Each job class over a window: runs, failures, failure rate, p50/p95/p99 runtime and the
    trend against the window before (from the history the workers record)."""
    rows = current_ops().insight.class_metrics(window, sort=sort, queue=queue)
    if as_json:
        print_json({"window": window, "sort": sort, "queue": queue, "classes": [m.to_dict() for m in rows]})
        return
    from rich.table import Table

    console = make_console()
    if not rows:
        console.print(f"no runs recorded in the last {window}" + (f" on queue {visible(queue)}" if queue else ""))
        return
    table = Table(header_style="bold", title=f"job classes, last {window}, by {sort}")
    for name, justify in (
        ("CLASS", "left"),
        ("RUNS", "right"),
        ("FAILED", "right"),
        ("RETRIED", "right"),
        ("FAIL %", "right"),
        ("P50", "right"),
        ("P95", "right"),
        ("P99", "right"),
        ("MEAN", "right"),
        ("TREND", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]  # rich types justify as a Literal
    for m in rows:
        table.add_row(
            short(m.job_class, 60),
            str(m.runs),
            f"[red]{m.failed}[/]" if m.failed else "0",
            f"[yellow]{m.retried}[/]" if m.retried else "0",
            rate_text(m.failure_rate),
            seconds_text(m.p50),
            seconds_text(m.p95),
            seconds_text(m.p99),
            seconds_text(m.mean),
            trend_text(m),
        )
    console.print(table)


def _grouped(points: list[HistoryPoint], rows: int) -> list[tuple[HistoryPoint, list[HistoryPoint]]]:
    """The points in at most `rows` consecutive groups (each named by its first point)."""
    size = max(1, -(-len(points) // rows))
    return [(points[i], points[i : i + size]) for i in range(0, len(points), size)]


@click.command(cls=QadminCommand)
@click.option(
    "--range", "range_", default="24h", show_default=True, type=click.Choice(list(RANGES)), help="How far back."
)
@click.option("--queue", default=None, shell_complete=complete_queues, help="Only this queue.")
@click.option("--class", "job_class", default=None, shell_complete=complete_classes, help="Only this job class.")
@json_option
def history(range_: str, queue: str | None, job_class: str | None, as_json: bool) -> None:
    """Processed, failed and retried runs per minute (1h, 24h) or hour (7d, 30d), their p50/p95
    runtime and the queue latency (the longest wait for a worker), from what workers record."""
    series = current_ops().insight.history(range_, queue=queue, job_class=job_class)
    if as_json:
        print_json(series.to_dict())
        return
    from rich.table import Table

    console = make_console()
    points = series.points
    runs = [p.runs for p in points]
    failures = [p.failed + p.retried for p in points]
    narrowed = " ".join(f"{k} {visible(v)}" for k, v in (("queue", queue), ("class", job_class)) if v)
    console.print(f"[bold]last {range_}[/] per {series.resolution}{'  ' + narrowed if narrowed else ''}")
    console.print(f"runs     {sparkline(runs)}  {sum(runs)}")
    console.print(f"[red]failures[/] {sparkline(failures)}  {sum(failures)}")
    table = Table(header_style="bold")
    for name in ("FROM", "PROCESSED", "FAILED", "RETRIED", "P50", "P95", "LATENCY"):
        table.add_column(name, justify="left" if name == "FROM" else "right")
    for first, group in _grouped(points, HISTORY_ROWS):
        merged: dict[int, int] = {}
        for p in group:
            for index, n in p.runtimes.items():
                merged[index] = merged.get(index, 0) + n
        latencies = [p.latency for p in group if p.latency is not None]
        failed = sum(p.failed for p in group)
        table.add_row(
            first.at.strftime("%m-%d %H:%M"),
            str(sum(p.processed for p in group)),
            f"[red]{failed}[/]" if failed else "0",
            str(sum(p.retried for p in group)),
            seconds_text(percentile(merged, 0.5)),
            seconds_text(percentile(merged, 0.95)),
            seconds_text(max(latencies) if latencies else None),
        )
    console.print(table)
