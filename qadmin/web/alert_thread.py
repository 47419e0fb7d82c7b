"""The web process's alert checks (`[alerts] evaluate_in` holding "web"): a daemon thread that
checks the rules on the dashboard's default backend every `[alerts] every`, started by
`create_app` and stopped with the app (`stop_alert_thread`, called by `qadmin web`'s server as
it closes). One per backend per process: a second app in the same process (tests, a reload)
over the same backend leaves the checks to the first, so the rules are never checked twice at
once by one process (other processes and hosts are kept to one message by the backend)."""

from __future__ import annotations

import logging
import threading

from flask import Flask

from qadmin.alert_rules import AlertConfig
from qadmin.errors import QadminError
from qadmin.web.state import Backends

log = logging.getLogger("qadmin.alerts")

#: the first check waits this long after the app starts (its backends warm up meanwhile)
FIRST_CHECK = 1.0

_claimed: dict[str, AlertThread] = {}
_claims = threading.Lock()


class AlertThread:
    def __init__(self, backends: Backends, config: AlertConfig) -> None:
        self.backends = backends
        self.config = config
        self._stop = threading.Event()
        self._where: str | None = None
        self.thread = threading.Thread(target=self._run, name="qadmin-alerts", daemon=True)

    def start(self) -> AlertThread:
        self.thread.start()
        return self

    def _run(self) -> None:
        wait = FIRST_CHECK
        while not self._stop.wait(wait):
            wait = self.config.every
            try:
                ops = self.backends.get(self.backends.default)
                if self._claim(ops.backend.where):
                    ops.alerts.check(self.config)
            except QadminError as exc:
                log.warning("alert check failed, trying again in %gs: %s", self.config.every, exc)
            except Exception:  # noqa: BLE001 - the thread must outlive one bad check
                log.exception("alert check failed, trying again in %gs", self.config.every)

    def _claim(self, where: str) -> bool:
        with _claims:
            owner = _claimed.setdefault(where, self)
        if owner is self:
            self._where = where
        return owner is self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)
        with _claims:
            if self._where is not None and _claimed.get(self._where) is self:
                del _claimed[self._where]


def start_alert_thread(app: Flask, backends: Backends, config: AlertConfig | None) -> None:
    """Start the checks when the rules say "web"; nothing otherwise."""
    if config is None or not config.evaluated_in("web"):
        return
    app.extensions["qadmin_alerts"] = AlertThread(backends, config).start()


def stop_alert_thread(app: Flask) -> None:
    running = app.extensions.pop("qadmin_alerts", None)
    if isinstance(running, AlertThread):
        running.stop()
