"""qadmin's index of Resque's `failed` list, so that counts and one queue's failures cost what
they show, not the length of the list (docs/compatibility.md §8.8).

The index lives in qadmin's own keys (never a field in Resque's entries) and is a cache: every
call of `lua/failed_index.lua` checks it against the list in the same atomic step as it answers
(the length, the entry at the indexed boundary, the counts summing up, a scrub window re-read).
Entries appended at the tail, by qadmin, Ruby or PHP, are indexed by reading only them; anything
else (a removal, resque-web's LSET "__delete__" + LREM, LTRIM, DEL, a hand-edited index key) drops
the index, and the next readers rebuild it, a window per call and `REBUILD_CALLS` per reader.
What is not indexed yet is read from the list as before the index, so an answer is never a stale
one and no reader pays a whole rebuild.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import redis as redis_lib

from qadmin.backends.redis.server import Server

#: entries indexed per script call (each call blocks Redis for about that many tallies)
INDEX_WINDOW = 5000
#: entries re-read per checking call, against in-place rewrites the boundary cannot see
SCRUB_WINDOW = 500
#: failures returned by a walk's first read call (a page wants a few), doubling up to READ_WINDOW
FIRST_READ = 64
READ_WINDOW = 1000
#: calls one reader spends bringing a dropped index up to date (about 60 ms each): past them it
#: reads the part not yet indexed from the list, as before the index, and leaves the rest of the
#: rebuild to the next readers — a removal behind qadmin's back costs no reader a whole rebuild
REBUILD_CALLS = 5


@dataclass(frozen=True)
class FailedCounts:
    """queue -> failures, and queue -> entries marked `retried_at` (history: in no state), of the
    entries 0..`indexed`-1 (every entry when `indexed` is the list's length)."""

    failed: dict[str, int]
    retried: dict[str, int]
    indexed: int


class FailedIndex:
    """The checked index of `failed`: counts per queue and each queue's failures by position."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.keys = server.keys

    def _call(self, *args: str | int | bytes) -> list[bytes]:
        k = self.keys
        script = self.server.scripts.failed_index
        keys = [k.failed, k.failed_index, k.failed_index_keys, k.failed_index_gen]
        head = [k.failed_at_prefix, k.failed_twins_prefix]
        with self.server.wrap():
            try:
                reply: list[bytes] = script(keys=keys, args=[args[0], *head, *args[1:]], client=self.server.client)
            except redis_lib.ResponseError:
                # one of the index's own keys holds what qadmin never writes there (poison, or a
                # hand edit): it is only a cache, so it is forgotten and built afresh
                self.server.client.delete(k.failed_index, k.failed_index_keys, k.failed_index_gen)
                reply = script(keys=keys, args=[args[0], *head, *args[1:]], client=self.server.client)
        return reply

    def counts(self, calls: int | None = None) -> FailedCounts | None:
        """Every queue's failures and retried entries among the entries indexed, checked against
        the list in the step that answers, after up to `calls` calls bringing the index up to
        date (`REBUILD_CALLS` by default); None when the list is of the wrong type."""
        reply = self._call("sync", INDEX_WINDOW, SCRUB_WINDOW)
        for _ in range((REBUILD_CALLS if calls is None else calls) - 1):
            if reply[0] != b"behind":
                break
            reply = self._call("sync", INDEX_WINDOW, SCRUB_WINDOW)
        if reply[0] == b"wrongtype":
            return None
        failed: dict[str, int] = {}
        retried: dict[str, int] = {}
        for i in range(3, len(reply), 2):
            field = reply[i]
            into = failed if field.startswith(b"f:") else retried if field.startswith(b"r:") else None
            if into is not None and int(reply[i + 1]):
                into[field[2:].decode("utf-8", "replace")] = int(reply[i + 1])
        return FailedCounts(failed, retried, int(reply[2]))

    def read(self, queues: tuple[str, ...], after: int | None, desc: bool) -> Iterator[tuple[int, bytes, int, int]]:
        """(index, entry, byte-identical entries among the TWIN_WINDOW before it, entries indexed)
        of these queues' indexed failures (retried entries left out), in list order after
        `after` (exclusive) — what `Twins.iter_failed` gives of them. Each window is read in the
        step that checks the index; FailedIndexUnusable when it no longer describes the list."""
        names = sorted(set(queues))
        size = min(FIRST_READ, READ_WINDOW)
        while True:
            reply = self._call("read", "", "" if after is None else after, "1" if desc else "0", size, *names)
            if reply[0] == b"stale":
                raise FailedIndexUnusable
            indexed = int(reply[1])
            for i in range(2, len(reply), 3):
                after = int(reply[i])
                yield after, reply[i + 1], int(reply[i + 2]), indexed
            if len(reply) - 2 < 3 * size:
                return
            size = min(2 * size, READ_WINDOW)

    def drop(self) -> None:
        """Forget the index (qadmin removed entries: every position after them moved)."""
        self._call("drop")


class FailedIndexUnusable(Exception):
    """The index no longer describes the list (it changed other than at its tail meanwhile)."""
