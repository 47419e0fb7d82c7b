"""Application events: `before_enqueue`, `after_enqueue`, `before_perform`, `after_perform`,
`on_failure`. Listeners are plain callables; one that raises is logged, never fatal."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar, overload

log = logging.getLogger("qadmin.events")

NAMES = ("before_enqueue", "after_enqueue", "before_perform", "after_perform", "on_failure")
#: listeners are called with the event's arguments; what they return is ignored
Listener = Callable[..., object]
ListenerT = TypeVar("ListenerT", bound=Listener)
_listeners: dict[str, list[Listener]] = {name: [] for name in NAMES}


@overload
def on(name: str) -> Callable[[ListenerT], ListenerT]: ...


@overload
def on(name: str, listener: ListenerT) -> ListenerT: ...


def on(name: str, listener: ListenerT | None = None) -> ListenerT | Callable[[ListenerT], ListenerT]:
    """Add a listener (`events.on("on_failure", fn)`, or as a decorator `@events.on("on_failure")`)."""
    if name not in _listeners:
        raise ValueError(f"unknown event {name!r}; known: {', '.join(NAMES)}")
    if listener is None:

        def decorate(fn: ListenerT) -> ListenerT:
            _listeners[name].append(fn)
            return fn

        return decorate
    _listeners[name].append(listener)
    return listener


def off(name: str, listener: Listener) -> None:
    if listener in _listeners.get(name, []):
        _listeners[name].remove(listener)


def listening(name: str) -> bool:
    """Whether `emit(name, ...)` would call anyone (so a bulk caller can skip building arguments)."""
    return bool(_listeners[name])


def emit(name: str, *args: object) -> None:
    for listener in list(_listeners[name]):
        try:
            listener(*args)
        except (Exception, SystemExit):  # noqa: BLE001 - a listener must not break enqueue or stop a worker
            log.exception("listener %r for %s failed", listener, name)
