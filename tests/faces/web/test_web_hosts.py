"""The `Host` allow-list (DNS rebinding) and what `qadmin web` demands before it listens beyond
loopback: a strong password."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from qadmin.errors import ConfigError
from qadmin.ops import Ops
from qadmin.web.serve import build
from tests.faces.web.support import make_web


def _state(url: str, tmp_path, web_section: str = ""):
    from qadmin.settings import resolve

    config = tmp_path / "qadmin.toml"
    config.write_text(web_section, encoding="utf-8")
    return resolve(url=url, config_file=str(config), environ={})


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8080", "127.0.0.1:8080", "127.9.9.9", "[::1]:8080", "10.1.2.3:8080", "[fe80::1]"]
)
def test_loopback_names_and_ip_addresses_are_served(ops: Ops, host: str) -> None:
    """No rebinding page can send an IP address as its Host (it would have to be loaded from it)."""
    web = make_web(ops)
    bearer = {"Authorization": f"Bearer {web.token}"}
    assert web.client.get("/jobs", headers={"Host": host, **bearer}).status_code == 200


@pytest.mark.parametrize("url", ["/login", "/", "/api/stats", "/metrics", "/static/qadmin/qadmin.css", "/nowhere"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil"])
def test_another_host_name_is_refused_before_any_login(ops: Ops, url: str, host: str) -> None:
    web = make_web(ops)
    response = web.client.get(url, headers={"Host": host})
    assert response.status_code == 400
    assert "--allowed-host" in response.get_data(as_text=True)


def test_a_refused_host_burns_no_login_attempt(ops: Ops) -> None:
    web = make_web(ops, QADMIN_PASSWORD="right-Horse-battery-42")
    throttle = web.app.extensions["qadmin"].auth.throttle
    for _ in range(20):
        response = web.client.post("/login", data={"password": "guess"}, headers={"Host": "evil.example:8080"})
        assert response.status_code == 400
    assert throttle.retry_after("127.0.0.1") == 0
    right = {"password": "right-Horse-battery-42", "csrf_token": web.csrf()}
    assert web.client.post("/login", data=right).status_code == 303


def test_a_right_bearer_token_for_another_host_is_refused_too(ops: Ops) -> None:
    web = make_web(ops)
    bearer = {"Authorization": f"Bearer {web.token}"}
    assert web.client.get("/api/stats", headers={**bearer, "Host": "evil.example"}).status_code == 400


def test_more_names_by_setting_or_environment(ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    web = make_web(ops, QADMIN_ALLOWED_HOSTS=["queue.example.com"])
    assert web.client.get("/login", headers={"Host": "Queue.Example.COM:443"}).status_code == 200
    assert web.client.get("/login", headers={"Host": "other.example.com"}).status_code == 400
    monkeypatch.setenv("QADMIN_WEB_ALLOWED_HOSTS", "a.example, b.example")
    web = make_web(ops)
    assert web.client.get("/login", headers={"Host": "b.example"}).status_code == 200
    assert web.client.get("/login", headers={"Host": "c.example"}).status_code == 400


def test_qadmin_web_allows_its_own_address_the_option_and_the_config(
    demo_sqlite_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    monkeypatch.delenv("QADMIN_WEB_ALLOWED_HOSTS", raising=False)
    state = _state(demo_sqlite_url, tmp_path, '[web]\nallowed_hosts = ["from-file.example"]\n')
    server = build(state, host="127.0.0.1", port=0, allowed_hosts=["from-cli.example"])
    try:
        client = server.app.test_client()
        for host in ("from-file.example", "from-cli.example", "127.0.0.1"):
            assert client.get("/login", headers={"Host": host}).status_code == 200, host
        assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
    finally:
        server.close()


def test_a_bad_allowed_hosts_setting_is_one_clear_error(demo_sqlite_url: str, tmp_path) -> None:
    with pytest.raises(ConfigError, match="allowed_hosts must be a list"):
        build(_state(demo_sqlite_url, tmp_path, "[web]\nallowed_hosts = 3\n"), port=0)


def test_cli_web_takes_allowed_host() -> None:
    from qadmin.cli import main

    result = CliRunner().invoke(main, ["web", "--help"])
    assert result.exit_code == 0 and "--allowed-host" in result.output


# --- a strong password beyond loopback -----------------------------------------------------------------
@pytest.mark.parametrize("password", ["x", "secret", "password1234", "aaaaaaaaaaaaaaaaaaaaaaaa"])
def test_a_weak_password_is_refused_beyond_loopback(
    demo_sqlite_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    monkeypatch.setenv("QADMIN_WEB_PASSWORD", password)
    with pytest.raises(ConfigError, match="not a loopback address: the password is too weak"):
        build(_state(demo_sqlite_url, tmp_path), host="0.0.0.0", port=0)


def test_cli_web_refuses_a_weak_password_beyond_loopback_with_exit_2(
    demo_sqlite_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qadmin.cli import main

    monkeypatch.setenv("QADMIN_WEB_PASSWORD", "x")
    config = tmp_path / "qadmin.toml"
    config.write_text("", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["--url", demo_sqlite_url, "--config", str(config), "web", "--host", "0.0.0.0", "--port", "1"]
    )
    assert result.exit_code == 2 and "too weak" in result.output
    assert "Traceback" not in result.output


def test_a_strong_password_listens_beyond_loopback_and_answers_to_this_machines_name(
    demo_sqlite_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setenv("QADMIN_WEB_PASSWORD", "correct horse battery staple")
    server = build(_state(demo_sqlite_url, tmp_path), host="0.0.0.0", port=0)
    try:
        client = server.app.test_client()
        assert client.get("/login", headers={"Host": socket.gethostname()}).status_code == 200
        assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
    finally:
        server.close()
