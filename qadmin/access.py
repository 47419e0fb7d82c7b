"""Who may do what: the three roles every face checks, weakest first.

- a **viewer** reads everything (payloads redacted as configured) and changes nothing;
- an **operator** also acts on jobs, queues, schedules and workers (retry, delete, enqueue, edit,
  cancel, pause, prune…);
- an **admin** also sees redacted values in full, on request (each reveal audited), and manages
  what only an admin should (the web's users are read from `qadmin.toml`, never written by qadmin).

The web takes a request's role from its user (`[users.NAME]` in `qadmin.toml`, or a trusted
proxy's header); the CLI and the TUI run as the local account that can reach the backend anyway,
so they act as an admin and record that account's name as the audit's user.

The users are `[users.NAME]` tables (`read_users`, called by qadmin.config): a role and hashes,
never a password. Passwords are kept as salted scrypt (or PBKDF2) hashes in werkzeug's format
(`hash_password`, `check_password`), API tokens as SHA-256 of 192 random bits (`new_token`,
`hash_token`); `qadmin users hash-password` and `qadmin users new-token` print the lines to paste.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qadmin.errors import ConfigError


class Role(enum.IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        """A role from its name (any case); ValueError naming the three otherwise."""
        try:
            return cls[str(text).strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}; expected one of: viewer, operator, admin") from None

    @property
    def label(self) -> str:
        return self.name.lower()

    def may_act(self) -> bool:
        """Whether this role may change anything (every verb but reading)."""
        return self >= Role.OPERATOR

    def may_reveal(self) -> bool:
        """Whether this role may ask for redacted values in full."""
        return self >= Role.ADMIN


#: what a user's name may hold: printable and short, as it is shown in the header and the audit
#: log (an e-mail address is a good name, as a reverse proxy sends one)
MAX_NAME = 64
#: the settings a `[users.NAME]` table may hold
USER_KEYS = ("password_hash", "role", "token_hash")
#: scrypt's work factor (n, r, p) for new hashes: werkzeug's default, about 32 MiB and 50-100 ms
SCRYPT_COST = (2**15, 8, 1)
#: the least work a stored hash may ask for: anything cheaper is refused as a weak hash
MIN_SCRYPT_N = 2**14
#: PBKDF2's iterations, at least (OWASP's advice for each digest)
MIN_PBKDF2_ITERATIONS = {"sha256": 600_000, "sha512": 210_000}
#: the most work a stored hash may ask for, so that a typo in the file cannot make each login
#: take minutes (or all the memory)
MAX_SCRYPT_N = 2**20
MAX_PBKDF2_ITERATIONS = 10_000_000
#: the prefix of a hashed API token (`token_hash`)
TOKEN_PREFIX = "sha256:"


@dataclass(frozen=True)
class User:
    """A `[users.NAME]` table of `qadmin.toml`: a person (or a script) and their role. Only hashes
    are kept: the password checked by a slow salted hash, the API token by SHA-256."""

    name: str
    role: Role
    password_hash: str | None = field(default=None, repr=False)
    token_hash: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """What `qadmin users list --json` shows: never a hash."""
        return {
            "name": self.name,
            "role": self.role.label,
            "password": self.password_hash is not None,
            "token": self.token_hash is not None,
        }


def read_users(table: Any, path: Path | None = None) -> tuple[User, ...]:
    """`[users.NAME]` tables, checked: a known role, hashes where hashes belong (never a plain
    password), at least one way to log in. A ConfigError names the file, the user and the fault."""
    where = f"{path}: " if path else ""
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise ConfigError(f"{where}[users] must hold tables [users.NAME]")
    users = []
    for name, entry in table.items():
        label = f"{where}[users.{name}]"
        problem = name_problem(name)
        if problem:
            raise ConfigError(f"{label}: {problem}")
        if not isinstance(entry, dict):
            raise ConfigError(f"{label} must be a table with password_hash and role")
        unknown = sorted(set(entry) - set(USER_KEYS))
        if unknown:
            hint = ": store its hash as password_hash (qadmin users hash-password)" if unknown[0] == "password" else ""
            raise ConfigError(f"{label}: unknown setting {unknown[0]!r}{hint}; known: {', '.join(USER_KEYS)}")
        if "role" not in entry:
            raise ConfigError(f"{label} needs a role: viewer, operator or admin")
        try:
            role = Role.parse(entry["role"] if isinstance(entry["role"], str) else repr(entry["role"]))
        except ValueError as exc:
            raise ConfigError(f"{label}: {exc}") from None
        password_hash = _hash_setting(entry, "password_hash", label, password_hash_problem)
        token_hash = _hash_setting(entry, "token_hash", label, token_hash_problem)
        if password_hash is None and token_hash is None:
            raise ConfigError(
                f"{label} needs a password_hash (qadmin users hash-password) or a token_hash (qadmin users new-token)"
            )
        users.append(User(name=name, role=role, password_hash=password_hash, token_hash=token_hash))
    return tuple(users)


def _hash_setting(entry: dict[str, Any], key: str, label: str, check: Callable[[str], str | None]) -> str | None:
    if key not in entry:
        return None
    value = entry[key]
    if not isinstance(value, str):
        raise ConfigError(f"{label} {key} must be a string")
    problem = check(value)
    if problem:
        # the value itself is never repeated: it may be a password typed in the wrong place
        raise ConfigError(f"{label} {key}: {problem}")
    return value


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a user's name (shown in headers and audit entries), or None."""
    if not name or len(name) > MAX_NAME:
        return f"a user's name must be 1 to {MAX_NAME} characters"
    if not all(c.isprintable() and not c.isspace() for c in name):
        return "a user's name must be printable, without spaces"
    return None


def audit_actor(name: str, address: str, role: Role | None = None) -> str:
    """The web's audit actor: `name@address`, and the role when it is vouched for (a configured
    user's or a proxy's): `alice@10.0.0.7 (operator)`. The audit keeps one text (its stored
    formats have no role field), so the role travels in it."""
    who = f"{name}@{address}"
    return f"{who} ({role.label})" if role is not None else who


def actor_name(actor: str) -> str:
    """The user's name in a web audit actor (`audit_actor`'s inverse; a name may hold an `@`)."""
    base, _, suffix = actor.rpartition(" (")
    if base and suffix.endswith(")") and suffix[:-1] in {r.label for r in Role}:
        actor = base
    return actor.rpartition("@")[0] or actor


# --- hashes ------------------------------------------------------------------------------------
# The formats are werkzeug's (`generate_password_hash`), so that a hash made by Flask's own tools
# works too; computed here with hashlib, as the core imports no web library.


def hash_password(password: str, *, cost: tuple[int, int, int] = SCRYPT_COST) -> str:
    """`scrypt:N:R:P$SALT$HEX` for `password`, with a fresh random salt."""
    n, r, p = cost
    salt = "".join(secrets.choice(_SALT_CHARS) for _ in range(16))
    return f"scrypt:{n}:{r}:{p}${salt}${_scrypt(password, salt, n, r, p)}"


def check_password(stored: str, password: str) -> bool:
    """Whether `password` matches the stored hash, compared in constant time; False for a hash
    this module would not accept (read_users refuses those before any login)."""
    parsed = _parse_password_hash(stored)
    if isinstance(parsed, str):
        return False
    method, params, salt, expected = parsed
    if method == "scrypt":
        n, r, p = params
        computed = _scrypt(password, salt, int(n), int(r), int(p))
    else:
        digest, iterations = params
        computed = hashlib.pbkdf2_hmac(str(digest), _utf8(password), salt.encode(), int(iterations)).hex()
    return hmac.compare_digest(computed, expected)


def password_hash_problem(stored: str) -> str | None:
    """Why `stored` is not a password hash qadmin accepts, in words; None when it is one."""
    parsed = _parse_password_hash(stored)
    return parsed if isinstance(parsed, str) else None


def new_token() -> str:
    """A random API token (192 bits): unguessable, so a fast hash of it is safe to store."""
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """`sha256:HEX` of an API token. A token is random and long, unlike a password: no guess
    list reaches it, so it needs no slow hash, and each API request checks it at no cost."""
    return TOKEN_PREFIX + hashlib.sha256(_utf8(token)).hexdigest()


def check_token(stored: str, token: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored)


def token_hash_problem(stored: str) -> str | None:
    body = stored[len(TOKEN_PREFIX) :] if stored.startswith(TOKEN_PREFIX) else None
    if body is None or len(body) != 64 or any(c not in "0123456789abcdef" for c in body):
        return "not a token hash: expected sha256: and 64 hex digits, as qadmin users new-token prints"
    return None


_SALT_CHARS = string.ascii_letters + string.digits
_HEX = frozenset("0123456789abcdef")
_NOT_A_HASH = (
    "not a password hash (a plain password must never be stored): paste the line qadmin users hash-password prints"
)


def _parse_password_hash(stored: str) -> tuple[str, tuple[int | str, ...], str, str] | str:
    """(method, parameters, salt, hex digest) of a stored hash, or why it is refused."""
    method, _, rest = stored.partition("$")
    salt, _, expected = rest.partition("$")
    kind, *params = method.split(":")
    if kind not in ("scrypt", "pbkdf2") or not salt or not expected or set(expected) - _HEX:
        return _NOT_A_HASH
    if kind == "scrypt":
        try:
            n, r, p = (int(v) for v in params)
        except ValueError:
            return "a scrypt hash must say its cost as scrypt:N:R:P"
        if n < MIN_SCRYPT_N or n > MAX_SCRYPT_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
            return f"scrypt's N must be a power of 2 from {MIN_SCRYPT_N} to {MAX_SCRYPT_N} (R 1-32, P 1-16)"
        return kind, (n, r, p), salt, expected
    if len(params) != 2 or params[0] not in MIN_PBKDF2_ITERATIONS or not params[1].isdigit():
        return "a pbkdf2 hash must say pbkdf2:sha256:ITERATIONS (or sha512)"
    digest, iterations = params[0], int(params[1])
    least = MIN_PBKDF2_ITERATIONS[digest]
    if not least <= iterations <= MAX_PBKDF2_ITERATIONS:
        return f"pbkdf2:{digest} needs {least} to {MAX_PBKDF2_ITERATIONS} iterations: make a new hash"
    return kind, (digest, iterations), salt, expected


def _scrypt(password: str, salt: str, n: int, r: int, p: int) -> str:
    # werkzeug's memory bound, "ideally 128, but some extra seems needed"
    return hashlib.scrypt(_utf8(password), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p).hex()


def _utf8(text: str) -> bytes:
    # a lone surrogate (bytes that were not UTF-8) still hashes, and never matches a real password
    return text.encode("utf-8", "surrogatepass")
