"""Who holds a lock, and whether that holder is still alive.

Lock owners come in the formats of every system that writes the table: delayed_job's and
qadmin's `host:H pid:P` (optionally prefixed `delayed_job host:…` or `delayed_job.N host:…`),
`pid:P` when the host was unknown, and DJJob's `host::H pid::P`.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import datetime, timedelta

_OWNER = re.compile(r"(?:host::?(?P<host>\S+)\s+)?pid::?(?P<pid>\d+)")

#: this machine's host name, as lock owners spell it
HOSTNAME = socket.gethostname()


def worker_name(pid: int | None = None) -> str:
    """A qadmin worker's lock owner name, in delayed_job's format (docs/compatibility.md §8.7)."""
    return f"host:{HOSTNAME} pid:{pid if pid is not None else os.getpid()}"


def parse_owner(owner: str | None) -> tuple[str | None, int | None]:
    if not owner:
        return None, None
    match = _OWNER.search(owner)
    if not match:
        return None, None
    return match.group("host"), int(match.group("pid"))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_dead(owner: str | None, heartbeats: dict[str, datetime | None], now: datetime, worker_timeout: float) -> bool:
    """True when the owner is known to be gone: a process of this host that no longer exists,
    or a registered qadmin worker that stopped beating. Unknown owners on other hosts are
    judged by lock age alone (by the caller)."""
    host, pid = parse_owner(owner)
    if host == HOSTNAME and pid is not None and not pid_alive(pid):
        return True
    return heartbeat_stopped(owner, heartbeats, now, worker_timeout)


def heartbeat_stopped(
    owner: str | None, heartbeats: dict[str, datetime | None], now: datetime, worker_timeout: float
) -> bool:
    """True when the owner is a registered qadmin worker (in `heartbeats`) that has not beaten
    for `worker_timeout` seconds: the only holders whose locks workers give back on their own."""
    if owner not in heartbeats:
        return False
    beat = heartbeats[owner]
    return beat is None or beat < now - timedelta(seconds=worker_timeout)
