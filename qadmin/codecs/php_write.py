"""Writing PHP `serialize()` data: new handlers only, with PHP >= 7.1's exact bytes."""

from __future__ import annotations

import re
from typing import Any

from qadmin.codecs.php_values import INT64, MAX_DEPTH, NUMERIC_KEY, PhpObject, php_float

_LABEL = r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*"
_CLASS_NAME = re.compile(rf"{_LABEL}(?:\\{_LABEL})*")


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
    if isinstance(key, int):
        out += b"i:%d;" % _int64(key)
        return
    raw = key.encode("utf-8") if isinstance(key, str) else key
    if NUMERIC_KEY.match(raw) and int(raw) in INT64:
        out += b"i:%d;" % int(raw)
    else:
        _write_string(out, raw)


def _int64(value: int) -> int:
    if value not in INT64:
        raise ValueError(f"{value} does not fit a PHP int")
    return value
