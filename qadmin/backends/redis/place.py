"""Where a Redis job is stored: one small type for every part that asks (records, listings, verbs)."""

from __future__ import annotations

from enum import Enum


class Place(Enum):
    """The structure an entry was read from (docs/compatibility.md §1–§3, §8)."""

    #: qadmin's locked set (`NS qadmin:locked`), one envelope per job a qadmin worker holds
    LOCKED = "locked"
    #: a Ruby or PHP worker's `worker:ID` key
    HELD = "held"
    #: a `queue:NAME` list
    QUEUE = "queue"
    #: a resque-scheduler `delayed:TS` list
    DELAYED = "delayed"
    #: Resque's `failed` list
    FAILED = "failed"
    #: qadmin's finished set (history)
    FINISHED = "finished"
    #: a key of the wrong type where jobs are kept: nothing in it can be told apart
    UNREADABLE = "unreadable"

    @property
    def held(self) -> bool:
        """A job some worker holds (qadmin's lock or Resque's `worker:ID`)."""
        return self in (Place.LOCKED, Place.HELD)

    def where(self, detail: str) -> str:
        """The `@WHERE` of an id naming an entry of this place (records.py): a schedule second for
        a delayed twin, `f` and a digest of the bytes for a failure entry's twin, `z` and the
        nonce for a finished record."""
        return _WHERE_LETTER[self] + detail

    @property
    def indexed(self) -> bool:
        """A list entry, addressed by its index (a guarded LSET/LINDEX can reach it)."""
        return self in (Place.QUEUE, Place.DELAYED, Place.FAILED)


class Segment(Enum):
    """The parts a listing walks, in order; the value is the letter a page cursor names it by
    (cursors printed before read the same)."""

    HELD = "L"
    QUEUES = "Q"
    DELAYED = "D"
    FAILED = "F"
    FINISHED = "Z"


#: the letter an id's `@WHERE` starts with for each place it can name (a delayed twin: its second)
_WHERE_LETTER = {Place.DELAYED: "", Place.FAILED: "f", Place.FINISHED: "z"}
