"""The server-rendered pages through Flask's test client, on the SQLite demo data."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from qadmin.errors import JobNotFound
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob
from qadmin.ops import Ops
from qadmin.worker import Worker, WorkerOptions
from tests.faces.web.support import Web, make_web

FAILED = JobFilter(states=frozenset({JobState.FAILED}))


def ids_of(ops: Ops, selection: JobFilter) -> list:
    return [j.id for j in ops.list_jobs(selection, limit=500).jobs]


def confirm_token(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:400]
    match = re.search(r"/actions/([A-Za-z0-9_-]+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def fail_one_more(ops: Ops, queue: str = "billing") -> None:
    """A new job fails the way real ones do: a worker runs it."""
    ops.backend.enqueue(NewJob("qadmin.examples.ChargeCard", [9999, 100], queue=queue, max_attempts=1))
    Worker(
        ops.backend,
        WorkerOptions(queues=[queue], burst=True, sleep=0, heartbeat_interval=3600, imports=["qadmin.examples"]),
    ).run_once()
    getattr(ops.backend, "flush", lambda: None)()


# --- every page renders ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/partials/overview",
        "/jobs",
        "/jobs?state=failed",
        "/jobs?state=stale",
        "/jobs?state=finished",
        "/jobs?state=pending&queue=email&sort=-id&limit=5",
        "/errors",
        "/errors?queue=billing",
        "/workers",
        "/partials/workers",
        "/audit",
        "/dequeue",
    ],
)
def test_page_renders(web: Web, url: str) -> None:
    assert len(web.html(url)) > 500


def test_overview_shows_states_paused_queues_throughput_and_oldest_pending(web: Web, ops: Ops) -> None:
    ops.pause("reports")
    html = web.html("/")
    totals = ops.stats().totals()
    for word in ("pending", "scheduled", "locked", "stale", "failed", "finished"):
        assert re.search(rf'data-stat="{word}">{totals.get(word, 0)}<', html), word
    assert "chip-paused" in html and "resume" in html
    assert 'class="chart"' in html and html.count('class="bar"') == 60
    assert re.search(r'data-stat="oldest">\d+[smhd]', html)
    assert "host:worker-gone pid:4242" in html and "chip-stale" in html
    assert "Unlock stale" in html


def test_jobs_filters_by_queue_class_and_argument_search(web: Web, ops: Ops) -> None:
    html = web.html("/jobs?state=failed&queue=billing")
    assert html.count('name="id"') == 6
    assert "sync_inventory" not in html.split('<table class="table jobs-table">', 1)[1]
    html = web.html("/jobs?class=qadmin.examples.sync_inventory")
    assert html.count('name="id"') == 4
    html = web.html("/jobs?search=customer1.example")
    assert html.count('name="id"') == 1 and "customer1.example.com" in html
    html = web.html("/jobs?args=" + '["daily-sales", 2.0]')
    assert html.count('name="id"') == 1


def test_jobs_tabs_count_each_state_under_the_filter(web: Web) -> None:
    html = web.html("/jobs?queue=email")
    counts = dict(re.findall(r'tab-(\w+)"[^>]*>\w+ <span class="tab-count">(\d+)<', html))
    assert counts["pending"] == "12" and counts["failed"] == "3" and counts["scheduled"] == "1"


def test_jobs_keyset_pagination_walks_every_job_once(web: Web, ops: Ops) -> None:
    seen: list[str] = []
    url = "/jobs?state=pending&limit=5"
    for _ in range(20):
        html = web.html(url)
        seen += re.findall(r'name="id" value="([^"]+)"', html)
        nxt = re.search(r'href="([^"]+)" rel="next"', html)
        if not nxt:
            break
        url = unescape(nxt.group(1))
        assert "cursor=" in url
    pending = ids_of(ops, JobFilter(states=frozenset({JobState.PENDING})))
    assert sorted(seen, key=int) == sorted(str(i) for i in pending)
    assert len(seen) == len(set(seen)) == len(pending) > 10


def test_bad_filter_is_a_400_page_not_a_crash(web: Web) -> None:
    response = web.get("/jobs?state=bogus")
    assert response.status_code == 400
    assert "unknown state" in response.get_data(as_text=True)
    assert web.get("/jobs?args=[1,").status_code == 400
    assert web.get("/jobs?limit=0").status_code == 400
    assert web.get("/jobs?sort=evil").status_code == 400


def test_job_detail_shows_payload_error_traceback_history_and_raw(web: Web, ops: Ops) -> None:
    job = ops.list_jobs(FAILED.with_states(JobState.FAILED), limit=1).jobs[0]
    ops.retry(JobFilter(ids=(job.id,)), dry_run=True)
    html = web.html(f"/jobs/{job.id}")
    assert "Traceback (most recent call last)" in html
    assert "PaymentDeclined" in html and "Raw payload" in html
    assert unescape(html).count('"class":"qadmin.examples.ChargeCard"') == 1  # the raw payload
    assert '"args": [' in unescape(html)  # decoded, pretty
    assert "Retry" in html and "Delete" in html


def test_missing_job_is_404_page(web: Web) -> None:
    response = web.get("/jobs/987654")
    assert response.status_code == 404 and "JobNotFound" in response.get_data(as_text=True)


def test_undecodable_job_is_shown_as_such(web: Web, ops: Ops) -> None:
    job = ops.backend.enqueue(NewJob("x", ["y"], queue="weird"))
    t = ops.backend.store.jobs()  # write a payload no codec knows, as a foreign system might
    with ops.backend.engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == job.id).values(handler="%%% not a payload %%%"))
    assert "undecodable" in web.html("/jobs?queue=weird")
    html = web.html(f"/jobs/{job.id}")
    assert "Undecodable payload" in html and "%%% not a payload %%%" in html


def test_script_in_payload_is_escaped_everywhere(web: Web, ops: Ops) -> None:
    evil = "<script>window.__pwned=1</script>"
    job = ops.backend.enqueue(NewJob("<img src=x onerror=alert(1)>", [evil], queue="xss"))
    for url in ("/jobs?queue=xss", f"/jobs/{job.id}", "/", "/jobs?search=script"):
        html = web.html(url)
        assert "<script>window" not in html and "<img src=x" not in html, url
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in web.html(f"/jobs/{job.id}")


# --- one-job actions ---------------------------------------------------------------------------
def test_retry_one_job_from_its_page(web: Web, ops: Ops) -> None:
    job_id = ids_of(ops, FAILED)[0]
    token = confirm_token(web.post("/job-action", {"id": str(job_id), "verb": "retry"}))
    assert ops.show(job_id).state is JobState.FAILED  # nothing yet: the confirmation first
    html = web.html(f"/actions/{token}")
    assert "data-preview-count>1<" in html and "data-alive-warning" not in html
    response = web.post(f"/actions/{token}/apply")
    assert response.status_code == 303 and response.headers["Location"] == f"/jobs/{job_id}"
    assert ops.show(job_id).state is JobState.PENDING
    assert "Retried 1 of 1 job." in web.html(response.headers["Location"])
    assert [e.face for e in ops.audit(job_id=job_id)] == ["web"]


def test_retry_of_a_pending_job_is_409(web: Web, ops: Ops) -> None:
    job_id = ids_of(ops, JobFilter(states=frozenset({JobState.PENDING})))[0]
    response = web.post("/job-action", {"id": str(job_id), "verb": "retry"})
    assert response.status_code == 409
    assert ops.show(job_id).state is JobState.PENDING


def test_unlock_one_stale_job(web: Web, ops: Ops) -> None:
    stale = ops.list_jobs(JobFilter(states=frozenset({JobState.LOCKED}), stale_only=True)).jobs[0]
    token = confirm_token(web.post("/job-action", {"id": str(stale.id), "verb": "unlock"}))
    assert ops.show(stale.id).state is JobState.LOCKED
    html = web.html(f"/actions/{token}")
    assert "data-alive-warning" not in html and "run twice" not in html  # its worker is gone
    assert web.post(f"/actions/{token}/apply").status_code == 303
    assert ops.show(stale.id).state is JobState.PENDING


def test_unlocking_a_job_whose_worker_is_alive_asks_first_and_says_it_may_run_twice(web: Web, ops: Ops) -> None:
    held = [j for j in ops.list_jobs(JobFilter(states=frozenset({JobState.LOCKED})), limit=100).jobs if not j.stale][0]
    job_page = web.html(f"/jobs/{held.id}")
    assert "Unlock…" in job_page
    token = confirm_token(web.post("/job-action", {"id": str(held.id), "verb": "unlock"}))
    assert ops.show(held.id).state is JobState.LOCKED  # one click changed nothing
    html = unescape(web.html(f"/actions/{token}"))
    assert "data-alive-warning" in html and "held by a worker that looks alive" in html
    assert "may then run twice" in html and "Unlock 1 job anyway" in html
    # cancelling leaves it locked; confirming unlocks it
    cancelled = web.post(f"/actions/{token}/cancel")
    assert cancelled.status_code == 303 and ops.show(held.id).state is JobState.LOCKED
    token = confirm_token(web.post("/job-action", {"id": str(held.id), "verb": "unlock"}))
    assert web.post(f"/actions/{token}/apply").status_code == 303
    assert ops.show(held.id).state is JobState.PENDING


def test_bulk_unlock_of_live_holders_warns_too(web: Web, ops: Ops) -> None:
    locked = JobFilter(states=frozenset({JobState.LOCKED}))
    alive = sum(1 for j in ops.list_jobs(locked, limit=500).jobs if not j.stale)
    assert alive
    token = confirm_token(web.post("/actions/preview", {"action": "unlock:filter", "f.state": "locked"}))
    html = unescape(web.html(f"/actions/{token}"))
    assert f"{alive} of these jobs are held by a worker that looks alive" in html


def test_delete_one_job_goes_through_confirmation(web: Web, ops: Ops) -> None:
    job_id = ids_of(ops, FAILED)[0]
    token = confirm_token(web.post("/job-action", {"id": str(job_id), "verb": "delete"}))
    assert ops.show(job_id).state is JobState.FAILED  # nothing yet
    html = web.html(f"/actions/{token}")
    assert "delete" in html and "data-preview-count>1<" in html
    assert web.post(f"/actions/{token}/apply").status_code == 303
    with pytest.raises(JobNotFound):
        ops.show(job_id)


# --- bulk actions: preview, confirm, exactly that set ---------------------------------------------
def test_retry_everything_a_filter_matches_acts_on_exactly_the_previewed_set(web: Web, ops: Ops) -> None:
    billing = JobFilter(states=frozenset({JobState.FAILED}), queues=("billing",))
    before = ids_of(ops, billing)
    token = confirm_token(
        web.post(
            "/actions/preview",
            {
                "action": "retry:filter",
                "f.state": "failed",
                "f.queue": "billing",
                "back": "/jobs?state=failed",
            },
        )
    )
    html = web.html(f"/actions/{token}")
    assert f"data-preview-count>{len(before)}<" in html and "ChargeCard" in html
    # meanwhile: one previewed job is deleted elsewhere, and a new billing job fails
    ops.delete(JobFilter(ids=(before[0],)))
    fail_one_more(ops)
    newcomer = [i for i in ids_of(ops, billing) if i not in before]
    assert len(newcomer) == 1

    response = web.post(f"/actions/{token}/apply")
    assert response.status_code == 303 and response.headers["Location"] == "/jobs?state=failed"
    page = web.html(response.headers["Location"])
    assert f"Retried {len(before) - 1} of {len(before)} jobs." in page and "skipped" in page
    assert ids_of(ops, billing) == newcomer  # the filter was not re-run at confirm time
    entry = ops.audit(limit=1)[0]
    assert (entry.verb, entry.face, entry.changed, entry.skipped) == ("retry", "web", len(before) - 1, 1)
    assert all(ops.show(i).state is JobState.PENDING for i in before[1:])


def test_a_confirmation_acts_once(web: Web, ops: Ops) -> None:
    token = confirm_token(web.post("/actions/preview", {"action": "retry:filter", "f.state": "failed"}))
    assert web.post(f"/actions/{token}/apply").status_code == 303
    assert web.post(f"/actions/{token}/apply").status_code == 400
    assert web.get(f"/actions/{token}").status_code == 400


def test_bulk_on_selected_ids(web: Web, ops: Ops) -> None:
    chosen = [str(i) for i in ids_of(ops, FAILED)[:3]]
    token = confirm_token(
        web.post("/actions/preview", {"action": "delete:selected", "id": chosen, "f.state": "failed"})
    )
    assert "data-preview-count>3<" in web.html(f"/actions/{token}")
    web.post(f"/actions/{token}/apply")
    assert ops.count(FAILED) == 10
    assert all(str(i) not in chosen for i in ids_of(ops, FAILED))


def test_selected_scope_needs_a_selection(web: Web, ops: Ops) -> None:
    response = web.post("/actions/preview", {"action": "retry:selected", "f.state": "failed"})
    assert response.status_code == 400 and "select the jobs" in response.get_data(as_text=True)
    assert ops.count(FAILED) == 13


def test_an_empty_filter_is_refused_rather_than_acting_on_everything(web: Web, ops: Ops) -> None:
    response = web.post("/actions/preview", {"action": "delete:filter"})
    assert response.status_code == 400
    assert ops.count() > 0


def test_cancel_drops_the_preview(web: Web, ops: Ops) -> None:
    token = confirm_token(web.post("/actions/preview", {"action": "retry:filter", "f.state": "failed"}))
    assert web.post(f"/actions/{token}/cancel").status_code == 303
    assert web.post(f"/actions/{token}/apply").status_code == 400
    assert ops.count(FAILED) == 13


def test_dequeue_by_class_and_args(web: Web, ops: Ops) -> None:
    target = ops.list_jobs(JobFilter(states=frozenset({JobState.PENDING}), queues=("email",)), limit=1).jobs[0]
    token = confirm_token(
        web.post(
            "/actions/preview",
            {
                "action": "dequeue:filter",
                "f.queue": "email",
                "f.class": target.class_name,
                "f.args": json.dumps(target.args),
            },
        )
    )
    assert "data-preview-count>1<" in web.html(f"/actions/{token}")
    web.post(f"/actions/{token}/apply")
    with pytest.raises(JobNotFound):
        ops.show(target.id)


def test_dequeue_needs_a_queue_and_a_class(web: Web) -> None:
    response = web.post("/actions/preview", {"action": "dequeue:filter", "f.queue": "email"})
    assert response.status_code == 400 and "one queue and a class" in response.get_data(as_text=True)


def test_unlock_stale_from_the_overview(web: Web, ops: Ops) -> None:
    token = confirm_token(web.post("/actions/preview", {"action": "unlock:filter", "f.state": "stale"}))
    assert "data-preview-count>1<" in web.html(f"/actions/{token}")  # the live lock stays
    web.post(f"/actions/{token}/apply")
    locked = ops.list_jobs(JobFilter(states=frozenset({JobState.LOCKED}))).jobs
    assert [j.locked_by for j in locked] == ["host:worker-busy pid:4243"]


def test_pause_and_resume_a_queue(web: Web, ops: Ops) -> None:
    token = confirm_token(web.post("/queues/email/pause", {"back": "/"}))
    assert ops.paused() == []  # one click changed nothing
    pending = ops.count(JobFilter(queues=("email",), states=frozenset({JobState.PENDING})))
    text = " ".join(unescape(re.sub(r"<[^>]+>", "", web.html(f"/actions/{token}"))).split())
    assert "This will pause queue email" in text and f"{pending} pending job" in text
    assert web.post(f"/actions/{token}/apply").status_code == 303
    assert ops.paused() == ["email"]
    assert "Paused queue email" in web.html("/")
    assert web.confirmed("/queues/email/resume").status_code == 303
    assert ops.paused() == []
    assert [e.verb for e in ops.audit(limit=2)] == ["resume", "pause"]


def test_cancelling_a_pause_changes_nothing(web: Web, ops: Ops) -> None:
    token = confirm_token(web.post("/queues/email/pause", {"back": "/"}))
    assert web.post(f"/actions/{token}/cancel").status_code == 303
    assert ops.paused() == [] and web.post(f"/actions/{token}/apply").status_code == 400


def test_back_links_never_leave_the_site(web: Web) -> None:
    response = web.confirmed("/queues/email/pause", {"back": "https://evil.example/"})
    assert response.headers["Location"] == "/"
    response = web.confirmed("/queues/email/resume", {"back": "//evil.example/x"})
    assert response.headers["Location"] == "/"


# --- errors, workers, audit --------------------------------------------------------------------
def test_error_groups_link_to_their_jobs_and_offer_retry(web: Web) -> None:
    html = unescape(web.html("/errors"))
    assert "InventoryUnavailable: inventory service timed out" in html
    assert "PaymentDeclined: card declined: insufficient funds" in html
    assert 'value="retry:filter"' in html
    jobs = web.html("/jobs?state=failed&error=InventoryUnavailable: inventory service timed out")
    assert jobs.count('name="id"') == 4


def test_workers_page_lists_live_and_stale_lock_holders(web: Web) -> None:
    html = web.html("/workers")
    assert "host:worker-busy pid:4243" in html and "host:worker-gone pid:4242" in html
    assert "Unlock its jobs" in html


def test_audit_page_shows_who_did_what_from_the_web(web: Web, ops: Ops) -> None:
    named = make_web(ops)
    named.client.post("/login", data={"password": named.token, "name": "ann", "csrf_token": named.csrf()})
    named.confirmed("/queues/images/pause")
    html = named.html("/audit")
    assert "ann@127.0.0.1" in html and "pause" in html and "queue=images" in html


# --- named backends ----------------------------------------------------------------------------
def test_backend_switcher(ops: Ops, tmp_path) -> None:
    from qadmin.backends import open_backend

    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    other = open_backend(other_url)
    other.init()
    other.enqueue(NewJob("only.in.Other", [], queue="elsewhere"))
    other.close()
    opened: list[str] = []

    def open_other() -> Ops:
        opened.append(other_url)
        return Ops.open(other_url, face="web")

    web = make_web(ops, QADMIN_BACKENDS={"main": ops, "other": open_other}, QADMIN_DEFAULT_BACKEND="main").login()
    assert "elsewhere" not in web.html("/") and opened == []  # opened only when chosen
    assert 'value="other"' in web.html("/")
    assert web.post("/backend", {"backend": "other"}).status_code == 303
    assert "elsewhere" in web.html("/") and "only.in.Other" in web.html("/jobs")
    assert web.get("/api/queues").get_json()[0]["name"] == "elsewhere"
    assert len(web.get("/api/queues?backend=main").get_json()) > 1
    assert web.get("/api/queues?backend=nope").status_code == 400
    assert web.post("/backend", {"backend": "nope"}).status_code == 400


def test_preview_store_expires_and_drops_the_oldest(ops: Ops) -> None:
    from qadmin.web.state import PreviewExpired, PreviewStore

    now = [0.0]
    store = PreviewStore(ttl=60, capacity=2, clock=lambda: now[0])
    preview = ops.preview("retry", FAILED)
    first, second = store.put(preview, "default", "/"), store.put(preview, "default", "/")
    assert store.get(first).preview is preview
    store.put(preview, "default", "/")
    with pytest.raises(PreviewExpired):
        store.get(first)  # over capacity: the oldest went
    now[0] = 61
    with pytest.raises(PreviewExpired):
        store.take(second)


# --- filter inputs offer the known names ----------------------------------------------------------
@pytest.mark.parametrize("url", ["/jobs", "/jobs?state=failed", "/errors", "/dequeue"])
def test_class_inputs_offer_the_known_class_names(web: Web, ops: Ops, url: str) -> None:
    html = web.html(url)
    assert 'list="class-names"' in html
    datalist = re.search(r'<datalist id="class-names">(.*?)</datalist>', html, re.S)
    assert datalist is not None
    offered = set(re.findall(r'<option value="([^"]*)">', datalist.group(1)))
    in_use = {j.class_name for j in ops.list_jobs(limit=500).jobs if j.decodable}
    assert in_use and in_use <= offered
    # and each one's last part, which selects it too
    assert {n.rsplit(".", 1)[-1] for n in in_use} <= offered
    placeholder = re.search(r'list="class-names"[^>]*placeholder="e\.g\. ([^"]+)"', html, re.S)
    assert placeholder is not None and placeholder.group(1) in offered


def test_the_queue_menu_offers_the_known_queues(web: Web, ops: Ops) -> None:
    html = web.html("/jobs")
    for name in ops.queue_names():
        assert f'<option value="{name}"' in html
