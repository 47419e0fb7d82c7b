"""`loading()`: what the command line wraps around importing and opening what a command needs.

Importing SQLAlchemy, a backend and rich allocates tens of thousands of objects that live as long
as the process (classes, functions, compiled statements) and next to no garbage. The cyclic
collector, triggered every 700 allocations, walks them again and again (131 collections, one of
them full, in `qadmin jobs`; 26 and none full with it paused; some 14% of that command's CPU time).
It is paused while loading and resumed after, so a long-running command (`worker`, `web`) collects
as always once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading() -> Iterator[None]:
    if not gc.isenabled():  # nested, or paused by whoever runs us: leave it as it is
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
