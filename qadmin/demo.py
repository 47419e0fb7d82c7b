"""`qadmin demo`: sample jobs in every state, failures produced by a real worker run."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from qadmin.backends import Backend
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, backoff_seconds, utcnow
from qadmin.worker import Worker, WorkerOptions

EX = "qadmin.examples."
#: the lock owner of the demo's stale job: a worker on a host that has gone away
STALE_OWNER = "host:worker-gone pid:4242"
LIVE_OWNER = "host:worker-busy pid:4243"


def fill(backend: Backend, *, seed: int = 7, clock: Callable[[], datetime] = utcnow) -> dict[str, int]:
    """Fill `backend` with demo jobs; returns the number of jobs per state."""
    rng = random.Random(seed)
    now = clock()
    backend.init()

    # 1. jobs that fail, run by a real worker so their errors carry real tracebacks
    failing = (
        [
            NewJob(EX + "ChargeCard", [1000 + i, rng.randrange(500, 90000)], queue="billing", max_attempts=1)
            for i in range(6)
        ]
        + [
            NewJob(EX + "sync_inventory", [f"SKU-{rng.randrange(10000, 99999)}"], queue="default", max_attempts=1)
            for _ in range(4)
        ]
        + [
            NewJob(EX + "SendEmail", [f"customer{i}.example.com", "Your receipt"], queue="email", max_attempts=1)
            for i in range(3)
        ]
        + [
            # fails once, then waits for its backoff: a scheduled retry
            NewJob(EX + "flaky_export", [7, 1.0], queue="exports", max_attempts=25),
        ]
    )
    succeeding = [NewJob(EX + "resize_image", [f"/uploads/{i}.png", 320], queue="images") for i in range(5)]
    backend.enqueue_many(failing + succeeding)
    worker = Worker(
        backend,
        WorkerOptions(
            queues=["billing", "default", "email", "exports", "images"],
            burst=True,
            sleep=0,
            heartbeat_interval=3600,
            imports=["qadmin.examples"],
        ),
    )
    while worker.run_once():
        pass
    # the flaky export's retry waits `attempts**4 + 5` = 6 s: a demo would see it turn pending
    # while someone looks. A second attempt, as a worker would record it, sets the retry well out
    flaky = backend.claim(
        ["exports"],
        worker.name,
        clock() + timedelta(seconds=backoff_seconds(1)),
        4 * 3600.0,
        lambda job: job.class_name == EX + "flaky_export",
    )
    if flaky is not None:
        backend.fail(
            flaky,
            worker.name,
            clock(),
            flaky.last_error or "RuntimeError: export failed",
            clock() + timedelta(minutes=20),
        )

    # 2. pending work on several queues and priorities (Resque's queues have none: Redis refuses them)
    def prio(value: int) -> int:
        return value if backend.supports_priority else 0

    pending = (
        [
            NewJob(
                EX + "SendEmail",
                [f"user{i}@example.com", rng.choice(["Welcome", "Password reset", "Invoice"])],
                queue="email",
                priority=prio(rng.choice([0, 0, 5, 10])),
            )
            for i in range(12)
        ]
        + [
            NewJob(
                EX + "resize_image",
                [f"/uploads/{1000 + i}.jpg", rng.choice([320, 640, 1280])],
                queue="images",
                priority=prio(rng.choice([0, 10])),
            )
            for i in range(8)
        ]
        + [
            NewJob(EX + "generate_report", [name, 2.0], queue="reports", priority=prio(20))
            for name in ("daily-sales", "weekly-churn", "inventory-aging")
        ]
    )
    # 3. scheduled for later
    scheduled = [
        NewJob(EX + "generate_report", ["monthly-close", 2.0], queue="reports", run_at=now + timedelta(hours=6)),
        NewJob(EX + "SendEmail", ["ops@example.com", "Weekly digest"], queue="email", run_at=now + timedelta(days=1)),
        NewJob(EX + "resize_image", ["/uploads/banner.png", 1920], queue="images", run_at=now + timedelta(minutes=30)),
    ]
    backend.enqueue_many(pending + scheduled)

    # 4. a stale lock (its worker vanished 5 hours ago) and a live one
    old = now - timedelta(hours=5)
    backend.enqueue_many(
        [
            NewJob(EX + "generate_report", ["quarterly-board-pack", 2.0], queue="reports", run_at=old),
            NewJob(EX + "generate_report", ["hourly-metrics", 2.0], queue="reports", run_at=now - timedelta(minutes=1)),
        ]
    )
    always = lambda job: True  # noqa: E731 - a claim that takes whatever comes first
    backend.claim(["reports"], STALE_OWNER, old, 4 * 3600.0, always)
    # a long max run time, so that this claim does not take the stale job back
    backend.claim(["reports"], LIVE_OWNER, now, 10 * 3600.0, always)

    counts = {}
    for state in JobState:
        counts[state.value] = backend.count(JobFilter(states=frozenset({state})), clock())
    return counts
