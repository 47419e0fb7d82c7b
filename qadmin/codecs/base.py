"""What every codec returns. Decoding never executes or instantiates anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Decoded:
    """A payload decoded as far as its format allows.

    `error` set means the payload is undecodable: `class_name` is then a best guess (or
    "(undecodable)") and the caller keeps the raw text for display.
    """

    class_name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    format: str = "qadmin"
    #: payload fields beyond class/args/kwargs, kept verbatim (php-resque id, qadmin unique, ...)
    meta: dict[str, Any] = field(default_factory=dict)
    #: a readable structure of the whole payload for detail views (Ruby/PHP objects)
    display: Any = None
    error: str | None = None
    #: True when a qadmin worker may run it (a qadmin/Resque JSON payload, not Ruby or PHP)
    runnable: bool = True


UNDECODABLE = "(undecodable)"


def undecodable(format: str, reason: str, class_guess: str | None = None) -> Decoded:
    return Decoded(class_name=class_guess or UNDECODABLE, format=format, error=reason, runnable=False)
