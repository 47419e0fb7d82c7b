"""The dashboard's shared reading of the counts (qadmin.web.snapshot): the pages read `stats()`
once per few seconds for everyone, show the same numbers as exact counts, say when they were
read, and never hide what an action just did; the API always reads afresh."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob
from qadmin.ops import Ops
from qadmin.web.snapshot import Snapshots, listing_cache
from tests.faces.web.support import Web, make_web

TAB = re.compile(r'tab-(\w+)"[^>]*>\w+ <span class="tab-count">(\d+)<')
WORDS = ("pending", "scheduled", "locked", "stale", "failed", "waiting", "finished", "cancelled")


def tabs(web: Web, url: str) -> dict[str, int]:
    return {k: int(v) for k, v in TAB.findall(web.html(url))}


def exact(ops: Ops, base: JobFilter) -> dict[str, int]:
    out = {}
    for word in WORDS:
        if word == "stale":
            narrowed = JobFilter(**{**base.__dict__, "states": frozenset({JobState.LOCKED}), "stale_only": True})
        else:
            narrowed = JobFilter(**{**base.__dict__, "states": frozenset({JobState(word)})})
        out[word] = ops.count(narrowed)
    return out


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """Counts the full `stats()` readings the app makes."""

    def __init__(self, ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = ops.stats

        def stats() -> Any:
            self.calls += 1
            return real()

        # get_ops() copies the Ops per request: the copy keeps this instance attribute
        monkeypatch.setattr(ops, "stats", stats)


@pytest.fixture
def any_ops(demo_url: str) -> Iterator[Ops]:
    opened = Ops.open(demo_url, face="test")
    yield opened
    opened.close()


@pytest.mark.parametrize(
    "query, base",
    [
        ("", JobFilter()),
        ("?state=failed", JobFilter()),
        ("?queue=email", JobFilter(queues=("email",))),
        ("?queue=email&queue=billing&state=pending", JobFilter(queues=("email", "billing"))),
        ("?queue=no-such-queue", JobFilter(queues=("no-such-queue",))),
        ("?class=qadmin.examples.ChargeCard", JobFilter(class_name="qadmin.examples.ChargeCard")),
        ("?search=example.com&queue=email", JobFilter(queues=("email",), search="example.com")),
    ],
)
def test_tab_counts_equal_exact_counts_on_every_backend(any_ops: Ops, query: str, base: JobFilter) -> None:
    web = make_web(any_ops).login()
    assert tabs(web, "/jobs" + query) == exact(any_ops, base)


def test_the_queue_menu_lists_every_queue(any_ops: Ops) -> None:
    html = make_web(any_ops).login().html("/jobs")
    menu = re.search(r'<select name="queue">(.*?)</select>', html, re.DOTALL).group(1)
    offered = set(re.findall(r'<option value="([^"]+)"', menu))
    assert {q.name for q in any_ops.queues()} <= offered


def test_pages_share_one_reading_and_say_when_it_was_taken(ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    counting = Counting(ops, monkeypatch)
    web = make_web(ops, QADMIN_STATS_TTL=60).login()
    for url in (
        "/",
        "/jobs",
        "/jobs?state=failed",
        "/jobs?queue=email",
        "/partials/overview",
        "/errors",
        "/dequeue",
    ):
        web.html(url)
    assert counting.calls == 1
    html = web.html("/jobs")
    stamp = re.search(r'counts as of <time datetime="([^"]+)">(\d\d:\d\d:\d\d) UTC</time>', html)
    assert stamp, "the jobs page says when its counts were read"
    moment = datetime.fromisoformat(stamp.group(1))
    assert moment.strftime("%H:%M:%S") == stamp.group(2)
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 3600
    assert f">{stamp.group(2)} UTC</time>" in web.html("/")  # the overview's "updated" is the same reading


def test_the_listing_is_shared_for_a_second_at_most_never_stale(ops: Ops) -> None:
    web = make_web(ops, QADMIN_STATS_TTL=60).login()
    default = web.app.extensions["qadmin"].listings
    assert default.ttl == 1.0 and default.stale_limit == default.ttl  # nothing older is ever shown
    clock = Clock()
    web.app.extensions["qadmin"].listings = listing_cache(1.0, clock=clock)
    url = "/jobs?state=pending&sort=-id"
    assert "queue-xyz" not in web.html(url)
    ops.backend.enqueue(NewJob("qadmin.examples.noop", [], queue="queue-xyz"))  # a client, not the app
    assert "queue-xyz" not in web.html(url)  # the page of rows read a moment ago, shared
    clock.now += 10
    assert "queue-xyz" in web.html(url)  # read again before answering, not behind it


def test_listing_ttl_zero_reads_the_rows_on_every_view(ops: Ops) -> None:
    web = make_web(ops, QADMIN_STATS_TTL=60, QADMIN_LIST_TTL=0).login()
    assert "queue-xyz" not in web.html("/jobs?state=pending&sort=-id")
    ops.backend.enqueue(NewJob("qadmin.examples.noop", [], queue="queue-xyz"))
    assert "queue-xyz" in web.html("/jobs?state=pending&sort=-id")


def test_concurrent_views_of_one_page_read_its_rows_once(ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    web = make_web(ops, QADMIN_LIST_TTL=60).login()
    reads = []
    real = ops.list_jobs

    def list_jobs(*args: Any, **kw: Any) -> Any:
        if kw.get("sort") == "id":  # the page's rows (the class menu reads the newest jobs: -id, -failed_at)
            reads.append(1)
        threading.Event().wait(0.2)  # a slow read: the other views arrive while it runs
        return real(*args, **kw)

    monkeypatch.setattr(ops, "list_jobs", list_jobs)
    pages: list[str] = []
    # a client each: a Flask test client is not meant to be shared between threads
    clients = [Web(web.app).login() for _ in range(4)]
    threads = [threading.Thread(target=lambda c=c: pages.append(c.html("/jobs?state=failed"))) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(pages) == 4 and len(reads) == 1
    rows = [re.findall(r'<tr class="row-failed">', p) for p in pages]
    assert all(r == rows[0] and r for r in rows)


def test_an_action_through_the_app_shows_its_result_at_once(ops: Ops) -> None:
    web = make_web(ops, QADMIN_STATS_TTL=3600, QADMIN_LIST_TTL=3600).login()
    assert '<tr class="row-failed">' in web.html("/jobs?state=failed&queue=billing")
    before = tabs(web, "/jobs?queue=billing")
    assert before["failed"] > 0
    token = re.search(
        r"/actions/([\w-]+)$",
        web.post("/actions/preview", {"action": "retry:filter", "f.state": "failed", "f.queue": "billing"}).headers[
            "Location"
        ],
    ).group(1)
    web.post(f"/actions/{token}/apply")
    after = tabs(web, "/jobs?queue=billing")
    assert after["failed"] == 0 and after["pending"] == before["pending"] + before["failed"]
    assert "No jobs match" in web.html("/jobs?state=failed&queue=billing")  # the rows too
    assert after == exact(ops, JobFilter(queues=("billing",)))
    web.confirmed("/queues/email/pause", {"back": "/"})
    assert "chip-paused" in web.html("/")


def test_changes_made_elsewhere_show_once_the_reading_is_old(ops: Ops) -> None:
    clock = Clock()
    web = make_web(ops).login()
    web.app.extensions["qadmin"].snapshots = Snapshots(ttl=5, stale_limit=60, clock=clock)
    pending = tabs(web, "/jobs")["pending"]
    ops.backend.enqueue(NewJob("qadmin.examples.noop", [], queue="email"))  # a client, not the app
    assert tabs(web, "/jobs")["pending"] == pending  # fresh enough: the shared reading
    clock.now += 6
    # past the ttl the old reading is still served at once while a fresh one is read behind it
    assert tabs(web, "/jobs")["pending"] in (pending, pending + 1)
    for _ in range(500):
        if tabs(web, "/jobs")["pending"] == pending + 1:
            break
        threading.Event().wait(0.01)
    assert tabs(web, "/jobs")["pending"] == pending + 1
    ops.backend.enqueue(NewJob("qadmin.examples.noop", [], queue="email"))
    clock.now += 120  # past the stale limit: never shown, read again before answering
    assert tabs(web, "/jobs")["pending"] == pending + 2


def test_ttl_zero_reads_on_every_view(ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    counting = Counting(ops, monkeypatch)
    web = make_web(ops, QADMIN_STATS_TTL=0).login()
    web.html("/")
    web.html("/jobs")
    assert counting.calls == 2


def test_the_api_always_reads_afresh(ops: Ops) -> None:
    web = make_web(ops, QADMIN_STATS_TTL=3600).login()
    web.html("/jobs")
    failed = web.get("/api/stats").get_json()["totals"]["failed"]
    ops.backend.enqueue(NewJob("qadmin.examples.noop", [], queue="email"))
    ops.retry(JobFilter(states=frozenset({JobState.FAILED}), queues=("billing",)))
    fresh = web.get("/api/stats").get_json()
    assert fresh["totals"]["failed"] < failed
    assert fresh == web.get("/api/stats").get_json()
    assert {q["name"]: q["counts"] for q in web.get("/api/queues").get_json()}["billing"]["failed"] == 0


# --- the cache on its own ----------------------------------------------------------------------
def test_concurrent_first_views_make_one_reading() -> None:
    snapshots = Snapshots(ttl=10)
    started = threading.Event()
    release = threading.Event()
    calls = []

    def read() -> tuple[int, datetime]:
        calls.append(1)
        started.set()
        release.wait(10)
        return len(calls), datetime.now(UTC)

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(snapshots.get("b", "x", read).value)) for _ in range(6)]
    for t in threads:
        t.start()
    started.wait(10)
    release.set()
    for t in threads:
        t.join(10)
    assert calls == [1] and results == [1] * 6


def test_a_reading_in_flight_during_an_action_is_thrown_away() -> None:
    clock = Clock()
    snapshots = Snapshots(ttl=5, stale_limit=60, clock=clock)
    values = iter(["old", "read-before-the-action", "after"])
    gate = threading.Event()

    def read() -> tuple[str, datetime]:
        value = next(values)
        if value == "read-before-the-action":
            gate.wait(10)
        return value, datetime.now(UTC)

    assert snapshots.get("b", "x", read).value == "old"
    clock.now += 6
    assert snapshots.get("b", "x", read).value == "old"  # refresh started behind
    snapshots.invalidate()  # an action lands while that refresh is reading
    gate.set()
    assert snapshots.get("b", "x", read).value == "after"


def test_a_failed_reading_is_reported_to_the_view_that_needed_it() -> None:
    snapshots = Snapshots(ttl=5)

    def broken() -> tuple[Any, datetime]:
        raise RuntimeError("backend down")

    with pytest.raises(RuntimeError, match="backend down"):
        snapshots.get("b", "x", broken)
    assert snapshots.get("b", "x", lambda: ("ok", datetime.now(UTC))).value == "ok"


# --- the job table's rows ----------------------------------------------------------------------
def test_row_links_are_what_url_for_builds(ops: Ops) -> None:
    from dataclasses import replace

    from flask import url_for

    from qadmin.web.templating import job_rows

    app = make_web(ops).app
    job = ops.list_jobs(limit=1).jobs[0]
    odd = ["12", "a b/c", "queue:x:1", "ü?#%&=+", "job@host;v=1", "../x"]
    with app.test_request_context("/jobs"):
        rows = job_rows([replace(job, id=i) for i in odd], job.created_at)
        assert [r["href"] for r in rows] == [url_for("pages.job", job_id=i) for i in odd]


def test_a_slow_reading_stays_fresh_longer() -> None:
    clock = Clock()
    snapshots = Snapshots(ttl=0.01, stale_limit=60, clock=clock, background=False)
    calls = []

    def slow() -> tuple[int, datetime]:
        calls.append(1)
        threading.Event().wait(0.05)  # a reading that takes a while: fresh for 4x as long
        return len(calls), datetime.now(UTC)

    assert snapshots.get("b", "x", slow).value == 1
    clock.now += 0.1
    assert snapshots.get("b", "x", slow).value == 1
    clock.now += 10
    assert snapshots.get("b", "x", slow).value == 2


def test_a_reading_keeps_a_few_derived_pages_not_one_per_address() -> None:
    from qadmin.web.snapshot import DERIVED_CAPACITY, Reading

    reading = Reading("v", datetime.now(UTC), 0.0)
    made = []
    for i in range(DERIVED_CAPACITY * 4):
        assert reading.derive(("page", f"/jobs?junk={i}"), lambda i=i: made.append(i) or i) == i
    assert len(reading.derived) == DERIVED_CAPACITY
    assert reading.derive(("page", "/jobs?junk=0"), lambda: made.append("again")) == 0  # kept: made once
    assert made.count("again") == 0
