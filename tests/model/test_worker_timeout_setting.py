"""`[worker] timeout` in qadmin.toml: when a silent qadmin worker counts as dead, the same for
every face (the web, the TUI and `qadmin unlock --stale` judge staleness with it) and for the
workers that rescue its jobs; `qadmin worker --worker-timeout` still overrides it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from qadmin.cli import main
from qadmin.config import DEFAULT_WORKER_TIMEOUT, read_worker_timeout
from qadmin.errors import ConfigError
from qadmin.ops import open_ops, open_settings_backend
from qadmin.settings import resolve


def _config(tmp_path: Path, worker: str) -> Path:
    path = tmp_path / "qadmin.toml"
    url = f"sqlite:///{tmp_path / 'q.db'}"
    path.write_text(f'[backends.a]\nurl = "{url}"\n[worker]\n{worker}\n', encoding="utf-8")
    return path


def test_silent_file_means_the_default() -> None:
    assert read_worker_timeout(None) is None
    assert read_worker_timeout({"imports": ["x"]}) is None
    assert read_worker_timeout({"timeout": "90s"}) == 90.0
    assert read_worker_timeout({"timeout": 30}) == 30.0


@pytest.mark.parametrize("value", ["soon", True, 0, "-5s", [1]])
def test_a_bad_timeout_is_refused_naming_it(value: object) -> None:
    with pytest.raises(ConfigError, match=r"\[worker\] timeout"):
        read_worker_timeout({"timeout": value})


def test_every_face_opens_its_backend_with_the_files_timeout(tmp_path: Path) -> None:
    settings = resolve(config_file=str(_config(tmp_path, 'timeout = "5m"')), environ={})
    ops = open_ops(settings, face="web")
    try:
        assert ops.backend.options.worker_timeout == 300.0
    finally:
        ops.close()
    backend = open_settings_backend(settings)
    try:
        assert backend.options.worker_timeout == 300.0
    finally:
        backend.close()
    # a worker's own flag wins over the file
    backend = open_settings_backend(settings, worker_timeout=45.0)
    try:
        assert backend.options.worker_timeout == 45.0
    finally:
        backend.close()
    default = open_settings_backend(resolve(config_file=str(_config(tmp_path, "imports = []")), environ={}))
    try:
        assert default.options.worker_timeout == DEFAULT_WORKER_TIMEOUT
    finally:
        default.close()


def test_a_worker_refuses_a_files_timeout_shorter_than_two_heartbeats(tmp_path: Path) -> None:
    path = _config(tmp_path, 'timeout = "8s"')
    result = CliRunner().invoke(main, ["--config", str(path), "worker", "--burst"], env={"QADMIN_URL": None})
    assert result.exit_code == 2, result.output
    assert "--worker-timeout must be at least twice --heartbeat-interval" in result.output
    assert CliRunner().invoke(main, ["--config", str(path), "init"], env={"QADMIN_URL": None}).exit_code == 0
    ok = CliRunner().invoke(
        main, ["--config", str(path), "worker", "--burst", "--heartbeat-interval", "2"], env={"QADMIN_URL": None}
    )
    assert ok.exit_code == 0, ok.output
