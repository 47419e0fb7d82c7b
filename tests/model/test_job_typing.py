"""`@qadmin.job` functions are typed: mypy --strict sees a job's parameters through `.delay`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """
import qadmin
from qadmin.job import Job


@qadmin.job("typing.send", queue="mail")
def send(to: str, copies: int = 1) -> str:
    return to * copies


@qadmin.job("typing.Report")
class Report:
    def perform(self, day: str) -> None: ...


ran: str = send("ann@example.com")
queued: Job = send.delay("ann@example.com", copies=2)
later: Job = send.options(queue="urgent", delay=60).delay("bob@example.com")
Report().perform("2026-12-07")
"""


def mypy(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "snippet.py"
    source.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--follow-imports=silent",
            "--config-file=/dev/null",
            str(source),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    )


def test_right_arguments_type_check(tmp_path: Path) -> None:
    done = mypy(tmp_path, SNIPPET)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrong_argument_type_is_a_type_error(tmp_path: Path) -> None:
    done = mypy(tmp_path, SNIPPET + 'send.delay(1)\nsend.options(queue="q").delay("a", colour=2)\n')
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'Argument 1 to "delay" of "JobFunction" has incompatible type "int"; expected "str"' in done.stdout
    assert 'Unexpected keyword argument "colour" for "delay" of "JobCall"' in done.stdout
