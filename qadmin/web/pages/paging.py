"""The lists' previous/next pages and sortable headers (the jobs listing, the workers).

Pages are keyset pages (`Page.next_cursor`): a cursor says where a page starts, not how far in it
is. So the address of a page carries the cursors of the pages before it (`prev`, one per page,
"" for the first), and "previous" pops one: no reverse keyset is needed, and the position
("51–100") is the number of cursors times the page size. The address grows by one cursor per page.

"of N" is the count of the state tab the page already shows (the tab counts are read for every
view anyway, shared for a few seconds: qadmin.web.snapshot), so it costs nothing more. It is left
out where it would not hold: a page reached from an address without its `prev` cursors (its
position is unknown, so it says "50 rows"), or a count read before jobs arrived that the rows now
pass ("51–100" then, without "of N").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qadmin.job import WorkerInfo

#: a jobs-page address made from its query parameters (`readings.jobs_url`)
UrlFor = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class Pager:
    """What the pager shows: the range of the rows, and the links either side."""

    first: int | None  # 1-based position of the page's first row; None when unknown
    last: int | None
    total: int | None  # "of N", when it holds
    shown: int
    prev_url: str | None
    next_url: str | None
    first_url: str | None

    @property
    def text(self) -> str:
        if self.first is None or self.last is None:
            return f"{self.shown} row{'s' if self.shown != 1 else ''}"
        if not self.shown:
            return "no rows" if self.total is None else f"0 of {self.total}"
        span = f"{self.first}–{self.last}"
        return span if self.total is None else f"{span} of {self.total}"


def tab_total(counts: Mapping[str, int], state_word: str, states: Sequence[str]) -> int:
    """The number of jobs the listing pages through, from the state tabs' counts: the tab's own,
    or every state's ("stale" is a part of "locked", so it is not added again)."""
    if state_word:
        return counts.get(state_word, 0)
    return sum(counts.get(word, 0) for word in states if word != "stale")


def pager(
    query: Mapping[str, Any],
    *,
    cursor: str | None,
    prev: Sequence[str],
    next_cursor: str | None,
    shown: int,
    limit: int,
    total: int,
    url: UrlFor,
) -> Pager:
    """The pager of a page of `shown` rows reached with `cursor` after the pages whose cursors
    are `prev`; `query` is the listing's address without cursor or prev."""
    known = cursor is None or bool(prev)
    depth = len(prev) if cursor else 0
    first = depth * limit + 1 if known else None
    last = (first + shown - 1) if first is not None else None
    holds = last is not None and last <= total and (next_cursor is None or last < total)
    prev_url = first_url = None
    if cursor:
        first_url = url(query)
        if prev:
            back = prev[-1]
            prev_url = url({**query, "cursor": back or None, "prev": list(prev[:-1]) or None})
        else:
            prev_url = first_url
    next_url = None
    if next_cursor:
        trail = [*prev, cursor or ""] if known else None
        next_url = url({**query, "cursor": next_cursor, "prev": trail})
    return Pager(first, last, total if holds else None, shown, prev_url, next_url, first_url)


#: the jobs table's sortable columns: column -> (its sort, the sort of its second click), in SORTS' words
SORTABLE: dict[str, tuple[str, str | None]] = {"id": ("id", "-id"), "pri": ("priority", None), "when": ("run_at", None)}
#: the "when" column of the failed tab shows when each job failed, newest first
FAILED_WHEN = ("-failed_at", None)


def sort_links(
    query: Mapping[str, Any], sort: str, state_word: str, url: UrlFor, *, priorities: bool = True
) -> dict[str, tuple[str, str | None]]:
    """Each sortable column's link, and its aria-sort when the listing is sorted by it. A link to
    a new order starts again from the first page; "id" flips between oldest and newest first.
    Without `priorities` (Resque's queues have none) the "pri" column does not sort."""
    out: dict[str, tuple[str, str | None]] = {}
    for column, (first, second) in SORTABLE.items():
        if column == "pri" and not priorities:
            continue
        if column == "when" and state_word == "failed":
            first, second = FAILED_WHEN
        if sort == first:
            target = second or first
            state: str | None = "descending" if first.startswith("-") else "ascending"
        elif sort == second:
            target, state = first, "descending"
        else:
            target, state = first, None
        out[column] = (url({**query, "sort": None if target == "id" else target}), state)
    return out


#: the workers list's sorts (a list read whole, so any order is cheap): word -> the sort key,
#: biggest first for the counts, the stale ones first
WORKER_SORTS: dict[str, Callable[[WorkerInfo], Any]] = {
    "name": lambda w: w.name,
    "processed": lambda w: -w.processed,
    "failed": lambda w: -w.failed,
    "status": lambda w: (not w.stale, w.name),
}


def sort_workers(workers: list[WorkerInfo], sort: str | None) -> tuple[list[WorkerInfo], str | None]:
    """The workers in the order `sort` names (as read when it names none or an unknown one), and
    the sort in force."""
    key = WORKER_SORTS.get(sort or "")
    if key is None:
        return workers, None
    return sorted(workers, key=key), sort
