"""Chaos runs: workers SIGKILLed and restarted at random and the database server restarted while
thousands of jobs run, then proof that none was lost.

    python -m bench.chaos                         # the full schedule: 20,000 jobs per backend
    python -m bench.chaos --jobs 2000 --backends redis --seed 3
    scripts/chaos --json /tmp/chaos.json

Each job is `qadmin.examples.record(path, token)`: it appends its token to one file (a small
O_APPEND write, atomic), so the file says which jobs ran and how often. Four workers run as real
processes (`python -m qadmin --url URL worker --sleep 0.05`). While they run, a random worker is
SIGKILLed every `--kill-every` seconds and started again; at fixed points of the run the server is
restarted (PostgreSQL: a fast shutdown, then an immediate one, which needs crash recovery;
Redis: SIGKILL, with `appendonly yes` and `appendfsync always`). SQLite has no server to restart.

At the end the workers are stopped, `qadmin unlock --stale` frees what the killed ones held and a
last `qadmin worker --burst` runs it. Then: every token is in the file (lost = 0), nothing is
pending, scheduled, locked or failed, and the tokens found more than once (at-least-once delivery:
a worker killed after the job ran but before it was recorded) are counted and reported.

The test suite runs a short schedule of the same code (tests/reliability/test_rel_chaos.py).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: the job every chaos run enqueues
RECORD = "qadmin.examples.record"
#: backends in the order they are run
BACKENDS = ("sqlite", "postgresql", "redis")


def log(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QADMIN_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def qadmin_cmd(url: str, *args: str) -> list[str]:
    # a worker runs only the job classes it is given: the jobs here are qadmin's examples
    given = ("--import", "qadmin.examples") if args[:1] == ("worker",) else ()
    return [sys.executable, "-m", "qadmin", "--url", url, *args, *given]


# --- servers ----------------------------------------------------------------------------------
from tests.servers import RedisServer, _redis_binary, _stop_process  # noqa: E402 - the harness's servers


class AofRedis(RedisServer):
    """A redis-server that keeps every acknowledged write (AOF, fsync always): SIGKILL it and start
    it again and the data is all there, which is what a production Redis behind a queue runs with."""

    persistence = ("--save", "", "--appendonly", "yes", "--appendfsync", "always")

    def __init__(self, workdir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        binary = _redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        super().__init__(binary, workdir, port, host)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            _stop_process(self.proc, sig, timeout=30)

    def restart(self, down: float, crash: bool = True) -> str:
        """Kill the server (SIGKILL: nothing is flushed on the way out) and start it again."""
        self.stop(signal.SIGKILL if crash else signal.SIGTERM)
        time.sleep(down)
        self.start()
        return "SIGKILL + AOF replay" if crash else "shutdown"


def durable_commits(server: Any, url: str) -> None:
    """The test cluster runs with `synchronous_commit=off`, which may lose the last commits in a
    crash; a production database would not, so the chaos database commits synchronously (a
    database's own setting wins over the server's). `fsync=off` stays: a crashed server process
    leaves its writes in the operating system's cache."""
    dbname = url.rsplit("/", 1)[1].split("?", 1)[0]
    with server.connect() as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" SET synchronous_commit = on')


def restart_postgres(server: Any, down: float, crash: bool) -> str:
    """A fast shutdown (clients disconnected, a checkpoint) or an immediate one (SIGQUIT: crash
    recovery from the WAL at the next start), then start again on the same port and data."""
    if crash and server.proc is not None:
        server.proc.send_signal(signal.SIGQUIT)
        server.proc.wait(60)
    else:
        server.stop()
    time.sleep(down)
    server.start()
    return "immediate shutdown + crash recovery" if crash else "fast shutdown"


# --- workers ----------------------------------------------------------------------------------
@dataclass
class Slot:
    index: int
    proc: subprocess.Popen | None = None
    starts: int = 0
    killed: bool = False


class WorkerPool:
    """N worker processes in slots; each can be killed and started again. `command(slot)` builds a
    slot's command line (a prefix such as `ip netns exec` goes there)."""

    def __init__(self, command: Callable[[int], list[str]], size: int, logdir: Path) -> None:
        self.command = command
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.slots = [Slot(i) for i in range(size)]
        self.kills = 0
        self.restarts = 0
        #: (slot, exit status, log tail) of processes that ended without being told to
        self.unexpected: list[tuple[int, int, str]] = []
        #: workers started while the server was down, which exited at once with "cannot reach"
        self.refused_start = 0

    def log_path(self, slot: Slot) -> Path:
        return self.logdir / f"worker-{slot.index}.log"

    def start(self, slot: Slot) -> None:
        with open(self.log_path(slot), "ab") as out:
            out.write(f"\n=== start {slot.starts} of slot {slot.index}\n".encode())
            out.flush()
            slot.proc = subprocess.Popen(
                self.command(slot.index),
                cwd=self.logdir,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if slot.starts:
            self.restarts += 1
        slot.starts += 1
        slot.killed = False

    def start_all(self) -> None:
        for slot in self.slots:
            self.start(slot)

    def kill(self, slot: Slot) -> None:
        if slot.proc is not None and slot.proc.poll() is None:
            slot.killed = True
            slot.proc.send_signal(signal.SIGKILL)
            slot.proc.wait(30)
            self.kills += 1

    def check(self) -> None:
        """A worker that exited on its own (a crash on a database restart, say) is noted and
        replaced: the run goes on, the report names it. One that was started while the server was
        down and refused to start (`qadmin worker` checks its URL before it forks anything) is
        started again, as a service manager would, and counted apart."""
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is not None and not slot.killed:
                segment = self.tail(slot, 20_000).rsplit("=== start ", 1)[-1]
                if "Starting job worker" not in segment and "cannot reach" in segment:
                    self.refused_start += 1
                else:
                    self.unexpected.append((slot.index, slot.proc.returncode, self.tail(slot)))
                self.start(slot)

    def outage_warnings(self) -> int:
        """Log lines of workers that saw the backend go away and kept going."""
        return sum(self.tail(s, 10**9).count("backend unavailable") for s in self.slots)

    def tail(self, slot: Slot, chars: int = 3000) -> str:
        try:
            return self.log_path(slot).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop_all(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.killed = True
                slot.proc.send_signal(sig)
        deadline = time.monotonic() + timeout
        for slot in self.slots:
            if slot.proc is None:
                continue
            try:
                slot.proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                slot.proc.kill()
                slot.proc.wait(10)

    def logs(self) -> str:
        return "\n".join(f"--- slot {s.index}\n{self.tail(s, 6000)}" for s in self.slots)

    def tracebacks(self) -> int:
        return sum(self.tail(s, 10**9).count("Traceback") for s in self.slots)


# --- one run ----------------------------------------------------------------------------------
@dataclass
class Schedule:
    jobs: int = 20_000
    workers: int = 4
    #: seconds between two worker kills, drawn uniformly from this range
    kill_every: tuple[float, float] = (0.2, 1.0)
    #: server restarts, spread evenly over the run (ignored for SQLite)
    restarts: int = 3
    #: seconds the server stays down, drawn uniformly from this range
    down: tuple[float, float] = (1.0, 3.0)
    #: the first restart is a crash (then they alternate): SIGKILL / immediate shutdown
    crash_first: bool = True
    sleep: float = 0.05
    seed: int = 1
    #: give up (and report) after this long
    timeout: float = 3600.0


@dataclass
class Report:
    backend: str
    jobs: int
    workers: int
    kills: int = 0
    worker_restarts: int = 0
    server_restarts: int = 0
    restart_kinds: list[str] = field(default_factory=list)
    unexpected_exits: int = 0
    refused_start: int = 0
    outage_warnings: int = 0
    unlocked_mid_run: int = 0
    unlocked_at_end: int = 0
    ran: int = 0
    lost: int = 0
    jobs_run_twice: int = 0
    extra_runs: int = 0
    left: dict[str, int] = field(default_factory=dict)
    tracebacks: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cli(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        qadmin_cmd(url, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=child_env(),
    )


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return fh.read().count(b"\n")
    except FileNotFoundError:
        return 0


def left_in_backend(url: str) -> dict[str, int]:
    """pending / scheduled / locked / failed counts, read through the backend itself."""
    from qadmin.backends import open_backend
    from qadmin.filters import JobFilter
    from qadmin.job import JobState, utcnow

    backend = open_backend(url)
    try:
        return {
            s.value: backend.count(JobFilter(states=frozenset({s})), utcnow())
            for s in (JobState.PENDING, JobState.SCHEDULED, JobState.LOCKED, JobState.FAILED)
        }
    finally:
        backend.close()


def enqueue_tokens(url: str, tokens_file: Path, jobs: int, queues: Sequence[str] = ("a", "b")) -> None:
    from qadmin.backends import open_backend
    from qadmin.job import NewJob

    backend = open_backend(url)
    try:
        backend.init()
        for start in range(0, jobs, 2000):
            backend.enqueue_many(
                [
                    NewJob(RECORD, [str(tokens_file), f"j{i}"], queue=queues[i % len(queues)])
                    for i in range(start, min(start + 2000, jobs))
                ]
            )
    finally:
        backend.close()


def unlock_stale(url: str) -> int:
    res = _cli(url, "unlock", "--stale", "--json")
    if res.returncode != 0:
        raise RuntimeError(f"qadmin unlock --stale exited {res.returncode}: {res.stderr.strip()}")
    return int(json.loads(res.stdout)["changed"])


def verify(report: Report, url: str, tokens_file: Path) -> None:
    """Every token ran at least once; nothing is left pending, scheduled, locked or failed."""
    ran = Counter(tokens_file.read_text().splitlines()) if tokens_file.exists() else Counter()
    expected = {f"j{i}" for i in range(report.jobs)}
    report.ran = len(ran.keys() & expected)
    report.lost = len(expected - ran.keys())
    report.jobs_run_twice = sum(1 for n in ran.values() if n > 1)
    report.extra_runs = sum(n - 1 for n in ran.values() if n > 1)
    strangers = set(ran) - expected
    report.left = left_in_backend(url)
    if report.lost:
        report.problems.append(f"{report.lost} jobs never ran, e.g. {sorted(expected - ran.keys())[:5]}")
    if strangers:
        report.problems.append(f"unexpected lines in the tokens file: {sorted(strangers)[:5]}")
    for state, n in report.left.items():
        if n:
            report.problems.append(f"{n} jobs left {state}")
    if report.unexpected_exits:
        report.problems.append(f"{report.unexpected_exits} worker processes exited on their own")


def run(
    backend: str,
    url: str,
    workdir: Path,
    schedule: Schedule,
    restart: Callable[[float, bool], str] | None = None,
) -> Report:
    """One chaos run against `url`. `restart(down, crash)` restarts the server (None: no server)."""
    rng = random.Random(f"{schedule.seed}-{backend}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tokens = workdir / "tokens.txt"
    tokens.unlink(missing_ok=True)
    report = Report(backend, schedule.jobs, schedule.workers)
    started = time.monotonic()
    enqueue_tokens(url, tokens, schedule.jobs)
    log(f"{backend}: {schedule.jobs} jobs enqueued; {schedule.workers} workers start")
    pool = WorkerPool(
        lambda _slot: qadmin_cmd(url, "worker", "--sleep", str(schedule.sleep)),
        schedule.workers,
        workdir / "logs",
    )
    restarts_due = (
        [schedule.jobs * (k + 1) // (schedule.restarts + 1) for k in range(schedule.restarts)]
        if restart is not None
        else []
    )
    try:
        pool.start_all()
        next_kill = time.monotonic() + rng.uniform(*schedule.kill_every)
        last_note = last_check = 0.0
        deadline = time.monotonic() + schedule.timeout
        while True:
            now = time.monotonic()
            done = _count_lines(tokens)
            if restarts_due and done >= restarts_due[0]:
                restarts_due.pop(0)
                crash = (report.server_restarts % 2 == 1) != schedule.crash_first
                down = rng.uniform(*schedule.down)
                kind = restart(down, crash)  # type: ignore[misc]
                report.server_restarts += 1
                report.restart_kinds.append(kind)
                log(f"{backend}: server restarted ({kind}, down {down:.1f}s) at {done} runs")
                # what the dead workers held is taken back while the others keep working
                report.unlocked_mid_run += unlock_stale(url)
            if now >= next_kill:
                slot = rng.choice(pool.slots)
                pool.kill(slot)
                time.sleep(rng.uniform(0.0, 0.3))
                pool.start(slot)
                next_kill = time.monotonic() + rng.uniform(*schedule.kill_every)
            pool.check()
            if now - last_note >= 5:
                last_note = now
                log(f"{backend}: {done} runs, {pool.kills} kills, {report.server_restarts} server restarts")
            if not restarts_due and now - last_check >= 1:
                last_check = now
                left = _left_quietly(url)
                # nothing waits any more: the rest is in flight or held by killed workers (stale)
                if left is not None and left["pending"] + left["scheduled"] == 0:
                    break
            if now > deadline:
                report.problems.append(f"gave up after {schedule.timeout:.0f}s with {done} runs")
                break
            time.sleep(0.1)
        pool.stop_all(signal.SIGTERM)
        report.unlocked_at_end = unlock_stale(url)
        final = _cli(url, "worker", "--burst", "--sleep", str(schedule.sleep), timeout=600)
        if final.returncode != 0:
            report.problems.append(f"the final burst worker exited {final.returncode}: {final.stderr[-500:]}")
    finally:
        pool.stop_all(signal.SIGKILL, timeout=10)
    report.kills = pool.kills
    report.worker_restarts = pool.restarts
    report.unexpected_exits = len(pool.unexpected)
    report.refused_start = pool.refused_start
    report.outage_warnings = pool.outage_warnings()
    report.tracebacks = pool.tracebacks()
    for slot, code, tail in pool.unexpected[:3]:
        log(f"{backend}: worker slot {slot} exited {code} on its own:\n{tail}")
    report.seconds = round(time.monotonic() - started, 1)
    verify(report, url, tokens)
    return report


def _left_quietly(url: str) -> dict[str, int] | None:
    from qadmin.errors import QadminError

    try:
        return left_in_backend(url)
    except QadminError:
        return None


# --- the script -------------------------------------------------------------------------------
def table(reports: Sequence[Report]) -> str:
    head = (
        "| backend | jobs | workers | worker kills | server restarts | unexpected exits | "
        "unlocked (mid-run / end) | lost | run twice | left locked | seconds |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in reports:
        restarts = f"{r.server_restarts}" if r.backend != "sqlite" else "n/a (no server)"
        lines.append(
            f"| {r.backend} | {r.jobs:,} | {r.workers} | {r.kills} | {restarts} | {r.unexpected_exits} | "
            f"{r.unlocked_mid_run} / {r.unlocked_at_end} | {r.lost} | {r.jobs_run_twice} | "
            f"{r.left.get('locked', 0)} | {r.seconds:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql,redis")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-every", default="0.2-1", help="seconds between worker kills, MIN-MAX")
    parser.add_argument("--restarts", type=int, default=3, help="server restarts per run")
    parser.add_argument("--down", default="1-3", help="seconds a restarted server stays down, MIN-MAX")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", dest="json_out", help="also write the reports as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, tokens)")
    args = parser.parse_args(argv)

    def span(text: str) -> tuple[float, float]:
        lo, _, hi = text.partition("-")
        return float(lo), float(hi or lo)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in BACKENDS:
            parser.error(f"unknown backend {b!r}: expected {', '.join(BACKENDS)}")
    schedule = Schedule(
        jobs=args.jobs,
        workers=args.workers,
        kill_every=span(args.kill_every),
        restarts=args.restarts,
        down=span(args.down),
        seed=args.seed,
        timeout=args.timeout,
    )
    from bench.common import stop_on_sigterm

    stop_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="qadmin-chaos-"))
    reports: list[Report] = []
    try:
        for backend in backends:
            reports.append(_run_backend(backend, work / backend, schedule))
            log(f"{backend}: {json.dumps(reports[-1].to_dict())}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work directory kept: {work}")
    print(table(reports))
    for r in reports:
        for problem in r.problems:
            print(f"{r.backend}: PROBLEM: {problem}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([r.to_dict() for r in reports], indent=2))
    return 0 if all(r.ok for r in reports) else 1


def _run_backend(backend: str, work: Path, schedule: Schedule) -> Report:
    work.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        return run(backend, f"sqlite:///{work}/chaos.db", work, schedule)
    if backend == "redis":
        server = AofRedis(work / "redis").start()
        try:
            return run(backend, server.url, work, schedule, restart=server.restart)
        finally:
            server.stop()
    from tests.servers import PostgresServer, _postgres_bindir

    bindir = _postgres_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (Debian package postgresql)")
    base = Path(tempfile.mkdtemp(prefix="qadmin-pg-chaos-"))  # the postgres user must be able to enter it
    pg = PostgresServer(bindir, base).start()
    try:
        pg.create_database("chaos")
        durable_commits(pg, pg.url_for("chaos"))
        return run(
            backend,
            pg.url_for("chaos"),
            work,
            schedule,
            restart=lambda down, crash: restart_postgres(pg, down, crash),
        )
    finally:
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
