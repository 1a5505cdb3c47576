"""The orchestrator's own Prometheus metrics, served while a command runs with `asicfleet --metrics-port N ...`
(or `ASICFLEET_ORCHESTRATOR_METRICS_PORT`): scans it started and saw finish, their chunks by state, the
addresses and miners of those scans, and Redis retries. The workers' metrics are workers/metrics.py's; the
names are the same where they count the same thing, so one query adds both up.
"""

from __future__ import annotations

import os
from pathlib import Path

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # prometheus-client then keeps counts in files there
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, multiprocess, start_http_server

from fleet import resilience
from fleet.scans import ScanProgress

# a registry of its own: a process that also loads the workers' metrics (same names) keeps both apart
REGISTRY = CollectorRegistry()

SCANS_STARTED = Counter("asicfleet_scans_started_total", "Scans planned and queued by this service", ["origin"],
                        registry=REGISTRY)
SCANS_FINISHED = Counter("asicfleet_scans_finished_total", "Scans seen to the end by this service, by final status",
                         ["status"], registry=REGISTRY)
CHUNKS = Counter("asicfleet_chunks_total", "Chunks of the scans seen to the end, by state", ["state"],
                 registry=REGISTRY)
ADDRESSES_PROBED = Counter("asicfleet_addresses_probed_total", "Addresses probed in the scans seen to the end",
                           registry=REGISTRY)
MINERS_FOUND = Counter("asicfleet_miners_found_total", "Miners found in the scans seen to the end",
                       registry=REGISTRY)
REDIS_RETRIES = Counter("asicfleet_redis_retries_total", "Redis calls retried after a transient error, by error",
                        ["error"], registry=REGISTRY)
REDIS_GAVE_UP = Counter("asicfleet_redis_gave_up_total", "Redis calls abandoned after the retry budget",
                        registry=REGISTRY)


resilience.observe_retries(lambda error: REDIS_RETRIES.labels(error=error).inc(), REDIS_GAVE_UP.inc)


def scan_watched(final: ScanProgress) -> None:
    """A scan this command followed to its end."""
    SCANS_FINISHED.labels(status="failed" if final.chunks_failed else "done").inc()
    CHUNKS.labels(state="done").inc(final.chunks_done)
    CHUNKS.labels(state="failed").inc(final.chunks_failed)
    ADDRESSES_PROBED.inc(final.addresses_probed)
    MINERS_FOUND.inc(final.miners)


def serve(port: int, address: str = "127.0.0.1") -> None:
    """/metrics on `address:port` from a daemon thread, for as long as the command runs."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # prometheus-client then keeps counts in files
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=address, registry=registry)
