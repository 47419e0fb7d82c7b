"""Text that reaches a person: job data made safe to show, counts that agree with their noun.

Job data comes from anyone who can write to a queue, so every face (CLI, TUI, web, the worker's
log) shows it through `visible`: a terminal must not obey an ESC sequence hidden in a class name,
and a page must not be reordered by a bidirectional override.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: C0 controls, DEL and C1 controls (ESC, CSI...), the marks and overrides that reorder what is
#: read, the line and paragraph separators, and lone surrogates, which nothing can encode
_HIDDEN = "\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_HIDDEN_IN_LINE = re.compile(f"[{_HIDDEN}\n\t]")
_HIDDEN_IN_TEXT = re.compile(f"[{_HIDDEN}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def visible(value: object, lines: bool = False) -> str:
    """`value` as text with every unprintable character written as its escape (`\\x1b`,
    `\\u202e`). With `lines`, line feeds and tabs stay (a traceback, a raw payload); carriage
    returns never do, as they let a line overwrite itself."""
    text = value if isinstance(value, str) else str(value)
    pattern = _HIDDEN_IN_TEXT if lines else _HIDDEN_IN_LINE
    return pattern.sub(_escape, text) if pattern.search(text) else text


def visible_json(text: str) -> str:
    """JSON text with what `visible` hides written as `\\u` escapes: the same JSON value,
    nothing a terminal acts on (json.dumps escapes the C0 controls itself)."""
    return _HIDDEN_IN_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def holds_lone_surrogate(value: object) -> bool:
    """Whether a string in `value` (or in its lists, tuples, sets and mappings, keys included)
    holds a lone surrogate: what bytes that were not UTF-8 become in Python, and what JSON may
    spell as `"\\ud800"`. It is no text: no backend stores it as UTF-8 and no terminal prints it."""
    if isinstance(value, str):
        return not value.isascii() and _SURROGATE.search(value) is not None
    if isinstance(value, Mapping):
        return any(holds_lone_surrogate(k) or holds_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(holds_lone_surrogate(item) for item in value)
    return False


def plural(count: int, word: str, words: str | None = None) -> str:
    """`1 job`, `2 jobs`: the count and its noun, which agree."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def runtime_text(seconds: float | None) -> str:
    """How long a run took, as every face shows it: 4ms, 1.50s, 2m 05s, 1h 02m ('' unknown)."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
