"""`JobFilter`: parsing from strings, writing back, and the exact match predicate."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qadmin.errors import UsageError
from qadmin.filters import JobFilter, class_matches, parse_args_json, parse_states
from qadmin.job import Job, JobState, utcnow

# --- strategies -------------------------------------------------------------------------------
#: words as they appear in queue names, worker names and ids: no list separator, no outer blanks
word = (
    st.text(st.characters(blacklist_characters=",\x00", blacklist_categories=("Cs",)), min_size=1, max_size=12)
    .map(str.strip)
    .filter(bool)
)
#: filters refuse NUL bytes (no job name or text holds one; PostgreSQL refuses them)
any_text = st.text(st.characters(blacklist_characters="\x00"), max_size=20).filter(bool)
json_scalar = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
job_id = st.integers(min_value=0, max_value=2**63) | word.filter(lambda w: not (w.isascii() and w.isdigit()))


@st.composite
def filters(draw: st.DrawFn) -> JobFilter:
    states = draw(st.frozensets(st.sampled_from(list(JobState))))
    stale_only = draw(st.booleans()) and (not states or JobState.LOCKED in states)
    if stale_only:
        states = states | {JobState.LOCKED}
    return JobFilter(
        states=frozenset(states),
        queues=tuple(draw(st.lists(word, max_size=3))),
        class_name=draw(st.none() | any_text),
        args=draw(st.none() | st.lists(json_value, max_size=3).map(tuple)),
        search=draw(st.none() | any_text),
        ids=tuple(draw(st.lists(job_id, max_size=3))),
        locked_by=draw(st.none() | any_text),
        stale_only=stale_only,
        error=draw(st.none() | any_text),
        undecodable=draw(st.booleans()),
    )


KEYS = ["state", "queue", "class", "args", "search", "id", "worker", "stale", "error", "undecodable", "page"]
param_value = (
    st.text(max_size=30)
    | st.lists(st.text(max_size=10), max_size=3)
    | st.sampled_from(
        ["stale", "failed,pending", "[1,2]", "[[[[[[", "[NaN]", "[1e999]", "²", "0012", "true", " , ,", "[" * 5000]
    )
)
params = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), param_value, max_size=6)


# --- properties -------------------------------------------------------------------------------
@given(filters())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_to_params_then_from_params_gives_the_same_filter(f: JobFilter) -> None:
    params = f.to_params()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    assert JobFilter.from_params(params) == f


@given(params)
@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
def test_any_parameters_parse_or_raise_usage_error_only(p: dict) -> None:
    try:
        f = JobFilter.from_params(p)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    # whatever parsed is canonical: written back and parsed again it is the same filter
    assert JobFilter.from_params(f.to_params()) == f


@given(st.text(max_size=50))
def test_parse_args_json_accepts_arrays_and_rejects_the_rest_with_usage_error(text: str) -> None:
    try:
        value = parse_args_json(text)
    except UsageError:
        return
    assert isinstance(value, list)


# --- examples ---------------------------------------------------------------------------------
def test_from_params_parses_every_field() -> None:
    f = JobFilter.from_params(
        {
            "state": "failed, stale",
            "queue": ["a,b", "c"],
            "class": "X",
            "args": '[1, "é"]',
            "search": "boom",
            "id": "3,abc",
            "worker": "host:h",
            "error": "E: m",
            "undecodable": "yes",
        }
    )
    assert f.states == frozenset({JobState.FAILED, JobState.LOCKED}) and f.stale_only
    assert f.queues == ("a", "b", "c") and f.class_name == "X" and f.args == (1, "é")
    assert f.ids == (3, "abc") and f.locked_by == "host:h" and f.error == "E: m" and f.undecodable


def test_empty_values_select_everything() -> None:
    f = JobFilter.from_params({"state": "", "queue": "", "class": "", "args": "", "search": ""})
    assert f.is_empty and f.describe() == "all jobs"


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"state": "bogus"}, "unknown state 'bogus'"),
        ({"args": "{not json"}, "--args is not valid JSON"),
        ({"args": '{"a": 1}'}, "must be a JSON array"),
        ({"args": "[NaN]"}, "--args is not valid JSON"),
        ({"args": "[1e999]"}, "--args is not valid JSON"),
        ({"args": "[" * 100_000}, "--args is not valid JSON"),
    ],
)
def test_bad_parameters_are_usage_errors(bad: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        JobFilter.from_params(bad)


def test_parse_states_accepts_commas_and_case() -> None:
    assert parse_states(["Failed,PENDING", " scheduled "]) == frozenset(
        {JobState.FAILED, JobState.PENDING, JobState.SCHEDULED}
    )


def test_unicode_digits_are_not_mistaken_for_numeric_ids() -> None:
    assert JobFilter.from_params({"id": "²"}).ids == ("²",)
    assert JobFilter.from_params({"id": "0012"}).ids == (12,)


def _job(**kw: object) -> Job:
    base = dict(
        id=7,
        queue="email",
        class_name="SendEmail",
        args=["a@x", 2],
        state=JobState.FAILED,
        last_error="ValueError: bad\ntrace",
        raw='{"class":"SendEmail","args":["a@x",2]}',
        locked_by=None,
    )
    base.update(kw)
    return Job(**base)  # type: ignore[arg-type]


def test_matches_is_the_exact_predicate() -> None:
    job = _job()
    assert JobFilter().matches(job)
    assert JobFilter(
        states=frozenset({JobState.FAILED}),
        queues=("email",),
        class_name="SendEmail",
        args=("a@x", 2),
        ids=("7",),
        error="ValueError: bad",
    ).matches(job)
    assert not JobFilter(args=("a@x",)).matches(job)
    assert not JobFilter(class_name="Email").matches(job)  # a prefix, not any substring
    assert JobFilter(search="A@X").matches(job)
    assert not JobFilter(search="zzz").matches(job)
    assert not JobFilter(undecodable=True).matches(job)
    locked = _job(state=JobState.LOCKED, locked_by="host:h pid:1", locked_at=utcnow() - timedelta(hours=9), stale=True)
    assert JobFilter(stale_only=True, locked_by="pid:1").matches(locked)
    assert not JobFilter(stale_only=True).matches(_job(state=JobState.LOCKED, stale=False))


def test_to_params_is_json_safe_and_readable() -> None:
    f = JobFilter(states=frozenset({JobState.LOCKED}), stale_only=True, args=("é",))
    assert f.to_params() == {"state": "stale", "args": '["é"]'}
    assert json.loads(f.to_params()["args"]) == ["é"]
    assert f.describe() == 'state=stale args=["é"]'


# --- the class filter -------------------------------------------------------------------------
CLASS_CASES = [
    # (filter, class, selected)
    ("qadmin.examples.SendEmail", "qadmin.examples.SendEmail", True),  # the full name
    ("SendEmail", "qadmin.examples.SendEmail", True),  # the last part
    ("sendemail", "qadmin.examples.SendEmail", True),  # in any case
    ("sendem", "qadmin.examples.SendEmail", True),  # a prefix of the last part
    ("QADMIN.EX", "qadmin.examples.SendEmail", True),  # a prefix of the full name
    ("SendEmail", "qadmin.examples.SendEmailLater", True),  # prefixes are prefixes
    ("Email", "qadmin.examples.SendEmail", False),  # not any substring
    ("examples.SendEmail", "qadmin.examples.SendEmail", False),  # nor a trailing part
    ("SendEmail", "qadmin.examples.SendEmailer.x", False),  # the last part is x
    ("charge", "Billing::Charge", True),  # Ruby
    ("Billing::", "Billing::Charge", True),
    ("send", "myapp.jobs:send_mail", True),  # module:function
    ("SEND", "App\\Jobs\\SendMail", True),  # PHP namespaces
    ("", "", True),  # empty finds only empty
    ("", "X", False),
    ("é", "É", False),  # ASCII case only
    ("É", "É", True),
    ("(undecodable)", "(undecodable)", True),
]


@pytest.mark.parametrize("wanted, class_name, selected", CLASS_CASES)
def test_the_class_filter_rule(wanted: str, class_name: str, selected: bool) -> None:
    assert class_matches(wanted, class_name) is selected
    assert JobFilter(class_name=wanted).matches(_job(class_name=class_name)) is selected


def test_the_class_filter_rule_is_documented_where_users_read_it() -> None:
    from pathlib import Path

    import qadmin.filters

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for text in (qadmin.filters.__doc__ or "", readme):
        assert "last component" in text and "prefix" in text


def test_a_queue_named_twice_is_one_queue() -> None:
    """Redis counted the jobs of `--queue email --queue email` twice (found by the property test)."""
    assert JobFilter(queues=("email", "billing", "email")).queues == ("email", "billing")
    assert JobFilter.from_params({"queue": ["a", "a,b"]}).queues == ("a", "b")


def test_a_queue_named_twice_counts_once_on_every_backend(any_url: str) -> None:
    from qadmin.backends import open_backend
    from qadmin.job import NewJob

    backend = open_backend(any_url)
    try:
        backend.init()
        for n in range(3):
            backend.enqueue(NewJob("qadmin.examples.noop", [n], queue="email"))
        twice = JobFilter(queues=("email", "email"))
        assert backend.count(twice, utcnow()) == len(backend.find(twice, utcnow(), limit=10).jobs) == 3
    finally:
        backend.close()
