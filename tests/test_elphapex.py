"""Elphapex stock firmware: parsers on published replies, the backend against the simulator over loopback,
identification next to stock Antminer, a mixed scan, and pyasic / pyasic-rs against the simulator (`interop`).

Addresses: 127.200.0.0/16 only. Replies: tests/fixtures/elphapex (see the README there).
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
from asicfleet.backends.blackminer import Hammer, VolcMiner
from asicfleet.backends.elphapex import Elphapex, firmware_version
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.discovery._identify import identify
from asicfleet.hardware import lookup_model
from asicfleet.sim import SimFleet, SimMiner
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.blackminer import HammerSim
from asicfleet.sim.elphapex import REALM, ElphapexSim
from asicfleet.transport import HttpReply, PortMap, TransportSettings
from tests.conftest import lo, only_miner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "elphapex"
_block = itertools.count(1)


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture_backend(model: str) -> Elphapex:
    return Elphapex(lo("127.200.0.1"), Elphapex.device_info("Elphapex", model, "Stock"), Session())


# ===== parsers on the published replies =================================================================
def test_dg1plus_replies() -> None:
    keys = ("get_system_info", "summary", "stats", "pools", "get_miner_conf")
    data = fixture_backend("DG1+").parse_raw({f"web:{k}": raw(f"dg1plus_{k}") for k in keys})
    assert data.errors == []
    assert (data.mac, data.hostname, data.firmware_version, data.api_version) == (
        "12:34:56:78:90:12", "DG1+", "1.0.2", "1.0.0")
    assert data.serial_number == "28HY245192N000245C23B" and data.control_board_version == "DG1+_HW_V1.0"
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(11531.88e-6)  # rate_5s, MH/s
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(14229e-6)
    assert data.uptime == timedelta(seconds=357352)
    assert [f.rpm for f in data.fans] == [5340, 5400, 5400, 5400]
    boards = data.hashboards
    assert [b.working_chips for b in boards] == [204] * 4 and [b.expected_chips for b in boards] == [204] * 4
    assert sum(b.hashrate.value for b in boards if b.hashrate) == pytest.approx(14199.04e-6)
    assert [b.board_temperature for b in boards] == [56.5] * 4  # mean of 47, 46, 67, 66
    assert (boards[0].intake_temperature, boards[0].outlet_temperature) == (47.125, 50.5)  # milli-degrees
    assert boards[0].frequency == 62 and boards[0].serial_number == "13HY245156N000581H11JB52"
    pools = data.pools[0].pools
    assert [(p.position, p.alive, p.active) for p in pools] == [(0, False, False), (1, True, True), (2, False, False)]
    assert pools[1].accepted_shares == 604803 and pools[1].user == "pool_username.real_worker"
    assert data.is_mining is True and data.tuning_target is not None and data.tuning_target.target_mode == "normal"
    assert data.messages == []


def test_dg_home1_idle_replies() -> None:
    keys = ("get_system_info", "summary", "stats", "pools", "get_miner_conf", "get_power", "get_blink_status")
    data = fixture_backend("DG-Home1").parse_raw({f"web:{k}": raw(f"dg_home1_{k}") for k in keys})
    assert data.errors == []
    assert data.mac == "B8:4C:87:E0:66:B2" and data.firmware_version == "1.0.5"
    assert data.serial_number == "13HY24B056N300037C11B"
    assert data.hashrate is not None and data.hashrate.value == 0
    assert data.wattage == 25 and data.light_flashing is False
    # the one board of this model sits in the fourth chain slot: four slots are read, the board is up but idle
    assert [(b.position, b.working_chips, b.active) for b in data.hashboards] == [
        (0, 0, False), (1, 0, False), (2, 0, False), (3, 120, True)]
    assert data.hashboards[3].serial_number == "10HY24B046N300036H10JC53"
    assert data.hashboards[0].intake_temperature is None  # blank chip sensors
    assert data.pools[0].pools[0].url == "stratum+tcp://pool.invalid:3333"
    assert all(p.active is False for p in data.pools[0].pools)  # none alive
    # idle with its pools unreachable: the `rate` and `network` entries are not `s` (success), so they are
    # reported, without a severity letter (blank state) as information, named by their type
    assert [(m.message, m.severity.value) for m in data.messages] == [("rate", "info"), ("network", "info")]


def test_version_and_error_reply() -> None:
    assert firmware_version("DG1+_SW_V1.0.2") == "1.0.2" and firmware_version("DG-Home1_V1.0.5") == "1.0.5"
    assert firmware_version("") is None
    bad = fixture_backend("DG1").parse_raw({"web:stats": b'{"STATUS": {"STATUS": "E"}}'})
    assert bad.hashrate is None and any("stats" in e for e in bad.errors)


# ===== identification signals =========================================================================
def _web(status: int, realm: str) -> HttpReply:
    return HttpReply(status, {"www-authenticate": f'Digest realm="{realm}", nonce="x", qop="auth"'}, b"")


def test_matches_only_its_realm() -> None:
    ip = lo("127.200.0.1")
    assert Elphapex.matches(Probe(ip=ip, web=_web(401, REALM)))
    assert not Elphapex.matches(Probe(ip=ip, web=_web(200, REALM)))
    assert not AntminerStock.matches(Probe(ip=ip, web=_web(401, REALM)))
    assert not Elphapex.matches(Probe(ip=ip, web=_web(401, "antMiner Configuration")))
    assert not Elphapex.matches(Probe(ip=ip, web=_web(401, "blackMiner Configuration")))
    assert not Elphapex.matches(Probe(ip=ip))
    assert backend_for("elphapex") is Elphapex and BACKENDS.index(Elphapex) < BACKENDS.index(AntminerStock)


# ===== against the simulator ==========================================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
async def elphapex() -> AsyncIterator[Start]:
    """`fleet, session = await elphapex(models)`: one simulated miner per model on its own 127.200.N.x block."""
    opened: list[tuple[SimFleet, Session]] = []

    async def start(models: tuple[str, ...] = ("DG1+",)) -> tuple[SimFleet, Session]:
        block = next(_block)
        miners: list[SimMiner] = []
        for i, name in enumerate(models):
            model = lookup_model("Elphapex", name)
            assert model is not None
            miner = ElphapexSim.build(lo(f"127.200.{block}.{10 + i}"), model, random.Random(i))
            miner.restart_seconds = 0.3
            miners.append(miner)
        fleet = SimFleet(miners)
        await fleet.start()
        session = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), connect_timeout=0.5,
                                                     read_timeout=2.0))
        opened.append((fleet, session))
        return fleet, session

    yield start
    for fleet, session in opened:
        await session.aclose()
        await fleet.stop()


def only(fleet: SimFleet) -> tuple[str, ElphapexSim]:
    return only_miner(fleet, ElphapexSim)


async def _backend(session: Session, ip: str) -> Elphapex:
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None, found.error
    assert isinstance(found.miner.backend, Elphapex)
    return found.miner.backend


async def test_identify_and_read_every_model(elphapex: Start) -> None:
    fleet, session = await elphapex(ElphapexSim.models)
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, ElphapexSim)
        backend = await _backend(session, ip)
        info, state = backend.device, sim.state
        assert (info.make, info.model, info.firmware) == ("Elphapex", sim.model_name, "Stock")
        assert info.hardware.board_count == state.model.boards and backend.firmware_version == sim.short_version
        data = await backend.get_data()
        assert data.errors == []
        assert data.hashrate is not None and data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"],
                                                                                  rel=1e-4)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(data.hashrate.value,
                                                                                           rel=1e-4)
        assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(
            state.model.nominal_ths)
        assert (data.mac, data.hostname, data.serial_number) == (state.mac, state.hostname, state.serial)
        assert data.firmware_version == sim.short_version and data.api_version == "1.0.0"
        assert data.wattage == round(state.wattage)
        assert [f.rpm for f in data.fans] == state.fan_rpms
        assert [b.serial_number for b in data.hashboards] == state.extra["board_serials"]
        assert [b.working_chips for b in data.hashboards] == [state.model.chips_per_board] * state.model.boards
        assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 2
        assert [(p.url, p.user) for p in data.pools[0].pools] == [(p.url, p.username) for p in state.pools[0].pools]
        assert data.is_mining is True and data.light_flashing is False and data.messages == []


async def test_identification_costs_one_system_info_and_an_empty_address_one_connect(elphapex: Start) -> None:
    fleet, session = await elphapex()
    ip, sim = only(fleet)
    sim.requests.clear()
    await _backend(session, ip)
    assert sim.requests["auth:GET /cgi-bin/get_system_info.cgi"] == 1
    assert not any(k.startswith("4028") for k in sim.requests)  # nothing listens there
    empty = await identify(lo("127.200.99.1"), session, timeout=5)
    assert empty.miner is None and empty.absent == "refused"


async def test_controls_change_the_simulator(elphapex: Start) -> None:
    fleet, session = await elphapex(("DG1",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.set_fault_light(True) is True and sim.state.fault_light is True
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False) is True and sim.state.fault_light is False

    assert await backend.pause() is True and sim.state.mining is False and sim.work_mode == 1
    paused = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE])
    assert paused.is_mining is False and paused.hashrate is not None and paused.hashrate.value == 0
    assert await backend.resume() is True and sim.state.mining is True and sim.work_mode == 0

    new = [PoolGroup(name="default", pools=[Pool(url="stratum+tcp://ltc.example.net:3333", username="w.1",
                                                 password="p1"),
                                            Pool(url="stratum+tcp://ltc2.example.net:443", username="w.2")])]
    assert await backend.set_pools_config(new) is True
    assert [(p.url, p.username, p.password) for p in sim.state.pools[0].pools] == [
        ("stratum+tcp://ltc.example.net:3333", "w.1", "p1"), ("stratum+tcp://ltc2.example.net:443", "w.2", "x")]
    assert await backend.get_pools_config() == sim.state.pools
    assert sim.work_mode == 0 and sim.state.mining is True  # the other settings were carried over

    assert await backend.set_fan_config(FanConfig.manual(70)) is True
    assert sim.state.fan == FanConfig.manual(70) and await backend.get_fan_config() == FanConfig.manual(70)
    assert await backend.set_fan_config(FanConfig.auto()) is True and sim.state.fan == FanConfig.auto()
    with pytest.raises(UnsupportedControlError):
        await backend.set_fan_config(FanConfig.auto(target_temp=60))

    assert await backend.set_tuning_config(TuningConfig.mode("low")) is True and sim.work_mode == 3
    assert await backend.get_tuning_config() == TuningConfig.mode("low")
    assert sim.state.hashrate_ths == pytest.approx(sim.state.extra["base_ths"] * 0.7, rel=1e-4)
    before = sim.total_requests
    with pytest.raises(ValueError, match="unknown work mode"):
        await backend.set_tuning_config(TuningConfig.mode("turbo"))
    with pytest.raises(ValueError, match="at most 3"):
        await backend.set_pools_config([PoolGroup(name="default", pools=new[0].pools * 2)])
    assert sim.total_requests == before  # refused before anything was sent

    assert await backend.restart() is True
    await asyncio.sleep(sim.restart_seconds + 0.4)
    up = await backend.get_data([DataField.UPTIME])
    assert up.uptime is not None and up.uptime.total_seconds() <= 3


def test_capabilities() -> None:
    supported = {"restart", "pause", "resume", "set_fault_light", "get_pools_config", "set_pools_config",
                 "get_fan_config", "set_fan_config", "get_tuning_config", "set_tuning_config"}
    assert set(Elphapex.implemented()) == supported


async def test_mixed_scan_with_stock_antminer_and_blackminer() -> None:
    plan: list[tuple[type[SimMiner], str, str]] = [
        (ElphapexSim, "Elphapex", "DG1+"), (AntminerStockSim, "AntMiner", "Antminer S19 Pro"),
        (HammerSim, "Hammer", "Hammer D10"), (ElphapexSim, "Elphapex", "DG-Home1")]
    miners = []
    for i, (kind, make, name) in enumerate(plan):
        model = lookup_model(make, name)
        assert model is not None
        miners.append(kind.build(lo(f"127.200.250.{20 + i}"), model, random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.200.250.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
        assert {type(found[ip].backend) for ip in found} == {Elphapex, AntminerStock, Hammer}
        assert VolcMiner not in {type(found[ip].backend) for ip in found}


# ===== pyasic and pyasic-rs against the simulator =======================================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


def _ths(value: float, unit: str) -> float:
    scale = {"H": 1e-12, "KH": 1e-9, "MH": 1e-6, "GH": 1e-3, "TH": 1.0, "PH": 1e3}
    return value * scale[unit.upper().removesuffix("/S").strip()]


@pytest.mark.interop
async def test_pyasic_reads_every_model(elphapex: Start) -> None:
    """pyasic: `GET /` answers 401 with realm "Daoge" -> Elphapex; the model from `get_system_info` minertype;
    hash rate the sum of `stats` chain `rate_real` (it declares no hash rate source of its own). Its uptime and
    expected hash rate look in `SUMMARY[1]` / `STATS[1]`, which the firmware does not send: both stay None."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await elphapex(ElphapexSim.models)
    _real_ports(fleet)
    for ip, sim in fleet.miners.items():
        miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.make, data.firmware) == ("Elphapex", "Stock")
        # pyasic's web multicommand keeps only replies with a STATUS object; `get_system_info` has none on the
        # real firmware, so its firmware version and hostname stay None (the MAC comes from get_network_info)
        assert data.mac.upper() == inventory["mac"] and data.fw_ver is None
        if sim.model_name == "DG-Home1":
            # pyasic's model table spells it "DG1-Home", the firmware "DG-Home1": an ElphapexUnknown without a
            # board count, so no boards and no hash rate (the same on the real miner)
            assert not data.model and data.hashrate is None
            continue
        assert lookup_model("Elphapex", str(data.model)) == sim.state.model
        assert data.hashrate is not None
        assert _ths(float(data.hashrate.rate), str(data.hashrate.unit)) == pytest.approx(inventory["hashrate_ths"],
                                                                                          rel=0.01)


@pytest.mark.interop
async def test_pyasic_rs_reads_every_model(elphapex: Start) -> None:
    """pyasic-rs: realm "Daoge" on `GET /` -> Elphapex Stock; model from minertype, version from the filesystem
    string; get_data reads get_system_info, stats, summary, pools, get_blink_status, get_miner_conf, get_power."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await elphapex(ElphapexSim.models)
    _real_ports(fleet)
    factory = RsFactory()
    for ip, sim in fleet.miners.items():
        miner = await factory.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert data.device_info.make.lower() == "elphapex"
        assert data.device_info.firmware == "Elphapex Stock"
        assert lookup_model("Elphapex", str(data.device_info.model)) == sim.state.model
        assert data.hashrate is not None
        assert _ths(data.hashrate.value, str(data.hashrate.unit)) == pytest.approx(inventory["hashrate_ths"],
                                                                                   rel=0.01)
        assert data.serial_number == sim.state.serial and data.wattage == round(sim.state.wattage)


@pytest.mark.interop
async def test_interop_controls_change_the_simulator(elphapex: Start) -> None:
    import pyasic
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await elphapex()
    _real_ports(fleet)
    ip, sim = only(fleet)
    miner = await pyasic.get_miner(ip)
    assert await miner.fault_light_on() is True and sim.state.fault_light is True
    assert await miner.fault_light_off() is False and sim.state.fault_light is False
    rs_miner = await RsFactory().get_miner(ip)
    assert await rs_miner.set_fault_light(True) and sim.state.fault_light is True
    # asic-rs writes `pool0url`, `pool0user`, `pool0pw` keys into the configuration it read
    from pyasic_rs import Pool as RsPool
    from pyasic_rs import PoolGroup as RsPoolGroup

    group = RsPoolGroup(name="default", quota=1, pools=[RsPool(url="stratum+tcp://ltc.example.net:3333",
                                                                username="w.7", password="x")])
    assert await rs_miner.set_pools_config([group]) is True
    assert [(p.url, p.username) for p in sim.state.pools[0].pools] == [("stratum+tcp://ltc.example.net:3333", "w.7")]
    assert await rs_miner.restart() and sim.state.uptime == 0  # rebooting
