"""What a listing read, remembered (slim) so that a verb on the ids it showed acts on exactly
those entries without a second search, and where list entries moved since they were read."""

from __future__ import annotations

import bisect
import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence

from qadmin.backends.redis.records import Rec

#: records remembered between a listing and a verb, so bulk verbs need not search again
REMEMBER = 200_000
_GENERATIONS = itertools.count(1)


class Memory:
    """Entries read by listings, by id; shared by the threads of a web face."""

    def __init__(self) -> None:
        self.mutex = threading.RLock()
        self.recs: OrderedDict[str, list[Rec]] = OrderedDict()
        #: per scan (`generation`), per list key, the indexes removed since it read them
        self._removed: dict[int, dict[str, list[int]]] = {}

    def remember(self, recs: Sequence[Rec]) -> None:
        """Remember every entry of an id (equal jobs share one), so that a verb acts on each."""
        grouped: dict[str, list[Rec]] = {}
        for rec in recs:
            grouped.setdefault(str(rec.job.id), []).append(rec.slim())
        with self.mutex:
            for key, group in grouped.items():
                self.recs.pop(key, None)
                self.recs[key] = group
            while len(self.recs) > REMEMBER:
                self.recs.popitem(last=False)

    def forget(self, *recs: Rec) -> None:
        with self.mutex:
            for rec in recs:
                key = str(rec.job.id)
                group = self.recs.get(key)
                if group is not None:
                    if len(group) == 1 and group[0] is rec:
                        del self.recs[key]
                        continue
                    group[:] = [r for r in group if r is not rec]
                    if not group:
                        del self.recs[key]

    def hint(self, rec: Rec) -> int:
        """The entry's index now: its index when read, less the entries removed before it since."""
        with self.mutex:
            removed = self._removed.get(rec.extra.get("gen", -1), {}).get(rec.key)
            if not removed or rec.index < 0:
                return rec.index
            return rec.index - bisect.bisect_left(removed, rec.index)

    def shift(self, rec: Rec) -> None:
        gen = rec.extra.get("gen")
        if gen is None or rec.index < 0:
            return
        with self.mutex:
            removed = self._removed.setdefault(gen, {}).setdefault(rec.key, [])
            if not removed or removed[-1] < rec.index:
                removed.append(rec.index)
            else:
                bisect.insort(removed, rec.index)
            while len(self._removed) > 4:
                self._removed.pop(min(self._removed))


def generation() -> int:
    """Each scan's indexes are a coordinate system of their own (see `Memory.hint`)."""
    return next(_GENERATIONS)
