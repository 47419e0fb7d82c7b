"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright's sync API.

Loaded as a pytest plugin by tests/conftest.py. Fixtures:

    browser  playwright.sync_api.Browser, Debian chromium, headless. One instance is
             shared by consecutive tests that use it (launch ~1-2 s); it is shut down
             before any test that doesn't, because a started sync Playwright makes
             asyncio.run() fail in the main thread (see _Chromium).
    page     (function) a Page in a fresh BrowserContext (closed after the test);
             default timeout 15 s

Playwright's own browser download is never used (it can't work here): we point it at the
system chromium with executable_path. A missing chromium or playwright package fails the
test when CI is set and skips it otherwise.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.servers import missing

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # no network here but loopback: without these chromium keeps dialling Google hosts
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

DEFAULT_TIMEOUT_MS = 15_000


def chromium_path() -> str | None:
    explicit = os.environ.get("QADMIN_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class _Chromium:
    """One Playwright + chromium, shared by consecutive tests that use it.

    Playwright's sync API leaves its asyncio loop marked as *running* in the main
    thread for as long as it is started, and then asyncio.run() (Textual's run_test,
    snapshot tests...) fails with "cannot be called from a running event loop". So the
    browser is shut down before any test that does not use it, and launched again
    (about 1-2 s) for the next one that does.
    """

    def __init__(self) -> None:
        self._pw = None
        self._browser = None

    def get(self):
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        self.close()
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            missing("the 'playwright' Python package is not installed")
        exe = chromium_path()
        if exe is None:
            missing("chromium is not installed (Debian package chromium)")
        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(
                executable_path=exe,
                headless=True,
                args=CHROMIUM_ARGS,
                timeout=60_000,
            )
        except BaseException:
            self.close()
            raise
        return self._browser

    def close(self) -> None:
        browser, pw = self._browser, self._pw
        self._browser = self._pw = None
        try:
            if browser is not None:
                browser.close()
        except Exception:  # noqa: BLE001 - closing a browser that already died
            pass
        finally:
            if pw is not None:
                pw.stop()


_chromium = _Chromium()
_BROWSER_FIXTURES = {"browser", "page"}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    if not _BROWSER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        _chromium.close()


def pytest_sessionfinish(session) -> None:
    _chromium.close()


@pytest.fixture
def browser():
    """playwright.sync_api.Browser on Debian's chromium (shared with neighbouring tests).

    While a test holds it, don't call asyncio.run() in that test's thread."""
    return _chromium.get()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()
