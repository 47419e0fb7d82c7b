"""Stop a worker that has no burst mode once the last stamp job has run.

    python -m bench.peers._until_done URL SIGNAL -- worker command…

dramatiq, huey and Sidekiq wait for work forever. `fill` records in Redis where the stamps go and
how many there are (`expect`); this wrapper starts the worker, watches the stamp file and, once
every stamp is written, sends the peer's own graceful-stop signal and waits for the worker to exit.
The stamp jobs are the last ones in the queue, so every other job has been taken by then; the
graceful stop lets the worker finish and acknowledge the jobs still in its hands. The rate is
counted between the first and the last stamp, so nothing here is timed.

The worker gets the URL as BENCH_PEER_URL (the job modules configure their broker from it).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

import redis

#: the Redis key `fill` writes: {"path": stamp file, "count": stamps the plan holds}
EXPECT_KEY = "qadmin-bench:expect"
#: how long a worker may take to stop after the signal (finishing its jobs in hand)
STOP_TIMEOUT = 60.0
POLL = 0.02


def expect(url: str, stamp_path: str, count: int) -> None:
    """Called by a peer's `fill`: the watcher reads it when the worker starts."""
    redis.Redis.from_url(url).set(EXPECT_KEY, json.dumps({"path": stamp_path, "count": count}))


def stamps_written(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            return fh.read().count(b"\n")
    except FileNotFoundError:
        return 0


def _die_with_parent() -> None:
    # run_processes SIGKILLs this wrapper on a time-out: the worker must not outlive it
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    url, stop = argv[0], signal.Signals[argv[1] if argv[1].startswith("SIG") else f"SIG{argv[1]}"]
    raw = redis.Redis.from_url(url).get(EXPECT_KEY)
    if raw is None:
        print(f"until_done: no {EXPECT_KEY} in {url}: the peer's fill did not call expect()", file=sys.stderr)
        return 2
    plan = json.loads(raw)
    path, count = str(plan["path"]), int(plan["count"])
    worker = subprocess.Popen(argv[3:], env={**os.environ, "BENCH_PEER_URL": url}, preexec_fn=_die_with_parent)
    while worker.poll() is None and stamps_written(path) < count:
        time.sleep(POLL)
    if worker.returncode is not None:
        print(f"until_done: the worker exited with {worker.returncode} before the last stamp", file=sys.stderr)
        return worker.returncode or 1
    worker.send_signal(stop)
    try:
        code = worker.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        print(f"until_done: the worker did not stop within {STOP_TIMEOUT:.0f}s of {stop.name}", file=sys.stderr)
        return 1
    # a worker that ends by re-raising the signal it was asked to stop with has stopped as asked
    return 0 if code in (0, -stop, 128 + stop) else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
