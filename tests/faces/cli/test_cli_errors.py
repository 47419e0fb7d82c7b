"""`qadmin errors` by fingerprint (issue #17): groups with their pattern and sample, `errors show`
with the exact variants, and `retry` / `delete --fingerprint` of a group (dry run first)."""

from __future__ import annotations

from typing import Any

import pytest

from qadmin.backends import open_backend
from qadmin.fingerprints import fingerprint
from qadmin.job import NewJob, utcnow
from tests.faces.cli.test_cli import Cli, cli, one_error_line  # noqa: F401 - the fixture

RECIPIENTS = [f"ValueError: invalid recipient 'customer{i}'" for i in range(3)]
GROUP = fingerprint(RECIPIENTS[0]).id


@pytest.fixture
def failures(cli: Cli) -> dict[str, Any]:
    b = open_backend(cli.url)
    ids: dict[str, Any] = {"group": []}
    for n, error in enumerate([*RECIPIENTS, "KeyError: 'x'"]):
        job = b.enqueue(NewJob("qadmin.examples.SendEmail", [n], queue="mail"))
        claimed = b.claim(["mail"], "w", utcnow(), 3600, lambda j, job=job: j.id == job.id)
        assert claimed is not None
        b.fail(claimed, "w", utcnow(), error + "\nTraceback", None)
        if error in RECIPIENTS:
            ids["group"].append(str(job.id))
        else:
            ids["other"] = str(job.id)
    b.close()
    return ids


def test_errors_lists_groups_by_fingerprint(cli: Cli, failures: dict) -> None:
    groups = cli.json("errors")
    assert [(g["count"], g["pattern"]) for g in groups] == [
        (3, "ValueError: invalid recipient '<…>'"),
        (1, "KeyError: '<…>'"),
    ]
    first = groups[0]
    assert first["fingerprint"] == GROUP and first["error"] in RECIPIENTS and len(first["variants"]) == 3
    assert first["first_failed_at"] <= first["last_failed_at"]
    table = cli("errors", "--class", "SendEmail").stdout
    assert GROUP in table and "invalid recipient '<…>'" in table and "e.g. ValueError" in table


def test_errors_show_lists_the_exact_variants(cli: Cli, failures: dict) -> None:
    shown = cli("errors", "show", GROUP)
    assert shown.exit_code == 0, shown.output
    for error in RECIPIENTS:
        assert error in shown.stdout
    assert "3 variants" in shown.stdout and f"retry --fingerprint {GROUP}" in shown.stdout
    as_json = cli.json("errors", "show", GROUP.upper(), "--json")
    assert as_json["count"] == 3 and sorted(v["error"] for v in as_json["variants"]) == RECIPIENTS
    one_error_line(cli("errors", "show", "000000000000"), 2, "no failed jobs with error fingerprint")
    one_error_line(cli("errors", "show", "not-one"), 2, "12 hex digits")


def test_retry_and_delete_a_group(cli: Cli, failures: dict) -> None:
    before = cli.snapshot()
    dry = cli.json("retry", "--fingerprint", GROUP, "--dry-run", "--json")
    assert dry["dry_run"] and dry["matched"] == 3 and dry["changed"] == 0
    assert cli.snapshot() == before
    listed = cli.json("jobs", "--fingerprint", GROUP)
    assert sorted(str(j["id"]) for j in listed) == sorted(failures["group"])
    result = cli("retry", "--fingerprint", GROUP)
    assert result.exit_code == 0 and "Retried 3 of 3" in result.stdout, result.output
    assert {cli.json("show", i)["state"] for i in failures["group"]} == {"pending"}
    assert cli.json("show", failures["other"])["state"] == "failed"
    audit = cli.json("audit")[0]
    assert audit["verb"] == "retry" and audit["selection"]["fingerprint"] == GROUP
    other = fingerprint("KeyError: 'x'").id
    assert "1 job would be deleted" in cli("delete", "--fingerprint", other, "--dry-run").stdout
    assert cli("delete", "--fingerprint", other, "--yes").exit_code == 0
    assert cli.json("errors") == []
    one_error_line(cli("retry", "--fingerprint", "zz"), 2, "12 hex digits")
