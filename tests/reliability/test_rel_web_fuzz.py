"""The web dashboard's JSON API fuzzed with schemathesis against the OpenAPI description the app
serves at /api/openapi.json: every operation, reads and writes, with generated parameters and
bodies. No answer is a server error, every status is one the description documents, and every
JSON body matches its schema: schemathesis' whole default set of checks runs on every answer.

Beyond what the description allows, the generated values are poisoned now and then (`poison`):
strings with a lone surrogate (which only JSON can carry: `"\\ud800"`), integers past 64 bits,
floats at the edge of their range, as a hostile client would send them.

Authentication, CSRF, throttling, escaping in the browser and secrets in logs are tested by
tests/faces/web/test_web_security.py and tests/faces/web/test_web_browser.py; they are not repeated here.
The requests carry the bearer token (fuzzing wrong tokens would only trip the login throttle).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, reject, settings

from qadmin.backends import open_backend
from tests.servers import missing

TOKEN = "fuzz-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: statuses an operation answers that its description does not list yet (reported)
KNOWN_UNDOCUMENTED: dict[tuple[str, str], set[int]] = {}
#: a path parameter that makes the URL the route expects
PLAIN_SEGMENT = re.compile(r"[^/\s%][^\s%]*")
#: what a hostile client puts in place of a generated value: lone surrogates, numbers past 64 bits
#: and at the edge of a float, a NUL, control characters
BAD_STRINGS = ("\ud800", "a\udfffb", "\x00", "\x1b[2J", "9" * 30, "[99999999999999999999999]", "1e999")
BAD_NUMBERS = (2**63, -(2**63) - 1, 10**30, 1e308, -1e308)

try:
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis.checks import positive_data_acceptance
except ImportError:  # pragma: no cover - the `test` extra installs it
    schemathesis = None


def poison(value: Any) -> Any:
    """A strategy: `value` as generated, or with each leaf perhaps replaced by a hostile one."""
    if isinstance(value, bool) or value is None:
        return st.just(value)
    if isinstance(value, str):
        return st.sampled_from((value, *BAD_STRINGS, value + "\ud800"))
    if isinstance(value, (int, float)):
        return st.sampled_from((value, *BAD_NUMBERS))
    if isinstance(value, dict):
        return st.fixed_dictionaries({k: poison(v) for k, v in value.items()})
    if isinstance(value, list):
        return st.tuples(*(poison(v) for v in value)).map(list)
    return st.just(value)


def flatmap_body(context: Any, body: Any) -> Any:
    return poison(body)


def flatmap_query(context: Any, query: Any) -> Any:
    # a query string cannot carry a lone surrogate itself (it is UTF-8 on the wire): the filters
    # that are JSON text (`args`) carry it escaped
    if not isinstance(query, dict):
        return st.just(query)
    choices = {
        k: st.sampled_from((v, '["\\ud800"]', "9" * 30, "[99999999999999999999999]", "-1", "1e999"))
        for k, v in query.items()
    }
    return st.fixed_dictionaries(choices)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The app on `qadmin demo`'s data in SQLite (integer ids) or Redis (QUEUE:HEX ids)."""
    if schemathesis is None:
        missing("schemathesis is not installed (pip install schemathesis; it belongs in the `test` extra)")
    from qadmin.demo import fill
    from qadmin.ops import Ops
    from qadmin.web import create_app

    url = f"sqlite:///{tmp_path}/fuzz.db" if request.param == "sqlite" else request.getfixturevalue("redis_url")
    backend = open_backend(url)
    fill(backend)
    backend.close()
    ops = Ops.open(url, face="web")
    app = create_app(ops, {"TESTING": True, "QADMIN_LOGIN_TOKEN": TOKEN})
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a bug is a 500 answer, as a client would see it
    # schemathesis' ignored_auth check sends wrong tokens on every operation: past the bearer
    # budget they would get 429 (tests/faces/web/test_web_security.py tests the throttle)
    from qadmin.web.credentials import Throttle

    app.extensions["qadmin"].auth.bearer_throttle = Throttle(per_client=10**9, overall=10**9)
    loaded = schemathesis.openapi.from_wsgi("/api/openapi.json", app, headers=AUTH)
    for hook in (flatmap_body, flatmap_query):
        loaded.hooks.register_hook_with_name(hook, hook.__name__)
    yield loaded
    ops.close()


if schemathesis is not None:
    schema = schemathesis.pytest.from_fixture("api")

    @schema.parametrize()
    @settings(
        max_examples=8,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,
        ],
    )
    def test_the_json_api_answers_every_generated_request_as_documented(case: Any) -> None:
        try:
            response = case.call(headers=AUTH)
        except UnicodeEncodeError:
            reject()  # a lone surrogate in a form body or a query: no client can send it
        assert response.status_code != 500, (case.method, case.formatted_path, response.text[:500])
        # every check but positive_data_acceptance: the description cannot say which backend names,
        # job ids and queues exist (they are data), and poisoned values are not positive data; a
        # 400 for them is the right answer
        case.validate_response(response, headers=AUTH, excluded_checks=[positive_data_acceptance])
        if case.method.upper() != case.operation.method.upper():  # a method the route does not take
            # Flask answers OPTIONS (and HEAD on a GET route) itself; anything else is refused (405, or
            # 400 where `GET /api/jobs/<path:id>` reads "1/retry" as an id)
            allowed = {200, 405} if case.method.upper() in ("OPTIONS", "HEAD") else {400, 404, 405}
            assert response.status_code in allowed, (case.method, case.path, response.status_code)
            return
        documented = set(case.operation.definition.raw.get("responses", {}))
        allowed = documented | {str(s) for s in KNOWN_UNDOCUMENTED.get((case.method, case.path), ())}
        if case.path_parameters and not all(PLAIN_SEGMENT.fullmatch(str(v)) for v in case.path_parameters.values()):
            # an empty or slash-led segment, a line break (Werkzeug's `path` converter stops at one) or
            # a `%` the client sends undecoded is another URL, or none
            allowed |= {"404", "308"}
        assert str(response.status_code) in allowed or "default" in documented, (
            case.method,
            case.path,
            case.path_parameters,
            response.status_code,
            sorted(documented),
            response.text[:300],
        )
else:

    def test_the_json_api_answers_every_generated_request_as_documented(api: Any) -> None:
        pass  # the fixture fails under CI, skips elsewhere


def test_metrics_documents_its_bad_request() -> None:
    from qadmin.web.openapi import spec

    assert "400" in spec()["paths"]["/metrics"]["get"]["responses"]


@pytest.mark.postgres
def test_a_nul_byte_in_a_filter_is_bad_input_on_postgresql(postgres_url: str) -> None:
    from qadmin.ops import Ops
    from qadmin.web import create_app

    open_backend(postgres_url).init()
    ops = Ops.open(postgres_url, face="web")
    try:
        app = create_app(ops, {"TESTING": True, "QADMIN_LOGIN_TOKEN": TOKEN})
        app.config["PROPAGATE_EXCEPTIONS"] = False
        client = app.test_client()
        for url in ("/api/jobs?queue=%00", "/api/jobs?error=%00", "/api/jobs?worker=%00"):
            assert client.get(url, headers=AUTH).status_code == 400, url
        assert client.post("/api/queues/%00/pause", headers=AUTH).status_code == 400
    finally:
        ops.close()
