"""Reads never write (issue 14.10): pointed at a database that is not (yet) qadmin's, a read command
changes nothing in it; `init`, `enqueue` and the worker create tables only where qadmin
recognises the layout, and say in one line what they found where it does not. In-memory SQLite
URLs are refused in one line (14.12)."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.interop._support import cli

READS = [
    ["stats"],
    ["stats", "--json"],
    ["jobs"],
    ["jobs", "--json"],
    ["jobs", "--state", "finished"],
    ["queues"],
    ["errors"],
    ["workers"],
    ["show", "1"],
    ["show", "1", "--json"],
]
#: commands that may create qadmin's tables, but only in a database qadmin recognises
CREATORS = [["enqueue", "qadmin.examples.noop"], ["retry", "--failed"], ["pause", "default"]]


def _files(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def _one_line(result: str, *words: str) -> None:
    lines = [line for line in result.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result, result
    for word in words:
        assert word in lines[0], result


def test_an_empty_file_stays_empty(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    url = f"sqlite:///{db}"
    for args in READS + CREATORS:
        _one_line(cli(url, *args, expect=1), "does not exist", "qadmin init")
    worker = subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", url, "worker", "--burst"], capture_output=True, text=True, timeout=120
    )
    assert worker.returncode != 0
    _one_line(worker.stderr, "does not exist")
    assert db.stat().st_size == 0
    assert [p.name for p in tmp_path.iterdir()] == ["empty.db"]  # no WAL, no lock file
    cli(url, "init")
    assert db.stat().st_size > 0
    assert cli(url, "stats", "--json")["queues"] == {}


def test_another_applications_database_is_left_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    before = _files(tmp_path)
    url = f"sqlite:///{db}"
    for args in READS + CREATORS:
        _one_line(cli(url, *args, expect=1), "not a job database", "orders, users")
    _one_line(cli(url, "init", expect=2), "another application's tables", "orders, users")
    worker = subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", url, "worker", "--burst"], capture_output=True, text=True, timeout=120
    )
    assert worker.returncode != 0
    _one_line(worker.stderr, "not a job database", "orders, users")
    assert _files(tmp_path) == before  # same files, same bytes: no table, no WAL switch, no lock file
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_reads_of_a_delayed_job_table_create_no_qadmin_tables(sql_url: str) -> None:
    """A delayed_job database qadmin never wrote to: reads answer from the jobs table alone
    (nothing finished, no pauses, no qadmin workers) and add nothing; a write verb may then add
    qadmin's bookkeeping tables beside it."""
    engine = sa.create_engine(sql_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE delayed_jobs (id INTEGER PRIMARY KEY, priority INTEGER NOT NULL DEFAULT 0, "
                    "attempts INTEGER NOT NULL DEFAULT 0, handler TEXT NOT NULL, last_error TEXT, run_at TIMESTAMP, "
                    "locked_at TIMESTAMP, failed_at TIMESTAMP, locked_by VARCHAR(255), queue VARCHAR(255), "
                    "created_at TIMESTAMP, updated_at TIMESTAMP)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO delayed_jobs (id, handler, queue, run_at, failed_at, last_error, "
                    "locked_at, locked_by) VALUES "
                    "(1, '--- !ruby/object:Struct {}', 'mail', '2026-01-01 00:00:00', NULL, NULL, "
                    "NULL, NULL), "
                    "(2, '{\"class\":\"X\",\"args\":[]}', 'mail', '2026-01-01 00:00:00', "
                    "'2026-01-01 00:00:01', 'Boom', NULL, NULL), "
                    '(3, \'{"class":"X","args":[]}\', NULL, \'2026-01-01 00:00:00\', NULL, NULL, '
                    "'2026-01-01 00:00:00', 'host:elsewhere pid:1')"
                )
            )

        def tables() -> list[str]:
            with engine.connect() as conn:
                return sorted(sa.inspect(conn).get_table_names())

        for args in READS + [["jobs", "--search", "boom"], ["jobs", "--state", "stale"], ["audit"]]:
            cli(sql_url, *args)
        assert tables() == ["delayed_jobs"]
        stats = cli(sql_url, "stats", "--json")
        assert stats["queues"]["mail"]["failed"] == 1 and stats["processed"] == 0
        assert [j["id"] for j in cli(sql_url, "jobs", "--json")] == [1, 2, 3]
        assert cli(sql_url, "retry", "--failed", "--json")["changed"] == 1
        assert "qadmin_audit" in tables()
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:mem?mode=memory&uri=true"])
def test_in_memory_sqlite_is_refused_in_one_line(url: str) -> None:
    for args in (["init"], ["stats"], ["enqueue", "qadmin.examples.noop"]):
        _one_line(cli(url, *args, expect=2), "in-memory", "sqlite:///qadmin.db")


def test_reads_use_the_qadmin_tables_an_earlier_qadmin_made_and_add_none(sql_url: str) -> None:
    """A database where only some of qadmin's tables exist (an earlier qadmin made fewer): reads
    show what those hold, and create the missing ones no more than any other."""
    from qadmin.backends import open_backend
    from qadmin.job import NewJob, utcnow

    backend = open_backend(sql_url)
    backend.init()
    backend.enqueue(NewJob("qadmin.examples.noop", ["x"]))
    job = backend.claim(["*"], "w", utcnow(), 3600.0, lambda j: True)
    backend.complete(job, "w", utcnow(), 0.1)
    backend.close()
    engine = sa.create_engine(sql_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE qadmin_unique"))
        stats = cli(sql_url, "stats", "--json")
        assert stats["queues"]["default"]["finished"] == 1 and stats["processed"] == 1
        assert [j["state"] for j in cli(sql_url, "jobs", "--state", "finished", "--json")] == ["finished"]
        with engine.connect() as conn:
            assert "qadmin_unique" not in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
