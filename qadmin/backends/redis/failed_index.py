"""qadmin's index of Resque's `failed` list, so that counts and one queue's failures cost what
they show, not the length of the list (docs/compatibility.md §8.8).

The index lives in qadmin's own keys (never a field in Resque's entries) and is a cache: every
call of `lua/failed_index.lua` checks it against the list in the same atomic step as it answers
(the length, the entry at the indexed boundary, the counts summing up, a scrub window re-read).
Entries appended at the tail, by qadmin, Ruby or PHP, are indexed by reading only them; anything
else (a removal, resque-web's LSET "__delete__" + LREM, LTRIM, DEL, a hand-edited index key) drops
the index, and the next reader rebuilds it a window per call. A reader that cannot get a checked
index in `MAX_CALLS` calls gets None and reads the list as before: an answer from the index is
never a stale one.
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
#: failures returned per read call
READ_WINDOW = 1000
#: calls a reader makes to bring the index up to date before reading the list instead
MAX_CALLS = 2000


@dataclass(frozen=True)
class FailedCounts:
    """queue -> failures, and queue -> entries marked `retried_at` (history: in no state)."""

    failed: dict[str, int]
    retried: dict[str, int]


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

    def counts(self) -> FailedCounts | None:
        """Every queue's failures and retried entries, checked against the list in the step
        that answers; None when the list is of the wrong type or would not settle."""
        for _ in range(MAX_CALLS):
            reply = self._call("sync", INDEX_WINDOW, SCRUB_WINDOW)
            if reply[0] == b"wrongtype":
                return None
            if reply[0] == b"fresh":
                failed: dict[str, int] = {}
                retried: dict[str, int] = {}
                for i in range(3, len(reply), 2):
                    field = reply[i]
                    into = failed if field.startswith(b"f:") else retried if field.startswith(b"r:") else None
                    if into is not None and int(reply[i + 1]):
                        into[field[2:].decode("utf-8", "replace")] = int(reply[i + 1])
                return FailedCounts(failed, retried)
        return None

    def walk(self, queues: tuple[str, ...], after: int | None, desc: bool) -> Iterator[tuple[int, bytes, int]] | None:
        """(index, entry, byte-identical entries among the TWIN_WINDOW before it) of these
        queues' failures (retried entries left out), in list order after `after` — what
        `Twins.iter_failed` gives with a queue filter — or None when the index is not usable
        (read the list instead). Each window is read in the step that checks the index; a
        window that finds it stale brings it up to date and goes on after the last entry given."""
        if self.counts() is None:
            return None
        return self._windows(queues, after, desc)

    def _windows(self, queues: tuple[str, ...], after: int | None, desc: bool) -> Iterator[tuple[int, bytes, int]]:
        names = sorted(set(queues))
        for _ in range(MAX_CALLS):
            reply = self._call("read", "", "" if after is None else after, "1" if desc else "0", READ_WINDOW, *names)
            if reply[0] == b"stale":
                if self.counts() is None:
                    raise FailedIndexUnusable
                continue
            for i in range(1, len(reply), 3):
                after = int(reply[i])
                yield after, reply[i + 1], int(reply[i + 2])
            if len(reply) - 1 < 3 * READ_WINDOW:
                return
        raise FailedIndexUnusable

    def drop(self) -> None:
        """Forget the index (qadmin removed entries: every position after them moved)."""
        self._call("drop")


class FailedIndexUnusable(Exception):
    """The index would not settle while a walk read through it (the list changed faster than
    it could be indexed)."""
