"""Blueprint "pages": the server-rendered dashboard. Views parse, call ops, render.

The views, by group: `monitor` (the overview, error groups, workers, audit, the backend switcher),
`jobs` (the listing and a job's page), `changes` (every change: preview, confirmation, apply),
`enqueue` (the "New job" form), `edit` (a job's "Edit" form), `recurring` (the schedules), `errors` (an error group's page),
`insight` (history charts and class metrics); `readings`
holds the readings they share.
"""

from __future__ import annotations

from qadmin.web.pages import changes, edit, enqueue, errors, insight, jobs, monitor, recurring
from qadmin.web.pages.blueprint import bp

#: the modules whose views are the routes of `bp` (imported for that)
VIEWS = (monitor, jobs, changes, enqueue, edit, recurring, errors, insight)

__all__ = ["VIEWS", "bp"]
