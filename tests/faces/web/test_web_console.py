"""The web a team keeps open (issue #17, item 4): every page at 390 px and 1440 px in both themes
without a sideways scroll, the theme toggle, previous/next pages with "51–100 of N", sortable
headers, live lists that keep the operator's selection and scroll, the TUI's keyboard shortcuts
and the filter suggestions.

The layout runs in real headless Chromium on SQLite demo data; the pages and sorts the server
makes are checked through the test client on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob
from qadmin.ops import Ops
from tests.faces.tui.scenes import save_schedules
from tests.faces.web.support import LiveServer, Web, make_web

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
FAILED = JobFilter(states=frozenset({JobState.FAILED}))


# --- the server side on every backend ---------------------------------------------------------
@pytest.fixture
def seeded(any_url: str) -> Iterator[Ops]:
    """120 pending jobs in queue "bulk" with priorities that do not follow their ids."""
    ops = Ops.open(any_url, face="test")
    ops.backend.init()
    ranked = ops.supports_priority
    ops.backend.enqueue_many(
        [NewJob("qadmin.examples.noop", [i], queue="bulk", priority=(i * 37) % 11 if ranked else 0) for i in range(120)]
    )
    yield ops
    ops.close()


def _range(html: str) -> str:
    found = re.search(r"<span class=\"range\" data-range>([^<]*)</span>", html)
    assert found, "no pager range on the page"
    return found.group(1)


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'href="([^"]+)" rel="{rel}"', html)
    return unescape(found.group(1)) if found else None


def _ids(html: str) -> list[str]:
    return [unescape(i) for i in re.findall(r'name="id" value="([^"]+)"', html)]


def test_pages_say_which_rows_of_how_many_both_ways(seeded: Ops) -> None:
    web = make_web(seeded).login()
    url = "/jobs?queue=bulk&state=pending"
    first = web.html(url)
    assert _range(first) == "1–50 of 120" and _link(first, "prev") is None
    second_url = _link(first, "next")
    assert second_url is not None
    second = web.html(second_url)
    assert _range(second) == "51–100 of 120"
    third = web.html(str(_link(second, "next")))
    assert _range(third) == "101–120 of 120" and _link(third, "next") is None
    # back, page by page, to the same rows
    again = web.html(str(_link(third, "prev")))
    assert _range(again) == "51–100 of 120" and _ids(again) == _ids(second)
    start = web.html(str(_link(again, "prev")))
    assert _range(start) == "1–50 of 120" and _ids(start) == _ids(first)
    everything = _ids(first) + _ids(second) + _ids(third)
    assert len(set(everything)) == 120
    # the "all" tab counts every state but "stale" (a part of "locked") once
    assert _range(web.html("/jobs?queue=bulk")) == "1–50 of 120"


def test_the_pager_leaves_out_what_would_not_hold() -> None:
    from qadmin.web.pages.paging import pager

    def url(params: Any) -> str:
        return repr(sorted(params.items()))

    def text(**kw: Any) -> str:
        args = {"cursor": None, "prev": [], "next_cursor": None, "shown": 50, "limit": 50, "total": 120, "url": url}
        return pager({}, **{**args, **kw}).text

    assert text(next_cursor="c1") == "1–50 of 120"
    assert text(cursor="c1", prev=[""], next_cursor="c2") == "51–100 of 120"
    # jobs arrived since the count: the rows pass it, so no "of N"
    assert text(cursor="c2", prev=["", "c1"], next_cursor="c3", total=100) == "101–150"
    assert text(cursor="c1", prev=[""], next_cursor="c2", total=100) == "51–100"
    assert text(shown=0, total=0) == "0 of 0"
    assert text(cursor="c1", prev=[], shown=7) == "7 rows"
    assert text(cursor="c1", prev=[], shown=1) == "1 row"


def test_a_page_reached_without_its_trail_says_only_how_many_rows(seeded: Ops) -> None:
    web = make_web(seeded).login()
    first = web.html("/jobs?queue=bulk&state=pending")
    bare = re.sub(r"&prev=[^&]*", "", str(_link(first, "next")))
    html = web.html(bare)
    assert _range(html) == "50 rows"
    assert _link(html, "prev") is not None  # back to the first page


@pytest.mark.parametrize(
    ("column", "sort", "key"),
    [("id", "-id", lambda j: -_num(j.id)), ("pri", "priority", lambda j: j.priority)],
)
def test_sort_headers_link_to_their_order(seeded: Ops, column: str, sort: str, key: Any) -> None:
    web = make_web(seeded).login()
    html = web.html("/jobs?queue=bulk&state=pending&limit=100")
    href = re.search(rf'<a class="sort" href="([^"]+)" data-sort="{column}">', html)
    if column == "pri" and not seeded.supports_priority:
        assert href is None and '<th class="num unsortable" title="cannot sort by this column' in html
        return
    assert href is not None
    sorted_html = web.html(unescape(href.group(1)))
    assert f"sort={sort}" in unescape(href.group(1)) and "cursor=" not in href.group(1)
    shown = _ids(sorted_html)
    jobs = {str(j.id): j for j in seeded.list_jobs(JobFilter(queues=("bulk",)), limit=200).jobs}
    values = [key(jobs[i]) for i in shown]
    assert values == sorted(values) and len(shown) == 100
    # the sorted column says so; one that cannot sort says that
    assert re.search(
        r'aria-sort="(ascending|descending)"><a class="sort" href="[^"]+" data-sort="' + column, sorted_html
    )
    assert 'class="unsortable" title="cannot sort by this column' in sorted_html


def _num(job_id: Any) -> int:
    return int(job_id) if str(job_id).isdigit() else 0


def test_ids_sort_newest_first_and_back(seeded: Ops) -> None:
    web = make_web(seeded).login()
    newest = web.html("/jobs?queue=bulk&sort=-id")
    href = re.search(r'<a class="sort" href="([^"]+)" data-sort="id">', newest)
    assert href is not None and "sort=" not in unescape(href.group(1))  # back to the default, oldest first
    oldest = _ids(web.html(unescape(href.group(1))))
    assert _ids(newest) == list(reversed(_ids(web.html("/jobs?queue=bulk&limit=120"))))[:50]
    assert oldest == _ids(web.html("/jobs?queue=bulk"))


def test_workers_sort_by_their_headers_and_keep_the_order_live(web: Web, ops: Ops) -> None:
    html = web.html("/workers")
    assert re.search(r'<a class="sort" href="/workers\?sort=processed" data-sort="processed">', html)
    assert 'class="unsortable" title="cannot sort by this column' in html
    by_processed = web.html("/workers?sort=processed")
    names = [w.name for w in sorted(ops.workers(), key=lambda w: -w.processed)]
    shown = re.findall(r'<tr class="[^"]*">\s*<td class="mono">([^<]+)</td>', by_processed)
    assert [unescape(n) for n in shown] == names
    assert 'aria-sort="descending"><a class="sort" href="/workers?sort=processed"' in by_processed
    # the live refresh asks for the same order
    assert 'data-refresh-url="/partials/workers?sort=processed"' in by_processed
    assert web.html("/workers?sort=bogus")  # an unknown order is the order as read, not an error


def test_filters_offer_class_and_queue_suggestions(web: Web) -> None:
    html = web.html("/jobs")
    assert re.search(r'<input[^>]+name="class"[^>]+list="class-names"', html)
    assert '<option value="qadmin.examples.SendEmail">' in html
    assert '<option value="billing"' in html  # the queue menu
    enqueue = web.html("/enqueue")
    assert re.search(r'name="queue"[^>]+list="queue-names"', enqueue) and "<datalist" in enqueue
    errors = web.html("/errors")
    assert 'list="class-names"' in errors


# --- in Chromium --------------------------------------------------------------------------------
@pytest.fixture
def console(demo_sqlite_url: str, live_config: Path) -> Iterator[LiveServer]:
    """`qadmin web` on the SQLite demo data, refreshing lists every second."""
    from qadmin.settings import resolve
    from qadmin.web.serve import build

    state = resolve(url=demo_sqlite_url, config_file=str(live_config), environ={})
    with LiveServer(build(state, host="127.0.0.1", port=0)) as server:
        server.demo_url = demo_sqlite_url  # type: ignore[attr-defined]
        yield server


def _new_page(browser: Any, viewport: dict[str, int], scheme: str = "light") -> Any:
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    context.set_default_timeout(15_000)
    return context.new_page()


def _pages(console: LiveServer) -> dict[str, str]:
    """Every kind of page of the dashboard, by name: its address (the confirm page is made below)."""
    ops = Ops.open(console.demo_url, face="test")  # type: ignore[attr-defined]
    try:
        failed = ops.list_jobs(FAILED, limit=1).jobs[0]
        scheduled = ops.list_jobs(JobFilter(states=frozenset({JobState.SCHEDULED})), limit=1).jobs[0]
        # unbroken words longer than any screen: a class, an argument, an error and a queue
        long = ops.backend.enqueue(NewJob("Long" * 60, ["x" * 3000, {"k" * 200: "v" * 500}], queue="q" * 120))
        fingerprint = ops.error_groups(limit=1)[0].fingerprint
    finally:
        ops.close()
    return {
        "overview": "",
        "jobs": "jobs",
        "jobs-failed": "jobs?state=failed",
        "job": f"jobs/{failed.id}",
        "long job": f"jobs/{long.id}",
        "long jobs": "jobs?queue=" + "q" * 120,
        "errors": "errors",
        "workers": "workers",
        "audit": "audit",
        "recurring": "recurring",
        "enqueue": "enqueue",
        "edit": f"edit/{scheduled.id}",
        "dequeue": "dequeue?queue=email&class=qadmin.examples.SendEmail",
        "history": "history?range=7d",
        "metrics": "class-metrics?window=30d",
        "error group": f"errors/{fingerprint}",
    }


def _overflow(page: Any) -> tuple[int, int, list[str]]:
    """The page's scroll width, its client width, and what sticks out (for the message)."""
    return page.evaluate(
        """() => {
          const root = document.scrollingElement;
          const wide = [];
          for (const el of document.body.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.right > root.clientWidth + 1 && wide.length < 8) {
              wide.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
            }
          }
          return [root.scrollWidth, root.clientWidth, wide];
        }"""
    )


def _no_sideways_scroll(page: Any, name: str) -> None:
    width, client, wide = _overflow(page)
    assert width <= client, f"{name}: scrollWidth {width} > clientWidth {client}: {wide}"


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1440px"])
def test_no_page_scrolls_sideways(browser: Any, console: LiveServer, viewport: dict[str, int], scheme: str) -> None:
    ops = Ops.open(console.demo_url, face="test")  # type: ignore[attr-defined]
    save_schedules(ops)
    ops.close()
    page = _new_page(browser, viewport, scheme)
    try:
        page.goto(console.url + "login")
        _no_sideways_scroll(page, "login")
        assert page.evaluate("document.documentElement.dataset.theme") == scheme
        page.goto(console.login_url)
        for name, path in _pages(console).items():
            page.goto(console.url + path)
            page.wait_for_load_state("load")
            assert page.evaluate("document.documentElement.dataset.theme") == scheme, name
            _no_sideways_scroll(page, name)
        # a confirmation page (nothing is changed until it is confirmed)
        page.goto(console.url + "jobs?state=failed")
        page.locator("button[value='retry:filter']").click()
        page.wait_for_selector("[data-confirm-button]")
        _no_sideways_scroll(page, "confirm")
        page.locator("button", has_text="Cancel").click()
        # a queue's pause and a schedule's run, each confirmed on a page of its own
        page.goto(console.url)
        page.locator("table.queues tr", has_text="email").locator("button", has_text="pause").click()
        page.wait_for_selector("[data-queue-change]")
        _no_sideways_scroll(page, "confirm_queue")
        page.goto(console.url + "recurring")
        page.locator("tr[data-schedule='weekly-digest']").locator("button", has_text="Run now").click()
        page.wait_for_selector("[data-confirm-button]")
        _no_sideways_scroll(page, "recurring_confirm")
        # an error page
        page.goto(console.url + "jobs/" + "9" * 300)
        _no_sideways_scroll(page, "error")
    finally:
        page.context.close()


@pytest.mark.browser
def test_the_phone_menu_collapses_and_opens(browser: Any, console: LiveServer) -> None:
    from playwright.sync_api import expect

    page = _new_page(browser, PHONE)
    try:
        page.goto(console.login_url)
        nav = page.locator("nav.mainnav")
        expect(nav).to_be_hidden()
        page.click("[data-nav-toggle]")
        expect(nav).to_be_visible()
        expect(page.locator("[data-nav-toggle]")).to_have_attribute("aria-expanded", "true")
        page.click("nav.mainnav >> text=Jobs")
        assert page.url.endswith("/jobs")
        # buttons are big enough for a thumb
        height = page.locator("button:has-text('Filter')").bounding_box()["height"]
        assert height >= 36
    finally:
        page.context.close()


@pytest.mark.browser
def test_the_theme_follows_the_system_and_the_toggle_is_remembered(browser: Any, console: LiveServer) -> None:
    page = _new_page(browser, DESKTOP, "light")
    try:
        page.goto(console.login_url)
        theme = "document.documentElement.dataset.theme"
        assert page.evaluate(theme) == "light"
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert page.get_attribute("[data-theme-toggle]", "aria-pressed") == "false"
        page.click("[data-theme-toggle]")
        assert page.evaluate(theme) == "dark"
        assert page.get_attribute("[data-theme-toggle]", "aria-pressed") == "true"
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") != background
        # the failed colour still reads as red on dark
        red = page.evaluate("getComputedStyle(document.querySelector('.stat-failed .stat-value')).color")
        r, g, b = (int(x) for x in re.findall(r"\d+", red)[:3])
        assert r > 200 and g < 150 and b < 150, red
        # the chart's axis text follows the theme (an SVG fill through a CSS variable)
        axis = page.evaluate("getComputedStyle(document.querySelector('svg.chart text.axis')).fill")
        assert axis == "rgb(148, 163, 184)", axis
        page.goto(console.url + "jobs")
        assert page.evaluate(theme) == "dark"
        page.reload()
        assert page.evaluate(theme) == "dark"
        # "t" switches back, and choosing what the system says forgets the choice
        page.keyboard.press("t")
        assert page.evaluate(theme) == "light"
        assert page.evaluate("localStorage.getItem('qadmin-theme')") is None
    finally:
        page.context.close()


@pytest.mark.browser
def test_live_jobs_list_keeps_the_checked_box_and_the_scroll(browser: Any, console: LiveServer) -> None:
    from playwright.sync_api import expect

    page = _new_page(browser, {"width": 1280, "height": 500})
    ops = Ops.open(console.demo_url, face="test")  # type: ignore[attr-defined]
    try:
        page.goto(console.login_url)
        page.goto(console.url + "jobs?state=pending&limit=100")
        boxes = page.locator("table.jobs-table tbody input[name=id]")
        target = boxes.nth(3).get_attribute("value")
        page.locator(f"input[name=id][value='{target}']").check()
        page.evaluate("window.scrollTo(0, 300)")
        scrolled = page.evaluate("window.scrollY")
        assert scrolled > 0
        count = page.locator(".tab-pending .tab-count").text_content()
        rows = boxes.count()
        ops.backend.enqueue(NewJob("qadmin.examples.noop", ["live"], queue="fresh"))
        # the tab count changes without a reload...
        expect(page.locator(".tab-pending .tab-count")).not_to_have_text(str(count), timeout=10_000)
        # ...the new job's row is swapped in...
        expect(boxes).to_have_count(rows + 1)
        # ...and the box is still ticked, the count of selected still 1, the page where it was
        expect(page.locator(f"input[name=id][value='{target}']")).to_be_checked()
        expect(page.locator("[data-selected-count]")).to_have_text("1 selected")
        assert abs(page.evaluate("window.scrollY") - scrolled) < 2
        # paused, it stops; the choice holds on the next page
        page.locator("input[data-live-toggle]").uncheck()
        page.goto(console.url + "workers")
        expect(page.locator("input[data-live-toggle]")).not_to_be_checked()
        page.locator("input[data-live-toggle]").check()
    finally:
        ops.close()
        page.context.close()


@pytest.mark.browser
def test_shortcuts_navigate_open_and_stay_quiet_in_inputs(browser: Any, console: LiveServer) -> None:
    from playwright.sync_api import expect

    page = _new_page(browser, DESKTOP)
    try:
        page.goto(console.login_url)
        page.keyboard.press("2")
        expect(page).to_have_url(re.compile(r"/jobs$"))
        # typed into a filter, the keys are text
        page.keyboard.press("/")
        focused = page.evaluate("document.activeElement.name")
        assert focused == "search"
        page.keyboard.type("3j?")
        assert page.url.endswith("/jobs")
        assert page.input_value("input[name=search]") == "3j?"
        expect(page.locator("dialog#shortcuts")).not_to_be_visible()
        page.keyboard.press("Escape")
        # j moves the row cursor, Enter opens the row
        page.keyboard.press("j")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowUp")
        row = page.locator("table.jobs-table tbody tr.is-cursor")
        expect(row).to_have_count(1)
        second = page.locator("table.jobs-table tbody tr").nth(1).locator("a").first.get_attribute("href")
        assert row.locator("a").first.get_attribute("href") == second
        href = row.locator("a").first.get_attribute("href")
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(re.escape(str(href)) + "$"))
        # "?" lists the keys, Esc closes the list
        page.keyboard.press("?")
        expect(page.locator("dialog#shortcuts")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator("dialog#shortcuts")).not_to_be_visible()
        page.keyboard.press("3")
        expect(page).to_have_url(re.compile(r"/errors$"))
        page.keyboard.press("4")
        expect(page).to_have_url(re.compile(r"/workers$"))
    finally:
        page.context.close()


@pytest.mark.browser
def test_r_on_a_row_leads_to_the_confirmation(browser: Any, console: LiveServer) -> None:
    from playwright.sync_api import expect

    page = _new_page(browser, DESKTOP)
    ops = Ops.open(console.demo_url, face="test")  # type: ignore[attr-defined]
    try:
        failed = ops.count(FAILED)
        page.goto(console.login_url)
        page.goto(console.url + "jobs?state=failed")
        page.keyboard.press("j")
        page.keyboard.press("r")
        expect(page.locator("[data-preview-count]")).to_have_text("1")
        assert ops.count(FAILED) == failed  # nothing retried before the confirmation
        page.keyboard.press("n")  # the confirmation's cancel, as in the TUI
        expect(page).to_have_url(re.compile(r"/jobs\?state=failed$"))
        assert ops.count(FAILED) == failed
        page.keyboard.press("j")
        page.keyboard.press("r")
        expect(page.locator("[data-preview-count]")).to_have_text("1")
        page.keyboard.press("y")  # and its yes
        expect(page.locator(".flash-success")).to_contain_text("Retried 1 of 1")
        assert ops.count(FAILED) == failed - 1
    finally:
        ops.close()
        page.context.close()


@pytest.mark.browser
def test_pager_in_the_browser_by_click_and_by_key(browser: Any, console: LiveServer) -> None:
    from playwright.sync_api import expect

    page = _new_page(browser, PHONE, "dark")
    ops = Ops.open(console.demo_url, face="test")  # type: ignore[attr-defined]
    try:
        total = ops.count(JobFilter(states=frozenset({JobState.PENDING})))
        assert total > 20
        page.goto(console.login_url)
        page.goto(console.url + "jobs?state=pending&limit=10")
        expect(page.locator("[data-range]")).to_have_text(f"1–10 of {total}")
        page.locator('.pager a[rel="next"]').click()
        expect(page.locator("[data-range]")).to_have_text(f"11–20 of {total}")
        page.keyboard.press("]")
        expect(page.locator("[data-range]")).to_have_text(f"21–{min(30, total)} of {total}")
        page.keyboard.press("[")
        expect(page.locator("[data-range]")).to_have_text(f"11–20 of {total}")
        page.locator('.pager a[rel="prev"]').click()
        expect(page.locator("[data-range]")).to_have_text(f"1–10 of {total}")
        _no_sideways_scroll(page, "pager")
    finally:
        ops.close()
        page.context.close()


@pytest.mark.browser
def test_schedule_keys_lead_to_their_confirmation(browser: Any, console: LiveServer) -> None:
    from playwright.sync_api import expect

    ops = Ops.open(console.demo_url, face="test")  # type: ignore[attr-defined]
    save_schedules(ops)
    before = ops.count()
    page = _new_page(browser, DESKTOP)
    try:
        page.goto(console.login_url)
        page.keyboard.press("6")
        expect(page).to_have_url(re.compile(r"/recurring$"))
        first = page.locator("main tbody tr").first.get_attribute("data-schedule")
        page.keyboard.press("j")
        page.keyboard.press("g")
        expect(page.locator("[data-confirm-button]")).to_be_visible()
        assert first is not None and first in page.locator("main").text_content()
        assert ops.count() == before  # nothing enqueued: only the preview so far
    finally:
        ops.close()
        page.context.close()


@pytest.mark.browser
def test_a_hidden_tab_does_not_refresh_until_it_is_seen_again(browser: Any, console: LiveServer) -> None:
    from playwright.sync_api import expect

    page = _new_page(browser, DESKTOP)
    ops = Ops.open(console.demo_url, face="test")  # type: ignore[attr-defined]
    try:
        page.goto(console.login_url)
        page.goto(console.url + "errors")
        count = page.locator("main tbody tr").count()
        # as a browser says of a tab in the background
        page.evaluate("Object.defineProperty(document, 'hidden', {configurable: true, get: () => true})")
        job = ops.backend.enqueue(NewJob("qadmin.examples.noop", ["hidden"], queue="hidden"))
        session = ops.backend.session("host:test pid:1")
        (claimed,) = session.claim(["hidden"], ops.clock(), 3600.0, lambda j: j.id == job.id)
        session.fail(claimed, ops.clock(), "HiddenTabError: not seen\n", None, 0.1)
        session.close()
        page.wait_for_timeout(4_500)  # past the shared reading (3 s) and four refresh periods
        expect(page.locator("main tbody tr")).to_have_count(count)
        page.evaluate("Object.defineProperty(document, 'hidden', {configurable: true, get: () => false})")
        expect(page.locator("main tbody tr")).to_have_count(count + 1, timeout=10_000)
        expect(page.locator("main tbody")).to_contain_text("HiddenTabError")
    finally:
        ops.close()
        page.context.close()
