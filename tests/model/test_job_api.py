"""`send.delay(...)` on a `@qadmin.job` function, on every backend: it enqueues with the
decorator's defaults into the default client (`qadmin.configure` or `QADMIN_URL`), the function
still runs when called, and a worker runs it by its name."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

import qadmin
from qadmin import registry
from qadmin.client import JobFunction, default_client
from qadmin.errors import UsageError
from qadmin.job import JobState, utcnow
from qadmin.worker import Worker, WorkerOptions

_counter = itertools.count()
seen: list[tuple[str, int]] = []


@pytest.fixture
def configured(any_url: str) -> Iterator[qadmin.Client]:
    client = qadmin.configure(any_url, init=True)
    assert client is not None
    yield client
    qadmin.configure(None)


def test_delay_enqueues_with_the_decorators_defaults(configured: qadmin.Client) -> None:
    priority = {"priority": 4} if configured.backend.supports_priority else {}
    name = f"tests.job_api.send.{next(_counter)}"

    @qadmin.job(name, queue="mail", max_attempts=3, **priority)
    def send(to: str, copies: int = 1) -> str:
        seen.append((to, copies))
        return to

    try:
        assert isinstance(send, JobFunction) and send.__name__ == "send"
        assert send("direct", 2) == "direct" and seen[-1] == ("direct", 2)  # still a function
        job = send.delay("ann@example.com", copies=2)
        assert (job.class_name, job.args, job.kwargs, job.queue, job.max_attempts) == (
            name,
            ["ann@example.com"],
            {"copies": 2},
            "mail",
            3,
        )
        if priority:
            assert job.priority == 4
        later = send.options(queue="slow", delay=3600, max_attempts=1).enqueue("bob@example.com")
        assert (later.queue, later.state, later.max_attempts) == ("slow", JobState.SCHEDULED, 1)
        assert registry.resolve(name).__name__ == "send"  # the worker runs the function itself
        seen.clear()
        w = Worker(
            configured.backend,
            WorkerOptions(queues=["mail"], burst=True, sleep=0, heartbeat_interval=3600, rescue_interval=0),
        )
        assert w.run_once() is True
        assert seen == [("ann@example.com", 2)]
    finally:
        registry._registry.pop(name, None)


def test_classes_stay_classes(configured: qadmin.Client) -> None:
    name = f"tests.job_api.Klass.{next(_counter)}"

    @qadmin.job(name, queue="k")
    class Klass:
        def perform(self, n: int) -> None:
            seen.append(("klass", n))

    try:
        assert isinstance(Klass, type) and registry.resolve(name) is Klass
        assert configured.enqueue(Klass, 1).queue == "k"
    finally:
        registry._registry.pop(name, None)


def test_without_a_backend_delay_refuses_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    qadmin.configure(None)
    monkeypatch.delenv("QADMIN_URL", raising=False)

    @qadmin.job(f"tests.job_api.lonely.{next(_counter)}")
    def lonely() -> None: ...

    with pytest.raises(UsageError, match=r"qadmin.configure\(url\).*QADMIN_URL"):
        lonely.delay()


def test_qadmin_url_is_the_default_backend(any_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    qadmin.configure(any_url, init=True)  # the tables exist
    qadmin.configure(None)
    monkeypatch.setenv("QADMIN_URL", any_url)
    name = f"tests.job_api.env.{next(_counter)}"

    @qadmin.job(name)
    def from_env(n: int) -> None: ...

    try:
        job = from_env.delay(7)
        assert default_client().backend.get(job.id, utcnow()).args == [7]
    finally:
        qadmin.configure(None)
        registry._registry.pop(name, None)


def test_an_imported_module_exposes_the_function_object_and_the_worker_runs_the_function() -> None:
    # resolving a dotted path that names a JobFunction finds the function it wraps
    assert registry.unwrapped(JobFunction(len_of, "tests.len_of")) is len_of


def len_of(text: str) -> int:
    return len(text)
