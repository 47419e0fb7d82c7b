#!/usr/bin/env python
"""Render every screen of `qadmin tui` on the demo data into screenshots/tui-*.svg (+ .png).

    python scripts/screenshots_tui.py [--out screenshots] [--only overview,jobs]

The data is `qadmin demo`'s at fixed times (tests/faces/tui/demo_data.py) and the keys pressed are the
snapshot tests' (tests/faces/tui/scenes.py), so the pictures change only when the screens do. PNGs are
drawn by Debian's chromium through Playwright when both are installed (as for the browser
tests), else by rsvg-convert or cairosvg when one of them is available.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM_ARGS, chromium_path  # noqa: E402
from tests.faces.tui.scenes import SCENES, demo_app, demo_database  # noqa: E402


def render(url: str, name: str) -> str:
    size, scene = SCENES[name]
    app = demo_app(url)
    shot: dict[str, str] = {}

    async def pilot_run(pilot) -> None:  # type: ignore[no-untyped-def]
        await scene(pilot)
        shot["svg"] = app.export_screenshot(title=f"qadmin tui · {name}")
        app.exit()

    app.run(headless=True, size=size, auto_pilot=pilot_run)
    return shot["svg"]


class Chromium:
    """PNGs drawn by a browser: the SVGs' monospace layout and web fonts come out as intended
    (rsvg-convert collapses runs of spaces and lacks some glyphs)."""

    def __init__(self) -> None:
        self.playwright = self.browser = None
        exe = chromium_path()
        if exe is None:
            return
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            return
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)

    def png(self, svg: Path) -> Path | None:
        if self.browser is None:
            return None
        match = re.search(r'viewBox="0 0 ([0-9.]+) ([0-9.]+)"', svg.read_text(encoding="utf-8")[:400])
        if not match:
            return None
        width, height = (math.ceil(float(v)) for v in match.groups())
        page = self.browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
        try:
            page.goto(svg.resolve().as_uri())
            png = svg.with_suffix(".png")
            page.screenshot(path=str(png), omit_background=True)
            return png
        finally:
            page.close()

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()
        if self.playwright is not None:
            self.playwright.stop()


def to_png(svg: Path, chromium: Chromium) -> Path | None:
    png = chromium.png(svg)
    if png is not None:
        return png
    png = svg.with_suffix(".png")
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", "--width", "1600", "--keep-aspect-ratio", "-o", str(png), str(svg)], check=True)
        return png
    try:
        import cairosvg  # type: ignore[import-not-found]
    except ImportError:
        return None
    cairosvg.svg2png(url=str(svg), write_to=str(png))
    return png


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--only", help="comma-separated scene names: " + ", ".join(SCENES))
    options = parser.parse_args()
    names = options.only.split(",") if options.only else list(SCENES)
    unknown = [n for n in names if n not in SCENES]
    if unknown:
        parser.error(f"unknown scene(s): {', '.join(unknown)}")
    options.out.mkdir(parents=True, exist_ok=True)
    svgs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            # a fresh database per scene: no scene sees what another one changed
            (Path(tmp) / name).mkdir()
            url = demo_database(Path(tmp) / name)
            svg = options.out / f"tui-{name}.svg"
            svg.write_text(render(url, name), encoding="utf-8")
            svgs.append(svg)
    # after every app has run: a started sync Playwright keeps an asyncio loop marked running
    chromium = Chromium()
    try:
        for svg in svgs:
            png = to_png(svg, chromium)
            print(f"{svg.relative_to(ROOT) if svg.is_relative_to(ROOT) else svg}" + (" + .png" if png else ""))
    finally:
        chromium.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
