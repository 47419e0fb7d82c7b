"""The SQL backend (SQLite, PostgreSQL): `SqlBackend`, assembled in `backend.py`; docs/architecture.md
names its parts."""

from qadmin.backends.sql.backend import SqlBackend
from qadmin.backends.sql.session import SqlWorkerSession

__all__ = ["SqlBackend", "SqlWorkerSession"]
