"""Poison in a Resque namespace: keys of the wrong type, numbers that are not numbers, schedule
members that are not seconds, payloads of nothing, NULs and NaN, planted on a real Redis beside
good jobs. The rule: a value the decoder cannot read is an undecodable job (never claimed); a key
of the wrong type makes that queue (or list) unreadable, shown with its key on every face and in
/metrics; everything else goes on: a worker on `*` runs every good job, every face answers.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from bench.chaos import child_env, qadmin_cmd
from qadmin.backends import open_backend
from qadmin.cli import main
from qadmin.job import NewJob, utcnow
from qadmin.ops import Ops
from tests.faces.tui.harness import drive
from tests.faces.tui.helpers import overview
from tests.reliability.test_rel_bad_data import cli

pytestmark = pytest.mark.redis

RECORD = "qadmin.examples.record"


@dataclass
class Poisoned:
    url: str
    tokens: Path
    #: keys that must be named as unreadable
    bad_keys: list[str]


def plant(url: str, tmp_path: Path) -> Poisoned:
    tokens = tmp_path / "tokens.txt"
    now = utcnow()
    backend = open_backend(url)
    try:
        r = redis.Redis.from_url(url)
        # bad payloads ahead of a good job in one queue: read as undecodable, never claimed
        r.rpush(
            "resque:queue:alpha",
            b"",
            b"\x00\x01\x00",
            b"NaN",
            b"-1",
            b"null",
            b"[]",
            b'{"class":""}',
            b'{"class":"qadmin.examples.record","args":[NaN]}',
            b'{"class":"x","args":[1e999]}',
        )
        backend.enqueue(NewJob(RECORD, [str(tokens), "good-alpha"], queue="alpha"))
        backend.enqueue(NewJob(RECORD, [str(tokens), "good-zulu"], queue="zulu"))
        past = int((now - timedelta(minutes=5)).timestamp())
        backend.enqueue(NewJob(RECORD, [str(tokens), "good-delayed"], queue="zulu", run_at=now + timedelta(seconds=2)))
        due = [m for m in r.zrange("resque:delayed_queue_schedule", 0, -1)]
        # ... and it is due already (as if planted long ago)
        for member in due:
            r.zadd("resque:delayed_queue_schedule", {member: past})
        # keys of the wrong type
        r.set("resque:queue:str", "a string where a list belongs")
        r.hset("resque:queue:hash", "f", "v")
        r.delete("resque:queues")
        r.set("resque:queues", "not a set")
        r.set(f"resque:delayed:{past - 1}", "a string where a delayed list belongs")
        r.hset(f"resque:delayed:{past + 7200}", "f", "v")
        r.zadd(
            "resque:delayed_queue_schedule",
            {
                str(past - 1): past - 1,
                str(past + 7200): past + 7200,
                "abc": past - 2,
                "nan": past - 3,
                "-5": -5,
                "": past - 4,
                "inf": past - 5,
                "1e999": past - 6,
            },
        )
        r.rpush("resque:qadmin:locked", "a list where a sorted set belongs")
        r.rpush("resque:qadmin:finished", "a list")
        r.set("resque:qadmin:workers", "a string")
        r.set("resque:qadmin:unique", "a string")
        r.set("resque:qadmin:paused", "a string")
        r.set("resque:failed", "a string where the failed list belongs")
        r.set("resque:workers", "a string")
        r.rpush("resque:workers:heartbeat", "a list")
        r.hset("resque:pause-all-workers", "f", "v")
        minute = int(now.timestamp()) // 60 * 60
        for m in (minute, minute + 60, minute + 120):
            r.set(f"resque:qadmin:throughput:{m}", "a string")
        # numbers that are not
        r.set("resque:stat:processed", "notanumber")
        r.set("resque:stat:failed", "NaN")
        r.close()
    finally:
        backend.close()
    return Poisoned(
        url,
        tokens,
        ["resque:queue:str", "resque:queue:hash", "resque:queues", f"resque:delayed:{past - 1}", "resque:failed"],
    )


@pytest.fixture
def poisoned(redis_url: str, tmp_path: Path) -> Poisoned:
    return plant(redis_url, tmp_path)


def test_a_star_worker_runs_every_good_job(poisoned: Poisoned) -> None:
    res = subprocess.run(
        qadmin_cmd(poisoned.url, "worker", "--queue", "*", "--burst", "--sleep", "0.05"),
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert sorted(poisoned.tokens.read_text().splitlines()) == ["good-alpha", "good-delayed", "good-zulu"]
    # the bad payloads were never claimed: still where they were
    r = redis.Redis.from_url(poisoned.url)
    assert r.llen("resque:queue:alpha") == 9
    assert r.get("resque:queue:str") == b"a string where a list belongs"
    r.close()


def test_every_cli_listing_answers_and_names_the_bad_keys(poisoned: Poisoned) -> None:
    url = poisoned.url
    for args in (["jobs"], ["stats"], ["queues"], ["errors"], ["workers"], ["audit"]):
        cli(url, *args)
    jobs = cli(url, "jobs", "--json", "--limit", "200")
    text = json.dumps(jobs)
    for key in ("resque:queue:str", "resque:queue:hash", "resque:failed"):
        assert key in text, key
    assert sum(1 for j in jobs if j.get("undecodable")) >= 9 + 2
    good = [j for j in jobs if j["class"] == RECORD and not j.get("undecodable")]
    assert len(good) == 3
    stats = json.dumps(cli(url, "stats", "--json"))
    queues = json.dumps(cli(url, "queues", "--json"))
    for key in poisoned.bad_keys:
        assert key in stats, key
    for key in ("resque:queue:str", "resque:queue:hash"):
        assert key in queues, key
    assert "resque:stat:processed" in stats
    assert "resque:failed" in json.dumps(cli(url, "errors", "--json")) + stats
    for job in jobs:
        if job.get("undecodable"):
            shown = cli(url, "show", str(job["id"]), "--json")
            assert shown["id"] == job["id"] and shown["undecodable"]
    # a verb on an unreadable key's entry changes nothing and says so
    unreadable = [j for j in jobs if "resque:queue:str" in json.dumps(j)]
    assert unreadable
    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None})
    result = runner.invoke(main, ["--url", url, "delete", str(unreadable[0]["id"]), "--yes"])
    assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) <= 2, result.output
    r = redis.Redis.from_url(url)
    assert r.get("resque:queue:str") == b"a string where a list belongs"
    r.close()


def test_the_web_pages_api_and_metrics_answer(poisoned: Poisoned) -> None:
    from qadmin.web import create_app

    ops = Ops.open(poisoned.url, face="web")
    try:
        app = create_app(ops, {"TESTING": True})
        client = app.test_client()
        assert client.get(f"/login?token={app.config['QADMIN_LOGIN_TOKEN']}").status_code == 303
        for path in (
            "/",
            "/partials/overview",
            "/jobs",
            "/jobs?state=pending,scheduled,failed&limit=200",
            "/errors",
            "/workers",
            "/audit",
            "/api/stats",
            "/api/queues",
            "/api/workers",
            "/api/errors",
            "/api/audit",
            "/api/jobs?limit=200",
            "/metrics",
        ):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.get_data(as_text=True)[-2000:])
        listed = client.get("/api/jobs?limit=200").get_json()
        for job in listed["jobs"] if isinstance(listed, dict) else listed:
            assert client.get(f"/jobs/{job['id']}").status_code == 200, job["id"]
            assert client.get(f"/api/jobs/{job['id']}").status_code == 200, job["id"]
        metrics = client.get("/metrics").get_data(as_text=True)
        for key in poisoned.bad_keys:
            assert key in metrics, key
        jobs_page = client.get("/jobs?state=pending,scheduled,failed&limit=200").get_data(as_text=True)
        assert "resque:queue:str" in jobs_page
        overview_page = client.get("/").get_data(as_text=True)
        for key in poisoned.bad_keys:
            assert key in overview_page, key
    finally:
        ops.close()


def test_the_tui_overview_loads(poisoned: Poisoned) -> None:
    from qadmin.tui.app import QadminApp

    app = QadminApp(Ops(open_backend(poisoned.url), face="tui"))
    app.animation_level = "none"
    seen: dict[str, Any] = {}

    async def scenario(pilot: Any) -> None:
        screen = await overview(pilot)
        seen["stats"] = screen.stats

    drive(app, scenario)
    assert seen["stats"] is not None and "zulu" in seen["stats"].queues
    assert "resque:queue:str" in " ".join(seen["stats"].unreadable)


def test_verbs_still_act_on_undecodable_entries_beside_the_poison(poisoned: Poisoned) -> None:
    url = poisoned.url
    r = redis.Redis.from_url(url)
    # a php-resque job whose status key is of the wrong type: shown, and retried, without its status
    php = b'{"class":"My_Job","args":[{"a":1}],"id":"48816519aaa5034aeac8e18728917051","queue_time":1795336967.27}'
    r.delete("resque:failed")  # a string here: the job goes in a readable failed list
    r.rpush(
        "resque:failed",
        b'{"failed_at":"2026/11/22 08:41:11 UTC","payload":'
        + php
        + b',"exception":"E","error":"x","backtrace":[],"worker":"w:1:q","queue":"beta"}',
    )
    r.hset("resque:job:48816519aaa5034aeac8e18728917051:status", "f", "v")
    shown = cli(url, "show", "beta:48816519aaa5034aeac8e18728917051", "--json")
    assert shown["state"] == "failed"
    cli(url, "retry", "beta:48816519aaa5034aeac8e18728917051")
    assert r.lrange("resque:queue:beta", 0, -1) == [php]
    # a bulk retry puts back what can go back: a job of a queue whose key is of the wrong type stays failed
    stuck = (
        b'{"failed_at":"2026/11/22 08:41:11 UTC","payload":{"class":"Archive","args":[5]},'
        b'"exception":"E","error":"x","backtrace":[],"worker":"w:1:q","queue":"str"}'
    )
    fine = stuck.replace(b'"queue":"str"', b'"queue":"beta"').replace(b"[5]", b"[6]")
    r.rpush("resque:failed", stuck, fine)
    cli(url, "retry", "--failed")
    assert r.lrange("resque:queue:beta", 0, -1) == [php, b'{"class":"Archive","args":[6]}']
    assert r.get("resque:queue:str") == b"a string where a list belongs"
    failed = cli(url, "jobs", "--json", "--state", "failed")
    assert [j["args"] for j in failed if j["queue"] == "str"] == [[5]]
    # a unique job is enqueued though qadmin's unique hash was of the wrong type (it is moved aside)
    r.set("resque:qadmin:unique", "a string")
    cli(url, "enqueue", "Archive", "7", "--queue", "gamma", "--unique", "k7")
    assert r.llen("resque:queue:gamma") == 1 and r.type("resque:qadmin:unique") == b"hash"
    # the audit log of qadmin's verbs goes on past a counter that is no number and a job set of the wrong type
    r.set("resque:qadmin:audit:seq", "notanumber")
    r.set("resque:qadmin:audit:1:jobs", "a string")
    # an undecodable payload is deleted by its id; its neighbours stay
    jobs = cli(url, "jobs", "--json", "--limit", "200", "--queue", "alpha")
    empty = [j for j in jobs if j.get("undecodable") and j.get("raw") == ""]
    assert len(empty) == 1
    runner = CliRunner(env={"QADMIN_URL": None, "QADMIN_CONFIG": None, "QADMIN_BACKEND": None})
    result = runner.invoke(main, ["--url", url, "delete", str(empty[0]["id"]), "--yes"])
    assert result.exit_code == 0, result.output
    assert b"" not in r.lrange("resque:queue:alpha", 0, -1) and r.llen("resque:queue:alpha") == 9
    assert [a["verb"] for a in cli(url, "audit", "--json")][:1] == ["delete"]
    r.delete("resque:qadmin:audit:1:jobs")
    r.set("resque:qadmin:audit:1:jobs", "a string")  # `show` reads a job's audit through these sets
    cli(url, "show", str([j for j in jobs if j["id"] != empty[0]["id"]][0]["id"]), "--json")
    r.close()
