"""The console test harness: a demo backend with its clock, and the real app driven by the pilot
from a plain (non-async) test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qadmin.backends import open_backend
from qadmin.ops import Ops
from qadmin.tui.app import QadminApp
from tests.faces.tui.demo_data import ACTOR

#: the terminal the behaviour tests run in
SIZE = (120, 36)


@dataclass
class Console:
    """A backend full of demo jobs, and the clock the console sees it with."""

    kind: str
    url: str
    clock: Callable[[], datetime]

    def ops(self) -> Ops:
        """A separate Ops for the test's own checks (not the one the app uses)."""
        return Ops(open_backend(self.url), face="test", actor=ACTOR, clock=self.clock)

    def app(self, **kwargs: Any) -> QadminApp:
        ops = Ops(open_backend(self.url), face="tui", actor=ACTOR, clock=self.clock)
        kwargs.setdefault("backend_name", f"demo-{self.kind}")
        app = QadminApp(ops, **kwargs)
        app.animation_level = "none"  # the pilot waits for animations after every key
        return app


def drive(
    app: QadminApp,
    scenario: Callable[[Any], Awaitable[None]],
    size: tuple[int, int] = SIZE,
    message_hook: Callable[[Any], None] | None = None,
) -> None:
    """Run the app headless and let `scenario(pilot)` press keys; any failure inside fails the test."""

    async def main() -> None:
        async with app.run_test(size=size, message_hook=message_hook) as pilot:
            await scenario(pilot)

    asyncio.run(main())


async def wait_for(pilot: Any, condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)
