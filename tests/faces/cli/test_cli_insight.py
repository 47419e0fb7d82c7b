"""`qadmin metrics` and `qadmin history`: tables and --json over recorded history, narrowing,
and bad ranges, sorts and windows refused with exit status 2."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from qadmin.backends import open_backend
from qadmin.cli import main
from qadmin.insight import HistorySample
from qadmin.job import utcnow


def run_cli(url: str, *args: str) -> Result:
    env = {"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None, "COLUMNS": "200"}
    return CliRunner(env=env).invoke(main, ["--url", url, *args], catch_exceptions=False)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    b = open_backend(url)
    b.init()
    minute = utcnow().replace(second=0, microsecond=0)
    samples = []
    for ago in range(120):
        mail = HistorySample(minute - timedelta(minutes=ago), "mail", "Mail", processed=3, failed=ago % 2)
        for _ in range(3 + ago % 2):
            mail.add_run(0.1)
        mail.add_latency(2.0)
        samples.append(mail)
    flaky = HistorySample(minute, "jobs", "Flaky", processed=1, failed=3)
    for _ in range(4):
        flaky.add_run(1.5)
    samples.append(flaky)
    b.record_history(samples)
    b.close()
    return url


def test_metrics_json_lists_each_class(url: str) -> None:
    out = run_cli(url, "metrics", "--window", "1h", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["window"] == "1h"
    classes = {c["class"]: c for c in doc["classes"]}
    assert [c["class"] for c in doc["classes"]] == ["Mail", "Flaky"]  # -runs
    assert classes["Mail"]["runs"] == 60 * 3 + 30 and classes["Mail"]["failed"] == 30
    assert classes["Mail"]["p50"] == pytest.approx(0.1, rel=0.05)
    assert classes["Mail"]["runs_change"] == pytest.approx(1.0)
    assert classes["Flaky"]["failure_rate"] == 0.75 and classes["Flaky"]["runs_change"] is None
    by_p95 = json.loads(run_cli(url, "metrics", "--window", "1h", "--sort", "-p95", "--json").stdout)
    assert [c["class"] for c in by_p95["classes"]] == ["Flaky", "Mail"]
    only = json.loads(run_cli(url, "metrics", "--queue", "jobs", "--json").stdout)
    assert [c["class"] for c in only["classes"]] == ["Flaky"]


def test_metrics_table_marks_a_high_failure_rate(url: str) -> None:
    out = run_cli(url, "metrics", "--window", "90m")
    assert out.exit_code == 0, out.output
    assert "Flaky" in out.stdout and "75.0%" in out.stdout and "P95" in out.stdout
    assert "new" in out.stdout  # Flaky had no runs in the window before


def test_history_json_has_a_point_per_minute(url: str) -> None:
    out = run_cli(url, "history", "--range", "1h", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["resolution"] == "minute" and len(doc["points"]) == 60
    assert sum(p["processed"] for p in doc["points"]) == 60 * 3 + 1
    assert doc["points"][-1]["latency"] == 2.0
    hours = json.loads(run_cli(url, "history", "--range", "7d", "--class", "Mail", "--json").stdout)
    assert len(hours["points"]) == 168 and hours["class"] == "Mail"
    assert sum(p["processed"] for p in hours["points"]) == 120 * 3
    nothing = json.loads(run_cli(url, "history", "--queue", "nowhere", "--json").stdout)
    assert len(nothing["points"]) == 1440 and not any(p["processed"] for p in nothing["points"])


def test_history_table_and_sparkline(url: str) -> None:
    out = run_cli(url, "history", "--range", "24h", "--queue", "mail")
    assert out.exit_code == 0, out.output
    assert "per minute" in out.stdout and "queue mail" in out.stdout
    assert "PROCESSED" in out.stdout and "LATENCY" in out.stdout and "2.00s" in out.stdout
    assert any(ch in out.stdout for ch in "▁▂▃▄▅▆▇█")


@pytest.mark.parametrize(
    "args",
    [
        ("history", "--range", "2h"),
        ("metrics", "--sort", "speed"),
        ("metrics", "--window", "soon"),
        ("metrics", "--window", "5s"),
    ],
)
def test_bad_ranges_sorts_and_windows_exit_2(url: str, args: tuple[str, ...]) -> None:
    out = run_cli(url, *args)
    assert out.exit_code == 2, out.output
