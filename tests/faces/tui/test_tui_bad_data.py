"""Payloads and fields the decoders cannot read, planted straight into SQLite and Redis: every page
of the console shows them (undecodable ones as such) and none raises."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from textual.widgets import DataTable

from qadmin.backends import open_backend
from qadmin.filters import JobFilter
from qadmin.job import NewJob
from qadmin.ops import Ops
from qadmin.tui.app import QadminApp
from qadmin.tui.screens.job_detail import JobDetailScreen
from tests.faces.tui.harness import drive, wait_for
from tests.faces.tui.helpers import open_jobs, overview, rows, text_of

#: handlers or queue items whose class or arguments are of the wrong kind, or not a payload at all
ODD_PAYLOADS = [
    b"this is not a payload",
    b'{"class":"qadmin.examples.noop","args":["truncated",',
    b'{"class":"qadmin.examples.noop","args":["not utf-8 \xff\xfe"]}',
    b'{"class":null,"args":5}',
    b'{"class":7,"args":{"a":1},"kwargs":[1]}',
    b"[]",
    b"null",
    b"123",
    b'"a string"',
    b"--- !ruby/object:Broken\n  args: [unclosed",
    b'O:13:"HelloWorldJob":1:{s:4:"name";s:99:"short";}',
]


def plant_sqlite(url: str) -> None:
    with sqlite3.connect(url.split("///", 1)[1]) as db:
        for handler in ODD_PAYLOADS:
            db.execute(
                "INSERT INTO delayed_jobs (handler, run_at, queue, created_at) "
                "VALUES (?, datetime('now'), 'bad', datetime('now'))",
                (handler,),
            )
        # odd but legal fields: no queue, an error with a NUL on a pending job, a lock owner
        # without a lock time, a failure without an error, a failed job without a payload
        db.execute(
            "INSERT INTO delayed_jobs (handler, run_at, queue, last_error, locked_by, created_at) "
            "VALUES ('{\"class\":\"C\",\"args\":[]}', datetime('now'), NULL, ?, 'host:1:w', NULL)",
            ("E\x00rr\x1b[2J",),
        )
        db.execute(
            "INSERT INTO delayed_jobs (handler, run_at, queue, failed_at, attempts) "
            "VALUES ('{\"class\":\"C\",\"args\":[1]}', datetime('now'), 'bad', datetime('now'), 3)"
        )
        db.execute(
            "INSERT INTO delayed_jobs (handler, run_at, queue, failed_at, last_error) "
            "VALUES ('', datetime('now'), 'bad', datetime('now'), 'RuntimeError: boom\n  at x')"
        )
        # a worker row another program wrote: queues a list of anything, a current job that is no id
        db.execute(
            "INSERT INTO qadmin_workers "
            "(name, job_table, host, pid, queues, heartbeat_at, current_job) VALUES "
            "('host:odd pid:1', 'delayed_jobs', 'host', 1, '[null, 5, \"bad\"]', "
            "datetime('now'), 'no such job')"
        )


def plant_redis(url: str) -> None:
    import redis

    r = redis.Redis.from_url(url)
    r.rpush("resque:queue:bad", *ODD_PAYLOADS)
    r.sadd("resque:queues", "bad")
    entries: list[Any] = [
        {
            "failed_at": "2026/11/23 10:00:00 UTC",
            "exception": "RuntimeError",
            "error": "no payload",
            "backtrace": ["x.rb:1"],
            "worker": "far:1:bad",
            "queue": "bad",
        },
        {
            "failed_at": "2026/11/23 10:00:01 UTC",
            "exception": "RuntimeError",
            "error": "args a string",
            "payload": {"class": "qadmin.examples.noop", "args": "not a list"},
            "worker": "far:1:bad",
            "queue": "bad",
        },
        {"failed_at": "garbage", "exception": None, "error": None, "payload": None, "worker": 5, "queue": None},
        {
            "failed_at": 12,
            "exception": ["x"],
            "error": {"a": 1},
            "payload": {"class": None, "args": None},
            "backtrace": "not a list",
            "queue": 7,
        },
        ["a failure entry that is a list"],  # not "[]": the same text as a queue item shares its id (13.4)
    ]
    r.rpush("resque:failed", *[json.dumps(e) for e in entries], b"a failure entry that is not JSON")
    # a worker record another program wrote: queues a list of anything, a current job that is no id
    r.hset(
        "resque:qadmin:workers",
        "host:odd pid:1",
        json.dumps(
            {
                "host": "host",
                "pid": "1",
                "queues": [None, 5, "bad"],
                "current_job": {"no": "id"},
                "processed": "7",
                "started_at": "garbage",
                "heartbeat_at": None,
            }
        ),
    )
    r.close()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def url(request: pytest.FixtureRequest) -> str:
    url = request.getfixturevalue(f"{request.param}_url")
    backend = open_backend(url)
    backend.init()
    backend.enqueue(NewJob("qadmin.examples.noop", ["good"], queue="bad"))
    backend.close()
    (plant_redis if request.param == "redis" else plant_sqlite)(url)
    return url


def test_every_page_shows_bad_and_odd_jobs_without_an_exception(url: str) -> None:
    ops = Ops(open_backend(url), face="test")
    listed = ops.list_jobs(JobFilter(), limit=100).jobs
    ops.close()
    assert len(listed) >= len(ODD_PAYLOADS) + 2
    app = QadminApp(Ops(open_backend(url), face="tui"), backend_name="bad")
    app.animation_level = "none"
    gone: list[Any] = []

    async def scenario(pilot: Any) -> None:
        screen = await overview(pilot)
        assert "bad" in [r[0] for r in rows(screen.query_one("#queues"))]
        jobs = await open_jobs(pilot, JobFilter())
        assert sorted(str(k.value) for k in jobs.table.rows) == sorted(str(j.id) for j in listed)
        shown = {r[1]: r for r in rows(jobs.table)}
        for job in listed:
            if job.undecodable:
                assert shown[str(job.id)][5].startswith("undecodable"), shown[str(job.id)]
        for job in listed:  # every detail, with its raw payload
            app.open_job(job.id)
            await wait_for(
                pilot,
                lambda: (
                    isinstance(app.screen, JobDetailScreen)
                    and (app.screen.gone or app.screen.job is not None and app.screen.job.id == job.id)
                ),
                f"the detail of {job.id}",
            )
            detail = app.screen
            if detail.gone:
                gone.append(job)
                await pilot.press("escape")
                continue
            await pilot.press("v")
            await pilot.pause()
            if job.undecodable:
                assert "Undecodable payload" in text_of(detail.query_one("#job-banner"))
            for part in ("#job-title", "#job-fields", "#job-payload", "#job-error", "#job-raw"):
                text_of(detail.query_one(part))
            await pilot.press("escape")
        for key, table in (("3", "#errors"), ("4", "#workers")):
            await pilot.press(key)
            await wait_for(pilot, lambda: bool(app.screen.query(table)), f"the page of {table}")
            page = app.screen
            await wait_for(pilot, lambda: not page._inflight and app.status[0] == "ok", f"{table} to load")
        [odd] = [r for r in rows(app.screen.query_one("#workers", DataTable)) if r[1] == "host:odd pid:1"]
        assert odd[2] == "—, 5, bad", odd
        await pilot.press("enter")  # its current job is no job: the detail says so
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.gone, "the detail")
        await pilot.press("escape")
        await pilot.press("3")
        assert sum(int(r[0]) for r in rows(app.screen.query_one("#errors"))) >= 2
        assert app.status[0] == "ok", app.status

    drive(app, scenario, size=(160, 50))
    assert not gone, [(j.id, j.raw[:80]) for j in gone]
