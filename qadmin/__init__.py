"""qadmin: a job-queue engine and the console that operates it.

import qadmin

@qadmin.job("email.send")
def send(to, subject): ...

q = qadmin.connect("sqlite:///qadmin.db")
q.enqueue("email.send", "ann@example.com", "hi", queue="email")

qadmin.configure("sqlite:///qadmin.db")
send.delay("ann@example.com", "hi")
"""

from __future__ import annotations

__version__ = "0.1.0"

from qadmin.client import Client, configure, connect, job  # noqa: E402
from qadmin.job import Job, JobState, NewJob  # noqa: E402
from qadmin.waiting import Waiting  # noqa: E402

__all__ = ["Client", "configure", "connect", "job", "Job", "JobState", "NewJob", "Waiting", "__version__"]
