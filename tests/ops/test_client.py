"""The enqueue API (`qadmin.connect(...).enqueue`, `enqueue_many`) on every backend: events fire
for every job stored, and a job enqueued by its registered name takes that registration's
defaults — checked on the README's own example, run as written."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from qadmin import events, registry
from qadmin.client import Client, connect
from qadmin.filters import JobFilter
from qadmin.job import JobState, NewJob, utcnow

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def client(any_url: str) -> Any:
    c = connect(any_url, init=True)
    yield c
    c.close()


@pytest.fixture
def heard() -> Any:
    seen: list[tuple[str, Any]] = []
    listeners = {
        name: (lambda obj, name=name: seen.append((name, obj))) for name in ("before_enqueue", "after_enqueue")
    }
    for name, fn in listeners.items():
        events.on(name, fn)
    yield seen
    for name, fn in listeners.items():
        events.off(name, fn)


def test_enqueue_many_fires_after_enqueue_for_every_job_stored(client: Client, heard: list) -> None:
    later = utcnow() + timedelta(hours=1)
    news = [NewJob("qadmin.examples.noop", [i], queue="bulk", priority=0) for i in range(3)]
    news.append(NewJob("qadmin.examples.noop", ["later"], queue="bulk", run_at=later))
    ids = client.enqueue_many(news)
    assert [name for name, _ in heard] == ["before_enqueue"] * 4 + ["after_enqueue"] * 4
    after = [job for name, job in heard if name == "after_enqueue"]
    assert [job.id for job in after] == ids
    now = utcnow()
    for job in after:
        stored = client.backend.get(job.id, now)
        assert (job.class_name, job.args, job.queue, job.state) == (
            stored.class_name,
            stored.args,
            stored.queue,
            stored.state,
        )
    assert [job.state for job in after] == [JobState.PENDING] * 3 + [JobState.SCHEDULED]


def test_enqueue_fires_both_events_once(client: Client, heard: list) -> None:
    job = client.enqueue("qadmin.examples.noop", 1, queue="one")
    assert [name for name, _ in heard] == ["before_enqueue", "after_enqueue"]
    assert heard[1][1].id == job.id


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Enqueueing from Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_readme_example_puts_the_job_on_its_registered_queue(any_url: str, tmp_path: Path) -> None:
    code = readme_example()
    assert 'queue="email"' in code and 'q.enqueue("email.send"' in code
    code = code.replace('"sqlite:///qadmin.db"', repr(any_url))
    namespace: dict[str, Any] = {}
    try:
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
        q = namespace["q"]
        jobs = q.backend.find(JobFilter(), utcnow(), limit=10).jobs
        q.close()
    finally:
        registry._registry.pop("email.send", None)
    by_args = {tuple(j.args): j for j in jobs}
    assert by_args[("ann@example.com", "Welcome")].queue == "email"  # enqueued by its name
    assert by_args[("bob@example.com", "Invoice")].queue == "email"  # enqueued by the function
    assert by_args[("ann@example.com", "Welcome")].state is JobState.SCHEDULED


def test_a_registered_name_brings_its_priority_and_attempts_and_options_still_win(client: Client) -> None:
    # Resque queues have no priority: a registration there names none
    priority = {"priority": 7} if client.backend.supports_priority else {}
    registry.job("tests.client.defaults", queue="slow", max_attempts=3, **priority)(lambda: None)
    try:
        by_name = client.enqueue("tests.client.defaults")
        overridden = client.enqueue(
            "tests.client.defaults", queue="fast", max_attempts=9, **({"priority": 1} if priority else {})
        )
        unknown = client.enqueue("tests.client.not_registered")
    finally:
        registry._registry.pop("tests.client.defaults", None)
    assert (by_name.queue, overridden.queue, unknown.queue) == ("slow", "fast", "default")
    if client.backend.supports_priority:
        assert (by_name.priority, overridden.priority) == (7, 1)
    assert (by_name.max_attempts, overridden.max_attempts) == (3, 9)
    assert Client.build("tests.client.not_registered").max_attempts is None
