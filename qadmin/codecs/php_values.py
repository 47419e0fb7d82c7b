"""PHP's values as Python holds them (the model `php_read` builds and `php_write` writes), and their
plain JSON form for display (`to_plain`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

#: deeper nesting is an error (PHP's own default limit, unserialize_max_depth, is 4096)
MAX_DEPTH = 512
#: deeper structures are cut short in kwargs/display (the value below replaces them)
MAX_DISPLAY_DEPTH = 100
TOO_DEEP = "(nested too deeply)"

#: array keys PHP stores as integers (ZEND_HANDLE_NUMERIC_STR): no leading zeros, no "-0"
NUMERIC_KEY = re.compile(rb"(?:0|-?[1-9][0-9]*)\Z")
INT64 = range(-(2**63), 2**63)


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
            self.raw_name = mangle(self.name, self.visibility, self.declared_in)

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


def php_name(raw: bytes) -> str:
    """A class or property name as text (PHP names are bytes; invalid UTF-8 is replaced)."""
    return raw.decode("utf-8", "replace")


def mangle(name: str | int, visibility: str, declared_in: str | None) -> bytes:
    raw = str(name).encode("utf-8", "surrogateescape")
    if visibility == "protected":
        return b"\x00*\x00" + raw
    if visibility == "private":
        return b"\x00" + (declared_in or "").encode("utf-8", "surrogateescape") + b"\x00" + raw
    return raw


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
