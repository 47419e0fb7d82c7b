"""What the CLI prints: job data with control characters escaped (never an escape sequence
reaching the terminal), `--json` exact, words in proper plurals, and table text cut with an
ellipsis; on every backend."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qadmin.backends import open_backend
from qadmin.cli import main
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow
from qadmin.text import visible

ESC = "\x1b"
#: what a hostile payload writes: clear the screen, set the window title, a C1 CSI, a bidi override
EVIL = {
    "queue": "q\x1b[2J",
    "class": "Evil\x1b]0;pwned\x07Job",
    "args": ["\x1b[31mred", "\u202eright-to-left"],
    "worker": "host\x1b[2J pid:1",
    "error": "Boom\x1b[2J: \x9b31mred\x1b]0;title\x07",
}
UNSAFE = ("\x1b", "\x07", "\x9b", "\u202e")


def invoke(url: str, *args: str, columns: int = 160) -> Result:
    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None, "COLUMNS": str(columns)})
    return runner.invoke(main, ["--url", url, *args], catch_exceptions=False)


@pytest.fixture
def evil(any_url: str) -> dict[str, Any]:
    backend = open_backend(any_url)
    backend.init()
    failing = backend.enqueue(NewJob(EVIL["class"], EVIL["args"], queue=EVIL["queue"]))
    claimed = backend.claim([EVIL["queue"]], EVIL["worker"], utcnow(), 3600, lambda job: True)
    assert claimed is not None and str(claimed.id) == str(failing.id)
    backend.fail(claimed, EVIL["worker"], utcnow(), EVIL["error"], None)
    backend.enqueue(NewJob(EVIL["class"], EVIL["args"][:1], queue=EVIL["queue"]))
    backend.enqueue(NewJob(EVIL["class"], ["held"], queue=EVIL["queue"]))
    held = backend.claim([EVIL["queue"]], EVIL["worker"], utcnow(), 3600, lambda job: job.args == ["held"])
    assert held is not None
    now = utcnow()
    (failed,) = backend.find(JobFilter(states=frozenset({JobState.FAILED})), now, limit=10).jobs
    (held_job,) = backend.find(JobFilter(states=frozenset({JobState.LOCKED})), now, limit=10).jobs
    backend.close()
    return {"url": any_url, "failed": str(failed.id), "locked": str(held_job.id)}


def test_job_data_reaches_the_terminal_escaped(evil: dict[str, Any]) -> None:
    url = evil["url"]
    commands = [
        ["jobs"],
        ["jobs", "--state", "failed"],
        ["jobs", "--state", "locked"],
        ["show", evil["locked"]],
        ["errors"],
        ["stats"],
        ["queues"],
        ["workers"],
        ["retry", "--failed", "--dry-run"],
        ["delete", "--queue", EVIL["queue"], "--dry-run"],
        ["jobs", "--queue", EVIL["queue"], "--class", "nothing-like-it"],
    ]
    # Redis: `get` does not find a failed job whose queue name holds a control character (a
    # backend bug, reported); its error text is checked through the listings there
    if not url.startswith("redis"):
        commands.append(["show", evil["failed"]])
    for args in commands:
        result = invoke(url, *args)
        assert result.exit_code == 0, (args, result.output)
        for char in UNSAFE:
            assert char not in result.output, (args, char, result.output)
    listed = invoke(url, "errors").output
    assert "Boom\\x1b[2J" in listed  # the error, escaped, not dropped
    assert "\\x1b]0;pwned\\x07" in invoke(url, "jobs").output
    # the lock holder: in the jobs table of the locked job's detail
    assert "host\\x1b[2J" in invoke(url, "show", evil["locked"]).output
    result = invoke(url, "pause", EVIL["queue"])
    assert result.exit_code == 0 and ESC not in result.output and "q\\x1b[2J" in result.output


def test_json_output_stays_exact(evil: dict[str, Any]) -> None:
    result = invoke(evil["url"], "jobs", "--state", "failed", "--json")
    assert result.exit_code == 0, result.output
    for char in UNSAFE:  # written as \u escapes: the same JSON value
        assert char not in result.stdout, char
    (job,) = json.loads(result.stdout)
    assert (job["queue"], job["class"], job["args"]) == (EVIL["queue"], EVIL["class"], EVIL["args"])
    assert job["last_error"].startswith(EVIL["error"])
    shown = json.loads(invoke(evil["url"], "show", evil["locked"], "--json").stdout)
    assert shown["locked_by"] == EVIL["worker"]


def test_plain_escapes_exactly_the_unprintable() -> None:
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("tab\there\nline") == "tab\\there\\nline"
    assert visible("tab\there\nline", lines=True) == "tab\there\nline"
    assert visible("caf\u00e9 \u65e5\u672c \U0001f600") == "caf\u00e9 \u65e5\u672c \U0001f600"
    assert visible("\x9b\u202e\udcff\x7f") == "\\x9b\\u202e\\udcff\\x7f"


def test_words_are_proper_plurals_and_an_id_says_it_is_one(sqlite_url: str) -> None:
    open_backend(sqlite_url).init()
    result = invoke(sqlite_url, "enqueue", "qadmin.examples.noop", "1", "--queue", "one")
    assert result.exit_code == 0 and result.output.startswith("enqueued job 1 (qadmin.examples.noop on one")
    dry_run = ("delete", "--queue", "one", "--dry-run")
    assert "Dry run: 1 job would be deleted." in invoke(sqlite_url, *dry_run).output
    invoke(sqlite_url, "enqueue", "qadmin.examples.noop", "2", "--queue", "one")
    assert "Dry run: 2 jobs would be deleted." in invoke(sqlite_url, *dry_run).output
    result = invoke(sqlite_url, "delete", "--queue", "one")  # no terminal to confirm on
    assert result.exit_code == 2 and "refusing to delete 2 jobs without --yes" in result.stderr
    result = invoke(sqlite_url, "delete", "--queue", "one", "--yes")
    assert "Deleted 2 of 2 matched jobs." in result.output
    for output in (invoke(sqlite_url, "jobs").output,):
        assert "(s)" not in output


@pytest.mark.parametrize("columns", [60, 100, 200])
def test_the_errors_table_fits_the_terminal_and_cuts_text_with_an_ellipsis(sqlite_url: str, columns: int) -> None:
    backend = open_backend(sqlite_url)
    backend.init()
    for n in range(3):
        backend.enqueue(NewJob("app.jobs.AVeryLongJobClassName" + "X" * 40, [n], queue="q" * 30))
        claimed = backend.claim(["q" * 30], "w", utcnow(), 3600, lambda job: True)
        backend.fail(claimed, "w", utcnow(), f"SomeError: {'a long message ' * 20}{'abc'[n]}", None)
    backend.close()
    result = invoke(sqlite_url, "errors", columns=columns)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= columns for line in lines), "\n".join(lines)
    header = next(line for line in lines if "ERROR" in line)
    for column in ("COUNT", "ERROR", "QUEUES", "CLASSES", "LAST FAILED") if columns >= 100 else ("ERROR",):
        assert column in header, header
    rows = [line for line in lines if "SomeError" in line]
    assert len(rows) == 3 and all("…" in row for row in rows)
