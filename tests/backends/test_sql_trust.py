"""SQL answers an operator can believe (issue 13): `--search` reads the last error too."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from qadmin.job import NewJob, utcnow
from tests.interop._support import cli


def test_cli_search_finds_text_only_in_the_last_error(sql_url: str, sql_backend: Any) -> None:
    now = utcnow()
    failing = sql_backend.enqueue(NewJob(class_name="qadmin.examples.noop", args=("a",)), now)
    sql_backend.enqueue(NewJob(class_name="qadmin.examples.noop", args=("b",)), now)
    engine = sa.create_engine(sql_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE delayed_jobs SET last_error = :e, failed_at = :at, attempts = 25 WHERE id = :id"),
                {
                    "e": "SMTPAuthenticationError: Bad Credentials\nline 1",
                    "at": now.replace(tzinfo=None),
                    "id": failing.id,
                },
            )
    finally:
        engine.dispose()
    for needle in ("smtpauthenticationerror", "Bad Credentials"):
        found = cli(sql_url, "jobs", "--search", needle, "--json")
        assert [j["id"] for j in found] == [failing.id], needle
        assert cli(sql_url, "jobs", "--search", needle, "--state", "failed", "--json")[0]["id"] == failing.id
    assert cli(sql_url, "jobs", "--search", "nowhere at all", "--json") == []
