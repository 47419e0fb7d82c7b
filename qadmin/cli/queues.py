"""What is there and who works on it: `stats`, `queues`, `workers`, `audit`, and
`pause`/`resume` of a queue."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from qadmin.cli.context import QadminCommand, current_ops
from qadmin.cli.output import STATE_STYLE, ago, make_console, print_json, short
from qadmin.cli.params import complete_queues, json_option, positive
from qadmin.text import visible


@click.command(cls=QadminCommand)
@json_option
def stats(as_json: bool) -> None:
    """Jobs per queue and state, totals, oldest pending job, workers."""
    st = current_ops().stats()
    now = datetime.now(UTC)
    if as_json:
        print_json(
            {
                "queues": st.queues,
                "totals": st.totals(),
                "processed": st.processed,
                "failed": st.failed,
                "oldest_pending_at": st.oldest_pending_at.isoformat() if st.oldest_pending_at else None,
                "paused": st.paused,
                "workers": st.workers,
                "rescued": st.rescued,
                "throughput": [{"minute": m.isoformat(), "processed": p, "failed": f} for m, p, f in st.throughput],
                **({"unreadable": st.unreadable} if st.unreadable else {}),
            }
        )
        return
    from rich.table import Table

    console = make_console()
    columns: tuple[str, ...] = ("pending", "scheduled", "locked", "stale", "failed", "finished")
    if st.totals().get("waiting"):  # a column of its own only where jobs wait for a service
        columns = (*columns, "waiting")
    table = Table(header_style="bold", title="jobs by queue and state")
    table.add_column("QUEUE")
    for c in columns:
        table.add_column(c.upper(), justify="right", style=STATE_STYLE[c])
    for name, counts in st.queues.items():
        label = short(name, 200) if name else "(none)"
        if name in st.paused:
            label += " [yellow](paused)[/]"
        table.add_row(label, *[str(counts.get(c, 0)) for c in columns])
    totals = st.totals()
    table.add_section()
    table.add_row("[bold]total[/]", *[f"[bold]{totals.get(c, 0)}[/]" for c in columns])
    console.print(table)
    # Resque payloads carry no enqueue time: pending jobs whose age is unknown are not "none pending"
    oldest = (
        ago(st.oldest_pending_at, now)
        if st.oldest_pending_at
        else "unknown"
        if st.totals().get("pending")
        else "none pending"
    )
    console.print(
        f"processed {st.processed}  failed {st.failed}  rescued {st.rescued}  workers {st.workers}  "
        f"oldest pending {oldest}"
    )
    for why in st.unreadable.values():
        console.print(f"[red]unreadable:[/] {short(why, 300)}")


@click.command(cls=QadminCommand)
@json_option
def queues(as_json: bool) -> None:
    """Queues with their counts and pause state."""
    infos = current_ops().queues()
    if as_json:
        print_json([q.to_dict() for q in infos])
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for c in ("QUEUE", "PENDING", "SCHEDULED", "LOCKED", "FAILED", "PAUSED"):
        table.add_column(c)
    for q in infos:
        table.add_row(
            short(q.name, 200) if q.name else "(none)",
            str(q.counts.get("pending", 0)),
            str(q.counts.get("scheduled", 0)),
            str(q.counts.get("locked", 0)),
            str(q.counts.get("failed", 0)),
            "[yellow]paused[/]" if q.paused else "",
        )
        if q.unreadable:
            table.add_row("", f"[red]unreadable:[/] {short(q.unreadable, 300)}")
    make_console().print(table)


@click.command(cls=QadminCommand)
@json_option
def workers(as_json: bool) -> None:
    """Live workers (and lock holders of other systems), with their current job."""
    infos = current_ops().workers()
    if as_json:
        print_json([w.to_dict() for w in infos])
        return
    console = make_console()
    if not infos:
        console.print("No workers.")
        return
    from rich.table import Table

    now = datetime.now(UTC)
    table = Table(header_style="bold")
    for c in ("WORKER", "QUEUES", "JOB", "SINCE", "HEARTBEAT", "PROCESSED", "FAILED", ""):
        table.add_column(c)
    for w in infos:
        table.add_row(
            short(w.name, 200),
            short(",".join(w.queues), 200),
            short(str(w.current_job or ""), 200),
            ago(w.job_started_at, now),
            ago(w.heartbeat_at, now),
            str(w.processed),
            str(w.failed),
            "[bold magenta]stale[/]" if w.stale else "[green]alive[/]",
        )
    console.print(table)


@click.command(cls=QadminCommand)
@click.option("--limit", "-n", type=int, default=50, callback=positive)
@click.option("--job", "job_id", help="Only entries that touched this job.")
@json_option
def audit(limit: int, job_id: str | None, as_json: bool) -> None:
    """Who did what, when, from which face."""
    ops = current_ops()
    entries = ops.redaction.audit(ops.audit(limit=limit, job_id=job_id))
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    console = make_console()
    if not entries:
        console.print("No audit entries.")
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for c in ("WHEN", "WHO", "FACE", "VERB", "FILTER", "MATCHED", "CHANGED", "SKIPPED"):
        table.add_column(c)
    for e in entries:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            short(e.actor, 60),
            short(e.face, 20),
            short(e.verb, 20),
            short(" ".join(f"{k}={v}" for k, v in e.selection.items()), 40),
            str(e.matched),
            str(e.changed),
            str(e.skipped),
        )
    console.print(table)


@click.command(cls=QadminCommand)
@click.argument("queue", shell_complete=complete_queues)
def pause(queue: str) -> None:
    """Pause a queue: qadmin workers skip it until it is resumed."""
    changed = current_ops().pause(queue)
    click.echo(f"paused {visible(queue)}" if changed else f"{visible(queue)} was already paused")


@click.command(cls=QadminCommand)
@click.argument("queue", shell_complete=complete_queues)
def resume(queue: str) -> None:
    """Resume a paused queue."""
    changed = current_ops().resume(queue)
    click.echo(f"resumed {visible(queue)}" if changed else f"{visible(queue)} was not paused")
