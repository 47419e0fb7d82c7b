"""qadmin as the admin console of a DJJob (PHP) `jobs` table (issue 2).

The handlers are made by the real `php` binary (tests/interop/djjob_handlers.php: public,
protected and private properties, a namespaced class, multibyte and binary strings). The rows
are written with DJJob's own SQL (seatgeek/djjob DJJob.php: enqueue, lock, finishWithError),
translated from MySQL, into DJJob's `jobs.sql` table translated to SQLite and PostgreSQL
(docs/compatibility.md §5.1). DJJob itself needs a MySQL PDO connection, so its worker is reproduced
where it matters: its candidate query picks the rows qadmin gave back, and PHP's
`unserialize()` + `perform()` run the handlers qadmin left in the table.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from qadmin.backends import BackendOptions
from qadmin.errors import MissingTable
from qadmin.filters import JobFilter
from qadmin.ops import Ops
from tests.interop._support import HERE, cli, need_php, qadmin_worker_burst

PHP_SCRIPT = HERE / "djjob_handlers.php"
HOST = socket.gethostname()

#: DJJob's jobs.sql, column for column; AUTO_INCREMENT/UNSIGNED/DATETIME translated. PostgreSQL's
#: handler is BYTEA: a TEXT column there cannot hold the NUL bytes of protected/private property
#: names (MySQL's TEXT can; DJJob's README suggests a BLOB for binary data anyway).
JOBS_SQL = {
    "sqlite": """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            handler TEXT NOT NULL,
            queue VARCHAR(255) NOT NULL DEFAULT 'default',
            attempts INTEGER NOT NULL DEFAULT 0,
            run_at DATETIME NULL,
            locked_at DATETIME NULL,
            locked_by VARCHAR(255) NULL,
            failed_at DATETIME NULL,
            error TEXT NULL,
            created_at DATETIME NOT NULL
        )""",
    "postgresql": """
        CREATE TABLE jobs (
            id SERIAL PRIMARY KEY,
            handler BYTEA NOT NULL,
            queue VARCHAR(255) NOT NULL DEFAULT 'default',
            attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            run_at TIMESTAMP NULL,
            locked_at TIMESTAMP NULL,
            locked_by VARCHAR(255) NULL,
            failed_at TIMESTAMP NULL,
            error TEXT NULL,
            created_at TIMESTAMP NOT NULL
        )""",
}
MAX_ATTEMPTS = 5  # DJJob's default


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class DJJobTable:
    """A DJJob `jobs` table, written with DJJob's own statements."""

    def __init__(self, url: str, handlers: dict[str, bytes], name: str = "jobs") -> None:
        self.url = url
        self.handlers = handlers
        self.name = name
        self.engine = sa.create_engine(url)
        self.kind = self.engine.dialect.name
        self.ids: dict[str, int] = {}
        with self.engine.begin() as conn:
            # jobs.sql says: "replace `jobs` with your table name" for another name
            conn.exec_driver_sql(JOBS_SQL[self.kind].replace("CREATE TABLE jobs", f"CREATE TABLE {name}"))

    def close(self) -> None:
        self.engine.dispose()

    def _handler_param(self, raw: bytes) -> Any:
        if self.kind == "postgresql":
            return raw
        try:
            return raw.decode("utf-8")  # PDO binds a PHP string as TEXT
        except UnicodeDecodeError:
            return None  # bound as a blob and cast, below: the same bytes in a TEXT value

    def enqueue(self, label: str, handler: str, queue: str = "default", run_at: datetime | None = None) -> int:
        # DJJob::enqueue: INSERT INTO jobs (handler, queue, run_at, created_at) VALUES(?, ?, ?, NOW())
        raw = self.handlers[handler]
        text = self._handler_param(raw)
        value = "CAST(:blob AS TEXT)" if text is None else ":handler"
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"INSERT INTO {self.name} (handler, queue, run_at, created_at) "
                    f"VALUES({value}, :queue, :run_at, :now)"
                ),
                {"handler": text, "blob": raw, "queue": queue, "run_at": run_at, "now": _now()},
            )
            job_id = conn.execute(sa.text(f"SELECT max(id) FROM {self.name}")).scalar_one()
        self.ids[label] = job_id
        return job_id

    def lock(self, label: str, worker: str, at: datetime | None = None) -> None:
        # DJJob::acquireLock
        with self.engine.begin() as conn:
            changed = conn.execute(
                sa.text(
                    f"UPDATE {self.name} SET locked_at = :now, locked_by = :name "
                    "WHERE id = :id AND (locked_at IS NULL OR locked_by = :name) AND failed_at IS NULL"
                ),
                {"now": at or _now(), "name": worker, "id": self.ids[label]},
            ).rowcount
        assert changed == 1

    def fail(self, label: str, error: str, worker: str) -> None:
        """DJJob::finishWithError as MySQL runs it (SET sees the incremented attempts), then releaseLock."""
        self.lock(label, worker)
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"UPDATE {self.name} SET attempts = attempts + 1, "
                    "failed_at = CASE WHEN attempts + 1 >= :max THEN :now ELSE NULL END, "
                    "error = CASE WHEN attempts + 1 >= :max THEN :error ELSE NULL END WHERE id = :id"
                ),
                {"max": MAX_ATTEMPTS, "now": _now(), "error": error, "id": self.ids[label]},
            )
            conn.execute(
                sa.text(f"UPDATE {self.name} SET locked_at = NULL, locked_by = NULL WHERE id = :id"),
                {"id": self.ids[label]},
            )

    def retry_later(self, label: str, delay: int) -> None:
        # DJJob::retryLater (a DJRetryException)
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE {self.name} SET run_at = :at, attempts = attempts + 1 WHERE id = :id"),
                {"at": _now() + timedelta(seconds=delay), "id": self.ids[label]},
            )

    def candidates(self, queue: str, worker: str, mysql_now: bool = False) -> list[int]:
        # DJWorker::getNewJob's query (NOW() passed in). `mysql_now`: NOW() as MySQL gives it,
        # whole seconds (on SQLite the DATETIME text MySQL would compare, without a fraction)
        now: Any = _now()
        if mysql_now:
            now = now.replace(microsecond=0)
            if self.kind == "sqlite":
                now = now.strftime("%Y-%m-%d %H:%M:%S")
        with self.engine.connect() as conn:
            return sorted(
                conn.execute(
                    sa.text(
                        f"SELECT id FROM {self.name} WHERE queue = :queue AND (run_at IS NULL OR :now >= run_at) "
                        "AND (locked_at IS NULL OR locked_by = :name) AND failed_at IS NULL AND attempts < :max "
                        "ORDER BY created_at DESC LIMIT 10"
                    ),
                    {"queue": queue, "now": now, "name": worker, "max": MAX_ATTEMPTS},
                ).scalars()
            )

    def fractions(self) -> dict[int, list[str]]:
        """Per row, the time columns that hold a fraction of a second (DJJob's never do)."""
        columns = ("run_at", "locked_at", "failed_at", "created_at")
        with self.engine.connect() as conn:
            if self.kind == "sqlite":  # the text as stored
                rows = conn.execute(
                    sa.text(f"SELECT id, {', '.join(f'CAST({c} AS TEXT)' for c in columns)} FROM {self.name}")
                ).all()
                return {r[0]: [c for c, v in zip(columns, r[1:]) if v is not None and "." in v] for r in rows}
            rows = conn.execute(sa.text(f"SELECT id, {', '.join(columns)} FROM {self.name}")).all()
            return {r[0]: [c for c, v in zip(columns, r[1:]) if v is not None and v.microsecond] for r in rows}

    def rows(self) -> dict[int, dict[str, Any]]:
        with self.engine.connect() as conn:
            # the handler's bytes exactly, whatever their encoding
            handler = "CAST(handler AS BLOB)" if self.kind == "sqlite" else "handler"
            query = (
                f"SELECT id, queue, attempts, run_at, locked_at, locked_by, failed_at, error, created_at, "
                f"{handler} AS handler_bytes FROM {self.name} ORDER BY id"
            )
            out = {}
            for r in conn.execute(sa.text(query)).mappings():
                out[r["id"]] = {**r, "handler_bytes": bytes(r["handler_bytes"])}
            return out


def _php(php: str, *args: str, stdin: str | None = None) -> dict[str, str]:
    res = subprocess.run([php, str(PHP_SCRIPT), *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"php {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return json.loads(res.stdout)


@pytest.fixture
def djjob(sql_url: str, tmp_path: Path):
    php = need_php()
    handlers = {k: base64.b64decode(v) for k, v in _php(php, "make").items()}
    table = DJJobTable(sql_url, handlers)
    worker = f"host::{HOST} pid::4242"
    table.enqueue("hello", "hello")
    table.enqueue("mixed", "mixed", queue="email")
    table.enqueue("binary", "binary")
    table.enqueue("send_mail", "send_mail", queue="email")
    table.enqueue("child", "child")
    table.enqueue("not_an_object", "not_an_object")
    table.enqueue("retry_later", "hello")
    table.enqueue("dead_lock", "hello")
    table.enqueue("old_lock", "hello")
    table.enqueue("live_lock", "hello")
    with table.engine.begin() as conn:  # four failed attempts already
        conn.execute(
            sa.text(f"UPDATE {table.name} SET attempts = 4 WHERE id IN (:a, :b, :c)"),
            {"a": table.ids["send_mail"], "b": table.ids["child"], "c": table.ids["not_an_object"]},
        )
    table.fail("send_mail", "SMTP connect() failed: Connection refused", worker)
    table.fail("child", 'Undefined array key "user"', worker)
    table.fail("not_an_object", f"[JOB] bad handler for job::{table.ids['not_an_object']}", worker)
    table.retry_later("retry_later", 7200)
    table.lock("dead_lock", f"host::{HOST} pid::{_dead_pid()}")
    table.lock("old_lock", "host::otherbox pid::77", at=_now() - timedelta(hours=5))
    table.lock("live_lock", f"host::{HOST} pid::1")
    table.php = php  # type: ignore[attr-defined]
    table.log = tmp_path / "php.log"  # type: ignore[attr-defined]
    yield table
    table.close()


def _jobs(url: str, *args: str) -> dict[int, dict[str, Any]]:
    return {j["id"]: j for j in cli(url, "jobs", "--limit", "100", "--json", *args)}


def _labels(table: DJJobTable, jobs: dict[int, Any]) -> set[str]:
    names = {v: k for k, v in table.ids.items()}
    return {names[i] for i in jobs}


def test_lists_djjob_rows_decoded_with_php_property_visibility(djjob: DJJobTable) -> None:
    url, ids = djjob.url, djjob.ids
    jobs = _jobs(url)  # no --table: DJJob's `jobs` table is found by itself
    assert set(jobs) == set(ids.values())
    j = {label: jobs[i] for label, i in ids.items()}

    assert (j["hello"]["class"], j["hello"]["kwargs"], j["hello"]["state"]) == (
        "HelloWorldJob",
        {"name": "delayed_job"},
        "pending",
    )
    assert j["hello"]["queue"] == "default" and j["hello"]["format"] == "djjob"
    assert j["hello"]["priority"] == 0  # DJJob has no priority column
    assert j["mixed"]["class"] == "MixedJob"
    assert j["mixed"]["kwargs"] == {
        "pub": 1,
        "prot (protected)": "p",
        "priv (private MixedJob)": 2.5,
        "n": None,
        "b": True,
        "arr": {"a": 1, "0": "x", "5": []},
    }
    assert j["send_mail"]["class"] == "App\\Jobs\\SendMail"
    assert j["send_mail"]["kwargs"] == {
        "to": "zoë@example.com",
        "subject (protected)": "Grüße ✓",
        "body (private App\\Jobs\\SendMail)": "héllo wörld",
    }
    # a property named "secret" is redacted in listings ([redact]'s defaults); the admin's reveal
    # shows what was decoded: both private properties, each with its declaring class
    assert j["child"]["kwargs"] == {
        "secret (private Parent1)": "[redacted]",
        "secret (private Child1)": "[redacted]",
        "p": "日本語",
    }
    revealed = cli(url, "show", str(ids["child"]), "--reveal", "--json")
    assert revealed["kwargs"] == {"secret (private Parent1)": "p", "secret (private Child1)": "c", "p": "日本語"}
    assert j["binary"]["class"] == "BinaryJob" and "undecodable" not in j["binary"]

    # DJJob's `error` column is qadmin's last_error; a failed row carries no lock
    for label, error in (
        ("send_mail", "SMTP connect() failed: Connection refused"),
        ("child", 'Undefined array key "user"'),
    ):
        assert (j[label]["state"], j[label]["attempts"], j[label]["last_error"]) == ("failed", 5, error)
        assert j[label]["locked_by"] is None
    # a handler that is not an object is listed as undecodable, raw text visible
    bad = j["not_an_object"]
    assert bad["state"] == "failed" and bad["undecodable"] and bad["raw"] == 's:13:"just a string";'
    assert j["retry_later"]["state"] == "scheduled" and j["retry_later"]["attempts"] == 1

    # DJJob lock owners `host::H pid::P`: a dead local pid and a 5 h old lock are stale
    assert j["dead_lock"]["locked_by"].startswith(f"host::{HOST} pid::")
    assert j["dead_lock"].get("stale") is True
    assert j["old_lock"].get("stale") is True
    assert j["live_lock"]["state"] == "locked" and "stale" not in j["live_lock"]

    assert _labels(djjob, _jobs(url, "--class", "App\\Jobs\\SendMail")) == {"send_mail"}
    assert _labels(djjob, _jobs(url, "--class", "HelloWorldJob", "--state", "pending")) == {"hello"}
    assert _labels(djjob, _jobs(url, "--search", "Grüße")) == {"send_mail"}
    assert _labels(djjob, _jobs(url, "--state", "stale")) == {"dead_lock", "old_lock"}
    assert _labels(djjob, _jobs(url, "--queue", "email")) == {"mixed", "send_mail"}

    ops = Ops.open(url, options=BackendOptions(), face="test")
    try:
        groups = {g.error: g for g in ops.error_groups()}
        assert groups["SMTP connect() failed: Connection refused"].classes == ["App\\Jobs\\SendMail"]
        assert sum(g.count for g in groups.values()) == 3
        stats = ops.stats()
        assert stats.queues["email"]["failed"] == 1 and stats.queues["default"]["stale"] == 2
        workers = {w.name: w for w in ops.workers()}
        assert workers["host::otherbox pid::77"].stale
        assert workers["host::otherbox pid::77"].host == "otherbox" and workers["host::otherbox pid::77"].pid == 77
        assert not workers[f"host::{HOST} pid::1"].stale
        shown = ops.show(djjob.ids["binary"])
        assert shown.kwargs == {"blob": "\ufffd\ufffd\x00\ufffd"}
    finally:
        ops.close()
    cli(url, "show", str(djjob.ids["send_mail"]), "--json")
    cli(url, "show", str(djjob.ids["binary"]), "--json")
    cli(url, "show", str(djjob.ids["binary"]))


def test_retry_unlock_delete_dequeue_and_djjob_runs_them_again(djjob: DJJobTable) -> None:
    url, ids = djjob.url, djjob.ids
    before = djjob.rows()

    result = cli(url, "retry", "--failed", "--json")
    assert (result["matched"], result["changed"]) == (3, 3)
    # a lock owner is selected by a substring of any format
    assert cli(url, "unlock", "--worker", "host::otherbox", "--dry-run", "--json")["matched"] == 1
    unlocked = cli(url, "unlock", "--stale", "--json")
    assert (unlocked["matched"], unlocked["changed"]) == (2, 2)

    after = djjob.rows()
    for label in ("send_mail", "child", "not_an_object", "dead_lock", "old_lock"):
        old, new = before[ids[label]], after[ids[label]]
        assert (
            new["handler_bytes"]
            == old["handler_bytes"]
            == djjob.handlers[label if label in djjob.handlers else "hello"]
        )
        assert (new["locked_at"], new["locked_by"], new["failed_at"]) == (None, None, None)
    for label in ("send_mail", "child", "not_an_object"):
        assert after[ids[label]]["attempts"] == 0 and after[ids[label]]["run_at"] is not None
    for label in ("hello", "mixed", "binary", "retry_later", "live_lock"):
        assert after[ids[label]] == before[ids[label]]

    # dequeue by decoded class and args-less match, delete by id
    dq = cli(url, "dequeue", "--queue", "email", "--class", "MixedJob", "--json")
    assert (dq["matched"], dq["changed"]) == (1, 1)
    assert cli(url, "dequeue", "--queue", "default", "--class", "MixedJob", "--json")["matched"] == 0
    gone = cli(url, "delete", str(ids["not_an_object"]), "--yes", "--json")
    assert gone["changed"] == 1
    rows = djjob.rows()
    assert ids["mixed"] not in rows and ids["not_an_object"] not in rows

    # DJJob's worker query now finds what qadmin gave back (and not the live lock) ...
    worker = f"host::{HOST} pid::5151"
    ready = {
        label
        for label, i in ids.items()
        if i in set(djjob.candidates("default", worker)) | set(djjob.candidates("email", worker))
    }
    assert ready == {"hello", "binary", "child", "dead_lock", "old_lock", "send_mail"}
    # ... and PHP unserializes and performs the handlers exactly as they are stored
    stored = {
        label: base64.b64encode(rows[ids[label]]["handler_bytes"]).decode()
        for label in ("send_mail", "child", "binary")
    }
    ran = _php(djjob.php, "run", str(djjob.log), stdin=json.dumps(stored))  # type: ignore[attr-defined]
    assert ran == {"send_mail": "performed", "child": "performed", "binary": "performed"}
    log = djjob.log.read_text(encoding="utf-8").splitlines()  # type: ignore[attr-defined]
    assert log == ["send_mail zoë@example.com Grüße ✓ héllo wörld", "child c p 日本語", "binary fffe0081"]


def test_a_qadmin_worker_sharing_a_djjob_table_leaves_php_jobs_untouched(djjob: DJJobTable, tmp_path) -> None:
    url = djjob.url
    before = djjob.rows()
    out = tmp_path / "qadmin-ran.txt"
    cli(url, "enqueue", "qadmin.examples.record", str(out), "py")
    qadmin_worker_burst(url)
    assert out.read_text().split() == ["py"]
    assert djjob.rows() == before
    ops = Ops.open(url, options=BackendOptions(), face="test")
    try:
        assert ops.count(JobFilter(class_name="qadmin.examples.record")) == 0
    finally:
        ops.close()


def test_table_option_names_a_djjob_table_of_another_name(sql_url: str) -> None:
    php = need_php()
    handlers = {k: base64.b64decode(v) for k, v in _php(php, "make").items()}
    table = DJJobTable(sql_url, handlers, name="php_jobs")
    try:
        table.enqueue("send_mail", "send_mail")
        table.fail("send_mail", "SMTP connect() failed", f"host::{HOST} pid::4242")
        for _ in range(MAX_ATTEMPTS - 1):
            table.fail("send_mail", "SMTP connect() failed", f"host::{HOST} pid::4242")
        # nothing to find by itself: neither delayed_jobs nor jobs exists
        assert "does not exist" in cli(sql_url, "jobs", "--json", expect=MissingTable.exit_code)
        [job] = cli(sql_url, "jobs", "--json", table="php_jobs")
        assert (job["class"], job["state"], job["attempts"], job["last_error"]) == (
            "App\\Jobs\\SendMail",
            "failed",
            MAX_ATTEMPTS,
            "SMTP connect() failed",
        )
        assert cli(sql_url, "retry", "--failed", "--json", table="php_jobs")["changed"] == 1
        [row] = table.rows().values()
        assert (row["attempts"], row["failed_at"], row["handler_bytes"]) == (0, None, handlers["send_mail"])
    finally:
        table.close()


def test_times_qadmin_writes_are_whole_seconds_so_djjob_runs_a_retried_job_at_once(djjob: DJJobTable) -> None:
    """DJJob's worker compares MySQL's whole-second NOW() with run_at: a retry's run_at with a
    fraction kept the job back for up to a second (on SQLite, for good: text with a fraction
    sorts after the same second without one)."""
    url, ids = djjob.url, djjob.ids
    worker = f"host::{HOST} pid::5151"
    assert cli(url, "retry", "--failed", "--json")["changed"] == 3
    # every write path: retry above, enqueue, a worker's claim and failure reschedule
    cli(url, "enqueue", "qadmin.examples.sync_inventory", "sku-1", "--queue", "default")
    qadmin_worker_burst(url, "--queue", "default")
    fractions = djjob.fractions()
    for label in ("send_mail", "child", "not_an_object"):  # created by DJJob's side of the test
        assert "run_at" not in fractions[ids[label]]
    [new] = set(fractions) - set(ids.values())
    assert fractions[new] == []
    ready = set(djjob.candidates("default", worker, mysql_now=True)) | set(
        djjob.candidates("email", worker, mysql_now=True)
    )
    assert {ids["send_mail"], ids["child"], ids["not_an_object"]} <= ready
    [failed] = [j for j in cli(url, "jobs", "--class", "qadmin.examples.sync_inventory", "--json")]
    assert failed["attempts"] == 1 and "inventory service timed out" in failed["last_error"]
