"""What `--max-memory` recycles on: this process's resident memory."""

from __future__ import annotations

import os


def current_rss_mb() -> float | None:
    """This process's resident memory (Linux), what `--max-memory` recycles on."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return None
