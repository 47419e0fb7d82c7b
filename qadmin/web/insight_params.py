"""The insight pages' and API's request parameters: a range (or window), a metrics sort, a queue
or class name. Wrong values are a UsageError (400 with the reason) on both faces."""

from __future__ import annotations

from qadmin.errors import UsageError
from qadmin.insight import METRIC_SORTS, RANGES
from qadmin.web.actions import check_text

DEFAULT_RANGE = "24h"
DEFAULT_SORT = "-runs"


def parse_range(text: str | None, what: str = "range") -> str:
    if text in (None, ""):
        return DEFAULT_RANGE
    if text not in RANGES:
        raise UsageError(f"unknown {what} {str(text)[:40]!r}; expected one of: {', '.join(RANGES)}")
    return str(text)


def parse_sort(text: str | None) -> str:
    if text in (None, ""):
        return DEFAULT_SORT
    if str(text).removeprefix("-") not in METRIC_SORTS:
        choices = ", ".join(METRIC_SORTS)
        raise UsageError(f"unknown sort {str(text)[:40]!r}; expected one of: {choices} (- before one: descending)")
    return str(text)


def parse_name(text: str | None, what: str) -> str | None:
    """A queue or class name: None when not given. NUL bytes and lone surrogates are no name any
    backend stores, and an error rather than an empty answer."""
    if text in (None, ""):
        return None
    check_text(text, what)
    if "\x00" in str(text):
        raise UsageError(f"{what}: a NUL byte is not allowed")
    return str(text)
