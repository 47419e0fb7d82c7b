"""`qadmin demo`'s data at fixed times: what the TUI snapshots and screenshots show.

`qadmin.demo.fill` runs a real worker on the wall clock, so its timestamps, and the file paths
in its tracebacks, differ on every run and machine. This module stores the same jobs (same
classes, queues, arguments from the same seeded random numbers, the same states) through the
backend's own verbs, with every time derived from `NOW` and tracebacks written out in full, so
that a rendered screen is identical everywhere. It also registers two workers (one busy, one
gone) and pauses a queue, so that every screen has something to show.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from qadmin.backends import Backend
from qadmin.job import JobState, NewJob, WorkerInfo, backoff_seconds

#: the moment every screen of the snapshots is rendered at
NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
#: who the audit log says acted
ACTOR = "ops@example"
EX = "qadmin.examples."
#: the worker that ran the demo's jobs, and the two the workers screen shows
RUNNER = "host:worker-a pid:101"
LIVE_OWNER = "host:worker-busy pid:4243"
STALE_OWNER = "host:worker-gone pid:4242"

#: (exception class, message) a demo job class raises, as `qadmin.examples` does
_FRAMES = {
    "ChargeCard": (
        '  File "qadmin/examples.py", line 35, in perform\n    raise PaymentDeclined(f"card declined: {reason}")\n'
    ),
    "sync_inventory": (
        '  File "qadmin/examples.py", line 46, in sync_inventory\n'
        '    raise InventoryUnavailable("inventory service timed out")\n'
    ),
    "SendEmail": (
        '  File "qadmin/examples.py", line 23, in perform\n    raise ValueError(f"invalid recipient address {to!r}")\n'
    ),
    "flaky_export": (
        '  File "qadmin/examples.py", line 55, in flaky_export\n'
        '    raise RuntimeError(f"export batch {batch} lost its connection")\n'
    ),
}


def clock() -> datetime:
    return NOW


def _error(short_class: str, args: list[Any]) -> str:
    """The last_error a worker writes: message line, then the traceback (worker.format_error)."""
    if short_class == "ChargeCard":
        exc, module = "PaymentDeclined", "qadmin.examples."
        message = "card declined: " + ("expired card" if args[0] % 3 == 0 else "insufficient funds")
    elif short_class == "sync_inventory":
        exc, module, message = "InventoryUnavailable", "qadmin.examples.", "inventory service timed out"
    elif short_class == "SendEmail":
        exc, module, message = "ValueError", "", f"invalid recipient address {args[0]!r}"
    else:
        exc, module, message = "RuntimeError", "", f"export batch {args[0]} lost its connection"
    call = (
        "    return instance.perform(*job.args, **job.kwargs)\n"
        if short_class in ("ChargeCard", "SendEmail")
        else "    return target(*job.args, **job.kwargs)\n"
    )
    return (
        f"{exc}: {message}\n"
        "Traceback (most recent call last):\n"
        '  File "qadmin/worker.py", line 257, in _execute_here\n'
        "    _call(target, instance, job)\n"
        '  File "qadmin/worker.py", line 380, in _call\n'
        f"{call}"
        f"{_FRAMES[short_class]}"
        f"{module}{exc}: {message}\n"
    )


def seed(backend: Backend, now: datetime = NOW) -> dict[str, int]:
    """Fill an empty SQL backend (it needs `enqueue_many(..., now=)`) with the demo's jobs."""
    rng = random.Random(7)
    backend.init()
    enqueue: Any = backend.enqueue_many

    # 1. the jobs the demo's worker runs: 13 fail for good, one fails twice and waits, five succeed
    failing = [
        NewJob(EX + "ChargeCard", [1000 + i, rng.randrange(500, 90000)], queue="billing", max_attempts=1)
        for i in range(6)
    ]
    failing += [
        NewJob(EX + "sync_inventory", [f"SKU-{rng.randrange(10000, 99999)}"], queue="default", max_attempts=1)
        for _ in range(4)
    ]
    failing += [
        NewJob(EX + "SendEmail", [f"customer{i}.example.com", "Your receipt"], queue="email", max_attempts=1)
        for i in range(3)
    ]
    failing += [NewJob(EX + "flaky_export", [7, 1.0], queue="exports", max_attempts=25)]
    succeeding = [NewJob(EX + "resize_image", [f"/uploads/{i}.png", 320], queue="images") for i in range(5)]
    start = now - timedelta(minutes=55)
    ids = enqueue(failing + succeeding, now=start)
    news = dict(zip(ids, failing + succeeding))
    always = lambda job: True
    # outcomes spread over the hour, so the throughput sparkline has a shape
    for step, _ in enumerate(ids):
        at = start + timedelta(minutes=3 * step, seconds=11)
        job = backend.claim(["*"], RUNNER, at, 4 * 3600.0, always)
        assert job is not None
        short_class = news[job.id].class_name.rsplit(".", 1)[-1]
        if short_class == "resize_image":
            backend.complete(job, RUNNER, at, 0.05)
            continue
        if short_class != "flaky_export":
            backend.fail(job, RUNNER, at, _error(short_class, list(job.args)), None)
            continue
        # as the demo does: fails, fails again after its backoff, and waits 20 minutes for its third try
        first = now - timedelta(minutes=2)
        backend.fail(
            job, RUNNER, first, _error(short_class, list(job.args)), first + timedelta(seconds=backoff_seconds(1))
        )
        again = first + timedelta(seconds=backoff_seconds(1))
        job = backend.claim(["exports"], RUNNER, again, 4 * 3600.0, always)
        assert job is not None
        backend.fail(job, RUNNER, again, _error(short_class, list(job.args)), now + timedelta(minutes=20))
    flush = getattr(backend, "flush", None)
    if flush:
        flush()

    # 2. pending work on several queues and priorities
    pending = [
        NewJob(
            EX + "SendEmail",
            [f"user{i}@example.com", rng.choice(["Welcome", "Password reset", "Invoice"])],
            queue="email",
            priority=rng.choice([0, 0, 5, 10]),
        )
        for i in range(12)
    ]
    pending += [
        NewJob(
            EX + "resize_image",
            [f"/uploads/{1000 + i}.jpg", rng.choice([320, 640, 1280])],
            queue="images",
            priority=rng.choice([0, 10]),
        )
        for i in range(8)
    ]
    pending += [
        NewJob(EX + "generate_report", [name, 2.0], queue="reports", priority=20)
        for name in ("daily-sales", "weekly-churn", "inventory-aging")
    ]
    # 3. scheduled for later
    scheduled = [
        NewJob(EX + "generate_report", ["monthly-close", 2.0], queue="reports", run_at=now + timedelta(hours=6)),
        NewJob(EX + "SendEmail", ["ops@example.com", "Weekly digest"], queue="email", run_at=now + timedelta(days=1)),
        NewJob(EX + "resize_image", ["/uploads/banner.png", 1920], queue="images", run_at=now + timedelta(minutes=30)),
    ]
    enqueue(pending + scheduled, now=now - timedelta(minutes=12))

    # 4. a stale lock (its worker vanished 5 hours ago) and a live one
    old = now - timedelta(hours=5)
    enqueue(
        [
            NewJob(EX + "generate_report", ["quarterly-board-pack", 2.0], queue="reports", run_at=old),
            NewJob(EX + "generate_report", ["hourly-metrics", 2.0], queue="reports", run_at=now - timedelta(minutes=1)),
        ],
        now=old,
    )
    stale = backend.claim(["reports"], STALE_OWNER, old, 4 * 3600.0, always)
    live = backend.claim(["reports"], LIVE_OWNER, now - timedelta(seconds=40), 10 * 3600.0, always)
    assert stale is not None and live is not None

    # 5. the workers behind those locks, and a paused queue
    for name, host, pid, beat, job, started in (
        (LIVE_OWNER, "worker-busy", 4243, now - timedelta(seconds=4), live, now - timedelta(seconds=40)),
        (STALE_OWNER, "worker-gone", 4242, old + timedelta(minutes=2), stale, old),
    ):
        backend.register_worker(
            WorkerInfo(
                name=name,
                host=host,
                pid=pid,
                queues=["reports", "images"],
                started_at=old - timedelta(hours=1),
                heartbeat_at=beat,
            )
        )
        backend.heartbeat(name, beat, job.id, started, 17 if name == LIVE_OWNER else 2, 3 if name == LIVE_OWNER else 0)

    from qadmin.filters import JobFilter

    return {state.value: backend.count(JobFilter(states=frozenset({state})), now) for state in JobState}


def pause_exports(ops: Any) -> None:
    """A paused queue and an audit entry, through the ops layer (as an operator would)."""
    ops.pause("exports")


#: the workers of `run_thrice`'s runs
WORKER_B = "host:worker-b pid:202"


def run_thrice(backend: Backend, now: datetime = NOW) -> Any:
    """A SendEmail job that fails on one worker, times out on another and completes on the first
    (attempt history); returns its id."""
    enqueue: Any = backend.enqueue_many
    (job_id,) = enqueue(
        [NewJob(EX + "SendEmail", ["ada@example.com", "Invoice"], queue="email")], now=now - timedelta(minutes=10)
    )
    smtp = (
        "ConnectionError: SMTP server smtp.example.com closed the connection\n"
        "Traceback (most recent call last):\n"
        '  File "qadmin/worker/running.py", line 92, in run\n'
        "    returned = _call(target, instance, job)\n"
        '  File "qadmin/examples.py", line 41, in perform\n'
        "    smtp.send_message(message)\n"
        '  File "smtplib.py", line 986, in send_message\n'
        "    raise SMTPServerDisconnected('Connection unexpectedly closed')\n"
        "ConnectionError: SMTP server smtp.example.com closed the connection\n"
    )
    runs = [
        (RUNNER, now - timedelta(minutes=9), 1.42, smtp),
        (WORKER_B, now - timedelta(minutes=7), 30.0, "JobTimeout: execution expired (max run time 30s)\n"),
        (RUNNER, now - timedelta(minutes=2), 0.27, None),
    ]
    for worker, started, runtime, error in runs:
        session = backend.session(worker)
        (job,) = session.claim(["email"], started, 4 * 3600.0, lambda j: j.id == job_id)
        ended = started + timedelta(seconds=runtime)
        if error is None:
            session.complete(job, ended, runtime)
        else:
            session.fail(job, ended, error, ended + timedelta(seconds=5), runtime)
        session.close()
    return job_id
