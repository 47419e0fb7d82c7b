"""Backends: where jobs live. `open_backend(url)` picks one by URL scheme."""

from qadmin.backends.base import Backend, BackendOptions, open_backend

__all__ = ["Backend", "BackendOptions", "open_backend"]
