"""What makes the pages cheap to serve must not change what they show or weaken what guards them:
the job table built in Python escapes every field, pages rendered once for many views carry
each session's own CSRF token, reads with a bearer token write no session, and the server warms
the dashboard's counts as it starts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qadmin.filters import JobFilter
from qadmin.job import Job, JobState
from qadmin.ops import Ops
from qadmin.web.rendering import CSRF_SLOT
from qadmin.web.serve import warm_up
from qadmin.web.templating import job_table
from tests.faces.web.support import CSRF_META, Web, make_web
from tests.faces.web.support import STRONG_PASSWORD as PW

EVIL = '<script>alert("x")</script>&\'"'
FAILED = JobFilter(states=frozenset({JobState.FAILED}))


def evil_jobs() -> list[Job]:
    now = datetime.now(UTC)
    return [
        Job(
            id=f"{EVIL}-1",
            queue=EVIL,
            class_name=EVIL,
            args=[EVIL, {EVIL: EVIL}],
            state=JobState.FAILED,
            failed_at=now - timedelta(minutes=3),
            last_error=f"{EVIL}\nTraceback...",
            priority=EVIL,  # type: ignore[arg-type]  # a foreign payload may carry anything
            attempts=3,
        ),
        Job(id=f"{EVIL}-2", queue=EVIL, class_name=EVIL, raw=EVIL, undecodable=EVIL, run_at=now),
    ]


@pytest.mark.parametrize("selectable", [True, False])
def test_the_job_table_escapes_every_field(ops: Ops, selectable: bool) -> None:
    app = make_web(ops).app
    with app.test_request_context("/jobs"):
        html = str(job_table(evil_jobs(), datetime.now(UTC), selectable))
    assert "<script" not in html and '"x"' not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#39;&#34;" in html
    # every attribute value is closed where the markup closes it: no value broke out of its quotes
    for attribute in re.findall(r'(\w+)="([^"]*)"', html):
        assert "<" not in attribute[1] and ">" not in attribute[1]
    assert html.count("<tr class=") == 2 and ("data-select-all" in html) is selectable


def test_the_job_table_shows_what_the_template_showed(web: Web, ops: Ops) -> None:
    job = ops.list_jobs(FAILED, limit=1).jobs[0]
    html = web.html("/jobs?state=failed&sort=-id")
    row = re.search(rf'<tr class="row-failed">.*?href="/jobs/{job.id}">{job.id}</a>.*?</tr>', html, re.DOTALL)
    assert row, "the failed job's row links to its page"
    cells = row.group(0)
    assert f">{job.queue}</td>" in cells and job.class_name in cells
    assert f'<td class="num">{job.attempts}</td>' in cells
    assert re.search(r'<time datetime="[^"]+Z" title="[^"]+">\S+ ago</time>', cells)
    assert f'name="id" value="{job.id}"' in cells  # ticked for bulk actions


@pytest.mark.parametrize("url", ["/", "/partials/overview", "/jobs?state=failed", "/jobs"])
def test_shared_pages_carry_each_sessions_own_csrf_token(ops: Ops, url: str) -> None:
    app = make_web(ops, QADMIN_STATS_TTL=60, QADMIN_LIST_TTL=60).app
    ann, bo = Web(app).login(), Web(app).login()
    pages = [ann.html(url), bo.html(url)]
    tokens = [set(re.findall(r'name="csrf_token" value="([^"]+)"', page)) for page in pages]
    assert all(len(t) == 1 for t in tokens) and tokens[0] != tokens[1]
    for web, page, token in zip((ann, bo), pages, tokens):
        assert CSRF_SLOT not in page
        if url != "/partials/overview":
            assert {CSRF_META.search(page).group(1)} == token  # the same as the page's own meta tag
        # the token on the shared part is this session's: a form posted with it is accepted
        response = web.client.post("/queues/email/pause", data={"csrf_token": next(iter(token)), "back": "/"})
        assert response.status_code == 303, response.get_data(as_text=True)[:300]
        ops.resume("email")


def test_shared_pages_in_read_only_mode_have_no_forms(ops: Ops) -> None:
    web = make_web(ops, QADMIN_READ_ONLY=True).login()
    for url in ("/", "/jobs?state=failed"):
        html = web.html(url)
        assert 'action="/actions/preview"' not in html and "/pause" not in html
        assert CSRF_SLOT not in html


def test_a_read_with_a_bearer_token_writes_no_session(ops: Ops) -> None:
    web = make_web(ops, QADMIN_PASSWORD=PW)
    for url in ("/", "/jobs", "/jobs?state=failed", "/errors", "/api/stats", "/metrics"):
        response = web.client.get(url, headers={"Authorization": f"Bearer {PW}"})
        assert response.status_code == 200, url
        assert "Set-Cookie" not in response.headers, url
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert response.headers["Cache-Control"] == "no-store"


def test_a_browser_session_still_gets_its_csrf_token(web: Web) -> None:
    token = CSRF_META.search(web.html("/jobs")).group(1)
    assert token and token != CSRF_SLOT


def test_warm_up_reads_the_dashboard_before_the_first_view(ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    web = make_web(ops, QADMIN_STATS_TTL=60).login()
    calls: list[Any] = []
    real = ops.stats
    monkeypatch.setattr(ops, "stats", lambda: calls.append(1) or real())
    warm_up(web.app)
    assert calls == [1]
    web.html("/")
    web.html("/jobs?state=failed")
    assert calls == [1]  # the views found the reading the server made as it started


def test_static_files_are_cacheable_and_their_links_change_with_them(web: Web) -> None:
    import hashlib
    from pathlib import Path

    html = web.html("/jobs")
    links = re.findall(r'(?:href|src)="(/static/qadmin/[^"?]+)\?v=(\w+)"', html)
    assert {Path(p).name for p, _ in links} == {"favicon.svg", "qadmin.css", "qadmin.js"}
    for path, digest in links:
        data = (Path(web.app.static_folder) / path.removeprefix("/static/")).read_bytes()
        assert digest == hashlib.sha256(data).hexdigest()[:12]
        response = web.get(f"{path}?v={digest}")
        assert response.status_code == 200 and response.get_data() == data
        assert "max-age=86400" in response.headers["Cache-Control"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert web.get("/jobs").headers["Cache-Control"] == "no-store"  # pages are never kept


def test_a_logged_in_browser_reading_pages_gets_no_new_cookie(web: Web) -> None:
    web.html("/jobs")  # the first page after the login makes the session's CSRF secret
    for url in ("/", "/jobs?state=failed", "/partials/overview", "/errors", "/workers"):
        response = web.get(url)
        assert response.status_code == 200 and "Set-Cookie" not in response.headers, url
    cookie = web.client.get_cookie("qadmin_session")
    assert cookie is not None and cookie.expires is not None  # still the login's 12 hours
    assert web.confirmed("/queues/email/pause", {"back": "/"}).status_code == 303  # its token still works


@pytest.mark.parametrize("url", ["/jobs?state=failed", "/"])
def test_a_whole_page_shared_by_many_views_shows_each_session_its_own_frame(ops: Ops, url: str) -> None:
    """The frame of the jobs page and the overview (header, user, backend, footer) is rendered once
    for the views that share their numbers too: each session must still see its own name, CSRF
    token and messages."""
    app = make_web(ops, QADMIN_PASSWORD=PW).app
    browsers: dict[str, Web] = {}
    for name in ("alice", "<b>bob</b>"):
        browser = Web(app)
        browser.client.post("/login", data={"password": PW, "name": name, "csrf_token": browser.csrf()})
        assert browser.logged_in()
        browsers[name] = browser
    bearer = app.test_client().get(url, headers={"Authorization": f"Bearer {PW}"}).get_data(as_text=True)
    pages = {name: browser.html(url) for name, browser in browsers.items()}
    pages_again = {name: browser.html(url) for name, browser in browsers.items()}
    assert pages == pages_again
    assert '<span class="user">alice</span>' in pages["alice"] and "bob" not in pages["alice"]
    assert '<span class="user">&lt;b&gt;bob&lt;/b&gt;</span>' in pages["<b>bob</b>"]
    assert "alice" not in pages["<b>bob</b>"]
    assert "log out" not in bearer and "alice" not in bearer and 'content=""' in bearer
    from itsdangerous import URLSafeTimedSerializer

    # a token is the session's secret signed with the second it was made: compare the secrets
    signer = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token")
    tokens = {name: signer.loads(CSRF_META.search(page).group(1)) for name, page in pages.items()}  # type: ignore[union-attr]
    assert tokens["alice"] != tokens["<b>bob</b>"]
    for name, browser in browsers.items():
        assert signer.loads(browser.csrf()) == tokens[name]
    assert all(CSRF_SLOT not in page for page in [bearer, *pages.values()])
    # a message waiting in one session shows on its next page, and on no other session's
    alice = browsers["alice"]
    response = alice.post("/backend", {"backend": app.extensions["qadmin"].backends.default})
    assert response.status_code == 303
    assert "Now on backend" in alice.html(url)
    assert "Now on backend" not in alice.html(url)
    assert "Now on backend" not in browsers["<b>bob</b>"].html(url)


@pytest.mark.parametrize("query", ["backend=nope", "b%61ckend=nope", "state=failed&backend=nope"])
def test_a_backend_named_in_the_query_string_is_always_read(web: Web, query: str) -> None:
    """The query string is parsed for `backend` only when it could name one: however it is spelled."""
    response = web.login().get(f"/jobs?{query}")
    assert response.status_code == 400 and "no backend named &#39;nope&#39;" in response.get_data(as_text=True)
