"""Stored values as qadmin shows and compares them: text a face can print, the words a payload
filter looks for, page cursors, keyset positions. Pure functions, no connection."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.times import UtcDateTime
from qadmin.codecs import UNDECODABLE, decode_payload
from qadmin.errors import JobNotFound, UsageError
from qadmin.filters import JobFilter, class_matches
from qadmin.job import Job, JobId

#: ids per statement in bulk verbs: well under every database's bound-parameter limit
BATCH = 500


def parse_id(text: str) -> JobId:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise UsageError(f"{text!r} is not a job id of this SQL table (ids are integers)") from None
    if not -(2**63) <= value < 2**63:
        # no row can have it, and the driver would overflow on it
        raise JobNotFound(text)
    return value


def empty_counts() -> dict[str, int]:
    return {"pending": 0, "scheduled": 0, "locked": 0, "stale": 0, "failed": 0, "finished": 0}


def class_of(handler: Any) -> str:
    return decode_payload(handler).class_name


def text_of(value: Any) -> str | None:
    """A stored value as text a face can print: bytes decoded (bad UTF-8 as U+FFFD), other
    types as their text."""
    if value is None:
        return None
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(getattr(value, "raw", value))


def shown(value: Any) -> str:
    """A stored value in a message: its text, and its type where that is the trouble."""
    raw = getattr(value, "raw", value)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return f"BLOB {bytes(raw)[:40]!r}"
    if isinstance(raw, str):
        return repr(printable(raw)[:60])
    return f"{raw!r} ({type(raw).__name__})"


def printable(text: str) -> str:
    """Raw text for display: bytes that were not UTF-8 (surrogate escapes, see
    `sqlite.lenient_text`) shown as U+FFFD, so a face can always print it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def words_of(text: str) -> list[str]:
    """ASCII word pieces of a value: a coarse SQL pre-filter that every payload format satisfies."""
    return re.findall(r"[A-Za-z0-9]{2,}", text)[:8]


def payload_tokens(selection: JobFilter) -> list[tuple[str, bool]]:
    """Words every payload of the selection's class and arguments contains, most telling first,
    each with whether to look for it in any case: the scan stops testing a row at its first
    missing word, and arguments and the last part of a class name (`app.jobs.Newsletter`:
    Newsletter, jobs, app) tell jobs apart best. The class filter folds ASCII case
    (`class_matches`): its words are looked for in any case."""
    tokens: list[tuple[str, bool]] = []
    for arg in selection.args or ():
        if isinstance(arg, (str, int)) and not isinstance(arg, bool):
            tokens += [(token, False) for token in words_of(str(arg))]
    # the undecodable jobs' name is in no payload
    if selection.class_name is not None and not class_matches(selection.class_name, UNDECODABLE):
        tokens += [(token, True) for token in words_of(selection.class_name)[::-1]]
    return tokens[:8]


def encode_cursor(job: Job, cols: list[sa.Column[Any]]) -> str:
    values: list[Any] = []
    for c in cols:
        v = getattr(job, c.name)
        values.append(v.isoformat() if isinstance(v, datetime) else v)
    return json.dumps(values)


def decode_cursor(cursor: str, cols: list[sa.Column[Any]]) -> tuple[Any, ...]:
    try:
        values = json.loads(cursor)
        if not isinstance(values, list) or len(values) != len(cols):
            raise ValueError("wrong length")
        out = []
        for c, v in zip(cols, values):
            if c.name.endswith("_at"):
                v = None if v is None else datetime.fromisoformat(v)
            elif isinstance(v, bool) or not isinstance(v, int) or not -(2**63) <= v < 2**63:
                # ids and priorities are integers a column holds: a string, a float or null would
                # compare as no row does, and a huge number overflows the driver
                raise ValueError(f"{c.name} is not an integer")
            out.append(v)
        return tuple(out)
    except (ValueError, TypeError):
        raise UsageError(f"invalid page cursor {cursor!r}") from None


def as_utc(value: Any) -> Any:
    return UTC_TYPE.process_result_value(value, None)


UTC_TYPE = UtcDateTime()


def keyset(cols: list[sa.Column[Any]], after: tuple[Any, ...], desc: bool) -> Any:
    """Rows strictly after `after` in the order of `cols`, NULL sorting lowest (as listings order).

    Row-value comparison (`(a, b) > (x, y)`) is NULL for a NULL column, which would drop every
    row with a NULL `failed_at` or `run_at` from the next pages; nullable columns are compared
    one by one instead.
    """
    if not any(c.nullable for c in cols):
        values = [sa.bindparam(None, v, type_=c.type) for c, v in zip(cols, after)]
        if len(cols) == 1:
            return cols[0] < values[0] if desc else cols[0] > values[0]
        return sa.tuple_(*cols) < sa.tuple_(*values) if desc else sa.tuple_(*cols) > sa.tuple_(*values)
    alternatives = []
    equal_so_far: list[Any] = []
    for c, v in zip(cols, after):
        bound = sa.bindparam(None, v, type_=c.type)
        if desc:
            beyond = sa.false() if v is None else (sa.or_(c < bound, c.is_(None)) if c.nullable else c < bound)
        else:
            beyond = c.is_not(None) if v is None else c > bound
        alternatives.append(sa.and_(*equal_so_far, beyond))
        equal_so_far.append(c.is_(None) if v is None else c == bound)
    return sa.or_(*alternatives)
