"""blackMiner firmware (Hammer D10 `hammer`, VolcMiner D1 `volcminer`): parsers on a published Hammer capture, both
makes against the simulator over loopback, told apart from each other and from stock Antminer, a mixed scan, and
pyasic / pyasic-rs against the simulator (`interop`).

Addresses: 127.201.0.0/16 only. Replies: tests/fixtures/blackminer (see the README there).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from asicfleet import MinerFactory
from asicfleet._session import Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.blackminer import BlackMiner, Hammer, VolcMiner, make_of
from asicfleet.backends.elphapex import Elphapex
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.discovery._identify import identify
from asicfleet.hardware import Make, lookup_model
from asicfleet.sim import SimFleet, SimMiner
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.blackminer import BlackMinerSim, HammerSim, VolcMinerSim
from asicfleet.sim.elphapex import ElphapexSim
from asicfleet.transport import HttpReply, PortMap, TransportSettings
from tests.conftest import lo

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "blackminer"
_block = itertools.count(1)
SIMS: dict[str, type[BlackMinerSim]] = {"hammer": HammerSim, "volcminer": VolcMinerSim}


def raw(name: str) -> bytes:
    return (FIXTURES / f"hammer_d10_{name}.json").read_bytes()


# ===== parsers on the published Hammer D10 capture ======================================================
def test_hammer_d10_capture() -> None:
    backend = Hammer(lo("127.201.0.1"), Hammer.device_info("Hammer", "Hammer D10", "Stock"), Session())
    data = backend.parse_raw({"web:get_system_info": raw("web_get_system_info"), "rpc:version": raw("rpc_version"),
                              "rpc:stats": raw("rpc_stats"), "rpc:summary": raw("rpc_summary"),
                              "rpc:pools": raw("rpc_pools"), "web:get_miner_conf": raw("web_get_conf")})
    assert data.errors == []
    assert (data.mac, data.hostname, data.api_version) == ("12:34:56:78:90:12", "Hammer", "3.1")
    assert data.firmware_version == "2022-11-11 13-46-30 CST"
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(4885.0813e-6)  # MHS 5s
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(0.005)  # catalogue
    assert data.uptime == timedelta(seconds=119134)
    assert [f.rpm for f in data.fans] == [4650, 4500, 3870, 3930]
    boards = data.hashboards
    assert [b.working_chips for b in boards] == [108, 108, 108] and [b.expected_chips for b in boards] == [108] * 3
    assert [b.hashrate.value for b in boards if b.hashrate] == pytest.approx([1578.2742e-6, 1594.3646e-6,
                                                                              1513.8498e-6])
    assert [b.board_temperature for b in boards] == [45, 42, 40]  # the last `tempN` of each board
    assert [p.url for p in data.pools[0].pools][:1] == ["stratum+tcp://stratum.pool.io:3333"]
    assert data.is_mining is True and data.tuning_target is not None


def test_makes_from_model_strings() -> None:
    assert make_of("Hammer D10") is Make.HAMMER and make_of("HAMMER D10+") is Make.HAMMER
    assert make_of("VolcMiner D1") is Make.VOLCMINER and make_of("VOLCMINER D1") is Make.VOLCMINER
    assert make_of("blackMiner F1") is None
    assert lookup_model("VolcMiner", "VOLCMINER D1") == lookup_model("VolcMiner", "VolcMiner D1")


def test_matches_only_its_realm() -> None:
    ip = lo("127.201.0.1")

    def probe(realm: str, status: int = 401) -> Probe:
        return Probe(ip=ip, web=HttpReply(status, {"www-authenticate": f'Digest realm="{realm}", qop="auth"'}, b""))

    for cls in (Hammer, VolcMiner):
        assert cls.matches(probe("blackMiner Configuration"))
        assert not cls.matches(probe("blackMiner Configuration", 200))
        assert not cls.matches(probe("antMiner Configuration")) and not cls.matches(probe("Daoge Miner"))
        assert not cls.matches(Probe(ip=ip))
        assert BACKENDS.index(cls) < BACKENDS.index(AntminerStock)
    assert not AntminerStock.matches(probe("blackMiner Configuration"))
    assert backend_for("hammer") is Hammer and backend_for("volcminer") is VolcMiner
    assert BlackMiner not in BACKENDS  # the shared base has no family of its own


# ===== against the simulator ==========================================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
async def blackminers() -> AsyncIterator[Start]:
    """`fleet, session = await blackminers(("hammer", "volcminer"))`: one simulated miner per family."""
    opened: list[tuple[SimFleet, Session]] = []

    async def start(families: tuple[str, ...] = ("hammer",)) -> tuple[SimFleet, Session]:
        block = next(_block)
        miners: list[SimMiner] = []
        for i, family in enumerate(families):
            kind = SIMS[family]
            model = lookup_model(kind.make, kind.models[0])
            assert model is not None
            miner = kind.build(lo(f"127.201.{block}.{10 + i}"), model, random.Random(i))
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


async def _backend(session: Session, ip: str) -> BlackMiner:
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None, found.error
    assert isinstance(found.miner.backend, BlackMiner)
    return found.miner.backend


async def test_identify_and_read_both_makes(blackminers: Start) -> None:
    fleet, session = await blackminers(("hammer", "volcminer"))
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, BlackMinerSim)
        sim.requests.clear()
        backend = await _backend(session, ip)
        assert type(backend) is backend_for(sim.family)
        info, state = backend.device, sim.state
        assert (info.make, info.model, info.firmware) == (sim.make, sim.model_name, "Stock")
        assert backend.firmware_version == sim.filesystem_version
        # the model string is read once, though both classes look at it
        assert sim.requests["auth:GET /cgi-bin/get_system_info.cgi"] == 1
        data = await backend.get_data()
        assert data.errors == []
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=1e-4)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(data.hashrate.value,
                                                                                           rel=1e-4)
        assert data.expected_hashrate is not None and data.expected_hashrate.value == state.model.nominal_ths
        assert (data.mac, data.hostname) == (state.mac, state.hostname)
        assert data.firmware_version == sim.filesystem_version and data.api_version == "3.1"
        assert [f.rpm for f in data.fans] == state.fan_rpms
        assert [b.working_chips for b in data.hashboards] == [state.model.chips_per_board] * state.model.boards
        assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 2
        assert [(p.url, p.user) for p in data.pools[0].pools] == [(p.url, p.username) for p in state.pools[0].pools]
        assert data.is_mining is True and data.light_flashing is False and data.messages == []
        assert not any(k.startswith("4028") for k in sim.requests)  # the RPC is on 8359 only


async def test_volcminer_login_and_an_empty_address(blackminers: Start) -> None:
    """A VolcMiner refuses Hammer's root/root: identification (which logs in before the make is known) tries
    it first and then ltc@dog; reads afterwards go straight to ltc@dog."""
    fleet, session = await blackminers(("volcminer",))
    ip, sim = next(iter(fleet.miners.items()))
    assert sim.state.password == "ltc@dog"
    backend = await _backend(session, ip)
    assert isinstance(backend, VolcMiner)
    sim.requests.clear()
    await backend.get_data([DataField.MAC])
    assert sim.requests["auth:GET /cgi-bin/get_system_info.cgi"] == 1
    empty = await identify(lo("127.201.99.1"), session, timeout=5)
    assert empty.miner is None and empty.absent == "refused"


@pytest.mark.parametrize("family", ["hammer", "volcminer"])
async def test_controls_change_the_simulator(blackminers: Start, family: str) -> None:
    fleet, session = await blackminers((family,))
    ip, sim = next(iter(fleet.miners.items()))
    assert isinstance(sim, BlackMinerSim)
    backend = await _backend(session, ip)
    assert await backend.set_fault_light(True) is True and sim.state.fault_light is True
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False) is True and sim.state.fault_light is False

    assert await backend.pause() is True and sim.state.mining is False
    paused = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE])
    assert paused.is_mining is False and paused.hashrate is not None and paused.hashrate.value == 0
    assert await backend.resume() is True and sim.state.mining is True

    new = [PoolGroup(name="default", pools=[Pool(url="stratum+tcp://ltc.example.net:3333", username="w.1",
                                                 password="p1")])]
    assert await backend.set_pools_config(new) is True
    assert [(p.url, p.username, p.password) for p in sim.state.pools[0].pools] == [
        ("stratum+tcp://ltc.example.net:3333", "w.1", "p1")]
    assert await backend.get_pools_config() == sim.state.pools

    assert await backend.set_fan_config(FanConfig.manual(55)) is True and sim.state.fan == FanConfig.manual(55)
    assert await backend.get_fan_config() == FanConfig.manual(55)
    assert await backend.set_tuning_config(TuningConfig.mode("low")) is True and sim.work_mode == 3
    assert await backend.get_tuning_config() == TuningConfig.mode("low")

    assert await backend.restart() is True
    await asyncio.sleep(sim.restart_seconds + 0.4)
    up = await backend.get_data([DataField.UPTIME])
    assert up.uptime is not None and up.uptime.total_seconds() <= 3


def test_capabilities() -> None:
    supported = {"restart", "pause", "resume", "set_fault_light", "get_pools_config", "set_pools_config",
                 "get_fan_config", "set_fan_config", "get_tuning_config", "set_tuning_config"}
    assert set(Hammer.implemented()) == set(VolcMiner.implemented()) == supported


async def test_mixed_scan_tells_the_makes_apart() -> None:
    plan: list[tuple[type[SimMiner], str, str]] = [
        (HammerSim, "Hammer", "Hammer D10"), (AntminerStockSim, "AntMiner", "Antminer S21"),
        (VolcMinerSim, "VolcMiner", "VolcMiner D1"), (ElphapexSim, "Elphapex", "DG1"),
        (VolcMinerSim, "VolcMiner", "VolcMiner D1")]
    miners = []
    for i, (kind, make, name) in enumerate(plan):
        model = lookup_model(make, name)
        assert model is not None
        miners.append(kind.build(lo(f"127.201.250.{20 + i}"), model, random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.201.250.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
        assert {type(m.backend) for m in found.values()} == {Hammer, AntminerStock, VolcMiner, Elphapex}


# ===== pyasic and pyasic-rs against the simulator =======================================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


def _ths(value: float, unit: str) -> float:
    scale = {"H": 1e-12, "KH": 1e-9, "MH": 1e-6, "GH": 1e-3, "TH": 1.0, "PH": 1e3}
    return value * scale[unit.upper().removesuffix("/S").strip()]


@pytest.fixture
def pyasic_hammer_password() -> Iterator[Callable[[str], None]]:
    """Sets pyasic's `default_hammer_web_password` for one test, and puts it back afterwards."""
    from pyasic import settings  # type: ignore[import-untyped]

    before = settings.get("default_hammer_web_password", "root")
    yield lambda password: settings.update("default_hammer_web_password", password)
    settings.update("default_hammer_web_password", before)


@pytest.mark.interop
async def test_pyasic_reads_hammer(blackminers: Start) -> None:
    """pyasic: realm "blackMiner" -> Hammer; `get_system_info` minertype (root/root) holds "HAMMER" -> HammerD10;
    get_data from the ccminer RPC on 8359 (summary `MHS 5s`) and the CGIs."""
    import pyasic

    fleet, _ = await blackminers(("hammer",))
    _real_ports(fleet)
    ip, sim = next(iter(fleet.miners.items()))
    miner = await pyasic.get_miner(ip)
    assert miner is not None and type(miner).__name__ == "HammerD10"
    data = await miner.get_data()
    assert (data.make, data.firmware) == ("Hammer", "Stock")
    assert lookup_model("Hammer", str(data.model)) == sim.state.model
    assert data.hashrate is not None
    assert _ths(float(data.hashrate.rate), str(data.hashrate.unit)) == pytest.approx(sim.inventory()["hashrate_ths"],
                                                                                      rel=0.01)
    assert data.mac == sim.state.mac and data.fw_ver == sim.compile_time


@pytest.mark.interop
async def test_pyasic_reads_volcminer_given_its_password(blackminers: Start,
                                                         pyasic_hammer_password: Callable[[str], None]) -> None:
    """pyasic asks the model of every blackMiner with `default_hammer_web_password` (root) first: a VolcMiner
    on its own default login (ltc@dog) refuses it, and pyasic settles on an unknown Hammer that reads nothing.
    With that setting at ltc@dog (pyasic's own knob; its web API for both makes uses it) it finds VolcMinerD1."""
    import pyasic

    fleet, _ = await blackminers(("volcminer",))
    _real_ports(fleet)
    ip, sim = next(iter(fleet.miners.items()))
    unknown = await pyasic.get_miner(ip)
    assert unknown is not None and type(unknown).__name__ == "HammerUnknown"
    pyasic_hammer_password("ltc@dog")
    miner = await pyasic.get_miner(ip)
    assert miner is not None and type(miner).__name__ == "VolcMinerD1"
    data = await miner.get_data()
    assert (data.make, data.firmware) == ("VolcMiner", "Stock")
    assert lookup_model("VolcMiner", str(data.model)) == sim.state.model
    assert data.hashrate is not None
    assert _ths(float(data.hashrate.rate), str(data.hashrate.unit)) == pytest.approx(sim.inventory()["hashrate_ths"],
                                                                                      rel=0.01)
    assert data.mac == sim.state.mac


@pytest.mark.interop
async def test_pyasic_rs_reads_volcminer(blackminers: Start) -> None:
    """pyasic-rs: realm "blackMiner Configuration" -> VolcMiner Stock (root/ltc@dog); model from minertype;
    `get_miner_status.cgi` first (our simulator answers 404: no capture of it is published), then the RPC on
    8359: summary `MHS 5s`, stats, pools."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await blackminers(("volcminer",))
    _real_ports(fleet)
    ip, sim = next(iter(fleet.miners.items()))
    miner = await RsFactory().get_miner(ip)
    assert miner is not None
    data = await miner.get_data()
    assert data.device_info.make == "VolcMiner" and data.device_info.firmware == "VolcMiner Stock"
    assert lookup_model("VolcMiner", str(data.device_info.model)) == sim.state.model
    assert data.hashrate is not None
    assert _ths(data.hashrate.value, str(data.hashrate.unit)) == pytest.approx(sim.inventory()["hashrate_ths"],
                                                                               rel=0.01)


@pytest.mark.interop
async def test_pyasic_rs_does_not_know_hammer(blackminers: Start) -> None:
    """pyasic-rs has no Hammer make: the shared realm sends a Hammer to its VolcMiner firmware, whose default
    login (root/ltc@dog) a Hammer on root/root refuses, so it reports no miner there."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await blackminers(("hammer",))
    _real_ports(fleet)
    ip, _sim = next(iter(fleet.miners.items()))
    assert await RsFactory().get_miner(ip) is None


@pytest.mark.interop
async def test_interop_controls_change_the_simulator(blackminers: Start) -> None:
    import pyasic

    fleet, _ = await blackminers(("hammer",))
    _real_ports(fleet)
    ip, sim = next(iter(fleet.miners.items()))
    miner = await pyasic.get_miner(ip)
    assert await miner.fault_light_on() is True and sim.state.fault_light is True
    assert await miner.fault_light_off() is False and sim.state.fault_light is False
    assert await miner.reboot() is True and sim.state.uptime == 0


@pytest.mark.interop
async def test_pyasic_rs_writes_volcminer_pools(blackminers: Start) -> None:
    """pyasic-rs posts the VolcMiner web form (`_bb_pool1url`...) to set_miner_conf and reads the pools back."""
    from pyasic_rs import MinerFactory as RsFactory
    from pyasic_rs import Pool as RsPool
    from pyasic_rs import PoolGroup as RsPoolGroup

    fleet, _ = await blackminers(("volcminer",))
    _real_ports(fleet)
    ip, sim = next(iter(fleet.miners.items()))
    miner = await RsFactory().get_miner(ip)
    assert miner is not None and miner.supports_pools_config
    group = RsPoolGroup(name="default", quota=1, pools=[RsPool(url="stratum+tcp://ltc.example.net:3333",
                                                                username="w.9", password="x")])
    assert await miner.set_pools_config([group]) is True
    assert [(p.url, p.username) for p in sim.state.pools[0].pools] == [("stratum+tcp://ltc.example.net:3333", "w.9")]
