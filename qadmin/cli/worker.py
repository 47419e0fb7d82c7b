"""`qadmin worker`: run jobs in this process, or in supervised processes."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

import click

from qadmin.cli.context import QadminCommand, current_settings
from qadmin.cli.params import at_most, duration, positive, positive_duration
from qadmin.config import DEFAULT_WORKER_TIMEOUT
from qadmin.errors import QadminError, UsageError
from qadmin.ops import open_ops, open_settings_backend
from qadmin.settings import POOLS, Settings
from qadmin.text import plural


@click.command(cls=QadminCommand)
@click.option(
    "--queue",
    "-q",
    "queues_",
    multiple=True,
    help="Queue to serve (repeatable, in order: an earlier queue's jobs run first; * = all). Default *.",
)
@click.option("--burst", is_flag=True, help="Exit when no job is ready.")
@click.option("--count", type=int, callback=positive, help="Exit after this many jobs (per process).")
@click.option(
    "--sleep",
    "sleep_",
    default="5",
    callback=at_most(86400, "1d", duration),
    help="Seconds between polls when idle (at most 1d).",
)
@click.option(
    "--concurrency",
    "-c",
    type=int,
    default=1,
    callback=at_most(1024, "1024", positive),
    help="Jobs run at once (at most 1024): worker processes, or the async pool's slots.",
)
@click.option(
    "--pool",
    type=click.Choice(POOLS),
    default=None,
    help="process: --concurrency worker processes; async: one process whose event loop runs up to "
    "--concurrency `async def` jobs at once. [default: [worker] pool in qadmin.toml, else process]",
)
@click.option("--max-attempts", type=int, default=25, callback=positive, show_default=True)
@click.option(
    "--max-run-time",
    default="4h",
    callback=at_most(366 * 86400, "366d", positive_duration),
    show_default=True,
    help="A job running longer is interrupted and failed (at most 366d).",
)
@click.option("--max-jobs-per-child", type=int, callback=positive, help="Recycle a process after N jobs.")
@click.option("--max-memory", type=float, callback=positive, help="Recycle a process above this many MB resident.")
@click.option("--fork", is_flag=True, help="Run each job in a forked child (Resque's isolation).")
@click.option(
    "--prefetch",
    type=int,
    default=1,
    callback=at_most(10_000, "10000", positive),
    show_default=True,
    help="Jobs locked per claim (at most 10000): fewer round trips; unrun ones are released on stop.",
)
@click.option(
    "--defer-acks",
    is_flag=True,
    help="Redis: write successes with the next call (up to 100 jobs or 0.5 s) — faster, but a "
    "SIGKILL reruns the jobs whose success was not written yet.",
)
@click.option(
    "--heartbeat-interval",
    default="5s",
    callback=at_most(3600, "1h", positive_duration),
    show_default=True,
    help="How often this worker says it is alive (other workers judge it by --worker-timeout).",
)
@click.option(
    "--rescue-interval",
    default="15s",
    callback=at_most(86400, "1d", duration),
    show_default=True,
    help="How often this worker gives back the jobs of dead qadmin workers (and once at start-up; 0: never).",
)
@click.option(
    "--worker-timeout",
    default=None,
    callback=at_most(86400, "1d", positive_duration),
    help="A qadmin worker whose heartbeat stopped this long is dead: its jobs are rescued. Give every "
    "worker the same, at least twice the heartbeat interval. [default: [worker] timeout in qadmin.toml, "
    "else 60s]",
)
@click.option("--reload", is_flag=True, help="Restart the workers when source files change.")
@click.option(
    "--import",
    "imports",
    multiple=True,
    help="A module or package whose job classes and functions (and @job registrations) this worker runs "
    "(repeatable). Nothing else runs.",
)
@click.option(
    "--scheduler",
    "with_scheduler",
    is_flag=True,
    help="Also enqueue recurring schedules' jobs, as `qadmin scheduler` does (a thread of the first worker "
    "process; with --burst, one pass before the worker starts).",
)
@click.option("--pidfile", type=click.Path(dir_okay=False))
@click.option("-v", "--verbose", count=True, help="-v per job, -vv debug.")
def worker(
    queues_: tuple[str, ...],
    burst: bool,
    count: int | None,
    sleep_: float,
    concurrency: int,
    pool: str | None,
    max_attempts: int,
    max_run_time: float,
    max_jobs_per_child: int | None,
    max_memory: float | None,
    fork: bool,
    prefetch: int,
    defer_acks: bool,
    heartbeat_interval: float,
    rescue_interval: float,
    worker_timeout: float | None,
    reload: bool,
    imports: tuple[str, ...],
    with_scheduler: bool,
    pidfile: str | None,
    verbose: int,
) -> None:
    """Run jobs: claim, run, complete or retry with backoff."""
    from qadmin.supervisor import Supervisor, default_watch_paths, import_modules, write_pidfile
    from qadmin.worker import (
        EXIT_CANNOT_START,
        AsyncWorker,
        Worker,
        WorkerOptions,
        refuse_async_options,
        wait_for_backend,
    )

    level = logging.WARNING if verbose < 0 else (logging.INFO if verbose < 2 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(process)d %(levelname)s %(message)s", stream=sys.stderr)
    if verbose >= 1:
        logging.getLogger("qadmin.worker").setLevel(logging.DEBUG)
    sys.path.insert(0, os.getcwd())
    settings = current_settings()
    if worker_timeout is None:
        worker_timeout = settings.config.worker_timeout or DEFAULT_WORKER_TIMEOUT
    if worker_timeout < 2 * heartbeat_interval:
        # a live worker between two beats would look dead to the others, and lose its jobs
        raise UsageError("--worker-timeout must be at least twice --heartbeat-interval")
    imports = settings.worker_imports(imports)
    pool = settings.worker_pool(pool)
    # with --reload the children import the job modules themselves, after the fork, so that a
    # restart sees the new code; the supervisor only checks that they can be found
    import_modules(imports, find_only=reload)
    options = WorkerOptions(
        queues=list(queues_) or ["*"],
        max_attempts=max_attempts,
        max_run_time=max_run_time,
        sleep=sleep_,
        burst=burst,
        count=count,
        fork=fork,
        max_jobs=max_jobs_per_child,
        max_memory_mb=max_memory,
        prefetch=prefetch,
        defer_acks=defer_acks,
        heartbeat_interval=heartbeat_interval,
        rescue_interval=rescue_interval,
        imports=imports,
        record_history=settings.config.history.record,
    )
    if pool == "async":
        refuse_async_options(options)
    # fail fast on a bad URL or a missing table before forking anything; a server that is not up
    # yet is waited for (a host often boots before its database), except by a one-off --burst run
    probe = open_settings_backend(settings)
    try:
        if defer_acks and not probe.defers_successes:
            raise UsageError(
                f"--defer-acks is not available on {probe.kind}: every success is one transaction there already"
            )
        if burst:
            probe.check()
        elif not wait_for_backend(probe):
            sys.exit(0)
    finally:
        probe.close()
    try:
        remove_pidfile = write_pidfile(pidfile) if pidfile else (lambda: None)
    except OSError as exc:
        raise UsageError(f"cannot write --pidfile {pidfile}: {exc.strerror or exc}") from None

    def run_one(slot: int = 0) -> int:
        if reload:
            import_modules(imports)
        backend = open_settings_backend(settings, worker_timeout=worker_timeout)
        w = AsyncWorker(backend, options, concurrency=concurrency) if pool == "async" else Worker(backend, options)
        w.install_signal_handlers()
        scheduling = start_scheduler(settings, burst) if with_scheduler and slot == 0 else None
        try:
            return w.work()
        finally:
            if scheduling is not None:
                scheduling()
            backend.close()

    def run_child(slot: int) -> int:
        try:
            return run_one(slot)
        except QadminError as exc:  # one line, and a status that tells the supervisor not to retry
            logging.getLogger("qadmin.worker").error("cannot work: %s", exc)
            return EXIT_CANNOT_START

    processes = 1 if pool == "async" else concurrency
    logging.getLogger("qadmin.worker").info(
        "%s pool: up to %s at once in %s",
        pool,
        plural(concurrency, "job"),
        "one process" if processes == 1 else f"{processes} processes",
    )
    try:
        if processes == 1 and not (max_jobs_per_child or max_memory or reload):
            code = run_one()
        else:
            code = Supervisor(
                run_child, processes, burst=burst, reload=reload, watch=default_watch_paths() if reload else ()
            ).run()
    finally:
        remove_pidfile()
    sys.exit(0 if code in (0, 3) else code)


def start_scheduler(settings: Settings, burst: bool) -> Callable[[], None]:
    """`--scheduler`: the schedules of qadmin.toml stored and the ticks due fired; then, unless
    `burst`, a scheduler thread beside the worker. Gives what stops it."""
    from qadmin.scheduler import Scheduler, SchedulerThread

    ops = open_ops(settings, face="scheduler")
    declared = settings.config.recurring if settings.config.path is not None else None
    runner = Scheduler(ops)
    if burst:
        try:
            runner.run(declared, once=True)
        finally:
            ops.close()
        return lambda: None
    thread = SchedulerThread(runner, declared).start()

    def stop() -> None:
        thread.stop()
        ops.close()

    return stop
