"""The shared rendering (qadmin.web.rendering.SharedRender: a page rendered once per reading for
every session, each session's CSRF token spliced in) answers byte for byte what the plain one
(PlainRender: every request renders its own page) answers, on a real backend, for every page.

Two clocks would make two renderings differ by a second here and there: the backend's clock is
frozen (the "ago" of every row), and so is the second a CSRF token is signed with (a token is the
session's secret signed with the time), so that one session's token is the same string in both."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from itsdangerous.timed import TimestampSigner

from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.ops import Ops
from qadmin.web.rendering import CSRF_SLOT
from qadmin.web.templating import STATES
from tests.faces.web.support import STRONG_PASSWORD as PW
from tests.faces.web.support import Web, make_web

#: every value a CSRF token is given in: the meta tag of a page and the hidden field of each form
TOKENS = re.compile(r'(?:name="csrf-token" content|name="csrf_token" value)="([^"]*)"')


@pytest.fixture
def frozen_ops(demo_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ops]:
    """The demo data on each backend, its clock stopped, and CSRF tokens signed at one second."""
    opened = Ops.open(demo_url, face="test")
    now = opened.clock()
    monkeypatch.setattr(opened, "clock", lambda: now)
    second = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: second)
    yield opened
    opened.close()


def urls(ops: Ops) -> list[str]:
    failed = ops.list_jobs(JobFilter(states=frozenset({JobState.FAILED})), limit=1).jobs[0]
    pending = ops.list_jobs(JobFilter(states=frozenset({JobState.PENDING})), limit=1).jobs[0]
    queue = failed.queue or ""
    return [
        "/",
        "/partials/overview",
        "/jobs",
        *(f"/jobs?state={state}" for state in STATES),
        f"/jobs?queue={queue}",
        f"/jobs?queue={queue}&state=failed&sort=-id&limit=5",
        f"/jobs?class={pending.class_name}&state=pending&queue={pending.queue}",
        f"/jobs/{failed.id}",
        f"/jobs/{pending.id}",
        "/errors",
        f"/errors?queue={queue}",
        "/workers",
        "/partials/workers",
        "/audit",
        "/dequeue",
    ]


def log_in(app: Any, name: str) -> Web:
    browser = Web(app)
    browser.client.post("/login", data={"password": PW, "name": name, "csrf_token": browser.csrf()})
    assert browser.logged_in()
    return browser


def answer(client: Any, url: str, **kw: Any) -> tuple[int, str, bytes]:
    response = client.get(url, **kw)
    return response.status_code, response.headers["Content-Type"], response.get_data()


@pytest.mark.parametrize("read_only", [False, True], ids=["actions", "read-only"])
def test_shared_and_plain_rendering_answer_the_same_bytes(frozen_ops: Ops, read_only: bool) -> None:
    app = make_web(frozen_ops, QADMIN_PASSWORD=PW, QADMIN_READ_ONLY=read_only).app
    browsers = {name: log_in(app, name) for name in ("alice", "<b>bob</b>")}
    own = {name: browser.csrf() for name, browser in browsers.items()}
    assert own["alice"] != own["<b>bob</b>"] and CSRF_SLOT not in own.values()
    bearer = app.test_client()
    checked = 0
    for url in urls(frozen_ops):
        pages: dict[str, dict[str, tuple[int, str, bytes]]] = {}
        # plain, shared, then plain and shared again: neither may depend on what the other left
        for shared in (False, True, False, True):
            app.config["QADMIN_SHARED_RENDER"] = shared
            for name, browser in browsers.items():
                found = answer(browser.client, url)
                assert found == pages.setdefault(name, found), (url, name, "shared" if shared else "plain")
            found = answer(bearer, url, headers={"Authorization": f"Bearer {PW}"})
            assert found == pages.setdefault("bearer", found), (url, "bearer", "shared" if shared else "plain")
        for name, (status, _, body) in pages.items():
            assert status == 200, (url, name)
            html = body.decode()
            assert CSRF_SLOT not in html
            tokens = set(TOKENS.findall(html))
            # each session sees its own token and no other; a bearer request gets none
            assert tokens <= ({""} if name == "bearer" else {own[name]}), (url, name)
            checked += bool(tokens - {""})
    assert checked  # the comparison covered pages with forms


def test_a_page_with_a_message_waiting_is_the_same_both_ways(frozen_ops: Ops) -> None:
    """A flashed message makes the shared path render the page for its request alone."""
    app = make_web(frozen_ops, QADMIN_PASSWORD=PW).app
    alice = log_in(app, "alice")
    default = app.extensions["qadmin"].backends.default
    pages = []
    for shared in (False, True):
        app.config["QADMIN_SHARED_RENDER"] = shared
        for url in ("/", "/jobs?state=failed"):
            assert alice.post("/backend", {"backend": default}).status_code == 303
            page = answer(alice.client, url)
            assert b"Now on backend" in page[2]
            pages.append(page)
    assert pages[:2] == pages[2:]
