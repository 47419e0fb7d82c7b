"""The areas of `Ops` that have verbs of their own, each a small object built on demand over the
same backend, clock and actor: `ops.recurring`, `ops.insight`, `ops.alerts`. `Ops` inherits this so that each
area is one property here, not more lines in `ops/admin.py`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from qadmin.backends import Backend
from qadmin.ops.redaction import RedactionOps
from qadmin.redaction import Redactor

if TYPE_CHECKING:
    from qadmin.ops.alerts import AlertsOps
    from qadmin.ops.error_groups import ErrorGroupOps
    from qadmin.ops.insight import InsightOps
    from qadmin.ops.recurring import RecurringOps

# The areas a listing does not use (alerts and their webhooks' HTTP client, schedules, charts) are
# imported by their property: `qadmin jobs` starts without them.


class Areas:
    backend: Backend
    clock: Callable[[], datetime]
    actor: str
    face: str
    #: what the faces hide (`[redact]`; `open_ops` sets the config file's, the defaults otherwise)
    redactor: Redactor = Redactor()

    @property
    def recurring(self) -> RecurringOps:
        """The recurring schedules' verbs (`ops/recurring.py`)."""
        from qadmin.ops.recurring import RecurringOps

        return RecurringOps(self.backend, clock=self.clock, actor=self.actor, face=self.face)

    @property
    def insight(self) -> InsightOps:
        """History, charts and class metrics (`ops/insight.py`)."""
        from qadmin.ops.insight import InsightOps

        return InsightOps(self.backend, clock=self.clock)

    @property
    def alerts(self) -> AlertsOps:
        """Alert rules evaluated, incidents opened and resolved, webhooks sent (`ops/alerts.py`)."""
        from qadmin.ops.alerts import AlertsOps

        return AlertsOps(self.backend, clock=self.clock)

    @property
    def error_group(self) -> ErrorGroupOps:
        """One error group by its fingerprint id, and the selection of its jobs (`ops/error_groups.py`)."""
        from qadmin.ops.error_groups import ErrorGroupOps

        return ErrorGroupOps(self.backend, clock=self.clock)

    @property
    def redaction(self) -> RedactionOps:
        """What the faces show of job data, redacted, and the admin's audited reveal (`ops/redaction.py`)."""
        return RedactionOps(self.backend, self.redactor, clock=self.clock, actor=self.actor, face=self.face)
