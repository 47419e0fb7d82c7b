"""What the pages read through the shared readings (qadmin.web.snapshot): the dashboard's counts
and workers, and the names the filter menus offer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from flask import g

from qadmin.job import WorkerInfo
from qadmin.model import Stats
from qadmin.web.snapshot import Reading
from qadmin.web.state import backend_name, web_state
from qadmin.web.templating import link

#: what the dashboard reading holds
Dashboard = tuple[Stats, list[WorkerInfo]]

#: the newest jobs the class menus learn names from (a menu needs the names in use, not every one)
CLASS_SAMPLE = 200


def dashboard() -> Reading[Dashboard]:
    """Stats and workers of this request's backend as all pages share them (qadmin.web.snapshot):
    `.value` is (Stats, [WorkerInfo]), `.as_of` the backend's clock when they were read."""
    name = backend_name()
    # one reading per request, so the tabs and the menus of a page agree even with a ttl of 0
    mine: tuple[str, Reading[Dashboard]] | None = g.get("qadmin_dashboard")
    if mine is not None and mine[0] == name:
        return mine[1]
    # the shared Ops, not this request's copy (get_ops): a reading writes no audit entry, and it
    # may run after the request, in a background thread
    ops = web_state().backends.get(name)

    def read() -> tuple[Dashboard, datetime]:
        now = ops.clock()
        return (ops.stats(), ops.workers()), now

    reading = web_state().snapshots.get(name, "dashboard", read)
    g.qadmin_dashboard = (name, reading)
    return reading


def queue_names() -> list[str]:
    """The queues of the filter menus, from the shared reading (a menu needs no exact count)."""
    reading = dashboard()
    return reading.derive("queue_names", lambda: list(reading.value[0].queues))


def class_names() -> list[str]:
    """The job classes the filter inputs offer (a <datalist>): the full names of the newest jobs
    and of the most recently failed ones, and the last part of each (either selects the class),
    read once per dashboard reading. Two keyset pages, never a scan: error groups would read
    every failed job."""
    name = backend_name()
    ops = web_state().backends.get(name)

    def read() -> tuple[list[str], datetime]:
        now = ops.clock()
        return ops.class_names(CLASS_SAMPLE, short=True), now

    return web_state().snapshots.get(name, "class names", read).value


def jobs_url(params: Mapping[str, Any]) -> str:
    """`url_for("pages.jobs", **params)`, built as werkzeug builds its query string, for the many
    links of a page (a url_for costs as much as a table row)."""
    pairs: list[tuple[str, Any]] = []
    for k, v in params.items():
        if isinstance(v, list):  # a repeated parameter (the pager's `prev` cursors)
            pairs.extend((k, item) for item in v)
        elif v is not None:
            pairs.append((k, v))
    query = urlencode(pairs, safe="!$'()*,/:;?@", quote_via=quote)
    base = link("pages.jobs")
    return f"{base}?{query}" if query else base
