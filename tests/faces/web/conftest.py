"""Fixtures for the web dashboard tests: demo data, the app with a logged-in test client, and the
app served by waitress on a free loopback port for the browser."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qadmin.backends import open_backend
from qadmin.demo import fill
from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import LiveServer, Web


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`qadmin demo` once per session into a SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("web-demo") / "demo.db"
    backend = open_backend(f"sqlite:///{path}")
    fill(backend)
    backend.close()
    return path


@pytest.fixture
def demo_sqlite_url(demo_template: Path, tmp_path: Path) -> str:
    dest = tmp_path / "qadmin.db"
    shutil.copy(demo_template, dest)
    for suffix in ("-wal", "-shm"):
        extra = demo_template.with_name(demo_template.name + suffix)
        if extra.exists():
            shutil.copy(extra, dest.with_name(dest.name + suffix))
    return f"sqlite:///{dest}"


@pytest.fixture(params=["sqlite", "redis"])
def demo_url(request: pytest.FixtureRequest) -> str:
    """Demo data on every backend the dashboard must work on."""
    if request.param == "sqlite":
        return request.getfixturevalue("demo_sqlite_url")
    url = request.getfixturevalue("redis_url")
    backend = open_backend(url)
    fill(backend)
    backend.close()
    return url


@pytest.fixture
def ops(demo_sqlite_url: str) -> Iterator[Ops]:
    opened = Ops.open(demo_sqlite_url, face="test")
    yield opened
    opened.close()


@pytest.fixture
def app(ops: Ops) -> Any:
    return create_app(ops, {"TESTING": True})


@pytest.fixture
def web(app: Any) -> Web:
    """A logged-in client on the SQLite demo data."""
    return Web(app).login()


@pytest.fixture
def live_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty qadmin.toml (so the developer's own config never leaks in) and no password."""
    monkeypatch.delenv("QADMIN_WEB_PASSWORD", raising=False)
    monkeypatch.delenv("QADMIN_CONFIG", raising=False)
    path = tmp_path / "qadmin.toml"
    path.write_text('[web]\nrefresh = "1s"\n', encoding="utf-8")
    return path


@pytest.fixture
def live(demo_url: str, live_config: Path) -> Iterator[LiveServer]:
    """`qadmin web`'s own waitress server on demo data, on a free loopback port."""
    from qadmin.settings import resolve
    from qadmin.web.serve import build

    state = resolve(url=demo_url, config_file=str(live_config), environ={})
    with LiveServer(build(state, host="127.0.0.1", port=0)) as server:
        server.demo_url = demo_url  # type: ignore[attr-defined]
        yield server
