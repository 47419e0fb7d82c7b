"""`qadmin users` (list, hash-password, new-token): the lines it prints work in qadmin.toml, a login
with the hashed password and a script's token succeed through `qadmin web`'s own app; and the
CLI's actions are audited under the operating-system account."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from qadmin.backends import open_backend
from qadmin.cli import main
from qadmin.errors import ConfigError
from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.ops import Ops
from qadmin.settings import resolve
from tests.faces.web.support import CSRF_META

FAILED = JobFilter(states=frozenset({JobState.FAILED}))
PASSWORD = "Tr0ub4dor-and-3-more"


def run_cli(*args: str, config: Path | None = None, stdin: str | None = None) -> Result:
    env = {"QADMIN_URL": None, "QADMIN_CONFIG": str(config) if config else None, "QADMIN_BACKEND": None}
    return CliRunner(env=env).invoke(main, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def failed_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    backend = open_backend(url)
    from qadmin.demo import fill

    fill(backend)
    backend.close()
    return url


@pytest.fixture
def no_env_password(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    yield


def test_hash_password_reads_stdin_and_the_line_logs_in_through_qadmin_web(
    tmp_path: Path, failed_url: str, no_env_password: None
) -> None:
    made = run_cli("users", "hash-password", stdin=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    line = made.stdout.strip()
    assert re.fullmatch(r'password_hash = "scrypt:32768:8:1\$[A-Za-z0-9]{16}\$[0-9a-f]{128}"', line)
    assert PASSWORD not in made.output
    token = run_cli("users", "new-token")
    assert token.exit_code == 0
    secret = token.stderr.split(": ")[-1].strip()
    config = tmp_path / "qadmin.toml"
    config.write_text(f'[users.alice]\n{line}\nrole = "operator"\n{token.stdout.strip()}\n', encoding="utf-8")
    listed = run_cli("users", "list", "--json", "--url", failed_url, config=config)
    assert json.loads(listed.stdout) == [
        {"name": "alice", "role": "operator", "password": True, "token": True, "last_action": None}
    ]
    assert "scrypt" not in listed.stdout and "sha256" not in listed.stdout
    table = run_cli("users", "--url", failed_url, config=config).stdout
    assert "alice" in table and "operator" in table and "scrypt" not in table
    # the server the CLI would start: its app logs alice in with the password she typed
    from qadmin.web.serve import build

    server = build(resolve(url=failed_url, config_file=str(config), environ={}), host="127.0.0.1", port=0)
    try:
        client = server.app.test_client()
        assert server.login_url is None  # no start-up token once there are users
        csrf = CSRF_META.search(client.get("/login").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        wrong = client.post("/login", data={"name": "alice", "password": "nope", "csrf_token": csrf})
        assert wrong.status_code == 401
        right = client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": csrf})
        assert right.status_code == 303
        assert '<span class="role role-operator"' in client.get("/").get_data(as_text=True)
        script = server.app.test_client()
        assert script.get("/api/stats", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        paused = script.post("/api/queues/email/pause", json={}, headers={"Authorization": f"Bearer {secret}"})
        assert paused.status_code == 200
    finally:
        server.close()
    # her last action, from the backend's audit log
    [row] = json.loads(run_cli("users", "list", "--json", "--url", failed_url, config=config).stdout)
    assert row["last_action"]["verb"] == "pause" and row["last_action"]["actor"] == "alice@127.0.0.1 (operator)"
    assert "pause" in run_cli("users", "--url", failed_url, config=config).stdout


def test_hash_password_never_takes_the_password_as_an_argument() -> None:
    assert run_cli("users", "hash-password", PASSWORD).exit_code == 2
    assert run_cli("users", "hash-password", stdin="\n").exit_code == 2


def test_a_weak_password_is_hashed_with_a_warning() -> None:
    made = run_cli("users", "hash-password", stdin="short\n")
    assert made.exit_code == 0 and made.stdout.startswith('password_hash = "scrypt:')
    assert "warning: the password is too weak" in made.stderr


def test_users_list_without_users_says_who_logs_in(tmp_path: Path, failed_url: str) -> None:
    config = tmp_path / "qadmin.toml"
    config.write_text("[web]\n", encoding="utf-8")
    # no backend created yet: the users are still listed
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert "whoever logs in with it is an admin" in run_cli("users", "list", "--url", missing, config=config).stdout
    assert json.loads(run_cli("users", "list", "--json", "--url", missing, config=config).stdout) == []
    ops = Ops.open(failed_url, face="web", actor="sam@127.0.0.1")
    try:
        ops.pause("email")
    finally:
        ops.close()
    assert "Recent web actions by: sam" in run_cli("users", "--url", failed_url, config=config).stdout


def test_a_bad_users_table_is_one_error_line(tmp_path: Path) -> None:
    config = tmp_path / "qadmin.toml"
    config.write_text('[users.alice]\npassword = "hunter2"\nrole = "admin"\n', encoding="utf-8")
    result = run_cli("users", "list", config=config)
    assert result.exit_code == 2
    assert "[users.alice]: unknown setting 'password': store its hash as password_hash" in result.stderr
    assert "hunter2" not in result.stderr


def test_users_and_a_shared_password_together_are_refused(
    tmp_path: Path, failed_url: str, no_env_password: None
) -> None:
    from qadmin.access import hash_password
    from qadmin.web.serve import build

    config = tmp_path / "qadmin.toml"
    users = f'[users.alice]\npassword_hash = "{hash_password(PASSWORD, cost=(2**14, 8, 1))}"\nrole = "admin"\n'
    config.write_text('[web]\npassword = "a-Shared-password-99"\n' + users, encoding="utf-8")
    with pytest.raises(ConfigError, match="both \\[users\\] and a shared password"):
        build(resolve(url=failed_url, config_file=str(config), environ={}), port=0)
    # with users alone, any address may be listened on: each user has their own password
    config.write_text(users, encoding="utf-8")
    server = build(resolve(url=failed_url, config_file=str(config), environ={}), host="0.0.0.0", port=0)
    server.close()


def test_cli_actions_are_audited_under_the_os_account(failed_url: str) -> None:
    ops = Ops.open(failed_url, face="test")
    try:
        job_id = ops.list_jobs(FAILED, limit=1).jobs[0].id
        assert run_cli("retry", str(job_id), "--url", failed_url).exit_code == 0
        entry = ops.audit(limit=1)[0]
        assert (entry.verb, entry.face, entry.actor) == ("retry", "cli", getpass.getuser())
        assert run_cli("pause", "email", "--url", failed_url).exit_code == 0
        entry = ops.audit(limit=1)[0]
        assert (entry.verb, entry.face, entry.actor) == ("pause", "cli", getpass.getuser())
    finally:
        ops.close()
