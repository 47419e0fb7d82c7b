"""delayed_job handler YAML: the observed forms of docs/compatibility.md §4.5, verbatim, and hostile
input."""

from __future__ import annotations

import json

import pytest

from qadmin.codecs import decode_payload, ruby_yaml
from qadmin.codecs.base import UNDECODABLE, Decoded
from qadmin.codecs.ruby_yaml import ForeignTag, RubyObject, decode_handler, guess_class_name, job_name

NEWSLETTER = """\
--- !ruby/object:NewsletterJob
text: lorem ipsum...
emails:
- a@example.com
- b@example.com
"""

NEWSLETTER_STRUCT = """\
--- !ruby/struct:NewsletterStructJob
text: lorem ipsum...
emails:
- a@example.com
"""

RECORD_METHOD = """\
--- !ruby/object:Delayed::PerformableMethod
object: !ruby/object:User
  concise_attributes:
  - !ruby/object:ActiveModel::Attribute::FromDatabase
    name: id
    value_before_type_cast: 1
  - !ruby/object:ActiveModel::Attribute::FromDatabase
    name: name
    value_before_type_cast: Ann
  - !ruby/object:ActiveModel::Attribute::FromDatabase
    name: email
    value_before_type_cast: ann@example.com
  - !ruby/object:ActiveModel::Attribute::FromDatabase
    name: created_at
    value_before_type_cast: 2026-11-22 08:41:54.845542000 Z
  - !ruby/object:ActiveModel::Attribute::FromDatabase
    name: updated_at
    value_before_type_cast: 2026-11-22 08:41:54.845542000 Z
  new_record: false
  active_record_yaml_version: 2
method_name: :send_welcome
args:
- hi
"""

CLASS_METHOD = """\
--- !ruby/object:Delayed::PerformableMethod
object: !ruby/class 'Reporter'
method_name: :generate
args:
- :daily
- format: csv
  :limit: 5
"""

MAILER = """\
--- !ruby/object:Delayed::PerformableMailer
object: !ruby/class 'UserMailer'
method_name: :welcome
args:
- 1
"""

ACTIVE_JOB = """\
--- !ruby/object:ActiveJob::QueueAdapters::DelayedJobAdapter::JobWrapper
job_data:
  job_class: GuestsCleanupJob
  job_id: f5b66daf-01df-4ef6-b385-bfdbebc732ed
  provider_job_id:
  queue_name: maintenance
  priority:
  arguments:
  - guest
  - 42
  - _aj_globalid: gid://demo/User/1
  executions: 0
  exception_executions: {}
  locale: en
  timezone:
  enqueued_at: '2026-11-22T08:41:54Z'
"""

LEGACY_RECORD_METHOD = """\
--- !ruby/object:Delayed::PerformableMethod
object: !ruby/ActiveRecord:User
  attributes:
    id: 7
    name: Ann
method_name: :send_welcome
args: []
"""

LEGACY_CLASS_METHOD = """\
--- !ruby/object:Delayed::PerformableMethod
object: !ruby/class:Reporter {}
method_name: :generate
args:
- 3
"""

TOLERATED = """\
--- !ruby/object:OddJob
options: !ruby/hash:ActiveSupport::HashWithIndifferentAccess
  a: 1
  nested:
    b: 2
span: !ruby/range
  begin: 1
  end: 5
  excl: false
price: !ruby/object:BigDecimal 18:0.15e1
at: 2030-01-02 03:04:05.000000000 Z
body: |-
  line one
  line two
quoted_yes: 'yes'
quoted_n: "n"
quoted_number: '123'
plain_yes: yes
plain_off: off
symbol: !ruby/symbol pending
"""

GOLDEN = [
    NEWSLETTER,
    NEWSLETTER_STRUCT,
    RECORD_METHOD,
    CLASS_METHOD,
    MAILER,
    ACTIVE_JOB,
    LEGACY_RECORD_METHOD,
    LEGACY_CLASS_METHOD,
    TOLERATED,
]


def assert_json_friendly(decoded: Decoded) -> None:
    json.dumps(
        [decoded.class_name, decoded.args, decoded.kwargs, decoded.meta, decoded.display, decoded.error],
        allow_nan=False,
    )


@pytest.mark.parametrize("text", GOLDEN)
def test_every_golden_handler_decodes_to_json_values_and_is_never_runnable(text):
    decoded = decode_handler(text)
    assert decoded.error is None
    assert decoded.format == "delayed_job"
    assert decoded.runnable is False
    assert_json_friendly(decoded)


@pytest.mark.parametrize("text", GOLDEN)
def test_decode_payload_sniffs_handlers_as_delayed_job(text):
    assert decode_payload(text) == decode_handler(text)
    assert decode_payload(text.encode()) == decode_handler(text)


def test_plain_object_exposes_its_ivars_as_kwargs():
    decoded = decode_handler(NEWSLETTER)
    assert decoded.class_name == "NewsletterJob"
    assert decoded.args == []
    assert decoded.kwargs == {"text": "lorem ipsum...", "emails": ["a@example.com", "b@example.com"]}
    assert decoded.meta == {"kind": "object", "handler_class": "NewsletterJob"}
    assert decoded.display == {"__ruby__": "object:NewsletterJob", "value": decoded.kwargs}


def test_struct_exposes_its_members_as_kwargs():
    decoded = decode_handler(NEWSLETTER_STRUCT)
    assert decoded.class_name == "NewsletterStructJob"
    assert decoded.kwargs == {"text": "lorem ipsum...", "emails": ["a@example.com"]}
    assert decoded.meta == {"kind": "struct", "handler_class": "NewsletterStructJob"}


def test_object_without_ivars():
    decoded = decode_handler("--- !ruby/object:Empty {}\n")
    assert (decoded.class_name, decoded.args, decoded.kwargs) == ("Empty", [], {})


def test_performable_method_on_a_record_names_model_and_id():
    decoded = decode_handler(RECORD_METHOD)
    assert decoded.class_name == "User#send_welcome"
    assert decoded.args == ["hi"]
    assert decoded.kwargs == {}
    assert decoded.meta == {
        "kind": "method",
        "handler_class": "Delayed::PerformableMethod",
        "receiver": {"model": "User", "id": 1},
        "method_name": "send_welcome",
    }
    receiver = decoded.display["value"]["object"]
    assert receiver["__ruby__"] == "object:User"
    assert (
        receiver["value"]["concise_attributes"][3]["value"]["value_before_type_cast"]
        == "2026-11-22T08:41:54.845542+00:00"
    )


def test_performable_method_on_a_class_keeps_symbols_and_symbol_keys():
    decoded = decode_handler(CLASS_METHOD)
    assert decoded.class_name == "Reporter.generate"
    assert decoded.args == [":daily", {"format": "csv", ":limit": 5}]
    assert decoded.meta["receiver"] == {"class": "Reporter"}
    assert decoded.meta["kind"] == "method"
    assert decoded.display["value"]["object"] == {"__ruby__": "class", "value": "Reporter"}


def test_performable_mailer():
    decoded = decode_handler(MAILER)
    assert decoded.class_name == "UserMailer.welcome"
    assert decoded.args == [1]
    assert decoded.meta == {
        "kind": "mailer",
        "handler_class": "Delayed::PerformableMailer",
        "receiver": {"class": "UserMailer"},
        "method_name": "welcome",
    }


def test_legacy_forms_of_records_and_classes():
    record = decode_handler(LEGACY_RECORD_METHOD)
    assert record.class_name == "User#send_welcome"
    assert record.meta["receiver"] == {"model": "User", "id": 7}
    klass = decode_handler(LEGACY_CLASS_METHOD)
    assert klass.class_name == "Reporter.generate"
    assert klass.args == [3]


def test_older_rails_record_layout_finds_the_id_in_raw_values_not_types():
    text = """\
--- !ruby/object:Delayed::PerformableMethod
object: !ruby/object:Account
  attributes: !ruby/object:ActiveModel::AttributeSet
    attributes: !ruby/object:ActiveModel::LazyAttributeHash
      types:
        id: !ruby/object:ActiveModel::Type::Integer
          precision:
      values:
        id: 12
  new_record: false
method_name: :close
args: []
"""
    decoded = decode_handler(text)
    assert decoded.class_name == "Account#close"
    assert decoded.meta["receiver"] == {"model": "Account", "id": 12}


def test_method_on_a_plain_value_is_named_after_its_ruby_class():
    text = "--- !ruby/object:Delayed::PerformableMethod\nobject: hello\nmethod_name: :upcase\nargs: []\n"
    decoded = decode_handler(text)
    assert decoded.class_name == "String#upcase"
    assert decoded.meta["receiver"] == {"instance_of": "String", "value": "hello"}


def test_active_job_wrapper_shows_the_job_class_and_readable_arguments():
    decoded = decode_handler(ACTIVE_JOB)
    assert decoded.class_name == "GuestsCleanupJob"
    assert decoded.args == ["guest", 42, "gid://demo/User/1"]
    assert decoded.kwargs == {}
    assert decoded.meta == {
        "job_id": "f5b66daf-01df-4ef6-b385-bfdbebc732ed",
        "provider_job_id": None,
        "queue_name": "maintenance",
        "priority": None,
        "executions": 0,
        "exception_executions": {},
        "locale": "en",
        "timezone": None,
        "enqueued_at": "2026-11-22T08:41:54Z",
        "kind": "active_job",
        "handler_class": "ActiveJob::QueueAdapters::DelayedJobAdapter::JobWrapper",
    }


def test_active_job_markers_are_rendered_and_keywords_become_kwargs():
    text = """\
--- !ruby/object:ActiveJob::QueueAdapters::DelayedJobAdapter::JobWrapper
job_data:
  job_class: ReportJob
  job_id: 1b2c
  queue_name: default
  arguments:
  - flag: true
    x: 1
    _aj_symbol_keys:
    - flag
  - _aj_serialized: ActiveJob::Serializers::SymbolSerializer
    value: daily
  - _aj_serialized: ActiveJob::Serializers::DateTimeSerializer
    value: '2030-01-02T03:04:05.000000000Z'
  - _aj_serialized: ActiveJob::Serializers::DurationSerializer
    value: 3600
    parts:
    - - hours
      - 1
  - a: 1
    _aj_hash_with_indifferent_access: true
  - - _aj_globalid: gid://demo/User/2
  - user:
      _aj_globalid: gid://demo/User/3
    notify: false
    _aj_ruby2_keywords:
    - user
    - notify
"""
    decoded = decode_handler(text)
    assert decoded.error is None
    assert decoded.class_name == "ReportJob"
    assert decoded.args == [
        {"flag": True, "x": 1},
        ":daily",
        "2030-01-02T03:04:05.000000000Z",
        {"serializer": "ActiveJob::Serializers::DurationSerializer", "value": 3600, "parts": [["hours", 1]]},
        {"a": 1},
        ["gid://demo/User/2"],
    ]
    assert decoded.kwargs == {"user": "gid://demo/User/3", "notify": False}
    assert decoded.meta["job_id"] == "1b2c"


def test_tolerated_psych_output():
    decoded = decode_handler(TOLERATED)
    assert decoded.kwargs == {
        "options": {"a": 1, "nested": {"b": 2}},
        "span": {"__ruby__": "range", "value": {"begin": 1, "end": 5, "excl": False}},
        "price": {"__ruby__": "object:BigDecimal", "value": "18:0.15e1"},
        "at": "2030-01-02T03:04:05+00:00",
        "body": "line one\nline two",
        "quoted_yes": "yes",
        "quoted_n": "n",
        "quoted_number": "123",
        "plain_yes": True,
        "plain_off": False,
        "symbol": ":pending",
    }


def test_load_handler_gives_generic_nodes_not_ruby_objects():
    tree = ruby_yaml.load_handler(CLASS_METHOD)
    assert tree == RubyObject(
        "object",
        "Delayed::PerformableMethod",
        {
            "object": RubyObject("class", None, "Reporter"),
            "method_name": ":generate",
            "args": [":daily", {"format": "csv", ":limit": 5}],
        },
    )


def test_unknown_tags_stay_data():
    text = "--- !ruby/object:Job\nx: !foo bar\ny: !!python/tuple [1, 2]\n"
    tree = ruby_yaml.load_handler(text)
    assert tree.value == {"x": ForeignTag("!foo", "bar"), "y": ForeignTag("tag:yaml.org,2002:python/tuple", [1, 2])}
    assert decode_handler(text).kwargs == {
        "x": {"__tag__": "!foo", "value": "bar"},
        "y": {"__tag__": "tag:yaml.org,2002:python/tuple", "value": [1, 2]},
    }


def test_python_and_ruby_execution_tags_do_nothing(tmp_path):
    marker = tmp_path / "pwned"
    hostile = [
        f"--- !!python/object/apply:os.system ['touch {marker}']\n",
        f"--- !!python/object/apply:subprocess.check_call [['touch', '{marker}']]\n",
        f"--- !ruby/object:Delayed::PerformableMethod\nobject: !ruby/class 'Kernel'\n"
        f"method_name: :system\nargs:\n- touch {marker}\n",
        f"--- !ruby/object:Kernel\ncmd: !!python/object/new:os.system ['touch {marker}']\n",
        f"--- !ruby/object:Gem::Requirement\nrequirements: !ruby/object:Gem::Package::TarReader\n"
        f"  io: !ruby/object:Net::BufferedIO\n    io: !ruby/object:Gem::Package::TarReader::Entry\n"
        f"      read: 0\n      header: touch {marker}\n",
    ]
    results = [decode_handler(text) for text in hostile]
    assert not marker.exists()
    assert results[0].error is not None and results[1].error is not None
    assert results[2].class_name == "Kernel.system"
    assert results[2].args == [f"touch {marker}"]
    assert results[3].class_name == "Kernel"
    assert results[3].kwargs["cmd"]["__tag__"] == "tag:yaml.org,2002:python/object/new:os.system"
    assert results[4].class_name == "Gem::Requirement"
    for decoded in results:
        assert decoded.runnable is False
        assert_json_friendly(decoded)


@pytest.mark.parametrize(
    ("text", "guess"),
    [
        (ACTIVE_JOB[:-10], "ActiveJob::QueueAdapters::DelayedJobAdapter::JobWrapper"),  # truncated in a quote
        (ACTIVE_JOB[:120], "ActiveJob::QueueAdapters::DelayedJobAdapter::JobWrapper"),  # truncated in a key
        ("--- !ruby/object:BrokenJob\nlist: [1, 2\n", "BrokenJob"),
        ("--- !ruby/object:Tabbed\n\tx: 1\n", "Tabbed"),
        ("--- [unclosed\n", None),
        ("--- a\n--- b\n", None),
    ],
)
def test_yaml_that_does_not_parse_is_undecodable_with_delayed_jobs_name_guess(text, guess):
    decoded = decode_handler(text)
    assert decoded.error is not None and decoded.error.startswith("YAML does not parse: ")
    assert decoded.class_name == (guess or UNDECODABLE)
    assert decoded.runnable is False


@pytest.mark.parametrize("cut", [46, 60, 120, 400, RECORD_METHOD.index("method_name")])
def test_truncated_wrapper_that_still_parses_is_flagged_but_displayed(cut):
    decoded = decode_handler(RECORD_METHOD[:cut])
    assert decoded.error == "Delayed::PerformableMethod handler with no method_name"
    assert decoded.class_name == "Delayed::PerformableMethod"
    assert decoded.display["__ruby__"] == "object:Delayed::PerformableMethod"
    assert_json_friendly(decoded)


def test_wrapper_without_job_data_is_flagged():
    decoded = decode_handler("--- !ruby/object:ActiveJob::QueueAdapters::DelayedJobAdapter::JobWrapper {}\n")
    assert decoded.error == (
        "ActiveJob::QueueAdapters::DelayedJobAdapter::JobWrapper handler with no job_data.job_class"
    )


def test_invalid_utf8_is_undecodable_with_a_guess():
    decoded = decode_handler(b"--- !ruby/object:Foo\nx: \xff\n")
    assert decoded.error.startswith("invalid UTF-8")
    assert decoded.class_name == "Foo"


@pytest.mark.parametrize("text", ["", "---\n", "--- 42\n", "--- {a: 1}\n", "--- [1]\n"])
def test_yaml_that_is_not_a_ruby_object_is_undecodable(text):
    decoded = decode_handler(text)
    assert decoded.error is not None and "not a Ruby object" in decoded.error
    assert decoded.class_name == UNDECODABLE


def test_alias_bomb_is_undecodable_not_a_hang():
    lines = ["--- !ruby/object:Bomb", "a: &a [x, x, x, x, x, x, x, x, x]"]
    for name, previous in zip("bcdefg", "abcdef"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    decoded = decode_handler("\n".join(lines) + "\n")
    assert decoded.error is not None and "values" in decoded.error
    assert decoded.class_name == "Bomb"


def test_recursive_aliases_are_marked_not_followed():
    decoded = decode_handler("--- !ruby/object:Loop\nself: &a [1, *a]\n")
    assert decoded.kwargs == {"self": [1, "(recursive)"]}


@pytest.mark.parametrize("depth", [50, 900, 3000])
def test_deep_nesting_is_cut_or_undecodable_never_a_crash(depth):
    decoded = decode_handler("--- !ruby/object:Deep\nv: " + "[" * depth + "]" * depth + "\n")
    assert decoded.class_name == "Deep"
    assert_json_friendly(decoded)


def test_non_finite_floats_and_binary_strings_become_json_values():
    decoded = decode_handler("--- !ruby/object:Num\na: .inf\nb: -.inf\nc: .nan\nd: !binary |-\n  aMOpbGxv\n")
    assert decoded.kwargs == {"a": ".inf", "b": "-.inf", "c": ".nan", "d": "héllo"}


def test_non_string_keys_become_strings():
    decoded = decode_handler(
        "--- !ruby/object:Keys\nh:\n  1: one\n  1.5: x\n  ~: nil\n  2030-01-02: d\n"
        "  ? !ruby/object:Key {id: 1}\n  : k\n"
    )
    assert decoded.kwargs == {
        "h": {
            "1": "one",
            "1.5": "x",
            "null": "nil",
            "2030-01-02": "d",
            '{"__ruby__": "object:Key", "value": {"id": 1}}': "k",
        }
    }


def test_job_name_and_guess_follow_delayed_job():
    assert job_name(CLASS_METHOD) == "Reporter.generate"
    assert job_name(ACTIVE_JOB) == "GuestsCleanupJob"
    assert job_name("--- !ruby/object:Broken\nx: [\n") == "Broken"
    assert job_name("--- [\n") is None
    assert guess_class_name("junk !ruby/struct:Some::Job more") == "Some::Job"
    assert guess_class_name("no tags") is None


def test_pure_python_parser_used_for_big_handlers_gives_the_same_results(monkeypatch):
    expected = [decode_handler(text) for text in GOLDEN]
    monkeypatch.setattr(ruby_yaml, "_C_PARSER_MAX_INDICATORS", -1)
    assert [decode_handler(text) for text in GOLDEN] == expected
