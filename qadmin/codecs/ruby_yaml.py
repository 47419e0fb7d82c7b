"""delayed_job `handler` YAML, read without Ruby or constructing anything (docs/compatibility.md §4.5).

The loader is PyYAML's safe loader plus constructors that turn every `!ruby/<kind>[:<Class>]` tag into a
`RubyObject` node and any other unknown tag into a `ForeignTag` node, so a hostile handler
(`!!python/object/apply:os.system`, `!ruby/object:Kernel`) is only ever data. YAML 1.1 scalars
(`yes`/`no` booleans, sexagesimal ints, timestamps) resolve as Psych resolves them; Ruby symbols stay
strings with their colon (`:daily`, a key `:limit:` is the string ":limit").

`decode_handler` then reads the delayed_job job kinds out of that tree: plain objects and structs,
`Delayed::PerformableMethod` (`Reporter.generate`, `User#send_welcome`), `Delayed::PerformableMailer`
and ActiveJob's `JobWrapper`. Everything it returns is JSON-serialisable (`json.dumps(allow_nan=False)`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml

from qadmin.codecs.base import UNDECODABLE, Decoded, undecodable

__all__ = [
    "RubyObject",
    "ForeignTag",
    "decode_handler",
    "guess_class_name",
    "job_name",
    "load_handler",
    "to_plain",
]

FORMAT = "delayed_job"
PERFORMABLE_METHOD = "Delayed::PerformableMethod"
PERFORMABLE_MAILER = "Delayed::PerformableMailer"
ACTIVE_JOB_WRAPPER = "ActiveJob::QueueAdapters::DelayedJobAdapter::JobWrapper"
HASH_WITH_INDIFFERENT_ACCESS = "ActiveSupport::HashWithIndifferentAccess"

#: most values one handler may expand to: YAML aliases can make a few hundred bytes mean billions
MAX_VALUES = 100_000
#: deeper structures are cut short in args/kwargs/display (the value below replaces them)
MAX_DISPLAY_DEPTH = 100
TOO_DEEP = "(nested too deeply)"
RECURSIVE = "(recursive)"
#: libyaml's composer recurses in C and overflows the C stack on deep nesting (a segfault, not an
#: exception). Nesting depth is at most the number of these indicator characters, so below this
#: count the fast C parser is safe; above it the pure-Python one raises RecursionError instead.
_C_PARSER_MAX_INDICATORS = 1000
_INDICATORS = "[{-?:"

#: delayed_job's Job::ParseObjectFromYaml, used by Job#name when the handler cannot be loaded
_TAG_NAME = re.compile(r"!ruby/\w+:(\S+)", re.ASCII)

#: ivars that mark an ActiveRecord record across Rails versions (4.2 raw_attributes .. 7 concise_attributes)
_RECORD_IVARS = frozenset(
    {"concise_attributes", "raw_attributes", "attributes", "new_record", "active_record_yaml_version"}
)
#: tag kinds delayed_job itself writes for records (legacy rows, Mongoid, DataMapper)
_RECORD_KINDS = {"ActiveRecord": "id", "Mongoid": "_id", "DataMapper": "id"}
#: the Ruby class of a class-less tag, for naming a receiver or an odd top-level value
_CLASS_OF_KIND = {
    "range": "Range",
    "regexp": "Regexp",
    "set": "Set",
    "encoding": "Encoding",
    "array": "Array",
    "hash": "Hash",
    "string": "String",
    "object": "Object",
    "struct": "Struct",
    "exception": "Exception",
    "data": "Data",
    "class": "Class",
    "module": "Module",
    "marshalable": "Object",
    "hash-with-ivars": "Hash",
}

_AJ_GLOBALID = "_aj_globalid"
_AJ_SERIALIZED = "_aj_serialized"
_AJ_RUBY2_KEYWORDS = "_aj_ruby2_keywords"
#: ActiveJob argument markers that only tell Ruby how to rebuild a hash; dropped for display
_AJ_HASH_MARKERS = frozenset({"_aj_symbol_keys", _AJ_RUBY2_KEYWORDS, "_aj_hash_with_indifferent_access"})


@dataclass
class RubyObject:
    """A value Psych tagged `!ruby/<kind>[:<class_name>]`; `value` is the node's mapping, list or scalar."""

    kind: str
    class_name: str | None
    value: Any = None
    # identity hash: YAML allows an object as a mapping key and the safe constructor insists on hashable keys
    __hash__ = object.__hash__

    @property
    def tag(self) -> str:
        return f"{self.kind}:{self.class_name}" if self.class_name else self.kind


@dataclass
class ForeignTag:
    """A node whose tag is neither YAML's nor Ruby's (`!!python/...`, `!foo`): data, never acted on."""

    tag: str
    value: Any = None
    __hash__ = object.__hash__


class _TooLarge(Exception):
    pass


# --- loading ------------------------------------------------------------------------------------------


def _tagged(loader: yaml.SafeLoader, node: yaml.Node, obj: RubyObject | ForeignTag) -> Any:
    # yield before filling so aliases pointing back at this node (recursive YAML) resolve to it
    if isinstance(node, yaml.MappingNode):
        obj.value = {}
        yield obj
        obj.value.update(loader.construct_mapping(node))
    elif isinstance(node, yaml.SequenceNode):
        obj.value = []
        yield obj
        obj.value.extend(loader.construct_sequence(node))
    elif isinstance(node, yaml.ScalarNode):
        obj.value = loader.construct_scalar(node)
        yield obj
    else:  # the composer makes mappings, sequences and scalars only
        raise yaml.constructor.ConstructorError(None, None, f"unexpected {type(node).__name__}", node.start_mark)


def _construct_ruby(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    kind, _, class_name = suffix.partition(":")
    if kind in ("sym", "symbol") and isinstance(node, yaml.ScalarNode):
        return ":" + loader.construct_scalar(node)
    if kind == "hash" and class_name == HASH_WITH_INDIFFERENT_ACCESS and isinstance(node, yaml.MappingNode):
        return loader.construct_yaml_map(node)  # semantically a plain Hash
    return _tagged(loader, node, RubyObject(kind, class_name or None))


def _construct_foreign(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return _tagged(loader, node, ForeignTag(node.tag))


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    # a timestamp-shaped scalar that is no real date (2026-02-30) is text to Psych too
    try:
        # the stubs want a ScalarNode; an explicit `!!timestamp` tag brings any node here, and PyYAML
        # reads a mapping's `=` value as its scalar and raises ConstructorError for the rest
        return loader.construct_yaml_timestamp(node)  # type: ignore[arg-type]
    except (ValueError, OverflowError):
        return loader.construct_scalar(node)  # type: ignore[arg-type]


def _install(loader_class: type) -> type:
    # a base chosen at run time (PyYAML's SafeLoader or libyaml's CSafeLoader): mypy cannot check it
    class Loader(loader_class):  # type: ignore[misc]
        pass

    for prefix in ("!ruby/", "tag:ruby.yaml.org,2002:"):  # Psych, and Syck before it
        Loader.add_multi_constructor(prefix, _construct_ruby)
    Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
    # Psych's local tags for binary strings and explicit strings
    Loader.add_constructor("!binary", yaml.SafeLoader.construct_yaml_binary)
    Loader.add_constructor("!str", yaml.SafeLoader.construct_yaml_str)
    Loader.add_constructor(None, _construct_foreign)
    return Loader


_PyLoader = _install(yaml.SafeLoader)
_CLoader = _install(yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else None


def load_handler(text: str) -> Any:
    """Parse handler YAML into plain values plus `RubyObject`/`ForeignTag` nodes.

    Raises `yaml.YAMLError`, `ValueError`, `TypeError` or `RecursionError` when it does not parse.
    """
    loader = _PyLoader
    if _CLoader is not None and sum(map(text.count, _INDICATORS)) <= _C_PARSER_MAX_INDICATORS:
        loader = _CLoader
    return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass (see _install)


# --- JSON-friendly values -----------------------------------------------------------------------------


class _Plain:
    """Converts a loaded tree to JSON values, with a budget so alias bombs fail instead of exploding."""

    def __init__(self) -> None:
        self.budget = MAX_VALUES
        self.active: set[int] = set()

    def __call__(self, value: Any, depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge(f"handler expands to more than {MAX_VALUES} values (YAML aliases?)")
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if depth >= MAX_DISPLAY_DEPTH:
            return TOO_DEEP
        if id(value) in self.active:
            return RECURSIVE
        self.active.add(id(value))
        try:
            return self._container(value, depth + 1)
        finally:
            self.active.discard(id(value))

    def _container(self, value: Any, depth: int) -> Any:
        if isinstance(value, RubyObject):
            return {"__ruby__": value.tag, "value": self(value.value, depth)}
        if isinstance(value, ForeignTag):
            return {"__tag__": value.tag, "value": self(value.value, depth)}
        if isinstance(value, dict):
            return {self._key(k, depth): self(v, depth) for k, v in value.items()}
        if isinstance(value, (set, frozenset)):
            return [self(v, depth) for v in sorted(value, key=repr)]  # stable across hash seeds
        if isinstance(value, (list, tuple)):
            return [self(v, depth) for v in value]
        return str(value)

    def _key(self, key: Any, depth: int) -> str:
        plain = self(key, depth)
        return plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)


def to_plain(value: Any) -> Any:
    """`value` (from `load_handler`) as JSON values: Ruby nodes become `{"__ruby__": tag, "value": ...}`."""
    return _Plain()(value)


# --- interpreting delayed_job job kinds ---------------------------------------------------------------


def decode_handler(text: str | bytes) -> Decoded:
    """Decode a delayed_job handler; never raises. The result is never runnable by a qadmin worker."""
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            guess = guess_class_name(raw.decode("utf-8", "replace"))
            return undecodable(FORMAT, f"invalid UTF-8: {exc}", guess)
    try:
        tree = load_handler(text)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        return undecodable(FORMAT, f"YAML does not parse: {_one_line(exc)}", guess_class_name(text))
    try:
        return _interpret(tree, _Plain())
    except _TooLarge as exc:
        return undecodable(FORMAT, str(exc), guess_class_name(text))


def guess_class_name(text: str) -> str | None:
    """The first `!ruby/<kind>:<Name>` tag's name, as delayed_job's Job#name falls back to."""
    match = _TAG_NAME.search(text)
    return match.group(1) if match else None


def job_name(text: str | bytes) -> str | None:
    """The name delayed_job shows for a handler (`Job#name`), or None when nothing can be told."""
    name = decode_handler(text).class_name
    return None if name == UNDECODABLE else name


def _interpret(tree: Any, plain: _Plain) -> Decoded:
    if not isinstance(tree, RubyObject):
        if tree is None:
            what = "empty"
        elif isinstance(tree, ForeignTag):
            what = f"tagged {tree.tag!r}"
        else:
            what = f"a YAML {_ruby_class_of(tree)}"
        return undecodable(FORMAT, f"handler is {what}, not a Ruby object", None)
    ivars = tree.value if isinstance(tree.value, dict) else {}
    if tree.kind == "object" and tree.class_name in (PERFORMABLE_METHOD, PERFORMABLE_MAILER):
        # a wrapper missing its essential ivar (a truncated row, say) would fail in Ruby too
        return _performable(tree, ivars, plain) or _plain_object(tree, plain, "no method_name")
    if tree.kind == "object" and tree.class_name == ACTIVE_JOB_WRAPPER:
        return _active_job(tree, ivars, plain) or _plain_object(tree, plain, "no job_data.job_class")
    return _plain_object(tree, plain)


def _plain_object(tree: RubyObject, plain: _Plain, missing: str | None = None) -> Decoded:
    name = tree.class_name
    if tree.kind in ("class", "module") and not name and isinstance(tree.value, str) and tree.value:
        name = tree.value  # `--- !ruby/class 'Foo'`: the class itself is the job
    name = name or _class_of_kind(tree.kind)
    display = plain(tree)
    kwargs = display["value"] if isinstance(tree.value, dict) and isinstance(display, dict) else {}
    return Decoded(
        class_name=name,
        args=[],
        kwargs=kwargs,
        format=FORMAT,
        meta={"kind": tree.kind, "handler_class": name},
        display=display,
        error=f"{name} handler with {missing}" if missing else None,
        runnable=False,
    )


def _performable(tree: RubyObject, ivars: dict[Any, Any], plain: _Plain) -> Decoded | None:
    method = ivars.get("method_name")
    if not isinstance(method, str) or not method.lstrip(":"):
        return None
    method = method[1:] if method.startswith(":") else method  # a Symbol
    receiver_name, separator, receiver = _receiver(ivars.get("object"), plain)
    raw_args = ivars.get("args")
    args = plain(raw_args) if isinstance(raw_args, list) else ([] if raw_args is None else [plain(raw_args)])
    mailer = tree.class_name == PERFORMABLE_MAILER
    meta: dict[str, Any] = {
        "kind": "mailer" if mailer else "method",
        "handler_class": tree.class_name,
        "receiver": receiver,
        "method_name": method,
    }
    if ivars.get("max_attempts") is not None:
        meta["max_attempts"] = plain(ivars["max_attempts"])
    return Decoded(
        class_name=f"{receiver_name}{separator}{method}",
        args=args,
        kwargs={},
        format=FORMAT,
        meta=meta,
        display=plain(tree),
        runnable=False,
    )


def _receiver(obj: Any, plain: _Plain) -> tuple[str, str, dict[str, Any]]:
    """(name, "." or "#", meta) the way PerformableMethod#display_name names its receiver."""
    if isinstance(obj, RubyObject):
        if obj.kind in ("class", "module"):
            name = obj.class_name or (obj.value if isinstance(obj.value, str) and obj.value else "Class")
            return name, ".", {"class": name}
        ivars = obj.value if isinstance(obj.value, dict) else {}
        model = obj.class_name or _class_of_kind(obj.kind)
        if obj.kind in _RECORD_KINDS or (obj.kind == "object" and not _RECORD_IVARS.isdisjoint(ivars)):
            record_id = _record_id(ivars, _RECORD_KINDS.get(obj.kind, "id"))
            return model, "#", {"model": model, "id": plain(record_id)}
        return model, "#", {"instance_of": model}
    ruby_class = _ruby_class_of(obj)
    return ruby_class, "#", {"instance_of": ruby_class, "value": plain(obj)}


def _record_id(ivars: dict[Any, Any], key: str) -> Any:
    """The primary key of a YAML-dumped record; the layout differs between Rails versions."""
    concise = ivars.get("concise_attributes")  # Rails >= 6.1: a list of ActiveModel::Attribute objects
    if isinstance(concise, list):
        for attribute in concise:
            fields = attribute.value if isinstance(attribute, RubyObject) else attribute
            if isinstance(fields, dict) and fields.get("name") == key:
                return fields.get("value_before_type_cast", fields.get("value"))
    # older Rails, legacy `!ruby/ActiveRecord:` rows: a hash of raw values somewhere under these ivars;
    # breadth-first, skipping `types` (whose "id" is a type object, not the id)
    queue = [ivars.get("raw_attributes"), ivars.get("attributes")]
    for index in range(200):
        if index >= len(queue):
            break
        node = queue[index]
        if isinstance(node, RubyObject):
            node = node.value
        if not isinstance(node, dict):
            continue
        found = node.get(key)
        if found is not None and not isinstance(found, (dict, list, ForeignTag)):
            if not isinstance(found, RubyObject):
                return found
            if isinstance(found.value, dict) and "value_before_type_cast" in found.value:
                return found.value["value_before_type_cast"]
        queue.extend(v for k, v in node.items() if k not in ("types", "additional_types"))
    return None


def _active_job(tree: RubyObject, ivars: dict[Any, Any], plain: _Plain) -> Decoded | None:
    job_data = ivars.get("job_data")
    if not isinstance(job_data, dict) or not isinstance(job_data.get("job_class"), str):
        return None
    data = plain(job_data)
    arguments = data.get("arguments")
    if not isinstance(arguments, list):
        arguments = [] if arguments is None else [arguments]
    kwargs: dict[str, Any] = {}
    # perform(*args, **kwargs): ActiveJob flags the keyword hash as the last argument
    if arguments and isinstance(arguments[-1], dict) and _AJ_RUBY2_KEYWORDS in arguments[-1]:
        kwargs = _aj_argument(arguments[-1])
        arguments = arguments[:-1]
    meta = {k: v for k, v in data.items() if k not in ("job_class", "arguments")}
    meta.update(kind="active_job", handler_class=tree.class_name)
    return Decoded(
        class_name=data["job_class"],
        args=[_aj_argument(a) for a in arguments],
        kwargs=kwargs,
        format=FORMAT,
        meta=meta,
        display=plain(tree),
        runnable=False,
    )


def _aj_argument(value: Any) -> Any:
    """An ActiveJob-serialised argument made readable (GlobalID as its URI, markers dropped)."""
    if isinstance(value, list):
        return [_aj_argument(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and isinstance(value.get(_AJ_GLOBALID), str):
        return value[_AJ_GLOBALID]
    serializer = value.get(_AJ_SERIALIZED)
    if isinstance(serializer, str):
        rest = {k: _aj_argument(v) for k, v in value.items() if k != _AJ_SERIALIZED}
        if serializer.endswith("::SymbolSerializer") and isinstance(rest.get("value"), str):
            return ":" + rest["value"]
        if serializer.startswith("ActiveJob::Serializers::") and set(rest) == {"value"}:
            return rest["value"]  # Date, Time, BigDecimal, Module: the value says it all
        return {"serializer": serializer, **rest}
    return {k: _aj_argument(v) for k, v in value.items() if k not in _AJ_HASH_MARKERS}


def _class_of_kind(kind: str) -> str:
    return _CLASS_OF_KIND.get(kind, kind) or "Object"  # a bare `!ruby/` tag has no kind at all


def _ruby_class_of(value: Any) -> str:
    if value is None:
        return "NilClass"
    if isinstance(value, bool):
        return "TrueClass" if value else "FalseClass"
    for python_type, ruby_class in (
        (int, "Integer"),
        (float, "Float"),
        (str, "String"),
        (bytes, "String"),
        (list, "Array"),
        (dict, "Hash"),
        (datetime, "Time"),
        (date, "Date"),
        (set, "Set"),
    ):
        if isinstance(value, python_type):
            return ruby_class
    return "Object"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
