"""How the faces and the worker open a backend from `Settings` (they never import `qadmin.backends`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from qadmin.backends import Backend, BackendOptions, open_backend
from qadmin.job import utcnow
from qadmin.ops.admin import Ops
from qadmin.settings import Settings


def open_ops(
    settings: Settings, *, face: str = "api", actor: str | None = None, clock: Callable[[], datetime] = utcnow
) -> Ops:
    """Ops over the backend `settings` make current: how the faces open a backend (they never
    import `qadmin.backends`)."""
    ops = Ops(open_settings_backend(settings), face=face, actor=actor, clock=clock)
    ops.redactor = settings.config.redactor
    return ops


def open_settings_backend(settings: Settings, *, worker_timeout: float | None = None) -> Backend:
    """The bare backend `settings` make current, for the worker, which runs on the engine verbs
    rather than on admin verbs (`worker_timeout`: when other workers count as dead, if not
    `[worker] timeout` or the default)."""
    retention = settings.config.retention
    options = BackendOptions(
        table=settings.table,
        namespace=settings.namespace,
        finished_retention=retention.finished,
        failed_retention=retention.failed,
        worker_retention=retention.workers,
        prune_every=retention.prune_every,
        history_minutes=settings.config.history.minutes,
        history_hours=settings.config.history.hours,
        audit_redactor=settings.config.redactor,
    )
    timeout = worker_timeout if worker_timeout is not None else settings.config.worker_timeout
    if timeout is not None:
        options = replace(options, worker_timeout=timeout)
    return open_backend(settings.url, options)
