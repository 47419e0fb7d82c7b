"""Reading PHP `serialize()` data without instantiating anything: php-src's `var_unserializer.re`,
iteratively (nesting lives on an explicit stack, so depth never hits Python's limit)."""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from qadmin.codecs.php_values import (
    INT64,
    MAX_DEPTH,
    NUMERIC_KEY,
    PhpCustom,
    PhpDecodeError,
    PhpEnum,
    PhpObject,
    PhpProperty,
    PhpRef,
    php_name,
    to_plain,
)

_UINT = re.compile(rb"[0-9]+")
_INT = re.compile(rb"[+-]?[0-9]+")
_FLOAT = re.compile(rb"NAN|-?INF|[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SMALLEST_ELEMENT = 6  # `i:0;N;`: a count larger than the bytes left can hold is a lie


def unserialize(data: bytes | str) -> Any:
    """Decode one serialized value; raises `PhpDecodeError` on anything malformed or left over."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return _Reader(bytes(data)).read()


class _Frame:
    __slots__ = ("container", "key", "remaining", "slot")

    def __init__(self, container: dict[Any, Any] | PhpObject, remaining: int, slot: int) -> None:
        self.container, self.remaining, self.slot = container, remaining, slot
        #: the key read before the value `add` takes: an array key, or an object's property
        self.key: int | str | bytes | PhpProperty | None = None

    def add(self, value: Any) -> None:
        self.remaining -= 1
        if isinstance(self.container, dict):
            self.container[self.key] = value  # a repeated key overwrites in place, as in PHP
            return
        prop = self.key
        assert isinstance(prop, PhpProperty), "an object's keys are read as properties"
        prop.value = value
        props = self.container.properties
        for index, existing in enumerate(props):
            if existing.raw_name == prop.raw_name:
                props[index] = prop
                return
        props.append(prop)

    def done(self) -> Any:
        if isinstance(self.container, dict):
            if all(key == index for index, key in enumerate(self.container)):
                return list(self.container.values())
        return self.container


_OPENED = object()


class _Reader:
    """An iterative parser: nesting lives on an explicit stack, so depth never hits Python's limit."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0
        self.slots: list[Any] = []  # values by back-reference number - 1

    def fail(self, reason: str, position: int | None = None) -> NoReturn:
        raise PhpDecodeError(reason, self.pos if position is None else position)

    def read(self) -> Any:
        stack: list[_Frame] = []
        value = self.value(stack)
        while True:
            if value is not _OPENED:
                if not stack:
                    break
                stack[-1].add(value)
            top = stack[-1]
            if top.remaining == 0:
                self.literal(b"}")
                stack.pop()
                value = self.slots[top.slot] = top.done()
                continue
            top.key = self.key(top)
            value = self.value(stack)
        if self.pos != len(self.data):
            self.fail(f"{len(self.data) - self.pos} unexpected bytes after the value")
        return value

    def value(self, stack: list[_Frame]) -> Any:
        start, tag = self.pos, self.data[self.pos : self.pos + 2]
        if not tag:
            self.fail("unexpected end of data")
        if tag == b"R:":  # the only form that takes no slot of its own
            self.pos += 2
            index = self.uint("a reference number")
            self.literal(b";")
            return self.reference("R", index, start)
        slot = len(self.slots)
        self.slots.append(None)
        if tag in (b"a:", b"O:"):
            self.pos += 2
            if tag == b"O:":
                container: Any = PhpObject(self.class_name(self.counted(), start))
                self.literal(b":")
            else:
                container = {}
            count = self.count()
            if len(stack) >= MAX_DEPTH:
                self.fail(f"nested deeper than {MAX_DEPTH} levels", start)
            stack.append(_Frame(container, count, slot))
            self.slots[slot] = container
            return _OPENED
        value = self.scalar(tag, start, slot)
        if not isinstance(value, PhpRef):  # an r: slot holds the object it names (set in scalar)
            self.slots[slot] = value
        return value

    def scalar(self, tag: bytes, start: int, slot: int) -> Any:
        data = self.data
        if tag == b"N;":
            self.pos += 2
            return None
        if tag == b"b:":
            flag = data[self.pos + 2 : self.pos + 4]
            if flag not in (b"0;", b"1;"):
                self.fail("expected b:0; or b:1;")
            self.pos += 4
            return flag == b"1;"
        self.pos += 2
        if tag == b"i:":
            value: Any = int(self.number(_INT, "an integer"))
        elif tag == b"d:":
            value = float(self.number(_FLOAT, "a float"))  # float() reads INF, -INF and NAN too
        elif tag == b"s:":
            value = _text(self.counted())
        elif tag == b"C:":
            name = self.class_name(self.counted(), start)
            self.literal(b":")
            size = self.uint("a length")
            self.literal(b":{")
            end = self.pos + size
            if data[end : end + 1] != b"}":
                self.fail(f"custom data length {size} does not match")
            value = PhpCustom(name, data[self.pos : end])
            self.pos = end + 1
            return value
        elif tag == b"E:":
            text = self.counted()
            enum_class, colon, case = text.partition(b":")
            if not colon or not text:
                self.fail("enum value without a colon", start)
            value = PhpEnum(self.class_name(enum_class, start), php_name(case))
        elif tag == b"r:":
            index = self.uint("a reference number")
            self.literal(b";")
            if index == slot + 1:
                self.fail("a reference to itself", start)
            ref = self.reference("r", index, start)
            target = self.slots[index - 1]
            if not isinstance(target, (PhpObject, PhpCustom, PhpEnum)):
                self.fail("r: must refer to an object", start)
            self.slots[slot] = target
            return ref
        else:
            self.fail(f"unknown value type {tag[:1]!r}", start)
        self.literal(b";")
        return value

    def key(self, frame: _Frame) -> int | str | bytes | PhpProperty:
        start, tag = self.pos, self.data[self.pos : self.pos + 2]
        if tag == b"i:":
            self.pos += 2
            key = int(self.number(_INT, "an integer key"))
            self.literal(b";")
            return key if isinstance(frame.container, dict) else PhpProperty(key, None)
        if tag != b"s:":
            self.fail("a key must be i: or s:", start)
        self.pos += 2
        raw = self.counted()
        self.literal(b";")
        if isinstance(frame.container, dict):
            if NUMERIC_KEY.match(raw) and int(raw) in INT64:
                return int(raw)
            return _text(raw)
        name, visibility, declared_in = _unmangle(raw)
        return PhpProperty(name, None, visibility, declared_in, raw_name=raw)

    def reference(self, kind: str, index: int, start: int) -> PhpRef:
        if not 1 <= index <= len(self.slots):
            self.fail(f"{kind}:{index} refers to no earlier value", start)
        return PhpRef(kind, index, _describe(self.slots[index - 1]))

    def number(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        match = pattern.match(self.data, self.pos)
        if not match:
            self.fail(f"expected {what}")
        self.pos = match.end()
        return match.group()

    def uint(self, what: str) -> int:
        return int(self.number(_UINT, what))

    def count(self) -> int:
        count = self.uint("an element count")
        self.literal(b":{")
        if count > (len(self.data) - self.pos) // _SMALLEST_ELEMENT:
            self.fail(f"element count {count} is larger than the data")
        return count

    def counted(self) -> bytes:
        """`<n>:"<n bytes>"`, the common part of s:, O:, C: and E:."""
        size = self.uint("a length")
        self.literal(b':"')
        end = self.pos + size
        if end >= len(self.data) or self.data[end : end + 1] != b'"':
            self.fail(f"length {size} does not match the data", min(end, len(self.data)))
        raw = self.data[self.pos : end]
        self.pos = end + 1
        return raw

    def literal(self, expected: bytes) -> None:
        if not self.data.startswith(expected, self.pos):
            self.fail(f"expected {expected.decode()!r}")
        self.pos += len(expected)

    def class_name(self, raw: bytes, position: int | None = None) -> str:
        if not raw or raw[:1] in (b"\x00", b"\\"):
            self.fail("invalid class name", position)
        return php_name(raw)


def _text(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _unmangle(raw: bytes) -> tuple[str, str, str | None]:
    if raw[:1] == b"\x00":
        end = raw.find(b"\x00", 1)
        if end > 1:
            owner, name = raw[1:end], php_name(raw[end + 1 :])
            return (name, "protected", None) if owner == b"*" else (name, "private", php_name(owner))
    return php_name(raw), "public", None


def _describe(value: Any) -> str:
    if isinstance(value, PhpObject):
        return f"object {value.class_name}"
    if isinstance(value, (PhpCustom, PhpEnum)):
        return f"{'custom' if isinstance(value, PhpCustom) else 'enum'} {value.class_name}"
    if isinstance(value, (dict, list)):
        return "array"
    text = json.dumps(to_plain(value), ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
