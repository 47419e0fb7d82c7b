"""arq (PyPI `arq`), the asyncio queue: its burst worker, one process, in a virtualenv of its own.

arq 0.28 requires redis-py < 6, qadmin redis-py ≥ 8 (what this machine's python has): installed
beside it, arq would downgrade the client qadmin is measured with. So arq runs from its own venv
(`python -m bench.peers.arq install` makes it; QADMIN_BENCH_VENVS moves it), which runs both
the fill and the worker (bench/peers/jobs_arq.py). Its redis-py and hiredis are the newest arq
allows.

Two rows: `max_jobs=1`, the concurrency of qadmin's one-process cell, and `max_jobs=10`, arq's
default. Both with `poll_delay=0.001` (arq's default is 0.5 s): arq's poll starts jobs only while
fewer than max_jobs run, then sleeps poll_delay, so with max_jobs=1 it runs one job per poll — about
2 jobs/s at the default, about 75/s at 0.01 s, about 195/s at 0.001 s or 0 (3000 jobs, this
2-core machine); with max_jobs=10, 0.01 and 0.001 gave 420 and 366 jobs/s (within the noise),
0.5 s 203, max_jobs=100 less. A worker polling every millisecond when idle is not what one would
deploy: it is the figure in arq's favour.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, Skip, child_env
from bench.peers import Peer

JOBS = "bench.peers.jobs_arq"
#: arq's default queue (jobs_arq.QUEUE: that module imports arq, which only its venv has)
QUEUE = "arq:queue"
#: the requirement the venv installs (hiredis: arq's own `redis[hiredis]` extra)
REQUIREMENT = "arq"
POLL_DELAY = 0.001

GUARANTEE = (
    "rerun: a job stays in the queue's sorted set while it runs; the worker marks it with an "
    "arq:in-progress:<id> key that expires after the job timeout + 10 s (default 310 s), after which any "
    "worker starts it again (arq/worker.py start_jobs; arq docs: 'Retrying jobs and cancellation': jobs "
    "may run more than once)"
)


def venv_dir() -> Path:
    base = os.environ.get("QADMIN_BENCH_VENVS") or str(Path.home() / ".cache" / "qadmin-bench")
    return Path(base) / "venv-arq"


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def install() -> None:
    """Create the venv and install arq in it (scripts/bench runs this)."""
    if not venv_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir())], check=True)
    subprocess.run(
        [
            str(venv_python()),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            REQUIREMENT,
        ],
        check=True,
    )


def need() -> None:
    python = venv_python()
    if not python.exists():
        raise Skip(f"no arq venv at {venv_dir()} (python -m bench.peers.arq install)")
    check = subprocess.run([str(python), "-c", "import arq"], check=False, capture_output=True, timeout=60)
    if check.returncode != 0:
        raise Skip(f"arq is not installed in {venv_dir()} (python -m bench.peers.arq install)")


def version() -> str:
    """arq's version and its redis-py's, read in its venv (this python has no arq)."""
    out = subprocess.run(
        [
            str(venv_python()),
            "-c",
            "from importlib.metadata import version as v; print(f\"arq {v('arq')} (redis-py {v('redis')}, venv)\")",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip()


def fill(url: str, n: int, stamp_path: str) -> None:
    subprocess.run(
        [str(venv_python()), "-m", JOBS, "fill", url, str(n), stamp_path],
        check=True,
        cwd=ROOT,
        env=child_env(),
        timeout=max(120.0, n / 200),
    )


def remaining(url: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).zcard(QUEUE))


def commands_for(max_jobs: int) -> Callable[[str, int], list[list[str]]]:
    def commands(url: str, processes: int) -> list[list[str]]:
        return [[str(venv_python()), "-m", JOBS, "work", url, str(max_jobs), str(POLL_DELAY)]] * processes

    return commands


def settings(max_jobs: int) -> str:
    return (
        f"arq.worker.Worker(burst=True, max_jobs={max_jobs}, poll_delay={POLL_DELAY}) run with Worker.run() "
        "(arq docs: Usage / Worker, burst mode; reference: arq.worker.Worker), functions with keep_result=0 "
        "(a no-op's result is never read); jobs put with ArqRedis.enqueue_job, 50 at a time; "
        f"from its own venv {venv_dir()} (arq pins redis-py < 6)"
    )


PEERS = [
    Peer(
        name="arq max_jobs=1",
        backend="redis",
        guarantee=GUARANTEE,
        settings=settings(1),
        need=need,
        fill=fill,
        commands=commands_for(1),
        remaining=remaining,
    ),
    Peer(
        name="arq max_jobs=10",
        backend="redis",
        guarantee=GUARANTEE,
        settings=settings(10) + "; arq's default max_jobs",
        need=need,
        fill=fill,
        commands=commands_for(10),
        remaining=remaining,
    ),
]


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m bench.peers.arq install")
    install()
