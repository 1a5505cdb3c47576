"""Process limits a fleet-sized workload needs."""

from __future__ import annotations

import contextlib
import resource


def raise_fd_limit() -> int:
    """Raises the soft open-files limit to the hard one (every connection and simulated port is a descriptor)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1_048_576 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft
