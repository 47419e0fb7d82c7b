"""Who may do what: the three roles every face checks, weakest first.

- a **viewer** reads everything (payloads redacted as configured) and changes nothing;
- an **operator** also acts on jobs, queues, schedules and workers (retry, delete, enqueue, edit,
  cancel, pause, prune…);
- an **admin** also sees redacted values in full, on request (each reveal audited), and manages
  what only an admin should (the web's users are read from `qadmin.toml`, never written by qadmin).

The web takes a request's role from its user (`[users.NAME]` in `qadmin.toml`, or a trusted
proxy's header); the CLI and the TUI run as the local account that can reach the backend anyway,
so they act as an admin and record that account's name as the audit's user.
"""

from __future__ import annotations

import enum


class Role(enum.IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        """A role from its name (any case); ValueError naming the three otherwise."""
        try:
            return cls[str(text).strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}; expected one of: viewer, operator, admin") from None

    @property
    def label(self) -> str:
        return self.name.lower()

    def may_act(self) -> bool:
        """Whether this role may change anything (every verb but reading)."""
        return self >= Role.OPERATOR

    def may_reveal(self) -> bool:
        """Whether this role may ask for redacted values in full."""
        return self >= Role.ADMIN
