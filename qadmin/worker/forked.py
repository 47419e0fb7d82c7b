"""`--fork`: each job's code runs in a child process of its own, which reports its outcome
through a pipe and never touches the backend; a child over its time limit is killed."""

from __future__ import annotations

import os
import select
import signal
import threading
import time
import traceback

from qadmin.job import Job
from qadmin.waiting import Waiting
from qadmin.worker.running import CANCELLED_ERROR, JobRunner, timeout_error

#: the verdict a forked job's process sends before it leaves
FORK_OK = b"+"
FORK_FAILED = b"-"
#: then the seconds to wait: the job waits for an external service (`qadmin.Waiting`)
FORK_WAITING = b"~"


def run_forked(runner: JobRunner, job: Job, limit: float, *, cancel: threading.Event | None = None) -> str | None:
    """`runner.run(job)` in a child process, killed after `limit` seconds, or once `cancel` is
    set (an operator cancelled the job); None on success, else the error text. The child's kept
    return value comes back in `runner.last_result`."""
    runner.last_result = None
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: run the job and report through the pipe, never touch the backend
        os.close(read_fd)
        code = 0
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            error = runner.run(job, limit)
            # an explicit verdict: a child that leaves without one (os._exit) did not finish
            if error is None and runner.last_waiting is not None:
                _write_all(write_fd, FORK_WAITING + str(runner.last_waiting.timeout).encode())
            elif error is None:  # the verdict, then what the job returned (`result_text`'s JSON), if anything
                _write_all(write_fd, FORK_OK + (runner.last_result or "").encode("utf-8"))
            else:
                _write_all(write_fd, FORK_FAILED + error.encode("utf-8", "replace"))
        except BaseException:  # noqa: BLE001 - report anything, then leave without cleanup
            _write_all(write_fd, FORK_FAILED + traceback.format_exc().encode("utf-8", "replace"))
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    runner.last_waiting = None  # the child's verdict says, below
    deadline = time.monotonic() + limit
    chunks: list[bytes] = []
    status = None
    open_pipe = True
    # drain the pipe while waiting: a child whose report fills the pipe buffer would
    # otherwise block on write and never exit
    while status is None:
        if open_pipe:
            ready, _, _ = select.select([read_fd], [], [], 0.05)
            if ready:
                data = os.read(read_fd, 65536)
                if data:
                    chunks.append(data)
                    continue
                open_pipe = False
        else:
            time.sleep(0.005)
        waited, st = os.waitpid(pid, os.WNOHANG)
        if waited:
            status = st
            break
        if cancel is not None and cancel.is_set():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_fd)
            return CANCELLED_ERROR
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_fd)
            return timeout_error(job, runner.max_run_time)
    while open_pipe:
        data = os.read(read_fd, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(read_fd)
    report = b"".join(chunks)
    if report.startswith(FORK_WAITING) and os.WIFEXITED(status):
        runner.last_waiting = Waiting(float(report[len(FORK_WAITING) :]))
        return None
    error = _verdict(report, status)
    if error is None and len(report) > len(FORK_OK):
        runner.last_result = report[len(FORK_OK) :].decode("utf-8", "replace")
    return error


def _verdict(report: bytes, status: int) -> str | None:
    """What the child's report and exit status say: None on success, else the error text."""
    if os.WIFSIGNALED(status):
        return f"DirtyExit: Child process received unhandled signal {os.WTERMSIG(status)}\n"
    if report.startswith(FORK_FAILED):
        return report[len(FORK_FAILED) :].decode("utf-8", "replace")
    # the child exits 0 only after its whole report is written
    if report.startswith(FORK_OK) and os.WEXITSTATUS(status) == 0:
        return None
    return (
        f"DirtyExit: the job's process exited with status {os.WEXITSTATUS(status)} before the job "
        "finished (os._exit?)\n"
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
