"""Watching a distributed scan to its end from the command line (or any caller that may block)."""

from __future__ import annotations

import time
from collections.abc import Callable

from fleet.scans import ScanProgress, Scans


class Orchestrator(Scans):
    """Scans (`fleet.scans`) plus following one to its end, re-queueing the chunks of lost attempts.

    Every read rides out a Redis outage of up to `redis_retry_seconds` (`fleet.resilience`); past it,
    `RedisUnavailable` names the Redis, and `last_progress` holds what was last seen of the scan. The
    scan does not need this watcher: its workers close it and reap lost chunks by themselves."""

    last_progress: ScanProgress | None = None

    def watch(self, scan_id: str, on_progress: Callable[[ScanProgress], None] | None = None, *,
              poll_seconds: float = 0.5, reap_seconds: float = 2.0, timeout: float | None = None) -> ScanProgress:
        """Follows a scan to its end, re-queueing chunks of lost attempts on the way."""
        started = time.monotonic()
        last_reap = 0.0
        requeued = 0
        while True:
            if time.monotonic() - last_reap >= reap_seconds:
                requeued += len(self.reap(scan_id))
                last_reap = time.monotonic()
            progress = self.progress(scan_id, requeued)
            self.last_progress = progress
            if on_progress is not None:
                on_progress(progress)
            if progress.finished:
                self.close_if_finished(scan_id)
                return self.progress(scan_id, requeued)
            if timeout is not None and time.monotonic() - started > timeout:
                raise TimeoutError(f"scan {scan_id} not finished after {timeout:g}s: {progress}")
            time.sleep(poll_seconds)
