"""Job classes by name: what `@job` registers and what a worker may run.

A worker looks a class name up here first, then imports it as a dotted path
(`package.module.Class` or `package.module:func`). Names that resolve to neither are not run:
the worker leaves such jobs unclaimed.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Callable, TypeVar

from qadmin.errors import JobClassNotFound

T = TypeVar("T")

_registry: dict[str, Any] = {}
_lock = threading.Lock()
_import_failures: dict[str, str] = {}


def job(name: str | None = None, *, queue: str | None = None, priority: int | None = None,
        max_attempts: int | None = None) -> Callable[[T], T]:
    """Register a callable or a class (with a `perform` method) under `name`.

        @qadmin.job("email.send", queue="email")
        def send(to, subject): ...
    """

    def register(target: T) -> T:
        key = name or f"{target.__module__}.{target.__qualname__}"  # type: ignore[attr-defined]
        with _lock:
            _registry[key] = target
        defaults = {k: v for k, v in (("queue", queue), ("priority", priority), ("max_attempts", max_attempts))
                    if v is not None}
        try:
            target.__qadmin_name__ = key  # type: ignore[attr-defined]
            target.__qadmin_defaults__ = defaults  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
        return target

    return register


def register(name: str, target: Any) -> None:
    with _lock:
        _registry[name] = target


def name_of(target: Any) -> str:
    """The name a callable or class is enqueued under."""
    if isinstance(target, str):
        return target
    registered = getattr(target, "__qadmin_name__", None)
    if registered:
        return registered
    return f"{target.__module__}.{target.__qualname__}"


def defaults_of(target: Any) -> dict[str, Any]:
    """The queue, priority and max_attempts a job was registered with; a name finds its
    registration (a job enqueued by name goes where `@job(name, queue=...)` said)."""
    if isinstance(target, str):
        target = _registry.get(target)
    return dict(getattr(target, "__qadmin_defaults__", {}) or {})


def resolve(name: str) -> Any:
    """The callable or class for a job name; JobClassNotFound with the reason otherwise."""
    with _lock:
        if name in _registry:
            return _registry[name]
    if name in _import_failures:
        raise JobClassNotFound(_import_failures[name])
    target = _import(name)
    with _lock:
        _registry[name] = target
    return target


def can_resolve(name: str) -> bool:
    try:
        resolve(name)
    except JobClassNotFound:
        return False
    return True


def _import(name: str) -> Any:
    if ":" in name:
        module_name, _, attr_path = name.partition(":")
    elif "." in name:
        module_name, _, attr_path = name.rpartition(".")
    else:
        reason = f"job class {name!r} is not registered and is not an importable dotted path"
        _import_failures[name] = reason
        raise JobClassNotFound(reason)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr_path.split("."):
            target = getattr(target, part)
    except Exception as exc:  # noqa: BLE001 - any import-time error means "cannot run it here"
        reason = f"cannot import job class {name!r}: {type(exc).__name__}: {exc}"
        _import_failures[name] = reason
        raise JobClassNotFound(reason) from exc
    return target


def forget_failures() -> None:
    """Let names that failed to import be tried again (after a code reload)."""
    _import_failures.clear()
