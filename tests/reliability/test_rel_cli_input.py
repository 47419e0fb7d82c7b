"""Input to the CLI, beyond tests/test_cli.py's BAD_INPUT: non-finite and zero durations, counts
too large for a column, JSON that is not JSON (NaN, nesting), empty names, ids too large for a row,
unwritable paths, and the same on Redis. Every one is one clear line on stderr, exit 2, and leaves
the backend exactly as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qadmin.backends.base import open_backend
from qadmin.cli import main
from qadmin.filters import JobFilter
from qadmin.job import NewJob, utcnow

DEEP = "[" * 100_000


def invoke(url: str, *args: str) -> Result:
    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None})
    return runner.invoke(main, ["--url", url, *args], catch_exceptions=False)


def snapshot(url: str) -> Any:
    backend = open_backend(url)
    try:
        jobs = backend.find(JobFilter(), utcnow(), limit=1000).jobs
        return (
            sorted((str(j.id), j.state.value, j.raw, j.attempts, j.locked_by) for j in jobs),
            [a.to_dict() for a in backend.audit(100)],
            backend.paused(),
            [w.name for w in backend.workers(utcnow())],
        )
    finally:
        backend.close()


def one_clear_line(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output[-1500:])
    err = result.stderr.strip()
    assert "Traceback" not in result.output and len(err.splitlines()) == 1, err[-1500:]
    assert err.startswith("qadmin: error: "), err
    for needle in needles:
        assert needle in err, err


def fill(url: str) -> str:
    backend = open_backend(url)
    backend.init()
    backend.enqueue(NewJob("qadmin.examples.noop", [1], queue="q"))
    failing = backend.enqueue(NewJob("qadmin.examples.ChargeCard", [3, 100], queue="billing"))
    claimed = backend.claim(["billing"], "w", utcnow(), 3600, lambda job: True)
    assert claimed is not None and str(claimed.id) == str(failing.id)
    backend.fail(claimed, "w", utcnow(), "PaymentDeclined: card declined\n  File x", None)
    backend.close()
    return url


BAD = [
    # durations: not finite, or zero where zero means "never" or "always"
    (["enqueue", "X", "--in", "nan"], "--in"),
    (["enqueue", "X", "--in", "inf"], "--in"),
    (["enqueue", "X", "--in", "1e999"], "--in"),
    (["enqueue", "X", "--in", "9" * 400 + "s"], "--in"),
    (["enqueue", "X", "--in", "-5"], "negative"),
    (["enqueue", "X", "--in", ""], "duration"),
    (["unlock", "--older-than", "nan"], "--older-than"),
    (["unlock", "--older-than", "inf"], "--older-than"),
    (["worker", "--burst", "--sleep", "nan"], "--sleep"),
    (["worker", "--burst", "--sleep", "inf"], "--sleep"),
    (["worker", "--burst", "--sleep", "-1"], "negative"),
    (["worker", "--burst", "--max-run-time", "nan"], "--max-run-time"),
    # a max run time of 0 would make every lock expired at once: two workers would run one job
    (["worker", "--burst", "--max-run-time", "0"], "--max-run-time"),
    # counts: not a number, not finite, or too large for the column they go to
    (["worker", "--burst", "--max-memory", "nan"], "--max-memory"),
    (["worker", "--burst", "--max-memory", "inf"], "--max-memory"),
    (["enqueue", "X", "--priority", "99999999999999999999"], "--priority"),
    (["enqueue", "X", "--priority", "-99999999999999999999"], "--priority"),
    (["enqueue", "X", "--priority", "2147483648"], "--priority"),
    (["jobs", "--limit", "99999999999999999999"], "--limit"),
    (["errors", "--limit", "99999999999999999999"], "--limit"),
    (["audit", "-n", "99999999999999999999"], "--limit"),
    (["worker", "--burst", "--count", "0"], "at least 1"),
    (["enqueue", "X", "--max-attempts", "-1"], "at least 1"),
    # JSON that other Resque clients could not read back, or that nests past any use
    (["enqueue", "X", "--kwargs", '{"a": NaN}'], "--kwargs"),
    (["enqueue", "X", "--kwargs", '{"a": Infinity}'], "--kwargs"),
    (["enqueue", "X", "--kwargs", '{"a": 1e999}'], "--kwargs"),
    (["enqueue", "X", "--kwargs", DEEP], "nested too deeply"),
    (["enqueue", "X", DEEP], "nested too deeply"),
    (["jobs", "--args", "[Infinity]"], "--args"),
    (["dequeue", "--queue", "q", "--class", "X", "--args", DEEP], "nested too deeply"),
    # names that cannot name anything
    (["enqueue", ""], "class"),
    (["enqueue", "   "], "class"),
    (["dequeue", "--queue", "q", "--class", ""], "class"),
    # ids
    (["show", ""], "not a job id"),
    (["retry", "{failed}", "nonsense-id"], "not a job id"),
    (["jobs", "--cursor", "eyJub3QiOiAiYSBjdXJzb3IifQ=="], "cursor"),
    # states
    (["jobs", "--state", "failed,bogus"], "unknown state 'bogus'"),
    (["delete", "--state", "FINISHED", "--yes"], "finished"),
    (["retry", "--failed", "--queue", "billing", "--dry-run", "--bogus"], "No such option"),
    # files
    (["worker", "--burst", "--pidfile", "/nonexistent/dir/qadmin.pid"], "--pidfile"),
]


#: the cases whose handling reaches the backend (ids, cursors, column ranges): tried on every backend
PER_BACKEND = [case for case in BAD if case[0][0] in ("show", "retry", "jobs") or "--priority" in case[0]]


@pytest.mark.parametrize("args, needle", BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_bad_input_is_one_clear_line_exit_2_and_changes_nothing(
    sqlite_url: str, args: list[str], needle: str
) -> None:
    check_refused(fill(sqlite_url), args, needle)


@pytest.mark.parametrize("args, needle", PER_BACKEND, ids=[" ".join(a)[:60] for a, _ in PER_BACKEND])
def test_bad_input_is_refused_the_same_on_every_backend(any_url: str, args: list[str], needle: str) -> None:
    check_refused(fill(any_url), args, needle)


def check_refused(url: str, args: list[str], needle: str) -> None:
    if url.startswith("redis") and args[:2] == ["retry", "{failed}"]:
        args = ["retry", "{failed}", "q:zz"]  # a Redis id must be QUEUE:HEX
    failed = open_backend(url)
    try:
        failed_id = str(failed.find(JobFilter.from_params({"state": "failed"}), utcnow(), limit=1).jobs[0].id)
    finally:
        failed.close()
    args = [failed_id if a == "{failed}" else a for a in args]
    before = snapshot(url)
    one_clear_line(invoke(url, *args), needle)
    assert snapshot(url) == before


@pytest.mark.parametrize("args", [["show", "9" * 30], ["retry", "9" * 30], ["delete", "9" * 30, "--yes"]])
def test_an_id_too_large_for_a_row_is_no_such_job(sqlite_url: str, args: list[str]) -> None:
    open_backend(sqlite_url).init()
    one_clear_line(invoke(sqlite_url, *args))


@pytest.mark.parametrize(
    "args", [["tui", "--refresh", "0"], ["tui", "--refresh", "nan"], ["tui", "--refresh", "inf"]]
)
def test_the_consoles_refuse_a_refresh_they_could_not_keep(
    sqlite_url: str, tmp_path: Path, args: list[str]
) -> None:
    # a real process with a time limit: a console that started anyway would wait for a terminal
    open_backend(sqlite_url).init()
    res = subprocess.run(
        [sys.executable, "-m", "qadmin", "--url", sqlite_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert res.returncode == 2, res.stderr[-1000:]
    assert res.stderr.startswith("qadmin: error: ") and "--refresh" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_positional_arguments_that_are_not_json_stay_strings(sqlite_url: str) -> None:
    """`NaN` is not JSON: as an argument it is the string "NaN", never a float other clients reject."""
    open_backend(sqlite_url).init()
    result = invoke(sqlite_url, "enqueue", "qadmin.examples.noop", "NaN", "Infinity", "1", "x", "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert job["args"] == ["NaN", "Infinity", 1, "x"]
    backend = open_backend(sqlite_url)
    try:
        raw = backend.get(job["id"], utcnow()).raw
    finally:
        backend.close()
    json.loads(raw, parse_constant=lambda c: pytest.fail(f"the payload holds {c}, which is not JSON"))
