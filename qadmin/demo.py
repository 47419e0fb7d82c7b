"""`qadmin demo`: sample jobs in every state, failures produced by a real worker run."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from qadmin.backends import Backend
from qadmin.filters import JobFilter
from qadmin.insight import HistorySample, runtime_bucket
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

    # 5. a month of history for the charts, and what the worker above ran
    worker.history.flush()
    backend.record_history(synthetic_history(now, rng))

    counts = {}
    for state in JobState:
        counts[state.value] = backend.count(JobFilter(states=frozenset({state})), clock())
    return counts


#: the demo's job classes as the history charts show them: (queue, class, runs a minute at the
#: day's peak, median runtime in seconds, share of runs that fail)
HISTORY_CLASSES = (
    ("billing", EX + "ChargeCard", 6.0, 0.35, 0.02),
    ("email", EX + "SendEmail", 20.0, 0.08, 0.005),
    ("images", EX + "resize_image", 10.0, 1.2, 0.01),
    ("exports", EX + "flaky_export", 1.0, 4.0, 0.1),
    ("reports", EX + "generate_report", 0.2, 25.0, 0.0),
)


def synthetic_history(now: datetime, rng: random.Random) -> list[HistorySample]:
    """A plausible month: minutes for the last day, hours before it, a daily rhythm, log-normal
    runtimes, and two failure bursts with their queue's latency climbing (ChargeCard three hours
    ago, SendEmail five days ago)."""
    this_minute = now.replace(second=0, microsecond=0)
    day_start = this_minute - timedelta(days=1)
    first_hour = (now - timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    slots = [(this_minute - timedelta(minutes=m), 1) for m in range(1440)]
    at = first_hour
    while at + timedelta(hours=1) <= day_start:
        slots.append((at, 60))
        at += timedelta(hours=1)
    samples = []
    for start, minutes in slots:
        daily = 0.6 + 0.4 * math.sin((start.hour + start.minute / 60 - 8) / 24 * 2 * math.pi)
        for queue, cls, peak, median, fail in HISTORY_CLASSES:
            runs = int(peak * daily * minutes * rng.uniform(0.8, 1.2) + rng.random())
            if not runs:
                continue
            burst = _in_burst(now, start, cls)
            failing = min(runs, int(runs * (0.4 if burst else fail) + rng.random()))
            retried = failing // 3
            sample = HistorySample(
                start, queue, cls, processed=runs - failing, failed=failing - retried, retried=retried
            )
            _add_runtimes(sample, runs, median, rng)
            sample.add_latency(rng.uniform(0.2, 3.0) * (40 if burst else 1))
            samples.append(sample)
    return samples


def _add_runtimes(sample: HistorySample, runs: int, median: float, rng: random.Random) -> None:
    """`runs` log-normal runtimes around `median`: at most 50 drawn, each standing for its share."""
    drawn = min(runs, 50)
    for i in range(drawn):
        weight = runs // drawn + (1 if i < runs % drawn else 0)
        runtime = median * rng.lognormvariate(0, 0.45)
        index = runtime_bucket(runtime)
        sample.runtimes[index] = sample.runtimes.get(index, 0) + weight
        sample.runtime_total += runtime * weight


def _in_burst(now: datetime, at: datetime, cls: str) -> bool:
    ago = now - at
    if cls.endswith("ChargeCard"):
        return timedelta(hours=2, minutes=40) <= ago <= timedelta(hours=3)
    return cls.endswith("SendEmail") and timedelta(days=5) <= ago <= timedelta(days=5, hours=2)
