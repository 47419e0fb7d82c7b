"""SQLite: qadmin's writers queue for a lock file before they take SQLite's own write lock.

SQLite tells a waiting writer that the write lock came free only when it tries again: its busy
handler sleeps 1, 2, 5, 10… ms between tries (qadmin's `begin_immediate` polls every 0.1-1 ms
instead). Worse, two worker processes that take turns that closely keep the WAL from ever being
restarted: a writer starts the WAL over only if it begins once a checkpoint has copied every
frame back, and one worker was always beginning while the other checkpointed. The WAL grew
without end (4 MB with one worker, 184 MB after 30,000 jobs with two), every commit ran another
checkpoint with its two fdatasyncs, and two workers were slower than one.

So qadmin holds a `flock` on `<database>-qadmin-write.lock` from before `BEGIN IMMEDIATE` until
after `COMMIT`, which includes SQLite's automatic checkpoint: a waiting process sleeps in the
kernel until the holder lets go, and no qadmin writer begins while another one checkpoints.

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
from contextlib import contextmanager
from typing import Iterator

SUFFIX = "-qadmin-write.lock"


class WriteLock:
    """One database file's lock in this process: a thread lock (a `flock` belongs to the open
    file, which the process's threads share) and the `flock`, taken by the outermost holder
    only, so that a thread already holding it (a write begun inside a write) never waits for
    itself; SQLite's busy timeout bounds that case as it did before."""

    def __init__(self, path: str) -> None:
        self.path = path
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

    @contextmanager
    def held(self) -> Iterator[None]:
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
                    fcntl.flock(fd, fcntl.LOCK_EX)
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
            lock = _locks.setdefault(database, WriteLock(os.path.abspath(database) + SUFFIX))
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
