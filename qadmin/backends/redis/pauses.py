"""Paused queues on Redis: resque-pause's `pause:queue:NAME` keys and Resque's `pause-all-workers`."""

from __future__ import annotations

from datetime import datetime

from qadmin.backends.redis.payloads import truthy
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.server import Server, as_bytes
from qadmin.job import utcnow


class Pauses:
    """Pausing and resuming queues, and which are paused."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.keys = server.keys
        self.client = server.client

    def is_paused(self, queue: str) -> bool:
        paused_all, paused = self.server.paused_flags([queue])
        return paused_all or queue in paused

    def pause(self, queue: str, now: datetime) -> bool:
        key = self.keys.pause_all if queue == "*" else self.keys.pause(queue)
        with self.server.wrap():
            if queue == "*":
                if truthy(as_bytes(self.client.get(key))):
                    return False
                return bool(self.client.set(key, "true"))
            pipe = self.client.pipeline(transaction=True)
            pipe.set(key, "true", nx=True)
            pipe.sadd(self.keys.paused, queue)
            return bool(pipe.execute()[0])

    def resume(self, queue: str) -> bool:
        key = self.keys.pause_all if queue == "*" else self.keys.pause(queue)
        with self.server.wrap():
            if queue == "*":
                was = truthy(as_bytes(self.client.get(key)))
                self.client.delete(key)
                return was
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(key)
            pipe.srem(self.keys.paused, queue)
            return bool(pipe.execute()[0])

    def queue_names(self, reader: Reader) -> list[str]:
        """The known queues (the `queues` set and the ones qadmin paused), without counting anything."""
        with self.server.wrap():  # each read on its own: one key of the wrong type (poison) spoils no other
            known = set(reader.known_queues()) | {
                n.decode("utf-8", "replace")
                for n in reader.read(self.keys.paused, "set", lambda: self.client.smembers(self.keys.paused), ())
            }
        return sorted(known)

    def paused(self, reader: Reader | None = None) -> list[str]:
        """Paused queues: those with a `pause:queue:NAME` key among the known queues and the ones
        qadmin paused (no keyspace SCAN); `*` when `pause-all-workers` is set."""
        names = self.queue_names(reader or Reader(self.server, utcnow()))
        paused_all, paused = self.server.paused_flags(names)
        return sorted(paused | ({"*"} if paused_all else set()))
