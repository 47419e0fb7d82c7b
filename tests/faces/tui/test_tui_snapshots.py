"""Snapshots of the main screens on the fixed-time demo data (tests/faces/tui/demo_data.py).

After changing a screen on purpose: `python -m pytest tests/faces/tui/test_tui_snapshots.py
--snapshot-update`, read the SVGs under __snapshots__/ (or the HTML report a failing run writes),
then regenerate the README pictures with scripts/screenshots_tui.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.faces.tui.scenes import SCENES, demo_app, demo_database


@pytest.mark.parametrize("name", list(SCENES))
def test_screen_matches_its_snapshot(name: str, snap_compare: Any, tmp_path: Path) -> None:
    size, scene = SCENES[name]
    assert snap_compare(demo_app(demo_database(tmp_path)), terminal_size=size, run_before=scene)
