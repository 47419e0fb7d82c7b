"""The layering of docs/architecture.md, checked: import-linter's contracts (pyproject.toml), no import
circle inside qadmin, no file over 500 lines, and a fresh interpreter proving that the CLI starts
without the TUI and web stacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

import qadmin

ROOT = Path(__file__).resolve().parents[2]
#: the most lines a file under qadmin/ may have (after `ruff format`): one concern a module
MAX_LINES = 500


def test_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports is not installed (pip install 'qadmin[test]')")
    res = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
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


def _import_circles(graph: grimp.ImportGraph) -> list[tuple[list[str], set[str]]]:
    """Each group of modules that import each other (directly or through others), with its
    shortest circle: from the group's first module back to itself."""
    circles: list[tuple[list[str], set[str]]] = []
    seen: set[str] = set()
    for module in sorted(graph.modules):
        if module in seen:
            continue
        group = graph.find_upstream_modules(module) & graph.find_downstream_modules(module)
        if not group:
            continue
        group.add(module)
        seen |= group
        shortest: list[str] | None = None
        for imported in graph.find_modules_directly_imported_by(module) & group:
            back = graph.find_shortest_chain(importer=imported, imported=module) or (imported,)
            if shortest is None or len(back) + 1 < len(shortest):
                shortest = [module, *back]
        assert shortest is not None
        circles.append((shortest, group))
    return circles


def _describe_circle(graph: grimp.ImportGraph, circle: list[str], group: set[str]) -> str:
    steps = [circle[0]]
    for importer, imported in zip(circle, circle[1:]):
        lines = sorted(d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported))
        steps.append(f"{imported} (l.{', '.join(map(str, lines))})")
    return " -> ".join(steps) + f"\n  (all of these import each other: {', '.join(sorted(group))})"


def test_no_import_circle_inside_qadmin() -> None:
    # every import counts: at module level, inside functions, and under TYPE_CHECKING
    assert Path(qadmin.__file__).parent == ROOT / "qadmin", "grimp would read another checkout's qadmin"
    graph = grimp.build_graph("qadmin", cache_dir=None)
    circles = _import_circles(graph)
    assert not circles, "import circles inside qadmin:\n" + "\n".join(_describe_circle(graph, c, g) for c, g in circles)


def test_no_file_under_qadmin_is_over_500_lines() -> None:
    too_long: dict[str, int] = {}
    for path in sorted((ROOT / "qadmin").rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        try:
            lines = path.read_text(encoding="utf-8").count("\n")
        except UnicodeDecodeError:  # an image: no lines to count
            continue
        if lines > MAX_LINES:
            too_long[str(path.relative_to(ROOT))] = lines
    assert not too_long, f"files over {MAX_LINES} lines: {too_long}"
