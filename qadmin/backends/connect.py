"""`open_backend(url)`: the one place a URL becomes a backend. Drivers are imported only for the
scheme in use."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from qadmin.backends.base import Backend, BackendOptions
from qadmin.errors import ConfigError

#: URL schemes qadmin knows, for error messages
KNOWN_SCHEMES = (
    "sqlite://",
    "postgresql://",
    "postgres://",
    "postgresql+psycopg://",
    "redis://",
    "rediss://",
)

#: the install command for a driver module that is missing, by module name
DRIVER_INSTALL = {
    "psycopg": "pip install 'qadmin[postgres]'",
    "psycopg2": "pip install 'qadmin[postgres]'",
    "redis": "pip install 'qadmin[redis]'",
}


def open_backend(url: str, options: BackendOptions | None = None) -> Backend:
    """Open the backend a URL names. Drivers are imported only for the scheme in use.

    A URL that cannot be read, or whose driver is not installed, is one ConfigError that says
    what to fix (never a driver's traceback)."""
    options = options or BackendOptions()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    base = scheme.split("+", 1)[0]
    if base in ("sqlite", "postgresql", "postgres", "redis", "rediss"):
        _check_url(url, base)
    try:
        if base in ("sqlite", "postgresql", "postgres"):
            import sqlalchemy.exc

            from qadmin.backends.sql import SqlBackend

            try:
                return SqlBackend(url, options)
            except sqlalchemy.exc.NoSuchModuleError:
                raise ConfigError(
                    f"unknown SQL driver in {scheme}://; known schemes: {', '.join(KNOWN_SCHEMES)}"
                ) from None
            except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
                raise ConfigError(f"bad URL {_redacted(url)}: {exc}") from None
        if base in ("redis", "rediss"):
            from qadmin.backends.redis import RedisBackend

            return RedisBackend(url, options)
    except ImportError as exc:
        module = (exc.name or "").split(".", 1)[0]
        if module not in DRIVER_INSTALL:
            raise
        raise ConfigError(
            f"{scheme}:// needs the {module} driver, which is not installed: {DRIVER_INSTALL[module]}"
        ) from None
    raise ConfigError(f"unknown URL scheme {scheme + '://' if scheme else url!r}; known: {', '.join(KNOWN_SCHEMES)}")


def _redacted(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _check_url(url: str, base: str) -> None:
    """Refuse what drivers would misread or crash on: a broken host or port, and a Redis
    database that is not a number (redis-py quietly uses database 0 for `redis://host/abc`)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError as exc:
        raise ConfigError(f"bad URL {_redacted(url)}: {exc}") from None
    if base.startswith("redis") and not url.lower().startswith("redis+sentinel"):
        db = parts.path.strip("/")
        if db and not (db.isascii() and db.isdigit() and int(db) < 2**31):
            raise ConfigError(
                f"bad Redis URL {_redacted(url)}: the database {db!r} is not a number (redis://HOST:PORT/0)"
            )
