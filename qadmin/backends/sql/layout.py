"""How a new job becomes a row of the jobs table: the values every enqueue path writes (so that
every path stores the same row), and the same values as a driver takes them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.store import Store
from qadmin.codecs import json_codec
from qadmin.job import NewJob


class InsertLayout:
    """How a new job becomes a row of `t`: its values (`values`, shared by every path, so that
    every path stores the same row), and for the bulk paths the same values as the driver takes
    them, computed once per batch where they are the same for every row."""

    def __init__(self, t: sa.Table, sa_dialect: Any) -> None:
        self.t = t
        self.has_priority = "priority" in t.c
        self.binary = isinstance(t.c.handler.type, sa.LargeBinary)  # a DJJob table with a BLOB/BYTEA handler
        self.stamps = [c for c in ("created_at", "updated_at") if c in t.c]
        self.columns = (
            ["handler", "attempts", "run_at", "queue"] + (["priority"] if self.has_priority else []) + self.stamps
        )
        self.dialect = sa_dialect
        self.procs = [t.c[c].type._cached_bind_processor(sa_dialect) for c in self.columns]
        quote = sa_dialect.identifier_preparer.quote
        table = sa_dialect.identifier_preparer.format_table(t)
        #: the INSERT's head, to which a driver's own placeholders are added
        self.insert_head = f"INSERT INTO {table} ({', '.join(quote(c) for c in self.columns)}) VALUES "
        self.all_columns = [c.name for c in t.c]
        self.quote, self.table = quote, table
        #: a table whose times are whole seconds (DJJob's): the values, and so the Job an
        #: insert returns, are what the row holds
        self.whole_seconds = bool(getattr(t.c.run_at.type, "whole_seconds", False))

    def values(self, new: NewJob, now: datetime) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if new.max_attempts is not None:
            meta["max_attempts"] = new.max_attempts
        if new.timeout is not None:
            meta["timeout"] = new.timeout
        if new.unique is not None:
            meta["unique"] = new.unique
        handler: Any = json_codec.encode(new.class_name, list(new.args), dict(new.kwargs), meta)
        run_at = new.run_at or now
        if self.whole_seconds:
            now, run_at = now.replace(microsecond=0), run_at.replace(microsecond=0)
        values: dict[str, Any] = {
            "handler": handler.encode("utf-8") if self.binary else handler,
            "attempts": 0,
            "run_at": run_at,
            "queue": new.queue,
        }
        if self.has_priority:
            values["priority"] = new.priority
        for column in self.stamps:
            values[column] = now
        return values

    def driver_row(self, values: dict[str, Any]) -> list[Any]:
        """`values` in `columns` order, as the driver takes them (`now`, in three
        columns, converted once)."""
        out: list[Any] = []
        seen: Any = out  # no value is `out`
        for column, proc in zip(self.columns, self.procs):
            value = values[column]
            if proc is not None:
                if value is not seen:
                    seen, converted = value, proc(value)
                value = converted
            out.append(value)
        return out

    def handler(self, new: NewJob) -> Any:
        meta: dict[str, Any] | None = None
        if new.max_attempts is not None or new.unique is not None or new.timeout is not None:
            meta = {}
            if new.max_attempts is not None:
                meta["max_attempts"] = new.max_attempts
            if new.timeout is not None:
                meta["timeout"] = new.timeout
            if new.unique is not None:
                meta["unique"] = new.unique
        handler = json_codec.encode(new.class_name, new.args, new.kwargs, meta)
        return handler.encode("utf-8") if self.binary else handler

    def driver_rows(self, news: Sequence[NewJob], now: datetime) -> list[tuple[Any, ...]]:
        """The rows of `news` in `columns` order, as the driver takes them."""
        procs = {c: proc or _as_is for c, proc in zip(self.columns, self.procs)}
        run_at_proc = procs["run_at"]
        at = run_at_proc(now)
        stamps = tuple(procs[c](now) for c in self.stamps)
        handler = self.handler
        if self.has_priority:
            return [
                (handler(n), 0, at if n.run_at is None else run_at_proc(n.run_at), n.queue, n.priority) + stamps
                for n in news
            ]
        return [(handler(n), 0, at if n.run_at is None else run_at_proc(n.run_at), n.queue) + stamps for n in news]


def _as_is(value: Any) -> Any:
    return value


class Layouts:
    """The backend's `InsertLayout`, made again only when the jobs table is (after `init`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._layout: InsertLayout | None = None

    def get(self) -> InsertLayout:
        t = self.store.jobs()
        if self._layout is None or self._layout.t is not t:
            self._layout = InsertLayout(t, self.store.engine.dialect)
        return self._layout
