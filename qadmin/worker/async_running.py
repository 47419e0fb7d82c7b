"""An `async def` job's code on the async pool's event loop (`--pool async`), beside the other
jobs of the loop: delayed_job's hooks (awaited when they are `async def`), the application's
events, its time limit (an asyncio timeout: the job's task is cancelled at the limit) and an
operator's cancel (the task cancelled while the job's body runs).

What `JobRunner.run` does for a job in its own process, with one difference the loop imposes: a
time limit or a cancel reaches the job at its next `await`, so code that blocks without awaiting
is interrupted only when it awaits again (and holds up every job of the loop meanwhile)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from qadmin import events, registry
from qadmin.job import Job, result_text
from qadmin.registry import JobTarget
from qadmin.waiting import Waiting
from qadmin.worker.running import (
    CANCELLED_ERROR,
    JobCancelled,
    JobRunner,
    JobTimeout,
    call_job,
    format_error,
    hook_failed,
    instance_for,
    is_interrupt,
    plain_result,
    timeout_error,
)


@dataclass(frozen=True)
class Outcome:
    """How one run ended: `error` None is a success (with `result`, as kept), unless `waiting`."""

    error: str | None = None
    result: str | None = None
    waiting: Waiting | None = None
    cancelled: bool = False


class Interrupt:
    """An operator's cancel of one async job. `request` comes from the pool's look at the
    backend; it cancels the job's task only while the job's body runs: a cancel seen before (in a
    `before` hook) stops the body as it starts, and one seen after it (in a `success` hook) is
    too late — the job is done, and its outcome stands."""

    def __init__(self) -> None:
        self.requested = False
        self._task: asyncio.Task[Any] | None = None

    def request(self) -> None:
        self.requested = True
        if self._task is not None:
            self._task.cancel()

    @contextmanager
    def body(self) -> Iterator[None]:
        if self.requested:
            raise JobCancelled("cancelled by an operator")
        self._task = asyncio.current_task()
        try:
            yield
        finally:
            self._task = None


async def run_async(runner: JobRunner, job: Job, limit: float, interrupt: Interrupt) -> Outcome:
    """Run an `async def` job to its end, interrupted after `limit` seconds or at `interrupt`."""
    instance: Any = None
    try:
        target = registry.resolve(job.class_name, runner.imports)
        instance = instance_for(target)
        await _hook(runner, job, "before", instance)
        events.emit("before_perform", job)
        returned = await _body(target, instance, job, limit, interrupt)
        result = None if returned is None else result_text(returned)
        await _hook(runner, job, "success", instance)
        events.emit("after_perform", job)
        return Outcome(result=result)
    except JobTimeout as exc:
        await _hook(runner, job, "error", instance, exc)
        return Outcome(error=timeout_error(job, runner.max_run_time))
    except JobCancelled:
        return Outcome(error=CANCELLED_ERROR, cancelled=True)
    except Waiting as waiting:  # neither a success nor a failure: no hooks until it is reported back
        return Outcome(waiting=waiting)
    except asyncio.CancelledError:  # the loop itself is going away: not the job's outcome
        raise
    except BaseException as exc:  # noqa: BLE001 - a job's exception is data, never a worker crash
        if is_interrupt(exc):
            raise
        await _hook(runner, job, "error", instance, exc)
        return Outcome(error=format_error(exc))
    finally:
        await _hook(runner, job, "after", instance)


async def _body(target: JobTarget, instance: Any, job: Job, limit: float, interrupt: Interrupt) -> object:
    with interrupt.body():
        try:
            async with asyncio.timeout(limit) as deadline:
                returned = call_job(target, instance, job)
                returned = await returned if inspect.isawaitable(returned) else plain_result(returned)
        except TimeoutError:
            if deadline.expired():
                raise JobTimeout("execution expired") from None
            raise  # the job's own TimeoutError: its failure
        except asyncio.CancelledError:
            if not interrupt.requested:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise JobCancelled("cancelled by an operator") from None
        # the job caught the cancellation on its way and returned: it still ran out of time, or was
        # cancelled, and is not a success (as the time limit of a job in its own process says)
        if deadline.expired():
            raise JobTimeout("execution expired")
        if interrupt.requested:
            raise JobCancelled("cancelled by an operator")
        return returned


async def _hook(runner: JobRunner, job: Job, name: str, instance: Any = None, *extra: object) -> None:
    """`JobRunner.hook` on the loop: an `async def` hook is awaited there."""
    hook = runner.hook_for(job, name, instance)
    if hook is None:
        return
    try:
        returned = hook(job, *extra)
        if inspect.isawaitable(returned):
            await returned
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 - a failing hook is logged, the job's outcome stands
        if is_interrupt(exc):
            raise
        hook_failed(job, name, exc)
