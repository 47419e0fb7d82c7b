"""RQ (PyPI `rq`): `rq worker --burst` with SimpleWorker and with its default forking Worker.

Both run RQ's own classes as bench/rq_peer.py wraps them (a bounded wait for the pub/sub thread at
exit, which is after the last job and so not timed). The jobs are the functions qadmin's cells run:
RQ imports a job by its dotted name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench.common import Skip
from bench.peers import Peer
from bench.peers._plan import layout

QUEUE = "default"
NOOP = "qadmin.examples.noop"
STAMP = "bench.stamps.stamp"
#: RQ's Queue.enqueue_many runs one pipeline per call: chunks keep a fill's memory flat
CHUNK = 5000

GUARANTEE = (
    "lost (not rerun): the job stays in StartedJobRegistry until its heartbeat lapses, then "
    "StartedJobRegistry.cleanup moves it to the FailedJobRegistry as an AbandonedJobError; it is rerun "
    "only if it was enqueued with a Retry policy that has retries left (rq/registry.py)"
)


def need() -> None:
    try:
        import rq  # noqa: F401
    except ImportError as exc:
        raise Skip("PyPI rq is not installed") from exc


def fill(url: str, n: int, stamp_path: str) -> None:
    import redis
    from rq import Queue

    queue = Queue(QUEUE, connection=redis.Redis.from_url(url))
    jobs = [
        Queue.prepare_data(STAMP, args=(stamp_path,)) if is_stamp else Queue.prepare_data(NOOP, args=(i,))
        for i, is_stamp in enumerate(layout(n))
    ]
    for start in range(0, len(jobs), CHUNK):
        queue.enqueue_many(jobs[start : start + CHUNK])


def remaining(url: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).llen(f"rq:queue:{QUEUE}"))


def commands_for(worker_class: str) -> Callable[[str, int], list[list[str]]]:
    def commands(url: str, processes: int) -> list[list[str]]:
        return [
            [
                sys.executable,
                "-m",
                "rq.cli",
                "worker",
                "--burst",
                "--url",
                url,
                "-w",
                worker_class,
                "--logging_level",
                "WARNING",
                "--disable-job-desc-logging",
                QUEUE,
            ]
            for _ in range(processes)
        ]

    return commands


SETTINGS = (
    "`rq worker --burst -w {cls} --logging_level WARNING --disable-job-desc-logging` (RQ docs: Workers — "
    "burst mode, worker classes; the quieter logging is the CLI's documented flags); jobs put with "
    "`Queue.enqueue_many` in chunks of {chunk}"
)

PEERS = [
    Peer(
        name="rq SimpleWorker",
        backend="redis",
        guarantee=GUARANTEE,
        settings=SETTINGS.format(cls="SimpleWorker", chunk=CHUNK) + ": runs each job in the worker process",
        need=need,
        fill=fill,
        commands=commands_for("bench.rq_peer.SimpleWorker"),
        remaining=remaining,
    ),
    Peer(
        name="rq Worker (fork)",
        backend="redis",
        guarantee=GUARANTEE + "; the work horse killed alone is the same",
        settings=SETTINGS.format(cls="Worker", chunk=CHUNK) + ": RQ's default, forks a work horse per job",
        need=need,
        fill=fill,
        commands=commands_for("bench.rq_peer.Worker"),
        remaining=remaining,
        share=1 / 20,
    ),
]
