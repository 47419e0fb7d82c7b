"""Alert incidents on Redis: a hash per rule (`qadmin:alerts:RULE`: opened_at, details,
resolved_at, firing_sent_at, resolved_sent_at, sending_until) and the set of rules that have one
(`qadmin:alerts`), all qadmin's own keys. Every change is one call of `lua/alerts.lua`, a
compare-and-set, so among any number of evaluating processes exactly one takes each step."""

from __future__ import annotations

from datetime import datetime, timedelta

from qadmin.alert_rules import FIRING, RESOLVED, Incident
from qadmin.backends.redis.scripts import script_source
from qadmin.backends.redis.server import Server
from qadmin.errors import QadminError
from qadmin.job import iso


def _time(raw: bytes | None) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw.decode())
    except (UnicodeDecodeError, ValueError):
        return None


def _sent_field(message: str) -> str:
    if message not in (FIRING, RESOLVED):
        raise QadminError(f"unknown alert message {message!r}: {FIRING} or {RESOLVED}")
    return f"{message}_sent_at"


class Incidents:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.keys = server.keys
        self.script = server.client.register_script(script_source("alerts.lua"))

    def _step(self, rule: str, *args: str) -> bool:
        with self.server.wrap():
            done = self.script(keys=[self.keys.alert(rule), self.keys.alerts()], args=[args[0], rule, *args[1:]])
        return bool(done)

    def incidents(self) -> list[Incident]:
        with self.server.wrap():
            members = self.server.client.smembers(self.keys.alerts())
            # the client decodes no replies (`server.as_bytes`)
            names = sorted(m.decode(errors="replace") if isinstance(m, bytes) else m for m in members)
            pipe = self.server.client.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(self.keys.alert(name))
            hashes = pipe.execute()
        out = []
        for name, fields in zip(names, hashes, strict=True):
            opened = _time(fields.get(b"opened_at"))
            if opened is None:
                continue
            out.append(
                Incident(
                    rule=name,
                    opened_at=opened,
                    details=fields.get(b"details", b"").decode(errors="replace"),
                    resolved_at=_time(fields.get(b"resolved_at")),
                    firing_sent_at=_time(fields.get(b"firing_sent_at")),
                    resolved_sent_at=_time(fields.get(b"resolved_sent_at")),
                )
            )
        return out

    def open(self, rule: str, now: datetime, details: str) -> bool:
        return self._step(rule, "open", _text(now), details)

    def resolve(self, rule: str, now: datetime) -> bool:
        return self._step(rule, "resolve", _text(now))

    def claim(self, rule: str, opened_at: datetime, message: str, now: datetime, lease: float) -> bool:
        until = now + timedelta(seconds=lease)
        resolved_only = "1" if message == RESOLVED else "0"
        return self._step(
            rule, "claim", _text(opened_at), _sent_field(message), repr(now.timestamp()), repr(until.timestamp()),
            resolved_only,
        )  # fmt: skip

    def finish(self, rule: str, opened_at: datetime, message: str, sent_at: datetime | None) -> None:
        self._step(rule, "finish", _text(opened_at), _sent_field(message), _text(sent_at) if sent_at else "")


def _text(at: datetime) -> str:
    text = iso(at)
    assert text is not None
    return text
