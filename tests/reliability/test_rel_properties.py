"""Property tests (hypothesis) for what tests/codecs and tests/model/test_filters.py leave open:

* qadmin's JSON codec: encode -> decode gives back class, args, kwargs and extras, in Resque's
  byte layout (class and args first, compact, raw UTF-8);
* the Redis backend's exact-bytes JSON surgery (`members`, `without`, `with_members`): edits give
  the object they should and keep every other member's bytes;
* `parse_duration`: sums of units are exact, and any text is a finite duration or a ConfigError;
* `JobFilter` against the backends: what a backend finds (with whatever it pushes down into SQL or
  Redis) is exactly what `JobFilter.matches` selects, and `count` agrees, on every backend.
"""

from __future__ import annotations

import json
import math
import re
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qadmin.backends import open_backend
from qadmin.backends.redis.json_text import members, with_members, without
from qadmin.codecs import json_codec
from qadmin.config import MAX_DURATION, parse_duration
from qadmin.errors import ConfigError
from qadmin.filters import JobFilter
from qadmin.job import JobState, utcnow

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalar = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | text
)
value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)
class_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}((::|\.)[A-Za-z_][A-Za-z0-9_]{0,8}){0,2}", fullmatch=True)


# --- the JSON codec ---------------------------------------------------------------------------
@SETTINGS
@given(
    class_name,
    st.lists(value, max_size=4),
    st.dictionaries(text, value, max_size=3),
    st.dictionaries(text.filter(lambda k: k not in ("class", "args", "kwargs")), value, max_size=3),
)
def test_json_payloads_round_trip(name: str, args: list[Any], kwargs: dict[str, Any], meta: dict[str, Any]) -> None:
    encoded = json_codec.encode(name, args, kwargs, meta)
    # Resque's layout: class first, then args; compact; UTF-8 as it is (what Ruby's json gem writes)
    assert encoded.startswith('{"class":' + json_codec.dumps(name) + ',"args":')
    assert encoded == json.dumps(json.loads(encoded), separators=(",", ":"), ensure_ascii=False)
    decoded = json_codec.decode(encoded)
    assert decoded.error is None
    assert (decoded.class_name, decoded.args, decoded.kwargs) == (name, args, kwargs)
    assert decoded.meta == meta


@SETTINGS
@given(value)
def test_any_json_value_decodes_or_is_undecodable_never_raises(anything: Any) -> None:
    decoded = json_codec.decode(json.dumps(anything))
    if decoded.error is None:
        assert isinstance(anything, dict) and decoded.class_name == anything["class"]
        assert decoded.args == (anything.get("args") or [])


# --- exact-bytes JSON surgery (Redis) ---------------------------------------------------------
@st.composite
def json_object_texts(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An object as any writer may have spelled it: spaces, escapes, key order."""
    obj = draw(st.dictionaries(text, value, max_size=5))
    ascii_only = draw(st.booleans())
    pad = draw(st.sampled_from(["", " ", "\n  ", "\t"]))
    parts = [
        json.dumps(k, ensure_ascii=ascii_only) + pad + ":" + pad + json.dumps(v, ensure_ascii=ascii_only)
        for k, v in obj.items()
    ]
    return pad + "{" + pad + ("," + pad).join(parts) + pad + "}" + pad, obj


@SETTINGS
@given(json_object_texts(), st.lists(text, max_size=3))
def test_without_removes_exactly_those_members_and_keeps_the_others_bytes(
    case: tuple[str, dict[str, Any]], drop: list[str]
) -> None:
    source, obj = case
    parsed = members(source)
    assert parsed is not None and set(parsed) == set(obj)
    out = without(source, drop)
    assert json.loads(out) == {k: v for k, v in obj.items() if k not in drop}
    if not any(k in obj for k in drop):
        assert out == source
    for key, (_, key_start, _, value_end) in parsed.items():
        if key not in drop:
            assert source[key_start:value_end] in out


@SETTINGS
@given(json_object_texts(), st.dictionaries(text, value, max_size=2), st.lists(text, max_size=2))
def test_with_members_sets_and_drops_and_keeps_the_others_bytes(
    case: tuple[str, dict[str, Any]], values: dict[str, Any], drop: list[str]
) -> None:
    source, obj = case
    drop = [k for k in drop if k not in values]
    out = with_members(source, values, drop=drop)
    expected = {k: v for k, v in obj.items() if k not in drop}
    expected.update(values)
    assert json.loads(out) == expected
    parsed = members(source)
    assert parsed is not None
    for key, (_, key_start, _, value_end) in parsed.items():
        if key not in drop and key not in values:
            assert source[key_start:value_end] in out


def test_member_surgery_refuses_what_is_not_one_object() -> None:
    for bad in ("", "[]", "{", '{"a":1}x', '{"a" 1}', "{'a':1}", '{"a":1,}', "nope"):
        assert members(bad) is None
        assert without(bad, ["a"]) == bad


# --- durations --------------------------------------------------------------------------------
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(list(UNITS))), min_size=1, max_size=4))
def test_durations_in_units_add_up(parts: list[tuple[int, str]]) -> None:
    spelled = "".join(f"{n}{unit}" for n, unit in parts)
    total = sum(n * UNITS[u] for n, u in parts)
    if total > MAX_DURATION:
        with pytest.raises(ConfigError, match="too long"):
            parse_duration(spelled)
        return
    assert parse_duration(spelled) == pytest.approx(total)


@SETTINGS
@given(st.floats(min_value=0, max_value=MAX_DURATION, allow_nan=False, allow_infinity=False))
def test_a_plain_number_of_seconds_reads_back(seconds: float) -> None:
    assert parse_duration(repr(seconds)) == seconds
    assert parse_duration(seconds) == seconds


@SETTINGS
@given(st.floats(min_value=MAX_DURATION, exclude_min=True, allow_nan=False, allow_infinity=False))
def test_a_duration_past_a_hundred_years_is_a_config_error(seconds: float) -> None:
    for spelled in (seconds, repr(seconds)):
        with pytest.raises(ConfigError, match="too long"):
            parse_duration(spelled)


@SETTINGS
@given(
    st.one_of(
        st.text(max_size=12),
        st.text(alphabet=string.digits + "smhdw.-+e_ nainfINF", max_size=12),
        st.floats().map(repr),
    )
)
def test_any_text_is_a_finite_duration_or_a_config_error(spelled: str) -> None:
    try:
        seconds = parse_duration(spelled)
    except ConfigError as exc:
        assert str(exc)
        return
    assert math.isfinite(seconds) and 0 <= seconds <= MAX_DURATION


# --- JobFilter against the backends ----------------------------------------------------------
@pytest.fixture
def demo(any_url: str) -> Any:
    """`qadmin demo`'s jobs in every state, plus two undecodable ones, read once as the truth."""
    from qadmin.demo import fill

    backend = open_backend(any_url)
    backend.init()
    fill(backend)
    if backend.kind == "redis":
        backend.client.rpush("resque:queue:email", b'{"class":"Odd","args":[1,', b"50% off_\\sale")
    else:
        import sqlalchemy as sa

        with backend.engine.begin() as conn:
            for handler in ('{"class":"Odd","args":[1,', "50% off_\\sale"):
                conn.execute(
                    sa.text("INSERT INTO delayed_jobs (priority, attempts, handler, queue) VALUES (0, 0, :h, 'email')"),
                    {"h": handler},
                )
    now = utcnow()
    live = backend.find(JobFilter(), now, limit=10_000).jobs
    finished = backend.find(JobFilter(states=frozenset({JobState.FINISHED})), now, limit=10_000).jobs
    yield Demo(backend, now, live, finished)
    backend.close()


class Demo:
    def __init__(self, backend: Any, now: Any, live: list[Any], finished: list[Any]) -> None:
        self.backend, self.now, self.live, self.finished = backend, now, live, finished

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"<demo data on {self.backend.kind}: {len(self.live)} live, {len(self.finished)} finished>"


def short_class_names(jobs: list[Any]) -> st.SearchStrategy[str]:
    """What an operator types for a class: its last part or a prefix of it or of the full name,
    in any case (the rule of `class_matches`)."""
    names = sorted({j.class_name for j in jobs if j.class_name})
    last = [re.split(r"[.:\\]", n)[-1] for n in names]
    cases = st.sampled_from([str, str.lower, str.upper])
    return st.tuples(st.sampled_from(names + last), st.integers(1, 40), cases).map(lambda t: t[2](t[0][: t[1]]))


@st.composite
def filters_over(draw: st.DrawFn, jobs: list[Any]) -> JobFilter:
    """Filters built from what the data holds (so that they match something), and from noise."""

    def pick(values: list[Any], noise: Any) -> Any:
        return draw(st.none() | st.sampled_from(values or [None]) | noise)

    raws = [j.raw for j in jobs if j.raw]
    snippet = st.sampled_from(raws).flatmap(
        lambda raw: st.tuples(st.integers(0, len(raw)), st.integers(1, 8)).map(lambda t: raw[t[0] : t[0] + t[1]])
    )
    states = draw(st.frozensets(st.sampled_from(list(JobState)), max_size=2))
    stale_only = draw(st.booleans()) and (not states or JobState.LOCKED in states)
    if stale_only:
        states = states | {JobState.LOCKED}
    ids = draw(st.lists(st.sampled_from([j.id for j in jobs]), max_size=3))
    return JobFilter(
        states=states,
        queues=tuple(draw(st.lists(st.sampled_from(sorted({j.queue or "" for j in jobs}) + ["nowhere"]), max_size=2))),
        class_name=pick(sorted({j.class_name for j in jobs}), st.just("Nope") | short_class_names(jobs)),
        args=pick([tuple(j.args) for j in jobs], st.just((1,))),
        search=draw(st.none() | snippet | st.sampled_from(["%", "_", "\\", "50%", "off_", "EXAMPLE", "é"])),
        ids=tuple(ids) + tuple(draw(st.lists(st.sampled_from([999_999, "email:000000000000"]), max_size=1))),
        locked_by=pick(sorted({(j.locked_by or "")[:8] for j in jobs if j.locked_by}), st.just("host:nobody")),
        stale_only=stale_only,
        error=pick(sorted({j.error_message for j in jobs if j.error_message}), st.just("Nope: no")),
        undecodable=draw(st.booleans()),
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_what_a_backend_finds_is_what_the_filter_matches(demo: Any, data: st.DataObject) -> None:
    backend, now, live, finished = demo.backend, demo.now, demo.live, demo.finished
    selection = data.draw(filters_over(live + finished))
    # ids are compared as the backend parses them (SQL ids are integers, Redis ids strings)
    if selection.ids and backend.kind == "redis":
        assume(all(isinstance(i, str) for i in selection.ids))
    if selection.ids and backend.kind != "redis":
        assume(all(isinstance(i, int) for i in selection.ids))
    universe = live + finished if selection.states else live
    expected = sorted(str(j.id) for j in universe if selection.matches(j))
    found = backend.find(selection, now, limit=10_000).jobs
    assert sorted(str(j.id) for j in found) == expected, selection
    assert backend.count(selection, now) == len(expected), selection


def test_sql_finished_jobs_are_found_and_counted_with_the_whole_filter(demo: Any) -> None:
    """Regression: SQL once listed only the finished jobs when `finished` came with other states,
    and counted finished jobs by their queue alone."""
    backend, now = demo.backend, demo.now
    if backend.kind == "redis":
        pytest.skip("the Redis backend gets these right (the property above covers it)")
    everything = demo.live + demo.finished
    assert demo.finished, "the demo data has finished jobs"
    mixed = JobFilter(states=frozenset({JobState.PENDING, JobState.FINISHED}))
    expected = sorted(j.id for j in everything if mixed.matches(j))
    assert sorted(j.id for j in backend.find(mixed, now, limit=10_000).jobs) == expected
    assert backend.count(mixed, now) == len(expected)
    # page by page, every page as long as asked, each job once
    seen: list[Any] = []
    cursor = None
    while True:
        page = backend.find(mixed, now, limit=3, cursor=cursor)
        assert len(page.jobs) == 3 or page.next_cursor is None
        seen += [j.id for j in page.jobs]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == expected and len(seen) == len(set(seen))
    finished = JobFilter(states=frozenset({JobState.FINISHED}))
    some = demo.finished[0]
    for selection in (
        JobFilter(states=finished.states, class_name="Nope"),
        JobFilter(states=finished.states, class_name=some.class_name),
        JobFilter(states=finished.states, args=tuple(some.args)),
        JobFilter(states=finished.states, search=some.class_name.rsplit(".", 1)[-1].upper()),
        JobFilter(states=finished.states, ids=(some.id,)),
        JobFilter(states=finished.states, locked_by="nobody"),
        JobFilter(states=finished.states, error="RuntimeError: boom"),
        JobFilter(states=finished.states | {JobState.LOCKED}, stale_only=True),
        JobFilter(states=finished.states | {JobState.FAILED}, class_name=some.class_name),
    ):
        want = sorted(j.id for j in everything if selection.matches(j))
        assert sorted(j.id for j in backend.find(selection, now, limit=10_000).jobs) == want, selection
        assert backend.count(selection, now) == len(want), selection
