"""`qadmin edit ID`: new values for one job, a dry run that changes nothing, `--json` before and
after, refusals (a locked job, bad input) as one error line and exit 2, the audit."""

from __future__ import annotations

from typing import Any

from tests.faces.cli.test_cli import Cli, cli, filled, one_error_line  # noqa: F401 - the fixtures


def test_edit_changes_the_job_and_prints_before_and_after(cli: Cli, filled: dict[str, Any]) -> None:
    job_id = str(filled["pending"])
    result = cli("edit", job_id, "--args", '["b@example.com", "é"]', "--queue", "mail", "--priority", "-2")
    assert result.exit_code == 0, result.output
    assert f"edited job {job_id}" in result.stdout
    assert '  args: ["a@example.com", "hi"] -> ["b@example.com", "é"]' in result.stdout
    assert '  queue: "email" -> "mail"' in result.stdout
    shown = cli.json("show", job_id)
    assert (shown["args"], shown["queue"], shown["priority"]) == (["b@example.com", "é"], "mail", -2)
    entry = cli.json("audit")[0]
    assert entry["verb"] == "edit" and entry["selection"]["before"]["queue"] == "email"


def test_edit_json_and_a_run_at_makes_it_scheduled(cli: Cli, filled: dict[str, Any]) -> None:
    job_id = str(filled["pending"])
    out = cli.json("edit", job_id, "--at", "2099-01-02T03:04:05Z", "--kwargs", '{"x": 1}')
    assert out["verb"] == "edit" and out["changed"] and not out["dry_run"]
    assert out["before"]["kwargs"] == {} and out["after"] == {"kwargs": {"x": 1}, "run_at": "2099-01-02T03:04:05Z"}
    assert cli.json("show", job_id)["state"] == "scheduled"


def test_edit_dry_run_changes_nothing(cli: Cli, filled: dict[str, Any]) -> None:
    before = cli.snapshot()
    out = cli.json("edit", str(filled["failed"]), "--args", "[4, 200]", "--dry-run")
    assert out["dry_run"] and out["after"] == {"args": [4, 200]} and not out["changed"]
    result = cli("edit", str(filled["failed"]), "--args", "[4, 200]", "--dry-run")
    assert result.exit_code == 0 and "would edit job" in result.stdout
    assert cli.snapshot() == before


def test_edit_refuses_a_locked_job_and_bad_input_with_one_line(cli: Cli, filled: dict[str, Any]) -> None:
    before = cli.snapshot()
    one_error_line(cli("edit", str(filled["locked"]), "--args", "[1]"), 2, "is locked")
    one_error_line(cli("edit", str(filled["pending"]), "--args", "{"), 2, "--args")
    one_error_line(cli("edit", str(filled["pending"]), "--kwargs", "[1]"), 2, "--kwargs must be a JSON object")
    one_error_line(cli("edit", str(filled["pending"]), "--at", "tomorrow"), 2, "--at")
    one_error_line(cli("edit", str(filled["pending"])), 2, "nothing to edit")
    one_error_line(cli("edit", "999999", "--args", "[]", "--json"), 2, "999999")
    assert cli.snapshot() == before
