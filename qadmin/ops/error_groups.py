"""`ops.error_group`: one error group found by its fingerprint id (what `qadmin errors show`,
the web's group page and the API's `/api/errors?fingerprint=` answer)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from qadmin.backends import Backend
from qadmin.errors import ErrorGroupNotFound
from qadmin.filters import JobFilter, parse_fingerprint
from qadmin.job import JobState
from qadmin.model import ErrorGroup


class ErrorGroupOps:
    def __init__(self, backend: Backend, *, clock: Callable[[], datetime]) -> None:
        self.backend = backend
        self.clock = clock

    def selection(self, fingerprint_id: str, within: JobFilter | None = None) -> JobFilter:
        """The failed jobs of an error group (narrowed by `within`'s other fields): what retry
        and delete of the group act on."""
        wanted = parse_fingerprint(fingerprint_id)
        base = within if within is not None else JobFilter()
        return JobFilter(**{**base.__dict__, "states": frozenset({JobState.FAILED}), "fingerprint": wanted})

    def group(self, fingerprint_id: str, within: JobFilter | None = None) -> ErrorGroup:
        """The group with this fingerprint id, or ErrorGroupNotFound."""
        found = self.backend.error_groups(self.selection(fingerprint_id, within), self.clock(), 1)
        if not found:
            raise ErrorGroupNotFound(f"no failed jobs with error fingerprint {fingerprint_id}")
        return found[0]
