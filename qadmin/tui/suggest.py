"""Completion for the boxes that take a queue or a class name (right arrow accepts).

The names come from the backend through ops (`Ops.queue_names`, `Ops.class_names`) and from the
jobs the console has listed; the app keeps them for the backend in use.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.suggester import SuggestFromList


def class_suggester(classes: Iterable[str]) -> SuggestFromList:
    """Dotted names first, then their last components alone: `Send` completes to `SendEmail`
    (the name the tables show), `qadmin.ex` to the full name."""
    full = sorted({name for name in classes if name})
    # the last part of a Python (.), Ruby (::) or PHP (\\) name
    short = {name.replace("::", ".").rsplit(".", 1)[-1].rsplit("\\", 1)[-1] for name in full}
    return SuggestFromList(full + sorted(short - set(full)), case_sensitive=False)


def queue_suggester(queues: Iterable[str]) -> SuggestFromList:
    return SuggestFromList(sorted({name for name in queues if name}), case_sensitive=False)
