"""`qadmin alerts`: the `[alerts.NAME]` rules of qadmin.toml evaluated now, with their open
incidents; `qadmin alerts check` opens and resolves incidents and sends their messages, as the
scheduler and the web process do (`ops.alerts`)."""

from __future__ import annotations

from datetime import datetime

import click

from qadmin.alert_rules import FIRING, Incident, RuleState
from qadmin.cli.context import current_ops, current_settings
from qadmin.cli.output import ago, make_console, markup, print_json
from qadmin.cli.params import dry_run_option, json_option
from qadmin.cli.recurring import RecurringGroup
from qadmin.errors import UsageError


class AlertsGroup(RecurringGroup):
    """`qadmin alerts`: shows the rules alone, checks them with `check`; backend options after
    its name as every command takes them."""


@click.group(cls=AlertsGroup, invoke_without_command=True)
@json_option
@click.pass_context
def alerts(ctx: click.Context, as_json: bool) -> None:
    """Show the alert rules of qadmin.toml ([alerts.NAME]) evaluated now, and the open incidents
    (since when, and why). `qadmin alerts check` opens, resolves and sends."""
    if ctx.invoked_subcommand is not None:
        if as_json:
            raise UsageError("--json goes after the subcommand: qadmin alerts check --json")
        return
    ops = current_ops()
    states = ops.alerts.evaluate(current_settings().config.alerts)
    incidents = ops.alerts.open_incidents()
    if as_json:
        print_json({"rules": [s.to_dict() for s in states], "incidents": [i.to_dict() for i in incidents]})
        return
    _show(states, incidents, ops.clock())


@alerts.command("check")
@dry_run_option
@json_option
def check(dry_run: bool, as_json: bool) -> None:
    """Evaluate every rule now: open an incident for each that fires, resolve those that stopped,
    send the messages not yet delivered. --dry-run shows what would open or resolve and sends nothing."""
    ops = current_ops()
    report = ops.alerts.check(current_settings().config.alerts, dry_run=dry_run)
    if as_json:
        print_json(report.to_dict())
        return
    console = make_console()
    _show(report.states, [s.incident for s in report.states if s.incident and s.incident.open], ops.clock())
    would = "would " if dry_run else ""
    for name in report.opened:
        console.print(markup(f"{would}open an incident: {name}"))
    for name in report.resolved:
        console.print(markup(f"{would}resolve the incident: {name}"))
    for name, kind in report.sent:
        console.print(markup(f"sent the {kind} message of {name}"))
    for name, kind, error in report.failed:
        console.print(markup(f"the {kind} message of {name} was not delivered (retried at the next check): {error}"))
    if dry_run:
        console.print("dry run: nothing changed, nothing sent")


def _show(states: list[RuleState], incidents: list[Incident], now: datetime) -> None:
    from rich.table import Table

    console = make_console()
    if not states:
        console.print(markup("no alert rules (add [alerts.NAME] tables to qadmin.toml: README, Alerts)"))
    else:
        table = Table(header_style="bold")
        for column in ("RULE", "STATE", "NOW", "RULE SAYS", "INCIDENT SINCE"):
            table.add_column(column)
        for state in states:
            label = state.label
            shown = f"[bold red]{label}[/bold red]" if label == FIRING else label
            since = ago(state.incident.opened_at, now) if state.incident and state.incident.open else "-"
            table.add_row(markup(state.rule.name), shown, markup(state.details), markup(state.rule.describe()), since)
        console.print(table)
    configured = {s.rule.name for s in states}
    for incident in incidents:
        if incident.rule not in configured:
            console.print(markup(f"open incident of a rule not in qadmin.toml: {incident.rule} ({incident.details})"))
