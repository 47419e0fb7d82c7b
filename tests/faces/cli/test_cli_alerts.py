"""`qadmin alerts [--json]`, `qadmin alerts check [--dry-run]` and the alert check of `qadmin
scheduler` passes, with qadmin.toml's rules and a real webhook receiver (tests/webhook.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from qadmin.backends import open_backend
from qadmin.cli import main
from qadmin.job import WorkerInfo, utcnow
from tests.webhook import SECRET_PATH, Receiver, receiver  # noqa: F401 - the fixture


def run_cli(config: Path, *args: str) -> Result:
    env = {"QADMIN_URL": None, "QADMIN_CONFIG": str(config), "QADMIN_BACKEND": None}
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def write_config(tmp_path: Path, hook: str) -> tuple[Path, str]:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    backend = open_backend(url)
    backend.init()
    backend.close()
    path = tmp_path / "qadmin.toml"
    path.write_text(
        f"""
[backends.local]
url = "{url}"

[alerts]
webhook = "{hook}"
every = "1s"

[alerts.mail-unserved]
kind = "no_worker"
queue = "mail"
for = "1m"

[alerts.mail-slow]
kind = "latency"
queue = "mail"
above = "5m"
""",
        encoding="utf-8",
    )
    return path, url


def test_alerts_lists_checks_dry_runs_and_sends_once(tmp_path: Path, receiver: Receiver) -> None:
    config, url = write_config(tmp_path, receiver.url)
    listed = as_json(run_cli(config, "alerts", "--json"))
    assert [(r["name"], r["state"]) for r in listed["rules"]] == [("mail-unserved", "firing"), ("mail-slow", "ok")]
    assert listed["incidents"] == []
    assert listed["rules"][0]["webhook"] == "http://127.0.0.1/…"
    dry = as_json(run_cli(config, "alerts", "check", "--dry-run", "--json"))
    assert dry["dry_run"] and dry["opened"] == ["mail-unserved"] and dry["sent"] == []
    assert receiver.messages() == [] and as_json(run_cli(config, "alerts", "--json"))["incidents"] == []
    checked = as_json(run_cli(config, "alerts", "check", "--json"))
    assert checked["opened"] == ["mail-unserved"] and checked["sent"] == [
        {"rule": "mail-unserved", "message": "firing"}
    ]
    assert as_json(run_cli(config, "alerts", "check", "--json"))["sent"] == []
    assert receiver.messages() == [("mail-unserved", "firing")]
    [incident] = as_json(run_cli(config, "alerts", "--json"))["incidents"]
    assert incident["rule"] == "mail-unserved" and incident["details"] == "no worker serves queue mail"
    table = run_cli(config, "alerts")
    assert table.exit_code == 0 and "mail-unserved" in table.output and "firing" in table.output
    assert SECRET_PATH not in table.output + json.dumps(listed)


def test_scheduler_passes_check_the_alerts(tmp_path: Path, receiver: Receiver) -> None:
    config, url = write_config(tmp_path, receiver.url)
    for _ in range(2):  # two scheduler processes, one after the other: one message
        assert run_cli(config, "scheduler", "--once").exit_code == 0
    assert receiver.messages() == [("mail-unserved", "firing")]
    backend = open_backend(url)
    now = utcnow()
    backend.register_worker(
        WorkerInfo(name="host:h pid:77", host="h", pid=77, queues=["*"], started_at=now, heartbeat_at=now)
    )
    backend.close()
    assert run_cli(config, "scheduler", "--once").exit_code == 0
    assert receiver.messages() == [("mail-unserved", "firing"), ("mail-unserved", "resolved")]


def test_a_bad_rule_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "qadmin.toml"
    path.write_text('[alerts.x]\nkind = "latency"\nqueue = "q"\n', encoding="utf-8")
    result = CliRunner(env={"QADMIN_CONFIG": str(path), "QADMIN_URL": "sqlite:///:memory:"}).invoke(main, ["alerts"])
    assert result.exit_code == 2 and "[alerts.x] needs above" in result.output
