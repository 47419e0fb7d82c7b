"""Who did what, and who may (issue #17, item 5): users of qadmin.toml logging in by name, API tokens,
a trusted proxy's user header, the role check on every route (a viewer is refused every change,
proved by walking `app.url_map`), and the audit naming the user. On SQLite, Redis and PostgreSQL
where the backend matters (the walk); the rest on SQLite."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from qadmin.access import Role, User, hash_password, hash_token
from qadmin.backends import open_backend
from qadmin.demo import fill
from qadmin.errors import ConfigError
from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.ops import Ops
from qadmin.recurring import Schedule
from qadmin.web import create_app
from qadmin.web.access import READING_POSTS, SAFE_METHODS
from qadmin.web.proxy import read_proxy
from tests.faces.web.support import CSRF_META, Web

FAILED = JobFilter(states=frozenset({JobState.FAILED}))
PASSWORD = "open-Sesame-2026"
#: the cheapest hash read_users accepts: the tests log in many times
HASH = hash_password(PASSWORD, cost=(2**14, 8, 1))
TOKENS = {"olga": "olga-api-token-0123456789", "vera": "vera-api-token-0123456789"}
USERS = (
    User("ada", Role.ADMIN, HASH),
    User("olga", Role.OPERATOR, HASH, hash_token(TOKENS["olga"])),
    User("vera", Role.VIEWER, HASH, hash_token(TOKENS["vera"])),
)
PROXY = {
    "proxy_user_header": "X-Forwarded-User",
    "trusted_proxies": ["10.0.0.0/8", "::1"],
    "proxy_groups_header": "X-Forwarded-Groups",
    "proxy_roles": {"sre": "admin", "support": "operator"},
}
TRUSTED = {"REMOTE_ADDR": "10.1.2.3"}
#: the routes that change data, at the least: the walk must find each (and then any added later)
KNOWN_ACTIONS = {
    "pages.job_action",
    "pages.action_preview",
    "pages.apply",
    "pages.cancel",
    "pages.queue_action",
    "pages.edit_job",
    "pages.enqueue_job",
    "pages.recurring_action",
    "pages.recurring_run_now",
    "api.enqueue",
    "api.job_action",
    "api.job_run_now",
    "api.job_edit",
    "api.job_report_back",
    "api.bulk_run_now",
    "api.bulk",
    "api.create_preview",
    "api.apply_preview",
    "api.queue_action",
    "api.prune",
    "api_recurring.set_enabled",
    "api_recurring.run_now",
}


def make_app(ops: Ops, **config: Any) -> Flask:
    settings = {"TESTING": True, "QADMIN_USERS": USERS, "QADMIN_PROXY": read_proxy(PROXY), **config}
    return create_app(ops, settings)


def login(app: Flask, name: str, password: str = PASSWORD) -> tuple[Web, Any]:
    web = Web(app)
    response = web.client.post("/login", data={"name": name, "password": password, "csrf_token": web.csrf()})
    return web, response


def as_user(app: Flask, name: str) -> Web:
    web, response = login(app, name)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return web


def snapshot(ops: Ops) -> tuple[Any, ...]:
    st = ops.stats()
    schedules = tuple((e.schedule.name, e.schedule.enabled, e.last_run_at) for e in ops.recurring.entries())
    return st.queues, tuple(ops.paused()), len(ops.audit(limit=1000)), schedules


# --- the backends of the walk --------------------------------------------------------------------
@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def any_ops(request: pytest.FixtureRequest) -> Iterator[Ops]:
    """Demo data and one schedule, on each backend."""
    if request.param == "sqlite":
        url = str(request.getfixturevalue("demo_sqlite_url"))
    else:
        url = str(request.getfixturevalue(f"{request.param}_url"))
        backend = open_backend(url)
        fill(backend)
        backend.close()
    opened = Ops.open(url, face="test")
    opened.recurring.save(Schedule("nightly", "reports.Nightly", cron="0 3 * * *"))
    yield opened
    opened.close()


def every_request(app: Flask, ops: Ops) -> Iterator[tuple[str, str, str]]:
    """(endpoint, method, url) of every rule of the app, each `any(...)` choice apart, its other
    arguments filled with values that exist (a failed job, a queue, a schedule)."""
    job_id = str(ops.list_jobs(FAILED, limit=1).jobs[0].id)
    fingerprint = ops.error_groups(limit=1)[0].fingerprint
    known = {
        "job_id": job_id,
        "queue": "email",
        "name": "nightly",
        "token": "no-such-token",
        "filename": "qadmin/x",
        "fingerprint": fingerprint,
    }
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        choices = []
        for arg in sorted(rule.arguments):
            items = getattr(rule._converters[arg], "items", None)
            choices.append([(arg, item) for item in sorted(items)] if items else [(arg, known[arg])])
        for combo in itertools.product(*choices):
            url = adapter.build(rule.endpoint, dict(combo), force_external=False)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield rule.endpoint, method, url


def test_a_viewer_is_refused_every_change_on_every_route_and_reads_every_page(any_ops: Ops) -> None:
    app = make_app(any_ops)
    viewer = as_user(app, "vera")
    token = viewer.csrf()
    before = snapshot(any_ops)
    refused, read = set(), set()
    job_id = str(any_ops.list_jobs(FAILED, limit=1).jobs[0].id)
    form = {"csrf_token": token, "id": job_id, "verb": "retry", "action": "retry:filter", "f.state": "failed"}
    for endpoint, method, url in every_request(app, any_ops):
        if endpoint in ("auth.login", "auth.logout", "static"):
            continue
        if method in SAFE_METHODS:
            response = viewer.client.open(url, method=method)
            assert response.status_code != 403 and response.status_code < 500, (url, response.status_code)
            read.add(endpoint)
            continue
        if endpoint in READING_POSTS:
            continue
        # a browser's form, the same from the session as JSON, and a script's bearer token
        for response in (
            viewer.client.open(url, method=method, data=form),
            viewer.client.open(url, method=method, json={"state": "failed"}, headers={"X-CSRFToken": token}),
            app.test_client().open(
                url, method=method, json={"state": "failed"}, headers={"Authorization": f"Bearer {TOKENS['vera']}"}
            ),
        ):
            assert response.status_code == 403, (method, url, response.status_code)
            if url.startswith("/api/"):
                error = response.get_json()["error"]
                assert error["type"] == "Forbidden" and "viewer" in error["message"], url
            else:
                assert "a viewer may read everything and change nothing" in response.get_data(as_text=True)
        refused.add(endpoint)
    assert KNOWN_ACTIONS <= refused, KNOWN_ACTIONS - refused
    assert {"pages.overview", "pages.jobs", "pages.job", "api.jobs", "api.audit", "metrics.metrics"} <= read
    assert snapshot(any_ops) == before
    # and what a viewer may post: the backend switcher, and logging out
    assert viewer.post("/backend", {"backend": app.extensions["qadmin"].backends.default}).status_code == 303
    assert viewer.post("/logout").status_code == 303


def test_only_logging_out_and_the_backend_switcher_are_posts_open_to_viewers(ops: Ops) -> None:
    """Every route is a read (GET), a public page, or refused to viewers (the walk above): a POST
    that only reads is listed in READING_POSTS on purpose, and each one listed exists."""
    assert READING_POSTS == {"auth.logout", "pages.switch_backend"}
    posts = {r.endpoint for r in make_app(ops).url_map.iter_rules() if (r.methods or set()) - SAFE_METHODS}
    assert READING_POSTS <= posts


def test_an_operator_acts_and_the_audit_names_them_with_their_role(ops: Ops) -> None:
    app = make_app(ops)
    olga = as_user(app, "olga")
    job_id = ops.list_jobs(FAILED, limit=1).jobs[0].id
    assert olga.confirmed("/job-action", {"id": str(job_id), "verb": "retry"}).status_code == 303
    assert ops.show(job_id).state is JobState.PENDING
    entry = ops.audit(limit=1)[0]
    assert (entry.actor, entry.face, entry.verb) == ("olga@127.0.0.1 (operator)", "web", "retry")
    # the audit page shows it, and the header who is logged in
    page = olga.html("/audit")
    assert "olga@127.0.0.1 (operator)" in page
    assert '<span class="user">olga</span> <span class="role role-operator"' in page
    # the same user's API token, from a script
    response = app.test_client().post(
        "/api/queues/email/pause", json={}, headers={"Authorization": f"Bearer {TOKENS['olga']}"}
    )
    assert response.status_code == 200 and "email" in ops.paused()
    assert ops.audit(limit=1)[0].actor == "olga@127.0.0.1 (operator)"


def test_a_viewer_sees_no_action_buttons(ops: Ops) -> None:
    """A viewer's pages hold no form that posts anywhere but the backend switcher and log out."""
    app = make_app(ops)
    viewer, operator = as_user(app, "vera"), as_user(app, "olga")
    job_id = ops.list_jobs(FAILED, limit=1).jobs[0].id
    ops.pause("email")
    pages = ["/", "/jobs?state=failed", f"/jobs/{job_id}", "/errors", "/workers", "/recurring", "/audit"]
    posting = re.compile(r'<form[^>]*method="post"[^>]*action="([^"]+)"')
    for url in [*pages, "/enqueue", "/dequeue", f"/edit/{job_id}"]:
        seen = viewer.html(url)
        assert set(posting.findall(seen)) == {"/backend", "/logout"}, url
        assert "role-viewer" in seen and "read-only" in seen, url
    assert "You are a viewer: nothing can be enqueued here." in viewer.html("/enqueue")
    for url in pages:
        acting = operator.html(url)
        assert "role-operator" in acting and "read-only" not in acting, url
    assert {"/job-action", "/queues/email/resume"} <= set(
        posting.findall(operator.html(f"/jobs/{job_id}")) + posting.findall(operator.html("/"))
    )


# --- login by user --------------------------------------------------------------------------------
def test_each_user_logs_in_with_their_own_password_and_not_the_shared_one(ops: Ops) -> None:
    app = make_app(ops, QADMIN_PASSWORD="a-Shared-password-99")
    assert app.extensions["qadmin"].auth.mode == "users" and app.config["QADMIN_LOGIN_TOKEN"] is None
    form = Web(app).html("/login")
    assert 'name="name"' in form and 'autocomplete="username" required' in form
    for name, role in (("ada", "admin"), ("olga", "operator"), ("vera", "viewer")):
        web = as_user(app, name)
        assert f'<span class="user">{name}</span> <span class="role role-{role}"' in web.html("/")
    for name, password in (("vera", "wrong"), ("nobody", PASSWORD), ("vera", "a-Shared-password-99"), ("", "")):
        web, response = login(app, name, password)
        assert response.status_code == 401 and "Wrong name or password." in response.get_data(as_text=True)
        assert not web.logged_in()
    # neither the shared password nor a start-up token is a bearer token any more
    client = app.test_client()
    assert client.get("/api/stats", headers={"Authorization": "Bearer a-Shared-password-99"}).status_code == 401
    assert client.get("/api/stats", headers={"Authorization": f"Bearer {TOKENS['vera']}"}).status_code == 200


def test_wrong_passwords_are_throttled_even_for_a_right_one(ops: Ops) -> None:
    app = make_app(ops)
    for _ in range(5):
        assert login(app, "olga", "guess")[1].status_code == 401
    web, response = login(app, "olga")
    assert response.status_code == 429 and "Retry-After" in response.headers
    assert not web.logged_in()


def test_an_unknown_name_costs_the_same_hash_as_a_known_one(ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    from qadmin.web import credentials

    checked: list[str] = []
    real = credentials.check_password
    monkeypatch.setattr(credentials, "check_password", lambda stored, pw: checked.append(stored) or real(stored, pw))
    auth = make_app(ops).extensions["qadmin"].auth
    assert auth.check_user("nobody", PASSWORD) is None
    assert auth.check_user("olga", "nope") is None
    assert auth.check_user("olga", PASSWORD) is USERS[1]
    assert len(checked) == 3 and checked[0] != HASH and checked[1:] == [HASH, HASH]


def test_a_session_ends_with_its_user(ops: Ops) -> None:
    """The role is read from the users on each request: a session whose user is gone is logged out."""
    app = make_app(ops)
    web = as_user(app, "olga")
    app.extensions["qadmin"].auth.users = {u.name: u for u in USERS if u.name != "olga"}
    response = web.get("/jobs")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_without_users_the_shared_password_logs_in_as_an_admin(ops: Ops) -> None:
    app = create_app(ops, {"TESTING": True, "QADMIN_PASSWORD": "a-Shared-password-99"})
    web = Web(app)
    response = web.client.post(
        "/login", data={"password": "a-Shared-password-99", "name": "sam", "csrf_token": web.csrf()}
    )
    assert response.status_code == 303
    page = web.html("/")
    assert '<span class="user">sam</span> <span class="role role-admin"' in page
    assert web.confirmed("/queues/email/pause", {"back": "/"}).status_code == 303
    assert ops.audit(limit=1)[0].actor == "sam@127.0.0.1"  # the typed name: no role vouched for


# --- the trusted proxy ------------------------------------------------------------------------------
def test_the_proxy_header_is_honoured_from_a_trusted_address_only(ops: Ops, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(ops)
    client = app.test_client()
    headers = {"X-Forwarded-User": "pat@example.com", "X-Forwarded-Groups": "support"}
    # from a trusted proxy: no login needed, the page shows who, and the role its group gives
    page = client.get("/", headers=headers, environ_base=TRUSTED)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<span class="user">pat@example.com</span> <span class="role role-operator"' in html
    assert "log out" not in html  # the proxy logs its users out
    # from anyone else: ignored (and logged once), so the request is a stranger's
    with caplog.at_level(logging.WARNING, logger="qadmin.web"):
        for _ in range(3):
            assert client.get("/api/stats", headers=headers).status_code == 401
            assert client.get("/jobs", headers=headers, environ_base={"REMOTE_ADDR": "192.168.1.9"}).status_code == 302
    ignored = [r.getMessage() for r in caplog.records if "ignored X-Forwarded-User" in r.getMessage()]
    assert ignored == [
        "ignored X-Forwarded-User from 127.0.0.1, which is not one of trusted_proxies",
        "ignored X-Forwarded-User from 192.168.1.9, which is not one of trusted_proxies",
    ]
    # an untrusted header never lifts a logged-in viewer's role
    viewer = as_user(app, "vera")
    token = viewer.csrf()
    response = viewer.client.post(
        "/api/prune", json={}, headers={**headers, "X-Forwarded-Groups": "sre", "X-CSRFToken": token}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("groups", "role"),
    [("", "viewer"), ("support", "operator"), ("sre", "admin"), ("support, sre", "admin"), ("other", "viewer")],
)
def test_groups_map_to_roles_the_highest_one_applying(ops: Ops, groups: str, role: str) -> None:
    app = make_app(ops)
    headers = {"X-Forwarded-User": "pat", "X-Forwarded-Groups": groups}
    html = app.test_client().get("/", headers=headers, environ_base=TRUSTED).get_data(as_text=True)
    assert f'<span class="role role-{role}"' in html


def test_a_proxied_viewer_is_refused_and_an_operator_acts_under_their_name(ops: Ops) -> None:
    app = make_app(ops)
    client = app.test_client()
    before = snapshot(ops)
    viewer = {"X-Forwarded-User": "pat"}
    assert client.post("/api/queues/email/pause", json={}, headers=viewer, environ_base=TRUSTED).status_code == 403
    assert snapshot(ops) == before
    html = client.get("/", headers=viewer, environ_base=TRUSTED).get_data(as_text=True)
    token = CSRF_META.search(html).group(1)  # type: ignore[union-attr]
    operator = {
        "X-Forwarded-User": "pat",
        "X-Forwarded-Groups": "support",
        "X-Forwarded-For": "203.0.113.50, 198.51.100.7",
        "X-CSRFToken": token,
    }
    response = client.post("/api/queues/email/pause", json={}, headers=operator, environ_base=TRUSTED)
    assert response.status_code == 200 and "email" in ops.paused()
    # the proxy's client (the last X-Forwarded-For, which the trusted proxy appended) is recorded
    assert ops.audit(limit=1)[0].actor == "pat@198.51.100.7 (operator)"


def test_a_proxied_user_in_users_has_that_role_and_none_may_be_refused(ops: Ops) -> None:
    app = make_app(ops, QADMIN_PROXY=read_proxy({**PROXY, "proxy_default_role": "none"}))
    client = app.test_client()
    html = client.get("/", headers={"X-Forwarded-User": "olga"}, environ_base=TRUSTED).get_data(as_text=True)
    assert '<span class="role role-operator"' in html
    refused = client.get("/api/stats", headers={"X-Forwarded-User": "pat"}, environ_base=TRUSTED)
    assert refused.status_code == 403 and "pat has no role here" in refused.get_json()["error"]["message"]
    # an IPv6 proxy, and an IPv4 one seen through an IPv6 socket
    for peer in ("::1", "::ffff:10.9.9.9"):
        response = client.get("/api/stats", headers={"X-Forwarded-User": "olga"}, environ_base={"REMOTE_ADDR": peer})
        assert response.status_code == 200, peer


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ({"proxy_user_header": "X-Forwarded-User"}, "needs trusted_proxies"),
        ({"trusted_proxies": ["127.0.0.1"]}, "needs proxy_user_header"),
        ({"proxy_user_header": "X-Forwarded-User", "trusted_proxies": ["nope"]}, "'nope' is not an address"),
        ({"proxy_user_header": "X Forwarded", "trusted_proxies": ["127.0.0.1"]}, "must be a header name"),
        ({**PROXY, "proxy_roles": {"sre": "root"}}, "proxy_roles.sre: unknown role 'root'"),
        (
            {**PROXY, "proxy_default_role": "boss"},
            "unknown role 'boss'; expected one of: viewer, operator, admin or \"none\"",
        ),
        ({**PROXY, "proxy_groups_header": None}, "must be a header name"),
        (
            {"proxy_user_header": "X-U", "trusted_proxies": ["::1"], "proxy_roles": {"a": "admin"}},
            "proxy_roles needs proxy_groups_header",
        ),
    ],
)
def test_proxy_settings_are_checked(web: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_proxy(web)


def test_no_proxy_settings_no_proxy() -> None:
    assert read_proxy({"password": "x"}) is None


def test_through_a_trusted_proxy_the_audit_records_its_client_for_every_login(ops: Ops) -> None:
    app = make_app(ops)
    forwarded = {"Authorization": f"Bearer {TOKENS['olga']}", "X-Forwarded-For": "198.51.100.7"}
    client = app.test_client()
    assert client.post("/api/queues/email/pause", json={}, headers=forwarded, environ_base=TRUSTED).status_code == 200
    assert ops.audit(limit=1)[0].actor == "olga@198.51.100.7 (operator)"
    # from an address that is no proxy, X-Forwarded-For is the client's own word: the peer is recorded
    assert client.post("/api/queues/email/resume", json={}, headers=forwarded).status_code == 200
    assert ops.audit(limit=1)[0].actor == "olga@127.0.0.1 (operator)"
