"""What an installed qadmin ships: every file the package reads at run time (templates, static
files such as the favicon, styles, Lua scripts) is package data, so `pip install .` serves the
same dashboard as a checkout."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import qadmin

ROOT = Path(qadmin.__file__).resolve().parent


def test_every_non_python_file_of_the_package_is_package_data() -> None:
    pyproject = tomllib.loads((ROOT.parent / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["*"]
    shipped = [p for p in ROOT.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert any(p.name == "favicon.svg" for p in shipped)
    missing = [str(p.relative_to(ROOT)) for p in shipped if not any(fnmatch(p.name, pat) for pat in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_the_favicon_is_served(web) -> None:
    response = web.get("/static/qadmin/favicon.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert 'rel="icon"' in web.html("/") and "favicon.svg" in web.html("/")
