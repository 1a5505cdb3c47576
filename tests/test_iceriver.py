"""IceRiver stock firmware (KS kHeavyHash, AL Blake3): parsers on published replies, the backend against the
simulator over loopback (its login by client address included), identification, a mixed scan, and the
simulator against pyasic (marker `interop`).

Addresses: 127.205.0.0/16 only. Replies: tests/fixtures/iceriver (restated from published ones, see the README).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from asicfleet import MinerFactory
from asicfleet._errors import AuthenticationError, UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.iceriver import IceRiver, model_from_panel, parse_rate
from asicfleet.config import Pool, PoolGroup
from asicfleet.data import HashAlgorithm, MessageSeverity
from asicfleet.discovery._identify import identify
from asicfleet.hardware import SimulableModel, lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.iceriver import LOGIN_PAGE, IceRiverSim
from asicfleet.transport import HttpReply, PortMap, TransportSettings
from tests.conftest import identified_backend, lo, only_miner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "iceriver"
_block = itertools.count(1)


def reply(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"userpanel_{name}.json").read_text())
    return loaded


def fixture_backend(model: str = "IceRiver KS5L") -> IceRiver:
    return IceRiver(lo("127.205.0.1"), IceRiver.device_info("IceRiver", model, "Stock"), Session())


# ===== parsers on the published replies =================================================================
def test_ks5l_reply() -> None:
    data = fixture_backend().extract({"web:userpanel": reply("ks5l")})
    assert data.errors == []
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(15.011)  # 15011G
    assert data.hashrate.unit.value == "TH/s" and data.hashrate.algo is HashAlgorithm.KHEAVYHASH
    assert data.expected_hashrate is not None and data.expected_hashrate.algo is HashAlgorithm.KHEAVYHASH
    assert data.expected_hashrate.value == 12  # the catalogue's nominal figure: the boards' idealpow is 0.00G
    assert (data.mac, data.hostname) == ("52:8C:03:36:EC:E7", "XJGXG_SSYYGB")
    assert data.firmware_version == "ICM168_3_2_10_ks5L_miner"
    assert data.uptime == timedelta(days=1, hours=4, minutes=29, seconds=2)
    assert [f.rpm for f in data.fans] == [5900, 5900, 5900, 5855]
    boards = data.hashboards
    assert [b.hashrate.value for b in boards if b.hashrate] == pytest.approx([5.16037, 5.6295, 4.22212])
    assert [(b.board_temperature, b.outlet_temperature) for b in boards] == [(61, 63), (57, 61), (62, 67)]
    assert [b.working_chips for b in boards] == [18] * 3 and [b.expected_chips for b in boards] == [18] * 3
    assert [b.frequency for b in boards] == [875] * 3 and all(b.active for b in boards)
    pools = data.pools[0].pools
    assert [(p.position, p.active, p.alive, p.accepted_shares) for p in pools] == [
        (0, True, True, 7225), (1, False, False, 0), (2, False, False, 0)]  # connect 1 / -1
    assert data.is_mining is True and data.light_flashing is False
    assert [(m.message, m.severity) for m in data.messages] == [("temperature out of range",
                                                                 MessageSeverity.WARNING)]  # tempstate false
    assert data.wattage is None and data.serial_number is None  # the firmware reports neither


def test_ks3m_reply_with_booleans() -> None:
    data = fixture_backend("IceRiver KS3M").extract({"web:userpanel": reply("ks3m")})
    assert data.errors == [] and data.messages == []
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(6.226)
    assert [p.active for p in data.pools[0].pools] == [False, True, False]
    assert [b.outlet_temperature for b in data.hashboards] == [49, 126, 49]


def test_model_from_panel() -> None:
    assert model_from_panel(reply("ks5l")["data"]) == "IceRiver KS5L"
    assert model_from_panel(reply("ks3m")["data"]) == "IceRiver KS3M"
    assert model_from_panel({"model": "none", "softver1": "release_10306_miner"}) == "IceRiver AL3"
    assert model_from_panel({"model": "none", "softver1": "x_11304_miner"}) == "IceRiver KS7"
    assert model_from_panel({"model": "none", "softver1": "release_KS5miner"}) == "KS5"  # not catalogued: raw
    assert model_from_panel({"model": "KS0 Ultra", "softver1": "x_ks0ultra_miner"}) == "IceRiver KS0 Ultra"
    assert model_from_panel({"model": "none", "softver1": "miner"}) is None
    assert model_from_panel({}) is None


def test_rate_units() -> None:
    rate = parse_rate("5160.37G")
    assert rate is not None and rate.value == pytest.approx(5.16037)
    rate = parse_rate(250, "M")
    assert rate is not None and rate.value == pytest.approx(0.00025)
    assert parse_rate("") is None
    with pytest.raises(ValueError):
        parse_rate("12X")  # not a rate
    with pytest.raises(ValueError, match="unit"):
        parse_rate(12, "Q")


def test_an_error_reply_is_an_error() -> None:
    data = fixture_backend().extract({"web:userpanel": {"error": 1, "message": "please log in"}})
    assert data.hashrate is None


# ===== identification signals =========================================================================
def test_matches_the_page_title_only() -> None:
    page = HttpReply(200, {"content-type": "text/html"}, LOGIN_PAGE.encode())
    assert IceRiver.matches(Probe(ip=lo("127.205.0.1"), web=page))
    other = HttpReply(200, {}, b"<html><title>Antminer AL3</title></html>")
    assert not IceRiver.matches(Probe(ip=lo("127.205.0.1"), web=other))
    assert not IceRiver.matches(Probe(ip=lo("127.205.0.1")))
    assert not AntminerStock.matches(Probe(ip=lo("127.205.0.1"), web=page))
    assert backend_for("iceriver") is IceRiver and IceRiver in BACKENDS


# ===== against the simulator over loopback ==============================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
async def icerivers() -> AsyncIterator[Start]:
    opened: list[tuple[SimFleet, Session]] = []

    async def start(models: tuple[str, ...] = ("IceRiver KS5L",)) -> tuple[SimFleet, Session]:
        block = next(_block)
        miners = []
        for i, name in enumerate(models):
            known = lookup_model("IceRiver", name)
            assert known is not None
            miner = IceRiverSim.build(lo(f"127.205.{block}.{10 + i}"), SimulableModel.of(known), random.Random(i))
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


def only(fleet: SimFleet) -> tuple[str, IceRiverSim]:
    return only_miner(fleet, IceRiverSim)


async def _backend(session: Session, ip: str) -> IceRiver:
    return await identified_backend(session, ip, IceRiver)


async def test_identify_and_read_every_simulated_model(icerivers: Start) -> None:
    fleet, session = await icerivers(IceRiverSim.models)
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, IceRiverSim)
        backend = await _backend(session, ip)
        state = sim.state
        assert (backend.device.make, backend.device.model, backend.device.firmware) == (
            "IceRiver", state.model.name, "Stock")
        assert backend.device.algo is state.model.algo
        data = await backend.get_data()
        assert data.errors == []
        assert data.hashrate is not None and data.hashrate.algo is state.model.algo
        assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(data.hashrate.value,
                                                                                           rel=0.01)
        assert [b.working_chips for b in data.hashboards] == [state.model.chips_per_board] * state.model.boards
        assert [b.board_temperature for b in data.hashboards] == [round(t) for t in state.board_temps]
        assert [f.rpm for f in data.fans] == state.fan_rpms
        assert (data.mac, data.hostname) == (state.mac, state.hostname)
        assert data.firmware_version == sim.build_name
        assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 2
        assert [(p.url, p.user) for p in data.pools[0].pools] == [(p.url, p.username) for p in state.pools[0].pools]
        assert data.is_mining is True and data.light_flashing is False and data.messages == []
    assert IceRiverSim.models[2] == "IceRiver AL3" and state.model.algo is HashAlgorithm.BLAKE3


async def test_login_is_per_client_address_and_a_reboot_forgets_it(icerivers: Start) -> None:
    fleet, session = await icerivers()
    ip, sim = only(fleet)
    url = f"http://{ip}:{(fleet.ports or PortMap())(80)}"
    async with httpx.AsyncClient() as client:
        refused = (await client.post(f"{url}/user/userpanel", data={"post": 4})).json()
        assert refused["error"] == 1
        wrong = (await client.post(f"{url}/user/loginpost", data={"post": 6, "user": "admin", "pwd": "no"})).json()
        assert wrong["error"] == 1
        ok = (await client.post(f"{url}/user/loginpost", params={"post": 6, "user": "admin", "pwd": "12345678"}))
        assert ok.json() == {"error": 0, "message": "", "data": {}} and "set-cookie" not in ok.headers
    async with httpx.AsyncClient() as fresh:  # another connection, no cookie: the address is logged in
        panel = (await fresh.post(f"{url}/user/userpanel", data={"post": 4})).json()
        assert panel["error"] == 0 and panel["data"]["softver1"] == sim.build_name
    backend = await _backend(session, ip)
    sim.requests.clear()
    await backend.get_data()
    assert sim.requests["user:loginpost:6"] == 1 and sim.requests["user:userpanel:4"] == 1
    sim.state.extra["sessions"].clear()  # as after a reboot: the next read logs in again by itself
    sim.requests.clear()
    assert (await backend.get_data([DataField.HASHRATE])).errors == []
    assert sim.requests["user:loginpost:6"] == 1 and sim.requests["user:userpanel:4"] == 2


async def test_controls_change_the_simulator(icerivers: Start) -> None:
    fleet, session = await icerivers(("IceRiver KS3M",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.set_fault_light(True) is True and sim.state.fault_light is True
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False) is True and sim.state.fault_light is False

    assert await backend.pause() is True and sim.state.mining is False
    paused = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE])
    assert paused.is_mining is False and paused.hashrate is not None and paused.hashrate.value == 0
    assert await backend.resume() is True and sim.state.mining is True
    assert sim.state.extra["fan_ratio"] == 100  # carried along unchanged

    new = [PoolGroup(pools=[Pool(url="stratum+tcp://kas.example.net:4444", username="kaspa:w.1", password="p1"),
                            Pool(url="stratum+ssl://kas2.example.net:443", username="kaspa:w.2")])]
    assert await backend.set_pools_config(new) is True
    assert sim.state.pools == new and sim.state.mining is True
    assert await backend.get_pools_config() == new  # machineconfig carries the passwords
    with pytest.raises(ValueError, match="one pool group"):
        await backend.set_pools_config(new * 2)

    assert await backend.change_password("n3w-secret") is True and sim.state.password == "n3w-secret"
    sim.state.extra["sessions"].clear()
    assert (await backend.get_data([DataField.HASHRATE])).errors == []  # logs in with the new password

    assert await backend.restart() is True
    await asyncio.sleep(0.1)
    assert (await backend.get_data([DataField.UPTIME])).errors
    await asyncio.sleep(sim.restart_seconds + 0.4)
    up = await backend.get_data([DataField.UPTIME])
    assert up.uptime is not None and up.uptime.total_seconds() <= 3


def test_supported_controls() -> None:
    for control in ("restart", "pause", "resume", "set_fault_light", "get_pools_config", "set_pools_config",
                    "change_password"):
        assert IceRiver.supports(control), control
    for control in ("set_power_limit", "set_fan_config", "get_tuning_config", "upgrade_firmware", "read_logs"):
        assert not IceRiver.supports(control), control


async def test_unsupported_control_raises(icerivers: Start) -> None:
    fleet, session = await icerivers()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    sim.requests.clear()
    with pytest.raises(UnsupportedControlError):
        await backend.set_power_limit(3000)
    assert sim.total_requests == 0


async def test_capability_table(icerivers: Start, tmp_path: Path) -> None:
    """The handle's supports_* table (no control depends on the firmware version here); every control it
    denies is refused before anything is sent (the ones it grants are exercised above)."""
    from tests.capabilities import PROPERTIES, refused_without_sending

    fleet, session = await icerivers()
    ip, sim = only(fleet)
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None
    miner = found.miner
    table = {prop for prop in PROPERTIES if getattr(miner, f"supports_{prop}")}
    assert table == {"pools_config", "set_fault_light", "pause", "resume", "change_password", "restart"}
    for prop in sorted(set(PROPERTIES) - table):
        for control in refused_without_sending(miner, sim, prop, tmp_path):
            before = sim.total_requests
            with pytest.raises(UnsupportedControlError):
                await control()
            assert sim.total_requests == before, prop


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_fault_modes_yield_errors(icerivers: Start, fault: Fault) -> None:
    fleet, session = await icerivers()
    ip, _ = only(fleet)
    device = (await _backend(session, ip)).device
    fleet.set_fault(ip, fault)
    # a fresh session: faults that act on a connection do not touch the one identification kept alive
    fresh = Session(settings=session.settings)
    try:
        backend = IceRiver(ip, device, fresh)
        data = await asyncio.wait_for(backend.get_data(), 10)
        assert data.errors and data.hashrate is None
        if fault is Fault.AUTH_FAILURE:
            with pytest.raises(AuthenticationError):
                await backend.set_fault_light(True)
    finally:
        await fresh.aclose()


async def test_an_empty_address_costs_one_connection_attempt(icerivers: Start) -> None:
    _fleet, session = await icerivers()
    found = await identify(lo("127.205.254.254"), session, timeout=2)
    assert found.miner is None and found.absent == "refused"


async def test_mixed_scan_with_antminers() -> None:
    miners = []
    for i, (kind, make, name) in enumerate([(IceRiverSim, "IceRiver", "IceRiver KS5L"),
                                            (AntminerStockSim, "AntMiner", "Antminer S19j Pro"),
                                            (IceRiverSim, "IceRiver", "IceRiver AL3"),
                                            (AntminerStockSim, "AntMiner", "Antminer KS3")]):
        known = lookup_model(make, name)
        assert known is not None
        try:
            model = SimulableModel.of(known)
        except ValueError:
            continue  # a catalogued model without a full shape cannot be simulated
        miners.append(kind.build(lo(f"127.205.250.{20 + i}"), model, random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.205.250.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)


# ===== the independent clients against the simulator ===============================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic only speaks to the standard ports; needs root to bind port 80")


@pytest.mark.interop
async def test_pyasic_reads_every_model(icerivers: Start) -> None:
    """pyasic: `GET /` titled 用户界面 identifies; it logs in (`loginpost`, query parameters) and reads the model
    from `userpanel` `softver1` (AL3 by its board code 10306); rates in its own unit per algorithm (TH/s for
    kHeavyHash, MH/s for Blake3, which it calls BlockFlow)."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await icerivers(IceRiverSim.models)
    _real_ports(fleet)
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, IceRiverSim)
        miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.make, data.firmware) == (inventory["make"], inventory["firmware"])
        known = lookup_model("IceRiver", str(data.model))
        assert known is not None and known.name == inventory["model"]
        assert data.hashrate is not None
        ths = float(data.hashrate.into(type(data.hashrate.unit).TH))
        assert ths == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.mac == sim.state.mac and data.hostname == sim.state.hostname
        assert [f.speed for f in data.fans] == sim.state.fan_rpms
        assert [b.chips for b in data.hashboards] == [sim.state.model.chips_per_board] * 3
        assert data.fault_light is False and data.is_mining is True


@pytest.mark.interop
async def test_pyasic_controls_change_the_simulator(icerivers: Start) -> None:
    import pyasic

    fleet, _ = await icerivers()
    _real_ports(fleet)
    ip, sim = only(fleet)
    miner = await pyasic.get_miner(ip)
    assert await miner.fault_light_on() is True and sim.state.fault_light is True
    assert await miner.fault_light_off() is True and sim.state.fault_light is False
    config = await miner.get_config()
    # pyasic lists the three slots, the empty one too
    assert [p.url for p in config.pools.groups[0].pools if p.url] == [p.url for p in sim.state.pools[0].pools]


@pytest.mark.interop
async def test_pyasic_rs_does_not_know_iceriver(icerivers: Start) -> None:
    """pyasic-rs 0.8.6 has no IceRiver firmware (asic-rs added one later): it finds no miner here."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await icerivers()
    _real_ports(fleet)
    ip, _ = only(fleet)
    assert await RsFactory().get_miner(ip) is None
