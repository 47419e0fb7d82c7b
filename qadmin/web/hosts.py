"""Which `Host` a request may name: any IP address, `localhost`, the address the server listens
on, and the names an operator adds (`qadmin web --allowed-host`, `[web] allowed_hosts`,
QADMIN_WEB_ALLOWED_HOSTS).

Without this check a page on any site can reach the dashboard through DNS rebinding: its own
name made to resolve to 127.0.0.1, the browser then sends `Host: evil.example` to us, and the
page may read our login form and burn the login throttle, locking operators out. The browser
never lets such a page choose the `Host` header, so refusing unknown names closes that door.
An IP address is always allowed: a page can only send one when it was itself loaded from that
address, which no rebinding achieves. The check runs before anything else, authentication
included.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable

#: the environment variable with more allowed names, separated by commas
ALLOWED_HOSTS_ENV = "QADMIN_WEB_ALLOWED_HOSTS"
#: names every dashboard answers to (and any IP address)
LOOPBACK_NAMES = frozenset({"localhost"})
#: the entry that turns the check off (a reverse proxy that checks the name itself)
ANY = "*"


def host_name(header: str) -> str:
    """The name of a `Host` header, without its port: `[::1]:8080` -> `::1`."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def normalise(names: Iterable[str]) -> frozenset[str]:
    out = set()
    for name in names:
        name = str(name).strip()
        if name:
            out.add(name if name == ANY else host_name(name))
    return frozenset(out)


def from_env() -> list[str]:
    return [n for n in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if n.strip()]


def allowed(name: str, extra: frozenset[str]) -> bool:
    if ANY in extra or name in extra or name in LOOPBACK_NAMES:
        return True
    try:
        ipaddress.ip_address(name.split("%", 1)[0])  # an IPv6 address may carry its zone
    except ValueError:
        return False
    return True
