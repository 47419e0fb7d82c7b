"""The queues a user would pick instead of qadmin, each driven as its own documentation says.

One module per system (bench/peers/rq.py, dramatiq.py, huey.py, arq.py or saq.py, sidekiq.py,
procrastinate.py, pgqueuer.py, huey_sqlite.py, delayed_job.py), each exposing `PEERS: list[Peer]`.
bench/peer_bench.py runs them beside qadmin on the same servers, in interleaved rounds, and prints
one table per backend (docs/benchmarks.md says how to read it).

Every peer runs the same work: n jobs whose first and last few call `bench.stamps.stamp(path)` (the
rate is counted between the first and the last stamp, so process start-up is not timed) and whose
others do nothing. `fill` is not timed; `commands` are started together and must all exit by
themselves once the queue is empty (a burst mode, or the peer's own "stop when idle").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Peer:
    #: the table's row name, e.g. "dramatiq ×1" is built from it and the process count
    name: str
    #: "redis" | "postgresql" | "sqlite": which table, and which server URL `fill`/`commands` get
    backend: str
    #: what a SIGKILL of the worker mid-job does to that job, and why: "rerun (…)" or "lost (…)"
    guarantee: str
    #: the settings used and where they are documented (the peer's best for a no-op job)
    settings: str
    #: raises bench.common.Skip with the reason when the peer is not installed here
    need: Callable[[], None]
    #: (url, n, stamp_path): put n jobs on the queue, stamps at both ends (bench.stamps.STAMPS_PER_END)
    fill: Callable[[str, int, str], None]
    #: (url, processes): the worker command lines, started together, each exiting when the queue is empty
    commands: Callable[[str, int], list[list[str]]]
    #: (url): jobs still waiting once the commands exited (must be 0, else the cell is an error)
    remaining: Callable[[str], int]
    #: jobs a worker claims per round trip in this peer's cell (1 = one at a time)
    batch: int = 1
    #: the share of the bench's job count this peer runs: a peer that would take many minutes on the full
    #: count (RQ's forking worker, ~3 jobs/s on a busy machine) runs fewer; its rate is still per job
    share: float = 1.0
    #: environment for the worker processes, beyond bench.common.child_env()
    env: dict[str, str] = field(default_factory=dict)
