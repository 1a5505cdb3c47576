"""Discovery against the simulator: every family found right, nothing where nothing listens,
one connection attempt per empty address, and every fault mode a per-miner error."""

from __future__ import annotations

import asyncio
import time

import pytest

from asicfleet import MinerFactory
from asicfleet.discovery import scan_and_collect
from asicfleet.sim import SIM_FAMILIES, Fault
from tests.conftest import FleetFactory, lo

FAMILIES = sorted(SIM_FAMILIES)


def _factory(subnet: str, fleet_ports: object, **timeouts: float) -> MinerFactory:
    factory = MinerFactory.from_subnet(subnet).with_port_map(fleet_ports)  # type: ignore[arg-type]
    return (factory.with_connectivity_timeout_secs(timeouts.get("connect", 0.5))
            .with_read_timeout_secs(timeouts.get("read", 1.5))
            .with_identification_timeout_secs(timeouts.get("identify", 3.0)))


async def test_every_family_is_identified_and_read(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.90.0.0/24"), 3 * len(FAMILIES), FAMILIES, seed=3)
    assert fleet.ports is not None
    factory = _factory(lo("127.90.0.0/24"), fleet.ports)
    records = {str(r.ip): r async for r in scan_and_collect(factory)}
    await factory.aclose()
    inventory = {m["ip"]: m for m in fleet.inventory()}
    assert set(records) == set(inventory)
    for ip, expected in inventory.items():
        record = records[ip]
        assert record.error is None and record.data is not None, (ip, record.error)
        data = record.data
        assert (data.make, data.model, data.firmware) == (expected["make"], expected["model"], expected["firmware"])
        assert data.hashrate is not None, (ip, data.errors)
        assert data.hashrate.into_unit("TH/s").value == pytest.approx(expected["hashrate_ths"], rel=0.01)
        assert data.errors == [], (ip, data.errors)


async def test_nothing_where_nothing_listens() -> None:
    factory = _factory(lo("127.91.0.0/24"), {}).with_concurrent_limit(300)
    seen = [item async for item in factory.scan_stream_with_ip()]
    assert len(seen) == 254 and all(miner is None for _, miner in seen)
    assert await factory.scan() == []
    assert await factory.get_miner(lo("127.91.0.9")) is None
    await factory.aclose()


async def test_an_empty_address_costs_one_connection_attempt() -> None:
    """Only the web port is tried where nothing answers: an RPC listener alone is never contacted."""
    contacted: list[int] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        contacted.append(1)
        writer.close()

    rpc_only = await asyncio.start_server(count, lo("127.92.0.7"), 4028)
    try:
        factory = _factory(lo("127.92.0.0/29"), {})
        assert await factory.scan() == []
        await factory.aclose()
    finally:
        rpc_only.close()
    assert contacted == []


async def test_every_fault_is_a_per_miner_error_and_the_scan_completes(sim_fleet: FleetFactory) -> None:
    # AUTH_FAILURE refuses logins only: reads that need none succeed; each family's tests cover it
    faults = [f for f in Fault if f not in (Fault.NONE, Fault.AUTH_FAILURE)]
    fleet = await sim_fleet(lo("127.93.0.0/24"), len(faults) * 2 + 4, FAMILIES, seed=5)
    assigned = fleet.assign_faults({f: 2 for f in faults}, seed=5)
    for miner in fleet.miners.values():
        miner.slow_seconds = 4.0  # beyond the read timeout below: slow enough to be an error
        miner.oversized_bytes = 8 * 1024 * 1024
    assert fleet.ports is not None
    factory = _factory(lo("127.93.0.0/24"), fleet.ports, read=1.0, identify=2.5).with_max_reply_bytes(256 * 1024)
    start = time.monotonic()
    records = {str(r.ip): r async for r in scan_and_collect(factory)}
    elapsed = time.monotonic() - start
    await factory.aclose()
    assert elapsed < 30, "a faulty miner stalled the scan"
    for ip in fleet.miners:
        record = records.get(ip)
        if ip not in assigned:
            assert record is not None and record.data is not None and not record.data.errors, (ip, record)
            continue
        # a faulty miner is reported, never silently dropped and never reported clean
        assert record is not None, f"{ip} with fault {assigned[ip]} vanished from the scan"
        has_error = record.error is not None or (record.data is not None and bool(record.data.errors))
        assert has_error, f"{ip} with fault {assigned[ip]} came back without an error: {record}"


async def test_guide_example_runs_unchanged(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.94.0.0/24"), len(FAMILIES), FAMILIES, seed=7)
    assert fleet.ports is not None
    factory = (
        MinerFactory.from_subnet(lo("127.94.0.0/24"))
        .with_concurrent_limit(2500)
        .with_connectivity_timeout_secs(1)
        .with_identification_timeout_secs(10)
    ).with_port_map(fleet.ports)
    miners = await factory.scan()
    assert len(miners) == len(FAMILIES)
    streamed = [m async for m in factory.scan_stream()]
    assert sorted(str(m.ip) for m in streamed) == sorted(str(m.ip) for m in miners)
    for miner in miners:
        assert miner.make and miner.model and miner.firmware and miner.algo
        data = await miner.get_data()
        hashrate = await miner.get_hashrate()
        fans = await miner.get_fans()
        assert data.hashrate is not None and hashrate is not None
        assert hashrate.value == pytest.approx(data.hashrate.value, rel=0.05)
        assert isinstance(fans, list)
        if miner.supports_set_power_limit:
            assert await miner.set_power_limit(3200.0) in (True, False)
    await factory.aclose()


async def test_credentials_per_range_with_fallbacks_are_never_shown(
        sim_fleet: FleetFactory, caplog: pytest.LogCaptureFixture) -> None:
    fleet = await sim_fleet(lo("127.95.0.0/28"), 2, ["antminer"], seed=11)
    changed, default = sorted(fleet.miners)
    fleet.miners[changed].state.password = "farm-Secret-77"  # this farm changed the default on one miner
    assert fleet.ports is not None
    factory = (_factory(lo("127.95.0.0/28"), fleet.ports)
               .with_credentials("antminer", "root", ["wrong-one", "farm-Secret-77"], network=f"{changed}/32"))
    caplog.set_level("DEBUG")
    miners = {str(m.ip): m for m in await factory.scan()}
    for ip in (changed, default):
        data = await miners[ip].get_data()
        assert data.mac == fleet.miners[ip].state.mac, (ip, data.errors)  # the MAC needs the web login
        assert not data.errors
    assert "farm-Secret-77" not in repr(factory.session.credentials)
    assert "farm-Secret-77" not in caplog.text
    assert "farm-Secret-77" not in (await miners[changed].get_data()).model_dump_json()
    await factory.aclose()
