"""qadmin's own payload, which is Resque's: `{"class":…,"args":[…]}` first, extras after.

Compact JSON with raw UTF-8, byte-identical to what Ruby's json gem writes
(docs/compatibility.md §1.1, §8.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from qadmin.codecs.base import Decoded, undecodable

#: payload keys qadmin itself writes after class/args (all optional)
KWARGS_KEY = "kwargs"


#: `json.dumps` with these arguments builds an encoder on every call: this one is built once
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(value: Any) -> str:
    return _encode(value)


def _payload_encoder() -> Callable[[object, int], Iterable[str]] | None:
    """The C encoder `_encode` builds on each call, built once: what a payload costs to encode
    on the enqueue path is mostly that construction. Without circular-reference markers (a
    shared marker dict is left dirty by an error): a circular payload overflows the stack,
    and is then encoded again by `_encode`, which reports it as json does."""
    from json import encoder

    # private to json (typeshed does not declare it): None where the C accelerator is missing
    make_encoder: Callable[..., Callable[[object, int], Iterable[str]]] | None = getattr(
        encoder, "c_make_encoder", None
    )
    if make_encoder is None:  # pragma: no cover - not CPython
        return None
    base = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    return make_encoder(None, base.default, encoder.encode_basestring, None, ":", ",", False, False, True)


_encode_payload = _payload_encoder()


def encode(
    class_name: str, args: list[Any], kwargs: dict[str, Any] | None = None, meta: dict[str, Any] | None = None
) -> str:
    payload: dict[str, Any] = {"class": class_name, "args": list(args)}
    if kwargs:
        payload[KWARGS_KEY] = kwargs
    if meta:
        for key, value in meta.items():
            if key not in payload:
                payload[key] = value
    if _encode_payload is not None:
        try:
            return "".join(_encode_payload(payload, 0))
        except RecursionError:
            pass
    return _encode(payload)


def decode(text: str) -> Decoded:
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return undecodable("json", f"not valid JSON: {exc}")
    return decode_object(payload)


def decode_object(payload: Any, format: str | None = None) -> Decoded:
    if not isinstance(payload, dict):
        return undecodable("json", f"a JSON {type(payload).__name__}, not an object")
    class_name = payload.get("class")
    if not isinstance(class_name, str) or not class_name:
        return undecodable("json", 'no "class" field')
    args = payload.get("args", [])
    if args is None:
        args = []
    if not isinstance(args, list):
        return undecodable("json", '"args" is not a list', class_name)
    kwargs = payload.get(KWARGS_KEY) or {}
    if not isinstance(kwargs, dict):
        return undecodable("json", '"kwargs" is not an object', class_name)
    meta = {k: v for k, v in payload.items() if k not in ("class", "args", KWARGS_KEY)}
    if format is None:
        format = _sniff_json_flavour(class_name, args, meta)
    display = None
    if class_name == "ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper" and args and isinstance(args[0], dict):
        display = args[0]
    return Decoded(class_name=class_name, args=args, kwargs=kwargs, format=format, meta=meta, display=display)


def _sniff_json_flavour(class_name: str, args: list[Any], meta: dict[str, Any]) -> str:
    if "queue_time" in meta and "id" in meta:
        return "php-resque"
    if "::" in class_name or "\\" in class_name:
        return "resque"
    return "qadmin"
