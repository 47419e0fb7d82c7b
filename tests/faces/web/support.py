"""Helpers of the web tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import re
import threading
from typing import Any

from qadmin.ops import Ops
from qadmin.web import create_app

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class Web:
    """A Flask test client with the dashboard's login and CSRF steps spelled out."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()

    @property
    def token(self) -> str:
        return self.app.config["QADMIN_LOGIN_TOKEN"]

    def login(self) -> Web:
        response = self.client.get(f"/login?token={self.token}")
        assert response.status_code == 303, response.status_code
        return self

    def csrf(self) -> str:
        html = (
            self.client.get("/login").get_data(as_text=True)
            if not self.logged_in()
            else self.client.get("/audit").get_data(as_text=True)
        )
        match = CSRF_META.search(html)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def logged_in(self) -> bool:
        with self.client.session_transaction() as session:
            return bool(session.get("auth"))

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(self, url: str, data: Any = None, **kw: Any) -> Any:
        """A form POST as the browser sends it, CSRF token included."""
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf())
        return self.client.post(url, data=data, **kw)

    def api_post(self, url: str, json: Any = None, **kw: Any) -> Any:
        """An API POST from the logged-in session: the CSRF token goes in a header."""
        headers = {"X-CSRFToken": self.csrf(), **kw.pop("headers", {})}
        return self.client.post(url, json=json if json is not None else {}, headers=headers, **kw)

    def confirmed(self, url: str, data: Any = None) -> Any:
        """POST an action's form, then confirm it on the page it leads to (every change of the
        dashboard goes through one); the answer of the confirmation."""
        asked = self.post(url, data)
        assert asked.status_code == 303 and "/actions/" in asked.headers["Location"], asked.status_code
        return self.post(asked.headers["Location"] + "/apply")

    def html(self, url: str) -> str:
        response = self.client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:500])
        return response.get_data(as_text=True)


def make_web(ops: Ops, **config: Any) -> Web:
    return Web(create_app(ops, {"TESTING": True, **config}))


class LiveServer:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = server.url
        self.login_url = server.login_url
        self.thread = threading.Thread(target=server.run, daemon=True, name="qadmin-web-test")

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.close()
        self.thread.join(10)


#: a password strong enough to serve as a bearer token (qadmin.web.credentials.password_problem)
STRONG_PASSWORD = "right-Horse-battery-42"
