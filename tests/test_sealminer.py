"""SealMiner stock firmware (BDMiner): parsers on the A2 replies asic-rs publishes, the backend against the
simulator over loopback (RPC and the PHP web with its session cookie), identification, a mixed scan, and the
simulator against pyasic-rs (marker `interop`; pyasic 0.79 has no SealMiner).

Addresses: 127.206.0.0/16 only. Replies: tests/fixtures/sealminer (from asic-rs, see the README there).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from asicfleet import MinerFactory
from asicfleet._errors import UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.sealminer import SealMiner
from asicfleet.config import Pool, PoolGroup, TuningConfig
from asicfleet.discovery._identify import identify
from asicfleet.hardware import SimulableModel, lookup_model
from asicfleet.sim import Fault, Service, SimFleet
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.sealminer import LOGIN_PAGE, SealMinerSim
from asicfleet.transport import HttpReply, PortMap, TransportSettings, decode_json
from tests.conftest import identified_backend, lo, only_miner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sealminer"
_block = itertools.count(1)


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture_backend() -> SealMiner:
    return SealMiner(lo("127.206.0.1"), SealMiner.device_info("SealMiner", "A2", "Stock"), Session())


# ===== parsers on the published replies ================================================================
def test_a2_replies() -> None:
    replies = {f"rpc:{n}": raw(n) for n in ("version", "summary", "stats", "pools")}
    replies["web:get_system_info"] = raw("get_system_info")
    data = fixture_backend().parse_raw(replies)
    assert data.errors == []
    assert data.mac == "50:D4:48:4B:86:78" and data.serial_number == "S127200252001850"
    assert (data.api_version, data.firmware_version, data.control_board_version) == ("3.7", "2025091001",
                                                                                      "taurus_air_v1.1")
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(197.5997141)  # MHS 1m
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(230.83940728559)
    boards = data.hashboards
    assert [b.hashrate.value for b in boards if b.hashrate] == pytest.approx([73.905832, 73.626639, 72.846395])
    assert [b.working_chips for b in boards] == [153] * 3 and [b.expected_chips for b in boards] == [153] * 3
    assert [b.board_temperature for b in boards] == [70, 70, 70] and boards[0].intake_temperature == 55
    assert boards[0].serial_number == "S124600252004637" and all(b.tuned and b.active for b in boards)
    assert [f.rpm for f in data.fans] == [3723, 3723, 3753, 3723] and [f.rpm for f in data.psu_fans] == [4408]
    assert (data.wattage, data.wattage_limit) == (3504, 3500)
    assert data.uptime == timedelta(seconds=2743)
    assert data.tuning_target is not None and (data.tuning_target.target_watts,
                                               data.tuning_target.target_mode) == (3500, "normal")
    assert data.is_mining is True and data.light_flashing is True  # led "on"
    pool = data.pools[0].pools[0]
    assert (pool.url, pool.user, pool.accepted_shares, pool.active, pool.alive) == (
        "stratum+tcp://stratum.braiins.com:3333", "Dow_Mining.SealMinerA2", 322, True, True)
    assert data.messages == []


def test_identification_signals() -> None:
    version = decode_json(raw("version"))
    assert SealMiner.matches(Probe(ip=lo("127.206.0.1"), rpc={"version": version}))
    assert not AntminerStock.matches(Probe(ip=lo("127.206.0.1"), rpc={"version": version}))
    page = HttpReply(200, {"content-type": "text/html"}, LOGIN_PAGE.encode())
    assert SealMiner.matches(Probe(ip=lo("127.206.0.1"), web=page))
    stock = {"STATUS": [{"STATUS": "S", "Description": "cgminer 1.0.0"}], "VERSION": [{"Type": "Antminer S19"}]}
    assert not SealMiner.matches(Probe(ip=lo("127.206.0.1"), rpc={"version": stock}))
    assert backend_for("sealminer") is SealMiner and SealMiner in BACKENDS


# ===== against the simulator over loopback =============================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
async def sealminers() -> AsyncIterator[Start]:
    opened: list[tuple[SimFleet, Session]] = []

    async def start(count: int = 1) -> tuple[SimFleet, Session]:
        block = next(_block)
        known = lookup_model("SealMiner", "A2")
        assert known is not None
        miners = []
        for i in range(count):
            miner = SealMinerSim.build(lo(f"127.206.{block}.{10 + i}"), SimulableModel.of(known), random.Random(i))
            miner.restart_seconds = 0.3
            miner.slow_seconds = 1.5
            miner.oversized_bytes = 2 * 1024 * 1024
            miners.append(miner)
        fleet = SimFleet(miners)
        await fleet.start()
        session = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), connect_timeout=0.5,
                                                     read_timeout=1.0, max_reply_bytes=512 * 1024))
        opened.append((fleet, session))
        return fleet, session

    yield start
    for fleet, session in opened:
        await session.aclose()
        await fleet.stop()


def only(fleet: SimFleet) -> tuple[str, SealMinerSim]:
    return only_miner(fleet, SealMinerSim)


async def _backend(session: Session, ip: str) -> SealMiner:
    return await identified_backend(session, ip, SealMiner)


async def test_identify_and_read(sealminers: Start) -> None:
    fleet, session = await sealminers(2)
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, SealMinerSim)
        backend = await _backend(session, ip)
        assert (backend.device.make, backend.device.model, backend.device.firmware) == ("SealMiner", "A2", "Stock")
        data = await backend.get_data()
        s = sim.state
        assert data.errors == []
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
        assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(226)
        assert [b.serial_number for b in data.hashboards] == s.extra["board_serials"]
        assert [b.working_chips for b in data.hashboards] == [153] * 3
        assert [f.rpm for f in data.fans] == s.fan_rpms
        assert (data.mac, data.serial_number, data.firmware_version) == (s.mac, s.serial, s.firmware_version)
        assert data.wattage == round(s.wattage) and data.wattage_limit == s.power_limit
        assert data.uptime is not None and abs(data.uptime.total_seconds() - s.uptime) <= 2
        assert [(p.url, p.user) for p in data.pools[0].pools] == [(p.url, p.username) for p in s.pools[0].pools]
        assert data.is_mining is True and data.light_flashing is False


class BootingSealMinerSim(SealMinerSim):
    """A SealMiner whose miner program has not started yet: its web UI answers, its RPC port does not."""

    services = (Service(80, "http"),)


async def test_identified_by_the_web_while_the_rpc_is_down() -> None:
    known = lookup_model("SealMiner", "A2")
    assert known is not None
    miner = BootingSealMinerSim.build(lo("127.206.249.10"), SimulableModel.of(known), random.Random(1))
    async with SimFleet([miner]) as fleet:
        session = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), connect_timeout=0.5,
                                                     read_timeout=1.0))
        try:
            found = await identify(miner.state.ip, session, timeout=5)
            assert found.miner is not None, found.error
            assert (found.miner.make, found.miner.model) == ("SealMiner", "A2")
            assert miner.requests["80:POST /cgi-bin/login.php"] == 1
            assert miner.requests["80:GET /cgi-bin/get_system_info.php"] == 1
        finally:
            await session.aclose()


async def test_reads_need_the_cookie_only_for_web_pages(sealminers: Start) -> None:
    fleet, session = await sealminers()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    sim.requests.clear()
    await backend.get_data([DataField.HASHRATE, DataField.WATTAGE])
    assert dict(sim.requests) == {"4028:summary": 1, "4028:stats": 1}  # RPC only: no login
    await backend.get_data([DataField.LIGHT_FLASHING])
    assert sim.requests["80:POST /cgi-bin/login.php"] == 1
    sim.state.extra["sessions"].clear()  # the session lapsed: one fresh login, then the page
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).errors == []
    assert sim.requests["80:POST /cgi-bin/login.php"] == 2


async def test_controls_change_the_simulator(sealminers: Start) -> None:
    fleet, session = await sealminers()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.set_fault_light(True) is True and sim.state.fault_light is True
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False) is True and sim.state.fault_light is False

    assert await backend.pause() is True and sim.state.mining is False
    paused = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE])
    assert paused.is_mining is False and paused.hashrate is not None and paused.hashrate.value == 0
    assert await backend.resume() is True and sim.state.mining is True
    before = sim.requests["4028:restart"]
    assert await backend.resume() is True and sim.requests["4028:restart"] == before  # already running

    stock_ths = sim.state.hashrate_ths
    assert await backend.set_power_limit(3200) is True
    assert sim.state.power_limit == 3200 and sim.requests["80:GET /cgi-bin/reboot.php"] == 0
    limited = await backend.get_data([DataField.WATTAGE_LIMIT, DataField.WATTAGE, DataField.HASHRATE])
    assert limited.wattage_limit == 3200 and limited.wattage is not None and limited.wattage <= 3200
    assert limited.hashrate is not None and limited.hashrate.value < stock_ths
    assert limited.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
    assert await backend.get_tuning_config() == TuningConfig.power(3200)
    assert await backend.set_tuning_config(TuningConfig.mode("high_performance")) is True
    assert sim.state.extra["mining_mode"] == 3 and sim.requests["4028:ascset"] >= 3
    assert (await backend.get_data([DataField.TUNING_TARGET])).tuning_target.target_mode == "high_performance"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="no mining mode"):
        await backend.set_tuning_config(TuningConfig.mode("turbo"))
    with pytest.raises(ValueError, match="whole watts"):
        await backend.set_power_limit(3200.5)

    new = [PoolGroup(pools=[Pool(url="stratum+tcp://a.example.net:3333", username="w.1", password="s3")])]
    assert await backend.set_pools_config(new) is True
    await asyncio.sleep(sim.restart_seconds + 0.4)
    assert sim.state.pools == new
    assert await backend.get_pools_config() == new  # the configured pools carry passwords

    assert await backend.restart() is True
    await asyncio.sleep(0.1)
    assert (await backend.get_data([DataField.UPTIME])).errors
    await asyncio.sleep(sim.restart_seconds + 0.4)
    up = await backend.get_data([DataField.UPTIME])
    assert up.uptime is not None and up.uptime.total_seconds() <= 3


async def test_unsupported_controls(sealminers: Start) -> None:
    fleet, session = await sealminers()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    sim.requests.clear()
    for control in ("change_password", "set_fan_config", "upgrade_firmware", "read_logs", "factory_reset"):
        assert not SealMiner.supports(control), control
    with pytest.raises(UnsupportedControlError):
        await backend.change_password("x")
    assert sim.total_requests == 0


async def test_capability_table(sealminers: Start, tmp_path: Path) -> None:
    """The handle's supports_* table (no control depends on the firmware version here); every control it
    denies is refused before anything is sent (the ones it grants are exercised above)."""
    from tests.capabilities import PROPERTIES, refused_without_sending

    fleet, session = await sealminers()
    ip, sim = only(fleet)
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None
    miner = found.miner
    table = {prop for prop in PROPERTIES if getattr(miner, f"supports_{prop}")}
    assert table == {"pools_config", "tuning_config", "set_fault_light", "set_power_limit", "pause", "resume",
                "restart"}
    for prop in sorted(set(PROPERTIES) - table):
        for control in refused_without_sending(miner, sim, prop, tmp_path):
            before = sim.total_requests
            with pytest.raises(UnsupportedControlError):
                await control()
            assert sim.total_requests == before, prop


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_fault_modes_yield_errors(sealminers: Start, fault: Fault) -> None:
    fleet, session = await sealminers()
    ip, _ = only(fleet)
    device = (await _backend(session, ip)).device
    fleet.set_fault(ip, fault)
    fresh = Session(settings=session.settings)  # faults act on new connections
    try:
        data = await asyncio.wait_for(SealMiner(ip, device, fresh).get_data(), 10)
        if fault is Fault.AUTH_FAILURE:  # the RPC needs no login; only the web page fails
            assert data.hashrate is not None and data.light_flashing is None and data.errors
        else:
            assert data.errors and data.hashrate is None
    finally:
        await fresh.aclose()


async def test_mixed_scan_with_antminers_and_icerivers() -> None:
    from asicfleet.sim.iceriver import IceRiverSim

    plan = [(SealMinerSim, "SealMiner", "A2"), (AntminerStockSim, "AntMiner", "Antminer S19j Pro"),
            (IceRiverSim, "IceRiver", "IceRiver KS3M"), (SealMinerSim, "SealMiner", "A2")]
    miners = []
    for i, (kind, make, name) in enumerate(plan):
        known = lookup_model(make, name)
        assert known is not None
        miners.append(kind.build(lo(f"127.206.250.{20 + i}"), SimulableModel.of(known), random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.206.250.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)


# ===== the independent client against the simulator =================================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic-rs only speaks to the standard ports; needs root to bind port 80")


@pytest.mark.interop
async def test_pyasic_rs_reads_and_controls(sealminers: Start) -> None:
    """pyasic-rs 0.8.6: RPC version ("BDMINER") identifies; the model from devdetails; the rate from stats
    `MHS(2m)`, boards from `<n> MHS(2m)`; web login for get_system_info and miner-psu-status. Make
    "Sealminer", firmware "SealMiner Stock"."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await sealminers()
    _real_ports(fleet)
    ip, sim = only(fleet)
    miner = await RsFactory().get_miner(ip)
    assert miner is not None
    data = await miner.get_data()
    inventory = sim.inventory()
    assert data.device_info.make.lower() == inventory["make"].lower() and data.device_info.model == "A2"
    assert data.device_info.firmware == "SealMiner Stock"
    assert data.hashrate is not None
    assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
    assert data.firmware_version == inventory["firmware_version"] and data.serial_number == sim.state.serial
    assert [b.serial_number for b in data.hashboards] == sim.state.extra["board_serials"]
    assert [b.hashrate.value for b in data.hashboards if b.hashrate] == pytest.approx(
        sim.state.board_hashrates(), rel=0.01)
    assert data.mac == sim.state.mac and data.wattage == round(sim.state.wattage)
    assert [f.rpm for f in data.fans] == pytest.approx(sim.state.fan_rpms)
    assert data.light_flashing is False
    assert [p.user for p in data.pools[0].pools] == [p.username for p in sim.state.pools[0].pools]
    assert await miner.set_fault_light(True) and sim.state.fault_light is True
    assert await miner.pause() and sim.state.mining is False
    assert await miner.resume() and sim.state.mining is True
    assert await miner.set_power_limit(3300.0) and sim.state.power_limit == 3300  # ascset alone
    assert sim.requests["80:GET /cgi-bin/reboot.php"] == 0
    from pyasic_rs import asic_rs as rs  # MiningMode and TuningConfig live in the extension module

    assert await miner.set_tuning_config(rs.TuningConfig.mode(rs.MiningMode.Low))  # ascset 0,workmode
    assert sim.state.extra["mining_mode"] == 0


@pytest.mark.interop
async def test_pyasic_does_not_know_sealminer(sealminers: Start) -> None:
    """pyasic 0.79 has no SealMiner: BDMiner's RPC and page match none of its signals."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await sealminers()
    _real_ports(fleet)
    ip, _ = only(fleet)
    assert await pyasic.get_miner(ip) is None
