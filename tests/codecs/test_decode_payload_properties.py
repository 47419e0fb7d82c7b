"""Whatever a store holds, decoding returns a `Decoded` of JSON values and never raises or runs code."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qadmin.codecs import decode_payload, php_serialize, ruby_yaml
from qadmin.codecs.base import Decoded

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

YAML_SEEDS = [
    "--- !ruby/object:NewsletterJob\ntext: lorem ipsum...\nemails:\n- a@example.com\n- b@example.com\n",
    "--- !ruby/object:Delayed::PerformableMethod\nobject: !ruby/class 'Reporter'\nmethod_name: :generate\n"
    "args:\n- :daily\n- format: csv\n  :limit: 5\n",
    "--- !ruby/object:Delayed::PerformableMethod\nobject: !ruby/object:User\n  concise_attributes:\n"
    "  - !ruby/object:ActiveModel::Attribute::FromDatabase\n    name: id\n    value_before_type_cast: 1\n"
    "  new_record: false\nmethod_name: :send_welcome\nargs:\n- hi\n",
    "--- !ruby/object:ActiveJob::QueueAdapters::DelayedJobAdapter::JobWrapper\njob_data:\n"
    "  job_class: GuestsCleanupJob\n  job_id: f5b66daf\n  queue_name: maintenance\n  arguments:\n  - guest\n"
    "  - _aj_globalid: gid://demo/User/1\n  - x: 1\n    _aj_ruby2_keywords:\n    - x\n"
    "  enqueued_at: '2026-11-22T08:41:54Z'\n",
    "--- !ruby/object:OddJob\nh: !ruby/hash:ActiveSupport::HashWithIndifferentAccess\n  a: 1\n"
    "r: !ruby/range\n  begin: 1\n  end: 5\n  excl: false\nd: !ruby/object:BigDecimal 18:0.15e1\n"
    "t: 2030-01-02 03:04:05.000000000 Z\nb: |-\n  x\n  y\nq: 'yes'\na: &x [1]\nc: *x\n",
]
PHP_SEEDS = [
    b'O:13:"HelloWorldJob":1:{s:4:"name";s:11:"delayed_job";}',
    b'O:8:"MixedJob":6:{s:3:"pub";i:1;s:7:"\x00*\x00prot";s:1:"p";s:14:"\x00MixedJob\x00priv";d:2.5;'
    b's:1:"n";N;s:1:"b";b:1;s:3:"arr";a:3:{s:1:"a";i:1;i:0;s:1:"x";i:5;a:0:{}}}',
    b'O:6:"Child1":2:{s:15:"\x00Parent1\x00secret";s:1:"p";s:14:"\x00Child1\x00secret";s:1:"c";}',
    b'O:4:"Node":2:{s:4:"self";r:1;s:1:"a";a:2:{i:0;i:1;i:1;R:3;}}',
    b'C:12:"Other\\SerJob":3:{abc}',
    b'E:17:"Other\\Suit:Hearts";',
    'O:3:"Foo":2:{s:1:"x";s:6:"héllo";s:1:"f";d:1.0E+25;}'.encode(),
]
JSON_SEEDS = [b'{"class":"Archive","args":[35,"tar"]}', b'{"class":"A","args":[],"id":"x","queue_time":1.5}']
SEEDS = [s.encode() for s in YAML_SEEDS] + PHP_SEEDS + JSON_SEEDS


def _mutate(data: bytes, cut: int, edits: list[tuple[int, int, bytes]]) -> bytes:
    buf = bytearray(data[: cut % (len(data) + 1)] if cut >= 0 else data)
    for position, length, insert in edits:
        position %= len(buf) + 1
        buf[position : position + length] = insert
    return bytes(buf)


_EDITS = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3), st.binary(max_size=4)), max_size=3)
MUTATED = st.builds(_mutate, st.sampled_from(SEEDS), st.integers(-1, 10_000), _EDITS)
YAMLISH = st.lists(
    st.sampled_from(
        list("-:?[]{},'\"!&*|> \n\tab1.~#%@`")
        + [
            "!ruby/object:",
            "!ruby/struct:",
            "!ruby/class ",
            "!ruby/sym ",
            "!ruby/range",
            "!ruby/hash:",
            "Delayed::PerformableMethod",
            "method_name: ",
            "object: ",
            "args:",
            "job_data:",
            "job_class: X",
            "\n- ",
            "!!python/object/apply:os.system ",
            "!!binary ",
            "!binary ",
            "<<: ",
            "2030-01-02 03:04:05 Z",
            ".nan",
        ]
    ),
    max_size=40,
).map(lambda tokens: "--- " + "".join(tokens))
PHPISH = st.lists(
    st.sampled_from(
        [
            b"N;",
            b"b:1;",
            b"i:-3;",
            b"d:0.5;",
            b"d:NAN;",
            b's:1:"x";',
            b's:2:"\xc3\xa9";',
            b"a:1:{",
            b"a:2:{",
            b'O:1:"A":1:{',
            b'O:1:"A":2:{',
            b'C:1:"C":2:{xy}',
            b'E:3:"E:c";',
            b"r:1;",
            b"R:2;",
            b"}",
            b"i:0;",
            b's:3:"\x00*\x00";',
            b"a:0:{}",
        ]
    ),
    max_size=12,
).map(b"".join)
ANY_INPUT = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    MUTATED,
    YAMLISH,
    PHPISH,
    MUTATED.map(lambda b: b.decode("utf-8", "replace")),
)


def assert_sound(decoded: Decoded) -> None:
    assert isinstance(decoded, Decoded)
    assert isinstance(decoded.class_name, str) and decoded.class_name
    assert isinstance(decoded.args, list) and isinstance(decoded.kwargs, dict)
    json.dumps([decoded.args, decoded.kwargs, decoded.meta, decoded.display, decoded.error], allow_nan=False)
    if decoded.format in ("delayed_job", "djjob"):
        assert decoded.runnable is False


@SETTINGS
@given(ANY_INPUT)
def test_decode_payload_never_raises(raw):
    assert_sound(decode_payload(raw))


@SETTINGS
@given(
    st.one_of(
        st.text(max_size=300),
        YAMLISH,
        MUTATED.map(lambda b: b.decode("utf-8", "replace")),
        st.binary(max_size=200),
        MUTATED,
    )
)
def test_ruby_yaml_decode_handler_never_raises(text):
    assert_sound(ruby_yaml.decode_handler(text))


@SETTINGS
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300), PHPISH, MUTATED))
def test_php_decode_handler_never_raises(raw):
    assert_sound(php_serialize.decode_handler(raw))


@SETTINGS
@given(PHPISH)
def test_unserialize_raises_only_its_own_error(data):
    try:
        php_serialize.unserialize(data)
    except php_serialize.PhpDecodeError as exc:
        assert 0 <= exc.position <= len(data)


@SETTINGS
@given(
    st.sampled_from(
        [
            "!!python/object/apply:os.system",
            "!!python/object/new:os.system",
            "!!python/object/apply:subprocess.call",
            "!!python/name:os.system",
            "!!python/module:os",
            "!ruby/object:Kernel",
            "!ruby/object:Gem::Installer",
            "!ruby/object:Delayed::PerformableMethod",
        ]
    ),
    st.sampled_from(["seq", "map", "scalar"]),
    st.booleans(),
)
def test_execution_tags_never_execute(tmp_path_factory, tag, shape, nested):
    marker = tmp_path_factory.mktemp("yaml") / "pwned"
    command = f"touch {marker}"
    body = {
        "seq": f"{tag} ['{command}']",
        "map": f"{tag} {{cmd: '{command}', method_name: :system}}",
        "scalar": f"{tag} '{command}'",
    }[shape]
    text = f"--- !ruby/object:Job\nx: {body}\n" if nested else f"--- {body}\n"
    for decoded in (ruby_yaml.decode_handler(text), decode_payload(text)):
        assert_sound(decoded)
        assert decoded.runnable is False
    assert not marker.exists()
