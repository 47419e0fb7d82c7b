"""The Redis server as every part of the backend talks to it: one client, the key layout, the
registered scripts, driver errors turned into `QadminError`s, guarded batches run, and qadmin's
own keys moved aside when something else than qadmin wrote a value of another type there."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis as redis_lib
from redis.commands.core import Script

from qadmin.backends.base import BackendOptions
from qadmin.backends.redis.keys import Keys
from qadmin.backends.redis.payloads import truthy
from qadmin.backends.redis.scripts import Batch, script_source, script_using_push, script_with_failed_entry
from qadmin.errors import BackendUnavailable, ConfigError, QadminError

_log = logging.getLogger("qadmin.redis")

#: a guarded step of `lua/apply.lua`: (command, keys, arguments)
Step = tuple[str, list[Any], list[Any]]


def as_bytes(reply: bytes | str | None) -> bytes | None:
    """A reply of the backend's client, which decodes nothing (`decode_responses=False`): bytes
    or nil. redis-py's annotations allow str for clients that decode."""
    assert not isinstance(reply, str), "the Redis client decodes no replies"
    return reply


class Scripts:
    """The Lua scripts shipped with the backend, registered on one client."""

    def __init__(self, client: redis_lib.Redis) -> None:
        self.apply = client.register_script(script_source("apply.lua"))
        self.count = client.register_script(script_source("count.lua"))
        self.requeue = client.register_script(script_with_failed_entry("requeue_failed.lua"))
        self.failed_index = client.register_script(script_with_failed_entry("failed_index.lua"))
        self.claim = client.register_script(script_source("claim.lua"))
        self.push = client.register_script(script_source("push.lua"))
        # recurring schedules (`recurring.py`)
        self.schedule_save = client.register_script(script_source("schedule_save.lua"))
        self.schedule_fire = client.register_script(script_using_push("schedule_fire.lua"))
        self.master_lock = client.register_script(script_source("master_lock.lua"))
        # history buckets (`history.py`)
        self.history = client.register_script(script_source("history.lua"))


class Server:
    """What every part of the backend receives at construction to reach Redis."""

    def __init__(self, url: str, options: BackendOptions) -> None:
        parts = urlsplit(url)
        self.safe_url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
        self.options = options
        self.client = connect(url, self.safe_url)
        self.keys = Keys(options.namespace)
        self.scripts = Scripts(self.client)

    @contextmanager
    def wrap(self) -> Iterator[None]:
        """Driver errors as the backend contract says (base.py): BackendUnavailable or QadminError."""
        try:
            yield
        except QadminError:
            raise
        except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
            raise BackendUnavailable(f"cannot reach {self.safe_url}: {exc}") from exc
        except redis_lib.RedisError as exc:
            raise QadminError(f"redis error at {self.safe_url}: {exc}") from exc

    def run(self, batch: Batch) -> list[bool]:
        """Run a batch of guarded units (`lua/apply.lua`); True for each unit whose guard held.
        A batch that edits `failed` where its entries are also drops qadmin's index of it, in
        the same call (`failed_index.py`: positions moved; the next reader rebuilds it)."""
        if self.keys.failed in batch.edited:
            batch.unit(("DEL", [self.keys.failed_index], []))
            return self._run(batch)[:-1]
        return self._run(batch)

    def _run(self, batch: Batch) -> list[bool]:
        with self.wrap():
            try:
                return batch.run(self.scripts.apply, self.client)
            except redis_lib.ResponseError as exc:
                if not (wrongtype(exc) and self.repair_private()):
                    raise
                return batch.run(self.scripts.apply, self.client)

    def run_unit(self, *steps: Step) -> bool:
        batch = Batch()
        batch.unit(*steps)
        return self.run(batch)[0]

    def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """A script call through the client's pool."""
        with self.wrap():
            return script(keys=keys, args=args, client=self.client)

    def repair_private(self) -> bool:
        """Move aside each of qadmin's own keys that holds a value of another type than qadmin
        writes there (poison: no qadmin process wrote it), so that workers go on; the value is kept
        under `KEY:wrongtype:EPOCH` and the move is logged. Resque's own keys are never touched.
        True if one was moved."""
        k = self.keys
        wanted = {
            k.locked: b"zset",
            k.finished: b"zset",
            k.qworkers: b"hash",
            k.unique: b"hash",
            k.paused: b"set",
            k.audit: b"list",
        }
        with self.wrap():
            pipe = self.client.pipeline(transaction=False)
            for key in wanted:
                pipe.type(key)
            types = pipe.execute()
            moved = False
            seq = as_bytes(self.client.get(k.audit_seq)) if self.client.type(k.audit_seq) == b"string" else b"0"
            if not (seq or b"0").lstrip(b"-").isdigit():  # the audit counter must count
                wanted[k.audit_seq] = b"string"
                types.append(b"not an integer")
            for (key, want), have in zip(wanted.items(), types, strict=True):
                if have not in (b"none", want):
                    self.move_aside(key, want.decode() if key != k.audit_seq else "counter", have)
                    moved = True
        return moved

    def move_aside(self, key: str, want: str, have: bytes | None = None) -> None:
        """Keep a value of one of qadmin's own keys that qadmin cannot use under `KEY:wrongtype:EPOCH`."""
        with self.wrap():
            have = have or as_bytes(self.client.type(key)) or b"nothing"
            aside = f"{key}:wrongtype:{int(time.time())}"
            self.client.rename(key, aside)
        _log.warning("%s held a %s where qadmin keeps a %s: moved aside to %s", key, have.decode(), want, aside)

    def paused_flags(self, names: Sequence[str]) -> tuple[bool, set[str]]:
        """Whether `pause-all-workers` is set, and which of these queues are paused."""
        with self.wrap():
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.keys.pause_all)
            for name in names:
                pipe.exists(self.keys.pause(name))
            values = pipe.execute(raise_on_error=False)
        # a pause-all key of the wrong type (poison) pauses nothing, as for Resque's own workers
        paused_all = not isinstance(values[0], Exception) and truthy(values[0])
        return paused_all, {n for n, v in zip(names, values[1:], strict=True) if v is True or v == 1}

    def rid(self, worker: str) -> str | None:
        """The Resque worker id of a registered qadmin worker (read from its record)."""
        with self.wrap():
            value = self.client.hget(self.keys.qworkers, worker)
        if value is None:
            return None
        try:
            rid = json.loads(value).get("rid")
        except (ValueError, AttributeError):
            return None
        return rid if isinstance(rid, str) else None

    def close(self) -> None:
        self.client.close()


def connect(url: str, safe_url: str) -> redis_lib.Redis:
    """A client for `redis://`, `rediss://`, `unix://`, or `redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`
    (the master of a Sentinel-monitored service)."""
    # redis-py 8 reads with a 5 s timeout unless told otherwise: an admin script over a million
    # entries can take longer, and would be reported as an unreachable server while it still ran.
    # A minute still ends a read from a server that vanished silently.
    options: dict[str, Any] = {
        "decode_responses": False,
        "socket_connect_timeout": 5,
        "socket_timeout": 60,
        "health_check_interval": 30,
    }
    parts = urlsplit(url)
    try:
        if parts.scheme.lower() != "redis+sentinel":
            return redis_lib.Redis.from_url(url, **options)
        from redis.sentinel import Sentinel

        hosts = []
        for item in parts.netloc.rsplit("@", 1)[-1].split(","):
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
            hosts.append((host or "127.0.0.1", int(port or 26379)))
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError("name the Sentinel service: redis+sentinel://HOST:PORT/SERVICE[/DB]")
        password = parts.password
        sentinel = Sentinel(hosts, socket_timeout=5, socket_connect_timeout=5)
        master: redis_lib.Redis = sentinel.master_for(
            path[0],
            db=int(path[1]) if len(path) > 1 else 0,
            password=password,
            decode_responses=False,
            socket_connect_timeout=5,
            socket_timeout=60,
        )
        return master
    except ValueError as exc:
        raise ConfigError(f"bad Redis URL {safe_url}: {exc}") from exc


def wrongtype(exc: Exception) -> bool:
    return str(exc).startswith("WRONGTYPE")


def own_params(url: str) -> tuple[str, dict[str, str]]:
    """Take qadmin's own query parameters out of a Redis URL."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    theirs = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "failed_on_retry":
            ours[key] = value
        else:
            theirs.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(theirs))), ours
