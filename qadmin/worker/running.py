"""Running one job's code in the worker's process: resolving its class, delayed_job's hooks, the
application's events, `async def` jobs, and the time limit (SIGALRM) that interrupts it."""

from __future__ import annotations

import inspect
import logging
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from qadmin import events, registry
from qadmin.job import Job, result_text
from qadmin.registry import JobTarget
from qadmin.text import visible
from qadmin.waiting import Waiting

#: the worker's modules share one logger: its name is what operators filter on
log = logging.getLogger("qadmin.worker")

#: what signal.signal() takes and gives back
SignalHandler = Callable[[int, FrameType | None], Any] | int | None


class JobTimeout(Exception):
    """execution expired"""


class JobCancelled(Exception):
    """cancelled by an operator"""


#: the error text of a job interrupted at an operator's request (never recorded as a failure)
CANCELLED_ERROR = "JobCancelled: cancelled by an operator\n"


def job_max_run_time(job: Job, default: float) -> float:
    """The timeout the job was enqueued with (qadmin's payload member), which wins over the
    worker's max run time either way; else the job's own max_run_time (delayed_job's, in its meta)
    when it is shorter than the worker's."""
    timeout = job.timeout
    if timeout is not None:
        return timeout
    own = job.meta.get("max_run_time") if isinstance(job.meta, dict) else None
    if isinstance(own, (int, float)) and own > 0:
        return min(float(own), default)
    return default


def timeout_error(job: Job, max_run_time: float) -> str:
    """The error text of a job interrupted at its time limit."""
    limit = job_max_run_time(job, max_run_time)
    which = "timeout" if job.timeout is not None else "max run time"
    return f"JobTimeout: execution expired ({which} {limit:g}s)\n"


class JobRunner:
    """Runs a job's code here, in this process, within a time limit; the hooks of one run see
    the same job object, as delayed_job's do."""

    def __init__(self, imports: Sequence[str], max_run_time: float) -> None:
        #: the modules whose classes and functions may run (besides registered names)
        self.imports = imports
        self.max_run_time = max_run_time
        #: what the last successful run returned, as kept (`result_text`); None for None
        self.last_result: str | None = None
        #: how the last run ended in waiting for an external service (`qadmin.Waiting`), if it did
        self.last_waiting: Waiting | None = None

    def run(self, job: Job, limit: float) -> str | None:
        """Run the job, interrupted after `limit` seconds; None on success, else the error text
        (message line + traceback)."""
        # the job's class or instance, whichever its `perform` and hooks are called on
        instance: Any = None
        self.last_result = None
        self.last_waiting = None
        try:
            target = registry.resolve(job.class_name, self.imports)
            instance = instance_for(target)
            self.hook(job, "before", instance)
            events.emit("before_perform", job)
            with time_limit(limit):
                returned = _call(target, instance, job)
            if returned is not None:
                self.last_result = result_text(returned)
            self.hook(job, "success", instance)
            events.emit("after_perform", job)
            return None
        except JobTimeout as exc:
            self.hook(job, "error", instance, exc)
            return timeout_error(job, self.max_run_time)
        except JobCancelled:
            return CANCELLED_ERROR
        except Waiting as waiting:  # neither a success nor a failure: no hooks until it is reported back
            self.last_waiting = waiting
            return None
        except BaseException as exc:  # noqa: BLE001 - a job's exception is data, never a worker crash
            # sys.exit() in a job ends that job, not the worker: it is the job's failure
            if is_interrupt(exc):
                raise
            self.hook(job, "error", instance, exc)
            return format_error(exc)
        finally:
            self.hook(job, "after", instance)

    def hook(self, job: Job, name: str, instance: Any = None, *extra: object) -> None:
        """delayed_job's job hooks: before, after, success, error, failure (methods of the job class)."""
        hook = self.hook_for(job, name, instance)
        if hook is None:
            return
        try:
            _settle(hook(job, *extra))
        except BaseException as exc:  # noqa: BLE001 - a failing hook is logged, the job's outcome stands
            if is_interrupt(exc):
                raise
            hook_failed(job, name, exc)

    def hook_for(self, job: Job, name: str, instance: Any = None) -> Callable[..., object] | None:
        """The job class's hook method `name` (of `instance` when given), or None."""
        try:
            target = instance
            if target is None:
                target = instance_for(registry.resolve(job.class_name, self.imports))
        except Exception:  # noqa: BLE001 - no class, no hooks
            return None
        hook = getattr(target, name, None)
        return hook if callable(hook) else None


def hook_failed(job: Job, name: str, exc: BaseException) -> None:
    log.error("%s hook of %s failed: %s", name, visible(job.class_name), visible(format_error(exc), lines=True))


def _perform_is_static(target: type) -> bool:
    raw = inspect.getattr_static(target, "perform", None)
    return isinstance(raw, (staticmethod, classmethod))


def instance_for(target: JobTarget) -> Any:
    """Classes are instantiated (delayed_job style) unless `perform` is a static/class method (Resque
    style); plain callables are used as they are."""
    if inspect.isclass(target):
        return target if _perform_is_static(target) else target()
    return target


def _call(target: JobTarget, instance: Any, job: Job) -> object:
    if inspect.isclass(target):
        return _settle(instance.perform(*job.args, **job.kwargs))
    return _settle(target(*job.args, **job.kwargs))


def call_job(target: JobTarget, instance: Any, job: Job) -> object:
    """What calling the job gives back: its result, or what is still to run (an awaitable). The
    async pool's call; `_call` is the same, settled, kept apart on the worker loop's hot path."""
    if inspect.isclass(target):
        return instance.perform(*job.args, **job.kwargs)
    return target(*job.args, **job.kwargs)


def runs_on_loop(target: JobTarget) -> bool:
    """Whether the job's code is `async def` (for a class, its `perform`)."""
    code = getattr(target, "perform", None) if inspect.isclass(target) else target
    if inspect.isroutine(code):
        return inspect.iscoroutinefunction(code)
    # an instance whose `__call__` is `async def`
    return code is not None and inspect.iscoroutinefunction(type(code).__call__)


def _settle(result: object) -> object:
    """Run what calling a job gave back when its body has not run yet: an `async def` job's
    coroutine runs to completion on an event loop of its own (within the job's time limit, which
    interrupts the loop as it does any code). A generator's body would never run: refused."""
    if result is None:  # most jobs and hooks: no awaitable, no generator (the checks cost more than the job)
        return None
    if inspect.isawaitable(result):
        import asyncio

        awaitable = result
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # none in this thread (the worker loop's case): the job gets one of its own
        else:  # the async pool's loop runs here, and cannot run another inside it
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise TypeError(
                "it returned an awaitable but is not `async def`: the async pool awaits only `async def` "
                "jobs and hooks (declare it `async def`)"
            )

        async def awaited() -> object:
            return await awaitable

        try:
            return asyncio.run(awaited())
        finally:
            if inspect.iscoroutine(awaitable) and awaitable.cr_frame is not None and not awaitable.cr_running:
                awaitable.close()  # never started (asyncio.run refused): no "never awaited" warning
    return plain_result(result)


def plain_result(result: object) -> object:
    """A job's return value, once its body has run: a generator's body never would (refused)."""
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        raise TypeError(
            f"the job returned {type(result).__name__} {getattr(result, '__qualname__', '')}: its "
            "body never runs (a job function must not yield)"
        )
    return result


def is_interrupt(exc: BaseException) -> bool:
    """A KeyboardInterrupt that may be a real Ctrl-C: Python's own SIGINT handler is in place (the
    CLI worker and a forked job replace it, so there one can only come from the job's code)."""
    return isinstance(exc, KeyboardInterrupt) and signal.getsignal(signal.SIGINT) is signal.default_int_handler


class time_limit:
    """Interrupt the job with JobTimeout after `seconds` (main thread only: SIGALRM).

    One interval timer serves every job: it is set when a job's limit ends before the timer goes
    off (the first job, or one with a shorter limit), and otherwise left running, each job only
    writing its deadline. When it goes off, the handler raises if the running job's deadline has
    passed, and sets it again for that deadline if not; between jobs it lets it lapse. Setting
    and clearing the timer around every job would cost two system calls a job. The SIGALRM
    handler is installed by the first job and stays until the worker stops (`restore`): it
    raises only while a limit is armed (a stray alarm between jobs is ignored), and a job that
    installs a handler of its own gets qadmin's back, and the timer set again, before the next job."""

    armed = False
    #: the next alarm is an operator's cancel (`interrupt_for_cancel`), not the time limit
    cancelling = False
    #: the limit passed while armed (set by the alarm, whether or not its exception got through)
    expired = False
    #: the handler qadmin's last replaced (restored when the worker stops)
    previous: SignalHandler = None
    installed = False
    #: when the running job's limit passes (time.monotonic)
    deadline = math.inf
    #: when the timer goes off next, as qadmin set it (inf: not set)
    fires_at = math.inf

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = seconds > 0 and threading.current_thread() is threading.main_thread()

    def __enter__(self) -> None:
        if self.active:
            if _getsignal(signal.SIGALRM) is not _expire:
                time_limit.previous = signal.signal(signal.SIGALRM, _expire)
                time_limit.installed = True
                time_limit.fires_at = math.inf  # whoever handled SIGALRM meanwhile may have used the timer
            now = time.monotonic()
            deadline = now + self.seconds
            time_limit.deadline = deadline
            time_limit.expired = time_limit.cancelling = False
            time_limit.armed = True
            # a timer that should have gone off a while ago was cleared behind qadmin's back (a
            # job's own `signal.alarm(0)`): set again, so that at most the jobs meanwhile ran unbounded
            if deadline < time_limit.fires_at or now > time_limit.fires_at + TIMER_LOST_AFTER:
                _set_timer(deadline)

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self.active:
            time_limit.armed = False
            # the JobTimeout was caught on its way (by the job, or by an event loop's callback
            # runner): the job still ran out of time, and is not a success
            if time_limit.expired and exc_type is None:
                raise JobCancelled("cancelled") if time_limit.cancelling else JobTimeout("execution expired")

    @staticmethod
    def restore() -> None:
        """Clear the timer and put back the SIGALRM handler qadmin's replaced (main thread only,
        as signal() is)."""
        if time_limit.installed and threading.current_thread() is threading.main_thread():
            if time_limit.fires_at != math.inf:
                signal.setitimer(signal.ITIMER_REAL, 0)
                time_limit.fires_at = math.inf
            signal.signal(signal.SIGALRM, time_limit.previous)
            time_limit.previous, time_limit.installed = None, False


def _set_timer(deadline: float) -> None:
    time_limit.fires_at = deadline
    signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), TIMER_FLOOR))


def _forget_timer() -> None:
    time_limit.fires_at = math.inf  # a forked child has no timer of its parent's


os.register_at_fork(after_in_child=_forget_timer)

#: the shortest time a timer is set for (setitimer takes 0 as "clear"), and how early a timer may
#: go off against time.monotonic and still count as the deadline passed (clocks' rounding)
TIMER_FLOOR = 1e-6
TIMER_SLACK = 1e-3
#: seconds past its time after which a timer that has not gone off is taken as cleared
TIMER_LOST_AFTER = 1.0


# the handler as set, without `signal.getsignal`'s conversion to an enum (an exception a call);
# typeshed has no stubs for CPython's `_signal`, whose getsignal has signal.getsignal's signature
if TYPE_CHECKING:
    _getsignal = signal.getsignal
else:
    try:
        from _signal import getsignal as _getsignal
    except ImportError:  # pragma: no cover - not CPython
        _getsignal = signal.getsignal


def _expire(*_: object) -> None:
    if signal.getitimer(signal.ITIMER_REAL)[0] == 0:
        time_limit.fires_at = math.inf  # the timer went off (or was cleared): the next deadline sets it
    if not time_limit.armed:
        return  # between jobs
    if time_limit.cancelling:
        time_limit.armed, time_limit.expired = False, True
        raise JobCancelled("cancelled by an operator")
    if time.monotonic() >= time_limit.deadline - TIMER_SLACK:
        time_limit.armed, time_limit.expired = False, True
        raise JobTimeout("execution expired")
    if time_limit.fires_at == math.inf:  # it went off for an earlier job's deadline
        _set_timer(time_limit.deadline)


def interrupt_for_cancel() -> None:
    """From another thread (the heartbeat's): interrupt the job the main thread runs within its
    time limit, as its expiry would, with JobCancelled. A job that has just finished (the limit
    disarmed) is not interrupted: its outcome stands."""
    if time_limit.armed:
        time_limit.cancelling = True
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGALRM)


def format_error(exc: BaseException) -> str:
    """`Class: message` on the first line (what error groups key on), then the traceback."""
    message = str(exc).split("\n", 1)[0]
    if isinstance(exc, SystemExit):
        code = exc.code
        status = 0 if code is None else code if isinstance(code, int) else 1
        message = f"the job called exit: status {status}" + (
            "" if code is None or isinstance(code, int) else f" ({message})"
        )
    head = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return head + "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
