"""`qadmin web` itself: where it may listen, where the password comes from, what it prints, and
that waitress (or granian, with --server granian) serves the app until stopped."""

from __future__ import annotations

import importlib.util
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from qadmin.errors import ConfigError
from qadmin.ops import Ops
from qadmin.web import create_app
from qadmin.web.serve import build, is_loopback
from tests.faces.web.support import CSRF_META


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
    from qadmin.settings import resolve

    config = tmp_path / "qadmin.toml"
    config.write_text(web_section, encoding="utf-8")
    return resolve(url=url, config_file=str(config), environ={})


def test_refuses_a_public_address_without_a_password(demo_sqlite_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="not a loopback address, without a password"):
        build(_state(demo_sqlite_url, tmp_path), host="0.0.0.0", port=0)


def test_cli_web_refuses_a_public_address_with_exit_2(demo_sqlite_url: str, tmp_path, monkeypatch) -> None:
    from qadmin.cli import main

    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    config = tmp_path / "qadmin.toml"
    config.write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["--url", demo_sqlite_url, "--config", str(config), "web", "--host", "0.0.0.0"])
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
    server = build(_state(demo_sqlite_url, tmp_path, '[web]\npassword = "from-file"\n'), host="127.0.0.1", port=0)
    try:
        assert server.login_url is None and server.app.extensions["qadmin"].auth.password == "from-file"
    finally:
        server.close()


def test_token_mode_prints_a_login_url_with_a_fresh_token(demo_sqlite_url: str, tmp_path, monkeypatch) -> None:
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


def test_serve_prints_the_login_url_and_serves_until_stopped(demo_sqlite_url: str, tmp_path, monkeypatch) -> None:
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


# --- --server granian ------------------------------------------------------------------------------
needs_granian = pytest.mark.skipif(
    importlib.util.find_spec("granian") is None, reason="granian is not installed (optional)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_web(url: str, tmp_path, port: int, *extra: str) -> subprocess.Popen:
    config = tmp_path / "qadmin.toml"
    config.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "QADMIN_WEB_PASSWORD"}
    return subprocess.Popen(
        [sys.executable, "-m", "qadmin", "--url", url, "--config", str(config), "web", "--port", str(port), *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@needs_granian
def test_granian_serves_the_app_with_the_login_url_and_throttles_of_one_process(demo_sqlite_url: str, tmp_path) -> None:
    port = _free_port()
    proc = _start_web(demo_sqlite_url, tmp_path, port, "--server", "granian")
    try:
        assert proc.stdout is not None
        lines = []
        while not any("login?token=" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "qadmin web exited: " + "".join(lines)
            lines.append(line)
        login_url = next(line.strip() for line in lines if "login?token=" in line)
        assert login_url.startswith(f"http://127.0.0.1:{port}/login?token=")
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        deadline = time.monotonic() + 30
        while True:  # the worker builds the app after the parent printed the URL
            try:
                with browser.open(login_url, timeout=10) as response:  # logs in, follows the redirect
                    assert response.status == 200 and "Overview" in response.read().decode()
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "granian's worker never answered"
                time.sleep(0.1)
        with browser.open(f"http://127.0.0.1:{port}/jobs?state=failed", timeout=10) as response:
            page = response.read().decode()
            assert response.status == 200 and CSRF_META.search(page) and "log out" in page
        # wrong bearer tokens are counted by the one process that serves every connection
        statuses = []
        for _ in range(6):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/stats", headers={"Authorization": "Bearer wrong"}
            )
            try:
                urllib.request.urlopen(request, timeout=10)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert statuses == [401] * 5 + [429]
        # the browser's session is another budget: still in
        with browser.open(f"http://127.0.0.1:{port}/jobs", timeout=10) as response:
            assert response.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out


@needs_granian
def test_granian_on_a_busy_port_is_a_clear_error(demo_sqlite_url: str, tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = _start_web(demo_sqlite_url, tmp_path, taken.getsockname()[1], "--server", "granian")
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "cannot listen on 127.0.0.1" in out
