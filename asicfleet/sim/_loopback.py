"""Loopback ranges claimed per user of this machine, so that two test runs, a benchmark and the demo can
serve simulated fleets side by side without `address already in use`.

A claim is an exclusive `flock` on a small file in the temporary directory, one file per /16 of 127/8;
the lock dies with the process that holds it, so a killed run frees its ranges at once. Every process that
serves on loopback through `claim_loopback` sees the others' claims, whoever runs them: the lock files are
opened read-only, which any user may do on a file another user created.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# 127.88 and 127.89 are the benchmarks' own; 127.0 holds the machine's services (Redis, RabbitMQ).
POOL = tuple(octet for octet in range(100, 250))


class NoFreeLoopbackError(RuntimeError):
    """Every /16 of the pool is claimed by another process."""


def _lock_path(octet: int) -> Path:
    return Path(tempfile.gettempdir()) / f"asicfleet-loopback-127.{octet}.lock"


def _try_lock(octet: int) -> int | None:
    path = _lock_path(octet)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        return None  # not ours to create or read: treat as taken
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def claim_loopback(prefix: int = 16, *, start: int = 0) -> Iterator[str]:
    """`with claim_loopback(22) as subnet:` a /`prefix` (16..32) at the start of a /16 of 127/8 that no
    other process holds, for as long as the block runs. `start` spreads first tries (e.g. the pid)."""
    if not 16 <= prefix <= 32:
        raise ValueError("a claimed loopback range is a /16 or smaller")
    offset = start % len(POOL)
    for octet in POOL[offset:] + POOL[:offset]:
        fd = _try_lock(octet)
        if fd is None:
            continue
        try:
            yield f"127.{octet}.0.0/{prefix}"
        finally:
            os.close(fd)  # closing the descriptor drops the lock
        return
    raise NoFreeLoopbackError(f"every loopback /16 from 127.{POOL[0]} to 127.{POOL[-1]} is claimed by other "
                              "processes; stop a test run or the demo, or wait for one to end")
