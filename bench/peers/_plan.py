"""The same job plan for every peer: stamp jobs at both ends of the queue, no-ops between.

It is bench.worker_throughput.job_plan's layout, without its qadmin job names: each peer maps a
stamp to its own stamp job and a no-op to its own no-op job.
"""

from __future__ import annotations

from bench.stamps import STAMPS_PER_END


def stamps_per_end(n: int) -> int:
    return min(STAMPS_PER_END, max(n // 10, 1))


def layout(n: int) -> list[bool]:
    """For each of the n jobs in queue order: True for a stamp job, False for a no-op."""
    k = stamps_per_end(n)
    return [True] * k + [False] * (n - 2 * k) + [True] * k


def stamp_count(n: int) -> int:
    return 2 * stamps_per_end(n)
