"""The History and Metrics pages and their API (/api/history, /api/history/queues, /api/metrics)
on SQLite, PostgreSQL and Redis, over a day of synthetic history recorded as workers record it
(`Backend.record_history`): every range renders with its axis labels, the figures and class
metrics shown are those seeded, every column sorts both ways, the filters narrow, bad input is
a 400, a stranger is refused; and at 390 px in Chromium neither page scrolls sideways."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from html import unescape
from typing import Any

import pytest

from qadmin.backends import Backend, open_backend
from qadmin.insight import METRIC_SORTS, HistorySample, percentile, runtime_bucket
from qadmin.job import utcnow
from qadmin.ops import Ops
from qadmin.web import create_app
from qadmin.web.history_charts import combined, duration, nice_ceiling, ticks
from qadmin.web.pages.insight import rate_trend, resolve_class, runs_trend
from tests.faces.web.support import Web

#: what the seeded day sums to in each range: (runs, processed, retried, failed)
LAST_HOUR = (148, 140, 2, 6)
LAST_DAY = (3552, 3360, 48, 144)
TOTALS = {"1h": LAST_HOUR, "24h": LAST_DAY, "7d": LAST_DAY, "30d": LAST_DAY}
#: an axis label each range shows
AXIS = {
    "1h": r"\d\d:\d0",
    "24h": r"\d\d:00",
    "7d": r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d",
    "30d": r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d\d",
}


def a_day(now: datetime) -> list[HistorySample]:
    """Every minute of the last day: `app.jobs.Mail` on `mail` (2 runs of 0.1 s that succeed, a
    failure every 10th minute, a wait of up to 6 s), `app.jobs.Report` on `reports` every 3rd
    minute (one 2 s run, retried every 30th) and `app.jobs.Thumb` on `images` every 5th minute
    in the last hour (four runs of 0.5 s, one failed)."""
    samples = []
    this_minute = now.replace(second=0, microsecond=0)
    for ago in range(1440):
        minute = this_minute - timedelta(minutes=ago)
        mail = HistorySample(minute, "mail", "app.jobs.Mail", processed=2, failed=1 if ago % 10 == 0 else 0)
        for _ in range(mail.processed + mail.failed):
            mail.add_run(0.1)
        mail.add_latency(ago % 7)
        samples.append(mail)
        if ago % 3 == 0:
            report = HistorySample(minute, "reports", "app.jobs.Report", processed=1, retried=1 if ago % 30 == 0 else 0)
            for _ in range(report.processed + report.retried):
                report.add_run(2.0)
            samples.append(report)
    return samples


def thumbs(now: datetime) -> list[HistorySample]:
    samples = []
    this_minute = now.replace(second=0, microsecond=0)
    for ago in range(0, 60, 5):
        thumb = HistorySample(this_minute - timedelta(minutes=ago), "images", "app.jobs.Thumb", processed=3, failed=1)
        for _ in range(4):
            thumb.add_run(0.5)
        samples.append(thumb)
    return samples


def web_on(backend: Backend, now: datetime) -> Web:
    app = create_app(Ops(backend, clock=lambda: now), {"TESTING": True, "QADMIN_STATS_TTL": 0})
    return Web(app).login()


@pytest.fixture
def seeded(backend: Backend) -> tuple[Web, Backend, datetime]:
    now = utcnow()
    backend.record_history(a_day(now))
    return web_on(backend, now), backend, now


def figure(html: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">([^<]*)<', html)
    assert found, name
    return unescape(found.group(1))


def rows(html: str) -> list[str]:
    return [unescape(c) for c in re.findall(r'<tr data-class="([^"]*)"', html)]


def cell(html: str, job_class: str, column: str) -> str:
    row = html.split(f'<tr data-class="{job_class}"', 1)[1].split("</tr>", 1)[0]
    found = re.search(rf'data-value="{column}">(.*?)</td>', row, re.S)
    assert found, (job_class, column)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


# --- History --------------------------------------------------------------------------------------
@pytest.mark.parametrize("span", ["1h", "24h", "7d", "30d"])
def test_a_day_of_history_renders_in_every_range(seeded: tuple[Web, Backend, datetime], span: str) -> None:
    web, _, _ = seeded
    html = web.html(f"/history?range={span}")
    runs, processed, retried, failed = TOTALS[span]
    assert (figure(html, "runs"), figure(html, "processed")) == (str(runs), str(processed))
    assert (figure(html, "retried"), figure(html, "failed")) == (str(retried), str(failed))
    # p50 of every run: the 0.1 s mail runs are most of them
    assert figure(html, "p50") == duration(percentile({runtime_bucket(0.1): 1}, 0.5))
    assert "data-empty" not in html
    # runs, runtime, and a latency chart for the one queue that recorded waits
    assert html.count('class="hchart"') == 3
    assert re.findall(r'data-queue="([^"]+)"', html) == ["mail"]
    labels = re.findall(r'<text class="axis(?: tick-minor)?" x="[\d.]+%"[^>]*>([^<]+)</text>', html)
    assert "now" in labels and any(re.fullmatch(AXIS[span], label) for label in labels), labels
    assert f'data-range="{span}"' in html and 'aria-current="page" data-range' in html
    # bars have positions in percent of the chart's width, never beyond it
    xs = [float(x) for x in re.findall(r'<rect class="part part-\w+" x="([\d.]+)%"', html)]
    assert xs and 0 <= min(xs) and max(xs) < 100
    # the live refresh renders the same figures
    partial = web.html(f"/partials/history?range={span}")
    assert figure(partial, "runs") == str(runs) and "<html" not in partial


def test_an_empty_range_says_so(backend: Backend) -> None:
    web = web_on(backend, utcnow())
    for span, words in (("1h", "last hour"), ("24h", "last 24 hours"), ("7d", "last 7 days"), ("30d", "last 30 days")):
        html = web.html(f"/history?range={span}")
        assert "data-empty" in html and f"Nothing ran in the {words}." in html
        assert 'class="hchart"' not in html


def test_history_narrows_to_a_queue_and_a_class(seeded: tuple[Web, Backend, datetime]) -> None:
    web, _, _ = seeded
    html = web.html("/history?queue=reports")
    assert figure(html, "runs") == "528" and figure(html, "retried") == "48" and figure(html, "failed") == "0"
    # the queue recorded no wait: no latency chart, and a plain word that there is none
    assert "data-queue=" not in html and "No latency recorded" in html
    assert 'on queue <span class="mono">reports</span>' in html
    html = web.html("/history?range=1h&class=app.jobs.Mail")
    assert figure(html, "runs") == "126" and figure(html, "failed") == "6"
    assert figure(html, "p95") == duration(percentile({runtime_bucket(0.1): 1}, 0.95))
    # the range tabs keep the narrowing
    assert "/history?range=7d&amp;class=app.jobs.Mail" in html
    # nothing ran, but the queue's wait is still worth a chart (a queue no worker serves)
    html = web.html("/history?queue=mail&class=app.jobs.Report")
    assert "data-empty" in html and "Nothing ran in the last 24 hours for class" in html
    assert re.findall(r'data-queue="([^"]+)"', html) == ["mail"] and 'data-figure="runs"' not in html
    html = web.html("/history?class=NoSuchJob")
    assert "Nothing ran in the last 24 hours for class" in html


def test_the_queues_added_up_are_the_whole_history(seeded: tuple[Web, Backend, datetime]) -> None:
    _, backend, now = seeded
    backend.record_history(thumbs(now))
    ops = Ops(backend, clock=lambda: now)
    for span in ("1h", "24h", "7d", "30d"):
        added = combined(list(ops.insight.by_queue(span).values()))
        assert added.to_dict() == ops.insight.history(span).to_dict(), span


def test_a_class_by_its_last_part() -> None:
    known = ["app.jobs.Mail", "Mail", "app.jobs.Report", "Report", "other.Report"]
    assert resolve_class("Mail", known) == "app.jobs.Mail"
    assert resolve_class("app.jobs.Mail", known) == "app.jobs.Mail"
    assert resolve_class("Report", known) == "Report"  # two classes end in it: taken as typed
    assert resolve_class("Nothing", known) == "Nothing"
    assert resolve_class(None, known) is None


# --- Metrics --------------------------------------------------------------------------------------
def test_class_metrics_show_what_was_seeded(seeded: tuple[Web, Backend, datetime]) -> None:
    web, _, _ = seeded
    html = web.html("/class-metrics?window=24h")
    assert rows(html) == ["app.jobs.Mail", "app.jobs.Report"]  # most runs first
    assert cell(html, "app.jobs.Mail", "runs").startswith("3024")
    assert cell(html, "app.jobs.Mail", "failed") == "144"
    assert cell(html, "app.jobs.Mail", "failure_rate").startswith("4.8 %")
    assert cell(html, "app.jobs.Mail", "mean") == "100 ms"
    assert cell(html, "app.jobs.Report", "runs").startswith("528")
    assert cell(html, "app.jobs.Report", "failed") == "0 +48 retried"
    assert cell(html, "app.jobs.Report", "failure_rate").startswith("9.1 %")
    assert cell(html, "app.jobs.Report", "mean") == "2 s"
    for job_class, runtime in (("app.jobs.Mail", 0.1), ("app.jobs.Report", 2.0)):
        for column, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            shown = cell(html, job_class, column)
            assert shown == duration(percentile({runtime_bucket(runtime): 1}, q))
            value = float(shown.split()[0]) * (0.001 if shown.endswith("ms") else 1)
            assert abs(value - runtime) <= runtime * 0.05, (job_class, column, shown)
    # nothing in the day before: every class is new, with no failure-rate trend
    assert "✦ new" in cell(html, "app.jobs.Mail", "runs")
    assert "▲" not in cell(html, "app.jobs.Mail", "failure_rate")
    # each class links to the jobs page filtered by it and to its history
    row = html.split('<tr data-class="app.jobs.Mail"', 1)[1].split("</tr>", 1)[0]
    assert 'href="/jobs?class=app.jobs.Mail" data-jobs-link' in row
    assert 'href="/history?range=24h&amp;class=app.jobs.Mail" data-history-link' in row


def test_a_rising_failure_rate_is_red(backend: Backend) -> None:
    now = utcnow()
    this_minute = now.replace(second=0, microsecond=0)
    samples = []
    for ago in range(120):
        # the hour before: all good; this hour: one run in four fails
        failing = ago < 60 and ago % 4 == 0
        sample = HistorySample(this_minute - timedelta(minutes=ago), "q", "Flaky", processed=0 if failing else 1)
        sample.failed = 1 if failing else 0
        sample.add_run(0.2)
        samples.append(sample)
    backend.record_history(samples)
    html = web_on(backend, now).html("/class-metrics?window=1h")
    assert 'class="trend trend-bad"' in html and "▲ +25.0 pt" in cell(html, "Flaky", "failure_rate")
    assert "→ +0 %" in cell(html, "Flaky", "runs")


def test_trend_words() -> None:
    assert rate_trend(None) is None
    assert rate_trend(0.02) == {"arrow": "▲", "text": "+2.0 pt", "kind": "bad"}
    assert rate_trend(-0.02) == {"arrow": "▼", "text": "-2.0 pt", "kind": "good"}
    assert rate_trend(0.001) == {"arrow": "→", "text": "+0.1 pt", "kind": "flat"}
    assert rate_trend(-0.0002) == {"arrow": "→", "text": "±0.0 pt", "kind": "flat"}
    assert runs_trend(None)["text"] == "new"
    assert runs_trend(1.5) == {"arrow": "▲", "text": "+50 %", "kind": "up"}
    assert runs_trend(0.5)["arrow"] == "▼"


@pytest.mark.parametrize("key", METRIC_SORTS)
def test_every_column_sorts_both_ways(seeded: tuple[Web, Backend, datetime], key: str) -> None:
    web, backend, now = seeded
    backend.record_history(thumbs(now))
    ops = Ops(backend, clock=lambda: now)
    for sort in (key, f"-{key}"):
        html = web.html(f"/class-metrics?window=1h&sort={sort}")
        expected = [m.job_class for m in ops.insight.class_metrics("1h", sort=sort)]
        assert rows(html) == expected and len(expected) == 3, sort
        header = re.search(
            rf'<th[^>]*aria-sort="(\w+)" data-column="{key}">\s*<a class="sort-link" href="([^"]+)"', html
        )
        assert header, sort
        assert header.group(1) == ("descending" if sort.startswith("-") else "ascending")
        # the sorted column's link reverses the order; the window is kept
        reverse = key if sort.startswith("-") else f"-{key}"
        assert unescape(header.group(2)) == f"/class-metrics?window=1h&sort={reverse}"
    mail_p50 = [m.p50 for m in ops.insight.class_metrics("1h") if m.job_class == "app.jobs.Mail"]
    assert mail_p50 and mail_p50[0] is not None


def test_metrics_narrow_to_a_queue_and_window(seeded: tuple[Web, Backend, datetime]) -> None:
    web, backend, now = seeded
    backend.record_history(thumbs(now))
    assert rows(web.html("/class-metrics?queue=images&window=1h")) == ["app.jobs.Thumb"]
    html = web.html("/class-metrics?window=1h&sort=class")
    assert rows(html) == ["app.jobs.Mail", "app.jobs.Report", "app.jobs.Thumb"]
    assert cell(html, "app.jobs.Thumb", "failure_rate").startswith("25.0 %")
    # the window tabs keep the sort
    assert "/class-metrics?window=7d&amp;sort=class" in html
    assert "No runs recorded in the last hour on queue" in web.html("/class-metrics?window=1h&queue=nowhere")


# --- API ------------------------------------------------------------------------------------------
def test_api_answers_what_ops_reads(seeded: tuple[Web, Backend, datetime]) -> None:
    web, backend, now = seeded
    ops = Ops(backend, clock=lambda: now)
    for span in ("1h", "24h", "7d", "30d"):
        body = web.get(f"/api/history?range={span}").get_json()
        assert body == ops.insight.history(span).to_dict()
        assert sum(p["processed"] for p in body["points"]) == TOTALS[span][1]
    body = web.get("/api/history?range=1h&queue=mail&class=app.jobs.Mail").get_json()
    assert (body["queue"], body["class"]) == ("mail", "app.jobs.Mail")
    assert sum(p["failed"] for p in body["points"]) == 6
    queues = web.get("/api/history/queues?range=24h").get_json()
    assert queues["range"] == "24h" and sorted(queues["queues"]) == ["mail", "reports"]
    assert max(p["latency"] or 0 for p in queues["queues"]["mail"]["points"]) == 6
    body = web.get("/api/metrics?window=24h&sort=-failure_rate").get_json()
    assert (body["window"], body["sort"], body["queue"]) == ("24h", "-failure_rate", None)
    assert [m["class"] for m in body["classes"]] == ["app.jobs.Report", "app.jobs.Mail"]
    assert body["classes"] == [m.to_dict() for m in ops.insight.class_metrics("24h", sort="-failure_rate")]
    assert web.get("/api/metrics?queue=reports").get_json()["classes"][0]["runs"] == 528
    # as on the command line, any window of a minute or more
    assert web.get("/api/metrics?window=90m").get_json()["classes"][0]["runs"] == 189


@pytest.mark.parametrize(
    "url",
    [
        "/api/history?range=2h",
        "/api/history?range=1d",
        "/api/history/queues?range=bogus",
        "/api/history?queue=%00",
        "/api/history?class=a%00b",
        "/api/metrics?window=30s",
        "/api/metrics?window=1e999",
        "/api/metrics?sort=bogus",
        "/api/metrics?sort=--runs",
        "/api/metrics?queue=%00",
    ],
)
def test_bad_input_is_400(backend: Backend, url: str) -> None:
    web = web_on(backend, utcnow())
    response = web.get(url)
    assert response.status_code == 400, url
    error = response.get_json()["error"]
    assert error["type"] == "UsageError" and error["status"] == 400 and error["message"]
    page = web.get(
        url.removeprefix("/api").replace("/metrics", "/class-metrics").replace("/history/queues", "/history")
    )
    assert page.status_code == 400 and "text/html" in page.headers["Content-Type"]
    # the page offers the four windows only
    assert web.get("/class-metrics?window=90m").status_code == 400


def test_strangers_are_refused(backend: Backend) -> None:
    app = create_app(Ops(backend), {"TESTING": True})
    client = app.test_client()
    for url in ("/history", "/class-metrics", "/history?range=1h", "/partials/history", "/partials/class-metrics"):
        response = client.get(url)
        assert response.status_code in (302, 303) and "/login" in response.headers["Location"], url
        assert "data-figure" not in response.get_data(as_text=True)
    for url in ("/api/history", "/api/history/queues", "/api/metrics"):
        response = client.get(url)
        assert response.status_code == 401, url
    bearer = {"Authorization": f"Bearer {app.config['QADMIN_LOGIN_TOKEN']}"}
    assert client.get("/api/metrics", headers=bearer).status_code == 200


def test_nav_links_both_pages(seeded: tuple[Web, Backend, datetime]) -> None:
    web, _, _ = seeded
    html = web.html("/")
    assert 'href="/history"' in html and 'href="/class-metrics"' in html
    assert re.search(r'href="/class-metrics" aria-current="page">Metrics', web.html("/class-metrics"))
    assert re.search(r'href="/history" aria-current="page">History', web.html("/history"))


def test_openapi_describes_the_insight_routes(seeded: tuple[Web, Backend, datetime]) -> None:
    web, _, _ = seeded
    spec = web.get("/api/openapi.json").get_json()
    for path in ("/api/history", "/api/history/queues", "/api/metrics"):
        assert "400" in spec["paths"][path]["get"]["responses"]
    sorts = next(p for p in spec["paths"]["/api/metrics"]["get"]["parameters"] if p["name"] == "sort")
    assert set(sorts["schema"]["enum"]) == {*METRIC_SORTS, *(f"-{s}" for s in METRIC_SORTS)}


# --- chart geometry -------------------------------------------------------------------------------
def test_axis_labels_fit_each_range() -> None:
    until = datetime.fromisoformat("2026-12-07T14:37:00+00:00")
    for span, most in (
        (timedelta(hours=1), 8),
        (timedelta(days=1), 8),
        (timedelta(days=7), 8),
        (timedelta(days=30), 8),
    ):
        labels = ticks(until - span, until)
        assert labels[-1].label == "now" and labels[-1].x == 100.0
        assert 2 <= len(labels) <= most + 1
        xs = [t.x for t in labels]
        assert xs == sorted(xs) and all(0 < x <= 100 for x in xs)
    month = [t.label for t in ticks(until - timedelta(days=30), until)][:-1]
    assert month == ["Nov 16", "Nov 23", "Nov 30"]  # Mondays (Nov 09 is too near the left edge)


def test_round_gridlines() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 7, 11, 180, 250, 501)] == [1, 1, 1, 10, 20, 200, 500, 1000]
    assert nice_ceiling(0.0042, durations=True) == pytest.approx(0.005)
    assert [duration(v) for v in (None, 0.0004, 0.1, 1.5, 90, 7200)] == [
        "—",
        "0.4 ms",
        "100 ms",
        "1.5 s",
        "1.5 min",
        "2 h",
    ]


# --- Chromium: a phone's width --------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.parametrize("url", ["/history?range=24h", "/history?range=7d&queue=mail", "/class-metrics?window=24h"])
def test_no_sideways_scroll_on_a_phone(browser: Any, live: Any, url: str) -> None:
    seed = open_backend(live.demo_url)
    now = utcnow()
    seed.record_history(a_day(now) + thumbs(now))
    seed.close()
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    try:
        page = context.new_page()
        page.goto(live.login_url)
        page.goto(live.url + url.lstrip("/"))
        page.wait_for_selector("svg.hchart" if "history" in url else "table.metrics-table")
        # what these pages draw stays inside the screen: the table scrolls inside its own card
        overflow = page.evaluate(
            """() => {
                const main = document.querySelector('main');
                const wide = [...main.querySelectorAll('*')]
                    .filter(e => !e.closest('.table-scroll, .table-card') || e.matches('.table-card, .table-scroll'))
                    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                    .map(e => e.tagName + '.' + e.className);
                return {wide, main: main.scrollWidth, width: window.innerWidth};
            }"""
        )
        assert overflow["wide"] == [] and overflow["main"] <= overflow["width"], overflow
        if "history" in url:
            # text is drawn at its size, not squeezed with the chart: a label is as wide as on a desktop
            box = page.locator("svg.hchart text.axis >> text=now").first.bounding_box()
            assert box is not None and 12 < box["width"] < 40
    finally:
        context.close()


@pytest.mark.browser
def test_the_history_page_refreshes_itself(page: Any, live: Any) -> None:

    page.goto(live.login_url)
    page.goto(live.url + "history?range=1h")
    runs = page.locator('[data-figure="runs"]')
    seed = open_backend(live.demo_url)
    try:
        truth = Ops(seed).insight

        def runs_now() -> int:
            """The hour's runs as the backend has them now: the window slides by a minute while
            the page is watched, and the page's first figure may be a shared reading from
            before (stale-while-revalidate), so `before + 4` is no fixed target."""
            return sum(point.runs for point in truth.history("1h").points)

        seed.record_history(thumbs(utcnow())[:1])  # four more runs this minute
        # no reload: the live refresh swaps in figures that count them
        deadline = time.monotonic() + 45
        shown = -1
        while time.monotonic() < deadline:
            shown = int(runs.text_content() or "-1")
            if shown == runs_now():
                break
            page.wait_for_timeout(250)
        assert shown == runs_now(), (shown, runs_now())
    finally:
        seed.close()
    assert page.url.endswith("/history?range=1h")
