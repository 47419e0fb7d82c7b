"""Error groups both backends share: failures counted by their exact first line (the database's
GROUP BY, or one pass over Redis's failures), then folded by fingerprint in Python. Folding
costs one `fingerprint` (cached) per distinct line, not per job."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from qadmin.fingerprints import NO_ERROR, Fingerprint, fingerprint
from qadmin.job import JobId
from qadmin.model import ErrorGroup, ErrorVariant

#: exact variants an error group carries (the rest are counted in `variants_left_out`)
VARIANTS_KEPT = 20
#: class names an exact line remembers (a sample: a group names its classes, not every one)
CLASSES_KEPT = 10


@dataclass
class ExactLine:
    """The failed jobs of one exact first line of last_error."""

    error: str
    count: int = 0
    queues: set[str] = field(default_factory=set)
    classes: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None
    sample: JobId | None = None

    def seen(self, failed_at: datetime | None, count: int = 1, first: datetime | None = None) -> None:
        self.count += count
        first = failed_at if first is None else first
        if first is not None and (self.first is None or first < self.first):
            self.first = first
        if failed_at is not None and (self.last is None or failed_at > self.last):
            self.last = failed_at


class ExactLines:
    """Failures counted one by one (Redis, and SQL's row-by-row path)."""

    def __init__(self) -> None:
        self.lines: dict[str, ExactLine] = {}

    def add(
        self,
        error: str | None,
        queue: str | None,
        class_name: str,
        failed_at: datetime | None,
        sample: Callable[[], JobId | None],
    ) -> None:
        """One failed job; `sample()` names it, called for the first job of each line only
        (naming a Redis failure may read its neighbours)."""
        key = (error or "").split("\n", 1)[0] or NO_ERROR
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = ExactLine(key, sample=sample())
        line.seen(failed_at)
        line.queues.add(queue or "")
        if len(line.classes) < CLASSES_KEPT:
            line.classes.add(class_name)


def known(job_id: JobId | None) -> Callable[[], JobId | None]:
    """The sample of a job whose id is at hand."""
    return lambda: job_id


def fold(lines: Iterable[ExactLine], limit: int) -> list[tuple[Fingerprint, list[ExactLine]]]:
    """The exact lines by fingerprint, largest group first, at most `limit` groups; each group's
    lines most frequent first."""
    groups: dict[str, tuple[Fingerprint, list[ExactLine]]] = {}
    for line in lines:
        fp = fingerprint(line.error)
        groups.setdefault(fp.id, (fp, []))[1].append(line)
    for _fp, members in groups.values():
        members.sort(key=lambda m: (-m.count, m.error))
    ordered = sorted(groups.values(), key=lambda g: (-sum(m.count for m in g[1]), g[1][0].error, g[0].id))
    return ordered[:limit]


def error_group(fp: Fingerprint, members: list[ExactLine]) -> ErrorGroup:
    """One folded group: its sample is the most frequent line and that line's sample job."""
    firsts = [m.first for m in members if m.first is not None]
    lasts = [m.last for m in members if m.last is not None]
    return ErrorGroup(
        error=members[0].error,
        count=sum(m.count for m in members),
        queues=sorted({q for m in members for q in m.queues}),
        classes=sorted({c for m in members for c in m.classes})[: CLASSES_KEPT * 2],
        last_failed_at=max(lasts) if lasts else None,
        sample_id=members[0].sample,
        fingerprint=fp.id,
        pattern=fp.pattern,
        first_failed_at=min(firsts) if firsts else None,
        variants=[ErrorVariant(m.error, m.count) for m in members[:VARIANTS_KEPT]],
        variants_left_out=max(len(members) - VARIANTS_KEPT, 0),
    )


def error_groups(lines: Iterable[ExactLine], limit: int) -> list[ErrorGroup]:
    return [error_group(fp, members) for fp, members in fold(lines, limit)]
