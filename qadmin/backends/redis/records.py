"""What the Redis backend stores where, and how each stored entry becomes a `Job`.

A `Rec` is one stored entry with the exact bytes it was read as and where it sits: every change
the backend makes is guarded (in Lua) by those bytes, so it acts only on what the operator saw.

Job ids are `QUEUE:TOKEN[@WHERE][.N]` (`TOKEN` alone when the queue is unknown): the token is
php-resque's embedded id, else a digest of the payload bytes (`json_text.token`). A job keeps
its plain `QUEUE:TOKEN` while it waits, runs, is scheduled for a retry and fails. Resque stores
equal jobs as equal bytes, so the token cannot tell twins apart; `twins.py` names the
others as it reads them:

- held and pending twins are `.2`, `.3`... in that order (held first, then each queue from its
  head);
- a delayed twin is `@TS` (its schedule second), plus `.N` among equal items of that second;
- a failure entry's twin is `@f` and 8 hex digits of the entry's bytes, plus `.N` among equal
  entries; a finished record is always `@z` and its nonce (history).

An entry is a twin when an entry with the same payload is held, among the first `TWIN_SCAN`
pending entries of its queue, scheduled earlier (resque-scheduler's `timestamps:` index), or (for
a failure entry) failed among the `TWIN_WINDOW` entries before it: bounded reads, so a page costs
the same at any depth. Twins further apart than that share a plain id, which then names the
first of them. `enqueue` names what it pushes the same way (`lua/push.lua`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from qadmin.backends.redis.ids import IdParts, make_id
from qadmin.backends.redis.json_text import TOKEN_LEN, dumps, parse_time, strict_loads, token, value_span
from qadmin.backends.redis.payloads import read_payload
from qadmin.backends.redis.place import Place
from qadmin.codecs import MAX_DECODE_BYTES, UNDECODABLE
from qadmin.job import Job, JobId, JobState

_DECODER = json.JSONDecoder()


@dataclass(slots=True)
class SlimJob:
    """What a verb needs of a remembered job (a full `Job` costs kilobytes; bulk verbs remember
    hundreds of thousands)."""

    id: JobId
    queue: str | None
    state: JobState
    decodable: bool
    meta: dict[str, Any]
    locked_by: str | None


@dataclass(slots=True)
class Rec:
    """One stored entry: the job it holds, the exact bytes, and where it was read."""

    #: a `Job`; a `SlimJob` once remembered (`slim`), which answers the fields verbs read (id, queue,
    #: state, decodable, meta, locked_by): listings build full ones, verbs act on either
    job: Any
    kind: Place
    key: str
    raw: bytes
    token: str
    index: int = -1
    #: the exact payload bytes (what a requeue pushes back)
    payload: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def slim(self) -> Rec:
        j = self.job
        if isinstance(j, SlimJob):
            return self
        meta: dict[str, Any] = {k: j.meta[k] for k in ("id", "prefix", "unique") if k in j.meta}
        extra = {k: v for k, v in self.extra.items() if k in ("ts", "rid", "dead", "gen", "n", "where")}
        return Rec(
            SlimJob(j.id, j.queue, j.state, j.decodable, meta, j.locked_by),
            self.kind,
            self.key,
            self.raw,
            self.token,
            self.index,
            self.payload,
            extra,
        )


def where_of(rec: Rec) -> str | None:
    """The `@WHERE` of an entry's id (module docstring), None for a plain id."""
    return rec.extra.get("where")


def failed_where(rec: Rec) -> str:
    return Place.FAILED.where(hashlib.sha1(rec.raw).hexdigest()[:8])


def first_found(readings: Sequence[IdParts], found: dict[IdParts, list[Rec]]) -> list[Rec]:
    """The entries of the first reading of an id (`split_ids`) that names any."""
    return next((found[p] for p in readings if found.get(p)), [])


def name(rec: Rec, n: int = 1, where: str | None = None) -> Rec:
    """Give an entry its id: `where` it is, and which of its byte-identical twins there."""
    new = make_id(rec.job.queue, rec.token, where, n)
    for key, value, default in (("n", n, 1), ("where", where, None)):
        if value != default:
            rec.extra[key] = value
        else:
            rec.extra.pop(key, None)
    if new != rec.job.id:
        if isinstance(rec.job, SlimJob):
            rec.job.id = new
        else:
            rec.job = replace(rec.job, id=new)
    return rec


# --- entries of each location ----------------------------------------------------------------------
def queue_rec(key: str, queue: str, raw: bytes, index: int) -> Rec:
    p = read_payload(raw)
    f = p.job_fields()
    job = Job(id=make_id(queue, p.token), queue=queue, state=JobState.PENDING, run_at=f["created_at"], **f)
    return Rec(job, Place.QUEUE, key, raw, p.token, index, raw)


_TAIL_QUEUE = b',"queue":"'


def tail_queue(raw: bytes) -> str | None:
    """The queue of an entry that is not JSON but ends as Resque ends every entry it writes
    (`,"queue":"NAME"}`, NAME plain), as `lua/count.lua` reads it without decoding: so counts and
    listings put even a damaged entry in the same queue."""
    if raw[:1] != b"{" or raw[-2:] != b'"}' or b'"retried_at"' in raw:
        return None
    i = raw.rfind(_TAIL_QUEUE)
    if i < 0 or i + len(_TAIL_QUEUE) > len(raw) - 2:
        return None
    name = raw[i + len(_TAIL_QUEUE) : -2]
    if b'"' in name or b"\\" in name:
        return None
    return name.decode("utf-8", "replace")


def delayed_rec(key: str, ts: int, raw: bytes, index: int, now: datetime) -> Rec:
    p = read_payload(raw)
    f = p.job_fields()
    if isinstance(p.obj, dict):
        queue = p.obj.get("queue") if isinstance(p.obj.get("queue"), str) else None
    else:
        queue = tail_queue(raw) if p.obj is None else None
    try:
        run_at: datetime | None = datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):  # a schedule second no clock can show
        run_at = None
    state = JobState.SCHEDULED if ts > now.timestamp() else JobState.PENDING
    job = Job(id=make_id(queue, p.token), queue=queue, state=state, run_at=run_at, **f)
    return name(Rec(job, Place.DELAYED, key, raw, p.token, index, raw, {"ts": ts}), 1)


def failed_rec(key: str, raw: bytes, index: int) -> Rec:
    try:
        decoded = raw.decode("utf-8")
        text: str | None = decoded
        entry = strict_loads(decoded)
    except (UnicodeDecodeError, ValueError, RecursionError):
        text, entry = None, None
    if not isinstance(entry, dict):
        tok = token(raw)
        queue = tail_queue(raw) if entry is None else None
        job = Job(
            id=make_id(queue, tok),
            queue=queue,
            class_name=UNDECODABLE,
            state=JobState.FAILED,
            raw=raw.decode("utf-8", "replace"),
            format="resque",
            undecodable="the failure entry is not a JSON object",
            attempts=1,
        )
        return name(Rec(job, Place.FAILED, key, raw, tok, index), 1)
    assert text is not None
    queue = entry.get("queue") if isinstance(entry.get("queue"), str) else None
    failed_at = parse_time(entry.get("failed_at"))
    retried_at = parse_time(entry.get("retried_at"))
    exception = entry.get("exception") if isinstance(entry.get("exception"), str) else ""
    error = entry.get("error")
    error = "" if error is None else (error if isinstance(error, str) else dumps(error))
    backtrace = entry.get("backtrace") if isinstance(entry.get("backtrace"), list) else []
    head = f"{exception}: {error}" if exception and error else (exception or error)
    last_error = "\n".join([head, *(str(line) for line in backtrace)]) if backtrace else head
    meta: dict[str, Any] = {"exception": exception, "worker": entry.get("worker")}
    if "retried_at" in entry:
        meta["retried_at"] = entry["retried_at"]
    state = JobState.FINISHED if retried_at is not None or entry.get("retried_at") else JobState.FAILED
    common: dict[str, Any] = {
        "queue": queue,
        "state": state,
        "failed_at": failed_at,
        "last_error": last_error or None,
        "raw": text,
        "finished_at": retried_at if state is JobState.FINISHED else None,
    }
    payload_text = value_span(text, entry, "payload") if isinstance(entry.get("payload"), dict) else None
    if payload_text is None:
        tok = token(raw)
        job = Job(
            id=make_id(queue, tok),
            class_name=UNDECODABLE,
            format="resque",
            attempts=1,
            meta=meta,
            undecodable="the failure entry has no payload"
            if "payload" not in entry
            else "the failure entry's payload is not an object",
            **common,
        )
        return name(Rec(job, Place.FAILED, key, raw, tok, index, None, {"entry": entry, "text": text}), 1)
    payload = read_payload(payload_text.encode("utf-8"), payload_text, entry["payload"])
    f = payload.job_fields()
    f.pop("raw")
    f.pop("last_error")
    f["meta"] = {**f["meta"], **meta}
    if not f["attempts"]:
        f["attempts"] = 1
    job = Job(id=make_id(queue, payload.token), **common, **f)
    return name(
        Rec(
            job,
            Place.FAILED,
            key,
            raw,
            payload.token,
            index,
            payload.raw,
            {"entry": entry, "text": text, "payload": payload},
        ),
        1,
    )


def unreadable_rec(key: str, queue: str | None, state: JobState, reason: str, run_at: datetime | None = None) -> Rec:
    """A key of the wrong type where jobs are kept, shown as one undecodable job that names it: its
    jobs cannot be read, no verb changes it (`Place.UNREADABLE` has no steps)."""
    raw = reason.encode("utf-8")
    tok = token(key.encode("utf-8"))
    job = Job(
        id=make_id(queue, tok),
        queue=queue,
        class_name=UNDECODABLE,
        state=state,
        run_at=run_at,
        raw=reason,
        format="resque",
        undecodable=reason,
    )
    return Rec(job, Place.UNREADABLE, key, raw, tok)


def failed_slim(key: str, raw: bytes, index: int) -> Rec:
    """`failed_rec(key, raw, index).slim()`, without building the job: what a bulk verb needs of
    each of 100,000 failure entries (id, queue, state, exact payload bytes)."""
    try:
        text = raw.decode("utf-8")
        entry = strict_loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return failed_rec(key, raw, index).slim()
    payload = entry.get("payload") if isinstance(entry, dict) else None
    if not isinstance(payload, dict) or not plainly_decodable(payload):
        return failed_rec(key, raw, index).slim()
    span = _payload_span(text, payload)
    payload_raw = span.encode("utf-8") if span is not None else b""
    if span is None or len(payload_raw) > MAX_DECODE_BYTES:
        return failed_rec(key, raw, index).slim()
    queue = entry.get("queue") if isinstance(entry.get("queue"), str) else None
    retried = entry.get("retried_at")
    state = JobState.FINISHED if retried or parse_time(retried) is not None else JobState.FAILED
    if "id" in payload or "attempts" in payload or "last_error" in payload or "queue" in payload:
        tok = token(payload_raw, span, payload)
    else:  # what `token` comes to for a payload with no embedded id and no bookkeeping
        tok = hashlib.sha1(payload_raw).hexdigest()[:TOKEN_LEN]
    meta = {k: payload[k] for k in ("id", "prefix", "unique") if k in payload}
    return name(
        Rec(
            SlimJob(make_id(queue, tok), queue, state, True, meta, None),
            Place.FAILED,
            key,
            raw,
            tok,
            index,
            payload_raw,
        ),
        1,
    )


def _payload_span(text: str, payload: dict[str, Any]) -> str | None:
    """`value_span(text, entry, "payload")`, quicker where Resque puts it: second, after `failed_at`."""
    i = text.find('"payload":')
    if i > 0 and text[i - 1] == ",":
        try:
            value, end = _DECODER.raw_decode(text, i + 10)
        except (ValueError, RecursionError):
            value, end = None, -1
        if end >= 0 and value == payload:
            return text[i + 10 : end]
    return value_span(text, {"payload": payload}, "payload")


def plainly_decodable(payload: dict[str, Any]) -> bool:
    """What `decode_object` accepts, for a payload whose meta needs no other reading."""
    cls, args, kwargs = payload.get("class"), payload.get("args", []), payload.get("kwargs")
    return (
        isinstance(cls, str)
        and bool(cls)
        and (args is None or isinstance(args, list))
        and (not kwargs or isinstance(kwargs, dict))
    )


def locked_rec(key: str, raw: bytes, env: Any = None, stale: bool = False) -> Rec | None:
    """An entry of qadmin's locked set (an envelope written by `envelope`; `env`, its decoded
    value when the caller has it)."""
    try:
        env = json.loads(raw) if env is None else env
        payload_raw = env["payload"].encode("utf-8")
        worker, queue = env["worker"], env["queue"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    p = read_payload(payload_raw)
    f = p.job_fields()
    job = Job(
        id=make_id(queue, p.token),
        queue=queue,
        state=JobState.LOCKED,
        stale=stale,
        locked_at=parse_time(env.get("locked_at")),
        locked_by=worker,
        run_at=f["created_at"],
        **f,
    )
    return Rec(job, Place.LOCKED, key, raw, p.token, -1, payload_raw, {"worker": worker, "rid": env.get("rid")})


def read_held(raw: bytes) -> tuple[str, dict[str, Any]] | None:
    """The text and decoded entry of a `worker:ID` value that holds a job, else None."""
    try:
        text = raw.decode("utf-8")
        entry = strict_loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("payload"), dict):
        return None
    return text, entry


def held_rec(
    key: str, rid: str, raw: bytes, read: tuple[str, dict[str, Any]] | None = None, stale: bool = False
) -> Rec | None:
    """The job a Resque (Ruby or PHP) worker holds in `worker:ID` (docs/compatibility.md §1.7, §3.4)."""
    read = read_held(raw) if read is None else read
    if read is None:
        return None
    text, entry = read
    payload_text = value_span(text, entry, "payload") or ""
    queue = entry.get("queue") if isinstance(entry.get("queue"), str) else None
    p = read_payload(payload_text.encode("utf-8"), payload_text, entry["payload"])
    f = p.job_fields()
    job = Job(
        id=make_id(queue, p.token),
        queue=queue,
        state=JobState.LOCKED,
        stale=stale,
        locked_at=parse_time(entry.get("run_at")),
        locked_by=rid,
        run_at=f["created_at"],
        **f,
    )
    return Rec(job, Place.HELD, key, raw, p.token, -1, p.raw, {"rid": rid})


def finished_rec(key: str, raw: bytes) -> Rec | None:
    try:
        rec = json.loads(raw)
        payload_raw = rec["payload"].encode("utf-8")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    p = read_payload(payload_raw)
    f = p.job_fields()
    f["meta"] = {**f["meta"], "runtime": rec.get("runtime")}
    if rec.get("cancelled_by") is not None:
        f["meta"]["cancelled_by"] = rec["cancelled_by"]
    if isinstance(rec.get("attempts"), int):
        f["attempts"] = rec["attempts"]
    result = rec.get("result")
    job = Job(
        id=make_id(rec.get("queue"), p.token),
        queue=rec.get("queue"),
        state=JobState.FINISHED if rec.get("cancelled_by") is None else JobState.CANCELLED,
        finished_at=parse_time(rec.get("finished_at")),
        locked_by=rec.get("worker"),
        result=result if isinstance(result, str) else None,
        **f,
    )
    nonce = rec.get("n")
    where = Place.FINISHED.where(nonce) if isinstance(nonce, str) and re.fullmatch(r"[0-9a-f]{1,16}", nonce) else None
    return name(Rec(job, Place.FINISHED, key, raw, p.token, -1, payload_raw), 1, where)
