"""A scan's record closes without anyone watching it: the worker that ends the last chunk closes it, and a
scan whose chunks the broker would not take is marked failed at once, with a message that says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from fleet.store import ScanStore
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.redis_server import free_port
from tests.conftest import lo

SUBNET = lo("127.140.0.0/22")
ASICFLEET = [sys.executable, "-m", "orchestrator.cli"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, object]]]:
    inventory = tmp_path_factory.mktemp("close") / "fleet.json"
    process = subprocess.Popen([*ASICFLEET, "sim", "--subnet", SUBNET, "--count", "20", "--seed", "4",
                                "--inventory", str(inventory)])
    try:
        deadline = time.monotonic() + 60
        while not inventory.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the simulator did not come up"
            time.sleep(0.1)
        yield json.loads(inventory.read_text())
    finally:
        stop_processes([process])


def _ports(fleet: list[dict[str, object]]) -> str:
    ports = fleet[0]["ports"]
    assert isinstance(ports, dict)
    return ",".join(f"{k}={v}" for k, v in ports.items())


def test_a_scan_nobody_watches_closes_when_its_last_chunk_ends(fleet: list[dict[str, object]],
                                                               redis_url: str) -> None:
    processes, names = start_workers(redis_url, 2, None)
    try:
        wait_for_workers(redis_url, names, processes)
        queued = subprocess.run([*ASICFLEET, "scan", SUBNET, "--distributed", "--no-wait", "--ports", _ports(fleet)],
                                capture_output=True, text=True, timeout=120,
                                env={**os.environ, "ASICFLEET_REDIS_URL": redis_url})
        assert queued.returncode == 0, queued.stderr
        scan_id = queued.stdout.strip()
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        deadline = time.monotonic() + 120
        while client.hget(f"asicfleet:scan:{scan_id}", "status") == "running":
            assert time.monotonic() < deadline, "the scan stayed running after its chunks ended"
            time.sleep(0.2)
        record = client.hgetall(f"asicfleet:scan:{scan_id}")
        assert record["status"] == "done" and float(record["finished"]) > float(record["created"])
        assert client.hlen(f"asicfleet:scan:{scan_id}:miners") == len(fleet)
        listing = subprocess.run([*ASICFLEET, "scans"], capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "ASICFLEET_REDIS_URL": redis_url, "COLUMNS": "200"})
        line = next(row for row in listing.stdout.splitlines() if scan_id in row)
        assert "done" in line and "running" not in line
    finally:
        stop_processes(processes)


def test_a_watcher_without_workers_on_its_queue_warns_gives_up_and_leaves_the_scan_queued(
        fleet: list[dict[str, object]], redis_url: str) -> None:
    """Workers of another site do not count; the scan waits for a worker that comes later."""
    env = {**os.environ, "ASICFLEET_REDIS_URL": redis_url, "ASICFLEET_NO_WORKER_TIMEOUT_SECONDS": "6"}
    elsewhere, names = start_workers(redis_url, 1, "east")
    later: list[subprocess.Popen[bytes]] = []
    try:
        wait_for_workers(redis_url, names, elsewhere)
        store = ScanStore.from_url(redis_url, 60)
        assert [w.split("@")[0] for w in store.workers_on("asicfleet.site.east")] == names
        deadline = time.monotonic() + 30  # the heartbeat of an earlier test's worker expires after its liveness
        while store.workers_on("asicfleet.default"):
            assert time.monotonic() < deadline, store.workers_on("asicfleet.default")
            time.sleep(0.5)
        started = time.monotonic()
        result = subprocess.run([*ASICFLEET, "scan", SUBNET, "--distributed", "--ports", _ports(fleet),
                                 "--no-progress"], capture_output=True, text=True, timeout=120, env=env)
        waited = time.monotonic() - started
        assert result.returncode == 1 and waited < 60, (waited, result.stderr)
        assert "no live worker consumes queue asicfleet.default" in result.stderr
        assert "no worker consumed queue asicfleet.default" in result.stderr and "Traceback" not in result.stderr
        scan_id = result.stderr.split("scan ", 1)[1].split()[0]
        assert "0 of 4 chunks were done" in result.stderr and f"--resume {scan_id}" in result.stderr
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        assert client.hget(f"asicfleet:scan:{scan_id}", "status") == "running"
        later, late_names = start_workers(redis_url, 1, None)
        wait_for_workers(redis_url, late_names, later)
        deadline = time.monotonic() + 120
        while client.hget(f"asicfleet:scan:{scan_id}", "status") == "running":
            assert time.monotonic() < deadline, "a worker that came later did not finish the queued scan"
            time.sleep(0.2)
        assert client.hlen(f"asicfleet:scan:{scan_id}:miners") == len(fleet)
    finally:
        stop_processes(elsewhere + later)


def test_a_dead_broker_fails_the_scan_with_a_message_not_a_traceback(redis_url: str) -> None:
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    result = subprocess.run([*ASICFLEET, "scan", SUBNET, "--distributed", "--no-wait"], capture_output=True,
                            text=True, timeout=180,
                            env={**os.environ, "ASICFLEET_REDIS_URL": redis_url, "ASICFLEET_BROKER_URL": dead_broker,
                                 "ASICFLEET_REDIS_RETRY_SECONDS": "3"})
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "the broker did not take chunk 0" in message and "marked failed" in message, message
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    newest = client.zrange("asicfleet:scans", -1, -1)[0]
    record = client.hgetall(f"asicfleet:scan:{newest}")
    assert record["status"] == "failed" and "could not be queued" in record["error"]
