"""PHP serialize(): the observed bytes of docs/compatibility.md §5.2/§5.3, strictness, and writer
round trips."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qadmin.codecs import decode_payload
from qadmin.codecs.base import UNDECODABLE
from qadmin.codecs.php_serialize import (
    BAD_HANDLER,
    MAX_DEPTH,
    PhpCustom,
    PhpDecodeError,
    PhpEnum,
    PhpObject,
    PhpProperty,
    PhpRef,
    decode_handler,
    php_float,
    serialize,
    to_plain,
    unserialize,
)

HELLO = b'O:13:"HelloWorldJob":1:{s:4:"name";s:11:"delayed_job";}'
MIXED = (
    b'O:8:"MixedJob":6:{s:3:"pub";i:1;s:7:"\x00*\x00prot";s:1:"p";s:14:"\x00MixedJob\x00priv";d:2.5;'
    b's:1:"n";N;s:1:"b";b:1;s:3:"arr";a:3:{s:1:"a";i:1;i:0;s:1:"x";i:5;a:0:{}}}'
)
CHILD = b'O:6:"Child1":2:{s:15:"\x00Parent1\x00secret";s:1:"p";s:14:"\x00Child1\x00secret";s:1:"c";}'
NAMESPACED_PRIVATE = b'O:17:"App\\Jobs\\SendMail":1:{s:20:"\x00App\\Jobs\\SendMail\x00x";i:3;}'


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"N;", None),
        (b"b:1;", True),
        (b"b:0;", False),
        (b"i:-7;", -7),
        (b"i:+7;", 7),
        (b"d:0.1;", 0.1),
        (b"d:1;", 1.0),
        (b"d:1.0E+25;", 1e25),
        (b"d:-INF;", -math.inf),
        (b"d:.5;", 0.5),
        (b"d:0.10000000000000001;", 0.1),  # PHP < 7.1 wrote 17 significant digits
        ('s:6:"héllo";'.encode(), "héllo"),
        (b's:0:"";', ""),
        (b's:3:"a"b";', 'a"b'),  # no escaping: the length decides
        (b's:2:"\xff\xfe";', b"\xff\xfe"),  # not UTF-8: kept as bytes
        (b'a:2:{s:1:"k";s:1:"v";i:7;s:18:"numeric-string-key";}', {"k": "v", 7: "numeric-string-key"}),
        (b'a:2:{i:0;s:1:"a";i:1;s:1:"b";}', ["a", "b"]),
        (b"a:0:{}", []),
        (b'a:2:{s:1:"7";i:1;s:2:"07";i:2;}', {7: 1, "07": 2}),  # PHP's numeric-string key rule
        (b'C:12:"Other\\SerJob":3:{abc}', PhpCustom("Other\\SerJob", b"abc")),
        (b'E:17:"Other\\Suit:Hearts";', PhpEnum("Other\\Suit", "Hearts")),
        (b"a:2:{i:0;i:1;i:1;R:2;}", [1, PhpRef("R", 2)]),
    ],
)
def test_grammar_examples(data, value):
    assert unserialize(data) == value


def test_nan():
    assert math.isnan(unserialize(b"d:NAN;"))
    assert unserialize(b"d:INF;") == math.inf


def test_object_with_every_visibility():
    obj = unserialize(MIXED)
    assert obj.class_name == "MixedJob"
    assert [(p.name, p.visibility, p.declared_in) for p in obj.properties] == [
        ("pub", "public", None),
        ("prot", "protected", None),
        ("priv", "private", "MixedJob"),
        ("n", "public", None),
        ("b", "public", None),
        ("arr", "public", None),
    ]
    assert [p.raw_name for p in obj.properties[:3]] == [b"pub", b"\x00*\x00prot", b"\x00MixedJob\x00priv"]
    assert obj.readable() == {
        "pub": 1,
        "prot (protected)": "p",
        "priv (private MixedJob)": 2.5,
        "n": None,
        "b": True,
        "arr": {"a": 1, 0: "x", 5: []},
    }


def test_private_properties_of_parent_and_child_are_both_kept():
    obj = unserialize(CHILD)
    assert obj.readable() == {"secret (private Parent1)": "p", "secret (private Child1)": "c"}
    assert unserialize(NAMESPACED_PRIVATE).properties == [PhpProperty("x", 3, "private", "App\\Jobs\\SendMail")]


def test_object_back_reference_to_itself_is_a_marker():
    obj = unserialize(b'O:4:"Node":2:{s:4:"name";s:1:"a";s:4:"self";r:1;}')
    assert obj.readable() == {"name": "a", "self": PhpRef("r", 1)}
    assert to_plain(obj)["value"]["self"] == {"__php__": "r:1", "value": "object Node"}


def test_reference_numbering_counts_values_not_keys_and_skips_R():
    # slots: 1 array, 2 object, 3 "v", 4 r:2 (still a slot), R:3 takes none, 5 i:9
    data = b'a:4:{i:0;O:1:"A":1:{s:1:"p";s:1:"v";}i:1;r:2;i:2;R:3;i:3;i:9;}'
    value = unserialize(data)
    assert value[1] == PhpRef("r", 2) and value[2] == PhpRef("R", 3) and value[3] == 9
    assert to_plain(value[2]) == {"__php__": "R:3", "value": '"v"'}
    assert unserialize(b'a:3:{i:0;O:1:"A":0:{}i:1;r:2;i:2;r:3;}')[2] == PhpRef("r", 3)  # r: to an r: slot


def test_php_array_reference_to_its_own_array_does_not_recurse():
    value = unserialize(b"a:1:{i:0;R:1;}")
    assert value == [PhpRef("R", 1)]
    assert to_plain(value) == [{"__php__": "R:1", "value": "array"}]


@pytest.mark.parametrize(
    ("data", "position"),
    [
        (b's:5:"abc";', 10),  # length longer than the string
        (b's:2:"abc";', 7),  # length shorter
        ('s:5:"héllo";'.encode(), 10),  # characters, not bytes
        (b"i:1;x", 4),  # trailing garbage
        (b"a:1:{i:0;N;}}", 12),
        (b"", 0),
        (b"i:;", 2),
        (b"b:2;", 0),
        (b"d:1e;", 3),
        (b"x:1;", 0),
        (b"a:1:{N;N;}", 5),  # keys are i: or s: only
        (b"a:1:{i:0;N;", 11),  # missing }
        (b"a:9:{i:0;N;}", 5),  # count larger than the data
        (b"r:1;", 0),  # reference to itself
        (b"R:1;", 0),  # reference to nothing
        (b"a:2:{i:0;i:1;i:1;r:2;}", 17),  # r: must name an object
        (b"a:1:{i:0;R:5;}", 9),
        (b'O:0:"":0:{}', 0),  # empty class name
        (b'O:4:"\\Foo":0:{}', 0),  # leading namespace separator
        (b'E:5:"Suits";', 0),  # enum without a case
        (b'C:3:"Foo":9:{abc}', 13),
    ],
)
def test_malformed_input_raises_with_position(data, position):
    with pytest.raises(PhpDecodeError) as info:
        unserialize(data)
    assert info.value.position == position
    assert isinstance(info.value, ValueError)


def test_nesting_is_bounded_without_recursion_error():
    deep = b"a:1:{i:0;" * (MAX_DEPTH + 1) + b"N;" + b"}" * (MAX_DEPTH + 1)
    with pytest.raises(PhpDecodeError, match="nested deeper"):
        unserialize(deep)
    ok = b"a:1:{i:0;" * MAX_DEPTH + b"N;" + b"}" * MAX_DEPTH
    value = unserialize(ok)
    assert json.dumps(to_plain(value))  # display cuts it short instead of recursing
    inner = b"a:1:{i:0;" * (MAX_DEPTH - 1) + b"N;" + b"}" * (MAX_DEPTH - 1)
    assert decode_handler(b'O:1:"A":1:{s:1:"x";' + inner + b"}").error is None


def test_accepts_text_as_stored_by_a_database_driver():
    assert unserialize('s:6:"héllo";') == "héllo"
    assert unserialize('O:1:"A":1:{s:1:"x";s:6:"héllo";}') == PhpObject.public("A", {"x": "héllo"})


# --- decode_handler ---------------------------------------------------------------------------------


def test_djjob_handler():
    decoded = decode_handler(HELLO)
    assert decoded.class_name == "HelloWorldJob"
    assert decoded.args == []
    assert decoded.kwargs == {"name": "delayed_job"}
    assert decoded.meta == {"kind": "object"}
    assert decoded.display == {"__php__": "object:HelloWorldJob", "value": {"name": "delayed_job"}}
    assert decoded.format == "djjob" and decoded.runnable is False and decoded.error is None
    assert decode_payload(HELLO) == decoded
    assert decode_payload(HELLO.decode()) == decoded


def test_handler_with_every_visibility_has_readable_json_kwargs():
    decoded = decode_handler(MIXED)
    assert decoded.class_name == "MixedJob"
    assert decoded.kwargs == {
        "pub": 1,
        "prot (protected)": "p",
        "priv (private MixedJob)": 2.5,
        "n": None,
        "b": True,
        "arr": {"a": 1, "0": "x", "5": []},
    }
    json.dumps(decoded.display, allow_nan=False)


def test_handler_values_that_json_cannot_hold_are_rendered():
    decoded = decode_handler(b'O:1:"J":3:{s:1:"a";d:INF;s:1:"b";d:NAN;s:1:"c";s:2:"\xff\xfe";}')
    assert decoded.kwargs == {"a": "INF", "b": "NAN", "c": "\ufffd\ufffd"}


def test_custom_and_enum_handlers_are_objects_to_djjob():
    custom = decode_handler(b'C:12:"Other\\SerJob":3:{abc}')
    assert (custom.class_name, custom.meta, custom.error) == ("Other\\SerJob", {"kind": "custom"}, None)
    assert custom.display == {"__php__": "custom:Other\\SerJob", "value": "abc"}
    enum = decode_handler(b'E:17:"Other\\Suit:Hearts";')
    assert (enum.class_name, enum.meta) == ("Other\\Suit", {"kind": "enum", "case": "Hearts"})


@pytest.mark.parametrize("data", [b"a:0:{}", b"N;", b"b:0;", b'a:1:{i:0;O:1:"A":0:{}}'])
def test_handler_that_is_not_an_object_is_a_bad_handler(data):
    decoded = decode_handler(data)
    assert decoded.error == BAD_HANDLER == "bad handler: not an object"
    assert decoded.class_name == UNDECODABLE


@pytest.mark.parametrize(
    ("data", "guess"),
    [
        (HELLO[:-1], "HelloWorldJob"),  # truncated
        (HELLO.replace(b"s:11:", b"s:12:"), "HelloWorldJob"),  # wrong length
        ('O:3:"Foo":1:{s:1:"x";s:5:"héllo";}'.encode(), "Foo"),  # length in characters
        (HELLO + b"\n", "HelloWorldJob"),  # trailing bytes
        (b'C:3:"Foo":2:{abc}', "Foo"),
        (b"a:1:{", None),
    ],
)
def test_broken_handler_is_undecodable_with_a_class_guess(data, guess):
    decoded = decode_handler(data)
    assert decoded.error.startswith("not PHP serialize() data: ")
    assert "at byte" in decoded.error
    assert decoded.class_name == (guess or UNDECODABLE)
    assert decoded.runnable is False


def test_handler_text_with_lone_surrogates_is_undecodable_not_an_exception():
    assert decode_handler('O:1:"A":1:{s:1:"x";s:1:"\ud800";}').error is not None


# --- writing ----------------------------------------------------------------------------------------


def test_serialize_writes_the_observed_bytes():
    assert serialize(PhpObject.public("HelloWorldJob", {"name": "delayed_job"})) == HELLO
    assert serialize("héllo") == 's:6:"héllo";'.encode()
    assert serialize({"k": "v", "7": "numeric-string-key"}) == b'a:2:{s:1:"k";s:1:"v";i:7;s:18:"numeric-string-key";}'
    assert serialize([None, True, False, -7, 2.5, {}]) == b"a:6:{i:0;N;i:1;b:1;i:2;b:0;i:3;i:-7;i:4;d:2.5;i:5;a:0:{}}"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (1.0, "1"),
        (1e25, "1.0E+25"),
        (2.5, "2.5"),
        (-0.0, "-0"),
        (0.0, "0"),
        (100.0, "100"),
        (1e15, "1000000000000000"),
        (1e16, "10000000000000000"),
        (1e17, "1.0E+17"),
        (0.0001, "0.0001"),
        (0.00001, "1.0E-5"),
        (-1.5e300, "-1.5E+300"),
        (123456.789, "123456.789"),
        (0.30000000000000004, "0.30000000000000004"),
        (5e-324, "5.0E-324"),
        (math.inf, "INF"),
        (-math.inf, "-INF"),
        (math.nan, "NAN"),
        (1.2345678901234568e17, "1.2345678901234568E+17"),
    ],
)
def test_floats_are_written_as_php_7_1_writes_them(value, text):
    assert php_float(value) == text


@pytest.mark.parametrize(
    "value",
    [
        PhpObject("MixedJob", [PhpProperty("prot", 1, "protected")]),
        PhpObject("Bad Name", []),
        PhpObject("", []),
        2**63,
    ],
)
def test_serialize_refuses_what_it_must_not_write(value):
    with pytest.raises(ValueError):
        serialize(value)


@pytest.mark.parametrize("value", [object(), {1.5: 1}, {True: 1}, PhpRef("r", 1), {None: 1}])
def test_serialize_refuses_unsupported_types(value):
    with pytest.raises(TypeError):
        serialize(value)


def test_serialize_refuses_cycles():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested"):
        serialize(loop)


@pytest.mark.parametrize(
    "data",
    [
        HELLO,
        b'a:2:{s:1:"k";s:1:"v";i:7;s:18:"numeric-string-key";}',
        b'O:3:"Job":2:{i:0;s:1:"a";s:1:"b";a:1:{i:5;d:1.0E+25;}}',
        b"d:-0;",
        b'a:1:{s:6:"h\xc3\xa9llo";s:2:"\xff\xfe";}',
    ],
)
def test_public_data_round_trips_byte_for_byte(data):
    assert serialize(unserialize(data)) == data


# --- round trips over the writer's value space ------------------------------------------------------

_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def _not_list_shaped(d: dict) -> bool:
    return list(d) != list(range(len(d)))


def _not_numeric(s: str) -> bool:
    return re.fullmatch(r"0|-?[1-9][0-9]*", s) is None  # PHP turns these keys into ints


_KEYS = st.one_of(_INT64, _TEXT.filter(_not_numeric))
_SCALARS = st.one_of(st.none(), st.booleans(), _INT64, st.floats(allow_nan=False), _TEXT)
_IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}(\\[A-Za-z_][A-Za-z0-9_]{0,6}){0,2}", fullmatch=True)


#: PHP reads a name with a leading NUL as a mangled protected/private one
_PUBLIC_NAME = _TEXT.filter(_not_numeric).filter(lambda n: not n.startswith("\x00"))


def _containers(children):
    objects = st.builds(
        PhpObject,
        _IDENT,
        st.dictionaries(_PUBLIC_NAME, children, max_size=4).map(
            lambda props: [PhpProperty(name, value) for name, value in props.items()]
        ),
    )
    return st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_KEYS, children, max_size=4).filter(_not_list_shaped), objects
    )


VALUES = st.recursive(_SCALARS, _containers, max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(VALUES)
@example(value=PhpObject("A", [PhpProperty("x\x000", None)]))
def test_unserialize_inverts_serialize(value):
    data = serialize(value)
    assert unserialize(data) == value
    assert serialize(unserialize(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.floats())
def test_float_text_reads_back_exactly(value):
    back = unserialize(serialize(value))
    assert (math.isnan(back) and math.isnan(value)) or (
        back == value and math.copysign(1, back) == math.copysign(1, value)
    )


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        PhpObject,
        _IDENT,
        st.lists(st.builds(PhpProperty, _PUBLIC_NAME, VALUES), max_size=4, unique_by=lambda p: p.name),
    )
)
def test_any_public_handler_decodes_to_its_class_and_json_kwargs(obj):
    decoded = decode_handler(serialize(obj))
    assert decoded.error is None
    assert decoded.class_name == obj.class_name
    assert list(decoded.kwargs) == [p.name for p in obj.properties]
    json.dumps(decoded.display, allow_nan=False)
