"""Guarded steps (`lua/apply.lua`) that several verbs share: a push, an outcome's counters,
php-resque's status kept in step, a held job given back, a Resque worker forgotten."""

from __future__ import annotations

import json
import os
import random
from datetime import datetime
from typing import Any

from qadmin.backends.redis.entries import delayed_item
from qadmin.backends.redis.json_text import dumps, epoch
from qadmin.backends.redis.keys import Keys
from qadmin.backends.redis.payloads import status_key_parts
from qadmin.backends.redis.place import Place
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.records import Rec
from qadmin.backends.redis.server import Server, Step
from qadmin.job import Job

#: finished outcomes kept at most (besides the retention time)
FINISHED_CAP = 10_000

# Nonces keep equal payloads apart in the locked and finished sets; they need to differ, not to be
# secret. A private generator (reseeded from os.urandom in a forked child, so that the worker
# processes of a supervisor draw apart) spares the worker a getrandom() system call or two a job,
# and cannot be reseeded by job code that calls random.seed().
_rng = random.Random()
if hasattr(os, "register_at_fork"):  # POSIX: where a worker can fork
    os.register_at_fork(after_in_child=_rng.seed)


def nonce() -> str:
    return f"{_rng.getrandbits(32):08x}"


def push_steps(keys: Keys, queue: str, payload: bytes, run_at: datetime | None, now: datetime) -> list[Step]:
    """RPUSH + SADD (rule 3), or resque-scheduler's four structures for a later run (rule 15)."""
    if run_at is not None and int(epoch(run_at)) > epoch(now):
        ts = int(epoch(run_at))
        item = delayed_item(payload, queue)
        return [
            ("RPUSH", [keys.delayed(ts)], [item]),
            ("SADD", [keys.timestamps(item)], [keys.stamp_member(ts)]),
            ("ZADD", [keys.schedule], [ts, ts]),
        ]
    return [("RPUSH", [keys.queue(queue)], [payload]), ("SADD", [keys.queues], [queue])]


def payload_of(job: Job, env: bytes | None) -> bytes:
    """The payload bytes of a held job: from its locked-set envelope, or as the job was read."""
    if env is not None:
        payload: str = json.loads(env)["payload"]
        return payload.encode("utf-8")
    return job.raw.encode("utf-8")


def status_steps(server: Server, meta: dict[str, Any], status: int, now: datetime, ttl: int | None) -> list[Step]:
    """Keep php-resque's status key in step, only if it exists (docs/compatibility.md §3.3, §8.6)."""
    parts = status_key_parts(meta)
    if parts is None:
        return []
    key = server.keys.status(*parts)
    with server.wrap():  # a status key of the wrong type (poison) is left as it is
        old = Reader(server, now).read(key, "string", lambda: server.client.get(key), None)
    if old is None:
        return []
    return [("SETEQ", [key], [old, _status_value(old, status, now), ttl or ""])]


def outcome_steps(keys: Keys, rid: str | None, wjson: str | None, now: datetime, failed: bool) -> list[Step]:
    """The counters of a run (Resque's, the worker's, qadmin's per minute), and `worker:ID` cleared."""
    tkey = keys.throughput(int(epoch(now)) // 60 * 60)
    steps: list[Step] = [
        ("INCR", [keys.processed], []),
        ("HINCRBY", [tkey], ["processed", 1]),
        ("EXPIRE", [tkey], [7200]),
    ]
    if failed:
        steps += [("INCR", [keys.failed_count], []), ("HINCRBY", [tkey], ["failed", 1])]
    if rid is not None:
        steps.append(("INCR", [keys.stat("processed", rid)], []))
        if failed:
            steps.append(("INCR", [keys.stat("failed", rid)], []))
        if wjson is not None:
            steps.append(("DELEQ", [keys.worker(rid)], [wjson]))
    return steps


def forget_resque_worker(keys: Keys, rid: str) -> list[Step]:
    """Resque's unregister (docs/compatibility.md §1.7), without the failure entry: the job went back."""
    return [
        ("SREM", [keys.workers], [rid]),
        ("DEL", [keys.worker(rid)], []),
        ("DEL", [keys.started(rid)], []),
        ("HDEL", [keys.heartbeat], [rid]),
        ("DEL", [keys.stat("processed", rid)], []),
        ("DEL", [keys.stat("failed", rid)], []),
    ]


def give_back(keys: Keys, rec: Rec, prune: bool = False) -> list[Step]:
    """Steps that put a held job back at the head of its queue (guard first)."""
    queue = rec.job.queue or ""
    back: list[Step] = [("LPUSH", [keys.queue(queue)], [rec.payload]), ("SADD", [keys.queues], [queue])]
    if rec.kind is Place.HELD:
        rid = rec.extra["rid"]
        steps: list[Step] = [("DELEQ", [rec.key], [rec.raw]), *back]
        if prune:
            steps += forget_resque_worker(keys, rid)
        return steps
    steps = [("ZREM", [keys.locked], [rec.raw]), *back]
    if prune:
        owner = rec.job.locked_by or ""
        steps.append(("HDEL", [keys.qworkers], [owner]))
        if rec.extra.get("rid"):
            steps += forget_resque_worker(keys, rec.extra["rid"])
    return steps


def _status_value(old: bytes, status: int, now: datetime) -> str:
    """php-resque's status JSON in the shape the writer used: chrisboulton's `{status, updated}`
    or resque/php-resque's `{status, updated, started, result}` (docs/compatibility.md §3.3)."""
    updated = int(epoch(now))
    try:
        previous = json.loads(old)
    except ValueError:
        previous = None
    if isinstance(previous, dict) and "started" in previous and "result" in previous:
        return dumps({"status": status, "updated": updated, "started": previous["started"], "result": None})
    return dumps({"status": status, "updated": updated})
