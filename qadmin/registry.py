"""Job classes by name: what `@job` registers and what a worker may run.

A worker runs only what it was given: a name registered here (`@job`, `register`), or a class or
function defined in one of the modules or packages it was told to import (`--import`), named by
its dotted path (`package.module.Class` or `package.module:func`). Any other name is never
imported, so a payload cannot make a worker run `os.system`: such jobs stay unclaimed.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from qadmin.errors import JobClassNotFound

#: what a job name stands for: a class with a `perform` method, or a function
JobTarget = Callable[..., object]
T = TypeVar("T", bound=JobTarget)

_registry: dict[str, JobTarget] = {}
_lock = threading.Lock()
#: dotted paths imported for a worker (apart from the registry: importing one registers nothing)
_imported: dict[str, JobTarget] = {}
#: (name, modules) already found allowed: a worker resolves its job's class twice per job
_allowed: dict[tuple[str, tuple[str, ...]], JobTarget] = {}
_import_failures: dict[str, str] = {}


def job(
    name: str | None = None, *, queue: str | None = None, priority: int | None = None, max_attempts: int | None = None
) -> Callable[[T], T]:
    """Register a callable or a class (with a `perform` method) under `name`.

    @qadmin.job("email.send", queue="email")
    def send(to, subject): ...
    """

    def register(target: T) -> T:
        key = name or f"{target.__module__}.{target.__qualname__}"
        with _lock:
            _registry[key] = target
        defaults = {
            k: v for k, v in (("queue", queue), ("priority", priority), ("max_attempts", max_attempts)) if v is not None
        }
        # marks on the job itself, which the Callable type does not declare; a target that
        # takes no attributes (a builtin) simply goes unmarked
        try:
            target.__qadmin_name__ = key  # type: ignore[attr-defined]
            target.__qadmin_defaults__ = defaults  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
        return target

    return register


def register(name: str, target: JobTarget) -> None:
    with _lock:
        _registry[name] = unwrapped(target)


def unwrapped(target: Any) -> Any:
    """The function a `@qadmin.job` function object stands for (`qadmin.client.JobFunction`), which
    the worker runs; any other target as it is."""
    inner = getattr(target, "__qadmin_target__", None)
    return inner if inspect.isfunction(inner) else target


def name_of(target: str | JobTarget) -> str:
    """The name a callable or class is enqueued under."""
    if isinstance(target, str):
        return target
    registered: str | None = getattr(target, "__qadmin_name__", None)
    if registered:
        return registered
    return f"{target.__module__}.{target.__qualname__}"


def defaults_of(target: str | JobTarget | None) -> dict[str, Any]:
    """The queue, priority and max_attempts a job was registered with; a name finds its
    registration (a job enqueued by name goes where `@job(name, queue=...)` said)."""
    if isinstance(target, str):
        target = _registry.get(target)
    return dict(getattr(target, "__qadmin_defaults__", {}) or {})


def resolve(name: str, modules: Sequence[str] = ()) -> JobTarget:
    """The callable or class for a job name: a registered one, or one defined in `modules` (or
    in their submodules); JobClassNotFound with the reason otherwise."""
    with _lock:
        if name in _registry:
            return _registry[name]
    key = (name, modules if isinstance(modules, tuple) else tuple(modules))
    target = _allowed.get(key)
    if target is not None:
        return target
    module_name, attr_path = _split(name)
    if not any(_within(module_name, m) for m in modules):
        given = ", ".join(modules) if modules else "none"
        raise JobClassNotFound(
            f"job class {name!r} is not registered and not in a module given with --import ({given})"
        )
    if name in _import_failures:
        raise JobClassNotFound(_import_failures[name])
    target = _imported.get(name)
    if target is None:
        target = _import(name, module_name, attr_path)
        _imported[name] = target
    # `pkg.jobs.os.system` walks into whatever `pkg.jobs` imported: only what it defines runs
    if not any(_within(getattr(target, "__module__", None) or "", m) for m in modules):
        raise JobClassNotFound(
            f"{name!r} is not defined in a module given with --import "
            f"(it comes from {getattr(target, '__module__', None) or 'nowhere'!s})"
        )
    _allowed[key] = target
    return target


def can_resolve(name: str, modules: Sequence[str] = ()) -> bool:
    try:
        resolve(name, modules)
    except JobClassNotFound:
        return False
    return True


def _within(module_name: str, allowed: str) -> bool:
    return module_name == allowed or module_name.startswith(allowed + ".")


def _split(name: str) -> tuple[str, str]:
    if ":" in name:
        module_name, _, attr_path = name.partition(":")
    else:
        module_name, _, attr_path = name.rpartition(".")
    return module_name, attr_path


def _import(name: str, module_name: str, attr_path: str) -> JobTarget:
    if not module_name or not attr_path:
        reason = f"job class {name!r} is not registered and is not a dotted path"
        _import_failures[name] = reason
        raise JobClassNotFound(reason)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr_path.split("."):
            if part.startswith("_"):  # no dunder walks (`__globals__`, `__builtins__`) nor privates
                raise AttributeError(f"{part!r} is private")
            target = getattr(target, part)
    except Exception as exc:  # noqa: BLE001 - any import-time error means "cannot run it here"
        reason = f"cannot import job class {name!r}: {type(exc).__name__}: {exc}"
        _import_failures[name] = reason
        raise JobClassNotFound(reason) from exc
    target = unwrapped(target)
    if not (inspect.isclass(target) or inspect.isfunction(target)):
        reason = f"{name!r} is not a job class or function ({type(target).__name__})"
        _import_failures[name] = reason
        raise JobClassNotFound(reason)
    return target


def forget_failures() -> None:
    """Let names that failed to import be tried again (after a code reload)."""
    _import_failures.clear()
    _imported.clear()
    _allowed.clear()
