"""`[users.NAME]` in qadmin.toml (qadmin.access.read_users): roles, hashes where hashes belong, clear
errors otherwise; the password and token hashes, compatible with werkzeug's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from werkzeug.security import check_password_hash, generate_password_hash

from qadmin.access import (
    Role,
    User,
    check_password,
    check_token,
    hash_password,
    hash_token,
    new_token,
    password_hash_problem,
    read_users,
)
from qadmin.config import load_config
from qadmin.errors import ConfigError

CHEAP = (2**14, 8, 1)
HASH = hash_password("s3cret-pass", cost=CHEAP)


def test_users_are_read_with_their_roles_and_hashes(tmp_path: Path) -> None:
    token_hash = hash_token("tok")
    path = tmp_path / "qadmin.toml"
    path.write_text(
        f'[users.alice]\npassword_hash = "{HASH}"\nrole = "Operator"\n'
        f'[users."bob@example.com"]\ntoken_hash = "{token_hash}"\nrole = "viewer"\n',
        encoding="utf-8",
    )
    users = load_config(str(path)).users
    assert users == (
        User("alice", Role.OPERATOR, HASH, None),
        User("bob@example.com", Role.VIEWER, None, token_hash),
    )
    assert users[0].to_dict() == {"name": "alice", "role": "operator", "password": True, "token": False}
    # a hash never shows in a repr (a log line, a traceback)
    assert HASH not in repr(users) and token_hash not in repr(users)
    assert load_config(str(tmp_path / "qadmin.toml")).users[0].role.may_act()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"a": {"password": "hunter2", "role": "admin"}},
            "unknown setting 'password': store its hash as password_hash",
        ),
        ({"a": {"password_hash": "hunter2", "role": "admin"}}, "not a password hash (a plain password must never"),
        ({"a": {"password_hash": HASH}}, "[users.a] needs a role: viewer, operator or admin"),
        ({"a": {"password_hash": HASH, "role": "root"}}, "unknown role 'root'; expected one of"),
        ({"a": {"password_hash": HASH, "role": 3}}, "unknown role '3'"),
        ({"a": {"role": "viewer"}}, "needs a password_hash (qadmin users hash-password) or a token_hash"),
        ({"a": {"token_hash": "tok", "role": "viewer"}}, "token_hash: not a token hash"),
        ({"a": {"password_hash": 5, "role": "viewer"}}, "password_hash must be a string"),
        ({"a b": {"password_hash": HASH, "role": "viewer"}}, "printable, without spaces"),
        ({"a": "admin"}, "[users.a] must be a table"),
        (
            {"a": {"password_hash": "pbkdf2:sha256:1000$salt$abcdef", "role": "viewer"}},
            "pbkdf2:sha256 needs 600000 to 10000000 iterations",
        ),
        ({"a": {"password_hash": "scrypt:1024:8:1$salt$abcdef", "role": "viewer"}}, "scrypt's N must be a power of 2"),
        ({"a": {"password_hash": "md5$salt$abcdef", "role": "viewer"}}, "not a password hash"),
    ],
)
def test_bad_users_are_refused_with_a_clear_error(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        read_users(table, Path("q.toml"))
    assert str(raised.value).startswith("q.toml: [users.")
    assert "hunter2" not in str(raised.value)  # a password in the wrong place is not repeated


def test_users_must_be_tables() -> None:
    assert read_users(None) == ()
    with pytest.raises(ConfigError, match=re.escape("[users] must hold tables [users.NAME]")):
        read_users(["alice"])


def test_password_hashes_round_trip_and_match_werkzeugs_format() -> None:
    made = hash_password("pässword €")
    assert made.startswith("scrypt:32768:8:1$") and password_hash_problem(made) is None
    assert check_password(made, "pässword €") and not check_password(made, "password")
    assert check_password_hash(made, "pässword €")  # Flask's own tools read it
    for theirs in (generate_password_hash("pw"), generate_password_hash("pw", method="pbkdf2")):
        assert (
            password_hash_problem(theirs) is None and check_password(theirs, "pw") and not check_password(theirs, "x")
        )
    assert hash_password("pw") != hash_password("pw")  # salted
    assert not check_password("not a hash", "not a hash")


def test_api_tokens_are_random_and_kept_as_sha256() -> None:
    token = new_token()
    assert len(token) >= 32 and new_token() != token
    stored = hash_token(token)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", stored)
    assert check_token(stored, token) and not check_token(stored, token + "x")


@pytest.mark.parametrize(
    ("name", "address", "role"),
    [("alice", "10.0.0.7", Role.OPERATOR), ("bob@example.com", "::1", Role.VIEWER), ("sam", "127.0.0.1", None)],
)
def test_the_web_actor_names_its_user(name: str, address: str, role: Role | None) -> None:
    from qadmin.access import actor_name, audit_actor

    actor = audit_actor(name, address, role)
    assert actor == f"{name}@{address}" + (f" ({role.label})" if role else "")
    assert actor_name(actor) == name
    assert actor_name("ops") == "ops"  # the CLI's and the TUI's: the account alone
