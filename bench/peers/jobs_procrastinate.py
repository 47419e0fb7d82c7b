"""procrastinate's side of bench/peers/procrastinate.py: its App, the two bench tasks, and the worker.

    python -m bench.peers.jobs_procrastinate CONNINFO      one worker process: runs until the queue is empty

The tasks are named explicitly: procrastinate names a task after its module, which is `__main__` in
the worker process and `bench.peers.jobs_procrastinate` in the process that fills the queue.
"""

from __future__ import annotations

import sys

import procrastinate

from bench import stamps


def make_app(conninfo: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="noop", pass_context=False)
    def noop(i: int) -> None:
        """Does nothing: the cost measured is the queue's."""

    @app.task(name="stamp", pass_context=False)
    def stamp(path: str) -> None:
        stamps.stamp(path)

    return app


#: the worker's settings, quoted in the table (bench/peers/procrastinate.py)
WORKER_OPTIONS: dict[str, object] = {
    # exit once the queues are caught up: procrastinate's own burst mode
    "wait": False,
    # one job at a time per process, as `qadmin worker` runs them
    "concurrency": 1,
    # no LISTEN connection: a worker that stops when the queue is empty never waits for a NOTIFY
    "listen_notify": False,
}


def main(argv: list[str]) -> int:
    make_app(argv[0]).run_worker(**WORKER_OPTIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
