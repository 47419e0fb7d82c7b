"""End to end in headless Chromium against `qadmin web`'s own waitress server, on demo data, on
SQLite and on Redis: log in, filter, retry a failed job through the UI, a `<script>` payload that
must not run, live refresh, and concurrent requests."""

from __future__ import annotations

import json
import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob
from qadmin.ops import Ops

pytestmark = pytest.mark.browser

FAILED = JobFilter(states=frozenset({JobState.FAILED}))


@pytest.fixture
def backend_ops(live):
    ops = Ops.open(live.demo_url, face="test")
    yield ops
    ops.close()


def test_log_in_filter_and_retry_a_failed_job(page, live, backend_ops: Ops) -> None:
    from playwright.sync_api import expect

    # a stranger lands on the login page
    page.goto(live.url)
    assert page.url.startswith(live.url + "login")
    expect(page).to_have_title(re.compile("Log in"))

    # the printed login URL logs in, and the token leaves the address bar at once
    page.goto(live.login_url)
    assert page.url == live.url
    failed = backend_ops.count(FAILED)
    expect(page.locator('[data-stat="failed"]')).to_have_text(str(failed))

    # the failed tab, filtered to one queue
    page.click("a.stat-failed")
    page.select_option("select[name=queue]", "billing")
    page.click("button:has-text('Filter')")
    expect(page).to_have_url(re.compile(r"queue=billing"))
    rows = page.locator("table.jobs-table tbody tr")
    expect(rows).to_have_count(6)
    expect(page.locator("table.jobs-table tbody td:nth-child(4)")).to_have_text(["billing"] * 6)

    # nothing selected: "Retry selected" is disabled until a box is ticked
    retry_selected = page.locator("button[value='retry:selected']")
    expect(retry_selected).to_be_disabled()
    target = page.locator("table.jobs-table tbody input[name=id]").first.get_attribute("value")
    page.locator(f"input[name=id][value='{target}']").check()
    expect(page.locator("[data-selected-count]")).to_have_text("1 selected")
    retry_selected.click()

    # the confirmation page shows the frozen count and the job; nothing has changed yet
    expect(page.locator("[data-preview-count]")).to_have_text("1")
    expect(page.locator("table.jobs-table tbody tr")).to_have_count(1)
    assert backend_ops.show(target).state is JobState.FAILED
    page.click("[data-confirm-button]")
    expect(page.locator(".flash-success")).to_contain_text("Retried 1 of 1")
    assert "queue=billing" in page.url and "state=failed" in page.url
    expect(rows).to_have_count(5)

    # and the backend agrees: the job is pending again, and the audit log says who did it
    assert backend_ops.show(target).state is JobState.PENDING
    assert backend_ops.count(FAILED) == failed - 1
    entry = backend_ops.audit(limit=1)[0]
    assert (entry.verb, entry.face, entry.changed) == ("retry", "web", 1)


def test_a_script_payload_is_shown_and_never_runs(page, live, backend_ops: Ops) -> None:
    evil = "<script>window.__pwned = 1; document.title = 'pwned'</script>"
    job = backend_ops.backend.enqueue(
        NewJob('<img src=x onerror="window.__pwned=2">', [evil, {"k": evil}], queue="xss")
    )
    page.goto(live.login_url)
    for url in ("jobs?queue=xss", f"jobs/{job.id}", "jobs?search=pwned", ""):
        page.goto(live.url + url)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None, url
        assert page.title() != "pwned", url
    page.goto(live.url + f"jobs/{job.id}")
    # shown as text, exactly
    assert evil in page.text_content("pre.payload")
    assert page.locator("dl.fields dd.mono").first.text_content() == job.class_name
    assert page.locator("img[src=x]").count() == 0


def test_overview_refreshes_itself(page, live, backend_ops: Ops) -> None:
    from playwright.sync_api import expect

    page.goto(live.login_url)
    fresh = page.locator("a.queue-name", has_text="fresh")
    expect(fresh).to_have_count(0)
    backend_ops.backend.enqueue(NewJob("qadmin.examples.noop", [], queue="fresh"))
    # the new queue appears without a reload (and no wait_for_function: the page's CSP rightly
    # forbids the eval it needs)
    expect(fresh).to_have_count(1, timeout=10_000)
    assert page.url == live.url


def test_pause_a_queue_from_the_overview(page, live, backend_ops: Ops) -> None:
    page.goto(live.login_url)
    from playwright.sync_api import expect

    page.locator("table.queues tr", has_text="email").locator("button", has_text="pause").click()
    # the confirmation first: one click paused nothing
    expect(page.locator("[data-queue-change]")).to_contain_text("pause queue email")
    assert backend_ops.paused() == []
    page.click("[data-confirm-button]")
    expect(page.locator(".flash-success")).to_contain_text("Paused queue email")
    expect(page.locator("table.queues tr", has_text="email").locator(".chip-paused")).to_have_count(1)
    assert backend_ops.paused() == ["email"]


def test_concurrent_requests(live) -> None:
    token = live.login_url.rsplit("=", 1)[1]

    def fetch(path: str) -> tuple[int, str]:
        request = urllib.request.Request(live.url + path.lstrip("/"), headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read().decode()

    paths = ["/api/stats", "/api/jobs?state=failed", "/metrics", "/api/workers", "/api/errors"] * 8
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(fetch, paths))
    assert [status for status, _ in results] == [200] * len(paths)
    stats = [json.loads(body) for (_, body), path in zip(results, paths, strict=True) if path == "/api/stats"]
    assert all(s == stats[0] for s in stats)
    assert all(
        re.search(r"qadmin_jobs\{", body) for (_, body), path in zip(results, paths, strict=True) if path == "/metrics"
    )
