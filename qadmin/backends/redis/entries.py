"""The entries qadmin writes into Resque's structures, in their writers' exact shapes."""

from __future__ import annotations

import re
from datetime import datetime

from qadmin.backends.redis.json_text import dumps, ruby_failed_at, without


def split_error(error: str) -> tuple[str, str, list[str]]:
    """qadmin's `Class: message\\ntraceback` as Resque's exception, error and backtrace."""
    lines = error.rstrip("\n").split("\n")
    head, backtrace = lines[0], lines[1:]
    match = re.fullmatch(r"([A-Za-z_][\w.]*(?:::[A-Za-z_]\w*)*)(?:: ?(.*))?", head)
    if match:
        return match.group(1), match.group(2) or "", backtrace
    return "", head, backtrace


def failure_entry(payload: str, error: str, worker: str, queue: str, now: datetime) -> str:
    """A failure entry in Resque's shape and key order (docs/compatibility.md §1.6)."""
    exception, message, backtrace = split_error(error)
    return (
        '{"failed_at":'
        + dumps(ruby_failed_at(now))
        + ',"payload":'
        + payload
        + ',"exception":'
        + dumps(exception)
        + ',"error":'
        + dumps(message)
        + ',"backtrace":'
        + dumps(backtrace)
        + ',"worker":'
        + dumps(worker)
        + ',"queue":'
        + dumps(queue)
        + "}"
    )


def envelope(worker: str, rid: str | None, queue: str, locked_at: str, nonce: str, payload: bytes) -> bytes:
    """A member of qadmin's locked set: who holds which payload since when (payload kept as a string,
    so its bytes come back exactly)."""
    return dumps(
        {
            "worker": worker,
            "rid": rid,
            "queue": queue,
            "locked_at": locked_at,
            "n": nonce,
            "payload": payload.decode("utf-8"),
        }
    ).encode("utf-8")


def delayed_item(payload: bytes, queue: str) -> bytes:
    """resque-scheduler's item: the payload with `queue` after it (docs/compatibility.md §2.1)."""
    text = payload.decode("utf-8")
    return without(text, ("queue",)).rstrip()[:-1].encode("utf-8") + b',"queue":' + dumps(queue).encode() + b"}"
