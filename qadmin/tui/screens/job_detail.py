"""One job: decoded payload, attempts, every timestamp, lock owner, last error, raw payload, history."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from qadmin.errors import JobNotFound, UsageError
from qadmin.filters import JobFilter
from qadmin.job import AuditEntry, Job, JobId, JobState
from qadmin.model import Attempt
from qadmin.ops import BulkResult, EditResult, Ops
from qadmin.text import visible
from qadmin.tui.messages import JobGone, JobLoaded
from qadmin.tui.screens.base import QadminScreen
from qadmin.tui.screens.edit import EditScreen
from qadmin.tui.text import (
    DETAIL_ITEMS,
    DETAIL_STRING,
    ago,
    bounded,
    clip,
    json_text,
    state_text,
    theme_style,
    ts,
)
from qadmin.tui.widgets.attempts import attempts_view

#: audit entries shown in a job's history
HISTORY = 20
#: characters of a one-line field (queue, class, lock owner) shown before a truncation marker
FIELD = 200


def one_line(text: str) -> Text:
    return clip(text, FIELD, lines=False)


class JobDetailScreen(QadminScreen):
    WHAT = "job"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="job.back"),
        Binding("r", "retry", "Retry", id="job.retry"),
        Binding("d", "delete", "Delete", id="job.delete"),
        Binding("u", "unlock", "Unlock", id="job.unlock"),
        Binding("x", "dequeue", "Dequeue", id="job.dequeue"),
        Binding("g", "run_now", "Run now", id="job.run_now"),
        Binding("K", "kill", "Kill", id="job.kill"),
        Binding("E", "edit", "Edit", show=False, id="job.edit"),
        Binding("C", "cancel_job", "Cancel job", id="job.cancel"),
        Binding("v", "raw", "Raw payload", id="job.raw"),
        # kept out of the full footer: the banner offers it when something is redacted
        Binding("V", "reveal", "Reveal redacted values", show=False, id="job.reveal"),
        Binding("e", "export", "Export to file", id="job.export"),
        Binding("p", "pause", "Pause/resume queue", show=False, id="job.pause"),
    ]

    def __init__(self, job_id: JobId, page: str = "jobs") -> None:
        super().__init__()
        self.job_id = job_id
        self.PAGE = page  # the nav bar keeps showing the page the job was opened from
        self.job: Job | None = None
        self.history: list[AuditEntry] = []
        self.attempts: list[Attempt] = []
        self.show_raw = False
        self.gone = False
        #: sensitive values ([redact]): "hidden" (redacted), "revealing" (V pressed: the audit entry
        #: being written), "shown" (in full until the page closes, audited once)
        self.reveal = "hidden"
        #: whether the job as last read has redacted values, and its real values (dequeue, edit)
        self.has_hidden = False
        self.real: Job | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(Text(f"job {visible(str(self.job_id))}: loading…"), id="job-title", classes="section-title")
            yield Static("", id="job-banner")
            yield Static("", id="job-fields")
            yield Static("payload", classes="section-title")
            yield Static("", id="job-payload")
            yield Static("attempts", classes="section-title")
            yield Static("", id="job-attempts")
            yield Static("last error", classes="section-title", id="job-error-title")
            yield Static("", id="job-error")
            yield Static("raw payload", classes="section-title", id="job-raw-title")
            yield Static("", id="job-raw")
            yield Static("history", classes="section-title")
            yield Static("", id="job-history")

    def on_mount(self) -> None:
        self.query_one("#detail").focus()
        super().on_mount()

    def request(self) -> JobId:
        return self.job_id

    def fetch(self, ops: Ops, token: int, request: JobId) -> Iterable[Message]:
        try:
            job = ops.show(request)
        except JobNotFound:
            yield JobGone(request)
            return
        except UsageError as exc:
            yield JobGone(request, str(exc))
            return
        history = ops.audit(limit=HISTORY, job_id=job.id)
        # a cancel that did not stop it ("… — it finished first") shows in its meta
        job = ops.noted(job, history)
        self.real, self.has_hidden = job, ops.redaction.hides(job)
        attempts = ops.attempts(job.id)
        if self.reveal != "shown":
            job, history, attempts = ops.redaction.view(job, history, attempts)
        yield JobLoaded(job, history, attempts)

    def on_job_gone(self, message: JobGone) -> None:
        message.stop()
        self.gone = True
        job_id = visible(str(message.job_id))
        if message.reason:
            text = f"No job can have the id {job_id}: {visible(message.reason)}"
        elif self.job is None:
            text = f"There is no job {job_id}: it finished, or was deleted or dequeued."
        else:
            text = (
                f"Job {job_id} no longer exists: it finished, or was deleted or dequeued. "
                "What you see is how it was last read."
            )
        warning = theme_style(self.app, "text-warning", bold=True)
        self.query_one("#job-banner", Static).update(Text(text, style=warning))
        if self.job is None:
            self.query_one("#job-title", Static).update(Text(f"job {job_id}"))
        self.refresh_bindings()

    def on_job_loaded(self, message: JobLoaded) -> None:
        message.stop()
        self.job, self.history, self.gone = message.job, message.audit, False
        self.attempts = message.attempts
        self.refresh_bindings()
        self.render_job()

    def redraw(self) -> None:
        self.render_job()

    def render_job(self) -> None:
        job, app = self.job, self.app
        if job is None:
            return
        now = app.ops.clock()
        title = Text(f"job {visible(str(job.id))}  ", style="bold")
        title.append_text(state_text(app, job))
        title.append("  ")
        muted = theme_style(app, "text-muted")
        title.append_text(clip(job.queue or "(no queue)", FIELD, lines=False, style=muted))
        title.append("  ")
        title.append_text(clip(job.class_name, FIELD, lines=False, style="bold"))
        self.query_one("#job-title", Static).update(title)
        banner = Text()
        if job.undecodable:
            warning = theme_style(app, "text-warning", bold=True)
            banner.append(f"Undecodable payload ({visible(str(job.format))}): ", style=warning)
            banner.append_text(clip(job.undecodable, FIELD, style=warning))
            banner.append("\nNo qadmin worker runs it; it can still be retried, deleted or dequeued.")
        if self.has_hidden and self.reveal != "shown":
            banner.append(("\n" if banner else "") + "Some values are redacted: V reveals them (audited).", style="dim")
        elif self.reveal == "shown":
            banner.append(("\n" if banner else "") + "Shown in full: the reveal is in the audit log.", style="dim")
        note = job.meta.get("cancel_note")  # a cancel that did not stop it (`ops.noted`)
        if note:
            banner.append(("\n" if banner else "") + visible(str(note)), style=theme_style(app, "text-warning"))
        self.query_one("#job-banner", Static).update(banner)
        self.query_one("#job-fields", Static).update(self._fields(job, now))
        self.query_one("#job-payload", Static).update(self._payload(job))
        self.query_one("#job-attempts", Static).update(attempts_view(app, job, self.attempts, now))
        self._show_error(job)
        raw_visible = self.show_raw or bool(job.undecodable)
        self.query_one("#job-raw-title").display = raw_visible
        raw = self.query_one("#job-raw", Static)
        raw.display = raw_visible
        raw.update(clip(job.raw) if raw_visible else Text())
        self.query_one("#job-history", Static).update(self._history())

    def _show_error(self, job: Job) -> None:
        """A failed job's error is why it failed; an error on a job in any other state is what its
        last attempt raised before it was retried: history, muted, and said to be."""
        title = self.query_one("#job-error-title", Static)
        error = self.query_one("#job-error", Static)
        if not job.last_error:
            title.update("last error")
            error.update(Text("none", style="dim"))
        elif job.state is JobState.FAILED:
            title.update("last error")
            error.update(clip(str(job.last_error).rstrip("\n")))
        else:
            title.update(Text("error of the last attempt (history: the job was retried since)"))
            error.update(clip(str(job.last_error).rstrip("\n"), style=theme_style(self.app, "text-muted")))

    def _fields(self, job: Job, now: datetime) -> RenderableType:
        muted = theme_style(self.app, "text-muted")
        attempts = f"{job.attempts}" + (f" of {job.max_attempts}" if job.max_attempts else "")
        owner = one_line(job.locked_by or "—")
        if job.stale:
            owner.append("  stale lock", style=theme_style(self.app, "text-warning", bold=True))
        facts: list[tuple[str, RenderableType]] = [
            ("state", state_text(self.app, job)),
            ("queue", one_line(job.queue or "—")),
            ("class", one_line(job.class_name)),
            ("format", one_line(str(job.format))),
            ("attempts", one_line(attempts)),
            ("priority", one_line(str(job.priority))),
        ]
        if job.timeout is not None:
            facts.append(("timeout", one_line(f"{job.timeout:g}s")))
        kept = job.kept_result
        if "result" in kept:
            facts.append(("result", one_line(json.dumps(kept["result"], ensure_ascii=False)[:200])))
        elif kept:
            facts.append(("result", one_line(str(kept["result_note"]))))
        times: list[tuple[str, RenderableType]] = []
        for label, moment in (
            ("created_at", job.created_at),
            ("run_at", job.run_at),
            ("locked_at", job.locked_at),
            ("failed_at", job.failed_at),
            ("finished_at", job.finished_at),
        ):
            if moment is None and label == "finished_at":
                continue
            value = Text(ts(moment))
            if moment is not None:
                value.append(f" ({ago(moment, now)})", style=muted)
            times.append((label, value))
        times.append(("locked_by", owner))
        wide = (self.size.width or 80) >= 110
        grid = Table.grid(padding=(0, 2))
        for _ in range(2 if wide else 1):
            grid.add_column(style="bold", min_width=11)
            grid.add_column()
        if wide:
            # facts on the left, times on the right: the whole job in six lines
            rows = max(len(facts), len(times))
            blank: list[tuple[str, RenderableType]] = [("", Text())]
            for (k1, v1), (k2, v2) in zip(facts + blank * (rows - len(facts)), times + blank * (rows - len(times))):
                grid.add_row(k1, v1, k2, v2)
        else:
            for key, shown in facts + times:
                grid.add_row(key, shown)
        return grid

    def _payload(self, job: Job) -> RenderableType:
        if job.undecodable:
            return Text("(see the raw payload below)", style="dim")
        # long strings and lists are cut with a marker saying how long they are (a 10 MB argument
        # once took the console to half a gigabyte); e exports the whole job
        parts: list[RenderableType] = []
        if job.display is not None:
            parts.append(
                Pretty(
                    bounded(job.display), expand_all=True, max_string=DETAIL_STRING + 80, max_length=DETAIL_ITEMS + 1
                )
            )
        else:
            data: dict[str, Any] = {"args": job.args}
            if job.kwargs:
                data["kwargs"] = job.kwargs
            try:
                one_line = json_text(data, None)
                # short payloads read best on one line, long ones indented
                shown = Text(one_line) if len(one_line) <= 100 else Text(json_text(data, 2))
                parts.append(JSONHighlighter()(shown))
            except (TypeError, ValueError):
                parts.append(Pretty(bounded(data), max_string=DETAIL_STRING + 80, max_length=DETAIL_ITEMS + 1))
        extra = {k: v for k, v in (job.meta or {}).items() if v is not None}
        if extra:
            parts.append(Text("extras: ", style="dim") + Text(json_text(extra, None)))
        return Group(*parts)

    def _history(self) -> RenderableType:
        if not self.history:
            return Text("no admin action has touched this job", style="dim")
        grid = Table.grid(padding=(0, 2))
        for entry in self.history:
            grid.add_row(
                ts(entry.at),
                Text(visible(entry.verb)),
                Text(visible(f"by {entry.actor} ({entry.face})")),
                f"{entry.changed} of {entry.matched} changed",
            )
        return grid

    # --- actions -----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if action == "reveal":  # offered only while something is redacted
            return bool(allowed) and self.has_hidden and self.reveal == "hidden" and not self.gone
        if not allowed or self.job is None:
            return allowed
        state = self.job.state
        needs = {
            "retry": state is JobState.FAILED,
            "unlock": state is JobState.LOCKED,
            "dequeue": state in (JobState.PENDING, JobState.SCHEDULED),
            "delete": state not in (JobState.FINISHED, JobState.CANCELLED),
            "run_now": state is JobState.SCHEDULED,
            # a scheduled job that ran before waits for a retry; one that never ran has none to kill
            "kill": state is JobState.SCHEDULED and self.job.attempts >= 1,
            "edit": state in (JobState.PENDING, JobState.SCHEDULED, JobState.FAILED) and self.job.decodable,
            # a job not started (or waiting for its service) is removed; a running one is
            # interrupted by its qadmin worker
            "cancel_job": state in (JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED, JobState.WAITING),
        }
        # keys not for a job in this state are hidden: the footer shows what can be done
        return not (action in needs and (self.gone or not needs[action]))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_reveal(self) -> None:
        """The redacted values in full, the reveal audited once (the TUI acts as an admin: qadmin.access)."""
        if self.reveal == "hidden" and self.real is not None:
            self.reveal = "revealing"  # shown once the audit entry is written
            self._reveal(self.real)

    @work(thread=True, group="reveal", exit_on_error=False)
    def _reveal(self, job: Job) -> None:
        try:
            self.app.ops.redaction.reveal(job)
        except Exception as exc:  # noqa: BLE001 - not audited: not shown either
            self.reveal = "hidden"
            self.app.call_from_thread(self.notify, f"Cannot reveal: {exc}", severity="error", markup=False)
            return
        self.app.call_from_thread(self._revealed)

    def _revealed(self) -> None:
        self.reveal = "shown"
        self.refresh_data(force=True)

    def action_raw(self) -> None:
        self.show_raw = not self.show_raw
        self.render_job()

    def action_export(self) -> None:
        if self.job is not None:
            self._export(self.job, Path.cwd())

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, job: Job, directory: Path) -> None:
        """The whole job, every field at its full length, into a JSON file only its owner reads."""
        name = "qadmin-job-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", str(job.id))[:100] + ".json"
        path = directory / name
        try:
            data = json.dumps(
                {**job.to_dict(), "raw": job.raw, "meta": job.meta}, ensure_ascii=False, indent=2, default=str
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
                out.write(data)
        except Exception as exc:  # noqa: BLE001 - the operator is told; nothing else changed
            self.app.call_from_thread(
                self.app.notify, f"Cannot export job {visible(str(job.id))}: {exc}", severity="error", markup=False
            )
            return
        self.app.call_from_thread(
            self.app.notify,
            f"Job {visible(str(job.id))} saved whole to {path} ({len(data):,} characters)",
            markup=False,
            timeout=8,
        )

    def _act(self, verb: str, selection: JobFilter | None = None) -> None:
        if self.job is None:
            return
        self.app.start_bulk(
            verb, selection or JobFilter(ids=(self.job.id,)), f"job {self.job.id}", on_done=self._after_action
        )

    def _after_action(self, result: BulkResult | None) -> None:
        if result is not None and result.verb in ("delete", "dequeue") and result.changed:
            self.app.pop_screen()
            return
        self.refresh_data(force=True)

    def action_retry(self) -> None:
        self._act("retry")

    def action_delete(self) -> None:
        self._act("delete")

    def action_unlock(self) -> None:
        self._act("unlock")

    def action_run_now(self) -> None:
        self._act("run_now")

    def action_kill(self) -> None:
        self._act("kill")

    def action_edit(self) -> None:
        if self.job is not None:
            self.app.push_screen(EditScreen(self.app.ops, self.job), self._edited)

    def _edited(self, result: EditResult | None) -> None:
        if result is None:
            return
        fields = ", ".join(result.changed_fields) or "nothing"
        self.notify(f"Edited job {visible(str(result.before.id))}: {fields}.", timeout=6, markup=False)
        self.job_id = result.after.id  # a Redis job's id follows its bytes
        self.refresh_data(force=True)

    def action_cancel_job(self) -> None:
        self._act("cancel")

    def action_dequeue(self) -> None:
        job = self.real or self.job  # Resque's dequeue matches the exact args: the real ones
        if job is not None:
            self.app.ask_dequeue(
                job.queue or "", job.class_name, list(job.args) if job.decodable else None, on_done=self._after_action
            )

    def action_pause(self) -> None:
        if self.job is not None and self.job.queue:
            self.app.toggle_pause(self.job.queue)
