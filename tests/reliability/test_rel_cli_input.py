"""Input to the CLI, beyond tests/faces/cli/test_cli.py's BAD_INPUT: non-finite and zero durations, counts
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

from qadmin.backends import open_backend
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
    # times past what a datetime holds, or what a thread can wait
    (["enqueue", "X", "--in", "99999999999d"], "too long"),
    (["unlock", "--older-than", "99999999999999d"], "too long"),
    (["worker", "--burst", "--sleep", "1e10"], "too long"),
    (["enqueue", "X", "--at", "9999-12-31T23:59:59-12:00"], "--at"),
    (["enqueue", "X", "--at", "0001-01-01T00:00:00+01:00"], "--at"),
    # text that is not text: bytes that were not UTF-8 (lone surrogates), and JSON naming one
    (["enqueue", "X", "\udcff"], "UTF-8"),
    (["jobs", "--class", "caf\udce9"], "UTF-8"),
    (["enqueue", "X", '"\\ud800"'], "surrogate"),
    (["enqueue", "X", "--kwargs", '{"a": "\\udfff"}'], "surrogate"),
    (["jobs", "--args", '["\\ud800"]'], "surrogate"),
    # page cursors a listing never printed: the wrong type, not finite, null, or past any column
    (["jobs", "--cursor", '["x"]'], "cursor"),
    (["jobs", "--cursor", "[1e999]"], "cursor"),
    (["jobs", "--cursor", "[null]"], "cursor"),
    (["jobs", "--cursor", "[" + "9" * 40 + "]"], "cursor"),
    (["jobs", "--sort", "priority", "--cursor", '[0, "not a time", 1]'], "cursor"),
    # Redis cursors of the right shape with a position no list has
    (["jobs", "--cursor", '["id","P","q",' + "9" * 30 + "]"], "cursor"),
    (["jobs", "--cursor", '["id","D","q",[1,' + "9" * 30 + "]]"], "cursor"),
    (["jobs", "--cursor", '["id","P","q",true]'], "cursor"),
]


#: the cases whose handling reaches the backend (ids, cursors, column ranges): tried on every backend
PER_BACKEND = [case for case in BAD if case[0][0] in ("show", "retry", "jobs") or "--priority" in case[0]]


@pytest.mark.parametrize("args, needle", BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_bad_input_is_one_clear_line_exit_2_and_changes_nothing(sqlite_url: str, args: list[str], needle: str) -> None:
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


@pytest.mark.parametrize("args", [["tui", "--refresh", "0"], ["tui", "--refresh", "nan"], ["tui", "--refresh", "inf"]])
def test_the_consoles_refuse_a_refresh_they_could_not_keep(sqlite_url: str, tmp_path: Path, args: list[str]) -> None:
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


# --- generated bad input (hypothesis) -------------------------------------------------------
from datetime import UTC  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: text that is not text: a lone surrogate somewhere in otherwise ordinary characters
not_text = st.tuples(
    st.text(max_size=6), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), st.text(max_size=6)
).map("".join)
too_big = st.integers(2**31, 10**40).map(str)
bad_duration = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-5", "", " ", "5y", "1h-2m", "..", "1e10"]),
    st.integers(12, 60).map(lambda n: "9" * n + "d"),
    st.floats(min_value=36525 * 86400 * 1.01, allow_infinity=True).map(repr),
    not_text,
)
bad_json_array = st.one_of(
    st.sampled_from(["", "[", "{}", "1", "[NaN]", "[Infinity]", "[1e999]", '"x"', "null", '["\\ud800"]', DEEP]),
    st.text(alphabet='[]{},:1ex"\\', max_size=12).filter(lambda t: not t.startswith("[") or not t.endswith("]")),
)
bad_cursor = st.one_of(
    st.sampled_from(
        [
            '["x"]',
            "[1e999]",
            "[null]",
            "[true]",
            "[1.5]",
            "[]",
            "[1, 2, 3, 4, 5]",
            "{}",
            "x",
            "",
            "finished:x",
            "[" + "9" * 40 + "]",
        ]
    ),
    st.integers(2**63, 10**60).map(lambda n: f"[{n}]"),
)
bad_time = st.one_of(
    st.sampled_from(
        ["", "yesterday", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+01:00", "2020-13-01", "2020-01-01T25:00:00"]
    ),
    st.text(alphabet="0123456789-:T+Z ", max_size=14).filter(lambda t: not _iso_time(t)),
)


def _iso_time(text: str) -> bool:
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment.astimezone(UTC)
        return True
    except (ValueError, OverflowError):
        return False


#: a command with one value that cannot be right, given where it belongs
bad_commands = st.one_of(
    bad_duration.map(lambda v: ["enqueue", "qadmin.examples.noop", "--in", v]),
    bad_duration.map(lambda v: ["unlock", "--older-than", v]),
    bad_time.map(lambda v: ["enqueue", "qadmin.examples.noop", "--at", v]),
    st.one_of(too_big, st.just("-" + "9" * 12), not_text).map(lambda v: ["enqueue", "X", "--priority", v]),
    st.one_of(too_big, st.sampled_from(["0", "-1", "x", ""])).map(lambda v: ["jobs", "--limit", v]),
    bad_json_array.map(lambda v: ["jobs", "--args", v]),
    bad_json_array.filter(lambda t: not t.startswith("{")).map(lambda v: ["enqueue", "X", "--kwargs", v]),
    bad_cursor.map(lambda v: ["jobs", "--cursor", v]),
    st.text(alphabet="abcxyz", min_size=1, max_size=6).map(lambda v: ["jobs", "--state", v]),
    st.sampled_from(["retry", "show", "delete"]).flatmap(
        lambda verb: st.one_of(st.sampled_from(["", "abc", "-1", "1.5", "9" * 30, "q:", ":zz"]), not_text).map(
            lambda v: [verb, v] + (["--yes"] if verb == "delete" else [])
        )
    ),
    not_text.flatmap(
        lambda v: st.sampled_from(
            [
                ["enqueue", v],
                ["jobs", "--queue", v],
                ["jobs", "--class", v],
                ["jobs", "--search", v],
                ["retry", "--failed", "--error", v],
                ["delete", "--class", v, "--yes"],
                ["pause", v],
                ["dequeue", "--queue", "q", "--class", v],
                ["--namespace", v, "jobs"],
                ["jobs", "--table", v],
            ]
        )
    ),
    st.sampled_from(
        [
            ["--table", "", "jobs"],
            ["--backend", "nosuch", "jobs"],
            ["--url", "", "stats"],
            ["jobs", "--url", "redis://[::1"],
            ["--url", "postgresql://h:port/db", "jobs"],
            ["--url", "mysql+pymysql://u@h/db", "enqueue", "X"],
        ]
    ),
)


@pytest.fixture
def fuzz_url(sqlite_url: str) -> str:
    return fill_once(sqlite_url)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(args=bad_commands)
def test_generated_bad_input_is_one_line_exit_1_or_2_and_changes_nothing(fuzz_url: str, args: list[str]) -> None:
    check_generated(fuzz_url, args)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(args=bad_commands)
def test_generated_bad_input_on_redis(redis_url: str, args: list[str]) -> None:
    if "--table" in args:  # a Redis backend refuses --table whatever its value
        args = [a for a in args if a != "--table"]
    check_generated(fill_once(redis_url), args)


_FILLED: set[str] = set()


def fill_once(url: str) -> str:
    if url not in _FILLED:
        fill(url)
        _FILLED.add(url)
    return url


def check_generated(url: str, args: list[str]) -> None:
    before = snapshot(url)
    result = invoke(url, *args)
    assert result.exit_code in (1, 2), (args, result.exit_code, result.output[-1500:])
    err = result.stderr.strip()
    assert "Traceback" not in result.output and len(err.splitlines()) == 1, (args, err[-1500:])
    assert err.startswith("qadmin: error: "), (args, err)
    assert snapshot(url) == before, args


#: arguments as a shell passes them: bytes, some of them not UTF-8
bad_bytes = st.binary(min_size=1, max_size=8).filter(lambda b: not _utf8(b) and b"\x00" not in b)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    value=bad_bytes,
    where=st.sampled_from(
        [
            ["enqueue", "X", "{}"],
            ["jobs", "--queue", "{}"],
            ["jobs", "--class", "{}"],
            ["pause", "{}"],
            ["--url", "sqlite:///{}.db", "jobs"],
            ["show", "{}"],
        ]
    ),
)
def test_bytes_that_are_not_utf8_in_a_real_process(
    sqlite_url: str, tmp_path_factory: pytest.TempPathFactory, value: bytes, where: list[str]
) -> None:
    url = fill_once(sqlite_url)
    before = snapshot(url)
    argv = [a.encode().replace(b"{}", value) for a in where]
    if not where[0].startswith("--url"):
        argv = [b"--url", url.encode()] + argv
    res = subprocess.run(
        [sys.executable.encode(), b"-m", b"qadmin", *argv],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path_factory.mktemp("cwd"),
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "LANG": "C.UTF-8"},
    )
    err = res.stderr.decode("utf-8", "replace").strip()
    assert res.returncode == 2, (argv, err[-1500:])
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "not valid UTF-8" in err, (argv, err)
    assert snapshot(url) == before
