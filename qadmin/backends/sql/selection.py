"""A `JobFilter` as SQL: the conditions on the jobs table and on qadmin's finished records, the
listing orders, and the lock holders that are dead (whose locks count as stale)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from qadmin.backends.base import SORTS, BackendOptions
from qadmin.backends.owners import owner_dead
from qadmin.backends.sql.store import Store
from qadmin.backends.sql.values import BATCH, escape_like, parse_id, payload_tokens, text_of, words_of
from qadmin.errors import UsageError
from qadmin.filters import JobFilter
from qadmin.fingerprints import fingerprint
from qadmin.job import JobState

LIVE_STATES = frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED, JobState.FAILED})
#: the states of qadmin's finished records: ran to completion, or cancelled
HISTORY_STATES = frozenset({JobState.FINISHED, JobState.CANCELLED})
#: an error group's exact lines named in its condition; past this, its class and Python's check
GROUP_LINES = 500


class Selection:
    def __init__(self, store: Store, options: BackendOptions) -> None:
        self.store = store
        self.dialect = store.dialect
        self.options = options

    def dead_owners(self, conn: sa.Connection, owners: set[str], now: datetime) -> set[str]:
        owners = {o for o in owners if isinstance(o, str)}  # a BLOB or a number names no process
        if not owners:
            return set()
        beats = self.heartbeats(conn, owners)
        return {o for o in owners if owner_dead(o, beats, now, self.options.worker_timeout)}

    def heartbeats(self, conn: sa.Connection, owners: set[str]) -> dict[str, datetime | None]:
        """The last heartbeat of each owner that is a registered qadmin worker."""
        if not owners or not self.store.has_aux("workers"):
            return {}
        w = self.store.aux["workers"]
        return {
            r.name: r.heartbeat_at
            for r in conn.execute(sa.select(w.c.name, w.c.heartbeat_at).where(w.c.name.in_(list(owners)[:BATCH])))
        }

    def all_dead_owners(self, conn: sa.Connection, now: datetime) -> set[str]:
        t = self.store.jobs()
        owners = {
            r[0]
            for r in conn.execute(sa.select(t.c.locked_by).where(self.locked(), t.c.locked_by.is_not(None)).distinct())
        }
        return self.dead_owners(conn, owners, now)

    def locked(self) -> Any:
        """Live locked rows: few (a lock per running job, plus stale ones) among many."""
        t = self.store.jobs()
        return sa.and_(
            self.dialect.likelihood(t.c.failed_at.is_(None), 0.9375),
            self.dialect.likelihood(t.c.locked_at.is_not(None), 0.001),
        )

    def state_clause(self, state: JobState, now: datetime, stale_only: bool, dead: set[str]) -> Any:
        t = self.store.jobs()
        if state is JobState.FAILED:
            return t.c.failed_at.is_not(None)
        if state is JobState.LOCKED:
            clause = self.locked()
            if stale_only:
                cutoff = now - timedelta(seconds=self.options.max_run_time)
                stale = t.c.locked_at < cutoff
                if dead:
                    stale = sa.or_(stale, t.c.locked_by.in_(sorted(dead)))
                clause = sa.and_(clause, stale)
            return clause
        unlocked = sa.and_(t.c.failed_at.is_(None), t.c.locked_at.is_(None))
        if state is JobState.SCHEDULED:
            return sa.and_(unlocked, t.c.run_at > now)
        return sa.and_(unlocked, sa.or_(t.c.run_at.is_(None), t.c.run_at <= now))

    def where(self, selection: JobFilter, now: datetime, conn: sa.Connection) -> tuple[list[Any], bool, set[str]]:
        """SQL conditions for a filter, whether rows need the exact Python check, and dead owners."""
        t = self.store.jobs()
        clauses: list[Any] = []
        dead: set[str] = set()
        states = set(selection.states) or set(LIVE_STATES)
        if selection.stale_only:
            states = {JobState.LOCKED}
            dead = self.all_dead_owners(conn, now)
        if selection.fingerprint is not None:  # an error group holds failed jobs only
            states &= {JobState.FAILED}
        if states != set(LIVE_STATES):
            clauses.append(
                sa.or_(
                    *(
                        self.state_clause(s, now, selection.stale_only, dead)
                        for s in sorted(states, key=lambda s: s.value)
                        if s in LIVE_STATES
                    )
                )
                if states & LIVE_STATES
                else sa.false()
            )
        if selection.queues:
            named = t.c.queue.in_(list(selection.queues))
            # delayed_job's default queue is NULL; listings show and select it as ""
            clauses.append(sa.or_(named, t.c.queue.is_(None)) if "" in selection.queues else named)
        if selection.ids:
            ids = [parse_id(str(i)) for i in selection.ids]
            clauses.append(t.c.id.in_(ids))
        if selection.locked_by is not None:
            clauses.append(t.c.locked_by.like(f"%{escape_like(selection.locked_by)}%", escape="\\"))
        if selection.error is not None:
            err = self.store.error_col()
            clauses.append(sa.or_(err == selection.error, err.like(escape_like(selection.error) + "\n%", escape="\\")))
        post = False
        if selection.fingerprint is not None:
            clause, post = self.error_group(conn, clauses, selection.fingerprint)
            clauses.append(clause)
        tokens = payload_tokens(selection)
        if selection.class_name is not None or selection.args is not None:
            post = True
        if selection.search:
            post = True
            # every word is in the payload or the last error (which one, `matches` tells)
            for token in words_of(selection.search):
                clauses.append(
                    sa.or_(
                        self.dialect.contains(t.c.handler, token, ignore_case=True),
                        self.dialect.contains(self.store.error_col(), token, ignore_case=True),
                    )
                )
        for token, any_case in tokens[:8]:
            clauses.append(self.dialect.contains(t.c.handler, token, ignore_case=any_case))
        if selection.undecodable:
            post = True
        return clauses, post, dead

    def error_group(self, conn: sa.Connection, clauses: list[Any], fingerprint_id: str) -> tuple[Any, bool]:
        """The condition for an error group's jobs among the rows `clauses` select, and whether
        rows need the exact Python check. The database lists the distinct first lines (as error
        groups do) and Python keeps those of the fingerprint: a condition on them when they are
        few, else the exception class as a prefix and the exact check."""
        err = self.store.error_col()
        first = self.dialect.first_line(err)
        if first is None:
            return sa.true(), True
        wanted: list[str] = []
        blank = False  # failed rows with no error at all: the "(no error recorded)" group
        for (key,) in conn.execute(sa.select(first).where(*clauses).distinct()):
            line = text_of(key)
            if fingerprint(line).id != fingerprint_id:
                continue
            if line:
                wanted.append(line)
            else:
                blank = True
        if len(wanted) > GROUP_LINES:
            exception = fingerprint(wanted[0]).exception
            prefix = err.like(escape_like(exception) + ":%", escape="\\") if exception else sa.true()
            return prefix, True
        found = [first.in_(wanted)] if wanted else []
        if blank:
            found += [err.is_(None), first == ""]
        return (sa.or_(*found) if found else sa.false()), False

    def order(self, sort: str) -> tuple[list[sa.Column[Any]], bool]:
        t = self.store.jobs()
        if sort not in SORTS:
            raise UsageError(f"unknown sort {sort!r}; expected one of: {', '.join(SORTS)}")
        if sort == "id":
            return [t.c.id], False
        if sort == "-id":
            return [t.c.id], True
        if sort == "priority":
            cols = [t.c.priority] if "priority" in t.c else []
            return cols + [t.c.run_at, t.c.id], False
        if sort == "run_at":
            return [t.c.run_at, t.c.id], False
        return [t.c.failed_at, t.c.id], True

    def finished_where(self, selection: JobFilter) -> tuple[list[Any], bool]:
        """SQL conditions on qadmin_finished for a filter, and whether rows need the exact Python
        check: the same fields as `_where`, as far as a finished row can answer them."""
        f = self.store.aux["finished"]
        clauses: list[Any] = [f.c.job_table == self.store.table_name]
        if JobState.FINISHED not in selection.states:
            clauses.append(f.c.cancelled_by.is_not(None))
        elif JobState.CANCELLED not in selection.states:
            clauses.append(f.c.cancelled_by.is_(None))
        if selection.stale_only or selection.error is not None or selection.fingerprint is not None:
            # a finished job holds no lock and has no error
            return clauses + [sa.false()], False
        if selection.queues:
            named = f.c.queue.in_(list(selection.queues))
            clauses.append(sa.or_(named, f.c.queue.is_(None)) if "" in selection.queues else named)
        if selection.ids:
            clauses.append(f.c.job_id.in_([parse_id(str(i)) for i in selection.ids]))
        if selection.locked_by is not None:
            # a finished job shows the worker that ran it as its lock holder
            clauses.append(f.c.worker.like(f"%{escape_like(selection.locked_by)}%", escape="\\"))
        post = False
        tokens = payload_tokens(replace(selection, class_name=None))
        if selection.class_name is not None:
            # the class recorded at completion; rows without one are decoded
            post = True
            words = [
                self.dialect.contains(f.c.class_name, token, ignore_case=True)
                for token in words_of(selection.class_name)
            ]
            clauses.append(sa.or_(sa.and_(sa.true(), *words), f.c.class_name.is_(None), f.c.class_name == ""))
        if selection.args is not None:
            post = True
        if selection.search:
            post = True
            for token in words_of(selection.search):
                clauses.append(
                    sa.or_(
                        self.dialect.contains(f.c.handler, token, ignore_case=True),
                        self.dialect.contains(f.c.class_name, token, ignore_case=True),
                    )
                )
        for token, any_case in tokens[:8]:
            clauses.append(self.dialect.contains(f.c.handler, token, ignore_case=any_case))
        if selection.undecodable:
            post = True
        return clauses, post
