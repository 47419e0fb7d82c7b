"""`[history]` in qadmin.toml: whether workers record, and how long minutes and hours are kept,
checked when the file is read and handed to the backend and the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from qadmin.config import load_config
from qadmin.errors import ConfigError
from qadmin.insight import DEFAULT_HOURS_KEPT, DEFAULT_MINUTES_KEPT, HistoryConfig
from qadmin.ops import open_settings_backend
from qadmin.settings import resolve


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qadmin.toml"
    path.write_text(f'[backends.a]\nurl = "sqlite:///{tmp_path / "q.db"}"\n{text}', encoding="utf-8")
    return path


def test_the_defaults_record_and_keep_a_day_of_minutes_and_30_days_of_hours(tmp_path: Path) -> None:
    assert load_config(str(config(tmp_path, ""))).history == HistoryConfig(
        True, DEFAULT_MINUTES_KEPT, DEFAULT_HOURS_KEPT
    )
    assert (DEFAULT_MINUTES_KEPT, DEFAULT_HOURS_KEPT) == (86400.0, 30 * 86400.0)


def test_the_files_history_reaches_the_backend(tmp_path: Path) -> None:
    path = config(tmp_path, '[history]\nrecord = false\nminutes = "2d"\nhours = "90d"\n')
    assert load_config(str(path)).history == HistoryConfig(False, 2 * 86400.0, 90 * 86400.0)
    backend = open_settings_backend(resolve(config_file=str(path), environ={}))
    try:
        assert (backend.options.history_minutes, backend.options.history_hours) == (2 * 86400.0, 90 * 86400.0)
    finally:
        backend.close()


@pytest.mark.parametrize(
    "text,says",
    [
        ('record = "yes"', "record"),
        ('minutes = "soon"', "minutes"),
        ('minutes = "10m"', "minutes"),
        ('hours = "2h"', "hours"),
        ('minutes = "3d"\nhours = "2d"', "hours"),
        ('keep = "1d"', "keep"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_config(str(config(tmp_path, f"[history]\n{text}\n")))
