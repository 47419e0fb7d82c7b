"""Stats (counts per queue and state, totals, throughput) and error groups."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from qadmin.backends.base import BackendOptions
from qadmin.backends.error_groups import ExactLine, ExactLines, error_group, error_groups, fold, known
from qadmin.backends.sql.bookkeeping import Bookkeeping
from qadmin.backends.sql.reads import Reads
from qadmin.backends.sql.rescue import RESCUED
from qadmin.backends.sql.selection import Selection
from qadmin.backends.sql.store import Store
from qadmin.backends.sql.values import BATCH, as_utc, class_of, empty_counts, text_of
from qadmin.filters import JobFilter
from qadmin.fingerprints import NO_ERROR
from qadmin.job import JobState, QueueInfo
from qadmin.model import ErrorGroup, Stats


class StatsReader:
    def __init__(
        self, store: Store, selection: Selection, reads: Reads, bookkeeping: Bookkeeping, options: BackendOptions
    ) -> None:
        self.store = store
        self.dialect = store.dialect
        self.selection = selection
        self.reads = reads
        self.bookkeeping = bookkeeping
        self.options = options

    def stats(self, now: datetime, max_run_time: float | None = None) -> Stats:
        return self._read(now, max_run_time, {})

    def _read(self, now: datetime, max_run_time: float | None, oldest_by_queue: dict[str, datetime]) -> Stats:
        """The stats, and each queue's oldest ready job's time put in `oldest_by_queue`."""
        cutoff = now - timedelta(seconds=max_run_time or self.options.max_run_time)
        queues: dict[str, dict[str, int]] = {}
        oldest: datetime | None = None
        with self.store.read() as conn:
            dead = self.selection.all_dead_owners(conn, now)
            for queue, total, failed, locked, stale, scheduled, min_run_at in self._state_counts(
                conn, now, cutoff, dead
            ):
                counts = queues.setdefault(text_of(queue) or "", empty_counts())
                for state, n in (
                    ("failed", failed),
                    ("locked", locked),
                    ("stale", stale),
                    ("scheduled", scheduled),
                    ("pending", total - failed - locked - scheduled),
                ):
                    counts[state] += n
                min_run_at = as_utc(min_run_at)
                if isinstance(min_run_at, datetime) and min_run_at <= now:
                    name = text_of(queue) or ""
                    if name not in oldest_by_queue or min_run_at < oldest_by_queue[name]:
                        oldest_by_queue[name] = min_run_at
                    if oldest is None or min_run_at < oldest:
                        oldest = min_run_at
            counters: dict[str, int] = {}
            throughput: list[tuple[datetime, int, int]] = []
            # where qadmin's tables are not (yet) there, nothing was finished or counted by qadmin
            if self.store.has_aux("finished"):
                f = self.store.aux["finished"]
                ran = f.c.cancelled_by.is_(None)
                for queue, completed, n in conn.execute(
                    sa.select(f.c.queue, ran, sa.func.count())
                    .where(f.c.job_table == self.store.table_name)
                    .group_by(f.c.queue, ran)
                ):
                    # "cancelled" only where there are any: the counts read as before elsewhere
                    queues.setdefault(queue or "", empty_counts())["finished" if completed else "cancelled"] = n
            if self.store.has_aux("counters") and self.store.has_aux("throughput"):
                c = self.store.aux["counters"]
                counters = dict(
                    conn.execute(sa.select(c.c.name, c.c.value).where(c.c.job_table == self.store.table_name)).all()
                )
                tp = self.store.aux["throughput"]
                since = (now - timedelta(hours=1)).replace(second=0, microsecond=0)
                throughput = [
                    (r.minute, r.processed, r.failed)
                    for r in conn.execute(
                        sa.select(tp)
                        .where(tp.c.job_table == self.store.table_name, tp.c.minute >= since)
                        .order_by(tp.c.minute)
                    )
                ]
            paused = self.bookkeeping.paused_in(conn)
            workers = sum(1 for w in self.bookkeeping.workers_in(conn, now) if not w.stale)
        for name in paused:
            queues.setdefault(name, empty_counts())
        return Stats(
            queues=dict(sorted(queues.items())),
            processed=int(counters.get("processed", 0)),
            failed=int(counters.get("failed", 0)),
            rescued=int(counters.get(RESCUED, 0)),
            oldest_pending_at=oldest,
            paused=paused,
            workers=workers,
            throughput=throughput,
        )

    def _state_counts(self, conn: sa.Connection, now: datetime, cutoff: datetime, dead: set[str]) -> list[Any]:
        """(queue, jobs, failed, locked, stale, scheduled, earliest run_at of the unlocked) per
        queue. Each figure is an index range of one queue (the state index leads with queue,
        then failed_at, locked_at, run_at): the live unlocked jobs, nearly all of them, are
        counted only as the queue's total less the others, and no row is read. The queue names
        come from the index one seek per name (a loose index scan). Where an index cannot count
        alone (`Dialect.index_only_counts`), or a table has no state index (delayed_job's or
        DJJob's own), one pass counts them all."""
        t = self.store.jobs()
        live = t.c.failed_at.is_(None)
        stale = t.c.locked_at < cutoff
        if dead:
            stale = sa.or_(stale, t.c.locked_by.in_(sorted(dead)))
        if not (self.dialect.index_only_counts and self.store.has_state_index()):
            return self._state_counts_scan(conn, now, stale)

        def figures(queue: Any) -> list[Any]:
            def n(*where: Any) -> Any:
                return sa.select(sa.func.count()).select_from(t).where(queue, *where).scalar_subquery()

            unlocked = (live, t.c.locked_at.is_(None))
            # the earliest run_at: the first entry of the index range, in index order (which
            # PostgreSQL's min() does not see through `IS NULL` conditions)
            earliest = (
                sa.select(t.c.run_at)
                .where(queue, *unlocked, t.c.run_at.is_not(None))
                .order_by(t.c.queue, t.c.failed_at, t.c.locked_at, t.c.run_at)
                .limit(1)
            )
            return [
                n(),
                n(t.c.failed_at.is_not(None)),
                n(live, t.c.locked_at.is_not(None)),
                n(live, t.c.locked_at.is_not(None), stale),
                n(*unlocked, t.c.run_at > now),
                earliest.scalar_subquery(),
            ]

        names = sa.select(sa.func.min(t.c.queue).label("name")).cte("qadmin_queue_names", recursive=True)
        following = sa.select(sa.func.min(t.c.queue)).where(t.c.queue > names.c.name).scalar_subquery()
        names = names.union_all(sa.select(following).where(names.c.name.is_not(None)))
        rows = list(
            conn.execute(sa.select(names.c.name, *figures(t.c.queue == names.c.name)).where(names.c.name.is_not(None)))
        )
        unnamed = conn.execute(sa.select(sa.null(), *figures(t.c.queue.is_(None)))).one()
        return rows + ([unnamed] if unnamed[1] else [])

    def _state_counts_scan(self, conn: sa.Connection, now: datetime, stale: Any) -> list[Any]:
        """`_state_counts` in one pass over the table (or an index holding every column it
        reads), grouped by queue alone: a handful of groups whatever the states."""
        t = self.store.jobs()
        live, unlocked = t.c.failed_at.is_(None), sa.and_(t.c.failed_at.is_(None), t.c.locked_at.is_(None))

        def n(*where: Any) -> Any:
            return sa.func.count(sa.case((sa.and_(*where), 1)))

        return list(
            conn.execute(
                sa.select(
                    t.c.queue,
                    sa.func.count(),
                    n(t.c.failed_at.is_not(None)),
                    n(live, t.c.locked_at.is_not(None)),
                    n(live, t.c.locked_at.is_not(None), stale),
                    n(unlocked, t.c.run_at > now),
                    sa.func.min(sa.case((unlocked, t.c.run_at))),
                ).group_by(t.c.queue)
            )
        )

    def error_groups(self, selection: JobFilter, now: datetime, limit: int = 100) -> list[ErrorGroup]:
        selection = selection.with_states(JobState.FAILED) if not selection.states else selection
        t = self.store.jobs()
        first = self.dialect.first_line(self.store.error_col())
        with self.store.read() as conn:
            where, post, _dead = self.selection.where(selection, now, conn)
            if post or first is None:
                return self._error_groups_decoded(selection, now, limit)
            # grouped by exact line in the database, folded by fingerprint here (a fingerprint per
            # distinct line); no payload is read, except a few samples per group for its classes
            rows = conn.execute(
                sa.select(
                    first.label("k"),
                    t.c.queue,
                    sa.func.count(),
                    sa.func.min(t.c.id),
                    sa.func.max(t.c.id),
                    sa.func.max(t.c.failed_at),
                    sa.func.min(t.c.failed_at),
                )
                .where(*where)
                .group_by(first, t.c.queue)
            ).all()
            lines: dict[str, ExactLine] = {}
            samples: dict[str, list[Any]] = {}
            for key, queue, n, low, high, last, earliest in rows:
                error = text_of(key) or NO_ERROR
                line = lines.setdefault(error, ExactLine(error, sample=low))
                last, earliest = as_utc(last), as_utc(earliest)
                line.seen(
                    last if isinstance(last, datetime) else None,
                    n,
                    earliest if isinstance(earliest, datetime) else None,
                )
                line.queues.add(text_of(queue) or "")
                line.sample = min(line.sample, low) if line.sample is not None else low
                samples.setdefault(error, []).extend((low, high))
            folded = fold(lines.values(), limit)
            sample_ids = sorted({i for _fp, members in folded for m in members[:10] for i in samples[m.error][:4]})
            classes: dict[int, str] = {}
            for start in range(0, len(sample_ids), BATCH):
                for row in conn.execute(
                    sa.select(t.c.id, t.c.handler).where(t.c.id.in_(sample_ids[start : start + BATCH]))
                ):
                    classes[row.id] = class_of(row.handler)
        for _fp, members in folded:
            for m in members[:10]:
                m.classes = {classes[i] for i in samples[m.error][:4] if i in classes}
        return [error_group(fp, members) for fp, members in folded]

    def _error_groups_decoded(self, selection: JobFilter, now: datetime, limit: int) -> list[ErrorGroup]:
        """Error groups of a selection only Python can check (class, args, search): row by row."""
        lines = ExactLines()
        for ids in self.reads.iter_ids(selection, now):
            t = self.store.jobs()
            with self.store.read() as conn:
                rows = conn.execute(
                    sa.select(t.c.id, t.c.queue, t.c.handler, t.c.failed_at, self.store.error_col().label("err")).where(
                        t.c.id.in_(ids)
                    )
                ).all()
            for row in rows:
                failed_at = row.failed_at if isinstance(row.failed_at, datetime) else None
                lines.add(text_of(row.err), text_of(row.queue), class_of(row.handler), failed_at, known(row.id))
        return error_groups(lines.lines.values(), limit)

    def queues(self, now: datetime) -> list[QueueInfo]:
        oldest: dict[str, datetime] = {}
        stats = self._read(now, None, oldest)
        return [
            QueueInfo(name=q, counts=c, paused=q in stats.paused, oldest_pending_at=oldest.get(q))
            for q, c in stats.queues.items()
        ]
