"""A failure burst run by a real `qadmin worker --burst` fires a failure_rate alert once and clears
it once, on every backend: the worker records the runs (history), two evaluators check the rule,
and the test's own webhook receiver (tests/webhook.py) gets exactly one firing message and, after
the window moved past the burst, one resolved message."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

from qadmin.alert_rules import AlertConfig, AlertRule
from qadmin.backends import BackendOptions, open_backend
from qadmin.job import NewJob, utcnow
from qadmin.ops import Ops
from tests.webhook import Receiver, receiver  # noqa: F401 - the fixture
from tests.worker.test_worker_processes import client, procs

__all__ = ["procs", "receiver"]

JOBS = """
def fine():
    pass

def broken():
    raise RuntimeError("the mail server said no")
"""


def test_a_failure_burst_fires_once_and_clears_once(any_url: str, tmp_path: Path, procs, receiver: Receiver) -> None:  # noqa: F811
    (tmp_path / "burstjobs.py").write_text(textwrap.dedent(JOBS))
    with client(any_url) as c:
        c.enqueue_many([NewJob("burstjobs.broken", [], queue="mail", max_attempts=1) for _ in range(8)])
        c.enqueue_many([NewJob("burstjobs.fine", [], queue="mail") for _ in range(4)])
    done = procs(any_url).run("worker", "--burst", "--sleep", "0.1", "--import", "burstjobs", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    rule = AlertRule(
        "mail-failing", "failure_rate", receiver.url, queue="mail", window=600.0, threshold=0.5, min_runs=10
    )
    config = AlertConfig(rules=(rule,))
    later = utcnow() + timedelta(minutes=12)
    evaluators = [open_backend(any_url, BackendOptions()) for _ in range(2)]
    try:
        for b in evaluators:
            Ops(b).alerts.check(config)
        assert receiver.messages() == [("mail-failing", "firing")]
        assert "8 of 12 runs failed (67%)" in receiver.bodies[0]["text"]
        for b in evaluators:  # the window has moved past the burst
            Ops(b, clock=lambda: later).alerts.check(config)
            Ops(b, clock=lambda: later).alerts.check(config)
        assert receiver.messages() == [("mail-failing", "firing"), ("mail-failing", "resolved")]
    finally:
        for b in evaluators:
            b.close()
