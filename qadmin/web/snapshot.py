"""The dashboard's numbers, read once every few seconds for everyone: a small per-app cache.

A full `stats()` counts every job of every queue (a `GROUP BY` over the whole table, or a walk of
Redis' lists), so on a big queue it costs far more than the page of rows an operator looks at.
The pages (overview, the state tabs and queue menu of the jobs page, the error groups, the queue
menus of errors and dequeue) show it as a live dashboard that refreshes every few seconds anyway,
so all their requests share one reading per backend, a few seconds old, and say when it was taken.

* A reading older than `ttl` is still served while one background thread reads a fresh one
  (stale-while-revalidate): no view waits for a full count once the cache is warm, and however
  many browsers are open, a backend answers at most one `stats()` at a time for the dashboard.
* A reading that took long stays fresh longer: at least `COST_FACTOR` times what it took, so
  re-counting a huge queue (a second or more per `stats()` at a million SQLite rows) takes at
  most a fifth of the server's time instead of most of it.
* A reading older than `stale_limit` (a dashboard idle for a while) is not shown: the view reads
  a fresh one itself; concurrent views wait for that one reading instead of each starting one.
* Every action taken through this app (`invalidate`, called by `actions.mutating`) drops the
  backend's readings, so the page an operator is sent back to shows the result of the action.
  A reading that was in flight during the action is discarded, never stored.

Listings of the jobs page go through a second, stricter instance (`listing_cache`): a page of
rows is shared for at most a second (QADMIN_LIST_TTL) and never served stale, so concurrent
browsers on the same page cost one read, and an operator never sees rows older than that, bar a
listing so slow that it stays fresh `COST_FACTOR` times what it took.

The JSON API, `/metrics`, previews and actions never go through these caches: they read the
backend on every request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

log = logging.getLogger("qadmin.web")

#: what a reading holds
V = TypeVar("V")
#: what a page works out from a reading
D = TypeVar("D")

#: default seconds a reading is fresh (QADMIN_STATS_TTL)
DEFAULT_TTL = 3.0
#: a reading stays fresh for at least this many times what it took to read
COST_FACTOR = 4.0
#: default seconds after which a reading is no longer shown at all (a dashboard left idle)
DEFAULT_STALE_LIMIT = 60.0
#: most filtered tab counts kept per app (each is a handful of ints)
CAPACITY = 256
#: most pages worked out from one reading (`Reading.derive`)
DERIVED_CAPACITY = 16
#: default seconds a page of the jobs listing is shared (QADMIN_LIST_TTL)
DEFAULT_LIST_TTL = 1.0
#: most pages of rows kept per app (each holds its jobs' payloads)
LIST_CAPACITY = 32


@dataclass(frozen=True)
class Reading(Generic[V]):
    value: V
    #: the backend's clock when the reading was taken: what "as of" shows
    as_of: datetime
    #: time.monotonic() when it was taken: what the ttl is measured against
    taken: float
    #: seconds the reading took
    cost: float = 0.0
    #: what the pages work out from this reading (see `derive`), kept with it and dropped with it
    derived: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)

    def derive(self, key: Hashable, make: Callable[[], D]) -> D:
        """`make()` once per reading: a page built from the same numbers is the same page, however
        many browsers refresh it. Two requests may both make it at once; either result is right.
        The key says what was made: the same key must always make the same type."""
        try:
            return cast(D, self.derived[key])
        except KeyError:
            value = make()
            # a few variants (addresses, modes) per reading; never one per made-up query string
            if len(self.derived) < DERIVED_CAPACITY:
                self.derived[key] = value
            return value


class Snapshots:
    """Readings keyed by (backend name, what), shared by every request of one app."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        stale_limit: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
        capacity: int = CAPACITY,
    ) -> None:
        self.ttl = max(float(ttl), 0.0)
        self.capacity = capacity
        # long enough to cover a slow full count on a big queue and a few idle seconds between
        # views; short enough that a dashboard left idle never opens on old numbers
        self.stale_limit = stale_limit if stale_limit is not None else max(10 * self.ttl, DEFAULT_STALE_LIMIT)
        self._clock = clock
        self._background = background
        # each `what` is read by one `read` function, so a key's reading always holds one type
        self._items: dict[tuple[str, Hashable], Reading[Any]] = {}
        self._generation: dict[str, int] = {}
        self._inflight: dict[tuple[str, Hashable], threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, backend: str, what: Hashable, read: Callable[[], tuple[V, datetime]]) -> Reading[V]:
        """The reading of `what` on `backend`; `read()` returns (value, the backend's now)."""
        if self.ttl <= 0:
            value, as_of = read()
            return Reading(value, as_of, self._clock())
        key = (backend, what)
        while True:
            with self._lock:
                item: Reading[V] | None = self._items.get(key)
                age = None if item is None else self._clock() - item.taken
                if item is not None and age is not None and age < max(self.ttl, COST_FACTOR * item.cost):
                    return item
                busy = self._inflight.get(key)
                if busy is None:
                    busy = self._inflight[key] = threading.Event()
                    generation = self._generation.get(backend, 0)
                    mine = True
                else:
                    mine = False
                usable = item if item is not None and age is not None and age < self.stale_limit else None
            if usable is not None and mine and self._background:
                threading.Thread(
                    target=self._refresh,
                    args=(key, read, generation, busy),
                    daemon=True,
                    name="qadmin-web-snapshot",
                ).start()
                return usable
            if usable is not None and not mine:
                return usable  # someone is already reading a fresh one
            if mine:
                return self._read(key, read, generation, busy)
            busy.wait(60)  # nothing usable yet: wait for the one reading in flight, then look again

    def _read(
        self,
        key: tuple[str, Hashable],
        read: Callable[[], tuple[V, datetime]],
        generation: int,
        busy: threading.Event,
    ) -> Reading[V]:
        try:
            started = time.perf_counter()
            value, as_of = read()
            reading = Reading(value, as_of, self._clock(), time.perf_counter() - started)
            with self._lock:
                if self._generation.get(key[0], 0) == generation:
                    self._items[key] = reading
                    self._trim()
            return reading
        finally:
            with self._lock:
                if self._inflight.get(key) is busy:
                    del self._inflight[key]
            busy.set()

    def _refresh(
        self,
        key: tuple[str, Hashable],
        read: Callable[[], tuple[V, datetime]],
        generation: int,
        busy: threading.Event,
    ) -> None:
        """`_read` in a background thread, for a view already answered with the previous reading."""
        try:
            self._read(key, read, generation, busy)
        except Exception:
            # the next view past the stale limit reads (and reports the error) itself
            log.warning("reading the dashboard numbers of %s failed", key[0], exc_info=True)

    def invalidate(self, backend: str | None = None) -> None:
        """Forget the readings of one backend (all when None): the data just changed."""
        with self._lock:
            names = {backend} if backend is not None else {k[0] for k in self._items} | set(self._generation)
            for name in names:
                self._generation[name] = self._generation.get(name, 0) + 1
            for key in [k for k in self._items if k[0] in names]:
                del self._items[key]

    def _trim(self) -> None:
        if len(self._items) > self.capacity:
            for key, _ in sorted(self._items.items(), key=lambda kv: kv[1].taken)[: len(self._items) - self.capacity]:
                del self._items[key]


def listing_cache(ttl: float = DEFAULT_LIST_TTL, clock: Callable[[], float] = time.monotonic) -> Snapshots:
    """The jobs page's pages of rows: fresh for `ttl` seconds, then read again by the next view
    (concurrent views wait for that one read); nothing older is ever shown."""
    return Snapshots(ttl=ttl, stale_limit=ttl, clock=clock, background=False, capacity=LIST_CAPACITY)
