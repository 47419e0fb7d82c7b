"""A cancel that comes too late, with real processes on every backend: `qadmin cancel ID` asks a
worker to stop a running job, the job finishes before the worker's heartbeat looks, and the job
stays finished; the worker then settles the request with its rescues (none is left behind), and
`qadmin show ID` says "cancel requested at T by U — it finished first"."""

from __future__ import annotations

import json
from pathlib import Path

from qadmin.backends import open_backend
from qadmin.job import JobId, JobState, utcnow
from tests.worker.test_worker_processes import (  # noqa: F401 - procs is a fixture
    HOLD_RECORD,
    client,
    lines,
    procs,
    running,
    wait_for,
)

#: a heartbeat (which looks for cancels) long after the job ends; rescues (which settle) often
SLOW_BEAT = ("--heartbeat-interval", "60", "--worker-timeout", "300", "--rescue-interval", "0.5", "--sleep", "0.1")


def request_left(url: str, job_id: JobId) -> bool:
    backend = open_backend(url)
    try:
        return backend.cancel_request(job_id) is not None
    finally:
        backend.close()


def state_of(url: str, job_id: JobId) -> JobState:
    backend = open_backend(url)
    try:
        return backend.get(job_id, utcnow()).state
    finally:
        backend.close()


def test_a_job_that_finishes_before_its_cancel_is_seen_says_so(any_url: str, tmp_path: Path, procs) -> None:
    out, gate = tmp_path / "ran.txt", tmp_path / "gate"
    with client(any_url) as c:
        job = c.enqueue(HOLD_RECORD, str(out), "done", str(gate), queue="q")
    p = procs(any_url)
    p.start("worker", *SLOW_BEAT)
    wait_for(running(gate), 30, "the worker to start the job", p.logs)

    done = p.run("cancel", str(job.id), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == 1
    gate.touch()  # the job finishes now, long before the worker's heartbeat looks for cancels
    wait_for(lambda: lines(out) == ["done"], 30, "the job to finish", p.logs)
    wait_for(lambda: state_of(any_url, job.id) is JobState.FINISHED, 30, "the job to be recorded", p.logs)
    wait_for(lambda: not request_left(any_url, job.id), 30, "the worker to settle the request", p.logs)

    shown = p.run("show", str(job.id), "--json")
    assert shown.returncode == 0, shown.stderr
    found = json.loads(shown.stdout)
    assert found["state"] == "finished"
    note = found["meta"]["cancel_note"]
    assert note.startswith("cancel requested at ") and note.endswith("— it finished first"), note
    assert [a["verb"] for a in found["audit"]][:2] == ["cancel_missed", "cancel"]
    text = p.run("show", str(job.id))
    squeezed = "".join(text.stdout.replace("│", " ").split())  # the table wraps the line
    assert "itfinishedfirst" in squeezed, text.stdout
    assert "Traceback" not in p.logs()
