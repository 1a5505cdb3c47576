"""NerdAxe / NerdQAxe (NerdQAxe+ firmware) and LuckyMiner: the parsers on a restated reply, the backend
against the simulator, identification against Bitaxe, and the simulator against pyasic and pyasic-rs.

Live tests run on 127.210.20.0/24: a NerdQAxe++, a NerdQAxe+, a NerdAxe (BM1368), a LuckyMiner LV08 and
an LV07, next to one Bitaxe (BM1370, the same chip as the NerdQAxe++).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from asicfleet._errors import MinerError, UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends import Probe
from asicfleet.backends.bitaxe import INFO, Bitaxe
from asicfleet.backends.nerdaxe import NerdAxe, model_of, nerd_fan_config, which_make
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import HashRate
from asicfleet.hardware import SimulableModel, lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim.bitaxe import BitaxeSim
from asicfleet.sim.nerdaxe import LUCKY_VERSION, NERD_VERSION, NerdAxeSim
from asicfleet.transport import HttpReply, PortMap, TransportSettings
from tests.conftest import lo

SUBNET = lo("127.210.20.0/24")
FIXTURE = Path(__file__).parent / "fixtures" / "nerdaxe" / "system_info_nerdqaxe.json"
MODELS = (("NerdAxe", "BM1370"), ("NerdAxe", "NerdQAxe+"), ("NerdAxe", "BM1368"),
          ("LuckyMiner", "LuckyMiner LV08"), ("LuckyMiner", "LuckyMiner LV07"))


def fixture_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads(FIXTURE.read_bytes())
    return info


def nerdqaxe(session: Session | None = None, ip: str = lo("127.210.0.1")) -> NerdAxe:
    return NerdAxe(ip, NerdAxe.device_info("NerdAxe", "NerdQAxe++", "Stock"), session or Session())


# ----- (a) parsers on the restated reply ---------------------------------------------------------
def test_fixture_every_figure() -> None:
    data = nerdqaxe().parse_raw({INFO: FIXTURE.read_bytes()})
    assert data.errors == []
    assert (data.mac, data.hostname, data.firmware_version) == ("A1:B2:C3:D4:E5:F6", "nerdqaxe", "v1.0.36")
    assert data.hashrate == HashRate(value=4.8505, unit="TH/s")  # hashRate 4850.5 GH/s
    assert data.expected_hashrate is not None  # 2040 small cores x 4 chips x 600 MHz = 4896 GH/s
    assert data.expected_hashrate.value == pytest.approx(4.896)
    assert data.wattage == 76.5 and data.uptime == timedelta(days=1)
    assert [(f.position, f.rpm) for f in data.fans] == [(0, 3820)]  # fanCount 1: fanrpm2 0 is no fan
    assert data.is_mining is True  # shutdown false
    (board,) = data.hashboards
    assert board.working_chips == 4 and board.expected_chips == 4  # the catalogue's NerdQAxe++: 4 chips
    assert board.board_temperature == 52 and board.intake_temperature == 61.25 and board.frequency == 600
    primary, fallback = data.pools[0].pools
    assert (primary.url, primary.user, primary.active, primary.accepted_shares) == (
        "stratum+tcp://public-pool.io:21496", "bc1qexample.nerd", True, 1520)
    assert (fallback.url, fallback.active) == ("stratum+tcp://solo.ckpool.org:3333", False)
    assert nerd_fan_config(fixture_info()) == FanConfig.auto(target_temp=55)  # autofanspeed 2: PID


def test_shutdown_and_second_fan() -> None:
    info = {**fixture_info(), "shutdown": True, "hashRate": 0, "fanCount": 2, "fanrpm2": 3790}
    data = nerdqaxe().extract({INFO: info})
    assert data.is_mining is False and [f.rpm for f in data.fans] == [3820, 3790]
    assert nerd_fan_config({**info, "autofanspeed": 0, "manualFanSpeed": 70}) == FanConfig.manual(70)


def test_make_and_model_from_system_info() -> None:
    info = fixture_info()
    assert which_make(info, "<title>Nerd*axe Dashboard</title>") == "NerdAxe"
    assert model_of(info, "NerdAxe") == "NerdQAxe++"
    assert lookup_model("NerdAxe", "NerdQAxe++") is not None  # an alias in the catalogue
    lucky = {"ASICModel": "BM1366", "minerModel": "LV08", "version": "v2.4.5"}
    assert which_make(lucky, "<title>Lucky miner</title>") == "LuckyMiner" and model_of(lucky, "LuckyMiner") == "LV08"
    bitaxe = {"ASICModel": "BM1370", "boardVersion": "601", "version": "v2.4.5"}
    assert which_make(bitaxe, "<title>AxeOS</title>") is None  # left to the Bitaxe backend


def test_matches_only_the_relatives_pages() -> None:
    def probe(page: bytes) -> Probe:
        return Probe(ip=lo("127.210.0.1"), web=HttpReply(200, {}, page))

    assert NerdAxe.matches(probe(b"<title>Nerd*axe Dashboard</title>"))
    assert NerdAxe.matches(probe(b"<title>Lucky miner</title>"))
    assert not NerdAxe.matches(probe(b"<title>AxeOS</title>"))
    assert not NerdAxe.matches(Probe(ip=lo("127.210.0.1")))
    assert NerdAxe.PRIORITY < Bitaxe.PRIORITY


# ----- the simulated fleet -----------------------------------------------------------------------
def build(make: str, name: str, index: int) -> NerdAxeSim | BitaxeSim:
    model = lookup_model(make, name)
    assert model is not None
    ip = str(SUBNET.rsplit(".", 2)[0]) + f".20.{10 + index}"
    kind = BitaxeSim if make == "Bitaxe" else NerdAxeSim
    miner = kind.build(ip, SimulableModel.of(model), random.Random(index))
    miner.restart_seconds = 0.3
    return miner  # type: ignore[return-value]


@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    miners = [build(make, name, i) for i, (make, name) in enumerate((*MODELS, ("Bitaxe", "BM1370")))]
    started = SimFleet(miners)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def session(fleet: SimFleet) -> AsyncIterator[Session]:
    made = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), read_timeout=2.0))
    yield made
    await made.aclose()


def relatives(fleet: SimFleet, make: str | None = None) -> list[NerdAxeSim]:
    return [m for m in fleet.miners.values() if isinstance(m, NerdAxeSim)
            and (make is None or m.state.model.make == make)]


def backend(sim: NerdAxeSim, session: Session) -> NerdAxe:
    return NerdAxe(sim.state.ip, NerdAxe.device_info(sim.state.model.make, sim.device_model, "Stock"), session)


async def test_discovery_tells_the_relatives_from_a_bitaxe(fleet: SimFleet, session: Session) -> None:
    from asicfleet.discovery import identify

    for sim in fleet.miners.values():
        found = await identify(sim.state.ip, session, timeout=3.0)
        assert found.error is None and found.miner is not None, found
        if isinstance(sim, NerdAxeSim):
            assert isinstance(found.miner.backend, NerdAxe)
            assert (found.miner.make, found.miner.model) == (sim.state.model.make.value, sim.device_model)
            assert found.miner.backend.device.hardware == lookup_model(
                sim.state.model.make, sim.device_model).hardware  # type: ignore[union-attr]
        else:
            assert type(found.miner.backend) is Bitaxe and found.miner.model == "BM1370"


async def test_empty_address_costs_one_connection(session: Session) -> None:
    from asicfleet.discovery import identify

    found = await identify(lo("127.210.21.7"), session, timeout=2.0)
    assert found.miner is None and found.absent == "refused"


async def test_get_data_equals_state_in_one_request(fleet: SimFleet, session: Session) -> None:
    for sim in relatives(fleet):
        sim.requests.clear()
        data = await backend(sim, session).get_data()
        assert dict(sim.requests) == {"80:GET /api/system/info": 1}
        s, inventory = sim.state, sim.inventory()
        assert data.errors == []
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=1e-6)
        assert data.wattage == pytest.approx(s.wattage, rel=1e-6)
        assert (data.mac, data.hostname, data.firmware_version) == (s.mac, s.hostname, s.firmware_version)
        assert [f.rpm for f in data.fans] == s.fan_rpms[:1]
        assert data.hashboards[0].working_chips == s.model.chips_per_board
        assert [p.url for p in data.pools[0].pools] == [p.url for p in s.pools[0].pools]
        assert data.is_mining is True


async def test_restart(fleet: SimFleet, session: Session) -> None:
    for sim in (relatives(fleet, "NerdAxe")[0], relatives(fleet, "LuckyMiner")[0]):
        miner = backend(sim, session)
        assert await miner.restart() is True
        deadline = time.monotonic() + 10
        while True:
            try:
                data = await miner.get_data()
                if data.uptime is not None:
                    break
            except MinerError:
                pass
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert data.uptime < timedelta(seconds=10)


async def test_nerd_pools_fan_tuning_round_trip(fleet: SimFleet, session: Session) -> None:
    sim = relatives(fleet, "NerdAxe")[0]
    miner = backend(sim, session)
    pools = [PoolGroup(name="default", quota=1, pools=[
        Pool(url="stratum+tcp://new.example.org:4444", username="me.nerd", password="p1"),
        Pool(url="stratum+tcp://spare.example.org:3333", username="me.spare", password="p2")])]
    assert await miner.set_pools_config(pools) is True
    assert (sim.nvs["stratumURL"], sim.nvs["stratumPort"], sim.nvs["stratumPassword"]) == (
        "new.example.org", 4444, "p1")
    assert [p.url for p in sim.state.pools[0].pools] == [p.url for p in pools[0].pools]
    assert [p.url for p in (await miner.get_pools_config())[0].pools] == [p.url for p in pools[0].pools]

    assert await miner.set_fan_config(FanConfig.manual(65)) is True
    assert (sim.nvs["autofanspeed"], sim.nvs["manualFanSpeed"]) == (0, 65) and sim.state.fan == FanConfig.manual(65)
    assert await miner.get_fan_config() == FanConfig.manual(65)
    assert await miner.set_fan_config(FanConfig.auto(target_temp=58)) is True
    assert sim.state.fan == FanConfig.auto(target_temp=58) == await miner.get_fan_config()
    with pytest.raises(UnsupportedControlError):
        await miner.set_fan_config(FanConfig.auto(idle_speed=30))

    asic = sim.asic
    target = HashRate(value=asic.small_cores * asic.asic_count * 500 / 1e6, unit="TH/s")  # 500 MHz
    assert await miner.set_tuning_config(TuningConfig.hashrate(target)) is True
    assert sim.nvs["frequency"] == 500
    assert sim.state.hashrate_ths == pytest.approx(target.value * sim.state.extra["hashrate_yield"], rel=1e-6)
    tuned = await miner.get_tuning_config()
    assert tuned.target_hashrate is not None and tuned.target_hashrate.value == pytest.approx(target.value)


async def test_lucky_behaves_as_its_axeos_generation(fleet: SimFleet, session: Session) -> None:
    sim = relatives(fleet, "LuckyMiner")[0]
    assert sim.state.firmware_version == LUCKY_VERSION
    miner = backend(sim, session)
    assert await miner.set_fan_config(FanConfig.manual(80)) is True
    assert sim.nvs["manualFanSpeed"] == 80 and sim.state.fan == FanConfig.manual(80)
    assert await miner.set_pools_config([PoolGroup(name="default", quota=1, pools=[
        Pool(url="stratum+tcp://lucky.example.org:3333", username="me.lucky", password="x")])]) is True
    assert sim.nvs["stratumURL"] == "lucky.example.org" and sim.nvs["fallbackStratumURL"] == ""


async def test_controls_the_firmware_lacks(fleet: SimFleet, session: Session) -> None:
    from asicfleet.discovery import identify

    sim = relatives(fleet, "NerdAxe")[0]
    assert sim.state.firmware_version == NERD_VERSION
    found = await identify(sim.state.ip, session, timeout=3.0)
    assert found.miner is not None
    handle = found.miner.backend
    for control in ("pause", "resume", "set_fault_light", "read_logs"):
        assert not handle.can(control)
    assert handle.can("restart") and handle.can("set_pools_config") and handle.can("set_fan_config")
    with pytest.raises(UnsupportedControlError):
        await handle.pause()  # the firmware answers 405: there is no such endpoint
    for control in ("set_power_limit", "change_password", "factory_reset"):
        assert not NerdAxe.supports(control)
    # the firmware's PATCH ignores a fractional frequency (is<uint16_t>) rather than refusing it
    before = sim.nvs["frequency"]
    assert (await session.http.request("PATCH", sim.state.ip, "/api/system", json={"frequency": 512.5})).status == 200
    assert sim.nvs["frequency"] == before


@pytest.mark.parametrize("fault", [Fault.HUNG, Fault.MALFORMED, Fault.AUTH_FAILURE, Fault.RESET])
async def test_faults_yield_errors(fleet: SimFleet, fault: Fault) -> None:
    quick = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), read_timeout=1.0, connect_timeout=1.0))
    try:
        sim = relatives(fleet, "NerdAxe")[0]
        sim.fault = fault
        data = await backend(sim, quick).get_data()
        assert data.errors and data.hashrate is None, data.errors
    finally:
        await quick.aclose()


async def test_mixed_scan(sim_fleet: Any) -> None:
    from asicfleet import MinerFactory

    mixed = await sim_fleet(lo("127.210.22.0/24"), 8, ["nerdaxe", "bitaxe", "antminer", "luxos"], seed=4)
    factory = MinerFactory.from_subnet(lo("127.210.22.0/24")).with_port_map(mixed.ports or PortMap())
    found = {str(m.ip): m for m in await factory.scan()}
    assert len(found) == 8
    for ip, sim in mixed.miners.items():
        assert found[ip].make == sim.inventory()["make"], ip
        assert isinstance(found[ip].backend, NerdAxe) == isinstance(sim, NerdAxeSim)


# ----- (c) against pyasic and pyasic-rs ----------------------------------------------------------
def real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only talk to port 80; the simulator could not bind it (not root)")


@pytest.mark.interop
async def test_pyasic_reads_luckyminers_and_not_nerdaxes(fleet: SimFleet) -> None:
    """pyasic knows LuckyMiner (page "Lucky miner", `minerModel`); it has no NerdAxe support at all."""
    import pyasic  # type: ignore[import-untyped]

    real_ports(fleet)
    for sim in relatives(fleet):
        found = await pyasic.get_miner(sim.state.ip)
        if sim.lucky:
            assert found is not None
            data = await found.get_data()
            assert str(data.make) == "LuckyMiner" and str(data.firmware) == "Stock"
            assert str(data.model) == sim.device_model
            assert float(data.hashrate) == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
        else:
            assert found is None  # no page signal it knows, no RPC


@pytest.mark.interop
async def test_pyasic_rs_reads_nerdaxes_and_not_luckyminers(fleet: SimFleet) -> None:
    """pyasic-rs knows NerdAxe ("Nerd" in the page, `deviceModel`); it has no LuckyMiner support."""
    from pyasic_rs import MinerFactory

    real_ports(fleet)
    for sim in relatives(fleet):
        found = await MinerFactory().get_miner(sim.state.ip)
        if sim.lucky:
            assert found is None
            continue
        assert found is not None
        data = await found.get_data()
        assert data.device_info.make.casefold() == "nerdaxe" and data.device_info.firmware == "Nerdaxe Stock"
        assert data.hashrate is not None and str(data.hashrate.unit) == "TH/s"
        assert float(data.hashrate) == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
