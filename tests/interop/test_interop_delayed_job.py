"""qadmin as the admin console of a real delayed_job database (issue 2).

The rows are written by the real delayed_job and delayed_job_active_record gems
(tests/interop/delayed_job_app.rb): the table comes from the gem's own generator migration, the
failures from a real Delayed::Worker. qadmin lists them, retries, unlocks, deletes and dequeues,
and the Ruby worker then runs what qadmin gave back, which the jobs' own side effects prove.
Runs on SQLite and PostgreSQL (`sql_url`).
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

from qadmin.backends import BackendOptions
from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.ops import Ops
from tests.interop._support import DelayedJobApp, cli, need_ruby, qadmin_worker_burst

GID = "gid://interop/User/1"
REPORT_ARGS = ["report", ":daily", {":format": "csv", ":limit": 5}]
FLAKY = ["flaky_struct", "flaky_class_method", "flaky_record_method", "flaky_active_job"]
#: label -> (class, args, state, queue, attempts, first line of last_error or None)
EXPECTED = {
    "flaky_struct": ("FlakyStructJob", [], "failed", None, 1, "flaky_struct: flag file missing"),
    "flaky_class_method": (
        "Reporter.flaky",
        ["flaky_class_method"],
        "failed",
        None,
        1,
        "flaky_class_method: flag file missing",
    ),
    "flaky_record_method": (
        "User#flaky_welcome",
        ["flaky_record_method"],
        "failed",
        "mail",
        1,
        "flaky_record_method: flag file missing",
    ),
    "flaky_active_job": (
        "FlakyActiveJob",
        ["flaky_active_job", GID],
        "failed",
        "maintenance",
        1,
        "flaky_active_job: flag file missing",
    ),
    "charge": ("ChargeJob", [], "failed", "billing", 1, "card declined for order 1001"),
    "ghost": ("GhostJob", [], "failed", None, 0, None),  # checked by prefix below
    "retry_later": ("RetryLaterJob", [], "scheduled", None, 1, "retry_later: upstream timed out"),
    "stale_lock": ("NewsletterStructJob", [], "locked", None, 0, None),
    "live_lock": ("NewsletterStructJob", [], "locked", None, 0, None),
    "newsletter": ("NewsletterJob", [], "pending", "mail", 0, None),
    "newsletter_struct": ("NewsletterStructJob", [], "pending", None, 0, None),
    "report": ("Reporter.generate", REPORT_ARGS, "pending", "reports", 0, None),
    "welcome": ("User#send_welcome", ["welcome", "hi"], "pending", None, 0, None),
    "later": ("NewsletterStructJob", [], "scheduled", None, 0, None),
    "cleanup": ("GuestsCleanupJob", ["cleanup", "guest", 42, GID], "pending", "maintenance", 0, None),
}


def _ops(url: str) -> Ops:
    return Ops.open(url, options=BackendOptions(), face="test")


def _by_label(app: DelayedJobApp, jobs: list[dict]) -> dict[str, dict]:
    labels = {v: k for k, v in app.ids.items()}
    return {labels[j["id"]]: j for j in jobs}


def _labels(app: DelayedJobApp, jobs: list[dict]) -> set[str]:
    return set(_by_label(app, jobs))


def test_activejob_is_available_for_the_interop_tests() -> None:
    # the ActiveJob rows are only written when Debian's ruby-activejob is installed
    need_ruby("active_job")


def test_lists_real_delayed_job_rows_with_classes_args_states_and_errors(delayed_job: DelayedJobApp) -> None:
    app, url = delayed_job, delayed_job.url
    expected = {k: v for k, v in EXPECTED.items() if app.has_active_job or "active_job" not in k and k != "cleanup"}
    assert set(app.ids) == set(expected)

    # the table was found with no --table: it is delayed_job's own `delayed_jobs`
    jobs = _by_label(app, cli(url, "jobs", "--limit", "100", "--json"))
    assert set(jobs) == set(expected)
    for label, (class_name, args, state, queue, attempts, error) in expected.items():
        job = jobs[label]
        assert (job["class"], job["args"], job["state"], job["queue"], job["attempts"]) == (
            class_name,
            args,
            state,
            queue,
            attempts,
        ), label
        assert job["format"] == "delayed_job"
        assert "undecodable" not in job, label
        if error is not None:
            first, _, backtrace = job["last_error"].partition("\n")
            assert first == error
            assert "delayed_job_app.rb" in backtrace  # delayed_job keeps message + backtrace
    assert jobs["ghost"]["last_error"].startswith("Job failed to load: undefined class/module GhostJob")

    # object and struct jobs: their instance variables / members, decoded (multibyte intact)
    assert jobs["newsletter"]["kwargs"] == {
        "label": "newsletter",
        "text": "héllo wörld ✓",
        "emails": ["a@example.com", "b@example.com"],
    }
    assert jobs["charge"]["kwargs"] == {"order_id": 1001}
    assert jobs["newsletter"]["priority"] == 5
    assert jobs["stale_lock"]["priority"] == -2

    # failed rows keep the worker's lock (delayed_job does not clear it) but are not locks
    host = socket.gethostname()
    assert jobs["charge"]["locked_by"].startswith(f"host:{host} pid:")
    assert jobs["stale_lock"]["locked_by"].startswith(f"delayed_job.0 host:{host} pid:")
    assert jobs["stale_lock"].get("stale") is True  # its process is gone
    assert jobs["live_lock"]["locked_by"] == f"host:{host} pid:1"
    assert "stale" not in jobs["live_lock"]

    # filters: decoded class names and exact decoded args, states, queues, text
    def labels(*args: str) -> set[str]:
        return _labels(app, cli(url, "jobs", "--limit", "100", "--json", *args))

    assert labels("--class", "User#send_welcome") == {"welcome"}
    assert labels("--class", "Reporter.generate", "--args", json.dumps(REPORT_ARGS)) == {"report"}
    assert labels("--class", "Reporter.generate", "--args", '["report"]') == set()
    assert labels("--class", "NewsletterStructJob") == {"stale_lock", "live_lock", "newsletter_struct", "later"}
    assert labels("--state", "failed", "--queue", "mail") == {"flaky_record_method"}
    assert labels("--state", "stale") == {"stale_lock"}
    assert labels("--state", "scheduled") == {"retry_later", "later"}
    assert labels("--search", "wörld") == {"newsletter"}
    assert labels("--queue", "", "--state", "pending") == {"newsletter_struct", "welcome"}
    if app.has_active_job:
        assert labels("--class", "GuestsCleanupJob", "--args", json.dumps(["cleanup", "guest", 42, GID])) == {"cleanup"}

    ops = _ops(url)
    try:
        assert ops.count(JobFilter(class_name="Reporter.flaky")) == 1
        welcome = ops.show(app.ids["welcome"])
        assert welcome.meta["receiver"] == {"model": "User", "id": app.setup_result["user_id"]}
        assert welcome.raw.startswith("--- !ruby/object:Delayed::PerformableMethod\n")

        # error groups: delayed_job's last_error has no class name, so a group is its first line
        groups = {g.error: g for g in ops.error_groups()}
        failed = [k for k, v in expected.items() if v[2] == "failed"]
        assert sum(g.count for g in groups.values()) == len(failed)
        charge = groups["card declined for order 1001"]
        assert (charge.count, charge.classes, charge.queues) == (1, ["ChargeJob"], ["billing"])
        assert charge.sample_id == app.ids["charge"]

        stats = ops.stats()
        totals = {
            state: sum(q[state] for q in stats.queues.values())
            for state in ("pending", "scheduled", "locked", "stale", "failed")
        }
        count = {s: sum(1 for v in expected.values() if v[2] == s) for s in ("pending", "scheduled", "failed")}
        assert totals == {**count, "locked": 2, "stale": 1}
        assert stats.queues["billing"]["failed"] == 1

        # delayed_job's lock holders show as workers
        workers = {w.name: w for w in ops.workers()}
        stale_owner = jobs["stale_lock"]["locked_by"]
        assert workers[stale_owner].stale and workers[stale_owner].current_job == app.ids["stale_lock"]
        assert not workers[f"host:{host} pid:1"].stale
    finally:
        ops.close()


def test_retried_jobs_are_run_again_by_the_ruby_worker(delayed_job: DelayedJobApp) -> None:
    app, url = delayed_job, delayed_job.url
    flaky = [label for label in FLAKY if label in app.ids]
    failed = flaky + ["charge", "ghost"]
    before = app.rows()

    preview = cli(url, "retry", "--failed", "--dry-run", "--json")
    assert (preview["matched"], preview["changed"]) == (len(failed), 0)
    assert app.rows() == before

    # retry one by id first, then the rest of the failed set
    one = cli(url, "retry", str(app.ids["ghost"]), "--json")
    assert (one["matched"], one["changed"]) == (1, 1)
    result = cli(url, "retry", "--failed", "--json")
    assert (result["matched"], result["changed"]) == (len(failed) - 1, len(failed) - 1)

    after = app.rows()
    for label in failed:
        old, new = before[app.ids[label]], after[app.ids[label]]
        assert new["handler"] == old["handler"], label  # a foreign handler is never rewritten
        assert new["last_error"] == old["last_error"]
        assert (new["failed_at"], new["locked_at"], new["locked_by"], new["attempts"]) == (None, None, None, 0)
        assert new["run_at"] is not None
    untouched = set(app.ids) - set(failed)
    assert all(after[app.ids[label]] == before[app.ids[label]] for label in untouched)
    jobs = _by_label(app, cli(url, "jobs", "--state", "pending", "--limit", "100", "--json"))
    assert set(failed) <= set(jobs)

    # only the lock of the dead process is released; the live worker keeps its job
    unlocked = cli(url, "unlock", "--stale", "--json")
    assert (unlocked["matched"], unlocked["changed"]) == (1, 1)
    rows = app.rows()
    assert rows[app.ids["stale_lock"]]["locked_at"] is None
    assert rows[app.ids["stale_lock"]]["locked_by"] is None
    assert rows[app.ids["live_lock"]] == before[app.ids["live_lock"]]

    # the real Delayed::Worker runs what qadmin gave back
    app.allow_flaky_jobs_to_succeed()
    succeeded, failures = app.work()
    assert failures == 1  # ChargeJob always declines
    log = app.log
    for label in flaky:
        assert log.count(f"{label} attempt") == 2, log
        assert log.count(f"{label} ok") == 1, log
    assert "stale_lock struct sent 1" in log
    assert "live_lock struct sent 1" not in log

    left = app.rows()
    assert set(left) == {app.ids[k] for k in ("charge", "retry_later", "live_lock", "later")}
    charge = left[app.ids["charge"]]
    assert charge["failed_at"] is not None and charge["attempts"] == 1
    assert charge["last_error"].startswith("card declined for order 1001\n")
    assert succeeded == len(app.ids) - 4

    audit = _ops(url)
    try:
        verbs = [(e.verb, e.changed) for e in audit.audit()]
    finally:
        audit.close()
    assert ("retry", len(failed) - 1) in verbs and ("unlock", 1) in verbs


def test_delete_and_dequeue_by_decoded_class_and_args(delayed_job: DelayedJobApp) -> None:
    app, url = delayed_job, delayed_job.url
    before = app.rows()

    # dequeue compares decoded args: Ruby symbols and symbol-keyed hashes included
    dry = cli(
        url,
        "dequeue",
        "--queue",
        "reports",
        "--class",
        "Reporter.generate",
        "--args",
        json.dumps(REPORT_ARGS),
        "--dry-run",
        "--json",
    )
    assert (dry["matched"], dry["changed"]) == (1, 0)
    wrong = cli(
        url,
        "dequeue",
        "--queue",
        "reports",
        "--class",
        "Reporter.generate",
        "--args",
        json.dumps(["report", ":weekly", {":format": "csv", ":limit": 5}]),
        "--json",
    )
    assert wrong["matched"] == 0
    done = cli(
        url,
        "dequeue",
        "--queue",
        "reports",
        "--class",
        "Reporter.generate",
        "--args",
        json.dumps(REPORT_ARGS),
        "--json",
    )
    assert (done["matched"], done["changed"]) == (1, 1)

    # delayed_job's default queue is NULL: `--queue ''` names it
    welcome = cli(
        url, "dequeue", "--queue", "", "--class", "User#send_welcome", "--args", '["welcome", "hi"]', "--json"
    )
    assert (welcome["matched"], welcome["changed"]) == (1, 1)
    # dequeue only takes waiting jobs: the failed Reporter.flaky stays
    assert cli(url, "dequeue", "--queue", "", "--class", "Reporter.flaky", "--json")["matched"] == 0

    deleted = cli(url, "delete", "--state", "failed", "--class", "ChargeJob", "--yes", "--json")
    assert (deleted["matched"], deleted["changed"]) == (1, 1)
    by_id = cli(url, "delete", str(app.ids["later"]), "--yes", "--json")
    assert by_id["changed"] == 1

    gone = {app.ids[k] for k in ("report", "welcome", "charge", "later")}
    rows = app.rows()
    assert set(rows) == set(before) - gone
    assert all(rows[i] == before[i] for i in rows)

    app.work()
    log = app.log
    assert not any(line.startswith(("report ", "welcome ")) for line in log), log
    assert "newsletter sent 2" in log and "newsletter_struct struct sent 1" in log


def test_a_qadmin_worker_sharing_the_table_leaves_ruby_jobs_untouched(delayed_job: DelayedJobApp, tmp_path) -> None:
    app, url = delayed_job, delayed_job.url
    # locks taken five hours ago are expired under delayed_job's rules (max_run_time 4h), so any
    # worker may take them over: a qadmin worker still must not
    app.execute(
        "UPDATE delayed_jobs SET locked_at = :t WHERE id IN (:a, :b)",
        t=datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=5),
        a=app.ids["stale_lock"],
        b=app.ids["live_lock"],
    )
    ruby_rows = app.rows()
    out = tmp_path / "qadmin-ran.txt"
    for token in ("one", "two"):
        cli(url, "enqueue", "qadmin.examples.record", str(out), token, "--queue", "py")
    result = qadmin_worker_burst(url, "--queue", "*")
    assert out.read_text().split() == ["one", "two"], result

    rows = app.rows()
    assert set(rows) == set(ruby_rows)  # qadmin's own rows are done and gone
    assert rows == ruby_rows  # not locked, not run, not failed: byte for byte the same
    ops = _ops(url)
    try:
        finished = ops.list_jobs(JobFilter(states=frozenset({JobState.FINISHED})), limit=10).jobs
        assert sorted(j.args[1] for j in finished) == ["one", "two"]
    finally:
        ops.close()

    # and delayed_job's own worker still runs its jobs afterwards, expired locks included. The
    # sharing is one-way: delayed_job has no notion of foreign rows and fails any qadmin job in a
    # queue it serves (README: keep qadmin's jobs in queues the Ruby workers do not serve)
    mine = cli(url, "enqueue", "qadmin.examples.record", str(out), "three", "--queue", "py")
    app.work()
    assert {"newsletter sent 2", "stale_lock struct sent 1", "live_lock struct sent 1"} <= set(app.log)
    [failed] = cli(url, "jobs", "--class", "qadmin.examples.record", "--json")
    assert failed["state"] == "failed" and str(failed["id"]) in mine
    assert "undefined method" in failed["last_error"] and "perform" in failed["last_error"].split("\n")[0]
