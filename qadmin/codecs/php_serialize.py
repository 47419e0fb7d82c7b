"""PHP `serialize()` data (DJJob handlers), read without instantiating anything (docs/compatibility.md §5.3).

`unserialize` follows php-src's `var_unserializer.re`: lengths count bytes, numeric-string array keys
become ints, every value except `R:` takes a back-reference slot, `r:` must point at an object.
Stricter than PHP in two ways: trailing bytes are an error (PHP ignores them) and the long-deprecated
escaped-string form `S:` is not read.

Value model: `N;` None, `b:` bool, `i:` int, `d:` float (INF/-INF/NAN included), `s:` str when the bytes
are UTF-8 else bytes (PHP strings are byte strings; nothing is lost), arrays a list when their keys are
exactly 0..n-1 in order else a dict (insertion-ordered, int/str keys), `O:` PhpObject, `C:` PhpCustom
(opaque bytes), `E:` PhpEnum, `r:`/`R:` PhpRef markers (never resolved, so cycles cannot recurse).

`serialize` writes new handlers only, with PHP >= 7.1's exact bytes, and refuses non-public properties.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

from qadmin.codecs.base import Decoded, undecodable

__all__ = [
    "PhpCustom",
    "PhpDecodeError",
    "PhpEnum",
    "PhpObject",
    "PhpProperty",
    "PhpRef",
    "decode_handler",
    "guess_class_name",
    "php_float",
    "serialize",
    "to_plain",
    "unserialize",
]

FORMAT = "djjob"
#: DJJob fails a job whose handler does not unserialize to an object with this message's gist
BAD_HANDLER = "bad handler: not an object"
#: deeper nesting is an error (PHP's own default limit, unserialize_max_depth, is 4096)
MAX_DEPTH = 512
#: deeper structures are cut short in kwargs/display (the value below replaces them)
MAX_DISPLAY_DEPTH = 100
TOO_DEEP = "(nested too deeply)"

_UINT = re.compile(rb"[0-9]+")
_INT = re.compile(rb"[+-]?[0-9]+")
_FLOAT = re.compile(rb"NAN|-?INF|[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: array keys PHP stores as integers (ZEND_HANDLE_NUMERIC_STR): no leading zeros, no "-0"
_NUMERIC_KEY = re.compile(rb"(?:0|-?[1-9][0-9]*)\Z")
_LABEL = r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*"
_CLASS_NAME = re.compile(rf"{_LABEL}(?:\\{_LABEL})*")
_GUESS = re.compile(rb'\A\s*[OC]:[0-9]+:"([^"\x00]{1,255})"')
_INT64 = range(-(2**63), 2**63)
_SMALLEST_ELEMENT = 6  # `i:0;N;`: a count larger than the bytes left can hold is a lie


class PhpDecodeError(ValueError):
    """The bytes are not PHP `serialize()` output; `position` is the byte offset of the problem."""

    def __init__(self, reason: str, position: int) -> None:
        self.reason, self.position = reason, position
        super().__init__(f"{reason} at byte {position}")


@dataclass
class PhpProperty:
    """One object entry. Protected/private names are stored mangled (`\\0*\\0name`, `\\0Class\\0name`)."""

    name: str | int
    value: Any
    visibility: str = "public"  # "public" | "protected" | "private"
    declared_in: str | None = None  # the declaring class of a private property
    raw_name: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.raw_name:
            self.raw_name = _mangle(self.name, self.visibility, self.declared_in)

    @property
    def label(self) -> str:
        """Readable and unique within an object: `prot (protected)`, `priv (private MixedJob)`."""
        if self.visibility == "protected":
            return f"{self.name} (protected)"
        if self.visibility == "private":
            return f"{self.name} (private {self.declared_in})"
        return str(self.name)


@dataclass
class PhpObject:
    class_name: str
    properties: list[PhpProperty] = field(default_factory=list)

    @classmethod
    def public(cls, class_name: str, values: dict[str, Any]) -> PhpObject:
        return cls(class_name, [PhpProperty(name, value) for name, value in values.items()])

    def readable(self) -> dict[str, Any]:
        return {prop.label: prop.value for prop in self.properties}


@dataclass(frozen=True)
class PhpCustom:
    """`C:` data of a class implementing Serializable: only that class can read `data`."""

    class_name: str
    data: bytes


@dataclass(frozen=True)
class PhpEnum:
    class_name: str
    case: str


@dataclass(frozen=True)
class PhpRef:
    """`r:k` (the same object again) or `R:k` (a PHP `&` reference) to the k-th value (1-based)."""

    kind: str
    index: int
    target: str = field(default="", compare=False)  # a short description, for display


# --- reading ------------------------------------------------------------------------------------------


def unserialize(data: bytes | str) -> Any:
    """Decode one serialized value; raises `PhpDecodeError` on anything malformed or left over."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return _Reader(bytes(data)).read()


class _Frame:
    __slots__ = ("container", "key", "remaining", "slot")

    def __init__(self, container: dict[Any, Any] | PhpObject, remaining: int, slot: int) -> None:
        self.container, self.remaining, self.slot, self.key = container, remaining, slot, None

    def add(self, value: Any) -> None:
        self.remaining -= 1
        if isinstance(self.container, dict):
            self.container[self.key] = value  # a repeated key overwrites in place, as in PHP
            return
        prop = self.key
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
            value = PhpEnum(self.class_name(enum_class, start), _name(case))
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

    def key(self, frame: _Frame) -> Any:
        start, tag = self.pos, self.data[self.pos : self.pos + 2]
        if tag == b"i:":
            self.pos += 2
            key: Any = int(self.number(_INT, "an integer key"))
            self.literal(b";")
            return key if isinstance(frame.container, dict) else PhpProperty(key, None)
        if tag != b"s:":
            self.fail("a key must be i: or s:", start)
        self.pos += 2
        raw = self.counted()
        self.literal(b";")
        if isinstance(frame.container, dict):
            if _NUMERIC_KEY.match(raw) and int(raw) in _INT64:
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
        return _name(raw)


def _text(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _unmangle(raw: bytes) -> tuple[str, str, str | None]:
    if raw[:1] == b"\x00":
        end = raw.find(b"\x00", 1)
        if end > 1:
            owner, name = raw[1:end], _name(raw[end + 1 :])
            return (name, "protected", None) if owner == b"*" else (name, "private", _name(owner))
    return _name(raw), "public", None


def _mangle(name: str | int, visibility: str, declared_in: str | None) -> bytes:
    raw = str(name).encode("utf-8", "surrogateescape")
    if visibility == "protected":
        return b"\x00*\x00" + raw
    if visibility == "private":
        return b"\x00" + (declared_in or "").encode("utf-8", "surrogateescape") + b"\x00" + raw
    return raw


def _describe(value: Any) -> str:
    if isinstance(value, PhpObject):
        return f"object {value.class_name}"
    if isinstance(value, (PhpCustom, PhpEnum)):
        return f"{'custom' if isinstance(value, PhpCustom) else 'enum'} {value.class_name}"
    if isinstance(value, (dict, list)):
        return "array"
    text = json.dumps(to_plain(value), ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


# --- writing ------------------------------------------------------------------------------------------


def serialize(value: Any) -> bytes:
    """PHP `serialize()` bytes for None/bool/int/float/str/bytes/list/tuple/dict/PhpObject (public only).

    Raises TypeError for other types, ValueError for what PHP could not read back the same
    (ints outside 64 bits, invalid class names, protected/private properties, cycles).
    """
    out = bytearray()
    _write(out, value, 0)
    return bytes(out)


def _write(out: bytearray, value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels (a cycle?)")
    if value is None:
        out += b"N;"
    elif isinstance(value, bool):
        out += b"b:1;" if value else b"b:0;"
    elif isinstance(value, int):
        out += b"i:%d;" % _int64(value)
    elif isinstance(value, float):
        out += b"d:" + php_float(value).encode() + b";"
    elif isinstance(value, (str, bytes)):
        _write_string(out, value)
    elif isinstance(value, (list, tuple)):
        out += b"a:%d:{" % len(value)
        for index, item in enumerate(value):
            out += b"i:%d;" % index
            _write(out, item, depth + 1)
        out += b"}"
    elif isinstance(value, dict):
        out += b"a:%d:{" % len(value)
        for key, item in value.items():
            _write_key(out, key)
            _write(out, item, depth + 1)
        out += b"}"
    elif isinstance(value, PhpObject):
        if not _CLASS_NAME.fullmatch(value.class_name):
            raise ValueError(f"not a PHP class name: {value.class_name!r}")
        name = value.class_name.encode("utf-8")
        out += b'O:%d:"%s":%d:{' % (len(name), name, len(value.properties))
        for prop in value.properties:
            if prop.visibility != "public":
                raise ValueError(f"only public properties are written, not {prop.label!r}")
            if isinstance(prop.name, int):
                out += b"i:%d;" % _int64(prop.name)
            else:
                # PHP reads a leading NUL as visibility mangling: no public name can start with one
                if prop.name.startswith("\x00"):
                    raise ValueError(f"a public property name cannot start with a NUL byte: {prop.name!r}")
                _write_string(out, prop.name)
            _write(out, prop.value, depth + 1)
        out += b"}"
    else:
        raise TypeError(f"cannot serialize {type(value).__name__} for PHP")


def _write_string(out: bytearray, value: str | bytes) -> None:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    out += b's:%d:"' % len(raw) + raw + b'";'


def _write_key(out: bytearray, key: Any) -> None:
    # PHP itself turns a numeric-string key into an int key, so write what PHP would hold
    if isinstance(key, bool) or not isinstance(key, (int, str, bytes)):
        raise TypeError(f"a PHP array key must be int or str, not {type(key).__name__}")
    raw = key.encode("utf-8") if isinstance(key, str) else key
    if isinstance(key, int) or (_NUMERIC_KEY.match(raw) and int(raw) in _INT64):
        out += b"i:%d;" % _int64(int(key))
    else:
        _write_string(out, raw)


def _int64(value: int) -> int:
    if value not in _INT64:
        raise ValueError(f"{value} does not fit a PHP int")
    return value


def php_float(value: float) -> str:
    """A float as PHP >= 7.1 serializes it (serialize_precision -1: php_gcvt, shortest digits, mode 0)."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    # Python's repr is the same shortest round-trip digit string as zend_dtoa mode 0
    parts = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, parts.digits))
    point = len(digits) + int(parts.exponent)  # value = 0.<digits> * 10**point
    digits = digits.rstrip("0")
    if point > 17 or point < -3:
        exponent = point - 1
        return f"{sign}{digits[0]}.{digits[1:] or '0'}E{'-' if exponent < 0 else '+'}{abs(exponent)}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if len(digits) <= point:
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


# --- DJJob handlers -----------------------------------------------------------------------------------


def decode_handler(raw: bytes | str) -> Decoded:
    """Decode a DJJob `handler` column; never raises. The result is never runnable by a qadmin worker."""
    try:
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
    except UnicodeEncodeError as exc:
        return undecodable(FORMAT, f"text cannot be turned back into bytes: {exc}")
    try:
        value = unserialize(data)
    except PhpDecodeError as exc:
        return undecodable(FORMAT, f"not PHP serialize() data: {exc}", guess_class_name(data))
    if isinstance(value, PhpObject):
        display = to_plain(value)
        return Decoded(
            class_name=value.class_name,
            args=[],
            kwargs=display["value"],
            format=FORMAT,
            meta={"kind": "object"},
            display=display,
            runnable=False,
        )
    if isinstance(value, PhpCustom):
        return Decoded(
            class_name=value.class_name, format=FORMAT, meta={"kind": "custom"}, display=to_plain(value), runnable=False
        )
    if isinstance(value, PhpEnum):  # enum cases are objects to PHP's is_object()
        return Decoded(
            class_name=value.class_name,
            format=FORMAT,
            meta={"kind": "enum", "case": value.case},
            display=to_plain(value),
            runnable=False,
        )
    return undecodable(FORMAT, BAD_HANDLER)


def guess_class_name(data: bytes) -> str | None:
    """The class named by a leading `O:<n>:"Name"` (or `C:`), for rows that do not unserialize."""
    match = _GUESS.match(data)
    return _name(match.group(1)) if match else None


def to_plain(value: Any, depth: int = 0) -> Any:
    """JSON values for display: objects as `{"__php__": "object:Class", "value": {label: ...}}`,
    `C:`/`E:`/references likewise (`custom:`, `enum:`, `r:1`/`R:2` with the target's description),
    bytes decoded with U+FFFD replacements, INF/-INF/NAN as those strings, int keys as strings."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else php_float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if depth >= MAX_DISPLAY_DEPTH:
        return TOO_DEEP
    if isinstance(value, list):
        return [to_plain(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_plain_key(key): to_plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, PhpObject):
        props = {prop.label: to_plain(prop.value, depth + 1) for prop in value.properties}
        return {"__php__": f"object:{value.class_name}", "value": props}
    if isinstance(value, PhpCustom):
        return {"__php__": f"custom:{value.class_name}", "value": value.data.decode("utf-8", "replace")}
    if isinstance(value, PhpEnum):
        return {"__php__": f"enum:{value.class_name}", "value": value.case}
    if isinstance(value, PhpRef):
        return {"__php__": f"{value.kind}:{value.index}", "value": value.target}
    return str(value)


def _plain_key(key: Any) -> str:
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
