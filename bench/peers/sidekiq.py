"""Sidekiq (OSS, Debian's `ruby-sidekiq`): `sidekiq -c 1` and `-c 10`, one process, jobs in
bench/sidekiq_worker.rb. `-c 1` has the concurrency of qadmin's one-process cell; 10 threads is
Sidekiq 6's default, which a user who does not tune it runs.

Sidekiq has no burst mode: bench.peers._until_done sends TERM, Sidekiq's graceful shutdown (it
finishes the jobs in hand, up to its -t timeout), once the last stamp job has run. When the gem is
missing, the row is skipped with the package to install.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable

from bench.common import ROOT, Skip, child_env
from bench.peers import Peer
from bench.peers._plan import stamp_count, stamps_per_end
from bench.peers._until_done import expect

QUEUE = "default"
SCRIPT = ROOT / "bench" / "sidekiq_worker.rb"

GUARANTEE = (
    "lost: Sidekiq OSS fetches with BRPOP (Sidekiq::BasicFetch), which removes the job from Redis before it "
    "runs; a TERM pushes unfinished jobs back, a SIGKILL loses them (Sidekiq wiki: Reliability). "
    "Sidekiq Pro's super_fetch reruns them"
)


def need() -> None:
    if shutil.which("ruby") is None or shutil.which("sidekiq") is None:
        raise Skip("Sidekiq is not installed (Debian ruby-sidekiq)")
    check = subprocess.run(["ruby", "-e", 'require "sidekiq"'], check=False, capture_output=True, timeout=60)
    if check.returncode != 0:
        raise Skip("the sidekiq gem does not load (Debian ruby-sidekiq)")


def version() -> str:
    out = subprocess.run(
        [
            "ruby",
            "-e",
            'require "sidekiq"; print "sidekiq #{Sidekiq::VERSION} (redis-rb #{Redis::VERSION}, Ruby #{RUBY_VERSION})"',
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip()


def fill(url: str, n: int, stamp_path: str) -> None:
    subprocess.run(
        ["ruby", str(SCRIPT), "fill", url, str(n), str(stamps_per_end(n)), stamp_path],
        check=True,
        cwd=ROOT,
        env=child_env(),
        timeout=max(120.0, n / 200),
    )
    expect(url, stamp_path, stamp_count(n))


def remaining(url: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).llen(f"queue:{QUEUE}"))


def commands_for(concurrency: int) -> Callable[[str, int], list[list[str]]]:
    def commands(url: str, processes: int) -> list[list[str]]:
        worker = ["sidekiq", "-r", str(SCRIPT), "-c", str(concurrency), "-q", QUEUE, "-t", "25"]
        return [[sys.executable, "-m", "bench.peers._until_done", url, "SIGTERM", "--", *worker]] * processes

    return commands


def settings(concurrency: int) -> str:
    return (
        f"`sidekiq -r bench/sidekiq_worker.rb -c {concurrency} -q default -t 25` (Sidekiq wiki: The Basics, "
        "Advanced Options), jobs with retry: false, logger level WARN (wiki: Logging; Sidekiq logs every "
        "job at INFO), enqueued with Sidekiq::Client.push_bulk (wiki: Bulk Queueing); Debian's "
        "ruby-sidekiq 6.4; stopped with TERM after the last stamp (no burst mode)"
    )


PEERS = [
    Peer(
        name="sidekiq -c 1",
        backend="redis",
        guarantee=GUARANTEE,
        settings=settings(1),
        need=need,
        fill=fill,
        commands=commands_for(1),
        remaining=remaining,
    ),
    Peer(
        name="sidekiq -c 10",
        backend="redis",
        guarantee=GUARANTEE,
        settings=settings(10) + "; Sidekiq 6's default concurrency, what an untuned process runs",
        need=need,
        fill=fill,
        commands=commands_for(10),
        remaining=remaining,
    ),
]
