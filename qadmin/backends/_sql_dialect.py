"""The only place that branches on the SQL dialect (locking, BEGIN, URLs)."""

from __future__ import annotations

import importlib.util
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` use psycopg 3 when it is installed."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + rest
        return "postgresql://" + rest
    return url


def create_engine(url: str) -> sa.Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    return sa.create_engine(url, **kwargs)


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE for writers.

    SQLAlchemy silently drops FOR UPDATE on SQLite, so concurrent claimers are serialised by
    taking the write lock at BEGIN; readers (`qadmin_read` connections) begin deferred so a
    listing never waits for a worker.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("qadmin_read"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def skip_locked(engine: sa.Engine) -> bool:
    """Whether `SELECT … FOR UPDATE SKIP LOCKED` is available (PostgreSQL, MySQL ≥ 8)."""
    name = engine.dialect.name
    if name == "postgresql":
        return True
    if name in ("mysql", "mariadb"):
        info = getattr(engine.dialect, "server_version_info", None) or ()
        is_maria = getattr(engine.dialect, "is_mariadb", False)
        return bool(info) and (info >= (10, 6) if is_maria else info >= (8, 0, 1))
    return False


def row_locks(engine: sa.Engine) -> bool:
    return engine.dialect.name != "sqlite"
