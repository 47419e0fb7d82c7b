"""`qadmin web` itself: where it may listen, where the password comes from, what it prints, and
that waitress serves the app until stopped."""

from __future__ import annotations

import io
import socket
import threading
import time
import urllib.request

import pytest
from click.testing import CliRunner

from qadmin.errors import ConfigError
from qadmin.ops import Ops
from qadmin.web import create_app
from qadmin.web.serve import build, is_loopback


# --- where qadmin web listens ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "host,loopback",
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("127.5.5.5", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
        ("192.168.1.1", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _state(url: str, tmp_path, web_section: str = ""):
    from qadmin.cli import Context

    config = tmp_path / "qadmin.toml"
    config.write_text(web_section, encoding="utf-8")
    return Context(url, None, None, None, str(config))


def test_refuses_a_public_address_without_a_password(demo_sqlite_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="not a loopback address, without a password"):
        build(_state(demo_sqlite_url, tmp_path), host="0.0.0.0", port=0)


def test_cli_web_refuses_a_public_address_with_exit_2(demo_sqlite_url: str, tmp_path, monkeypatch) -> None:
    from qadmin.cli import main

    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    config = tmp_path / "qadmin.toml"
    config.write_text("", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["--url", demo_sqlite_url, "--config", str(config), "web", "--host", "0.0.0.0"]
    )
    assert result.exit_code == 2
    assert "QADMIN_WEB_PASSWORD" in result.output


def test_password_from_env_or_config_replaces_the_token(demo_sqlite_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QADMIN_WEB_PASSWORD", "from-env")
    server = build(_state(demo_sqlite_url, tmp_path), host="127.0.0.1", port=0)
    try:
        assert server.login_url is None and server.app.extensions["qadmin"].auth.password == "from-env"
    finally:
        server.close()
    monkeypatch.delenv("QADMIN_WEB_PASSWORD")
    server = build(
        _state(demo_sqlite_url, tmp_path, '[web]\npassword = "from-file"\n'), host="127.0.0.1", port=0
    )
    try:
        assert server.login_url is None and server.app.extensions["qadmin"].auth.password == "from-file"
    finally:
        server.close()


def test_token_mode_prints_a_login_url_with_a_fresh_token(
    demo_sqlite_url: str, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    first = build(_state(demo_sqlite_url, tmp_path), port=0)
    second = build(_state(demo_sqlite_url, tmp_path), port=0)
    try:
        token = first.app.config["QADMIN_LOGIN_TOKEN"]
        assert first.login_url == f"{first.url}login?token={token}" and len(token) >= 32
        assert first.url.startswith("http://127.0.0.1:")
        assert token != second.app.config["QADMIN_LOGIN_TOKEN"]
    finally:
        first.close()
        second.close()


def test_a_busy_port_is_a_clear_error(demo_sqlite_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            build(_state(demo_sqlite_url, tmp_path), port=port)


def test_create_app_makes_a_token_when_no_password(ops: Ops) -> None:
    app = create_app(ops)
    assert app.config["QADMIN_LOGIN_TOKEN"] and app.extensions["qadmin"].auth.mode == "token"


def test_serve_prints_the_login_url_and_serves_until_stopped(
    demo_sqlite_url: str, tmp_path, monkeypatch
) -> None:
    import qadmin.web.serve as serve_module

    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    servers = []

    def keep(*args, **kwargs):
        servers.append(build(*args, **kwargs))
        return servers[-1]

    monkeypatch.setattr(serve_module, "build", keep)
    out = io.StringIO()
    thread = threading.Thread(
        target=serve_module.serve, args=(_state(demo_sqlite_url, tmp_path),), kwargs={"port": 0, "out": out}
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while "login?token=" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        server = servers[0]
        printed = out.getvalue()
        assert f"qadmin web on {server.url}" in printed and server.login_url in printed
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(server.login_url, timeout=10) as response:  # logs in, follows the redirect
            assert response.status == 200 and "Overview" in response.read().decode()
    finally:
        if servers:
            servers[0].close()
        thread.join(10)
    assert not thread.is_alive()
