"""`[retention]` in qadmin.toml: durations or "never", checked when the file is read, and handed
to the backend as its options (what `qadmin prune` and the workers' automatic prune go by)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qadmin.config import Retention, read_retention
from qadmin.errors import ConfigError
from qadmin.ops import open_settings_backend
from qadmin.settings import resolve

DAY = 86400.0


def test_the_defaults_keep_failed_jobs_a_month_finished_records_a_week_dead_workers_a_day() -> None:
    assert read_retention(None) == Retention(failed=30 * DAY, finished=7 * DAY, workers=DAY, prune_every=3600.0)


def test_durations_and_never() -> None:
    got = read_retention({"failed": "never", "finished": "2d", "workers": 0, "prune_every": "OFF"})
    assert got == Retention(failed=None, finished=2 * DAY, workers=None, prune_every=None)
    assert read_retention({"failed": 90}).failed == 90.0


@pytest.mark.parametrize(
    "table,says",
    [
        ({"failed": "soon"}, "failed"),
        ({"failed": True}, "failed"),
        ({"finished": "never"}, "finished"),
        ({"finished": 0}, "finished"),
        ({"workers": "-1d"}, "workers"),
        ({"keep": "1d"}, "keep"),
        ("30d", "table"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(table: object, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        read_retention(table)


def test_the_backend_is_opened_with_the_files_retention(tmp_path: Path) -> None:
    path = tmp_path / "qadmin.toml"
    url = f"sqlite:///{tmp_path / 'q.db'}"
    path.write_text(f'[backends.a]\nurl = "{url}"\n[retention]\nfailed = "never"\nworkers = "2h"\n', encoding="utf-8")
    backend = open_settings_backend(resolve(config_file=str(path), environ={}))
    try:
        options = backend.options
        assert (options.failed_retention, options.finished_retention) == (None, 7 * DAY)
        assert (options.worker_retention, options.prune_every) == (7200.0, 3600.0)
    finally:
        backend.close()
