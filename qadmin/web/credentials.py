"""What authentication keeps between requests, apart from any request: the secret (`Auth`), the
throttles of wrong guesses (`Throttle`), the sessions logged in (`LiveSessions`), and what makes
a password strong enough to be a bearer token (`password_problem`). The policy they serve, and
the checks each request passes, are qadmin.web.auth's.
"""

from __future__ import annotations

import hmac
import math
import secrets
import string
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache

from qadmin.access import User, check_password, check_token, hash_password
from qadmin.web.proxy import ProxySettings


class Throttle:
    """At most `per_client` failed attempts per client address, and `overall` in total, within
    `window` seconds. The overall ceiling stops a guesser with many addresses, at the price of
    locking everyone out for a while under such an attack, which is the safe side."""

    def __init__(
        self,
        per_client: int = 5,
        overall: int = 50,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client, self.overall, self.window = per_client, overall, window
        self._clock = clock
        self._clients: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may try now."""
        with self._lock:
            now = self._clock()
            self._trim(now)
            waits = [0.0]
            mine = self._clients.get(client)
            if mine is not None and len(mine) >= self.per_client:
                waits.append(mine[0] + self.window - now)
            if len(self._all) >= self.overall:
                waits.append(self._all[0] + self.window - now)
            return max(waits)

    def failed(self, client: str) -> None:
        with self._lock:
            now = self._clock()
            self._clients.setdefault(client, deque()).append(now)
            self._all.append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _trim(self, now: float) -> None:
        cutoff = now - self.window
        while self._all and self._all[0] <= cutoff:
            self._all.popleft()
        for client in list(self._clients):
            times = self._clients[client]
            while times and times[0] <= cutoff:
                times.popleft()
            if not times:
                del self._clients[client]


@dataclass
class Auth:
    #: the configured password, or None
    password: str | None
    #: the start-up token, used when no password is configured
    token: str | None
    #: failed logins (the form, or a login URL's token)
    throttle: Throttle = field(default_factory=Throttle)
    #: failed bearer tokens
    bearer_throttle: Throttle = field(default_factory=Throttle)
    #: the sessions logged in and not logged out
    sessions: LiveSessions = field(default_factory=lambda: LiveSessions())
    #: `[users.NAME]` by name: when there are any, each logs in as themselves, and the shared
    #: password and token are not used
    users: Mapping[str, User] = field(default_factory=dict)
    #: a trusted reverse proxy's headers (qadmin.web.proxy), or None
    proxy: ProxySettings | None = None
    #: the addresses that sent a proxy's header without being a trusted proxy, logged once each
    untrusted: set[str] = field(default_factory=set)

    @property
    def mode(self) -> str:
        if self.users:
            return "users"
        return "password" if self.password else "token"

    @property
    def bearer_refused(self) -> str | None:
        """Why the secret cannot serve as a bearer token (a weak password), or None."""
        return password_problem(self.password) if self.password and not self.users else None

    def check_user(self, name: str, password: str) -> User | None:
        """The user with this name and password, or None. An unknown name (or one with no
        password, only a token) costs the same slow hash as a known one, so that the time of the
        answer does not tell which names exist."""
        user = self.users.get(name)
        stored = user.password_hash if user is not None else None
        matched = check_password(stored or _decoy_hash(), password)
        return user if matched and stored is not None else None

    def note_untrusted(self, address: str) -> bool:
        """Remember an address that sent a proxy's header untrusted; True the first time (log
        it then, not on each of its requests). At most `UNTRUSTED_NOTED` are remembered."""
        if address in self.untrusted or len(self.untrusted) >= UNTRUSTED_NOTED:
            return False
        self.untrusted.add(address)
        return True

    def bearer_user(self, token: str) -> User | None:
        """The user whose API token this is, or None. Every user's hash is compared, in constant
        time each, whichever matches."""
        found = None
        for user in self.users.values():
            if user.token_hash is not None and check_token(user.token_hash, token):
                found = user
        return found

    def check(self, candidate: str | None) -> bool:
        """Constant-time comparison with whichever secret is configured."""
        if not candidate:
            return False
        secret = self.password or self.token
        if not secret:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "surrogatepass"), secret.encode("utf-8", "surrogatepass"))


#: how many untrusted senders of a proxy header are remembered (and logged)
UNTRUSTED_NOTED = 1000


@cache
def _decoy_hash() -> str:
    """A hash no password is known to match, checked for unknown names (made once)."""
    return hash_password(secrets.token_urlsafe(18))


#: the least a password must have to be guessed at no rate limit (bearer tokens) or to guard a
#: dashboard reachable from other hosts: this many characters...
MIN_PASSWORD_LENGTH = 12
#: ...this many different ones...
MIN_PASSWORD_DISTINCT = 6
#: ...and this many bits, counted as length x log2 of the alphabet its kinds of character span
MIN_PASSWORD_BITS = 64
#: the kinds of character, and how many of each there are
_ALPHABETS = (
    (frozenset(string.ascii_lowercase), 26),
    (frozenset(string.ascii_uppercase), 26),
    (frozenset(string.digits), 10),
    (frozenset(string.punctuation + " "), 33),
)


def password_problem(password: str) -> str | None:
    """What makes `password` too weak, in words for an error message; None when it is strong."""
    span = sum(size for chars, size in _ALPHABETS if any(c in chars for c in password))
    # any other character (accented, CJK, ...) counts as one of a large alphabet
    if any(not any(c in chars for chars, _ in _ALPHABETS) for c in password):
        span += 100
    bits = len(password) * math.log2(max(span, 2))
    if (
        len(password) >= MIN_PASSWORD_LENGTH
        and len(set(password)) >= MIN_PASSWORD_DISTINCT
        and bits >= MIN_PASSWORD_BITS
    ):
        return None
    return (
        f"the password is too weak ({len(password)} characters, about {int(bits)} bits): use at "
        f"least {MIN_PASSWORD_LENGTH} characters and {MIN_PASSWORD_BITS} bits, e.g. 16 letters and "
        f"digits, or python -c 'import secrets; print(secrets.token_urlsafe(18))'"
    )


class LiveSessions:
    """The ids of the sessions logged in, each until it expires or logs out. Beyond `capacity`
    the oldest login is forgotten (it must log in again)."""

    def __init__(self, capacity: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.capacity = capacity
        self._clock = clock
        self._items: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, lifetime: float) -> str:
        sid = secrets.token_urlsafe(18)
        with self._lock:
            self._items[sid] = self._clock() + lifetime
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return sid

    def alive(self, sid: object) -> bool:
        if not isinstance(sid, str):
            return False
        expires = self._items.get(sid)
        if expires is None:
            return False
        if expires <= self._clock():
            self.end(sid)
            return False
        return True

    def end(self, sid: object) -> None:
        if isinstance(sid, str):
            with self._lock:
                self._items.pop(sid, None)
