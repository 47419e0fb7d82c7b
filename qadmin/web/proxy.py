"""A trusted reverse proxy's word on who is asking (oauth2-proxy, Pomerium, a corporate SSO gate).

Such a proxy logs the person in itself and passes their name on in a header of each request
(`X-Forwarded-User`, or `X-Forwarded-Email`), and their groups in another (`X-Forwarded-Groups`).
Anyone can send those headers, so they are believed only from the proxies' own addresses
(`trusted_proxies`: addresses or networks), compared with the connection's peer address as the
server gives it (waitress and granian give the socket's peer: no `X-Forwarded-For` is read for
that). From any other address the headers are ignored, and the request logs in as any other.

    [web]
    proxy_user_header = "X-Forwarded-User"      # or "X-Forwarded-Email"
    trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
    proxy_groups_header = "X-Forwarded-Groups"  # optional: comma-separated groups
    proxy_default_role = "viewer"               # a user no group names; "none" refuses them
    [web.proxy_roles]                           # group -> role; the highest one applies
    sre = "admin"
    support = "operator"

A proxied user named in `[users.NAME]` has that user's role (or a higher one a group gives), not the default.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qadmin.access import MAX_NAME, Role, User
from qadmin.errors import ConfigError

log = logging.getLogger("qadmin.web")

#: the `[web]` settings of the proxy
PROXY_KEYS = ("proxy_user_header", "proxy_groups_header", "proxy_roles", "proxy_default_role", "trusted_proxies")
#: what `proxy_default_role` says to refuse a proxied user whom no group gives a role
NO_ROLE = "none"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ProxySettings:
    user_header: str
    trusted: tuple[Network, ...]
    groups_header: str | None = None
    #: (group, role) pairs, as the file gives them
    group_roles: tuple[tuple[str, Role], ...] = ()
    #: the role of a proxied user no group (and no [users.NAME]) gives one; None refuses them
    default_role: Role | None = Role.VIEWER

    def trusts(self, address: str | None) -> bool:
        """Whether `address` (the connection's peer) is one of the trusted proxies."""
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        # an IPv4 client seen through an IPv6 socket (::ffff:10.0.0.5) is that IPv4 address
        mapped = getattr(ip, "ipv4_mapped", None)
        if mapped is not None:
            ip = mapped
        return any(ip in network for network in self.trusted)

    def role_of(self, name: str, groups: list[str], users: Mapping[str, User]) -> Role | None:
        """The highest role the user's groups or their `[users.NAME]` give; else the default."""
        mapping = dict(self.group_roles)
        roles = [mapping[group] for group in groups if group in mapping]
        user = users.get(name)
        if user is not None:
            roles.append(user.role)
        return max(roles) if roles else self.default_role


def read_proxy(web: Mapping[str, Any], path: Path | None = None) -> ProxySettings | None:
    """The proxy settings of `[web]`, checked; None when no proxy header is configured."""
    where = f"{path}: [web]" if path else "[web]"
    given = [key for key in PROXY_KEYS if key in web]
    if "proxy_user_header" not in web:
        if given:
            raise ConfigError(f"{where} {given[0]} needs proxy_user_header (the header with the user's name)")
        return None
    user_header = _header(web["proxy_user_header"], f"{where} proxy_user_header")
    trusted_setting = web.get("trusted_proxies")
    if isinstance(trusted_setting, str):
        trusted_setting = [trusted_setting]
    if not trusted_setting or not isinstance(trusted_setting, list):
        raise ConfigError(
            f"{where} proxy_user_header needs trusted_proxies, the addresses of the proxies allowed to send it "
            f'(e.g. ["127.0.0.1"]): from any other address the header would let anyone be anyone'
        )
    trusted = []
    for entry in trusted_setting:
        try:
            trusted.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"{where} trusted_proxies: {entry!r} is not an address or a network (10.0.0.0/8)"
            ) from None
    groups_header = None
    if "proxy_groups_header" in web:
        groups_header = _header(web["proxy_groups_header"], f"{where} proxy_groups_header")
    mapping = web.get("proxy_roles", {})
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where} proxy_roles must be a table of group = role ([web.proxy_roles])")
    if mapping and groups_header is None:
        raise ConfigError(f"{where} proxy_roles needs proxy_groups_header (the header with the user's groups)")
    group_roles = tuple((str(group), _role(role, f"{where} proxy_roles.{group}")) for group, role in mapping.items())
    default_setting = web.get("proxy_default_role", Role.VIEWER.label)
    default_role = None
    if str(default_setting).strip().lower() != NO_ROLE:
        default_role = _role(default_setting, f"{where} proxy_default_role", f' or "{NO_ROLE}"')
    return ProxySettings(
        user_header=user_header,
        trusted=tuple(trusted),
        groups_header=groups_header,
        group_roles=group_roles,
        default_role=default_role,
    )


def _header(value: Any, label: str) -> str:
    if not isinstance(value, str) or not value.strip() or not all(c.isalnum() or c in "-_" for c in value.strip()):
        raise ConfigError(f"{label} must be a header name such as X-Forwarded-User")
    return value.strip()


def _role(value: Any, label: str, alternatives: str = "") -> Role:
    try:
        return Role.parse(value if isinstance(value, str) else repr(value))
    except ValueError as exc:
        raise ConfigError(f"{label}: {exc}{alternatives}") from None


def header_name(value: str | None) -> str | None:
    """The user's name as the proxy sent it: printable, without spaces, at most `MAX_NAME`; None
    when it sent none (or nothing usable)."""
    if value is None:
        return None
    name = value.strip()
    if not name or len(name) > MAX_NAME or not all(c.isprintable() and not c.isspace() for c in name):
        return None
    return name


def header_groups(value: str | None) -> list[str]:
    """The groups of a comma-separated header (oauth2-proxy's form)."""
    return [group.strip() for group in (value or "").split(",") if group.strip()]


def client_address(forwarded_for: str | None, peer: str) -> str:
    """The address to record for a proxied request: the last `X-Forwarded-For` entry, the one the
    trusted proxy itself appended (those before it are the client's own word), else the peer."""
    if forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        try:
            ipaddress.ip_address(last.split("%", 1)[0])
        except ValueError:
            return peer
        return last
    return peer
