"""The Lua side of the Redis backend: scripts shipped as package data, and `Batch`, which packs
guarded units of commands for `lua/apply.lua` so that one round trip changes many jobs."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from importlib import resources
from typing import Any

#: units per script call: big enough for bulk speed, small enough to keep Redis responsive
UNITS_PER_CALL = 500


def script_source(name: str) -> str:
    return resources.files("qadmin.backends.redis").joinpath("lua", name).read_text(encoding="utf-8")


def script_using_push(name: str) -> str:
    """A script that pushes jobs as enqueue does: its line `-- @push.lua...` becomes
    `local function push(KEYS, ARGV)` holding push.lua's code, so one copy of the push and of the
    twin count that names what it pushed serves both."""
    source = script_source(name)
    marker = next(line for line in source.splitlines() if line.startswith("-- @push.lua"))
    return source.replace(marker, f"local function push(KEYS, ARGV)\n{script_source('push.lua')}\nend", 1)


def script_with_failed_entry(name: str) -> str:
    """A script that keeps qadmin's index of `failed` (`failed_index.py`): `failed_entry.lua`'s
    `classify` put before it, so that every such script reads an entry the same way."""
    return script_source("failed_entry.lua") + "\n" + script_source(name)


class Batch:
    """Units for `apply.lua`. A unit is a list of steps; its first step is the guard.

        batch = Batch()
        batch.unit(("ZREM", [locked], [envelope]),          # guard: still held as we saw it
                   ("LPUSH", [queue_key], [payload]))
        [ok] = batch.run(script, client)

    The units travel as one MessagePack blob (Redis' Lua has `cmsgpack`): thousands of small
    arguments would cost more to pack than the script costs to run.
    """

    def __init__(self) -> None:
        self.keys: list[Any] = []
        self._key_index: dict[Any, int] = {}
        self._units: list[bytes] = []
        #: lists some step rewrites or removes from in place (`Server.run` tells the index of `failed`)
        self.edited: set[Any] = set()

    @property
    def units(self) -> int:
        return len(self._units)

    def _key(self, key: Any) -> int:
        index = self._key_index.get(key)
        if index is None:
            self.keys.append(key)
            index = self._key_index[key] = len(self.keys)
        return index

    def unit(self, *steps: tuple[str, Sequence[Any], Sequence[Any]]) -> int:
        """Add a unit; returns its position in the results."""
        out = bytearray(_array(len(steps)))
        for op, keys, args in steps:
            if op in _IN_PLACE and keys:
                self.edited.add(keys[0])
            out += b"\x93"
            _scalar(op, out)
            out += _array(len(keys))
            for k in keys:
                _scalar(self._key(k), out)
            out += _array(len(args))
            for a in args:
                _scalar(_arg(a), out)
        self._units.append(bytes(out))
        return len(self._units) - 1

    def run(self, script: Any, client: Any) -> list[bool]:
        if not self._units:
            return []
        tombstone = b"qadmin:tombstone:" + os.urandom(12).hex().encode()
        blob = _array(len(self._units)) + b"".join(self._units)
        result = script(keys=self.keys, args=[tombstone, blob], client=client)
        return [bool(r) for r in result]


#: steps that rewrite or remove list entries where they are (positions after them move, or bytes change)
_IN_PLACE = frozenset({"TOMB", "LSETEQ", "LSET", "LREM", "LTRIM", "LPOP", "DEL"})


def command(args: Sequence[Any]) -> bytes:
    """A command in Redis' wire format (RESP), arguments encoded as redis-py encodes them. Packing
    a thousand payloads this way costs a fraction of redis-py's general packer; the exact types
    are tested first, as a worker packs a few dozen arguments for every job."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        kind = type(a)
        if kind is str:
            a = a.encode("utf-8")
        elif kind is int:
            a = b"%d" % a
        elif kind is float:
            a = repr(a).encode()
        elif kind is not bytes:
            a = _coerced(a)
        out.append(b"$%d\r\n%b\r\n" % (len(a), a))
    return b"".join(out)


def _coerced(a: Any) -> Any:
    """A subclass of str, int or float (a bool, an enum) as its base type encodes; anything else
    (bytes-like) as it is."""
    if isinstance(a, str):
        return a.encode("utf-8")
    if isinstance(a, int):
        return b"%d" % a
    if isinstance(a, float):
        return repr(a).encode()
    return a


def _arg(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return b""
    if isinstance(value, float):
        return repr(value)
    return value


def _array(n: int) -> bytes:
    """A MessagePack array header."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + struct.pack(">H", n)
    return b"\xdd" + struct.pack(">I", n)


def _scalar(value: Any, out: bytearray) -> None:
    """An int, or a str/bytes as a MessagePack str (Lua strings are bytes)."""
    if isinstance(value, int):
        if 0 <= value < 128:
            out.append(value)
        else:
            out += b"\xd3" + struct.pack(">q", value)
        return
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    n = len(data)
    if n < 32:
        out.append(0xA0 | n)
    elif n < 0x100:
        out += b"\xd9" + bytes((n,))
    elif n < 0x10000:
        out += b"\xda" + struct.pack(">H", n)
    else:
        out += b"\xdb" + struct.pack(">I", n)
    out += data
