"""Synthetic history for the History and Metrics pages: the tests' exact day, and the
screenshots' livelier one (three queues, a busy afternoon, a failure burst)."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from qadmin.backends import BackendOptions, open_backend
from qadmin.insight import HistorySample

#: kept for ten years: the screenshots' day is at demo_data.NOW, long past the default retention
LONG = 10 * 365 * 86400.0


def a_day(now: datetime) -> list[HistorySample]:
    """Every minute of the last day: `Mail` on `mail` (2 ok, a failure every 10th minute, 0.1 s
    each, waits up to 6 s) and `Report` on `reports` every 3rd minute (1 ok of 2 s, retried every
    30th, a 45 s wait)."""
    samples = []
    this_minute = now.replace(second=0, microsecond=0)
    for ago in range(1440):
        minute = this_minute - timedelta(minutes=ago)
        mail = HistorySample(minute, "mail", "Mail", processed=2, failed=1 if ago % 10 == 0 else 0)
        for _ in range(mail.processed + mail.failed):
            mail.add_run(0.1)
        mail.add_latency(ago % 7)
        samples.append(mail)
        if ago % 3 == 0:
            report = HistorySample(minute, "reports", "Report", processed=1, retried=1 if ago % 30 == 0 else 0)
            for _ in range(report.processed + report.retried):
                report.add_run(2.0)
            report.add_latency(45.0)
            samples.append(report)
    return samples


#: the screenshots' classes: (queue, class, jobs a minute at the busiest, mean runtime, failure
#: odds), and the day before's busiest and odds (the trend the metrics page shows)
DEMO_CLASSES = (
    ("email", "qadmin.examples.SendEmail", 14, 0.35, 0.01, 8, 0.01),
    ("payments", "qadmin.examples.ChargeCard", 6, 0.8, 0.04, 6, 0.01),
    ("default", "qadmin.examples.flaky_export", 2, 3.0, 0.12, 2, 0.2),
    ("images", "qadmin.examples.resize_image", 9, 0.12, 0.0, 12, 0.0),
)


def demo_day(now: datetime) -> list[HistorySample]:
    """Two days as a team sees them: quiet at night, busy in the afternoon, payments failing for
    twenty minutes two hours ago, more mail than the day before; the same numbers on every run (a
    seeded generator)."""
    rnd = random.Random(17)
    samples = []
    this_minute = now.replace(second=0, microsecond=0)
    for ago in reversed(range(2 * 1440)):
        minute = this_minute - timedelta(minutes=ago)
        hour = minute.hour + minute.minute / 60
        load = 0.25 + 0.75 * max(0.0, math.sin((hour - 6) / 24 * 2 * math.pi)) ** 2
        burst = 100 <= ago < 120
        for queue, job_class, peak, mean, odds, peak_before, odds_before in DEMO_CLASSES:
            if ago >= 1440:
                peak, odds = peak_before, odds_before
            runs = rnd.randint(0, max(1, round(peak * load * 2)))
            if not runs:
                continue
            odds = 0.5 if burst and queue == "payments" else odds
            sample = HistorySample(minute, queue, job_class)
            for _ in range(runs):
                outcome = rnd.random()
                if outcome < odds / 3:
                    sample.failed += 1
                elif outcome < odds:
                    sample.retried += 1
                else:
                    sample.processed += 1
                sample.add_run(rnd.lognormvariate(math.log(mean), 0.6))
            sample.add_latency(rnd.expovariate(1 / (2 + 40 * load)) * (6 if burst and queue == "payments" else 1))
            samples.append(sample)
    return samples


def record(url: str, samples: list[HistorySample]) -> None:
    """Store `samples` as workers would, however old they are."""
    backend = open_backend(url, BackendOptions(history_minutes=LONG, history_hours=LONG))
    try:
        backend.record_history(samples)
    finally:
        backend.close()
