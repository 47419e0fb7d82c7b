"""History on Redis (`qadmin.insight`): a hash per bucket, `qadmin:history:RESOLUTION:EPOCH`
(the minute or hour starting at that second), holding every queue's and class's counts, so that
a chart reads one HGETALL per bucket (addressed by its time, never a SCAN). A field is
`METRIC LEN QUEUE CLASS` (`LEN` the queue name's length, so any names split back): `p`
processed, `f` failed, `r` retried, `t` the runtime total, `l` the longest latency, `hN` runtime
bucket N's count. A flush is one script call (`lua/history.lua`): HINCRBY / HINCRBYFLOAT, a
compare for the latency's maximum, and an EXPIRE per bucket by its resolution's retention."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from qadmin.backends.base import BackendOptions
from qadmin.backends.buckets import bucket_start, merge_samples, retention, width
from qadmin.backends.redis.payloads import read_payload
from qadmin.backends.redis.server import Server
from qadmin.insight import HistoryRow, HistorySample
from qadmin.job import utcnow

#: arguments per script call: a worker's flush is one call; a month of demo history is a few
ARGS_PER_CALL = 30_000

_COUNTS = {"p": "processed", "f": "failed", "r": "retried"}


def field(metric: str, queue: str, job_class: str) -> str:
    return f"{metric} {len(queue)} {queue}{job_class}"


def parse_field(raw: bytes) -> tuple[str, str, str] | None:
    """(metric, queue, class) of a field, None for one qadmin did not write."""
    try:
        metric, length, rest = raw.decode().split(" ", 2)
        n = int(length)
    except ValueError:
        return None
    if not 0 <= n <= len(rest):
        return None
    return metric, rest[:n], rest[n:]


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


class RedisHistory:
    def __init__(self, server: Server, options: BackendOptions) -> None:
        self.server = server
        self.keys = server.keys
        self.options = options

    def record(self, samples: Sequence[HistorySample], now: datetime | None = None) -> None:
        now = now or utcnow()
        merged = merge_samples(samples, self.options, now)
        if not merged:
            return
        per_key: dict[str, list[Any]] = {}
        ttls: dict[str, int] = {}
        for (resolution, at, queue, job_class), b in merged.items():
            key = self.keys.history(resolution, _epoch(at))
            if key not in per_key:
                per_key[key] = []
                # kept until the bucket's end is its retention old
                ends = at + width(resolution) + retention(self.options, resolution)
                ttls[key] = max(1, int((ends - now).total_seconds()) + 1)
            changes = per_key[key]
            for metric, n in (("p", b.processed), ("f", b.failed), ("r", b.retried)):
                if n:
                    changes += ["i", field(metric, queue, job_class), n]
            if b.runtime_total:
                changes += ["f", field("t", queue, job_class), repr(b.runtime_total)]
            if b.latency is not None:
                changes += ["m", field("l", queue, job_class), repr(b.latency)]
            for index, n in b.runtimes.items():
                if n:
                    changes += ["i", field(f"h{index}", queue, job_class), n]
            if not changes:  # a sample with nothing in it still names its queue and class
                changes += ["i", field("p", queue, job_class), 0]
        keys: list[str] = []
        args: list[Any] = []
        for key, changes in per_key.items():
            keys.append(key)
            args += [ttls[key], len(changes) // 3, *changes]
            if len(args) >= ARGS_PER_CALL:  # a month at once (the demo's) must not block Redis for long
                self.server.call(self.server.scripts.history, keys, args)
                keys, args = [], []
        if keys:
            self.server.call(self.server.scripts.history, keys, args)

    def oldest_ready(self, queues: Sequence[str], now: datetime) -> dict[str, datetime]:
        """Since when each queue's head has waited. A payload that names its enqueue time (a
        php-resque `queue_time`, ActiveJob's or a unique job's `enqueued_at`) says so; a plain
        Resque payload has none, so the head's digest is kept with the time a worker first saw it
        at the head (`qadmin:history:heads`): the same head seen again has waited since then (a
        lower bound, to within a sample's interval; a twin taking its place counts on)."""
        with self.server.wrap():
            client = self.server.client
            names = (
                sorted(n.decode() if isinstance(n, bytes) else n for n in client.smembers(self.keys.queues))
                if "*" in queues
                else list(queues)
            )
            if not names:
                return {}
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.lindex(self.keys.queue(name), 0)
            pipe.hmget(self.keys.history_heads, names)
            *heads, seen = pipe.execute(raise_on_error=False)
            out: dict[str, datetime] = {}
            first_seen: dict[str, str] = {}
            stamp = int(now.timestamp())
            for name, head, known in zip(
                names, heads, seen if isinstance(seen, list) else [None] * len(names), strict=True
            ):
                if not isinstance(head, bytes):
                    continue
                created = read_payload(head).job_fields()["created_at"]
                if isinstance(created, datetime):
                    out[name] = min(created, now)
                    continue
                digest = hashlib.sha1(head).hexdigest()[:16]
                old_digest, _, since = (known or b"").decode(errors="replace").partition(" ")
                if old_digest == digest and since.isdigit():
                    out[name] = min(datetime.fromtimestamp(int(since), UTC), now)
                else:
                    first_seen[name] = f"{digest} {stamp}"
                    out[name] = now
            if first_seen:
                client.hset(self.keys.history_heads, mapping=first_seen)  # type: ignore[arg-type]  # redis-py's mapping type is invariant
        return out

    def rows(
        self,
        resolution: str,
        since: datetime,
        until: datetime,
        queue: str | None = None,
        job_class: str | None = None,
    ) -> list[HistoryRow]:
        step = width(resolution)
        at = bucket_start(resolution, since)
        if at < since:
            at += step
        starts: list[datetime] = []
        while at < until:
            starts.append(at)
            at += step
        if not starts:
            return []
        with self.server.wrap():
            pipe = self.server.client.pipeline(transaction=False)
            for start in starts:
                pipe.hgetall(self.keys.history(resolution, _epoch(start)))
            hashes = pipe.execute(raise_on_error=False)
        rows: list[HistoryRow] = []
        for start, values in zip(starts, hashes, strict=True):
            if not isinstance(values, dict) or not values:  # absent, or not a hash qadmin wrote
                continue
            rows.extend(self._bucket(start.astimezone(UTC), values, queue, job_class))
        return rows

    @staticmethod
    def _bucket(at: datetime, values: dict[bytes, bytes], queue: str | None, job_class: str | None) -> list[HistoryRow]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for raw, value in values.items():
            parsed = parse_field(raw)
            if parsed is None:
                continue
            metric, q, c = parsed
            if (queue is not None and q != queue) or (job_class is not None and c != job_class):
                continue
            slot = found.setdefault((q, c), {"runtimes": {}})
            try:
                if metric in _COUNTS:
                    slot[_COUNTS[metric]] = int(value)
                elif metric == "t":
                    slot["runtime_total"] = float(value)
                elif metric == "l":
                    slot["latency"] = float(value)
                elif metric.startswith("h"):
                    slot["runtimes"][int(metric[1:])] = int(value)
            except ValueError:
                continue
        return [
            HistoryRow(
                at=at,
                queue=q,
                job_class=c,
                processed=slot.get("processed", 0),
                failed=slot.get("failed", 0),
                retried=slot.get("retried", 0),
                runtime_total=slot.get("runtime_total", 0.0),
                runtimes=slot["runtimes"],
                latency=slot.get("latency"),
            )
            for (q, c), slot in sorted(found.items())
        ]
