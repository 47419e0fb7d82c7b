"""How qadmin reads and writes the jobs table's times: UTC, naive in the column, the spelling a
foreign writer used kept, and a value no parser takes reported as unreadable rather than raised."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


class Unreadable:
    """A stored value its column's type cannot read (a time that is not a time: '', 'yesterday',
    an integer, PostgreSQL's infinity): its row's job is undecodable, showing the value, and
    never claimed. Bound again (a listing's keyset position), it is the value as stored."""

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"Unreadable({self.raw!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unreadable) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(("Unreadable", repr(self.raw)))


class StoredDateTime(datetime):
    """A SQLite time stored as text in another spelling than qadmin's (a foreign writer's
    `2026-12-07 11:51:19`, `…T…Z`): it keeps that text, and is bound as it, so that comparing a
    row with its own time (a listing's or a claim's keyset position) finds it equal; text
    compares character by character, and `…19` sorts before `…19.000000`."""

    stored: str


def _keep_spelling(value: datetime, text: str) -> datetime:
    kept = StoredDateTime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, value.tzinfo
    )
    kept.stored = text
    return kept


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the column, as delayed_job writes it
    (docs/compatibility.md §4.6).

    `whole_seconds`: written without a fraction, as DJJob's MySQL `NOW()` and DATETIME hold them
    (docs/compatibility.md §5.4). DJJob's worker runs a job once `NOW() >= run_at`, at whole
    seconds: a run_at of 12:00:00.5 would wait for 12:00:01, and on SQLite the text `12:00:00.000000`
    sorts after `12:00:00`, so even a zero fraction is not written there."""

    impl = sa.DateTime
    cache_ok = True

    def __init__(self, *args: Any, whole_seconds: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.whole_seconds = whole_seconds

    def load_dialect_impl(self, dialect: Any) -> Any:
        if self.whole_seconds and dialect.name == "sqlite":
            from sqlalchemy.dialects import sqlite

            return dialect.type_descriptor(sqlite.DATETIME(truncate_microseconds=True))  # type: ignore[no-untyped-call]  # untyped in its stubs
        return super().load_dialect_impl(dialect)

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Unreadable):
            return value.raw
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if self.whole_seconds:
            value = value.replace(microsecond=0)  # MySQL's NOW() truncates too
        return value

    def bind_processor(self, dialect: Any) -> Any:
        inner = super().bind_processor(dialect)
        if inner is None:
            return None

        # the last two values converted and their texts: a worker binds the same `now` and
        # lock expiry in several statements of a job (the claim's read, its lock, the finished
        # record), and a datetime is immutable
        recent: list[tuple[Any, Any]] = [(None, None), (None, None)]

        def process(value: Any) -> Any:
            first, second = recent
            if value is first[0] and value is not None:
                return first[1]
            if value is second[0] and value is not None:
                return second[1]
            # the impl's converter (SQLite's text format) takes datetimes only: an unreadable
            # value goes back as it was stored, and so does a time read in another spelling
            if isinstance(value, Unreadable):
                return value.raw
            stored = getattr(value, "stored", None)
            out = stored if stored is not None else inner(value)
            recent[:] = [(value, out), first]
            return out

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        inner = super().result_processor(dialect, coltype)

        sqlite = dialect.name == "sqlite"
        own = 19 if self.whole_seconds else 26  # the length of qadmin's own spelling

        def process(value: Any) -> Any:
            if value is None:
                return None
            # qadmin's own spelling, read by the C parser (SQLAlchemy's SQLite reader is a regular
            # expression); any other (an offset, a time that is no time) takes the general way
            if sqlite and value.__class__ is str and len(value) == own and value[10] + value[19:20] in (" ", " ."):
                try:
                    parsed = datetime.fromisoformat(value)
                except ValueError:
                    parsed = None
                if parsed is not None and parsed.tzinfo is None:
                    return parsed.replace(tzinfo=UTC)
            try:
                out = inner(value) if inner is not None else value
            except Exception:  # noqa: BLE001 - one row's bad time must not fail a listing
                return Unreadable(value)
            # qadmin's own spelling is `YYYY-MM-DD HH:MM:SS.ffffff` (or whole seconds in a
            # DJJob table): any other keeps its text
            if (
                sqlite
                and value.__class__ is str
                and isinstance(out, datetime)
                and not (len(value) == (19 if self.whole_seconds else 26) and value[10] == " ")
            ):
                return _keep_spelling(out, value)
            return out

        return process

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None or isinstance(value, Unreadable):
            return value
        try:
            if isinstance(value, str):  # a foreign writer's text timestamp on SQLite
                value = datetime.fromisoformat(value.replace(" UTC", "").replace("Z", ""))
            if not isinstance(value, datetime):
                return Unreadable(value)
            if value.tzinfo is None:
                return value.replace(tzinfo=UTC)
            return value.astimezone(UTC)
        except (ValueError, TypeError, OverflowError):
            return Unreadable(value)
