"""Example job classes for `qadmin demo` and the tutorials: some succeed, some always raise,
some are slow. Their names are importable dotted paths, so any worker can run them."""

from __future__ import annotations

import os
import random
import time


class PaymentDeclined(Exception):
    pass


class InventoryUnavailable(ConnectionError):
    pass


class SendEmail:
    """delayed_job style: an instance with perform(); hooks are optional methods."""

    def perform(self, to: str, subject: str, body: str = "") -> None:
        if "@" not in to:
            raise ValueError(f"invalid recipient address {to!r}")

    def success(self, job: object) -> None:
        pass


class ChargeCard:
    """Resque style: perform is a static method. Always declines."""

    @staticmethod
    def perform(order_id: int, amount_cents: int) -> None:
        reason = "expired card" if order_id % 3 == 0 else "insufficient funds"
        raise PaymentDeclined(f"card declined: {reason}")


def resize_image(path: str, width: int = 640) -> dict[str, str | int]:
    return {"path": path, "width": width}


def sync_inventory(sku: str) -> None:
    raise InventoryUnavailable("inventory service timed out")


def generate_report(name: str, seconds: float = 2.0) -> str:
    time.sleep(seconds)
    return name


def flaky_export(batch: int, failure_rate: float = 0.5) -> None:
    if random.random() < failure_rate:
        raise RuntimeError(f"export batch {batch} lost its connection")


def noop(*args: object, **kwargs: object) -> None:
    """Does nothing: the job benchmarks run."""


def record(path: str, token: str) -> None:
    """Appends a token to a file: how process-level tests see that a job ran, and how often."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(token + "\n")


def record_then_wait(path: str, token: str, timeout: float) -> None:
    """Hands its work to an "external service" (the test that reports back): waits for it."""
    from qadmin.waiting import Waiting  # noqa: PLC0415 - the examples import nothing of qadmin's at load

    record(path, token)
    raise Waiting(timeout=timeout)


def sleep_then_record(path: str, token: str, seconds: float) -> None:
    time.sleep(seconds)
    record(path, token)


def record_when_released(path: str, token: str, gate: str, timeout: float = 300) -> None:
    """Creates `<gate>.running`, waits until the file `gate` exists, then appends the token: a job
    that process-level tests see running, and that keeps running until they let it finish."""
    open(f"{gate}.running", "a").close()
    deadline = time.monotonic() + timeout
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gate} was not created within {timeout:g} s")
        time.sleep(0.05)
    record(path, token)
