#!/usr/bin/env python
"""Screenshots of every dashboard page into screenshots/web-*.png.

    python scripts/screenshots_web.py [--out screenshots]

Serves demo data (an hour of worker throughput, then `qadmin demo`) from a temporary SQLite
file with `qadmin web`'s own waitress server on a free loopback port, and drives Debian's
chromium through Playwright exactly as the browser tests do (tests/browser.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qadmin.backends import open_backend  # noqa: E402
from qadmin.demo import fill  # noqa: E402
from qadmin.job import NewJob  # noqa: E402
from qadmin.ops import Ops  # noqa: E402
from qadmin.settings import resolve  # noqa: E402
from qadmin.web.serve import build  # noqa: E402
from qadmin.worker import Worker, WorkerOptions  # noqa: E402
from tests.browser import CHROMIUM_ARGS, chromium_path  # noqa: E402
from tests.faces.tui.scenes import save_schedules  # noqa: E402

VIEWPORT = {"width": 1440, "height": 900}


def an_hour_of_work(url: str) -> None:
    """Jobs run by a worker whose clock walks through the last hour, so the throughput chart
    shows a realistic hour instead of one bar."""
    backend = open_backend(url)
    backend.init()
    now = datetime.now(UTC)
    start = now - timedelta(minutes=59)
    clock_box = {"now": start}
    worker = Worker(
        backend,
        WorkerOptions(
            queues=["images", "email"],
            burst=True,
            sleep=0,
            heartbeat_interval=3600,
            name="host:screenshot pid:1",
            imports=["qadmin.examples"],
        ),
        clock=lambda: clock_box["now"],
    )
    for minute in range(60):
        # each minute's jobs arrive in that minute: the worker serves its queues in order, so
        # jobs enqueued all at once would run every image before the first email bounced
        busy = 6 + (minute * 7) % 11 + (8 if 20 <= minute <= 32 else 0)
        jobs = [
            NewJob("qadmin.examples.noop", [minute, i], queue="images", run_at=start - timedelta(hours=1))
            for i in range(busy)
        ]
        if minute % 9 == 4:
            jobs.append(
                NewJob(
                    "qadmin.examples.SendEmail",
                    [f"bounce{minute}", "Receipt"],
                    queue="email",
                    run_at=start - timedelta(hours=1),
                    max_attempts=1,
                )
            )
        backend.enqueue_many(jobs)
        clock_box["now"] = start + timedelta(minutes=minute, seconds=5)
        while worker.run_once():
            pass
    # the session buffers its throughput counts: write them before the demo data joins them
    worker.session.close()
    fill(backend)
    global ATTEMPTS_JOB
    ATTEMPTS_JOB = str(a_job_with_attempts(backend, now))
    backend.close()


#: the id of the job `a_job_with_attempts` ran, whose page web-attempts shows
ATTEMPTS_JOB = ""
SMTP_ERROR = (
    "ConnectionError: SMTP server smtp.example.com closed the connection\n"
    "Traceback (most recent call last):\n"
    '  File "qadmin/worker/running.py", line 92, in run\n'
    "    returned = _call(target, instance, job)\n"
    '  File "qadmin/examples.py", line 41, in perform\n'
    "    smtp.send_message(message)\n"
    '  File "smtplib.py", line 986, in send_message\n'
    "    raise SMTPServerDisconnected('Connection unexpectedly closed')\n"
    "ConnectionError: SMTP server smtp.example.com closed the connection\n"
)


def a_job_with_attempts(backend, now: datetime):  # type: ignore[no-untyped-def]
    """An invoice email that fails, loses its worker (rescued by another), times out, then goes
    out: four attempts on three workers, recorded by their sessions as a worker records them."""
    from qadmin.job import WorkerInfo

    t = now - timedelta(minutes=25)
    job = backend.enqueue(
        NewJob(
            "qadmin.examples.SendEmail",
            ["ada@example.com", "Invoice #2291"],
            queue="invoices",
            max_attempts=5,
            run_at=t - timedelta(seconds=5),
        ),
        now=t - timedelta(seconds=5),
    )
    a, b, c = "host:worker-a pid:4101", "host:worker-b pid:4102", "host:worker-c pid:4103"

    def held(worker: str, at: datetime):  # type: ignore[no-untyped-def]
        session = backend.session(worker)
        (got,) = session.claim(["invoices"], at, 4 * 3600.0, lambda j: j.id == job.id)
        return session, got

    session, got = held(a, t)
    session.fail(got, t + timedelta(seconds=1.42), SMTP_ERROR, t + timedelta(seconds=10), 1.42)
    session.close()
    died = t + timedelta(minutes=3)
    backend.register_worker(
        WorkerInfo(name=b, host="worker-b", pid=4102, queues=["invoices"], started_at=died, heartbeat_at=died)
    )
    held(b, died)[0].close()  # its process was killed while it ran the job
    rescuer = backend.session(c)
    assert rescuer.rescue(died + timedelta(minutes=6))
    session, got = held(c, died + timedelta(minutes=6))
    ended = died + timedelta(minutes=6, seconds=30)
    session.fail(got, ended, "JobTimeout: execution expired (max run time 30s)\n", ended, 30.0)
    session.close()
    session, got = held(a, now - timedelta(minutes=4))
    session.complete(got, now - timedelta(minutes=4) + timedelta(seconds=0.31), 0.31)
    session.close()
    rescuer.close()
    return job.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--only", default="", help="comma-separated names to write (web-NAME.png); default all")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    exe = chromium_path()
    if exe is None:
        print("chromium is not installed (Debian package chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="qadmin-shots-"))
    try:
        url = f"sqlite:///{tmp / 'qadmin.db'}"
        an_hour_of_work(url)
        staging = f"sqlite:///{tmp / 'staging.db'}"
        open_backend(staging).init()
        config = tmp / "qadmin.toml"
        config.write_text(
            f'default = "production"\n[backends.production]\nurl = "{url}"\n[backends.staging]\nurl = "{staging}"\n',
            encoding="utf-8",
        )
        state = resolve(config_file=str(config))
        server = build(state, host="127.0.0.1", port=0)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_context(viewport=VIEWPORT, device_scale_factor=1).new_page()
                only = {n for n in args.only.split(",") if n}
                shoot(page, server, out, url, only)
                shoot_themes(browser, server, out, only)
                browser.close()
        finally:
            server.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def shoot(page, server, out: Path, url: str, only: set[str] | None = None) -> None:
    base = server.url.rstrip("/")

    def snap(name: str) -> None:
        if only and name not in only:
            return
        page.screenshot(path=str(out / f"web-{name}.png"), full_page=True)
        print(out / f"web-{name}.png")

    page.goto(base + "/login")
    snap("login")
    page.goto(server.login_url)
    page.goto(base + "/")
    # a paused queue, paused the way an operator would
    page.locator("table.queues tr", has_text="reports").locator("button", has_text="pause").click()
    page.click("[data-confirm-button]")  # every change is confirmed first
    page.wait_for_selector(".chip-paused")
    page.wait_for_selector("svg.chart")
    snap("overview")
    page.goto(base + "/jobs?state=failed")
    snap("jobs")
    page.click("a.mono >> nth=0")
    page.wait_for_selector("pre.traceback")
    snap("job")
    # a job's attempts: failed, rescued from a dead worker, timed out, then completed
    page.goto(f"{base}/jobs/{ATTEMPTS_JOB}")
    page.wait_for_selector("[data-attempts] table")
    page.locator("[data-attempts] details").first.evaluate("d => d.open = true")
    snap("attempts")
    page.goto(base + "/jobs?state=failed&queue=billing")
    page.check("input[data-select-all]")
    page.click("button[value='retry:selected']")
    page.wait_for_selector("[data-confirm-button]")
    snap("confirm")
    page.click("[data-confirm-button]")
    page.wait_for_selector(".flash-success")
    snap("jobs-after-retry")
    page.goto(base + "/errors")
    snap("errors")
    # an error group's page: its exact messages (the first group that has several)
    page.click("td.err-cell a[href^='/errors/'] >> nth=0")
    page.wait_for_selector("table.variants-table")
    snap("error-group")
    page.goto(base + "/workers")
    snap("workers")
    page.goto(base + "/audit")
    snap("audit")
    page.goto(base + "/dequeue?queue=email&class=qadmin.examples.SendEmail")
    snap("dequeue")
    page.goto(base + "/enqueue")
    page.fill("input[name='class']", "qadmin.examples.SendEmail")
    page.fill("input[name='args']", '["ada@example.com", "Welcome"]')
    page.fill("input[name='queue']", "email")
    page.fill("input[name='timeout']", "10m")
    snap("enqueue")
    # a job waiting for its next attempt offers every action: Run now, Kill, Edit, Cancel, Delete
    page.goto(base + "/jobs?state=scheduled")
    links = [page.locator("a.mono").nth(i).get_attribute("href") for i in range(page.locator("a.mono").count())]
    for href in links:
        page.goto(base + href if href and href.startswith("/") else str(href))
        if page.locator("button.btn-kill").count():
            break
    snap("job-actions")
    page.click("[data-edit]")
    page.wait_for_selector("form.stack")
    snap("edit")
    # the insight pages, over the month of history `qadmin demo` records
    page.goto(base + "/history?range=24h")
    page.wait_for_selector("svg.hchart")
    snap("history")
    page.goto(base + "/class-metrics?window=24h")
    page.wait_for_selector("table.metrics-table")
    snap("metrics")
    # last, so that no other page shows their jobs: the TUI screenshot's schedules, one run now
    # from the page (its notice links the job it enqueued)
    ops = Ops.open(url, face="cli")
    save_schedules(ops)
    ops.close()
    page.goto(base + "/recurring")
    page.locator("tr[data-schedule='weekly-digest']").locator("button", has_text="Run now").click()
    page.click("[data-confirm-button]")
    page.wait_for_selector("[data-ran]")
    snap("recurring")


#: the sizes the console is checked at (tests/faces/web/test_web_console.py)
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": VIEWPORT}


def shoot_themes(browser, server, out: Path, only: set[str] | None = None) -> None:  # type: ignore[no-untyped-def]
    """The overview, the jobs list and a job's page on a phone and a desktop, in the light and the
    dark theme (web-overview-phone-dark.png…): the theme as the system asks for it."""
    base = server.url.rstrip("/")
    for size, viewport in SIZES.items():
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport=viewport, device_scale_factor=1, color_scheme=scheme)
            page = context.new_page()
            page.goto(server.login_url)
            for name, path in (("overview", "/"), ("jobs", "/jobs?state=failed"), ("errors", "/errors")):
                shot = f"{name}-{size}-{scheme}"
                if only and shot not in only:
                    continue
                page.goto(base + path)
                page.wait_for_load_state("load")
                page.screenshot(path=str(out / f"web-{shot}.png"), full_page=size == "phone")
                print(out / f"web-{shot}.png")
            context.close()


if __name__ == "__main__":
    sys.exit(main())
