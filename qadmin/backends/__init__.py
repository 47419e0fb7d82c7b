"""Backends: where jobs live. `open_backend(url)` picks one by URL scheme."""

from qadmin.backends.base import Backend, BackendOptions, WorkerSession
from qadmin.backends.connect import open_backend

__all__ = ["Backend", "BackendOptions", "WorkerSession", "open_backend"]
