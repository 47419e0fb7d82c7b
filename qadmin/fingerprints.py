"""Error fingerprints: failures that are one bug, whatever ids, addresses or values they name.

A failure's fingerprint is its exception class plus its message with the parts that differ from
one occurrence of a bug to the next replaced by placeholders. `normalise` applies these rules in
this order, each to what the rules before it left (docs/errors.md has examples):

1. UUIDs (`8-4-4-4-12` hex digits) -> `<uuid>`
2. URLs (`scheme://…` up to a space or a quote) -> `<url>` — before e-mail addresses, since a URL
   may hold `user@host`
3. e-mail addresses -> `<email>`
4. file paths: POSIX (`/a/b`, `./a`, `../a`, `~/a`, starting a word) and Windows (`C:\\a`,
   `\\\\server\\share`) -> `<path>`; a path stops at a space, a quote, `:` (so `file.rb:10`
   keeps its line number as a number), `,`, `;` or a bracket
5. quoted values (`'…'`, `"…"`, `` `…` `` and Ruby's `` `…' ``) -> the quotes around `<…>`. A
   quote must start and end a word (`can't … won't` is no quoted value). A quote holding only a
   placeholder is kept as it is (`'<path>'`)
6. hex: `0x…` and runs of 8 or more hex digits holding a digit and a letter a-f -> `<hex>`
7. IPv4 addresses (`10.0.0.1`) and full IPv6 ones -> `<ip>`
8. numbers: integers, decimals, signed (`-5` after a space or a bracket), exponents -> `<n>`

What is NOT replaced, so that unrelated failures stay apart:

* the exception class is never normalised: `Http404` and `Http500` are two classes;
* a number glued to letters or `_` stays: `Http404`, `utf8`, `S3Error`, `customer0`, `user_42`,
  `30s` (quote such values, or they split groups);
* a dotted run of three or more numbers that is no IPv4 address (a version: `1.2.3`,
  `2.7.18`) stays, and so does a `v`-prefixed one (`v2`, `v1.2`): a failure that names another
  version is often another bug. Two-part numbers (`3.12`) are decimals and merge;
* words, punctuation and the order of the parts stay as they are.

`fingerprint` takes the first line of a job's last error (what the exact grouping used), splits
off the exception class (`exception_of`) and gives its `Fingerprint`, whose `id` is a short stable hash
for URLs and the command line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

#: the key of failed jobs that recorded no error at all
NO_ERROR = "(no error recorded)"
#: a first line is normalised up to this many characters (a longer tail is kept as it is, cut)
MAX_NORMALISED = 2000

_HEX = "[0-9a-fA-F]"
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("<uuid>", re.compile(rf"(?<![\w-]){_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?![\w-])")),
    ("<url>", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"`<>]+")),
    ("<email>", re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    (
        "<path>",
        re.compile(
            r"(?:(?<![^\s'\"`(\[=,])(?:~|\.{1,2})?/[^\s'\"`:,;()\[\]<>]+"
            r"|(?<![\w\\])[a-zA-Z]:\\[^\s'\"`:,;()\[\]<>]*"
            r"|(?<![\w\\])\\\\[\w.$-]+(?:\\[^\s'\"`:,;()\[\]<>]*)?)"
        ),
    ),
    ("quoted", re.compile(r"(?<!\w)(?:'([^'\n]*)'|\"([^\"\n]*)\"|`([^`'\n]*)[`'])(?!\w)")),
    (
        "<hex>",
        re.compile(r"(?<!\w)(?:0[xX][0-9a-fA-F]+|(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,})(?!\w)"),
    ),
    (
        "<ip>",
        re.compile(
            r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w]|\.\d)"
            r"|(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])"
        ),
    ),
    ("<n>", re.compile(r"(?<![\w.])(?<!\d\.)(?:(?<![\w-])[-+])?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\w|\.\d)")),
)
_PLACEHOLDER = re.compile(r"<(?:uuid|url|email|path|hex|ip|n|…)>")


def _quoted(match: re.Match[str]) -> str:
    text = match.group(0)
    inner = next(g for g in match.groups() if g is not None)
    if _PLACEHOLDER.fullmatch(inner):
        return text
    return f"{text[0]}<…>{text[-1]}"


def normalise(message: str) -> str:
    """The message with the rules of the module docstring applied, in their order."""
    head, tail = message[:MAX_NORMALISED], message[MAX_NORMALISED:]
    for placeholder, pattern in _RULES:
        head = pattern.sub(_quoted if placeholder == "quoted" else placeholder, head)
    return head + ("…" if tail else "")


_EXCEPTION = re.compile(r"([^\s:][^\s]*?):(?=\s|$)")


def exception_of(first_line: str) -> str:
    """The exception class a first line starts with: the text before the first `: ` (or a
    final `:`) when it holds no space. `KeyError: 'x'` -> `KeyError`, `Net::ReadTimeout: x` ->
    `Net::ReadTimeout`, `card declined for order 1001` (delayed_job keeps no class) -> ""."""
    match = _EXCEPTION.match(first_line)
    return match.group(1) if match else ""


@dataclass(frozen=True)
class Fingerprint:
    #: the exception class, never normalised ("" when the line names none, as delayed_job's)
    exception: str
    #: the first line with its message normalised: what the group's jobs share
    pattern: str
    #: a short stable hash of the pattern, for URLs and the command line
    id: str


@lru_cache(maxsize=65536)
def fingerprint(error_first_line: str | None) -> Fingerprint:
    """The fingerprint of a job's error (the first line of its last error; None or "" for none)."""
    line = (error_first_line or "").split("\n", 1)[0] or NO_ERROR
    exception = exception_of(line)
    if exception:
        pattern = exception + normalise(line[len(exception) :])
    else:
        pattern = line if line == NO_ERROR else normalise(line)
    return Fingerprint(exception, pattern, fingerprint_id(pattern))


def fingerprint_id(pattern: str) -> str:
    """12 hex digits of BLAKE2b over the pattern: stable across processes and versions."""
    return hashlib.blake2b(pattern.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()


#: what a fingerprint id looks like (a filter refuses anything else)
FINGERPRINT_ID = re.compile(r"[0-9a-f]{12}")
