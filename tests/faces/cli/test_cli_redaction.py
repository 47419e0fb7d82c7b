"""Sensitive arguments on the command line: redacted in `show`, `jobs --json`, `audit`, bulk
previews and edits; `show --reveal` shows them and is audited; an edit over the redacted view keeps
the hidden values; `[redact]` from qadmin.toml; a bad pattern is one config error line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qadmin.backends import open_backend
from qadmin.job import NewJob
from qadmin.redaction import MARKER
from tests.faces.cli.test_cli import Cli, cli, one_error_line  # noqa: F401 - the fixtures

SECRETS = {"password": "hunter2", "card": "4111 1111 1111 1111", "token": "abc"}
LEAKS = ("hunter2", "4111", '"abc"')


def leaks(text: str) -> list[str]:
    return [s for s in LEAKS if s in text]


@pytest.fixture
def secret_job(cli: Cli) -> str:
    b = open_backend(cli.url)
    job = b.enqueue(NewJob("qadmin.examples.SendEmail", ["to@example.com", SECRETS], queue="mail"))
    b.close()
    return str(job.id)


def test_show_jobs_and_audit_never_print_the_secrets(cli: Cli, secret_job: str) -> None:
    shown = cli("show", secret_job)
    assert shown.exit_code == 0, shown.output
    assert not leaks(shown.stdout) and MARKER in shown.stdout
    assert "--reveal" in shown.stderr
    document = cli.json("show", secret_job)
    assert document["args"][1] == {"password": MARKER, "card": MARKER, "token": MARKER}
    assert not leaks(json.dumps(document))
    for command in (("jobs",), ("jobs", "--json"), ("delete", "--queue", "mail", "--dry-run", "--json")):
        result = cli(*command)
        assert result.exit_code == 0 and not leaks(result.stdout), result.output
    dequeued = cli(
        "dequeue",
        "--queue",
        "mail",
        "--class",
        "qadmin.examples.SendEmail",
        "--args",
        json.dumps(["to@example.com", SECRETS]),
    )
    assert dequeued.exit_code == 0, dequeued.output
    assert cli.json("audit")[0]["verb"] == "dequeue" and cli.json("audit")[0]["changed"] == 1
    for command in (("audit",), ("audit", "--json")):
        result = cli(*command)
        assert result.exit_code == 0 and not leaks(result.stdout), result.output


def test_reveal_shows_the_values_and_is_audited(cli: Cli, secret_job: str) -> None:
    document = cli.json("show", secret_job, "--reveal")
    assert document["args"][1] == SECRETS
    assert "hunter2" in document["raw"]
    entry = cli.json("audit")[0]
    assert entry["verb"] == "reveal" and entry["selection"] == {"id": secret_job} and entry["face"] == "cli"


def test_an_edit_over_the_redacted_view_keeps_the_hidden_values(cli: Cli, secret_job: str) -> None:
    args = cli.json("show", secret_job)["args"]
    args[0] = "new@example.com"
    out = cli.json("edit", secret_job, "--args", json.dumps(args))
    assert out["changed"] and not leaks(json.dumps(out))
    assert cli.json("show", secret_job, "--reveal")["args"] == ["new@example.com", SECRETS]
    assert not leaks(cli("audit", "--json").stdout)
    one_error_line(cli("edit", secret_job, "--kwargs", json.dumps({"x": MARKER})), 2, "no hidden value")


def test_custom_keys_and_patterns_from_qadmin_toml(cli: Cli, tmp_path: Path) -> None:
    b = open_backend(cli.url)
    job = b.enqueue(NewJob("qadmin.examples.noop", [{"mothers_maiden": "smith", "note": "ref ACME-1234"}]))
    b.close()
    config = tmp_path / "qadmin.toml"
    config.write_text('[redact]\nkeys = ["maiden"]\npatterns = ["ACME-\\\\d+"]\n', encoding="utf-8")
    shown = cli.json("--config", str(config), "show", str(job.id))
    assert shown["args"] == [{"mothers_maiden": MARKER, "note": f"ref {MARKER}"}]
    config.write_text('[redact]\npatterns = ["(oops"]\n', encoding="utf-8")
    one_error_line(cli("--config", str(config), "show", str(job.id)), 2, "[redact] patterns: pattern 1")
