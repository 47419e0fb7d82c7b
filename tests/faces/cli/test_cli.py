"""The `qadmin` command line: exit codes 0/1/2, `--json` shapes, and bad input that gets one clear
line, no traceback, and changes nothing. Mostly click's CliRunner on a temporary SQLite database;
a few real subprocesses check what a shell sees."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qadmin.backends import open_backend
from qadmin.cli import main
from qadmin.filters import JobFilter
from qadmin.job import NewJob, utcnow
from tests.servers import free_port

JOB_KEYS = {
    "id",
    "queue",
    "class",
    "args",
    "kwargs",
    "state",
    "priority",
    "attempts",
    "run_at",
    "locked_at",
    "locked_by",
    "failed_at",
    "last_error",
    "created_at",
}


class Cli:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path

    def __call__(self, *args: str, url: str | None = None, input: str | None = None) -> Result:
        runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None})
        with runner.isolated_filesystem(temp_dir=self.tmp_path):
            return runner.invoke(main, ["--url", url or self.url, *args], input=input, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def snapshot(self) -> Any:
        """Everything a bad command must leave as it was."""
        b = open_backend(self.url)
        try:
            jobs = sorted(
                (
                    j.to_dict()["id"],
                    j.state.value,
                    j.attempts,
                    j.locked_by,
                    j.to_dict()["failed_at"],
                    j.to_dict()["run_at"],
                )
                for j in b.find(JobFilter(), utcnow(), limit=1000).jobs
            )
            return jobs, [a.to_dict() for a in b.audit(100)], b.paused()
        finally:
            b.close()


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path) -> Cli:
    c = Cli(sqlite_url, tmp_path)
    assert c("init").exit_code == 0
    return c


@pytest.fixture
def filled(cli: Cli) -> dict[str, Any]:
    """A pending, a scheduled, a failed and a locked job."""
    b = open_backend(cli.url)
    now = utcnow()
    pending = b.enqueue(NewJob("qadmin.examples.SendEmail", ["a@example.com", "hi"], queue="email"))
    scheduled = b.enqueue(NewJob("qadmin.examples.noop", [], queue="email", run_at=now.replace(year=now.year + 1)))
    failing = b.enqueue(NewJob("qadmin.examples.ChargeCard", [3, 100], queue="billing"))
    claimed = b.claim(["billing"], "w", utcnow(), 3600, lambda j: True)
    b.fail(claimed, "w", utcnow(), "PaymentDeclined: card declined: expired card\n  File x", None)
    locked = b.enqueue(NewJob("qadmin.examples.noop", [9], queue="busy"))
    b.claim(["busy"], "host:far pid:1", utcnow(), 3600, lambda j: True)
    b.close()
    return {"pending": pending.id, "scheduled": scheduled.id, "failed": failing.id, "locked": locked.id}


def one_error_line(result: Result, code: int, *needles: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("qadmin: error: "), err
    for needle in needles:
        assert needle in err, err
    return err


# --- JSON shapes ------------------------------------------------------------------------------
def test_jobs_json_is_a_list_of_job_objects(cli: Cli, filled: dict) -> None:
    jobs = cli.json("jobs")
    assert {j["state"] for j in jobs} == {"pending", "scheduled", "failed", "locked"}
    for job in jobs:
        assert JOB_KEYS <= set(job)
        assert job["created_at"].endswith("Z")
    failed = cli.json("jobs", "--state", "failed")
    assert [j["id"] for j in failed] == [filled["failed"]]
    assert failed[0]["last_error"].startswith("PaymentDeclined") and failed[0]["failed_at"].endswith("Z")
    assert (
        cli.json(
            "jobs", "--queue", "email", "--class", "qadmin.examples.SendEmail", "--args", '["a@example.com", "hi"]'
        )[0]["id"]
        == filled["pending"]
    )
    assert cli.json("jobs", "--search", "EXAMPLE.COM")[0]["id"] == filled["pending"]


def test_jobs_pages_with_a_cursor(cli: Cli, filled: dict) -> None:
    first = cli("jobs", "--json", "--limit", "3")
    assert first.exit_code == 0
    cursor = first.stderr.split("--cursor '", 1)[1].rstrip("'\n")
    rest = cli.json("jobs", "--limit", "3", "--cursor", cursor)
    ids = [j["id"] for j in json.loads(first.stdout)] + [j["id"] for j in rest]
    assert sorted(ids) == sorted(filled.values()) and len(set(ids)) == 4


def test_show_json_has_the_job_its_raw_payload_and_history(cli: Cli, filled: dict) -> None:
    cli("retry", str(filled["failed"]))
    shown = cli.json("show", str(filled["failed"]))
    assert JOB_KEYS <= set(shown)
    assert json.loads(shown["raw"]) == {"class": "qadmin.examples.ChargeCard", "args": [3, 100]}
    assert [a["verb"] for a in shown["audit"]] == ["retry"]
    assert shown["audit"][0]["face"] == "cli"


def test_stats_queues_workers_errors_audit_json(cli: Cli, filled: dict) -> None:
    stats = cli.json("stats")
    assert set(stats) >= {
        "queues",
        "totals",
        "processed",
        "failed",
        "oldest_pending_at",
        "paused",
        "workers",
        "throughput",
    }
    assert stats["queues"]["email"]["pending"] == 1 and stats["queues"]["email"]["scheduled"] == 1
    assert stats["totals"]["failed"] == 1 and stats["totals"]["locked"] == 1
    queues = cli.json("queues")
    assert {q["name"] for q in queues} == {"email", "billing", "busy"}
    assert set(queues[0]) == {"name", "counts", "paused", "oldest_pending_at"}
    workers = cli.json("workers")
    assert [w["name"] for w in workers] == ["host:far pid:1"]
    assert set(workers[0]) >= {"name", "host", "pid", "queues", "heartbeat_at", "current_job", "stale"}
    errors = cli.json("errors")
    assert errors == [
        {
            "error": "PaymentDeclined: card declined: expired card",
            "exception": "PaymentDeclined",
            "count": 1,
            "queues": ["billing"],
            "classes": ["qadmin.examples.ChargeCard"],
            "last_failed_at": errors[0]["last_failed_at"],
            "sample_id": filled["failed"],
            # error groups by fingerprint (issue #17): the group's pattern, first seen, variants
            "fingerprint": errors[0]["fingerprint"],
            "pattern": "PaymentDeclined: card declined: expired card",
            "first_failed_at": errors[0]["last_failed_at"],
            "variants": [{"error": "PaymentDeclined: card declined: expired card", "count": 1}],
            "variants_left_out": 0,
        }
    ]
    assert cli.json("audit") == []


def test_enqueue_json_and_its_options(cli: Cli) -> None:
    job = cli.json(
        "enqueue",
        "qadmin.examples.resize_image",
        "/a.png",
        "320",
        "--kwargs",
        '{"x": [1]}',
        "--queue",
        "images",
        "--priority",
        "4",
        "--in",
        "1h",
        "--max-attempts",
        "3",
    )
    assert (job["class"], job["args"], job["kwargs"], job["queue"], job["priority"], job["state"]) == (
        "qadmin.examples.resize_image",
        ["/a.png", 320],
        {"x": [1]},
        "images",
        4,
        "scheduled",
    )
    same = cli.json("enqueue", "qadmin.examples.noop", "--unique", "k1")
    again = cli.json("enqueue", "qadmin.examples.noop", "--unique", "k1")
    assert same["id"] == again["id"]
    at = cli.json("enqueue", "qadmin.examples.noop", "--at", "2030-01-02T03:04:05Z")
    assert at["run_at"] == "2030-01-02T03:04:05Z"


def test_enqueue_is_audited_like_a_console_enqueue(cli: Cli) -> None:
    job = cli.json("enqueue", "qadmin.examples.noop", "7", "--queue", "mail")
    entries = cli.json("audit")
    assert [(e["verb"], e["face"], e["matched"], e["changed"]) for e in entries] == [("enqueue", "cli", 1, 1)]
    assert entries[0]["selection"]["class"] == "qadmin.examples.noop" and entries[0]["selection"]["queue"] == "mail"
    assert [e["verb"] for e in cli.json("audit", "--job", str(job["id"]))] == ["enqueue"]
    # a refused enqueue stores nothing and audits nothing
    before = cli.snapshot()
    assert cli("enqueue", "qadmin.examples.noop", "--kwargs", "[1]").exit_code != 0
    assert cli.snapshot() == before


# --- bulk verbs -------------------------------------------------------------------------------
def test_retry_failed_of_one_queue_prints_how_many(cli: Cli, filled: dict) -> None:
    result = cli("retry", "--failed", "--queue", "email")
    assert result.exit_code == 0 and "No jobs matched" in result.stdout
    result = cli("retry", "--failed", "--queue", "billing", "--dry-run")
    assert result.exit_code == 0 and "Dry run: 1 job would be retried." in result.stdout
    out = cli.json("retry", "--failed", "--queue", "billing")
    assert out == {"verb": "retry", "matched": 1, "changed": 1, "skipped": 0, "dry_run": False}
    assert cli.json("show", str(filled["failed"]))["state"] == "pending"
    entry = cli.json("audit")[0]
    assert (entry["verb"], entry["face"], entry["matched"], entry["changed"]) == ("retry", "cli", 1, 1)
    assert entry["selection"] == {"state": "failed", "queue": "billing"}


def test_delete_asks_unless_yes_and_dry_run_changes_nothing(cli: Cli, filled: dict) -> None:
    before = cli.snapshot()
    refused = cli("delete", "--queue", "email")
    one_error_line(refused, 2, "without --yes")
    dry = cli.json("delete", "--queue", "email", "--dry-run")
    assert dry["matched"] == 2 and dry["changed"] == 0 and len(dry["sample"]) == 2
    assert cli.snapshot() == before
    declined = cli("delete", "--queue", "email", input="n\n")
    assert cli.snapshot() == before and declined.exit_code in (1, 2)
    done = cli("delete", "--queue", "email", "--yes")
    assert done.exit_code == 0 and "Deleted 2 of 2" in done.stdout
    assert cli.json("stats")["queues"].get("email", {}).get("pending", 0) == 0


def test_dequeue_unlock_pause_resume(cli: Cli, filled: dict) -> None:
    out = cli.json(
        "dequeue", "--queue", "email", "--class", "qadmin.examples.SendEmail", "--args", '["a@example.com", "hi"]'
    )
    assert (out["matched"], out["changed"]) == (1, 1)
    out = cli.json("unlock", "--worker", "host:far", "--yes")  # a fresh lock: its worker may be alive
    assert (out["matched"], out["changed"]) == (1, 1)
    assert cli.json("show", str(filled["locked"]))["state"] == "pending"
    assert cli("pause", "email").stdout.strip() == "paused email"
    assert cli("pause", "email").stdout.strip() == "email was already paused"
    assert cli.json("stats")["paused"] == ["email"]
    assert cli("resume", "email").stdout.strip() == "resumed email"
    assert [e["verb"] for e in cli.json("audit")] == ["resume", "pause", "pause", "unlock", "dequeue"]


def test_tables_render_without_error(cli: Cli, filled: dict) -> None:
    for args in (
        ["jobs"],
        ["jobs", "--state", "stale"],
        ["show", str(filled["failed"])],
        ["stats"],
        ["queues"],
        ["workers"],
        ["errors"],
        ["audit"],
    ):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
    assert "PaymentDeclined" in cli("errors").stdout
    assert "No jobs match" in cli("jobs", "--queue", "nothing-here").stdout


def test_a_named_backend_and_another_table(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "qadmin.toml"
    config.write_text(f'default = "local"\n[backends.local]\nurl = "{cli.url}"\ntable = "other_jobs"\n')
    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": str(config), "QADMIN_BACKEND": None})
    assert runner.invoke(main, ["init"]).exit_code == 0
    assert runner.invoke(main, ["enqueue", "qadmin.examples.noop"]).exit_code == 0
    listed = runner.invoke(main, ["jobs", "--json"])
    assert len(json.loads(listed.stdout)) == 1
    assert cli.json("jobs") == []  # the default table is another one
    bad = runner.invoke(main, ["--backend", "nope", "jobs"])
    one_error_line(bad, 2, "no backend named 'nope'", "local")


# --- bad input: one line, exit 2 (or 1), nothing changed --------------------------------------
BAD_INPUT = [
    (["jobs", "--args", "{bad"], 2, "--args is not valid JSON"),
    (["jobs", "--args", "5"], 2, "JSON array"),
    (["dequeue", "--queue", "email", "--class", "X", "--args", "[1"], 2, "--args is not valid JSON"),
    (["enqueue", "X", "--kwargs", "[1]"], 2, "--kwargs must be a JSON object"),
    (["enqueue", "X", "--kwargs", "{"], 2, "--kwargs is not valid JSON"),
    (["enqueue", "X", "--at", "yesterday"], 2, "not an ISO 8601 time"),
    (["enqueue", "X", "--in", "1h", "--at", "2030-01-01"], 2, "not both"),
    (["show", "999999"], 2, "no job with id 999999"),
    (["show", "abc"], 2, "not a job id"),
    (["retry", "999999"], 2, "no job with id 999999"),
    (["delete", "999999", "--yes"], 2, "no job with id 999999"),
    (["unlock", "999999"], 2, "no job with id 999999"),
    (["retry", "{pending}"], 2, "is pending"),
    (["retry", "{locked}", "--dry-run"], 2, "is locked"),
    (["unlock", "{failed}"], 2, "is failed"),
    (["dequeue", "--queue", "billing", "--class", "qadmin.examples.ChargeCard", "--id", "{failed}"], 2, "is failed"),
    (["retry"], 2, "say which jobs"),
    (["unlock"], 2, "say which locks"),
    (["delete", "--state", "finished", "--yes"], 2, "finished jobs are history"),
    (["unlock", "--older-than", "banana"], 2, "invalid duration 'banana'"),
    (["unlock", "--older-than", "-5m"], 2, "--older-than"),
    (["worker", "--sleep", "5x"], 2, "invalid duration '5x'"),
    (["worker", "--max-run-time", "-3"], 2, "negative"),
    (["enqueue", "X", "--in", "3q"], 2, "invalid duration '3q'"),
    (["tui", "--refresh", "soon"], 2, "invalid duration"),
    (["jobs", "--limit", "-1"], 2, "must be at least 1"),
    (["jobs", "--limit", "0"], 2, "must be at least 1"),
    (["errors", "--limit", "0"], 2, "must be at least 1"),
    (["audit", "-n", "-5"], 2, "must be at least 1"),
    (["worker", "--count", "-2"], 2, "must be at least 1"),
    (["worker", "--concurrency", "0"], 2, "must be at least 1"),
    (["worker", "--max-jobs-per-child", "-1"], 2, "must be at least 1"),
    (["worker", "--max-memory", "-5"], 2, "must be at least 1"),
    (["worker", "--max-attempts", "0"], 2, "must be at least 1"),
    (["enqueue", "X", "--max-attempts", "0"], 2, "must be at least 1"),
    (["enqueue", "X", "--priority", "high"], 2, "not a valid integer"),
    (["web", "--port", "70000"], 2, "--port"),
    (["jobs", "--state", "bogus"], 2, "unknown state 'bogus'"),
    (["delete", "--state", "bogus", "--yes"], 2, "unknown state 'bogus'"),
    (["retry", "--failed", "--queue", "billing", "--class"], 2, "requires an argument"),
    (["jobs", "--sort", "sideways"], 2, "sideways"),
    (["jobs", "--cursor", "garbage"], 2, "invalid page cursor"),
    (["audit", "--job", "abc"], 2, "not a job id"),
    (["pause"], 2, "Missing argument"),
    (["frobnicate"], 2, "No such command"),
    (["--config", "/nonexistent/qadmin.toml", "jobs"], 2, "does not exist"),
]


@pytest.mark.parametrize("args, code, needle", BAD_INPUT, ids=[" ".join(a) for a, _, _ in BAD_INPUT])
def test_bad_input_gets_one_line_and_changes_nothing(
    cli: Cli, filled: dict, args: list[str], code: int, needle: str
) -> None:
    args = [filled.get(a[1:-1], a) if a.startswith("{") and a.endswith("}") else a for a in args]
    args = [str(a) for a in args]
    before = cli.snapshot()
    result = cli(*args)
    one_error_line(result, code, needle)
    assert cli.snapshot() == before


def test_an_unknown_url_scheme_lists_the_known_ones(cli: Cli) -> None:
    for url in ("foo://x/y", "just-a-path"):
        one_error_line(cli("jobs", url=url), 2, "unknown URL scheme", "sqlite://", "postgresql://", "redis://")


def test_an_unreachable_server_is_one_line_and_exit_1(cli: Cli) -> None:
    port = free_port()  # nothing listens there
    one_error_line(
        cli("stats", url=f"postgresql://postgres@127.0.0.1:{port}/nothing"), 1, "cannot reach", f"127.0.0.1:{port}"
    )
    one_error_line(cli("worker", "--burst", url=f"postgresql://postgres@127.0.0.1:{port}/nothing"), 1, "cannot reach")


def test_an_unreachable_redis_is_one_line_and_exit_1(cli: Cli) -> None:
    port = free_port()
    one_error_line(cli("stats", url=f"redis://127.0.0.1:{port}/0"), 1, "cannot reach")


def test_a_missing_table_says_to_run_init_and_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    url = f"sqlite:///{empty}"
    for args in (["jobs"], ["stats"], ["retry", "--failed"], ["enqueue", "X"], ["worker", "--burst"]):
        one_error_line(cli(*args, url=url), 1, "qadmin init")
    with sqlite3.connect(empty) as conn:
        assert conn.execute("select name from sqlite_master where name = 'delayed_jobs'").fetchall() == []
    missing = tmp_path / "typo.db"
    one_error_line(cli("stats", url=f"sqlite:///{missing}"), 1, "does not exist", "qadmin init")
    assert not missing.exists()


def test_retry_of_a_job_that_is_not_failed_is_refused(cli: Cli, filled: dict) -> None:
    before = cli.snapshot()
    one_error_line(cli("retry", str(filled["pending"]), "--json"), 2, "cannot retry", "is pending")
    assert cli.snapshot() == before
    # among others that can be retried, it is reported as skipped instead
    result = cli("retry", str(filled["pending"]), str(filled["failed"]))
    assert result.exit_code == 0
    assert "Retried 1 of 1" in result.stdout and f"skipped {filled['pending']}: is pending" in result.stdout


# --- as a shell sees it -----------------------------------------------------------------------
def qadmin(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qadmin", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_real_processes_get_exit_codes_and_no_tracebacks(cli: Cli, tmp_path: Path) -> None:
    version = qadmin("--version", cwd=tmp_path)
    assert version.returncode == 0 and "qadmin" in version.stdout
    cases = [
        (["--url", "foo://x", "jobs"], 2),
        (["--url", f"postgresql://postgres@127.0.0.1:{free_port()}/x", "stats"], 1),
        (["--url", cli.url, "jobs", "--state", "bogus"], 2),
        (["--url", cli.url, "worker", "--sleep", "soon"], 2),
        (["--url", cli.url, "show", "42"], 2),
    ]
    for args, code in cases:
        res = qadmin(*args, cwd=tmp_path)
        assert res.returncode == code, (args, res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    ok = qadmin("--url", cli.url, "jobs", "--json", cwd=tmp_path)
    assert ok.returncode == 0 and json.loads(ok.stdout) == []
    # the default URL is sqlite:///qadmin.db in the working directory; QADMIN_URL overrides it
    listed = subprocess.run(
        [sys.executable, "-m", "qadmin", "stats", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**_env(), "QADMIN_URL": cli.url},
    )
    assert listed.returncode == 0 and json.loads(listed.stdout)["totals"] == {}


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("QADMIN_")}


def test_defer_acks_is_refused_where_the_backend_cannot_defer(cli: Cli, filled: dict) -> None:
    before = cli.snapshot()
    result = cli("worker", "--burst", "--prefetch", "5", "--defer-acks")
    assert result.exit_code == 2
    assert "--defer-acks is not available on sqlite" in result.output
    assert cli.snapshot() == before


def test_unlocking_a_job_whose_worker_looks_alive_asks_first_and_says_it_may_run_twice(cli: Cli) -> None:
    from qadmin.backends.owners import worker_name

    b = open_backend(cli.url)
    held = b.enqueue(NewJob("qadmin.examples.noop", [1], queue="busy"))
    b.claim(["busy"], worker_name(), utcnow(), 3600, lambda j: True)  # this very process: alive
    b.close()
    before = cli.snapshot()
    # no terminal to ask on: refused, with the reason, and nothing changed
    err = one_error_line(cli("unlock", str(held.id)), 2, "looks alive", "may then run twice", "--yes")
    assert "not unlocking" in err and cli.snapshot() == before
    # --dry-run previews without asking
    assert cli("unlock", str(held.id), "--dry-run").exit_code == 0 and cli.snapshot() == before
    result = cli("unlock", str(held.id), "--yes")
    assert result.exit_code == 0, result.output
    assert cli.json("show", str(held.id))["state"] == "pending"


def test_unlocking_the_locks_of_dead_workers_asks_nothing(cli: Cli) -> None:
    from qadmin.backends.owners import worker_name

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    b = open_backend(cli.url)
    held = b.enqueue(NewJob("qadmin.examples.noop", [2], queue="busy"))
    b.claim(["busy"], worker_name(int(dead)), utcnow(), 3600, lambda j: True)
    b.close()
    result = cli("unlock", str(held.id))
    assert result.exit_code == 0, result.output
    assert cli.json("show", str(held.id))["state"] == "pending"


def test_an_old_error_on_a_retried_job_is_history_not_a_failure(cli: Cli) -> None:
    from datetime import timedelta

    b = open_backend(cli.url)
    job = b.enqueue(NewJob("qadmin.examples.noop", [5], queue="again"))
    claimed = b.claim(["again"], "w", utcnow(), 3600, lambda j: True)
    b.fail(claimed, "w", utcnow(), "Timeout: upstream slow", utcnow() + timedelta(hours=1))
    b.close()
    shown = cli("show", str(job.id)).stdout
    assert "error of the last attempt (retried since)" in shown and "upstream slow" in shown
    assert "last error" not in shown
    listed = cli("jobs", "--queue", "again").stdout
    assert "last attempt: Timeout" in listed
