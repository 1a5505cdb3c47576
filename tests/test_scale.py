"""Scans at the scale users run: a /16 holding 400 simulated miners (served by a process of its own),
scanned with the guide's settings (concurrency 2500) and with 10,000, in process and distributed, with every
core kept busy by a CPU hog (the harder case; a quiet distributed scan at 2500 too). Slower is fine; lossy is
not: every miner is found and read, and no address is left undecided. bench/scale.py runs every combination,
quiet and busy, at 1000, 2500 and 10,000."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from asicfleet import MinerFactory, TooManyAddressesError
from asicfleet.discovery import ScanRecord, scan_and_collect
from orchestrator.local import stop_processes
from orchestrator.redis_server import EmbeddedRedis
from tests.conftest import lo

pytestmark = pytest.mark.slow

SUBNET = lo("127.130.0.0/16")
MINERS = 400
ASICFLEET = [sys.executable, "-m", "orchestrator.cli"]
Inventory = list[dict[str, object]]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inventory]:
    """The issue's own reproduction: 400 miners of all five families over a /16, seed 3."""
    inventory = tmp_path_factory.mktemp("scale") / "fleet.json"
    process = subprocess.Popen([*ASICFLEET, "sim", "--subnet", SUBNET, "--count", str(MINERS), "--seed", "3",
                                "--mix", "antminer,braiins,whatsminer,avalon,bitaxe", "--inventory", str(inventory)])
    try:
        deadline = time.monotonic() + 120
        while not inventory.exists():
            assert process.poll() is None, "the simulator died at start"
            assert time.monotonic() < deadline, "the simulator did not come up in 120 s"
            time.sleep(0.1)
        yield json.loads(inventory.read_text())
    finally:
        stop_processes([process])


@pytest.fixture
def cpu_hog() -> Iterator[None]:
    """One busy process per core, for the length of the test."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        stop_processes(hogs)


def _ports(fleet: Inventory) -> str:
    ports = fleet[0]["ports"]
    assert isinstance(ports, dict)
    return ",".join(f"{k}={v}" for k, v in ports.items())


def _check_every_miner(fleet: Inventory, records: dict[str, dict[str, object]]) -> None:
    expected = {str(m["ip"]): m for m in fleet}
    missing = sorted(set(expected) - set(records), key=IPv4Address)
    assert not missing, f"{len(missing)} of {MINERS} miners missed, e.g. {missing[:5]}"
    extra = sorted(set(records) - set(expected), key=IPv4Address)
    assert not extra, (f"{len(extra)} hosts reported that are no miners, e.g. "
                       f"{[(ip, records[ip].get('error')) for ip in extra[:5]]}")
    for ip, miner in expected.items():
        record = records[ip]
        assert not record.get("error"), (ip, record["error"])
        info = record["device_info"]
        assert isinstance(info, dict)
        assert (info["make"], info["model"]) == (miner["make"], miner["model"]), ip
        hashrate = record["hashrate"]
        assert isinstance(hashrate, dict) and hashrate["value"] == pytest.approx(miner["hashrate_ths"], rel=0.01), ip


async def _scan_in_process(fleet: Inventory, concurrency: int) -> None:
    factory = (MinerFactory.from_subnet(SUBNET).with_concurrent_limit(concurrency)
               .with_connectivity_timeout_secs(1).with_identification_timeout_secs(10).with_port_map(_ports(fleet)))
    records: list[ScanRecord] = []
    async with factory:
        async for record in scan_and_collect(factory):
            records.append(record)
    by_ip = {str(r.ip): (r.data.model_dump(mode="json") if r.data else {"error": r.error}) for r in records}
    _check_every_miner(fleet, by_ip)
    summary = factory.last_scan
    assert summary is not None and summary.addresses == 65534
    assert summary.undecided == 0
    assert summary.peak_in_flight <= concurrency


@pytest.mark.parametrize("concurrency", [2500, 10_000])
async def test_in_process_slash16_finds_every_miner_on_a_busy_machine(fleet: Inventory, concurrency: int,
                                                                      cpu_hog: None) -> None:
    await _scan_in_process(fleet, concurrency)


def _distributed(fleet: Inventory, concurrency: int) -> None:
    with EmbeddedRedis() as redis:  # private: the machine's Redis is never touched
        result = subprocess.run(
            [*ASICFLEET, "scan", SUBNET, "--distributed", "--local-workers", "2", "--concurrency", str(concurrency),
             "--ports", _ports(fleet), "--json", "--no-progress"],
            capture_output=True, text=True, timeout=900,
            env={**os.environ, "ASICFLEET_REDIS_URL": redis.url, "ASICFLEET_WORKER_LIVENESS_SECONDS": "5"})
    assert result.returncode == 0, result.stderr[-3000:]
    records = {}
    for line in result.stdout.splitlines():
        record = json.loads(line)
        records[record["ip"]] = record
    _check_every_miner(fleet, records)
    assert "65,534/65,534 addresses decided, 0 undecided" in " ".join(result.stderr.split()), result.stderr[-2000:]


def test_distributed_slash16_finds_every_miner(fleet: Inventory) -> None:
    _distributed(fleet, 2500)


def test_distributed_slash16_finds_every_miner_on_a_busy_machine(fleet: Inventory, cpu_hog: None) -> None:
    _distributed(fleet, 10_000)


def test_a_slash8_is_refused_before_anything_is_sent() -> None:
    """A scan that started would take minutes, a refusal takes none; nothing listens on this run's 127.134
    and 127.135 stand-ins, so the raised scan finds nothing, quickly."""
    with pytest.raises(TooManyAddressesError, match="16,777,214 addresses"):
        MinerFactory.from_subnet("127.0.0.0/8").check_size()
    started = time.monotonic()
    result = subprocess.run([*ASICFLEET, "scan", "127.0.0.0/8", "--no-progress"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    message = " ".join(result.stderr.split())  # the terminal may wrap it
    assert "more than this scan's limit of 65,536" in message and "--distributed" in message
    assert time.monotonic() - started < 30
    distributed = subprocess.run([*ASICFLEET, "scan", "127.0.0.0/8", "--distributed", "--no-wait"],
                                 capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "ASICFLEET_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert distributed.returncode != 0
    message = " ".join(distributed.stderr.split())
    assert "limit of 1,048,576" in message and "--max-addresses" in message
    two = [lo("127.134.0.0/16"), lo("127.135.0.0/24")]  # 65,788 addresses: just past the limit
    refused = subprocess.run([*ASICFLEET, "scan", *two, "--no-progress"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "65,788 addresses" in " ".join(refused.stderr.split())
    raised = subprocess.run([*ASICFLEET, "scan", *two, "--max-addresses", "65788", "--no-progress",
                             "--connect-timeout", "0.2"], capture_output=True, text=True, timeout=300)
    assert raised.returncode == 0, raised.stderr[-2000:]
    assert "0 miners" in raised.stdout


async def test_library_refuses_more_than_its_limit_before_sending() -> None:
    factory = MinerFactory.from_targets([lo("127.132.0.0/16"), lo("127.133.0.0/16")])
    with pytest.raises(TooManyAddressesError):
        async for _ in factory.scan_results():
            pass
    assert factory.with_max_addresses(1 << 17).max_addresses == 131072
