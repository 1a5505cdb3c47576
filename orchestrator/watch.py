"""Watching a distributed scan to its end from the command line (or any caller that may block)."""

from __future__ import annotations

import time
from collections.abc import Callable

from fleet.scans import ScanProgress, Scans
from fleet.sites import site_queue


class NoWorkersError(RuntimeError):
    """No live worker consumed the scan's queue for the watcher's whole patience; the scan stays queued."""


class Orchestrator(Scans):
    """Scans (`fleet.scans`) plus following one to its end, re-queueing the chunks of lost attempts.

    Every read rides out a Redis outage of up to `redis_retry_seconds` (`fleet.resilience`); past it,
    `RedisUnavailable` names the Redis, and `last_progress` holds what was last seen of the scan. The
    scan does not need this watcher: its workers close it and reap lost chunks by themselves."""

    last_progress: ScanProgress | None = None

    def watch(self, scan_id: str, on_progress: Callable[[ScanProgress], None] | None = None, *,
              poll_seconds: float = 0.5, reap_seconds: float = 2.0, timeout: float | None = None,
              on_no_worker: Callable[[str, float], None] | None = None, no_worker_warn: float = 30.0,
              no_worker_timeout: float | None = None) -> ScanProgress:
        """Follows a scan to its end, re-queueing chunks of lost attempts on the way.

        While no live worker consumes the scan's queue, `on_no_worker(queue, seconds)` is told once after
        `no_worker_warn` seconds, and after `no_worker_timeout` seconds `NoWorkersError` ends the watch (the
        scan itself stays queued for workers that start later)."""
        started = time.monotonic()
        last_reap = 0.0
        requeued = 0
        queue = site_queue(self._retry(lambda: self._scan(scan_id), f"reading scan {scan_id}").site)
        unserved_since: float | None = None
        warned = False
        while True:
            if time.monotonic() - last_reap >= reap_seconds:
                requeued += len(self.reap(scan_id))
                last_reap = time.monotonic()
                serving = self._retry(lambda: self.store.workers_on(queue), f"reading the workers of {queue}")
                unserved_since = None if serving else (unserved_since or last_reap)
                unserved = last_reap - unserved_since if unserved_since is not None else 0.0
                if unserved_since is None:
                    warned = False
                elif not warned and unserved >= no_worker_warn and on_no_worker is not None:
                    on_no_worker(queue, unserved)
                    warned = True
                if no_worker_timeout is not None and unserved >= no_worker_timeout:
                    progress = self.progress(scan_id, requeued)
                    self.last_progress = progress
                    if not progress.finished:
                        raise NoWorkersError(f"no worker consumed queue {queue} for {unserved:.0f}s")
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
