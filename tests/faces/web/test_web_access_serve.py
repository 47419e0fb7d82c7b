"""`qadmin web` as a process (waitress, and granian's worker process) with users and a trusted proxy:
the peer address the server itself gives decides whether a proxy's header is believed (127.0.0.2,
also loopback on Linux, stands for the proxy), and users' API tokens carry their roles."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qadmin.access import hash_password, hash_token

VIEWER_TOKEN = "viewer-token-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(port: int, method: str, path: str, headers: dict[str, str], source: str = "127.0.0.1") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        connection.request(method, path, body=b"{}" if method == "POST" else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "server",
    [
        "waitress",
        pytest.param(
            "granian",
            marks=pytest.mark.skipif(importlib.util.find_spec("granian") is None, reason="granian is not installed"),
        ),
    ],
)
def test_the_servers_peer_address_decides_and_tokens_carry_roles(
    demo_sqlite_url: str, tmp_path: Path, server: str
) -> None:
    made = hash_password("open-Sesame-2026", cost=(2**14, 8, 1))
    config = tmp_path / "qadmin.toml"
    config.write_text(
        f'[users.vera]\npassword_hash = "{made}"\ntoken_hash = "{hash_token(VIEWER_TOKEN)}"\nrole = "viewer"\n'
        f'[users.olga]\ntoken_hash = "{hash_token(OPERATOR_TOKEN)}"\nrole = "operator"\n'
        '[web]\nproxy_user_header = "X-Forwarded-Email"\ntrusted_proxies = ["127.0.0.2"]\n'
        'proxy_groups_header = "X-Forwarded-Groups"\n[web.proxy_roles]\nsre = "admin"\n',
        encoding="utf-8",
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "QADMIN_WEB_PASSWORD"}
    command = [sys.executable, "-m", "qadmin", "--url", demo_sqlite_url, "--config", str(config), "web"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--server", server],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "Log in as one of the 2 users of" in lines[1], lines
        assert "X-Forwarded-Email names the user on requests from 127.0.0.2/32 (and from nowhere else)" in lines[2]
        deadline = time.monotonic() + 30
        while True:  # granian's worker builds the app after the parent printed its lines
            try:
                status, _ = _request(port, "GET", "/api/stats", {"Authorization": f"Bearer {VIEWER_TOKEN}"})
                break
            except OSError:
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.1)
        assert status == 200
        viewer = {"Authorization": f"Bearer {VIEWER_TOKEN}", "Content-Type": "application/json"}
        status, body = _request(port, "POST", "/api/queues/email/pause", viewer)
        assert status == 403 and "vera is a viewer" in json.loads(body)["error"]["message"]
        operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}", "Content-Type": "application/json"}
        assert _request(port, "POST", "/api/queues/email/pause", operator)[0] == 200
        # the proxy's header: believed from 127.0.0.2, ignored from 127.0.0.1
        proxied = {"X-Forwarded-Email": "pat@example.com", "X-Forwarded-Groups": "sre"}
        status, page = _request(port, "GET", "/", proxied, source="127.0.0.2")
        assert status == 200 and '<span class="role role-admin"' in page and "pat@example.com" in page
        assert _request(port, "GET", "/api/stats", proxied)[0] == 401
        status, audit = _request(port, "GET", "/api/audit", {"Authorization": f"Bearer {VIEWER_TOKEN}"})
        assert json.loads(audit)[0]["actor"] == "olga@127.0.0.1 (operator)"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "ignored X-Forwarded-Email from 127.0.0.1, which is not one of trusted_proxies" in out
