"""Bad and odd data planted straight into SQLite and Redis, then every page and API read of the
dashboard: none answers 500; undecodable jobs show with their raw text; control characters in
job data show as visible escapes, never raw; a listing cuts large fields and says so, the job's
own page and endpoint give them whole; a retried job's old error is history, not a failure."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from qadmin.ops import Ops
from qadmin.web import create_app
from tests.faces.web.support import Web
from tests.reliability.test_rel_bad_data import plant

#: what a hostile writer puts in job data: a terminal's clear-screen and window-title sequences
ESC = "\x1b[2J\x1b]0;pwned\x07"
#: a field no listing should carry whole (3 MB: under the codecs' 4 MB decode limit, so it decodes)
BIG = 3 * 1024 * 1024


def plant_odd_sql(url: str) -> None:
    """Rows a foreign writer may leave: control characters in every text column, NULL dates,
    an odd queue name, a 10 MB argument."""
    now = datetime.now(UTC).replace(tzinfo=None)
    engine = sa.create_engine(url)
    insert = sa.text(
        "INSERT INTO delayed_jobs (priority, attempts, handler, last_error, run_at, locked_at, locked_by, "
        "failed_at, queue, created_at, updated_at) VALUES (0, :attempts, :handler, :error, :run_at, "
        ":locked_at, :locked_by, :failed_at, :queue, :created_at, :now)"
    )
    with engine.begin() as conn:
        base = {
            "attempts": 0,
            "error": None,
            "run_at": None,
            "locked_at": None,
            "locked_by": None,
            "failed_at": None,
            "created_at": None,
            "now": now,
        }
        conn.execute(
            insert,
            {
                **base,
                "queue": f"odd{ESC}",
                "error": f"Boom{ESC} odd-esc\n  at x",
                "attempts": 1,
                "failed_at": now,
                "run_at": now,
                "handler": json.dumps({"class": f"Odd{ESC}Job", "args": [f"odd-esc{ESC}"]}),
            },
        )
        conn.execute(
            insert,
            {
                **base,
                "queue": "big",
                "run_at": now,
                "locked_at": now,
                "locked_by": f"host:{ESC}pid:1",
                "handler": json.dumps({"class": "qadmin.examples.noop", "args": ["odd-big", "y" * BIG]}),
            },
        )
        conn.execute(insert, {**base, "queue": "", "handler": "odd-nodates \x00\x1b not a payload"})
        # a retried job: pending again, its last attempt's error kept as history
        conn.execute(
            insert,
            {
                **base,
                "queue": "default",
                "attempts": 2,
                "run_at": now,
                "error": "TimeoutError: odd-retried\n  at y",
                "handler": json.dumps({"class": "qadmin.examples.noop", "args": ["odd-retried"]}),
            },
        )
    engine.dispose()


def plant_odd_redis(url: str) -> None:
    import redis

    r = redis.Redis.from_url(url)
    r.sadd("resque:queues", f"odd{ESC}", "big")
    r.rpush(f"resque:queue:odd{ESC}", json.dumps({"class": f"Odd{ESC}Job", "args": [f"odd-esc{ESC}"]}))
    r.rpush("resque:queue:big", json.dumps({"class": "qadmin.examples.noop", "args": ["odd-big", "y" * BIG]}))
    r.rpush(
        "resque:failed",
        json.dumps(
            {
                "failed_at": "2026/11/23 10:00:00 UTC",
                "exception": f"Boom{ESC}",
                "error": "odd-failed",
                "backtrace": [f"x.rb:1{ESC}"],
                "worker": f"far:1:{ESC}",
                "queue": "default",
                "payload": {"class": "qadmin.examples.noop", "args": ["odd-failed"]},
            }
        ),
    )
    r.close()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def bad_web(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = request.getfixturevalue(f"{request.param}_url")
    planted = plant(url, tmp_path)
    (plant_odd_redis if request.param == "redis" else plant_odd_sql)(url)
    ops = Ops.open(url, face="web")
    app = create_app(ops, {"TESTING": True})
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a bug is a 500 answer, as a browser would see it
    web = Web(app).login()
    web.ops, web.planted, web.kind = ops, planted, request.param  # type: ignore[attr-defined]
    yield web
    ops.close()


def _all_jobs(web: Any) -> list[Any]:
    return web.ops.list_jobs(limit=500).jobs


def _get_urls(app: Any) -> list[str]:
    """Every GET route of the app that takes no parameter."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and rule.endpoint not in ("static", "auth.login")
    )


def test_every_page_and_api_read_answers_with_bad_data_in_the_backend(bad_web: Any) -> None:
    urls = _get_urls(bad_web.app)
    assert "/" in urls and "/api/jobs" in urls and "/metrics" in urls and "/errors" in urls
    states = ["", "pending", "scheduled", "locked", "stale", "failed", "finished"]
    urls += [f"/jobs?state={s}&limit=500" for s in states] + [f"/api/jobs?state={s}&limit=500" for s in states]
    urls += ["/jobs?undecodable=1", "/api/jobs?undecodable=1", "/jobs?sort=-id", "/jobs?search=odd"]
    for job in _all_jobs(bad_web):
        urls += [f"/jobs/{job.id}", f"/api/jobs/{job.id}", f"/audit?job={job.id}"]
    for url in urls:
        response = bad_web.get(url)
        assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:300])


def test_control_characters_in_job_data_are_shown_escaped_never_raw(bad_web: Any) -> None:
    pages = ["/", "/jobs?limit=500", "/jobs?state=failed", "/errors", "/workers"]
    pages += [f"/jobs/{j.id}" for j in _all_jobs(bad_web) if "odd" in (j.raw[:300] + (j.last_error or ""))]
    seen_escape = False
    for url in pages:
        html = bad_web.html(url)
        assert "\x1b" not in html and "\x07" not in html and "\x00" not in html, url
        seen_escape = seen_escape or "\\x1b[2J" in html
    assert seen_escape
    # the JSON keeps the data exact (JSON escapes control characters itself)
    text = bad_web.get("/api/jobs?limit=500").get_data(as_text=True)
    assert "\x1b" not in text and "\\u001b[2J" in text


def test_undecodable_jobs_show_their_raw_text_on_every_page(bad_web: Any) -> None:
    html = bad_web.html("/jobs?limit=500")
    assert "this is not a payload bad-nonjson" in html and "chip-undecodable" in html
    job_id = bad_web.planted.ids["bad-nonjson"]
    detail = bad_web.html(f"/jobs/{job_id}")
    assert "Undecodable payload" in detail and "this is not a payload bad-nonjson" in detail
    assert bad_web.get(f"/api/jobs/{job_id}").get_json()["raw"] == "this is not a payload bad-nonjson"


def test_a_listing_cuts_large_fields_and_the_job_gives_them_whole(bad_web: Any) -> None:
    response = bad_web.get("/api/jobs?limit=200")
    assert len(response.get_data()) < 512 * 1024  # a 3 MB job and an 8 MB undecodable one listed
    jobs = response.get_json()["jobs"]
    big = [j for j in jobs if isinstance(j.get("args"), list) and j["args"][:1] == ["odd-big"]]
    assert len(big) == 1
    listed = big[0]
    assert listed["args"][1].endswith("…") and len(listed["args"][1]) <= 4096
    assert listed["truncated"]["args"] >= BIG
    whole = bad_web.get(f"/api/jobs/{listed['id']}").get_json()
    assert whole["args"][1] == "y" * BIG and "truncated" not in whole
    html_page = bad_web.get("/jobs?limit=200").get_data()
    assert len(html_page) < 512 * 1024
    huge = bad_web.planted.ids["bad-huge"]
    assert len(bad_web.get(f"/api/jobs/{huge}").get_json()["raw"]) > 8 * 1024 * 1024


def test_a_retried_jobs_old_error_is_history_not_a_failure(bad_web: Any) -> None:
    retried = [j for j in _all_jobs(bad_web) if j.state.value != "failed" and j.last_error and not j.undecodable]
    if bad_web.kind == "sqlite":  # delayed_job keeps the last error on a job it runs again; Resque does not
        assert retried
    listing = bad_web.html("/jobs?limit=500")
    for job in retried:
        row = re.search(rf'<tr class="row-\w+">.*?href="/jobs/{re.escape(str(job.id))}".*?</tr>', listing, re.S)
        assert row is not None
        assert "err-old" in row.group() and "last attempt" in row.group()
        detail = bad_web.html(f"/jobs/{job.id}")
        assert "Last attempt's error" in detail and "data-old-error" in detail
        assert "card-error" not in detail
    failed = next(j for j in _all_jobs(bad_web) if j.state.value == "failed" and j.last_error)
    assert "card-error" in bad_web.html(f"/jobs/{failed.id}")


def odd_jobs() -> list[Any]:
    """Jobs as a backend may return them from a foreign writer's rows: naive dates, no queue, a
    priority that is text, lone surrogates (undecodable bytes kept by a decoder), control
    characters, a huge undecodable raw."""
    from qadmin.job import Job, JobState

    naive = datetime(2026, 1, 1, 12, 0)
    return [
        Job(
            id="q\udcff:1",
            queue="q\udcff",
            class_name="K\ud800\x1b",
            args=["a\udcfe"],
            run_at=naive,
            last_error="E\x1b[2J\nx",
            attempts=1,
        ),
        Job(
            id=7, queue=None, class_name="", state=JobState.LOCKED, locked_at=naive, locked_by="w\x9b", priority="high"
        ),  # type: ignore[arg-type]
        Job(
            id=8,
            queue="q",
            class_name="(undecodable)",
            raw="\x00" + "r" * BIG,
            undecodable="bad\x1b",
            state=JobState.FAILED,
            failed_at=None,
            created_at=naive,
        ),
    ]


@pytest.mark.parametrize("selectable", [True, False])
def test_the_job_table_shows_odd_field_values(ops: Ops, selectable: bool) -> None:
    from qadmin.web.templating import job_table

    app = create_app(ops, {"TESTING": True})
    with app.test_request_context("/jobs"):
        html = str(job_table(odd_jobs(), datetime.now(UTC), selectable))
    html.encode("utf-8")  # no lone surrogate left: the page can be sent
    assert "\x1b" not in html and "\x9b" not in html and "\x00" not in html
    assert "\\x1b" in html and "\\udcff" in html and len(html) < 64 * 1024
    assert html.count("<tr class=") == 3


def test_a_job_page_shows_odd_field_values(ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    web = Web(create_app(ops, {"TESTING": True})).login()
    web.app.config["PROPAGATE_EXCEPTIONS"] = False
    jobs = {str(j.id): j for j in odd_jobs()}
    monkeypatch.setattr(Ops, "show", lambda self, job_id: jobs[str(job_id)])
    for job_id in ("7", "8"):
        response = web.get(f"/jobs/{job_id}")
        assert response.status_code == 200, (job_id, response.get_data(as_text=True)[:300])
        assert "\x1b" not in response.get_data(as_text=True)
        api = web.get(f"/api/jobs/{job_id}")
        assert api.status_code == 200


def test_previews_and_dry_runs_cut_their_samples_like_listings(bad_web: Any) -> None:
    big = next(j for j in _all_jobs(bad_web) if j.decodable and j.args[:1] == ["odd-big"])
    preview = bad_web.api_post("/api/previews", json={"verb": "delete", "id": [big.id]})
    assert preview.status_code == 201 and len(preview.get_data()) < 64 * 1024
    assert preview.get_json()["sample"][0]["truncated"]["args"] >= BIG
    shown = bad_web.get(f"/api/previews/{preview.get_json()['token']}")
    assert len(shown.get_data()) < 64 * 1024
    dry = bad_web.api_post("/api/delete", json={"id": [big.id], "dry_run": True})
    assert dry.status_code == 200 and len(dry.get_data()) < 64 * 1024
    assert dry.get_json()["sample"][0]["truncated"]["args"] >= BIG
