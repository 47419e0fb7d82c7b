"""Waiting jobs (`qadmin.Waiting`) in listings, counts and bulk previews of any states.

The backends keep waiting jobs apart from the jobs a listing pages through (no claim may see
them), so a selection that wants them ("waiting", or no state at all: every job not done) is
answered in two parts: the backend's own pages first, untouched, then the waiting jobs. The
waiting part is read only once the backend's part is done, so an ordinary listing costs what it
did; it reads at most `WAITING_LISTED` waiting jobs (they are few: each is a job handed to an
external service), in the listing's order, and pages through them by a keyset cursor
(`waiting:` and the last job's sort key): a page never shows a job twice or skips one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from qadmin.backends.base import Backend
from qadmin.errors import UsageError
from qadmin.filters import JobFilter
from qadmin.job import Job, JobId, JobState
from qadmin.model import SORTS, Page

#: waiting jobs a listing, a count or a preview reads at most
WAITING_LISTED = 10_000
#: how a page cursor into the waiting part of a listing begins (the backends' cursors are JSON
#: lists, or SQL's `finished:N`)
WAITING_CURSOR = "waiting:"
#: listing orders that run newest (or latest failed) first
DESCENDING = frozenset({"-id", "-failed_at"})


def wants_waiting(selection: JobFilter) -> bool:
    """Whether waiting jobs can match: named among the states, or no state named (every job not
    done, as the backends read it); never for stale locks only."""
    if selection.stale_only:
        return False
    return not selection.states or JobState.WAITING in selection.states


def others(selection: JobFilter) -> JobFilter | None:
    """The selection the backend answers (waiting left out), None when it wants waiting jobs only."""
    if JobState.WAITING not in selection.states:
        return selection
    rest = selection.states - {JobState.WAITING}
    return replace(selection, states=rest) if rest else None


def matching(backend: Backend, selection: JobFilter, now: datetime) -> list[Job]:
    """The waiting jobs the selection matches (of the first `WAITING_LISTED`), earliest deadline first."""
    if not wants_waiting(selection):
        return []
    return [j for j in backend.waiting_jobs(now, WAITING_LISTED) if selection.matches(j)]


def sort_key(job: Job, sort: str) -> list[Any]:
    """A waiting job's place in a listing of `sort`, as JSON values (it is the cursor)."""
    ident: list[Any] = [0, job.id, ""] if isinstance(job.id, int) else [1, 0, str(job.id)]
    run_at = job.run_at.timestamp() if job.run_at is not None else 0.0
    if sort == "priority":
        return [job.priority or 0, run_at, *ident]
    if sort == "run_at":
        return [run_at, *ident]
    return ident  # id, -id, and -failed_at (a waiting job has not failed): by id


def _after(cursor: str) -> list[Any] | None:
    text = cursor.removeprefix(WAITING_CURSOR)
    if not text:
        return None
    try:
        key = json.loads(text)
    except ValueError:
        raise UsageError(f"invalid page cursor {cursor!r}") from None
    # what `sort_key` writes: numbers and strings (a key of another shape compares as nothing)
    if not isinstance(key, list) or not all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in key):
        raise UsageError(f"invalid page cursor {cursor!r}")
    return key


def find_with_waiting(
    backend: Backend, selection: JobFilter, now: datetime, *, limit: int, cursor: str | None, sort: str
) -> Page:
    """One page of the selection, waiting jobs after the backend's (module docstring)."""
    if not wants_waiting(selection):
        return backend.find(selection, now, limit=limit, cursor=cursor, sort=sort)
    if sort not in SORTS:  # as the backends refuse it (a listing of waiting jobs only asks none)
        raise UsageError(f"unknown sort {sort!r}; expected one of: {', '.join(SORTS)}")
    rest = others(selection)
    jobs: list[Job] = []
    after: list[Any] | None = None
    if cursor is not None and cursor.startswith(WAITING_CURSOR):
        after = _after(cursor)
    elif rest is not None:
        page = backend.find(rest, now, limit=limit, cursor=cursor, sort=sort)
        if page.next_cursor is not None:
            return page
        jobs = page.jobs
    descending = sort in DESCENDING
    keyed = sorted(
        ((sort_key(j, sort), j) for j in matching(backend, selection, now)), key=lambda kj: kj[0], reverse=descending
    )
    if after is not None:
        try:
            keyed = [(k, j) for k, j in keyed if (k < after if descending else k > after)]
        except TypeError:  # a cursor of another listing's order
            raise UsageError(f"invalid page cursor {cursor!r}") from None
    room = limit - len(jobs)
    shown = keyed[:room]
    if len(keyed) <= room:
        return Page(jobs + [j for _, j in shown], None)
    # the page is full: the next one goes on after the last waiting job shown (or from the first)
    last = json.dumps(shown[-1][0], separators=(",", ":")) if shown else ""
    return Page(jobs + [j for _, j in shown], WAITING_CURSOR + last)


def count_with_waiting(backend: Backend, selection: JobFilter, now: datetime) -> int:
    rest = others(selection)
    counted = 0 if rest is None else backend.count(rest, now)
    return counted + len(matching(backend, selection, now))


def preview_ids(backend: Backend, narrowed: JobFilter, now: datetime) -> list[JobId]:
    """Every id a bulk verb's narrowed selection matches: the backend's, then the waiting jobs'."""
    ids: list[JobId] = []
    rest = others(narrowed)
    if rest is not None:
        for batch in backend.iter_ids(rest, now):
            ids.extend(batch)
    ids.extend(j.id for j in matching(backend, narrowed, now))
    return ids


def by_ids(backend: Backend, narrowed: JobFilter, ids: Sequence[JobId], now: datetime, limit: int) -> list[Job]:
    """The jobs of these ids in the narrowed selection (a preview's sample), waiting ones too."""
    chosen = replace(narrowed, ids=tuple(ids))
    return find_with_waiting(backend, chosen, now, limit=limit, cursor=None, sort="id").jobs
