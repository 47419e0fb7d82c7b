"""Redis job ids as text: `QUEUE:TOKEN[@WHERE][.N]` (records.py's docstring says what each part
means), parsed back the ways a person may type one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qadmin.errors import UsageError
from qadmin.job import JobId

#: an id as printed: an optional queue, then a token (or a prefix of one, as git takes), then where
#: and which of equal entries (see the module docstring). The queue is everything before the last
#: colon (a name may hold any character, a newline or a colon too); nothing after it holds one.
_ID = re.compile(
    r"(?:(?P<queue>.*):)?(?P<token>[0-9a-f]{6,40})(?:@(?P<where>\d{1,12}|f[0-9a-f]{8}|z[0-9a-f]{1,16}))?"
    r"(?:\.(?P<n>[1-9]\d{0,8}))?",
    re.DOTALL,
)
#: failure entries looked back over for twins, and pending entries of a queue (`twins.py`)
TWIN_WINDOW = 200
TWIN_SCAN = 10_000


@dataclass(frozen=True)
class IdParts:
    """A parsed id: `where` and `n` as records.py's docstring says; `plain` when neither was given
    (the id then also names its token's first live entry wherever it is)."""

    queue: str | None
    token: str
    where: str | None = None
    n: int = 1

    @property
    def plain(self) -> bool:
        return self.where is None and self.n == 1


def make_id(queue: str | None, tok: str, where: str | None = None, n: int = 1) -> str:
    base = f"{queue}:{tok}" if queue else tok
    if where:
        base += "@" + where
    return base if n <= 1 else f"{base}.{n}"


#: the escapes `qadmin.text.visible` shows an unprintable character of a name as
_SHOWN = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[ntr])")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _unshown(text: str) -> str:
    def char(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in ("n", "t", "r"):
            return {"n": "\n", "t": "\t", "r": "\r"}[code]
        value = int(code[1:], 16)
        return chr(value) if value <= 0x10FFFF else match.group()

    return _SHOWN.sub(char, text)


def readings(job_id: JobId) -> dict[str, IdParts]:
    """The readings of an id, by their text, the first that names a job winning: as listed (only
    blanks after it dropped: an id ends in a digit); as the faces show it, with `\\x1b` for the
    ESC of a queue name (typed back from a listing); then either without blanks before it
    (pasted). The name itself may begin with a blank (`str.strip` takes ASCII's separators
    \\x1c-\\x1f for blanks too) or hold a backslash, so no reading replaces the one as listed."""
    text = str(job_id)
    candidates = [text.rstrip()]
    if "\\" in text:
        candidates.append(_unshown(text).rstrip())
    candidates += [c.lstrip() for c in candidates]
    out = {}
    for candidate in dict.fromkeys(candidates):
        match = _ID.fullmatch(candidate)
        if match and not _SURROGATE.search(candidate):  # no name holds one: Redis keys are UTF-8
            out[candidate] = IdParts(
                match.group("queue"), match.group("token"), match.group("where"), int(match.group("n") or 1)
            )
    if not out:
        raise UsageError(f"{text!r} is not a job id of this Redis backend (ids look like QUEUE:4f2a9c1b3d5e)")
    return out


def split_ids(job_id: JobId) -> tuple[IdParts, ...]:
    return tuple(readings(job_id).values())
