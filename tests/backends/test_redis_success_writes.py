"""The two ways a Redis session writes a success while prefetched jobs wait (`SuccessWrites`):
PIPELINED (sent, reply read later) and AWAITED (every reply read before the next job). The same
scenario, run once each way on a real redis-server, leaves the same store behind: the same jobs
finished and failed, the same counters, the same keys. Nothing here asserts a duration."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
import redis

from qadmin.backends import BackendOptions
from qadmin.backends.redis import RedisBackend, RedisWorkerSession, SuccessWrites
from qadmin.job import NewJob
from qadmin.worker import Worker, WorkerOptions

pytestmark = pytest.mark.redis
NOOP = "qadmin.examples.noop"
FAILS = "qadmin.examples.sync_inventory"
#: per-minute throughput hashes are named by the minute they count: compared by content
MINUTE = re.compile(rb"qadmin:throughput:\d+$")
#: what differs between any two runs of a job: when and how long, its nonce
PER_RUN = ("finished_at", "runtime", "n", "failed_at", "locked_at", "started_at")


def run(url: str, r: redis.Redis, mode: SuccessWrites) -> tuple[dict[str, Any], int]:
    """Run the scenario on an empty store; the store it leaves, and how many calls went unawaited."""
    r.flushdb()
    b = RedisBackend(url, BackendOptions(), success_writes=mode)
    sends = 0
    try:
        news = [NewJob(NOOP, [i], queue=("a", "b")[i % 3 == 0]) for i in range(120)]
        news += [NewJob(FAILS, [f"sku-{i}"], queue="a", max_attempts=1) for i in range(5)]
        b.enqueue_many(news)
        for name, prefetch in (("w1", 10), ("w2", 1)):
            w = Worker(
                b,
                # history holds the runs' runtimes, which differ from run to run: not compared here
                WorkerOptions(
                    queues=["a", "b"],
                    burst=True,
                    prefetch=prefetch,
                    name=name,
                    imports=["qadmin.examples"],
                    record_history=False,
                ),
            )
            session = w.session
            assert isinstance(session, RedisWorkerSession) and session.success_writes is mode
            original = session.own.send

            def send(script: Any, keys: Any, args: Any, tag: Any, original: Any = original) -> bool:
                nonlocal sends
                ok: bool = original(script, keys, args, tag)
                sends += ok
                return ok

            session.own.send = send  # type: ignore[method-assign]
            assert w.work() == 0
            b.enqueue_many([NewJob(NOOP, [f"{name}-more-{i}"], queue="b") for i in range(15)])
    finally:
        b.close()
    return snapshot(r), sends


def snapshot(r: redis.Redis) -> dict[str, Any]:
    """Every key, with what it holds as far as two runs of the same jobs can agree."""
    out: dict[str, Any] = {}
    for key in sorted(r.keys("*")):
        kind = r.type(key)
        name = MINUTE.sub(b"qadmin:throughput:MINUTE", key).decode()
        if kind == b"string":
            out[name] = r.get(key)
        elif kind == b"list":
            out[name] = Counter(_stable(x) for x in r.lrange(key, 0, -1))
        elif kind == b"zset":
            out[name] = Counter(_stable(x) for x in r.zrange(key, 0, -1))
        elif kind == b"set":
            out[name] = sorted(r.smembers(key))
        elif kind == b"hash":
            fields = r.hgetall(key)
            # a run's attempt record (`qadmin:attempts:…`) is JSON with its times, like a finished record
            runs = name.startswith("resque:qadmin:attempts:")
            out[name] = {k: _stable(v) if runs else v for k, v in fields.items() if name != "resque:qadmin:workers"}
        else:
            out[name] = kind
    return out


def _stable(raw: bytes) -> str:
    """An entry without what differs between runs of the same job."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
    if isinstance(value, dict):
        for key in PER_RUN:
            value.pop(key, None)
        if isinstance(value.get("backtrace"), list):
            value["backtrace"] = len(value["backtrace"]) > 0
    return json.dumps(value, sort_keys=True)


def test_pipelined_and_awaited_successes_leave_the_same_store(redis_url: str, r: redis.Redis) -> None:
    pipelined, sent = run(redis_url, r, SuccessWrites.PIPELINED)
    awaited, none_sent = run(redis_url, r, SuccessWrites.AWAITED)
    assert sent >= 50 and none_sent == 0  # the trick was used one way, never the other
    assert pipelined == awaited
    # 125 jobs and the 15 enqueued after w1 ran; the 15 enqueued after w2 ran still wait
    assert pipelined["resque:stat:processed"] == b"140" and pipelined["resque:stat:failed"] == b"5"
    finished = pipelined["resque:qadmin:finished"]
    assert sum(finished.values()) == 135 and max(finished.values()) == 1
    assert sum(pipelined["resque:queue:b"].values()) == 15
    assert "resque:qadmin:locked" not in pipelined and sum(pipelined["resque:failed"].values()) == 5
