"""Shared pytest setup: real servers (tests/servers.py) and the browser (tests/browser.py)."""

import sys
from pathlib import Path

# make `tests.servers` / `tests.browser` importable however pytest was started
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

pytest_plugins = ["tests.servers", "tests.browser"]
