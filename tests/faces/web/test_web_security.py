"""Authentication, login throttling, CSRF, read-only mode, headers, and where `qadmin web` may
listen. A refused request must change nothing in the backend."""

from __future__ import annotations

import logging

import pytest

from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.ops import Ops
from qadmin.web.credentials import Throttle
from tests.faces.web.support import Web, make_web

FAILED = JobFilter(states=frozenset({JobState.FAILED}))
#: a password strong enough to serve as a bearer token (qadmin.web.credentials.password_problem)
STRONG = "right-Horse-battery-42"
#: POST endpoints that change no data, so that read-only mode allows them
NOT_ACTIONS = {"auth.login", "auth.logout", "pages.switch_backend", "pages.cancel"}


def snapshot(ops: Ops) -> tuple:
    st = ops.stats()
    return st.queues, st.paused, len(ops.audit(limit=500))


def failed_id(ops: Ops):
    return ops.list_jobs(FAILED, limit=1).jobs[0].id


# --- authentication ------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/", "/jobs", "/jobs/1", "/errors", "/workers", "/audit", "/partials/overview"])
def test_pages_send_a_stranger_to_login(app, url: str) -> None:
    response = app.test_client().get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("url", ["/api/stats", "/api/jobs", "/api/jobs/1", "/api/openapi.json", "/metrics"])
def test_api_and_metrics_answer_401_without_credentials(app, url: str) -> None:
    response = app.test_client().get(url)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"]["type"] == "Unauthorized"


def test_stranger_post_changes_nothing(app, ops: Ops) -> None:
    before = snapshot(ops)
    client = app.test_client()
    assert client.post("/api/retry", json={"state": "failed"}).status_code == 401
    assert client.post("/job-action", data={"id": str(failed_id(ops)), "verb": "retry"}).status_code in (
        302,
        400,
    )
    assert snapshot(ops) == before


def test_login_url_token_logs_in_and_redirects_to_next(app) -> None:
    web = Web(app)
    response = web.client.get(f"/login?token={web.token}&next=/errors")
    assert response.status_code == 303 and response.headers["Location"] == "/errors"
    assert web.client.get("/errors").status_code == 200


def test_wrong_token_is_refused(app) -> None:
    response = app.test_client().get("/login?token=guess")
    assert response.status_code == 401 and "Wrong password or token" in response.get_data(as_text=True)


def test_next_cannot_redirect_off_site(app) -> None:
    web = Web(app)
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)"):
        response = web.client.get(f"/login?token={web.token}&next={target}")
        assert response.headers["Location"] == "/", target


@pytest.mark.parametrize("target", ["/jobs%0d%0aSet-Cookie:%20x=1", "/jobs%0aX:1", "/a%00", "/a%c2%85b"])
def test_a_control_character_in_next_is_no_header_split(app, target: str) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    web = Web(app)
    assert web.client.get(f"/login?next={target}").status_code == 200
    response = web.client.get(f"/login?token={web.token}&next={target}")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "x=1" not in response.headers.get("Set-Cookie", "")


def test_password_login_form(ops: Ops) -> None:
    web = make_web(ops, QADMIN_PASSWORD="correct horse")
    assert web.token is None
    assert web.client.get("/login?token=correct horse").status_code == 200  # no password in URLs: just the form
    assert not web.logged_in()
    bad = web.client.post("/login", data={"password": "nope", "csrf_token": web.csrf()})
    assert bad.status_code == 401
    good = web.client.post("/login", data={"password": "correct horse", "name": "bo", "csrf_token": web.csrf()})
    assert good.status_code == 303 and web.logged_in()
    assert "bo" in web.html("/")


def test_logout(web: Web) -> None:
    assert web.post("/logout").status_code == 303
    assert web.get("/").status_code == 302


def test_logout_revokes_a_copied_session_cookie(web: Web) -> None:
    copied = web.client.get_cookie("qadmin_session").value
    thief = web.app.test_client()
    thief.set_cookie("qadmin_session", copied)
    assert thief.get("/jobs").status_code == 200
    assert web.post("/logout").status_code == 303
    # the copy still carries a valid signature and "auth": the server has forgotten its session
    assert thief.get("/jobs").status_code == 302
    assert thief.get("/api/stats").status_code == 401
    assert thief.get("/login").status_code == 200  # the form, not a redirect loop
    # logging in again makes a new session; the old copy stays dead
    web.login()
    assert web.get("/jobs").status_code == 200 and thief.get("/jobs").status_code == 302


def test_bearer_token_for_api_reads_and_writes_without_csrf(app, ops: Ops) -> None:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {app.config['QADMIN_LOGIN_TOKEN']}"}
    assert client.get("/api/stats", headers=headers).status_code == 200
    assert client.get("/metrics", headers=headers).status_code == 200
    job_id = failed_id(ops)
    response = client.post(f"/api/jobs/{job_id}/retry", headers=headers)
    assert response.status_code == 200 and response.get_json()["state"] == "pending"
    assert ops.audit(limit=1)[0].actor == "api@127.0.0.1"
    assert client.get("/api/stats", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_password_is_the_bearer_token_in_password_mode(ops: Ops) -> None:
    client = make_web(ops, QADMIN_PASSWORD=STRONG).client
    assert client.get("/api/stats", headers={"Authorization": f"Bearer {STRONG}"}).status_code == 200


def test_a_weak_password_logs_in_by_the_form_but_is_no_bearer_token(ops: Ops) -> None:
    """Bearer tokens are never locked out (below), so a guesser is limited only by the secret's
    strength: a weak password is refused as one, with the reason."""
    web = make_web(ops, QADMIN_PASSWORD="pw-123")
    refused = web.client.get("/api/stats", headers={"Authorization": "Bearer pw-123"})
    assert refused.status_code == 401 and "too weak" in refused.get_json()["error"]["message"]
    assert web.client.post("/login", data={"password": "pw-123", "csrf_token": web.csrf()}).status_code == 303
    assert web.client.get("/api/stats").status_code == 200


@pytest.mark.parametrize(
    "password, strong",
    [
        ("pw-123", False),
        ("aaaaaaaaaaaaaaaaaaaa", False),
        ("correcthorse", False),
        ("Tr0ub4dor&3", False),
        ("correct horse battery staple", True),
        (STRONG, True),
        ("Xk8vQ2mZp9Lr", True),
    ],
)
def test_password_strength_rule(password: str, strong: bool) -> None:
    from qadmin.web.credentials import password_problem

    assert (password_problem(password) is None) is strong


# --- throttling ----------------------------------------------------------------------------------
def test_login_is_throttled_after_repeated_failures(ops: Ops) -> None:
    web = make_web(ops, QADMIN_PASSWORD=STRONG)
    now = [1000.0]
    web.app.extensions["qadmin"].auth.throttle = Throttle(per_client=5, overall=50, window=300, clock=lambda: now[0])
    for _ in range(5):
        assert web.client.post("/login", data={"password": "wrong", "csrf_token": web.csrf()}).status_code == 401
    # a person at the form waits, right password included: the answer never tells which guess was right
    blocked = web.client.post("/login", data={"password": STRONG, "csrf_token": web.csrf()})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    # failed logins never lock out a script or Prometheus that sends the right token
    assert web.client.get("/api/stats", headers={"Authorization": f"Bearer {STRONG}"}).status_code == 200
    assert web.client.get("/jobs", headers={"Authorization": f"Bearer {STRONG}"}).status_code == 200
    now[0] += 301
    assert web.client.post("/login", data={"password": STRONG, "csrf_token": web.csrf()}).status_code == 303


def test_failed_logins_from_elsewhere_do_not_throttle_a_valid_bearer_token(ops: Ops) -> None:
    web = make_web(ops, QADMIN_PASSWORD=STRONG)
    now = [1000.0]
    auth = web.app.extensions["qadmin"].auth
    auth.throttle = Throttle(per_client=5, overall=8, window=300, clock=lambda: now[0])
    auth.bearer_throttle = Throttle(per_client=5, overall=8, window=300, clock=lambda: now[0])
    token = web.csrf()
    for i in range(8):  # guesses from many addresses trip the overall ceiling of the login form
        response = web.client.post(
            "/login",
            data={"password": f"guess-{i}", "csrf_token": token},
            environ_base={"REMOTE_ADDR": f"10.0.0.{i}"},
        )
        assert response.status_code == 401
    assert web.client.post("/login", data={"password": STRONG, "csrf_token": web.csrf()}).status_code == 429
    ok = web.client.get("/metrics", headers={"Authorization": f"Bearer {STRONG}"})
    assert ok.status_code == 200 and "Set-Cookie" not in ok.headers
    assert web.client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_wrong_bearer_tokens_are_throttled_but_never_lock_out_the_right_one(ops: Ops) -> None:
    """Another client on the same address (a stale scraper config, another local user) sending
    wrong tokens gets 429 once its budget is spent; the right token goes on being served, from
    that address and from any other."""
    web = make_web(ops, QADMIN_PASSWORD=STRONG)
    now = [1000.0]
    auth = web.app.extensions["qadmin"].auth
    auth.bearer_throttle = Throttle(per_client=5, overall=50, window=300, clock=lambda: now[0])
    for i in range(5):
        assert web.client.get("/api/stats", headers={"Authorization": f"Bearer guess-{i}"}).status_code == 401
    for i in range(3):
        blocked = web.client.get("/api/stats", headers={"Authorization": f"Bearer guess-x{i}"})
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
        assert blocked.get_json()["error"]["type"] == "TooManyRequests"
        assert web.client.get("/api/stats", headers={"Authorization": f"Bearer {STRONG}"}).status_code == 200
        assert web.client.get("/metrics", headers={"Authorization": f"Bearer {STRONG}"}).status_code == 200
    # serving the right token forgives nothing: the guesses of that address stay throttled
    assert web.client.get("/api/stats", headers={"Authorization": "Bearer again"}).status_code == 429
    # within the window, guessing on stays throttled
    now[0] += 200
    assert web.client.get("/api/stats", headers={"Authorization": "Bearer late"}).status_code == 429
    now[0] += 301
    assert web.client.get("/api/stats", headers={"Authorization": "Bearer after"}).status_code == 401


def test_the_start_up_token_is_never_locked_out_either(app) -> None:
    client = app.test_client()
    token = app.config["QADMIN_LOGIN_TOKEN"]
    for i in range(8):
        client.get("/api/stats", headers={"Authorization": f"Bearer guess-{i}"})
    assert client.get("/api/stats", headers={"Authorization": "Bearer guess-9"}).status_code == 429
    assert client.get("/api/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_throttle_has_an_overall_ceiling_across_addresses() -> None:
    now = [0.0]
    throttle = Throttle(per_client=5, overall=8, window=60, clock=lambda: now[0])
    for i in range(8):
        throttle.failed(f"10.0.0.{i}")
    assert throttle.retry_after("10.9.9.9") > 0
    now[0] = 61
    assert throttle.retry_after("10.9.9.9") == 0


def test_secrets_are_never_logged(ops: Ops, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    web = make_web(ops)
    token = web.token
    web.client.get("/login?token=not-the-token-xyz")
    web.client.get("/api/stats", headers={"Authorization": "Bearer bearer-guess-xyz"})
    web.login()
    pw = make_web(ops, QADMIN_PASSWORD="pw-secret-xyz")
    pw.client.post("/login", data={"password": "pw-secret-xyz", "csrf_token": pw.csrf()})
    pw.client.post("/login", data={"password": "wrong-secret-xyz", "csrf_token": pw.csrf()})
    assert "failed login from 127.0.0.1" in caplog.text
    for secret in (token, "not-the-token-xyz", "bearer-guess-xyz", "pw-secret-xyz", "wrong-secret-xyz"):
        assert secret not in caplog.text


# --- CSRF ------------------------------------------------------------------------------------------
def test_form_post_without_csrf_token_is_400_and_changes_nothing(web: Web, ops: Ops) -> None:
    job_id = failed_id(ops)
    before = snapshot(ops)
    for url, data in [
        ("/job-action", {"id": str(job_id), "verb": "retry"}),
        ("/actions/preview", {"action": "retry:filter", "f.state": "failed"}),
        ("/queues/email/pause", {}),
    ]:
        response = web.client.post(url, data=data)
        assert response.status_code == 400, url
        assert "CSRF" in response.get_data(as_text=True)
    response = web.client.post("/job-action", data={"id": str(job_id), "verb": "retry", "csrf_token": "forged"})
    assert response.status_code == 400
    assert snapshot(ops) == before and ops.show(job_id).state is JobState.FAILED


def test_confirm_without_csrf_token_does_not_apply(web: Web, ops: Ops) -> None:
    response = web.post("/actions/preview", {"action": "retry:filter", "f.state": "failed"})
    token = response.headers["Location"].rsplit("/", 1)[1]
    assert web.client.post(f"/actions/{token}/apply").status_code == 400
    assert ops.count(FAILED) == 13
    assert web.post(f"/actions/{token}/apply").status_code == 303  # the real confirm still works
    assert ops.count(FAILED) == 0


def test_api_post_from_a_session_needs_the_csrf_header(web: Web, ops: Ops) -> None:
    job_id = failed_id(ops)
    assert web.client.post(f"/api/jobs/{job_id}/retry").status_code == 400
    assert ops.show(job_id).state is JobState.FAILED
    assert web.api_post(f"/api/jobs/{job_id}/retry").status_code == 200
    assert ops.show(job_id).state is JobState.PENDING


def test_login_form_needs_csrf_too(ops: Ops) -> None:
    web = make_web(ops, QADMIN_PASSWORD="pw")
    assert web.client.post("/login", data={"password": "pw"}).status_code == 400
    assert not web.logged_in()


def test_only_post_changes_data(web: Web, ops: Ops) -> None:
    job_id = failed_id(ops)
    for url in ("/job-action", "/queues/email/pause", "/api/retry", f"/api/jobs/{job_id}/retry"):
        assert web.get(url).status_code in (400, 404, 405), url  # 400: "1/retry" is no job id
    assert ops.show(job_id).state is JobState.FAILED and ops.paused() == []
    for rule in web.app.url_map.iter_rules():
        if rule.endpoint != "static" and "GET" in rule.methods:
            view = web.app.view_functions[rule.endpoint]
            assert not getattr(view, "qadmin_mutating", False), rule


# --- read-only ----------------------------------------------------------------------------------
def _post_rules(app) -> list:
    return [r for r in app.url_map.iter_rules() if "POST" in r.methods and r.endpoint not in NOT_ACTIONS]


def test_every_data_changing_endpoint_is_marked_as_an_action(app) -> None:
    rules = _post_rules(app)
    assert len(rules) >= 8
    for rule in rules:
        assert getattr(app.view_functions[rule.endpoint], "qadmin_mutating", False), rule.endpoint


def test_read_only_refuses_every_action_with_403_and_changes_nothing(ops: Ops) -> None:
    web = make_web(ops, QADMIN_READ_ONLY=True).login()
    job_id = failed_id(ops)
    before = snapshot(ops)
    for rule in _post_rules(web.app):
        values = {}
        for arg in rule.arguments:
            converter = rule._converters[arg]
            items = getattr(converter, "items", None)
            values[arg] = sorted(items)[0] if items else {"job_id": str(job_id), "queue": "email"}.get(arg, "tok")
        url = rule.rule
        for arg, value in values.items():
            url = url.replace(f"<{arg}>", value).replace(f"<path:{arg}>", value)
            url = __import__("re").sub(rf"<any\([^)]*\):{arg}>", value, url)
        data = {"id": str(job_id), "verb": "retry", "action": "retry:filter", "f.state": "failed"}
        response = web.post(url, data)
        assert response.status_code == 403, (url, response.status_code)
        api = web.client.post(
            url, json={"state": "failed", "verb": "retry"}, headers={"Authorization": f"Bearer {web.token}"}
        )
        assert api.status_code == 403, url
    assert snapshot(ops) == before and ops.show(job_id).state is JobState.FAILED


def test_read_only_hides_actions(ops: Ops) -> None:
    web = make_web(ops, QADMIN_READ_ONLY=True).login()
    job_id = failed_id(ops)
    pages = [web.html(u) for u in ("/", "/jobs?state=failed", f"/jobs/{job_id}", "/errors", "/workers")]
    for html in pages:
        for marker in ("/actions/preview", "/job-action", '/pause"', "Retry", "Unlock", "Delete"):
            assert marker not in html, marker
        assert "read-only" in html
    assert "Dequeue" not in pages[0]


# --- headers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/", "/login", "/api/stats", "/static/qadmin/qadmin.css", "/jobs/424242"])
def test_security_headers_on_every_response(web: Web, url: str) -> None:
    response = web.get(url)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    if not url.startswith("/static"):
        assert response.headers["Cache-Control"] == "no-store"


def test_no_inline_script_or_style_in_pages(web: Web, ops: Ops) -> None:
    import re

    for url in ("/", "/jobs", f"/jobs/{failed_id(ops)}", "/errors", "/workers", "/audit", "/login"):
        html = web.get(url).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), url
        assert " style=" not in html and " on" + "click=" not in html, url


def test_session_cookie_is_httponly_and_samesite(app) -> None:
    web = Web(app)
    response = web.client.get(f"/login?token={web.token}")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
