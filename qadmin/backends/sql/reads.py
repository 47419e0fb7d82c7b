"""The admin reads: one job, keyset pages of a selection (live jobs, then finished ones), its
bare ids in batches, and its count."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from qadmin.backends.sql.results import Results
from qadmin.backends.sql.rows import RowReader
from qadmin.backends.sql.selection import HISTORY_STATES, LIVE_STATES, Selection
from qadmin.backends.sql.store import Store
from qadmin.backends.sql.values import BATCH, decode_cursor, encode_cursor, keyset, parse_id
from qadmin.errors import JobNotFound, UsageError
from qadmin.filters import JobFilter
from qadmin.job import Job, JobId
from qadmin.model import Page

#: ids per statement when listing bare ids (bulk verbs' previews)
ID_BATCH = 50_000
#: how a page cursor into the finished jobs begins (live pages' cursors are JSON lists)
FINISHED_CURSOR = "finished:"


class Reads:
    def __init__(self, store: Store, selection: Selection, rows: RowReader, results: Results) -> None:
        self.store = store
        self.results = results
        self.dialect = store.dialect
        self.selection = selection
        self.rows = rows

    def get(self, job_id: JobId, now: datetime) -> Job:
        job_id = parse_id(str(job_id))
        t = self.store.jobs()
        with self.store.read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == job_id)).first()
            if row is not None:
                return self.rows.to_job(row, now, self.selection.dead_owners(conn, {row.locked_by} - {None}, now))
            f = self.store.aux["finished"]
            row = (
                None
                if not self.store.has_aux("finished")
                else conn.execute(
                    sa.select(f)
                    .where(f.c.job_table == self.store.table_name, f.c.job_id == job_id)
                    .order_by(f.c.id.desc())
                    .limit(1)
                ).first()
            )
            if row is not None:
                job = self.rows.finished_job(row)
                result = self.results.of(conn, job_id)
                return job if result is None else replace(job, result=result)
        raise JobNotFound(job_id)

    def find(
        self, selection: JobFilter, now: datetime, *, limit: int, cursor: str | None = None, sort: str = "id"
    ) -> Page:
        if not selection.states & HISTORY_STATES:
            return self._find_live(selection, now, limit=limit, cursor=cursor, sort=sort)
        if not selection.states & LIVE_STATES:
            return self._find_finished(selection, limit=limit, cursor=cursor)
        # live and finished jobs: the live ones in the asked order first, then the finished ones
        # (newest first); the cursor says which of the two a page goes on with
        if cursor is None or not cursor.startswith(FINISHED_CURSOR):
            page = self._find_live(selection, now, limit=limit, cursor=cursor, sort=sort)
            if page.next_cursor is not None:
                return page
            rest = self._find_finished(selection, limit=limit - len(page.jobs), cursor=None)
            return Page(page.jobs + rest.jobs, rest.next_cursor)
        return self._find_finished(selection, limit=limit, cursor=cursor)

    def _find_live(self, selection: JobFilter, now: datetime, *, limit: int, cursor: str | None, sort: str) -> Page:
        cols, desc = self.selection.order(sort)
        t = self.store.jobs()
        out: list[Job] = []
        after = decode_cursor(cursor, cols) if cursor else None
        with self.store.read() as conn:
            where, post, dead = self.selection.where(selection, now, conn)
            batch = limit + 1 if not post else max(4 * limit, 200)
            more = False
            while True:
                query = sa.select(t).where(*where)
                if after is not None:
                    query = query.where(keyset(cols, after, desc))
                order = [self.dialect.order_nulls_low(c, desc) for c in cols]
                rows = conn.execute(query.order_by(*order).limit(batch)).all()
                owners = {r.locked_by for r in rows if r.locked_by} - dead
                page_dead = dead | self.selection.dead_owners(conn, owners, now)
                for row in rows:
                    job = self.rows.to_job(row, now, page_dead)
                    if post and not selection.matches(job):
                        continue
                    if len(out) == limit:
                        more = True
                        break
                    out.append(job)
                if more or len(rows) < batch:
                    break
                after = tuple(getattr(rows[-1], c.name) for c in cols)
        next_cursor = encode_cursor(out[-1], cols) if more and out else None
        return Page(out, next_cursor)

    def _find_finished(self, selection: JobFilter, *, limit: int, cursor: str | None) -> Page:
        self.store.jobs()  # which table's finished jobs (DJJob's `jobs` is found there), and that it exists
        f = self.store.aux["finished"]
        out: list[Job] = []
        try:
            after = int(cursor.removeprefix(FINISHED_CURSOR)) if cursor else None
        except ValueError:
            raise UsageError(f"invalid page cursor {cursor!r}") from None
        where, post = self.selection.finished_where(selection)
        batch = limit + 1 if not post else max(4 * limit, 200)
        with self.store.read() as conn:
            if not self.store.has_aux("finished"):  # no qadmin worker has finished a job here
                return Page([], None)
            while True:
                query = sa.select(f).where(*where)
                if after is not None:
                    query = query.where(f.c.id < after)
                rows = conn.execute(query.order_by(f.c.id.desc()).limit(batch)).all()
                for row in rows:
                    job = self.rows.finished_job(row)
                    if selection.matches(job):
                        out.append(job)
                        if len(out) == limit + 1:
                            return Page(out[:limit], f"{FINISHED_CURSOR}{row.id + 1}")
                if len(rows) < batch:
                    return Page(out, None)
                after = rows[-1].id

    def iter_ids(self, selection: JobFilter, now: datetime, batch: int = 5000) -> Iterator[list[JobId]]:
        t = self.store.jobs()
        last: int | None = None
        while True:
            with self.store.read() as conn:
                where, post, _dead = self.selection.where(selection, now, conn)
                # bare ids are cheap to hold: fewer statements, each of which may have to find
                # and sort every matching row again (PostgreSQL's bitmap scans do)
                size = batch if post else max(batch, ID_BATCH)
                query = sa.select(t if post else t.c.id).where(*where)
                if last is not None:
                    query = query.where(t.c.id > last)
                rows = conn.execute(query.order_by(t.c.id).limit(size)).all()
                if post:
                    dead = self.selection.dead_owners(conn, {r.locked_by for r in rows if r.locked_by}, now)
                    ids = [r.id for r in rows if selection.matches(self.rows.to_job(r, now, dead))]
                else:
                    ids = [r[0] for r in rows]
            for start in range(0, len(ids), batch):
                yield ids[start : start + batch]
            if len(rows) < size:
                return
            last = rows[-1].id

    def count(self, selection: JobFilter, now: datetime) -> int:
        if selection.states & HISTORY_STATES:
            finished = self._count_finished(selection)
            if not selection.states & LIVE_STATES:
                return finished
            return finished + self._count_live(selection, now)
        return self._count_live(selection, now)

    def _count_finished(self, selection: JobFilter) -> int:
        self.store.jobs()
        f = self.store.aux["finished"]
        where, post = self.selection.finished_where(selection)
        with self.store.read() as conn:
            if not self.store.has_aux("finished"):
                return 0
            if not post:
                return int(conn.execute(sa.select(sa.func.count()).select_from(f).where(*where)).scalar_one())
            n = 0
            after: int | None = None
            while True:
                query = sa.select(f).where(*where)
                if after is not None:
                    query = query.where(f.c.id > after)
                rows = conn.execute(query.order_by(f.c.id).limit(BATCH)).all()
                n += sum(1 for row in rows if selection.matches(self.rows.finished_job(row)))
                if len(rows) < BATCH:
                    return n
                after = rows[-1].id

    def _count_live(self, selection: JobFilter, now: datetime) -> int:
        with self.store.read() as conn:
            where, post, _ = self.selection.where(selection, now, conn)
            if not post:
                t = self.store.jobs()
                return int(conn.execute(sa.select(sa.func.count()).select_from(t).where(*where)).scalar_one())
        return sum(len(ids) for ids in self.iter_ids(selection, now))
