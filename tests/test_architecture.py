"""The layering of docs/architecture.md, checked: import-linter's contracts (pyproject.toml) and a fresh
interpreter proving that the CLI starts without the TUI and web stacks."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports is not installed (pip install 'qadmin[test]')")
    res = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if res.returncode != 0 and importlib.util.find_spec("qadmin.backends.redis") is None:
        # import-linter resolves the lazy `from qadmin.backends.redis import ...` in open_backend to
        # the package root while redis.py does not exist, and the root re-exports the client
        broken = re.findall(r"^- (\S+) -> (\S+) \(l\.\d+\)$", res.stdout, re.M)
        if broken and set(broken) == {("qadmin.backends.base", "qadmin")}:
            pytest.xfail("qadmin/backends/redis.py does not exist yet (the Redis backend is being written)")
    assert res.returncode == 0, res.stdout + res.stderr
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = pyproject["tool"]["importlinter"]["contracts"]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in res.stdout


def test_the_cli_does_not_import_the_tui_or_web_stacks() -> None:
    code = (
        "import sys, json, qadmin.cli, qadmin.ops, qadmin.worker, qadmin.supervisor;"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    loaded = set(json.loads(res.stdout))
    assert not loaded & {"textual", "flask", "werkzeug", "jinja2", "waitress", "playwright"}, loaded


def test_the_core_does_not_import_click_or_a_database_driver_it_does_not_use() -> None:
    code = (
        "import sys, json, qadmin, qadmin.ops, qadmin.worker;"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    loaded = set(json.loads(res.stdout))
    assert not loaded & {"click", "rich", "textual", "flask", "psycopg", "redis", "pymysql"}, loaded
