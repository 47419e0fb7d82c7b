"""Payloads as stored: decoded once into what a `Job` is built from, and the bookkeeping a retry strips."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qadmin.backends.redis.json_text import BOOKKEEPING, parse_time, strict_loads, token, without
from qadmin.codecs import MAX_DECODE_BYTES, decode_payload
from qadmin.codecs.base import Decoded, undecodable
from qadmin.codecs.json_codec import decode_object


def schedule_second(member: bytes) -> int | None:
    """A schedule member as the second it names (resque-scheduler writes decimal integers)."""
    try:
        return int(member)
    except ValueError:
        try:
            return int(float(member))
        except (ValueError, OverflowError):
            return None


def truthy(value: bytes | None) -> bool:
    """Resque's reading of `pause-all-workers`: "true", case and surrounding space ignored."""
    return value is not None and value.strip().lower() == b"true"


@dataclass
class Payload:
    raw: bytes
    text: str | None
    #: the decoded JSON value (None when the text is not JSON)
    obj: Any
    token: str
    decoded: Decoded

    @property
    def meta(self) -> dict[str, Any]:
        return self.decoded.meta

    def job_fields(self) -> dict[str, Any]:
        d = self.decoded
        meta = d.meta
        attempts = meta.get("attempts")
        max_attempts = meta.get("max_attempts")
        last_error = meta.get("last_error")
        created = parse_time(meta.get("enqueued_at")) or parse_time(meta.get("queue_time"))
        if created is None and isinstance(d.display, dict):
            created = parse_time(d.display.get("enqueued_at"))  # ActiveJob's wrapper
        return {
            "class_name": d.class_name,
            "args": d.args,
            "kwargs": d.kwargs,
            "attempts": attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 0,
            "max_attempts": max_attempts
            if isinstance(max_attempts, int) and not isinstance(max_attempts, bool)
            else None,
            "last_error": last_error if isinstance(last_error, str) else None,
            "created_at": created,
            "raw": self.text if self.text is not None else self.raw.decode("utf-8", "replace"),
            "format": d.format,
            "undecodable": d.error,
            "meta": dict(meta),
            "display": d.display,
        }


_UNSET: Any = object()


def read_payload(raw: bytes, text: str | None = None, obj: Any = _UNSET) -> Payload:
    """Decode a payload (`obj`: its JSON value, when the caller decoded it already)."""
    if len(raw) > MAX_DECODE_BYTES:  # undecodable, as the codecs list it, not parsed on every read
        return Payload(raw, None, None, token(raw), decode_payload(raw))
    if text is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Payload(raw, None, None, token(raw), decode_payload(raw))
    if obj is _UNSET:
        try:
            obj = strict_loads(text)
        except (ValueError, RecursionError) as exc:
            if "JSON number" in str(exc) or "out of range" in str(exc):  # NaN, Infinity, 1e999
                return Payload(raw, text, None, token(raw), undecodable("json", f"not valid JSON: {exc}"))
            return Payload(raw, text, None, token(raw), decode_payload(text))
    return Payload(raw, text, obj, token(raw, text, obj), decode_object(obj))


_BOOKKEEPING_NEEDLES = tuple(b'"' + k.encode() + b'"' for k in BOOKKEEPING)


def requeue_bytes(payload: bytes) -> bytes:
    """What a retry pushes: the payload without qadmin's bookkeeping (attempts start again)."""
    if not any(needle in payload for needle in _BOOKKEEPING_NEEDLES):
        return payload
    p = read_payload(payload)
    if p.text is None or not isinstance(p.obj, dict) or not any(k in p.obj for k in BOOKKEEPING):
        return payload
    return without(p.text, BOOKKEEPING).encode("utf-8")


def status_key_parts(meta: dict[str, Any]) -> tuple[str, str | None] | None:
    """php-resque's (id, prefix) when the payload carries an id (docs/compatibility.md §3.3)."""
    job_id = meta.get("id")
    if not isinstance(job_id, str) or not job_id:
        return None
    prefix = meta.get("prefix")
    return job_id, prefix if isinstance(prefix, str) and prefix else None
