"""The worker's hot statements (claim, lock, complete, fail, release), built once per backend.

A statement object built once and executed with bound values is compiled once: SQLAlchemy keys
its compiled cache on the statement, which is memoised on the object, and psycopg prepares it on
the server after a few runs. Per-call values (queues, ids to skip) are expanding bind parameters,
never literals, so the SQL text stays the same from job to job.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from qadmin.backends import _sql_dialect as dialect
from qadmin.backends._sql_tables import claim_index_name, json_handler


class ClaimStatements:
    def __init__(self, engine: sa.Engine, table: sa.Table, aux: dict[str, sa.Table], table_name: str) -> None:
        self.engine = engine
        self.kind = engine.dialect.name
        self.t = table
        self.aux = aux
        self.table_name = table_name
        self.has_claim_index = any(i.name == claim_index_name(table_name) for i in table.indexes)
        self.cols = ([table.c.priority] if "priority" in table.c else []) + [table.c.run_at, table.c.id]
        self._cache: dict[Any, Any] = {}

    # --- pieces -------------------------------------------------------------------------------
    def _params(self) -> tuple[Any, Any, Any]:
        t = self.t
        return (sa.bindparam("now", type_=t.c.run_at.type), sa.bindparam("expired", type_=t.c.run_at.type),
                sa.bindparam("worker", type_=t.c.locked_by.type))

    def ready(self, for_scan: bool = False, by_queue: bool = False) -> Any:
        """Runnable by `worker` at `now`: due, unlocked or its lock expired (or its own), not failed."""
        t = self.t
        now, expired, worker = self._params()
        live: Any = t.c.failed_at.is_(None)
        if for_scan and self.kind == "sqlite":
            if not self.has_claim_index:
                # a table qadmin did not create: `+failed_at` keeps SQLite off the failed_at index
                # (which matches nearly every row, then needs a sort) and on delayed_job's
                # (priority, run_at) index, which is already in claim order
                live = sa.literal_column("+" + self.engine.dialect.identifier_preparer.quote("failed_at")).is_(None)
            else:
                # without statistics SQLite takes `failed_at IS NULL` (and `queue IN …`) for
                # selective terms and sorts all they find; told they are not, it walks the claim
                # index in claim order and stops at the first runnable rows
                live = sa.func.likely(live)
        return sa.and_(
            sa.or_(
                sa.and_(sa.or_(t.c.run_at.is_(None), t.c.run_at <= now),
                        sa.or_(t.c.locked_at.is_(None), t.c.locked_at < expired)),
                t.c.locked_by == worker,
            ),
            live,
        )

    def _conditions(self, queues: bool, skip: bool) -> list[Any]:
        t = self.t
        p = self.aux["pauses"]
        # only qadmin/Resque JSON handlers: Ruby YAML and PHP rows belong to their own workers
        conditions = [self.ready(for_scan=True, by_queue=queues), json_handler(dialect.as_text(self.engine, t.c.handler))]
        if queues:
            in_queues = t.c.queue.in_(sa.bindparam("queues", expanding=True))
            conditions.append(sa.func.likely(in_queues) if self.kind == "sqlite" and self.has_claim_index
                              else in_queues)
        if skip:
            conditions.append(t.c.id.not_in(sa.bindparam("skip", expanding=True)))
        paused = sa.select(p.c.queue).where(p.c.job_table == sa.bindparam("job_table", self.table_name))
        conditions.append(sa.or_(t.c.queue.is_(None), t.c.queue.not_in(paused.scalar_subquery())))
        return conditions

    def order(self) -> list[Any]:
        return [dialect.order_nulls_low(self.engine, c, False) for c in self.cols]

    # --- statements ---------------------------------------------------------------------------
    def candidates(self, queues: bool, skip: bool, limit: int) -> Any:
        """SELECT the next `limit` runnable rows in claim order (row-locked, skipping locked rows,
        where the database can)."""
        key = ("candidates", queues, skip, limit)
        if key not in self._cache:
            stmt = sa.select(self.t).where(*self._conditions(queues, skip)).order_by(*self.order()).limit(limit)
            if dialect.skip_locked(self.engine):
                stmt = stmt.with_for_update(skip_locked=True)
            self._cache[key] = stmt
        return self._cache[key]

    def candidates_after(self, queues: bool, skip: bool, limit: int, after: Any) -> Any:
        """`candidates` past a keyset position (the rare claim that reads past unrunnable rows)."""
        stmt = sa.select(self.t).where(*self._conditions(queues, skip), after).order_by(*self.order()).limit(limit)
        if dialect.skip_locked(self.engine):
            stmt = stmt.with_for_update(skip_locked=True)
        return stmt

    def lock(self) -> Any:
        """Lock one row by id, guarded by the same ready predicate the candidates were read with."""
        if "lock" not in self._cache:
            t = self.t
            now, _expired, worker = self._params()
            self._cache["lock"] = (sa.update(t).where(t.c.id == sa.bindparam("job_id"), self.ready())
                                   .values(locked_at=now, locked_by=worker))
        return self._cache["lock"]

    def lock_returning(self, queues: bool, skip: bool) -> Any:
        """PostgreSQL: lock the next `n` runnable rows in one statement, returning them with the
        lock they had before (a row the worker then finds it cannot run gets that lock back)."""
        key = ("lock_returning", queues, skip)
        if key not in self._cache:
            t = self.t
            now, _expired, worker = self._params()
            old = (sa.select(t.c.id.label("old_id"), t.c.locked_at.label("old_locked_at"),
                             t.c.locked_by.label("old_locked_by"))
                   .where(*self._conditions(queues, skip)).order_by(*self.order())
                   .limit(sa.bindparam("n", type_=sa.Integer)).with_for_update(skip_locked=True)
                   .subquery("old"))
            self._cache[key] = (sa.update(t).where(t.c.id == old.c.old_id)
                                .values(locked_at=now, locked_by=worker)
                                .returning(*t.c, old.c.old_locked_at, old.c.old_locked_by))
        return self._cache[key]

    def unlock_back(self) -> Any:
        """Give a row locked by `lock_returning` its previous lock back."""
        if "unlock_back" not in self._cache:
            t = self.t
            now, _expired, worker = self._params()
            self._cache["unlock_back"] = (
                sa.update(t).where(t.c.id == sa.bindparam("job_id"), t.c.locked_by == worker, t.c.locked_at == now)
                .values(locked_at=sa.bindparam("old_at", type_=t.c.locked_at.type),
                        locked_by=sa.bindparam("old_by", type_=t.c.locked_by.type)))
        return self._cache["unlock_back"]

    def release(self) -> Any:
        if "release" not in self._cache:
            t = self.t
            self._cache["release"] = (sa.update(t).where(t.c.id == sa.bindparam("job_id"),
                                                         t.c.locked_by == sa.bindparam("owner"))
                                      .values(locked_at=None, locked_by=None))
        return self._cache["release"]

    def delete_locked(self) -> Any:
        if "delete" not in self._cache:
            t = self.t
            self._cache["delete"] = sa.delete(t).where(t.c.id == sa.bindparam("job_id"),
                                                       t.c.locked_by == sa.bindparam("owner"))
        return self._cache["delete"]

    _FINISHED = ("job_table", "job_id", "queue", "class_name", "handler", "priority", "attempts",
                 "created_at", "finished_at", "runtime", "worker")

    def record_finished(self) -> Any:
        if "finished" not in self._cache:
            self._cache["finished"] = sa.insert(self.aux["finished"])
        return self._cache["finished"]

    def record_finished_bound(self) -> Any:
        """`record_finished` with named parameters (v_job_id, …) for `driver_sql`."""
        if "finished_bound" not in self._cache:
            f = self.aux["finished"]
            self._cache["finished_bound"] = sa.insert(f).values(
                {c: sa.bindparam(f"v_{c}", type_=f.c[c].type) for c in self._FINISHED})
        return self._cache["finished_bound"]

    def complete_one(self) -> Any:
        """PostgreSQL: delete the job (if this worker still holds it) and record it as finished,
        in one statement."""
        if "complete_one" not in self._cache:
            t, f = self.t, self.aux["finished"]
            gone = (sa.delete(t).where(t.c.id == sa.bindparam("job_id", type_=t.c.id.type),
                                       t.c.locked_by == sa.bindparam("worker", type_=t.c.locked_by.type))
                    .returning(t.c.id).cte("gone"))
            values = [gone.c.id if c == "job_id" else sa.cast(sa.bindparam(c, type_=f.c[c].type), f.c[c].type)
                      for c in self._FINISHED]
            self._cache["complete_one"] = sa.insert(f).from_select(list(self._FINISHED), sa.select(*values))
        return self._cache["complete_one"]

    # --- SQLite: the statements run while holding the one write lock, straight on the driver ---
    def driver_sql(self, name: str, stmt: Any) -> tuple[str, list[tuple[str, Any]]]:
        """`stmt` compiled once to the driver's SQL and its parameters' order and converters:
        on SQLite, where every writer waits for the one holding the lock, the lock is held for
        the statement alone, not for SQLAlchemy's per-execution bookkeeping as well."""
        key = ("driver", name)
        if key not in self._cache:
            compiled = stmt.compile(dialect=self.engine.dialect)
            order = []
            for param in compiled.positiontup or ():
                bind = compiled.binds[param]
                order.append((param, bind.type._cached_bind_processor(self.engine.dialect)))
            self._cache[key] = (str(compiled), order)
        return self._cache[key]
