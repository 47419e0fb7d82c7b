"""What the web app keeps between requests: the named backends and the frozen previews.

Everything lives in `app.extensions["qadmin"]` (a `WebState`), never in module globals, so two
apps in one process (tests, screenshots) never share a backend or a preview.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from flask import current_app, g, request, session

from qadmin.access import audit_actor
from qadmin.errors import UsageError
from qadmin.filters import JobFilter
from qadmin.ops import Ops, Preview
from qadmin.web.access import current_identity
from qadmin.web.credentials import Auth
from qadmin.web.snapshot import Snapshots, listing_cache

#: an open Ops, or a function that opens one on first use (named backends are opened lazily)
OpsSource = Ops | Callable[[], Ops]


class Backends:
    """The named backends of the switcher; each is opened on first use and kept open."""

    def __init__(self, sources: dict[str, OpsSource], default: str) -> None:
        if not sources:
            raise UsageError("the web app needs at least one backend")
        if default not in sources:
            raise UsageError(f"default backend {default!r} is not one of {', '.join(sources)}")
        self._sources = dict(sources)
        self._open: dict[str, Ops] = {n: s for n, s in sources.items() if isinstance(s, Ops)}
        self._lock = threading.Lock()
        self.default = default

    @property
    def names(self) -> list[str]:
        return list(self._sources)

    def get(self, name: str) -> Ops:
        if name not in self._sources:
            raise UsageError(f"no backend named {name!r}; known: {', '.join(self._sources)}")
        with self._lock:
            ops = self._open.get(name)
            if ops is None:
                source = self._sources[name]
                assert callable(source)
                ops = self._open[name] = source()
            return ops

    def close(self) -> None:
        with self._lock:
            opened, self._open = list(self._open.values()), {}
        for ops in opened:
            ops.close()


@dataclass
class QueueChange:
    """A queue's pause or resume, previewed and confirmed like a bulk action on jobs."""

    verb: str
    queue: str
    #: pending jobs in the queue when the preview was made: what a pause leaves waiting
    pending: int
    #: whether the queue was paused then (a pause of a paused queue changes nothing)
    paused: bool

    def to_dict(self) -> dict[str, Any]:
        return {"verb": self.verb, "queue": self.queue, "pending": self.pending, "paused": self.paused}


@dataclass
class StoredPreview:
    #: the jobs a bulk verb acts on, or a queue's change
    preview: Preview | QueueChange
    backend: str
    #: where to go back to after confirming or cancelling (a path of this app)
    back: str
    expires: float


class PreviewStore:
    """Previews of bulk actions, keyed by a random token, until confirmed or expired.

    Confirming acts on the ids frozen in the stored `Preview`; the filter is never re-run, so an
    operator changes exactly what the confirmation page showed. Taking a preview removes it:
    a second confirm of the same token finds nothing. Each preview holds its frozen ids, so
    beyond `capacity` the oldest is dropped (its confirmation page then says it expired).
    """

    def __init__(self, ttl: float = 600.0, capacity: int = 50, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._clock = clock
        self._items: OrderedDict[str, StoredPreview] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, preview: Preview | QueueChange, backend: str, back: str) -> str:
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._expire()
            self._items[token] = StoredPreview(preview, backend, back, self._clock() + self.ttl)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return token

    def get(self, token: str) -> StoredPreview:
        with self._lock:
            self._expire()
            item = self._items.get(token)
        if item is None:
            raise PreviewExpired()
        return item

    def take(self, token: str) -> StoredPreview:
        with self._lock:
            self._expire()
            item = self._items.pop(token, None)
        if item is None:
            raise PreviewExpired()
        return item

    def discard(self, token: str) -> None:
        with self._lock:
            self._items.pop(token, None)

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, item in self._items.items() if item.expires <= now]:
            del self._items[token]


class PreviewExpired(UsageError):
    """This confirmation has expired or was already used: preview the action again."""


class ListingQuery(NamedTuple):
    """The jobs page's query string as parsed (qadmin.web.pages.jobs.listing_query)."""

    selection: JobFilter
    sort: str
    limit: int
    cursor: str | None
    #: the key of its rows in the shared listings
    listing_key: Hashable
    #: the filter of the state tabs (the selection, its state aside), and whether it is one of
    #: queues alone
    tabs: tuple[JobFilter, bool]


@dataclass
class WebState:
    backends: Backends
    previews: PreviewStore
    auth: Auth
    #: the dashboard's shared stats readings (see qadmin.web.snapshot)
    snapshots: Snapshots = field(default_factory=Snapshots)
    #: the jobs page's shared pages of rows (see qadmin.web.snapshot)
    listings: Snapshots = field(default_factory=listing_cache)
    #: the links that never change, as templating.link built them
    links: dict[tuple[str, str, tuple[tuple[str, Any], ...]], str] = field(default_factory=dict)
    #: the jobs page's query strings as parsed, by backend name and query string
    parsed: dict[tuple[str, bytes], ListingQuery] = field(default_factory=dict)

    def changed(self) -> None:
        """An action went through this app: every shared reading may be out of date."""
        self.snapshots.invalidate()
        self.listings.invalidate()


def web_state() -> WebState:
    # create_app puts it there
    return cast(WebState, current_app.extensions["qadmin"])


def backend_name() -> str:
    """The backend this request works on: `?backend=` (API clients), the session's choice, or
    the default. A name from an old session that no longer exists falls back to the default."""
    name: str | None = g.get("qadmin_backend")
    if name is None:
        name = g.qadmin_backend = _backend_name()
    return name


def _backend_name() -> str:
    backends = web_state().backends
    query = request.query_string
    # parsing the query string is most of this function's cost, and most requests name no backend
    # (any encoding of the name would hold a "%")
    explicit = request.args.get("backend") if b"backend" in query or b"%" in query else None
    if explicit:
        if explicit not in backends.names:
            raise UsageError(f"no backend named {explicit!r}; known: {', '.join(backends.names)}")
        return explicit
    chosen = session.get("backend")
    return chosen if chosen in backends.names else backends.default


def get_ops(name: str | None = None) -> Ops:
    """The Ops of this request, carrying the logged-in operator as the audit actor.

    A shallow copy per request: the backend (and its connection pool) is shared, but the actor
    is not, so concurrent requests never write each other's name into the audit log.
    """
    name = name or backend_name()
    cached: tuple[str, Ops] | None = g.get("qadmin_ops")
    if cached is not None and cached[0] == name:
        return cached[1]
    base = web_state().backends.get(name)
    ops = copy.copy(base)
    ops.face = "web"
    ops.actor = actor()
    g.qadmin_ops = (name, ops)
    return ops


def actor() -> str:
    """The audit's user: `name@address`, and the role when the name is a configured user's or a
    proxy's (`alice@10.0.0.7 (operator)`; the shared password's holder is always an admin)."""
    identity = current_identity()
    if identity is None:
        return audit_actor("web", request.remote_addr or "unknown")
    return audit_actor(identity.name, identity.address, identity.role if identity.named else None)
