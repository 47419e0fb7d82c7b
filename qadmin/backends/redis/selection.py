"""What a listing's filter and sort ask of the store: the states wanted, byte tests that skip
entries unread, and page cursors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from qadmin.backends.redis.json_text import TOKEN_LEN
from qadmin.backends.redis.payloads import read_payload
from qadmin.backends.redis.place import Place, Segment
from qadmin.backends.redis.records import Rec
from qadmin.codecs import UNDECODABLE
from qadmin.errors import UsageError
from qadmin.filters import JobFilter, class_matches, fold
from qadmin.job import JobState

#: the states of live jobs (finished ones are history)
LIVE = frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED, JobState.FAILED})


def states_and_queues_only(selection: JobFilter) -> bool:
    return JobFilter(states=selection.states, queues=selection.queues) == selection


def wanted_states(selection: JobFilter) -> frozenset[JobState]:
    """No states named means the live ones (finished jobs are history), as in SQL. An error
    group (a fingerprint) holds failed jobs only: the other segments are not read."""
    states = frozenset(selection.states) or LIVE
    return states & {JobState.FAILED} if selection.fingerprint is not None else states


def quick_token(raw: bytes) -> str:
    """`read_payload(raw).token`, without decoding when the payload cannot carry an id or bookkeeping."""
    if b'"id"' in raw or b'"attempts"' in raw or b'"last_error"' in raw or b'"queue"' in raw:
        return read_payload(raw).token
    return hashlib.sha1(raw).hexdigest()[:TOKEN_LEN]


def class_prefilter(selection: JobFilter) -> Callable[[bytes], bool] | None:
    """A byte test that rejects stored entries which cannot hold a job of the filter's class.

    A payload's class is the JSON string of its `class` member (every codec of this backend): in
    an entry with no backslash at all no string is escaped, so that class's text is in the bytes
    verbatim, and every class the filter selects (`class_matches`: the name, or an ASCII-case-
    insensitive prefix of it or of its last part) holds the filter's text in ASCII lower case.
    An entry with a backslash (or no filter on the class) is always read, and so is every entry
    when the filter selects the undecodable ones' name, which no payload holds."""
    if selection.class_name is None or class_matches(selection.class_name, UNDECODABLE):
        return None
    # a lone surrogate (never in UTF-8 text) passes through to bytes no entry without a backslash holds
    needle = fold(selection.class_name).encode("utf-8", "surrogatepass")

    def maybe(raw: bytes) -> bool:
        return b"\\" in raw or needle in raw.lower()

    return maybe


#: characters every JSON writer (Ruby's, PHP's, Python's) writes as themselves inside a string
_VERBATIM = frozenset(chr(c) for c in range(0x20, 0x7F)) - set('"\\/')


def queue_prefilter(names: set[str] | None) -> Callable[[bytes], bool] | None:
    """A byte test that rejects failure entries which cannot be of these queues (None: any queue).

    A name of `_VERBATIM` characters is in an entry of its queue as it is. Any other is written
    escaped by some writer or all (a control character always, `/` by PHP, `é` as `\\u00e9` by PHP
    and Python), so an entry with a backslash is always read, as `class_prefilter` does."""
    if names is None:
        return None
    plain = [q.encode("utf-8") for q in names if set(q) <= _VERBATIM]
    escaped = [q.encode("utf-8", "surrogatepass") for q in names if not set(q) <= _VERBATIM]

    def maybe(raw: bytes) -> bool:
        return any(n in raw for n in plain) or (bool(escaped) and (b"\\" in raw or any(n in raw for n in escaped)))

    return maybe


def retried_entry(rec: Rec) -> bool:
    """A failure entry marked `retried_at` (by qadmin or resque-web) is the history of a failure,
    not a job: the job lives on where the retry put it (pending, running, finished, or failed
    again in an entry of its own). It is counted and listed in no state: `finished` means
    completed successfully, on every backend."""
    return rec.kind is Place.FAILED and rec.job.state is JobState.FINISHED


def encode_cursor(sort: str, pos: list[Any]) -> str:
    return json.dumps([sort, *pos], separators=(",", ":"))


def _position(value: Any) -> bool:
    """An index or score Redis takes (a 64-bit integer; JSON's true is no position)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def decode_cursor(cursor: str, sort: str) -> tuple[Segment, str, Any]:
    """The segment, queue name and position a page cursor names (UsageError if it names none)."""
    letters = {s.value: s for s in Segment}
    try:
        value = json.loads(cursor)
        if not (
            isinstance(value, list)
            and len(value) == 4
            and value[0] == sort
            and value[1] in letters
            and isinstance(value[2], str)
        ):
            raise ValueError("bad shape")
        pos = value[3]
        segment = letters[value[1]]
        if segment is Segment.DELAYED:
            if not (isinstance(pos, list) and len(pos) == 2 and all(_position(x) for x in pos)):
                raise ValueError("bad position")
        elif not _position(pos):
            raise ValueError("bad position")
        return segment, value[2], pos
    except (ValueError, TypeError):
        raise UsageError(f"invalid page cursor {cursor!r}") from None
