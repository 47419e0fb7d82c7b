"""Bench-only jobs. A throughput run puts a few `stamp` jobs at both ends of a queue of no-ops.

Each appends the time it ran to a file; the earliest and latest stamps give the span from the first
job's start to the last job's end, without timing process start-up and without touching the no-op
jobs in between (a few dozen appends in a run of thousands of jobs).
"""

from __future__ import annotations

import os
import time

#: stamp jobs at each end of a queue: enough that two workers racing for the last jobs both stamp
STAMPS_PER_END = 20


def stamp(path: str) -> None:
    line = f"{time.time()!r}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def span(path: str) -> tuple[float, float, int]:
    """(first, last, number of stamps) written to `path`."""
    with open(path, encoding="utf-8") as fh:
        times = [float(line) for line in fh if line.strip()]
    if len(times) < 2:
        raise RuntimeError(f"only {len(times)} stamps in {path}: the jobs did not run")
    return min(times), max(times), len(times)


def boom(*args: object) -> None:
    """A job that always fails (for filling failed registries)."""
    raise RuntimeError("bench: this job always fails")
