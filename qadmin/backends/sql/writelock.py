"""SQLite: qadmin's writers queue for a lock file before they take SQLite's own write lock.

SQLite tells a waiting writer that the write lock came free only when it tries again: its busy
handler sleeps 1, 2, 5, 10… ms between tries (qadmin's `begin_immediate` polls every 0.1-1 ms
instead). Worse, two worker processes that take turns that closely keep the WAL from ever being
restarted: a writer starts the WAL over only if it begins once a checkpoint has copied every
frame back, and one worker was always beginning while the other checkpointed. The WAL grew
without end (4 MB with one worker, 184 MB after 30,000 jobs with two), every commit ran another
checkpoint with its two fdatasyncs, and two workers were slower than one.

So qadmin holds a `flock` on `<database>-qadmin-write.lock` from before `BEGIN IMMEDIATE` until
after `COMMIT`, which includes SQLite's automatic checkpoint: no qadmin writer begins while another
one checkpoints. A waiter asks for it without blocking, in short steps (50 µs, growing to 1 ms):
a blocking `flock` cannot time out, and a holder that is stopped (SIGSTOP, Ctrl-Z, a debugger, a
frozen cgroup) inside its transaction would freeze every other writer for good. After the bound
(SQLite's busy timeout, which its own lock would have given too) the writer fails with
`LockTimeout`, naming the holder's pid from /proc/locks.

Nothing depends on it for correctness: SQLite's write lock still decides who writes, and writers
that do not take this lock (delayed_job, other tools, a qadmin that could not open or lock the
file) are waited for by the busy handling as before. The kernel drops a `flock` with the last
descriptor of its holder, so a killed process never leaves it held. The file is never deleted:
a process waiting on the old one would then hold a different lock than newcomers.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from qadmin.errors import BackendUnavailable

SUFFIX = "-qadmin-write.lock"


class LockTimeout(BackendUnavailable):
    """Another process held the SQLite write lock past the bound: a worker waits and tries again,
    a command fails in one line naming it."""


def holders(fd: int) -> list[int]:
    """The pids holding a lock on the file open as `fd`, other than this process (Linux's
    /proc/locks; empty where it cannot be read)."""
    try:
        st = os.fstat(fd)
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    out: list[int] = []
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234 0 EOF"; waiters have "->" after the number
        if len(fields) >= 6 and fields[1] != "->" and fields[5] == device and fields[4].isdigit():
            pid = int(fields[4])
            if pid != os.getpid() and pid not in out:
                out.append(pid)
    return out


def describe(pid: int) -> str:
    """`pid 123 (qadmin worker, stopped)`: what a process is, as far as /proc says."""
    words: list[str] = []
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
        # the program, never its arguments (a URL may carry a password)
        program = [
            os.path.basename(a)
            for a in argv[:3]
            if (not a.startswith("-") or a == "-m") and "://" not in a and not any(c.isspace() for c in a)
        ]
        if program:
            words.append(" ".join(program)[:60])
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rpartition(")")[2].split()[0]
        if state in ("T", "t"):
            words.append("stopped")
    except OSError:
        pass
    return f"pid {pid}" + (f" ({', '.join(words)})" if words else "")


class WriteLock:
    """One database file's lock in this process: a thread lock (a `flock` belongs to the open
    file, which the process's threads share) and the `flock`, taken by the outermost holder
    only, so that a thread already holding it (a write begun inside a write) never waits for
    itself; SQLite's busy timeout bounds that case as it did before."""

    def __init__(self, path: str, database: str = "") -> None:
        self.path = path
        self.database = database or path.removesuffix(SUFFIX)
        self._thread = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._off = False

    def _file(self) -> int | None:
        if self._fd is None and not self._off:
            try:
                # read-only is enough for a flock (and lets another user's qadmin share the
                # file); not inherited by a program this process executes (PEP 446)
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o666)
            except OSError:
                self._off = True  # say a read-only directory: SQLite's own locking alone
        return self._fd

    def _take(self, fd: int, timeout: float) -> None:
        """`flock` it within `timeout` seconds, or raise LockTimeout naming the holder."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        deadline = time.monotonic() + timeout
        pause = 0.00005
        while True:
            time.sleep(pause)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    who = ", ".join(describe(pid) for pid in holders(fd)) or "another process"
                    raise LockTimeout(
                        f"{self.database}: the SQLite write lock has been held by {who} for "
                        f"over {timeout:g} s (a stopped or hung process?); "
                        f"reads still work"
                    ) from None
            pause = min(pause * 1.5, 0.001)

    @contextmanager
    def held(self, timeout: float = 60.0) -> Iterator[None]:
        with self._thread:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            fd = self._file()
            if fd is not None:
                try:
                    self._take(fd, timeout)
                except LockTimeout:
                    raise
                except OSError:  # a file system without flock
                    self._off = True
                    self.close()
                    fd = None
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_locks: dict[str, WriteLock] = {}
_registry = threading.Lock()


def for_file(database: str) -> WriteLock:
    """This process's lock of the SQLite file `database`, whichever engine writes it."""
    lock = _locks.get(database)
    if lock is None:
        with _registry:
            lock = _locks.setdefault(database, WriteLock(os.path.abspath(database) + SUFFIX, database))
    return lock


def _forget_in_child() -> None:
    """A forked child shares the open files of its parent, and with them the parent's `flock`:
    it opens its own. Its copies of the parent's thread locks may be held by threads that do
    not exist in it: it starts afresh."""
    global _registry
    for lock in _locks.values():
        try:
            lock.close()
        except OSError:
            pass
    _locks.clear()
    _registry = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
