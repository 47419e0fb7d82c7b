"""Every package the tests import is installed by the project's own files (`pip install -e '.[test]'`,
which scripts/install-test-deps runs), not by luck: a package that happens to be on a developer's
machine lets a test pass there and fail on a fresh CI machine.

The imports are read from the test files and from the bench modules the tests run (imported, or
named as `python -m bench.x`), wherever they sit (inside functions and `try` blocks too).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
EXTRA = "test"
#: top-level names that are the repository's own code
LOCAL = {p.stem for p in ROOT.iterdir() if p.is_dir() or p.suffix == ".py"}
BENCH_MODULE = re.compile(r"^bench\.(\w+)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _scan(path: Path, imports: dict[str, set[str]], bench: set[str]) -> None:
    where = str(path.relative_to(ROOT))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "bench":
                names += [f"bench.{a.name}" for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and BENCH_MODULE.match(node.value):
            names = [node.value]
        for name in names:
            match = BENCH_MODULE.match(name)
            if match and (ROOT / "bench" / f"{match[1]}.py").exists():
                bench.add(match[1])
            imports.setdefault(name.split(".")[0], set()).add(where)


def imported_by_tests() -> dict[str, set[str]]:
    """Top-level module name -> the files importing it (tests, and the bench modules they reach)."""
    imports: dict[str, set[str]] = {}
    bench: set[str] = set()
    for path in sorted((ROOT / "tests").rglob("*.py")):
        _scan(path, imports, bench)
    done: set[str] = set()
    while bench - done:
        name = min(bench - done)
        done.add(name)
        _scan(ROOT / "bench" / f"{name}.py", imports, bench)
    return imports


def declared(extra: str) -> list[Requirement]:
    """The project's requirements with `extra`, as pyproject.toml states them (self-references expanded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = [Requirement(s) for s in project.get("dependencies", [])]
    seen: set[str] = set()
    todo = [extra]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in project.get("optional-dependencies", {}).get(name, []):
            req = Requirement(spec)
            if _canonical(req.name) == _canonical(project["name"]):
                todo.extend(req.extras)
            else:
                reqs.append(req)
    return reqs


def required_by(reqs: list[Requirement]) -> tuple[set[str], list[str]]:
    """(canonical names of every distribution `reqs` pull in, through the installed metadata;
    the requirements that are not installed)."""
    wanted: dict[str, set[str]] = {}
    missing: list[str] = []
    todo = [(r.name, set(r.extras)) for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]
    while todo:
        name, want = todo.pop()
        key = _canonical(name)
        if key in wanted and want <= wanted[key]:
            continue
        wanted.setdefault(key, set()).update(want)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in {"", *wanted[key]}):
                todo.append((req.name, set(req.extras)))
    return set(wanted), missing


def test_every_package_a_test_imports_is_installed_by_the_test_extra() -> None:
    required, not_installed = required_by(declared(EXTRA))
    assert not_installed == [], f"the `{EXTRA}` extra's requirements not installed: {not_installed}"
    providers = metadata.packages_distributions()
    problems = []
    for module, files in sorted(imported_by_tests().items()):
        if module in sys.stdlib_module_names or module in LOCAL:
            continue
        dists = providers.get(module)
        if not dists:
            problems.append(f"{module} (imported by {', '.join(sorted(files))}) is not installed")
        elif not {_canonical(d) for d in dists} & required:
            problems.append(
                f"{module} (imported by {', '.join(sorted(files))}) comes from {', '.join(dists)}, "
                f"which the `{EXTRA}` extra does not require"
            )
    assert problems == [], "add to the `test` extra of pyproject.toml:\n" + "\n".join(problems)


def test_the_scan_sees_imports_inside_functions_and_the_bench_modules_tests_run() -> None:
    imports = imported_by_tests()
    # tests/project/test_bench_smoke.py runs `python -m bench.enqueue`, which imports rq inside a function
    assert "bench/enqueue.py" in imports["rq"]
    assert "tests/faces/web/test_web_browser.py" in imports["playwright"]
