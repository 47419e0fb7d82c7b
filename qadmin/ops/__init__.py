"""The operations layer: the admin verbs every face calls, and nothing else does.

Bulk verbs work in two steps so that what an operator confirms is exactly what changes:

    preview = ops.preview("retry", JobFilter(states={FAILED}, queues=("email",)))
    # show preview.count and preview.sample, ask for confirmation...
    result = ops.apply(preview, progress=bar.update)

`preview` freezes the matching ids; `apply` acts only on those, each guarded by the state the
verb needs, so a job that changed meanwhile is reported as skipped instead of acted on. The
one-step forms (`retry(selection, dry_run=...)`) do both. Every bulk verb writes an audit record.

Errors: only `QadminError`s. A filter that matches nothing is a result (matched == 0), not an error.
"""

from qadmin.ops.admin import Ops
from qadmin.ops.edit import EditResult
from qadmin.ops.opening import open_ops, open_settings_backend
from qadmin.ops.verbs import (
    ALIVE_READ_LIMIT,
    APPLY_BATCH,
    EVERY_JOB,
    FOREIGN_RUNNING,
    NARROWER,
    SAMPLE_SIZE,
    VERBS,
    BulkResult,
    Preview,
    Progress,
    alive_warning,
)

__all__ = [
    "ALIVE_READ_LIMIT",
    "APPLY_BATCH",
    "EVERY_JOB",
    "FOREIGN_RUNNING",
    "NARROWER",
    "SAMPLE_SIZE",
    "VERBS",
    "BulkResult",
    "EditResult",
    "Ops",
    "Preview",
    "Progress",
    "alive_warning",
    "open_ops",
    "open_settings_backend",
]
