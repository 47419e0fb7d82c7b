"""`qadmin.settings.resolve`: which backend is current, for every face alike. Precedence: the
command line, then QADMIN_URL / QADMIN_BACKEND, then the config file's default, then sqlite:///qadmin.db."""

from __future__ import annotations

from pathlib import Path

import pytest

from qadmin.config import DEFAULT_URL
from qadmin.errors import ConfigError, UsageError
from qadmin.settings import resolve


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "qadmin.toml"
    path.write_text(
        'default = "a"\n[backends.a]\nurl = "sqlite:///a.db"\ntable = "jobs"\n'
        '[backends.b]\nurl = "redis://127.0.0.1:6379/0"\nnamespace = "ns"\n'
        '[worker]\nimports = ["app.jobs"]\n',
        encoding="utf-8",
    )
    return str(path)


def test_the_command_line_then_the_environment_then_the_file_then_the_default(config: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    assert resolve(config_file=str(empty), environ={}).url == DEFAULT_URL
    from_file = resolve(config_file=config, environ={})
    assert (from_file.url, from_file.table, from_file.backend_name) == ("sqlite:///a.db", "jobs", "a")
    from_env = resolve(config_file=config, environ={"QADMIN_BACKEND": "b"})
    assert (from_env.url, from_env.namespace, from_env.backend_name) == ("redis://127.0.0.1:6379/0", "ns", "b")
    env_url = resolve(config_file=config, environ={"QADMIN_URL": "sqlite:///env.db"})
    assert (env_url.url, env_url.backend_name, env_url.table) == ("sqlite:///env.db", None, None)
    flag = resolve(url="sqlite:///flag.db", config_file=config, environ={"QADMIN_URL": "sqlite:///env.db"})
    assert flag.url == "sqlite:///flag.db"
    # a URL and a name from different sources: the command line's wins; from the same one: refused
    assert resolve(backend="a", config_file=config, environ={"QADMIN_URL": "sqlite:///env.db"}).backend_name == "a"
    assert resolve(url="sqlite:///x.db", config_file=config, environ={"QADMIN_BACKEND": "a"}).backend_name is None
    with pytest.raises(UsageError, match="not both"):
        resolve(url="sqlite:///x.db", backend="a", config_file=config, environ={})
    with pytest.raises(ConfigError, match="no backend named 'nosuch'"):
        resolve(url="sqlite:///x.db", config_file=config, environ={"QADMIN_BACKEND": "nosuch"})


def test_switching_to_a_named_backend_and_the_worker_imports(config: str) -> None:
    settings = resolve(config_file=config, environ={})
    other = settings.for_backend("b")
    assert (other.url, other.table, other.namespace, other.backend_name) == (
        "redis://127.0.0.1:6379/0",
        None,
        "ns",
        "b",
    )
    assert sorted(settings.backends) == ["a", "b"]
    assert settings.worker_imports(("mine", "app.jobs")) == ("mine", "app.jobs")
