"""The worker's word on paused queues: said when the paused queues it serves change, so that an idle
worker with work waiting in a paused queue is never silent."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from qadmin.backends.base import WorkerSession
from qadmin.errors import QadminError
from qadmin.text import visible

log = logging.getLogger("qadmin.worker")


class PausedNotice:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def note(self, session: WorkerSession, queues: Sequence[str]) -> None:
        """Say which of `queues` are paused when that changes (a burst worker says it before it leaves)."""
        try:
            paused = session.paused()
        except QadminError as exc:
            log.debug("cannot read the paused queues: %s", exc)
            return
        served = set(queues)
        shown = sorted(q for q in paused if "*" in served or q in served or q == "*")
        if shown == self.seen:
            return
        if shown:
            log.warning(
                "paused %s not served until resumed (`qadmin resume QUEUE`): %s",
                "queue" if len(shown) == 1 else "queues",
                ", ".join(visible(q) if q else "''" for q in shown),
            )
        else:
            log.info("no served queue is paused any more")
        self.seen = shown
