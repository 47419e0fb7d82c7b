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

This module decodes DJJob handlers and is the codec's public face; the value model is in `php_values`,
reading in `php_read`, writing in `php_write`.
"""

from __future__ import annotations

import re

from qadmin.codecs.base import Decoded, undecodable
from qadmin.codecs.php_read import unserialize
from qadmin.codecs.php_values import (
    MAX_DEPTH,
    PhpCustom,
    PhpDecodeError,
    PhpEnum,
    PhpObject,
    PhpProperty,
    PhpRef,
    php_float,
    php_name,
    to_plain,
)
from qadmin.codecs.php_write import serialize

__all__ = [
    "MAX_DEPTH",
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
_GUESS = re.compile(rb'\A\s*[OC]:[0-9]+:"([^"\x00]{1,255})"')


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
    return php_name(match.group(1)) if match else None
