"""The services' own metrics and JSON logs: a real worker (`asicfleet workers --metrics-port`) scans the
simulator through a private Redis, and its /metrics shows the scan's counts; Redis retries are counted on
a real refused connection; log records are JSON with the task's context and no credentials."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry

from fleet import logs
from fleet.resilience import RedisUnavailable, retry
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions
from orchestrator import metrics as orchestrator_metrics
from orchestrator.local import stop_processes, wait_for_workers
from orchestrator.redis_server import free_port
from orchestrator.watch import Orchestrator
from tests.conftest import lo

SUBNET = lo("127.230.0.0/26")  # one chunk per /28: four chunks
MINERS = 12
METRICS_HOST = lo("127.231.0.1")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, object]]]:
    inventory = tmp_path_factory.mktemp("fleet") / "fleet.json"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "sim", "--subnet", SUBNET, "--count",
                                str(MINERS), "--seed", "3", "--inventory", str(inventory), "--faults", "malformed=1"])
    try:
        deadline = time.monotonic() + 90
        while not inventory.exists():
            assert process.poll() is None, "the simulator died at start"
            assert time.monotonic() < deadline, "the simulator did not come up"
            time.sleep(0.1)
        yield json.loads(inventory.read_text())
    finally:
        stop_processes([process])


def test_worker_metrics_after_a_real_scan_of_the_simulator(redis_url: str, fleet: list[dict[str, object]],
                                                           tmp_path: Path) -> None:
    port = free_port(METRICS_HOST)
    log_file = tmp_path / "worker.log"
    name = "metrics-test"
    with log_file.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "workers", "--concurrency", "2", "--name", name,
             "--metrics-port", str(port), "--metrics-address", METRICS_HOST, "--log-format", "json"],
            env={**os.environ, "ASICFLEET_REDIS_URL": redis_url, "ASICFLEET_WORKER_LIVENESS_SECONDS": "3",
                 "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")},
            stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for_workers(redis_url, [name], [worker])
        before = _samples(httpx.get(f"http://{METRICS_HOST}:{port}/metrics", timeout=5).text)
        assert before[("asicfleet_chunks_total", (("state", "done"),))] == 0  # shown from the first scrape on

        ports = fleet[0]["ports"]
        assert isinstance(ports, dict)
        options = DiscoveryOptions(concurrency=200, connect_timeout=1.0, read_timeout=3.0, identify_timeout=5.0,
                                   ports=",".join(f"{k}={v}" for k, v in ports.items()))
        orchestrator = Orchestrator(FleetSettings(redis_url=redis_url, worker_liveness_seconds=3.0))
        scan_id = orchestrator.start_scan([SUBNET], chunk_prefix=28, options=options)
        final = orchestrator.watch(scan_id, timeout=120)
        assert final.finished and final.chunks_done == 4
        time.sleep(0.5)  # the task's postrun counts land just after its result is written
        after = _samples(httpx.get(f"http://{METRICS_HOST}:{port}/metrics", timeout=5).text)
    finally:
        stop_processes([worker])

    assert after[("asicfleet_chunks_total", (("state", "done"),))] == 4
    assert after[("asicfleet_addresses_probed_total", ())] == final.addresses_probed == 62  # .0 and .63 are not probed
    assert after[("asicfleet_miners_found_total", ())] == final.miners == MINERS - 1
    assert after[("asicfleet_errors_total", (("kind", "host"),))] == 1  # the malformed miner
    assert after[("asicfleet_scans_finished_total", (("status", "done"),))] == 1
    assert after[("asicfleet_tasks_total", (("state", "success"), ("task", "asicfleet.scan_chunk")))] == 4
    assert after[("asicfleet_task_duration_seconds_count", (("task", "asicfleet.scan_chunk"),))] == 4
    assert after[("asicfleet_task_duration_seconds_sum", (("task", "asicfleet.scan_chunk"),))] > 0
    assert after[("asicfleet_tasks_running", (("task", "asicfleet.scan_chunk"),))] == 0

    records = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    assert records, "the worker logged no JSON"
    about_chunks = [r for r in records if r.get("scan_id") == scan_id]
    assert about_chunks, "no record carried the scan id"
    assert {r["chunk"] for r in about_chunks} <= {0, 1, 2, 3}
    assert all(r.get("worker", "").startswith(name) for r in about_chunks)


def test_redis_retries_are_counted_on_a_refused_connection() -> None:
    # nobody listens there; redis-py's own retries are off, so that each refusal reaches ours
    closed = redis.Redis(host=METRICS_HOST, port=free_port(METRICS_HOST), socket_connect_timeout=0.2,
                         retry=Retry(NoBackoff(), 0))
    retries_before = sum(v for (n, _), v in _samples(_orchestrator_text()).items()
                         if n == "asicfleet_redis_retries_total")
    gave_up_before = _samples(_orchestrator_text())[("asicfleet_redis_gave_up_total", ())]
    with pytest.raises(RedisUnavailable):
        retry(closed.ping, url=f"redis://:hunter2@{METRICS_HOST}:1/0", what="pinging", budget=1.0)
    after = _samples(_orchestrator_text())
    assert sum(v for (n, _), v in after.items() if n == "asicfleet_redis_retries_total") >= retries_before + 2
    assert after[("asicfleet_redis_retries_total", (("error", "ConnectionError"),))] >= 2
    assert after[("asicfleet_redis_gave_up_total", ())] == gave_up_before + 1


def _orchestrator_text() -> str:
    from prometheus_client import generate_latest

    return generate_latest(orchestrator_metrics.REGISTRY).decode()


def test_orchestrator_serves_its_metrics() -> None:
    port = free_port(METRICS_HOST)
    orchestrator_metrics.serve(port, METRICS_HOST)
    orchestrator_metrics.SCANS_STARTED.labels(origin="cli").inc()
    text = httpx.get(f"http://{METRICS_HOST}:{port}/metrics", timeout=5).text
    assert _samples(text)[("asicfleet_scans_started_total", (("origin", "cli"),))] >= 1


def test_json_log_records_carry_the_task_context_and_no_credentials() -> None:
    formatter = logs.JsonFormatter()
    with logs.bound(scan_id="20261203T000000-abcdef", chunk=3, worker="w1@host"):
        record = logging.LogRecord("workers.tasks", logging.WARNING, __file__, 1,
                                   "Redis redis://:s3cret@redis:6379/0 did not answer", None, None)
        record.ip = "10.1.2.3"
        record.password = "hunter2"
        entry = json.loads(formatter.format(record))
    assert entry["scan_id"] == "20261203T000000-abcdef" and entry["chunk"] == 3 and entry["worker"] == "w1@host"
    assert entry["ip"] == "10.1.2.3" and entry["level"] == "warning"
    assert "s3cret" not in json.dumps(entry) and "hunter2" not in json.dumps(entry)
    assert entry["password"] == "***"
    outside = json.loads(formatter.format(logging.LogRecord("x", logging.INFO, __file__, 1, "plain", None, None)))
    assert "scan_id" not in outside
