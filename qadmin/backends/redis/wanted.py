"""Looking Redis jobs up by id: which stored entries a typed id names (`Wanted`)."""

from __future__ import annotations

import json
from dataclasses import replace

from qadmin.backends.redis.ids import IdParts, make_id
from qadmin.backends.redis.json_text import TOKEN_LEN, token, value_span
from qadmin.backends.redis.records import Rec, SlimJob, where_of
from qadmin.backends.redis.selection import LIVE


def failed_token(raw: bytes) -> str:
    """`failed_rec(...).token` (the token of the entry's payload) without building the job."""
    try:
        text = raw.decode("utf-8")
        entry = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return token(raw)
    payload = entry.get("payload") if isinstance(entry, dict) else None
    if not isinstance(payload, dict):
        return token(raw)
    span = value_span(text, entry, "payload")
    return token(raw) if span is None else token(span.encode("utf-8"), span, payload)


class Wanted:
    """Ids being looked up (`IdParts`: a queue or None, a token prefix, where and which twin)."""

    def __init__(self, parts: list[IdParts]) -> None:
        self.pairs = parts
        self.exact: dict[str, list[IdParts]] = {}
        self.short: list[IdParts] = []
        for part in parts:
            if len(part.token) in (TOKEN_LEN, 32):
                self.exact.setdefault(part.token, []).append(part)
            else:
                self.short.append(part)

    def _candidates(self, tok: str) -> list[IdParts]:
        return self.exact.get(tok, []) + [p for p in self.short if tok.startswith(p.token)]

    def wants(self, tok: str, queue: str | None) -> bool:
        return any(p.queue is None or p.queue == queue for p in self._candidates(tok))

    def hits(self, rec: Rec) -> list[IdParts]:
        """The wanted ids this entry answers to: its own, or a plain one of its token."""
        out = []
        for p in self._candidates(rec.token):
            if p.queue is not None and p.queue != rec.job.queue:
                continue
            if p.plain or (p.where == where_of(rec) and p.n == rec.extra.get("n", 1)):
                out.append(p)
        return out

    def any_queue(self, tok: str) -> bool:
        return bool(self._candidates(tok))

    def queues(self) -> set[str] | None:
        """The queues to search, None for all."""
        if any(p.queue is None for p in self.pairs):
            return None
        return {p.queue for p in self.pairs if p.queue is not None}

    def choose(self, found: dict[IdParts, list[Rec]]) -> dict[IdParts, list[Rec]]:
        """One entry per id: the entry that has it as its own; for a plain id without such an entry,
        the first live one of its token (a job keeps its plain id as it moves), else the first."""
        out: dict[IdParts, list[Rec]] = {}
        for part, recs in found.items():
            own = [r for r in recs if where_of(r) is None and r.extra.get("n", 1) == 1] if part.plain else recs
            live = [r for r in recs if r.job.state in LIVE]
            rec = (own or live or recs)[0]
            if not own and part.queue is not None and len(part.token) in (TOKEN_LEN, 32):
                # the job as asked for: the id it was enqueued with, now scheduled or failed
                job = rec.job
                asked = make_id(part.queue, part.token)
                if isinstance(job, SlimJob):
                    job = SlimJob(asked, job.queue, job.state, job.decodable, job.meta, job.locked_by)
                else:
                    job = replace(job, id=asked)
                rec = replace(rec, job=job, extra={k: v for k, v in rec.extra.items() if k != "n"})
            out[part] = [rec]
        return out
