"""Exact-bytes JSON surgery and Resque's time formats, for the Redis backend.

Resque, php-resque and resque-scheduler compare and remove entries by their stored bytes, so
qadmin never re-encodes a payload it did not write: it finds the exact text span of a member
(`members`), and edits an object by splicing spans (`without`, `with_members`). Every other
byte stays as it was (PHP's `\\/` escapes included).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

_DECODER = json.JSONDecoder()
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]  # CPython's, missing from typeshed

#: php-resque's job id: md5(uniqid()), 32 lowercase hex digits (docs/compatibility.md §3.2)
PHP_ID = re.compile(r"[0-9a-f]{32}")
#: payload members qadmin rewrites as bookkeeping; a job keeps its token when they change
BOOKKEEPING = ("attempts", "last_error", "queue")
#: hex digits of a content token
TOKEN_LEN = 12


_quote = json.encoder.encode_basestring
#: `json.dumps` with these arguments builds an encoder on every call: this one is built once
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


_STRICT = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def strict_loads(text: str | bytes) -> Any:
    """`json.loads` as Resque's writers read: NaN and Infinity, which no JSON writer writes and no
    JSON reader (nor any face's output) can carry, make the text unreadable (ValueError)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return _STRICT.decode(text)


def dumps(value: Any) -> str:
    """Compact JSON with raw UTF-8, byte-identical to Ruby's json gem (docs/compatibility.md §1.1)."""
    if type(value) is str:
        return _quote(value)
    return _encode(value)


def _after_ws(text: str, idx: int) -> int:
    """The index of the first non-blank character at or after `idx` (JSON's blanks)."""
    n = len(text)
    while idx < n and text[idx] in " \t\n\r":
        idx += 1
    return idx


def members(text: str) -> dict[str, tuple[Any, int, int, int]] | None:
    """The top-level members of a JSON object as key -> (value, key_start, value_start, value_end).

    None when `text` is not one JSON object (trailing data included).
    """
    try:
        idx = _after_ws(text, 0)
        if text[idx : idx + 1] != "{":
            return None
        idx = _after_ws(text, idx + 1)
        out: dict[str, tuple[Any, int, int, int]] = {}
        if text[idx : idx + 1] == "}":
            idx += 1
        else:
            while True:
                if text[idx : idx + 1] != '"':
                    return None
                key_start = idx
                key, idx = _scanstring(text, idx + 1, True)
                idx = _after_ws(text, idx)
                if text[idx : idx + 1] != ":":
                    return None
                value_start = _after_ws(text, idx + 1)
                value, value_end = _DECODER.raw_decode(text, value_start)
                out[key] = (value, key_start, value_start, value_end)
                idx = _after_ws(text, value_end)
                sep = text[idx : idx + 1]
                idx = _after_ws(text, idx + 1)
                if sep == "}":
                    break
                if sep != ",":
                    return None
        if text[idx:].strip():
            return None
        return out
    except (ValueError, RecursionError, IndexError):
        return None


def span(text: str, parsed: Mapping[str, tuple[Any, int, int, int]], key: str) -> str | None:
    """The exact text of one member's value."""
    if key not in parsed:
        return None
    _, _, start, end = parsed[key]
    return text[start:end]


def _rebuild(
    text: str, parsed: Mapping[str, tuple[Any, int, int, int]], drop: Iterable[str], replace: Mapping[str, str]
) -> str:
    drop = set(drop)
    parts: list[str] = []
    for key, (_, key_start, value_start, value_end) in sorted(parsed.items(), key=lambda kv: kv[1][1]):
        if key in drop:
            continue
        if key in replace:
            parts.append(text[key_start:value_start] + replace[key])
        else:
            parts.append(text[key_start:value_end])
    for key, value in replace.items():
        if key not in parsed:
            parts.append(dumps(key) + ":" + value)
    return "{" + ",".join(parts) + "}"


def without(text: str, keys: Iterable[str], parsed: Mapping[str, tuple[Any, int, int, int]] | None = None) -> str:
    """The object without these top-level members; the very same text when none is present."""
    keys = list(keys)
    parsed = members(text) if parsed is None else parsed
    if parsed is None or not any(k in parsed for k in keys):
        return text
    return _rebuild(text, parsed, keys, {})


def with_members(text: str, values: Mapping[str, Any], drop: Iterable[str] = (), obj: Any = None) -> str:
    """Set (or append) top-level members, dropping others; every other byte is kept.

    `obj`, the decoded object when the caller has it, lets new members be appended without
    scanning the text."""
    drop = list(drop)
    if isinstance(obj, dict) and not any(k in obj for k in (*values, *drop)):
        body = text.rstrip()
        if body.endswith("}"):
            added = ",".join(dumps(k) + ":" + dumps(v) for k, v in values.items())
            inner = body[:-1].rstrip()
            return inner + ("," if not inner.endswith("{") else "") + added + "}"
    parsed = members(text)
    if parsed is None:
        raise ValueError("not a JSON object")
    return _rebuild(text, parsed, drop, {k: dumps(v) for k, v in values.items()})


def token(raw: bytes, text: str | None = None, obj: Any = None) -> str:
    """A payload's content token: php-resque's embedded id, else a digest of its bytes.

    The digest leaves out qadmin's bookkeeping members (attempts, last_error) and the `queue`
    member of delayed items, so a job keeps its token while it waits, runs, is retried and fails.
    `obj` is the decoded payload.
    """
    if isinstance(obj, dict):
        embedded = obj.get("id")
        if isinstance(embedded, str) and PHP_ID.fullmatch(embedded):
            return embedded
        if text is not None and any(k in obj for k in BOOKKEEPING):
            raw = without(text, BOOKKEEPING).encode("utf-8")
    return hashlib.sha1(raw).hexdigest()[:TOKEN_LEN]


def value_span(text: str, obj: Mapping[str, Any], key: str) -> str | None:
    """The exact text of a top-level member's value, found without scanning the whole object
    when the member can be told apart (its decoded value must equal `obj[key]`)."""
    if key not in obj:
        return None
    needle = dumps(key) + ":"
    i = text.find(needle)
    while i >= 0:
        j = i - 1
        while j >= 0 and text[j] in " \t\n\r":
            j -= 1
        if j >= 0 and text[j] in "{,":
            start = _after_ws(text, i + len(needle))
            try:
                value, end = _DECODER.raw_decode(text, start)
            except (ValueError, RecursionError):
                value, end = None, -1
            if end >= 0 and value == obj[key]:
                return text[start:end]
        i = text.find(needle, i + 1)
    parsed = members(text)
    return span(text, parsed, key) if parsed is not None else None


# --- times --------------------------------------------------------------------------------------
#: zone abbreviations `%Z` writes (Ruby, PHP); an unknown one is read as UTC
_ZONES = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "UT": 0,
    "WET": 0,
    "BST": 1,
    "IST": 1,
    "CET": 1,
    "WEST": 1,
    "CEST": 2,
    "EET": 2,
    "EEST": 3,
    "MSK": 3,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
    "AKST": -9,
    "AKDT": -8,
    "HST": -10,
    "JST": 9,
    "KST": 9,
    "AEST": 10,
    "AEDT": 11,
}
_MONTHS = {
    m: i
    for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)
}
# Ruby failure backend: 2026/11/22 08:41:11 UTC (before Resque 3.0 retried_at had no zone)
_RUBY = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)(?: ([A-Za-z]+|[+-]\d{2}:?\d{2}))?")
# chrisboulton php-resque: Sun Nov 22 08:42:47 UTC 2026
_PHP = re.compile(r"[A-Za-z]{3} ([A-Za-z]{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) ([A-Za-z]+|[+-]\d{2}:?\d{2}) (\d{4})")
# Ruby Time#to_s: 2026-11-22 08:41:11 +0000
_TO_S = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) ([+-]\d{2}):?(\d{2})")


def _offset(zone: str | None) -> timedelta:
    if not zone:
        return timedelta(0)
    if zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        return -delta if zone[0] == "-" else delta
    return timedelta(hours=_ZONES.get(zone.upper(), 0))


def parse_time(value: Any) -> datetime | None:
    """Any time format Resque, php-resque or qadmin write (docs/compatibility.md §1.6); None
    when it is none of them."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return _parse_text(value)


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> datetime | None:
    # a failed list holds many entries of the same second: parse each text once
    text = value.strip()
    try:
        if m := _RUBY.fullmatch(text):
            y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
            return datetime(y, mo, d, h, mi, s, tzinfo=UTC) - _offset(m.group(7))
        if m := _PHP.fullmatch(text):
            month = _MONTHS.get(m.group(1).lower())
            if month is None:
                return None
            day, h, mi, s, year = int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)), int(m.group(7))
            return datetime(year, month, day, h, mi, s, tzinfo=UTC) - _offset(m.group(6))
        if m := _TO_S.fullmatch(text):
            y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
            return datetime(y, mo, d, h, mi, s, tzinfo=UTC) - _offset(m.group(7) + m.group(8))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def ruby_failed_at(moment: datetime) -> str:
    """`failed_at` / `retried_at` as Resque 3 writes them: `%Y/%m/%d %H:%M:%S %Z`, in UTC."""
    return _utc(moment).strftime("%Y/%m/%d %H:%M:%S UTC")


def iso_z(moment: datetime) -> str:
    """`worker:ID` run_at as Resque writes it: ISO 8601 UTC with `Z`, whole seconds."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_offset(moment: datetime) -> str:
    """`workers:heartbeat` values: ISO 8601 with `+00:00`."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def ruby_to_s(moment: datetime) -> str:
    """`worker:ID:started`: Ruby's Time#to_s."""
    return _utc(moment).strftime("%Y-%m-%d %H:%M:%S +0000")


def epoch(moment: datetime) -> float:
    return _utc(moment).timestamp()
