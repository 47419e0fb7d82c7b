"""Worker processes: `--concurrency N` children under one supervisor.

The supervisor forks each child before any backend is opened (a database connection must not
cross a fork), restarts a child that dies, recycles one that asks for it (`--max-jobs-per-child`,
`--max-memory`), restarts all of them when source files change (`--reload`), and passes SIGTERM
and SIGINT on so that each child finishes its current job first.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from qadmin.errors import ConfigError
from qadmin.worker import EXIT_CANNOT_START, EXIT_DONE, EXIT_RECYCLE

log = logging.getLogger("qadmin.supervisor")

#: seconds between checks of children and source files
POLL = 0.2
#: a child that dies sooner than this after starting is restarted only after a pause
FLAP_SECONDS = 2.0
#: the status of a child whose worker finished (EXIT_DONE): a plain 0 is a process that left
#: without its worker finishing, e.g. a job calling os._exit(0), and is restarted
CHILD_DONE = 5


def import_modules(names: Sequence[str], *, find_only: bool = False) -> None:
    """Import the application's job modules so that their `@job` registrations exist.

    With `find_only`, only check that each can be found (the importing happens elsewhere)."""
    for name in names:
        try:
            if find_only:
                if importlib.util.find_spec(name) is None:
                    raise ModuleNotFoundError(f"No module named {name!r}")
            else:
                importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any import-time error is the user's module
            raise ConfigError(f"cannot import job module {name!r}: {type(exc).__name__}: {exc}") from exc


class Supervisor:
    def __init__(
        self,
        run_child: Callable[[int], int],
        concurrency: int,
        *,
        burst: bool = False,
        reload: bool = False,
        watch: Sequence[Path] = (),
    ) -> None:
        self.run_child = run_child
        self.concurrency = concurrency
        self.burst = burst
        self.reload = reload
        self.watch = list(watch)
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started)
        self.stopping = False
        self._mtimes: dict[Path, float] = {}
        self._reloading: set[int] = set()

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = self.run_child(slot)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - log, then leave the child without cleanup
                log.exception("worker process crashed")
                code = 1
            finally:
                logging.shutdown()
                os._exit(CHILD_DONE if code == EXIT_DONE else code)
        self.children[pid] = (slot, time.monotonic())
        log.info("started worker process %d (slot %d)", pid, slot)

    def _signal_children(self, signum: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("stopping: waiting for workers to finish their current jobs")
        self.stopping = True
        self._signal_children(signal.SIGTERM)

    def _changed_sources(self) -> bool:
        changed = False
        for path in self._source_files():
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if self._mtimes.get(path, mtime) != mtime:
                changed = True
            self._mtimes[path] = mtime
        return changed

    def _source_files(self) -> list[Path]:
        files: list[Path] = []
        for root in self.watch:
            if root.is_file():
                files.append(root)
            elif root.is_dir():
                files.extend(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
        return files

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if self.reload:
            self._changed_sources()
        for slot in range(self.concurrency):
            self._spawn(slot)
        worst = 0
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(POLL)
                if self.reload and not self.stopping and self._changed_sources():
                    log.info("source files changed: restarting workers")
                    self._reloading.update(self.children)
                    self._signal_children(signal.SIGTERM)
                continue
            slot, started = self.children.pop(pid)
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
            if self.stopping:
                continue
            if code == CHILD_DONE and pid not in self._reloading:
                continue
            if code == EXIT_CANNOT_START:  # restarting it would fail the same way, forever
                log.error("worker process %d cannot work (see above); not restarting it", pid)
                worst = 1
                continue
            self._reloading.discard(pid)
            if code not in (CHILD_DONE, EXIT_RECYCLE):
                why = " before its worker finished (a job's os._exit?)" if code == EXIT_DONE else ""
                log.warning("worker process %d exited with status %d%s; restarting it", pid, code, why)
                worst = max(worst, 1)
                if time.monotonic() - started < FLAP_SECONDS:
                    time.sleep(FLAP_SECONDS)
            self._spawn(slot)
        # stopped on request: the children it restarted were the recovery, not a failure
        return 0 if self.stopping else worst


def default_watch_paths() -> list[Path]:
    """The working directory's sources and qadmin's own: what `--reload` watches."""
    return [Path.cwd(), Path(__file__).parent]


def write_pidfile(path: str) -> Callable[[], None]:
    target = Path(path)
    target.write_text(f"{os.getpid()}\n")

    def remove() -> None:
        try:
            if target.read_text().strip() == str(os.getpid()):
                target.unlink()
        except OSError:
            pass

    return remove
