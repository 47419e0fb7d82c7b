"""History on SQL (`qadmin.insight`): `qadmin_history` holds per bucket (a minute or an hour),
queue and class the counts, the runtime total and the longest latency; `qadmin_history_runtimes`
the runtime histogram's non-empty buckets under the same key. A flush is one transaction of
upserts (INSERT … ON CONFLICT DO UPDATE adding to what is there), so workers writing the same
bucket at once neither lose a count nor collide inserting its row; each sample goes to its
minute's and its hour's bucket in it. `prune` drops the buckets past their retention."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.base import BackendOptions
from qadmin.backends.buckets import bucket_start, merge_samples, retention
from qadmin.backends.sql.store import Store
from qadmin.insight import RESOLUTIONS, HistoryRow, HistorySample
from qadmin.job import utcnow


def _raw(column: Any) -> Any:
    """`column` as the driver reads it (SQLite: text; PostgreSQL: a naive datetime)."""
    return sa.type_coerce(column, sa.types.NullType())


def _utc(raw: Any) -> datetime:
    at = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _upsert_insert(name: str) -> Callable[[sa.Table], Any] | None:
    """The dialect's INSERT that knows ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    return None


class History:
    def __init__(self, store: Store, options: BackendOptions) -> None:
        self.store = store
        self.options = options

    # --- writing ---------------------------------------------------------------------------
    def record(self, samples: Sequence[HistorySample], now: datetime | None = None) -> None:
        merged = merge_samples(samples, self.options, now or utcnow())
        if not merged:
            return
        self.store.ensure_aux()
        h, r = self.store.aux["history"], self.store.aux["history_runtimes"]
        table = self.store.table_name
        counts: list[dict[str, Any]] = []
        runtimes: list[dict[str, Any]] = []
        for (resolution, at, queue, job_class), b in sorted(merged.items(), key=lambda kv: kv[0]):
            key = {"job_table": table, "resolution": resolution, "at": at, "queue": queue, "class_name": job_class}
            counts.append(
                {
                    **key,
                    "processed": b.processed,
                    "failed": b.failed,
                    "retried": b.retried,
                    "runtime_total": b.runtime_total,
                    "latency": b.latency,
                }
            )
            runtimes.extend({**key, "bucket": i, "count": n} for i, n in sorted(b.runtimes.items()) if n)
        insert = _upsert_insert(self.store.dialect.name)
        with self.store.write() as conn:
            if insert is None:
                self._portable(conn, h, counts, r, runtimes)
                return
            stmt = insert(h)
            added = ("processed", "failed", "retried", "runtime_total")
            longest = sa.case(
                (stmt.excluded.latency.is_(None), h.c.latency),
                (sa.or_(h.c.latency.is_(None), stmt.excluded.latency > h.c.latency), stmt.excluded.latency),
                else_=h.c.latency,
            )
            keys = ["job_table", "resolution", "at", "queue", "class_name"]
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=keys, set_={**{c: h.c[c] + stmt.excluded[c] for c in added}, "latency": longest}
                ),
                counts,
            )
            if runtimes:
                rstmt = insert(r)
                conn.execute(
                    rstmt.on_conflict_do_update(
                        index_elements=[*keys, "bucket"], set_={"count": r.c["count"] + rstmt.excluded["count"]}
                    ),
                    runtimes,
                )

    def _portable(
        self,
        conn: sa.Connection,
        h: sa.Table,
        counts: list[dict[str, Any]],
        r: sa.Table,
        runtimes: list[dict[str, Any]],
    ) -> None:
        """A database without ON CONFLICT (`CoreDialect`): update, else insert (not atomic)."""
        for row in counts:
            where = [h.c[k] == row[k] for k in ("job_table", "resolution", "at", "queue", "class_name")]
            latency = row["latency"]
            values: dict[str, Any] = {c: h.c[c] + row[c] for c in ("processed", "failed", "retried", "runtime_total")}
            if latency is not None:
                values["latency"] = sa.case(
                    (sa.or_(h.c.latency.is_(None), h.c.latency < latency), latency), else_=h.c.latency
                )
            if conn.execute(sa.update(h).where(*where).values(values)).rowcount == 0:
                conn.execute(sa.insert(h).values(**row))
        for row in runtimes:
            self.store.dialect.increment(
                conn, r, {k: v for k, v in row.items() if k != "count"}, {"count": row["count"]}
            )

    # --- reading ---------------------------------------------------------------------------
    def rows(
        self,
        resolution: str,
        since: datetime,
        until: datetime,
        queue: str | None = None,
        job_class: str | None = None,
    ) -> list[HistoryRow]:
        if not self.store.aux_ready:
            self.store.look_for_aux()
        if not self.store.has_aux("history"):
            return []
        h, r = self.store.aux["history"], self.store.aux["history_runtimes"]

        def selected(t: sa.Table) -> list[Any]:
            where = [
                t.c.job_table == self.store.table_name,
                t.c.resolution == resolution,
                t.c.at >= since,
                t.c.at < until,
            ]
            if queue is not None:
                where.append(t.c.queue == queue)
            if job_class is not None:
                where.append(t.c.class_name == job_class)
            return where

        # bucket times read as the driver gives them and turned into datetimes once per bucket,
        # not once per row: a month of one class's histogram is tens of thousands of rows
        histograms: dict[tuple[Any, str, str], dict[int, int]] = {}
        with self.store.read() as conn:
            counted = conn.execute(
                sa.select(
                    _raw(h.c.at),
                    h.c.queue,
                    h.c.class_name,
                    h.c.processed,
                    h.c.failed,
                    h.c.retried,
                    h.c.runtime_total,
                    h.c.latency,
                )
                .where(*selected(h))
                .order_by(h.c.at, h.c.queue, h.c.class_name)
            ).all()
            if self.store.has_aux("history_runtimes"):
                for at, q, c, bucket, n in conn.execute(
                    sa.select(_raw(r.c.at), r.c.queue, r.c.class_name, r.c.bucket, r.c["count"]).where(*selected(r))
                ):
                    histograms.setdefault((at, q, c), {})[bucket] = n
        times: dict[Any, datetime] = {}
        return [
            HistoryRow(
                at=times.get(at) or times.setdefault(at, _utc(at)),
                queue=q,
                job_class=c,
                processed=int(p),
                failed=int(f),
                retried=int(rt),
                runtime_total=float(total),
                runtimes=histograms.get((at, q, c), {}),
                latency=None if latency is None else float(latency),
            )
            for at, q, c, p, f, rt, total, latency in counted
        ]

    def oldest_ready(self, queues: Sequence[str], now: datetime) -> dict[str, datetime]:
        """The oldest ready run_at per queue: a MIN over the state index (queue, failed_at,
        locked_at, run_at), which holds every column it reads."""
        t = self.store.jobs()
        where = [t.c.failed_at.is_(None), t.c.locked_at.is_(None), t.c.run_at <= now]
        if "*" not in queues:
            where.append(t.c.queue.in_(list(queues)))
        with self.store.read() as conn:
            found = conn.execute(sa.select(t.c.queue, sa.func.min(t.c.run_at)).where(*where).group_by(t.c.queue))
            return {q if isinstance(q, str) else "": at for q, at in found if isinstance(at, datetime)}

    # --- retention -------------------------------------------------------------------------
    def prune(self, now: datetime) -> None:
        """Drop the buckets past their resolution's retention (the automatic prune calls this too)."""
        if not self.store.aux_ready:
            self.store.look_for_aux()
        if not self.store.has_aux("history"):
            return
        tables = [self.store.aux[k] for k in ("history", "history_runtimes") if self.store.has_aux(k)]
        with self.store.write() as conn:
            for resolution in RESOLUTIONS:
                oldest = bucket_start(resolution, now - retention(self.options, resolution))
                for t in tables:
                    conn.execute(
                        sa.delete(t).where(
                            t.c.job_table == self.store.table_name, t.c.resolution == resolution, t.c.at < oldest
                        )
                    )
