"""The worker's hot statements (claim, lock, complete, fail, release), built once per backend.

A statement object built once and executed with bound values is compiled once: SQLAlchemy keys
its compiled cache on the statement, which is memoised on the object, and psycopg prepares it on
the server after a few runs. Per-call values (queues, ids to skip) are expanding bind parameters,
never literals, so the SQL text stays the same from job to job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import util as sql_util

from qadmin.backends.sql.dialect import Dialect
from qadmin.backends.sql.driver import DriverSql
from qadmin.backends.sql.store import Store
from qadmin.backends.sql.tables import claim_index_name, holds_unlocked_only, json_handler

#: `by_queue` of a claim step whose queue comes before others in the worker's list
EARLIER = "earlier"

#: how a claim statement picks its queues: none named (False), named (True), named and served
#: before others (EARLIER), or several queue steps in one statement (`steps_key`)
ByQueue = bool | str | tuple[str, int, bool]


def queue_steps(queues: Sequence[str]) -> list[list[str]]:
    """The worker's queue list as claim steps, in order: Resque's rule, earlier queues first
    (within one, priority then run_at). A step is one queue; `*` (every queue) ends the list,
    as nothing after it could come later than it does."""
    steps: list[list[str]] = []
    for queue in queues:
        if queue == "*":
            steps.append(["*"])
            break
        if [queue] not in steps:
            steps.append([queue])
    return steps or [["*"]]


class ClaimStatements:
    def __init__(self, dialect: Dialect, table: sa.Table, aux: dict[str, sa.Table], table_name: str) -> None:
        self.dialect = dialect
        self.engine = dialect.engine
        self.t = table
        self.aux = aux
        self.table_name = table_name
        self.has_claim_index = any(i.name == claim_index_name(table_name) for i in table.indexes)
        #: PostgreSQL: the claim index holds unlocked rows only, and the claim reads locked rows
        #: (expired, or its own) apart, off the locked_at index (`_pick`)
        self.split_locked = any(
            i.name == claim_index_name(table_name) and holds_unlocked_only(i.dialect_options["postgresql"]["where"])
            for i in table.indexes
        )
        self.cols = ([table.c.priority] if "priority" in table.c else []) + [table.c.run_at, table.c.id]
        self._cache: dict[Any, Any] = {}

    # --- pieces -------------------------------------------------------------------------------
    def _params(self) -> tuple[Any, Any, Any]:
        t = self.t
        return (
            sa.bindparam("now", type_=t.c.run_at.type),
            sa.bindparam("expired", type_=t.c.run_at.type),
            sa.bindparam("worker", type_=t.c.locked_by.type),
        )

    def ready(self, for_scan: bool = False, by_queue: ByQueue = False) -> Any:
        """Runnable by `worker` at `now`: due, unlocked or its lock expired (or its own), not failed."""
        t = self.t
        now, expired, worker = self._params()
        live: Any = self.dialect.claim_live(t, self.has_claim_index) if for_scan else t.c.failed_at.is_(None)
        return sa.and_(
            sa.or_(
                sa.and_(
                    sa.or_(t.c.run_at.is_(None), t.c.run_at <= now),
                    sa.or_(t.c.locked_at.is_(None), t.c.locked_at < expired),
                ),
                t.c.locked_by == worker,
            ),
            live,
        )

    def _split_ready(self, own: bool) -> tuple[Any, Any]:
        """PostgreSQL: `ready` as two disjoint halves, each read along its own index: the
        unlocked rows (the condition of PostgreSQL's claim index, `tables.holds_unlocked_only`)
        and the locked rows this worker may take. `own` False leaves out rows locked by this
        worker within their run time (see `complete_and_lock`): the locked half is then a range
        of old locks on the locked_at index, where the entries of the rows just completed never
        are."""
        t = self.t
        now, expired, worker = self._params()
        due = sa.or_(t.c.run_at.is_(None), t.c.run_at <= now)
        live = t.c.failed_at.is_(None)
        unlocked = sa.and_(due, t.c.locked_at.is_(None), live)
        # the locked half is read along the locked_at index, in lock order (`_arm_parts`). Its
        # `failed_at IS NULL` is spelt so that no index can take it: without statistics (a table
        # just filled) the planner counts 0.5 % of rows as NULL there, and read the state index
        # (queue, failed_at, locked_at…) by it, every page of it for each claim
        not_failed = sa.func.coalesce(t.c.failed_at.is_(None), sa.false())
        if own:
            taken = sa.or_(sa.and_(due, t.c.locked_at < expired), t.c.locked_by == worker)
            locked = sa.and_(t.c.locked_at.is_not(None), taken, not_failed)
        else:
            locked = sa.and_(
                t.c.locked_at.is_not(None), t.c.locked_at < expired, sa.or_(due, t.c.locked_by == worker), not_failed
            )
        return unlocked, locked

    def _conditions(self, queues: ByQueue, skip: bool, ready: Any = None) -> list[Any]:
        t = self.t
        p = self.aux["pauses"]
        # only qadmin/Resque JSON handlers: Ruby YAML and PHP rows belong to their own workers
        conditions = [
            self.ready(for_scan=True, by_queue=queues) if ready is None else ready,
            json_handler(self.dialect.as_text(t.c.handler)),
        ]
        if queues:
            # An EARLIER queue (one the worker serves before others, `queue_steps`) is read off an
            # index that leads with the queue, costing what that queue holds, and nothing when it
            # is empty, where the claim index would be walked through every other queue's rows
            # before finding it has none: SQLite is not told the queue is common, and PostgreSQL
            # is given the name itself, which its statistics know (a bound name gets a generic
            # plan once the statement is prepared: the claim index walk)
            earlier = queues is EARLIER
            in_queues = t.c.queue.in_(
                sa.bindparam("queues", expanding=True, literal_execute=earlier and self.dialect.literal_queue_names())
            )
            conditions.append(
                self.dialect.likelihood(in_queues, 0.9375) if self.has_claim_index and not earlier else in_queues
            )
        if skip:
            conditions.append(t.c.id.not_in(sa.bindparam("skip", expanding=True)))
        paused = sa.select(p.c.queue).where(p.c.job_table == sa.bindparam("job_table", self.table_name))
        conditions.append(sa.or_(t.c.queue.is_(None), t.c.queue.not_in(paused.scalar_subquery())))
        return conditions

    def order(self) -> list[Any]:
        return [self.dialect.order_nulls_low(c, False) for c in self.cols]

    # --- statements ---------------------------------------------------------------------------
    def candidates(self, queues: ByQueue, skip: bool, limit: int) -> Any:
        """SELECT the next `limit` runnable rows in claim order (row-locked, skipping locked rows,
        where the database can)."""
        key = ("candidates", queues, skip, limit)
        if key not in self._cache:
            stmt = sa.select(self.t).where(*self._conditions(queues, skip)).order_by(*self.order()).limit(limit)
            if self.dialect.skip_locked:
                stmt = stmt.with_for_update(skip_locked=True)
            self._cache[key] = stmt
        return self._cache[key]

    def candidates_after(self, queues: ByQueue, skip: bool, limit: int, after: Any) -> Any:
        """`candidates` past a keyset position (the rare claim that reads past unrunnable rows)."""
        stmt = sa.select(self.t).where(*self._conditions(queues, skip), after).order_by(*self.order()).limit(limit)
        if self.dialect.skip_locked:
            stmt = stmt.with_for_update(skip_locked=True)
        return stmt

    def lock(self) -> Any:
        """Lock one row by id, guarded by the same ready predicate the candidates were read with."""
        if "lock" not in self._cache:
            t = self.t
            now, _expired, worker = self._params()
            self._cache["lock"] = (
                sa.update(t)
                .where(t.c.id == sa.bindparam("job_id"), self.ready())
                .values(locked_at=now, locked_by=worker)
            )
        return self._cache["lock"]

    def lock_returning(self, queues: ByQueue, skip: bool) -> Any:
        """PostgreSQL: lock the next `n` runnable rows in one statement, returning them with the
        lock they had before (a row the worker then finds it cannot run gets that lock back)."""
        key = ("lock_returning", queues, skip)
        if key not in self._cache:
            t = self.t
            now, _expired, worker = self._params()
            old = self._pick(queues, skip).subquery("old")
            self._cache[key] = (
                sa.update(t)
                .where(t.c.id == old.c.old_id)
                .values(locked_at=now, locked_by=worker)
                .returning(*t.c, old.c.old_locked_at, old.c.old_locked_by, old.c.step)
            )
        return self._cache[key]

    def _pick(self, queues: ByQueue, skip: bool, *extra: Any, own: bool = True) -> Any:
        """PostgreSQL: the ids of the next `n` runnable rows, locked (skipping rows others have
        locked), with their previous lock and claim step (0 but for `steps`).

        `queues` a `steps` key (k, star): one arm per queue step, each the first `n` rows of
        its queue, named by literal (`step_0`…: PostgreSQL's statistics then say how to read
        that queue: an empty or small one off the state index, a big one along the claim
        index), the earliest step's rows first. Every arm is read, one index probe each; the
        rows of later arms not taken are unlocked when the statement ends."""
        t = self.t
        n = sa.bindparam("n", type_=sa.Integer)
        cols = (t.c.id.label("old_id"), t.c.locked_at.label("old_locked_at"), t.c.locked_by.label("old_locked_by"))
        if not (isinstance(queues, tuple) and queues[0] == "steps"):
            if not self.split_locked:
                return (
                    sa.select(*cols, sa.literal_column("0").label("step"))
                    .where(*self._conditions(queues, skip), *extra)
                    .order_by(*self.order())
                    .limit(n)
                    .with_for_update(skip_locked=True)
                )
            parts = self._arm_parts(0, queues, skip, n, [*cols, *self.cols], *extra, own=own)
            union = sa.union_all(*(sa.select(p.subquery(f"arm_0_{j}")) for j, p in enumerate(parts))).subquery("arms")
        else:
            union = self._arms(queues, skip, n, [*cols, *self.cols], *extra, own=own)
        return (
            sa.select(union.c.old_id, union.c.old_locked_at, union.c.old_locked_by, union.c.step)
            .order_by(*self._arms_order(union, union.c.old_id))
            .limit(n)
        )

    def _arms(
        self, steps: tuple[str, int, bool], skip: bool, n: Any, cols: list[Any], *extra: Any, own: bool = True
    ) -> Any:
        """One arm per queue step (`steps`: its key, see `_pick`): the first `n` runnable rows
        of its queue in claim order, with the step's number; their UNION ALL."""
        t = self.t
        _, k, star = steps
        # PostgreSQL plans with the queue names themselves (see `_conditions`); SQLite is told the
        # last named queue is common, so it walks the claim index for it, and the earlier ones
        # off the queue's index
        pg = self.dialect.literal_queue_names()
        arms: list[Any] = []
        for i in range(k):
            if star and i == k - 1:  # every other queue (the named ones were the earlier arms)
                named = t.c.queue.not_in(sa.bindparam("earlier", expanding=True, literal_execute=pg))
                where = sa.or_(t.c.queue.is_(None), named)
            else:
                where = t.c.queue == sa.bindparam(f"step_{i}", type_=t.c.queue.type, literal_execute=pg)
                if i == k - 1 and self.has_claim_index:
                    where = self.dialect.likelihood(where, 0.9375)
            parts = self._arm_parts(i, False, skip, n, cols, where, *extra, own=own)
            arms += [p.subquery(f"arm_{i}" if len(parts) == 1 else f"arm_{i}_{j}") for j, p in enumerate(parts)]
        return sa.union_all(*(sa.select(arm) for arm in arms)).subquery("arms")

    def _arm_parts(
        self, i: int, queues: ByQueue, skip: bool, n: Any, cols: list[Any], *where: Any, own: bool = True
    ) -> list[Any]:
        """Claim step `i`'s first `n` runnable rows in claim order, with the step's number: one
        scan, or with `split_locked` two (unlocked rows, and locked rows it may take), each
        along its own index. Of more than `n` locked rows it may take, the oldest locks come
        first (a claim order among rescued rows that the plan does not depend on)."""
        parts = []
        for j, ready in enumerate(self._split_ready(own) if self.split_locked else (None,)):
            # the locked half in lock order first: read along the locked_at index from its oldest
            # entry, whatever the planner's statistics say (after a big first enqueue they have
            # no locked rows, and it chose the state index, whose every page such a range reads);
            # rows locked by one claim keep claim order among them
            order = [self.t.c.locked_at, *self.order()] if j == 1 else self.order()
            arm = (
                sa.select(*cols, sa.literal_column(str(i)).label("step"))
                .where(*self._conditions(queues, skip, ready), *where)
                .order_by(*order)
                .limit(n)
            )
            if self.dialect.skip_locked:
                arm = arm.with_for_update(skip_locked=True)
            if self.split_locked:  # `j.run_at`, not `delayed_jobs.run_at`: see `complete_and_lock`
                arm = sql_util.ClauseAdapter(self.t.alias("j")).traverse(arm)
            parts.append(arm)
        return parts

    def _arms_order(self, union: Any, id_column: Any) -> list[Any]:
        return (
            [union.c.step]
            + [
                self.dialect.nulls_first(union.c[c.name]) if c.name == "run_at" else union.c[c.name]
                for c in self.cols
                if c.name != "id"
            ]
            + [id_column]
        )

    def candidates_steps(self, steps: tuple[str, int, bool], skip: bool, limit: int) -> Any:
        """SQLite: `candidates` over several queue steps in one statement, the earliest step's
        rows first (each arm reads at most `limit` rows; the rest of the rows are dropped)."""
        key = ("candidates_steps", steps, skip, limit)
        if key not in self._cache:
            union = self._arms(steps, skip, limit, list(self.t.c))
            self._cache[key] = sa.select(union).order_by(*self._arms_order(union, union.c.id)).limit(limit)
        return self._cache[key]

    def unlock_back(self) -> Any:
        """Give a row locked by `lock_returning` its previous lock back."""
        if "unlock_back" not in self._cache:
            t = self.t
            now, _expired, worker = self._params()
            self._cache["unlock_back"] = (
                sa.update(t)
                .where(t.c.id == sa.bindparam("job_id"), t.c.locked_by == worker, t.c.locked_at == now)
                .values(
                    locked_at=sa.bindparam("old_at", type_=t.c.locked_at.type),
                    locked_by=sa.bindparam("old_by", type_=t.c.locked_by.type),
                )
            )
        return self._cache["unlock_back"]

    def release(self) -> Any:
        if "release" not in self._cache:
            t = self.t
            self._cache["release"] = (
                sa.update(t)
                .where(t.c.id == sa.bindparam("job_id"), t.c.locked_by == sa.bindparam("owner"))
                .values(locked_at=None, locked_by=None)
            )
        return self._cache["release"]

    def delete_locked(self) -> Any:
        if "delete" not in self._cache:
            t = self.t
            self._cache["delete"] = sa.delete(t).where(
                t.c.id == sa.bindparam("job_id"), t.c.locked_by == sa.bindparam("owner")
            )
        return self._cache["delete"]

    _FINISHED = (
        "job_table",
        "job_id",
        "queue",
        "class_name",
        "handler",
        "priority",
        "attempts",
        "created_at",
        "finished_at",
        "runtime",
        "worker",
    )

    def record_finished(self) -> Any:
        if "finished" not in self._cache:
            self._cache["finished"] = sa.insert(self.aux["finished"])
        return self._cache["finished"]

    def record_finished_bound(self) -> Any:
        """`record_finished` with named parameters (v_job_id, …) for `driver`."""
        if "finished_bound" not in self._cache:
            f = self.aux["finished"]
            self._cache["finished_bound"] = sa.insert(f).values(
                {c: sa.bindparam(f"v_{c}", type_=f.c[c].type) for c in self._FINISHED}
            )
        return self._cache["finished_bound"]

    def complete_one(self) -> Any:
        """PostgreSQL: delete the job (if this worker still holds it) and record it as finished,
        in one statement."""
        if "complete_one" not in self._cache:
            t, f = self.t, self.aux["finished"]
            gone = (
                sa.delete(t)
                .where(
                    t.c.id == sa.bindparam("job_id", type_=t.c.id.type),
                    t.c.locked_by == sa.bindparam("worker", type_=t.c.locked_by.type),
                )
                .returning(t.c.id)
                .cte("gone")
            )
            values = [
                gone.c.id if c == "job_id" else sa.cast(sa.bindparam(c, type_=f.c[c].type), f.c[c].type)
                for c in self._FINISHED
            ]
            # RETURNING: psycopg reports no rowcount for an INSERT fed by a data-modifying CTE
            self._cache["complete_one"] = (
                sa.insert(f).from_select(list(self._FINISHED), sa.select(*values)).returning(f.c.job_id)
            )
        return self._cache["complete_one"]

    def complete_and_lock(self, queues: ByQueue, skip: bool) -> Any:
        """PostgreSQL: `complete_one` and `lock_returning` in one statement, one round trip.

        Every part of a statement sees the same snapshot, in which the completed job is still
        there and locked by this worker (which the ready predicate accepts): it is named out of
        the rows to lock. Always one row at least: `done` (1 if the job was deleted and recorded,
        0 if this worker no longer held it), with the locked rows' columns, or NULLs if none.

        With `split_locked`, rows this worker holds within their run time are not taken again
        here: reading them would walk the locked_at index's entries of every job completed since
        the last vacuum. They are this worker's only where an earlier attempt of this very
        statement locked them and its reply was lost; the repeat then finds its job gone (`done`
        0), and `PreparedPg` gives back what it locked and claims as `lock_returning` does, which
        takes them."""
        key = ("complete_and_lock", queues, skip)
        if key not in self._cache:
            t, f = self.t, self.aux["finished"]
            now, _expired, worker = self._params()
            job_id = sa.bindparam("job_id", type_=t.c.id.type)
            gone = sa.delete(t).where(t.c.id == job_id, t.c.locked_by == worker).returning(t.c.id).cte("gone")
            # the finished record's values are bound as f_queue, f_priority, …: an execution
            # parameter named after a jobs column would join the UPDATE's SET clause
            # the driver spells most parameters' types itself (`%(f_queue)s::VARCHAR`); a CAST
            # around each as well took the statement past 4,096 bytes, the longest psycopg keeps
            # parsed (past it, it parses the text again on every call: 30-40 µs a job)
            values = [
                gone.c.id if c == "job_id" else self._typed(sa.bindparam(f"f_{c}", type_=f.c[c].type), f.c[c].type)
                for c in self._FINISHED
            ]
            recorded = (
                sa.insert(f).from_select(list(self._FINISHED), sa.select(*values)).returning(f.c.job_id).cte("recorded")
            )
            old = self._pick(queues, skip, t.c.id != job_id, own=False).cte("old")
            locked = (
                sa.update(t)
                .where(t.c.id == old.c.old_id)
                .values(locked_at=now, locked_by=worker)
                .returning(*t.c, old.c.old_locked_at, old.c.old_locked_by, old.c.step)
                .cte("locked")
            )
            done = sa.select(sa.func.count().label("done")).select_from(recorded).subquery("done")
            self._cache[key] = sa.select(done.c.done, *locked.c).select_from(done.outerjoin(locked, sa.true()))
        return self._cache[key]

    def _typed(self, param: Any, column_type: Any) -> Any:
        """`param` as a value of `column_type` in a SELECT list: as the driver spells it where
        it names its type, else CAST."""
        bind_cast = getattr(self.engine.dialect, "bind_typing", None) == sa.engine.interfaces.BindTyping.RENDER_CASTS
        if bind_cast and column_type.dialect_impl(self.engine.dialect).render_bind_cast:
            return param
        return sa.cast(param, column_type)

    def delete_unique(self) -> Any:
        if "delete_unique" not in self._cache:
            u = self.aux["unique"]
            self._cache["delete_unique"] = sa.delete(u).where(
                u.c.job_table == sa.bindparam("job_table", type_=u.c.job_table.type),
                u.c.key == sa.bindparam("key", type_=u.c.key.type),
                u.c.job_id == sa.bindparam("job_id", type_=u.c.job_id.type),
            )
        return self._cache["delete_unique"]

    # --- SQLite: the statements run while holding the one write lock, straight on the driver ---
    def driver(self, name: Any, stmt: Any) -> DriverSql:
        """`stmt` compiled once to the driver's SQL (`DriverSql`), cached under `name`."""
        key = ("driver", name)
        if key not in self._cache:
            self._cache[key] = DriverSql(stmt, self.engine.dialect)
        driver: DriverSql = self._cache[key]
        return driver


def in_claim_order(st: ClaimStatements, rows: list[Any]) -> list[Any]:
    """RETURNING gives rows in no particular order: sort them as the claim reads them (by queue
    step first, where the worker's queues are served in order)."""
    names = [c.name for c in st.cols]
    rows.sort(key=lambda r: (r.step or 0,) + tuple(sort_key(getattr(r, n)) for n in names))
    return rows


def sort_key(value: Any) -> tuple[int, Any]:
    """NULL lowest, as the claim orders; a value of the wrong type (an unreadable time, on
    which the row is then passed over) before both."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, datetime)) and not isinstance(value, bool):
        return (1, value)
    return (-1, 0)


def steps_key(steps: list[list[str]]) -> tuple[str, int, bool]:
    """`by_queue` of a PostgreSQL claim over several queue steps (`ClaimStatements._pick`)."""
    return ("steps", len(steps), steps[-1] == ["*"])


def step_params(steps: list[list[str]]) -> dict[str, Any]:
    params: dict[str, Any] = {f"step_{i}": step[0] for i, step in enumerate(steps) if step != ["*"]}
    if steps[-1] == ["*"]:
        params["earlier"] = [step[0] for step in steps[:-1]]
    return params


class Prebuilt:
    """The backend's `ClaimStatements`, built again only when the jobs table is (after `init`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._stmts: ClaimStatements | None = None

    def get(self) -> ClaimStatements:
        t = self.store.jobs()
        if self._stmts is None or self._stmts.t is not t:
            self.store.ensure_aux()
            self._stmts = ClaimStatements(self.store.dialect, t, self.store.aux, self.store.table_name)
        return self._stmts
