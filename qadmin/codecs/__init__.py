"""Payload formats. `decode_payload` sniffs the format and never raises.

The sniffing is by the first bytes: `{` is JSON (qadmin / Resque / php-resque), `---` or a
`!ruby/` tag is delayed_job YAML, `O:`/`a:`/`C:` is PHP `serialize()` (DJJob).
"""

from __future__ import annotations

from qadmin.codecs.base import UNDECODABLE, Decoded, undecodable
from qadmin.codecs.json_codec import dumps, encode
from qadmin.text import holds_lone_surrogate

__all__ = ["Decoded", "UNDECODABLE", "decode_payload", "encode", "dumps", "undecodable"]

#: a payload larger than this is listed as undecodable rather than parsed on every listing
MAX_DECODE_BYTES = 4 * 1024 * 1024


def decode_payload(raw: str | bytes | None) -> Decoded:
    """Decode any payload qadmin knows; an unknown or broken one becomes an undecodable result."""
    try:
        return _decode(raw)
    except Exception as exc:  # noqa: BLE001 - a decoder bug must never break a listing
        return undecodable("unknown", f"decoder error: {type(exc).__name__}: {exc}")


def _decode(raw: str | bytes | None) -> Decoded:
    if raw is None:
        return undecodable("unknown", "empty payload")
    if isinstance(raw, bytes):
        if raw[:2] in (b"O:", b"a:", b"C:"):
            from qadmin.codecs import php_serialize

            return php_serialize.decode_handler(raw)
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return undecodable("unknown", f"invalid UTF-8: {exc}")
    if len(raw) > MAX_DECODE_BYTES:
        return undecodable("unknown", f"payload of {len(raw)} bytes is over the {MAX_DECODE_BYTES} byte limit")
    head = raw.lstrip()[:8]
    if not head.startswith(("O:", "a:", "C:", "E:")) and holds_lone_surrogate(raw):
        # text read leniently from bytes that were not UTF-8: only PHP handlers may hold those
        return undecodable("unknown", "invalid UTF-8 in the payload")
    if head.startswith("{") or head.startswith("["):
        from qadmin.codecs import json_codec

        return json_codec.decode(raw)
    if head.startswith(("O:", "a:", "C:", "E:")):
        from qadmin.codecs import php_serialize

        return php_serialize.decode_handler(raw)
    if head.startswith("---") or head.startswith("!ruby") or head.startswith("--- "):
        from qadmin.codecs import ruby_yaml

        return ruby_yaml.decode_handler(raw)
    if not raw.strip():
        return undecodable("unknown", "empty payload")
    return undecodable("unknown", "unknown payload format")
