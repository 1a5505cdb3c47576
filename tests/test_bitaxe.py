"""Bitaxe / AxeOS: the parsers on the captured reply, the backend against the simulator, and the simulator
against pyasic and pyasic-rs.

All live tests run on 127.85.10.0/24 with the same seeded fleet: six Bitaxes, two of each ASIC model
(BM1366 Ultra, BM1368 Supra, BM1370 Gamma); per model one is given the legacy firmware (v2.4.5, the
fixture's generation) and one the current firmware (v2.14.2).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from asicfleet._errors import MinerAPIError, MinerConnectionError, MinerError, UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends import Probe
from asicfleet.backends.bitaxe import INFO, Bitaxe, fan_config_from_info, page_text, pools_from_info
from asicfleet.config import FanConfig, Pool, PoolGroup, ScalingConfig, TuningConfig
from asicfleet.data import HashRate, MessageSeverity
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim.bitaxe import ASICS, CURRENT_VERSION, LEGACY_VERSION, BitaxeSim, cjson, expected_ghs, f32
from asicfleet.transport import HttpReply, PortMap, TransportSettings, close_quietly, open_tcp, probe_http, rpc_call
from tests.capabilities import esp_image
from tests.conftest import FleetFactory, fixture_bytes, lo

SUBNET = lo("127.85.10.0/24")
SEED = 10
FIXTURE = ("bitaxe", "v2_0_0", "system_info.json")
FAMILY_NAMES = {"BM1366": "Ultra", "BM1368": "Supra", "BM1370": "Gamma"}  # what pyasic and pyasic-rs call them


def fixture_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads(fixture_bytes(*FIXTURE))
    return info


def supra(session: Session | None = None, ip: str = lo("127.85.0.1")) -> Bitaxe:
    return Bitaxe(ip, Bitaxe.device_info("Bitaxe", "BM1368", "Stock"), session or Session())


# ----- (a) parsers on the captured reply -----------------------------------------------------------
def test_fixture_every_figure() -> None:
    """Each figure of the captured v2.4.5 reply, computed by hand from the file."""
    data = supra().parse_raw({INFO: fixture_bytes(*FIXTURE)})
    assert data.errors == []
    assert data.mac == "AA:BB:CC:DD:EE:FF"
    assert data.hostname == "bitaxe"
    assert data.firmware_version == data.api_version == "v2.4.5-3-gb5d1e36-dirty"
    assert data.control_board_version == "401"
    assert data.hashrate == HashRate(value=1.0, unit="TH/s")  # hashRate 1000 GH/s
    assert data.expected_hashrate is not None  # smallCoreCount 1276 x asicCount 1 x 490 MHz = 625.24 GH/s
    assert data.expected_hashrate.value == pytest.approx(0.62524)
    assert data.wattage == pytest.approx(2.65000009536743)
    assert data.uptime == timedelta(seconds=4)
    assert [(f.position, f.rpm) for f in data.fans] == [(0, 3517)]
    assert data.psu_fans == [] and data.serial_number is None
    (board,) = data.hashboards
    assert board.hashrate == HashRate(value=1.0, unit="TH/s")
    assert board.expected_hashrate is not None and board.expected_hashrate.value == pytest.approx(0.62524)
    assert board.board_temperature == 78  # vrTemp: the board's sensor
    assert board.intake_temperature == board.outlet_temperature == 59.875  # temp: the ASIC's
    assert board.working_chips == 1 and board.expected_chips == 1  # asicCount; the hardware table's 1 chip
    assert board.voltage == pytest.approx(5.175)  # voltage 5175 mV in
    assert board.frequency == 490
    (chip,) = board.chips
    assert chip.voltage == pytest.approx(1.172) and chip.frequency == 490 and chip.temperature == 59.875
    assert chip.hashrate == HashRate(value=1.0, unit="TH/s") and chip.working is True
    assert data.average_temperature == 78 and data.total_chips == 1
    (group,) = data.pools
    primary, fallback = group.pools
    assert (primary.position, primary.url, primary.user) == (0, "stratum+tcp://btc.example.pool:3333", "asic-rs.test")
    assert (primary.active, primary.accepted_shares, primary.rejected_shares) == (True, 0, 0)
    assert (fallback.position, fallback.url, fallback.user) == (1, "stratum+tcp://btc2.example.pool:3333",
                                                                 "asic-rs.test")
    assert (fallback.active, fallback.accepted_shares) == (False, None)
    assert data.messages == [] and data.is_mining is True  # overheat_mode 0, and v2.4.5 cannot pause
    assert data.tuning_target is not None and data.tuning_target.target_hashrate is not None
    assert data.tuning_target.target_hashrate.value == pytest.approx(0.62524)
    assert data.efficiency == pytest.approx(2.65, abs=0.001)  # 2.65 W / 1.0 TH/s


def test_fixture_configs() -> None:
    info = fixture_info()
    assert fan_config_from_info(info) == FanConfig.auto()  # autofanspeed 1
    (group,) = pools_from_info(info)
    assert [(p.url, p.username, p.password) for p in group.pools] == [
        ("stratum+tcp://btc.example.pool:3333", "asic-rs.test", ""),  # AxeOS never shows pool passwords
        ("stratum+tcp://btc2.example.pool:3333", "asic-rs.test", ""),
    ]
    info.update(autofanspeed=0, fanspeed=35)
    assert fan_config_from_info(info) == FanConfig.manual(35)


def test_fixture_overheat_and_fallback() -> None:
    info = fixture_info()
    info.update(overheat_mode=1, isUsingFallbackStratum=1, sharesAccepted=7)
    data = supra().parse_raw({INFO: json.dumps(info).encode()})
    assert data.is_mining is False
    assert [m.severity for m in data.messages] == [MessageSeverity.ERROR]
    assert "Overheat" in data.messages[0].message
    primary, fallback = data.pools[0].pools
    assert (primary.active, fallback.active, fallback.accepted_shares) == (False, True, 7)


def test_current_api_reply_by_hand() -> None:
    """A 2.14-style reply (a two-ASIC board, paused, TLS pool, power fault), figures chosen by hand."""
    info = {
        "hashRate": 1100.5, "expectedHashrate": 2142, "miningPaused": True, "power": 36.5, "voltage": 12010,
        "temp": 61.5, "temp2": -1, "vrTemp": 70, "coreVoltageActual": 1150, "actualFrequency": 525, "frequency": 525,
        "smallCoreCount": 2040, "fanrpm": 5000, "fan2rpm": 4800, "autofanspeed": 0, "manualFanSpeed": 80,
        "temptarget": 60, "minFanSpeed": 25, "power_fault": "VIN under voltage", "overheat_mode": 0,
        "hashrateMonitor": {"asics": [{"total": 550.25, "domains": []}, {"total": 550.25, "domains": []}]},
        "stratumURL": "secure.example.org", "stratumPort": 4333, "stratumTLS": 1, "stratumProtocol": "SV1",
        "stratumUser": "bc1qexample.rig", "fallbackStratumURL": "", "fallbackStratumPort": 3333,
        "isUsingFallbackStratum": 0, "poolConnectionInfo": "Not Connected", "sharesAccepted": 5, "sharesRejected": 1,
    }
    data = supra().parse_raw({INFO: json.dumps(info).encode()})
    assert data.errors == []
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(1.1005)
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(2.142)
    assert data.is_mining is False and data.hashboards[0].active is False
    assert [f.rpm for f in data.fans] == [5000, 4800]
    (board,) = data.hashboards
    assert board.working_chips == 2 and board.voltage == pytest.approx(12.01)
    assert [c.hashrate.value for c in board.chips if c.hashrate] == pytest.approx([0.55025, 0.55025])
    assert [c.voltage for c in board.chips] == [1.15, 1.15]
    assert [m.message for m in data.messages] == ["Power fault: VIN under voltage"]
    (pool,) = data.pools[0].pools
    assert (pool.url, pool.alive, pool.accepted_shares) == ("stratum+ssl://secure.example.org:4333", False, 5)
    assert data.tuning_target is not None and data.tuning_target.target_hashrate is not None
    assert data.tuning_target.target_hashrate.value == pytest.approx(2.142)  # 2040 cores x 2 ASICs x 525 MHz
    assert fan_config_from_info(info) == FanConfig.manual(80)


def test_fixture_failed_read_is_an_error() -> None:
    data = supra().parse_raw({INFO: b'{"hashRate"=1000'})
    assert data.hashrate is None and any(INFO in e for e in data.errors)


def test_sim_legacy_reply_has_the_fixture_shape() -> None:
    """The simulated v2.4.5 reply has the fixture's keys with the same JSON types, printed as cJSON does."""
    fleet = SimFleet.generate(SUBNET, 1, ["bitaxe"], seed=SEED)
    (miner,) = fleet.miners.values()
    assert isinstance(miner, BitaxeSim)
    miner.use_firmware(LEGACY_VERSION)
    text = cjson(miner.legacy_info(), formatted=True)
    assert text.startswith('{\n\t"power":\t')
    simulated, captured = json.loads(text), fixture_info()
    assert set(simulated) == set(captured)

    def kind(value: Any) -> str:
        return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__

    assert {k: kind(v) for k, v in simulated.items()} == {k: kind(v) for k, v in captured.items()}
    assert cjson(f32(2.65), formatted=False) == "2.65000009536743"  # the fixture's power, a C float


def test_page_text_inflates_gzip() -> None:
    page = b"<title>AxeOS</title>"
    reply = HttpReply(200, {"content-encoding": "gzip"}, gzip.compress(page))
    assert page_text(reply) == page.decode()
    cut = HttpReply(200, {"content-encoding": "gzip"}, gzip.compress(page * 50)[:-12])  # no trailer
    assert "AxeOS" in page_text(cut)
    assert not Bitaxe.matches(Probe(ip=lo("127.85.0.1"), web=HttpReply(200, {}, b"<title>Braiins OS</title>")))
    assert not Bitaxe.matches(Probe(ip=lo("127.85.0.1")))


# ----- the simulated fleet -------------------------------------------------------------------------
@pytest.fixture
async def fleet(sim_fleet: FleetFactory) -> SimFleet:
    started = await sim_fleet(SUBNET, 6, ["bitaxe"], seed=SEED)
    seen: set[str] = set()
    for miner in started.miners.values():  # per model: the first legacy, the second current
        name = miner.state.model.name
        assert isinstance(miner, BitaxeSim)
        miner.use_firmware(CURRENT_VERSION if name in seen else LEGACY_VERSION)
        seen.add(name)
        miner.restart_seconds = 0.3
    assert sorted(seen) == ["BM1366", "BM1368", "BM1370"]
    return started


@pytest.fixture
async def session(fleet: SimFleet) -> AsyncIterator[Session]:
    made = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), read_timeout=2.0))
    yield made
    await made.aclose()


def bitaxes(fleet: SimFleet) -> list[BitaxeSim]:
    return [m for m in fleet.miners.values() if isinstance(m, BitaxeSim)]


def pick(fleet: SimFleet, version: str, model: str | None = None) -> BitaxeSim:
    return next(m for m in bitaxes(fleet) if m.state.firmware_version == version
                and (model is None or m.state.model.name == model))


def backend(miner: BitaxeSim, session: Session) -> Bitaxe:
    return Bitaxe(miner.state.ip, Bitaxe.device_info("Bitaxe", miner.state.model.name, "Stock"), session)


async def probe(ip: str, settings: TransportSettings) -> Probe:
    """What discovery learns: GET / on 80 and the RPC `version` on 4028 (refused: a Bitaxe has no RPC)."""
    reader, writer = await open_tcp(ip, settings.ports(80), settings.connect_timeout)
    try:
        web = await probe_http(reader, writer, ip)
    finally:
        await close_quietly(writer)
    found = Probe(ip=ip, web=web)
    try:
        found.rpc["version"] = await rpc_call(ip, "version", settings=settings)
    except MinerError as exc:
        found.rpc["version"] = exc
    return found


async def until_back(miner: Bitaxe, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            await miner.get_pools_config()
            return
        except MinerError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


# ----- (b) against the simulator -------------------------------------------------------------------
async def test_identify_every_model_and_generation(fleet: SimFleet, session: Session) -> None:
    for miner in bitaxes(fleet):
        found = await probe(miner.state.ip, session.settings)
        assert isinstance(found.rpc["version"], MinerConnectionError)  # nothing listens on 4028
        assert found.web is not None and found.web.headers.get("content-encoding") == "gzip"
        assert Bitaxe.matches(found)
        info = await Bitaxe.identify(found, session)
        assert info is not None
        assert (info.make, info.model, info.firmware) == ("Bitaxe", miner.state.model.name, "Stock")
        assert info.hardware == lookup_model("Bitaxe", miner.state.model.name).hardware  # type: ignore[union-attr]
        for port in (443, 4433):  # the other ports clients try are closed too
            with pytest.raises(MinerConnectionError):
                await open_tcp(miner.state.ip, session.settings.ports(port), 1.0)


async def test_discovery_picks_the_bitaxe_backend(fleet: SimFleet, session: Session) -> None:
    """The whole identification (every registered backend's matches()) ends at this backend."""
    from asicfleet.discovery import identify

    for sim in bitaxes(fleet):
        found = await identify(sim.state.ip, session, timeout=3.0)
        assert found.error is None and found.miner is not None, found
        assert isinstance(found.miner.backend, Bitaxe)
        assert (found.miner.make, found.miner.model) == ("Bitaxe", sim.state.model.name)


async def test_get_data_equals_state_and_sends_one_request(fleet: SimFleet, session: Session) -> None:
    for miner in bitaxes(fleet):
        miner.requests.clear()
        data = await backend(miner, session).get_data()
        assert dict(miner.requests) == {"80:GET /api/system/info": 1}
        s, inventory = miner.state, miner.inventory()
        assert data.errors == []
        assert data.hashrate is not None
        assert data.hashrate.into_unit("TH/s").value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.wattage == pytest.approx(s.wattage, rel=1e-6)
        assert [f.rpm for f in data.fans] == s.fan_rpms
        assert (data.mac, data.hostname, data.firmware_version) == (s.mac, s.hostname, s.firmware_version)
        assert data.control_board_version == ASICS[s.model.name].board_version
        assert data.uptime is not None and abs(data.uptime.total_seconds() - s.uptime) <= 2
        assert [(p.url, p.user) for p in data.pools[0].pools] == [(p.url, p.username) for p in s.pools[0].pools]
        assert data.pools[0].pools[0].accepted_shares == s.accepted
        assert data.hashboards[0].intake_temperature == pytest.approx(s.board_temps[0])
        expected = expected_ghs(ASICS[s.model.name], ASICS[s.model.name].default_mhz) / 1000
        assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(expected, rel=1e-6)
        assert data.is_mining is True and data.messages == []
        assert data.hashboards[0].expected_chips == 1 and data.hashboards[0].working_chips == 1


async def test_restart_comes_back_with_fresh_uptime(fleet: SimFleet, session: Session) -> None:
    for version in (LEGACY_VERSION, CURRENT_VERSION):
        sim = pick(fleet, version)
        miner = backend(sim, session)
        assert (await miner.get_data()).uptime > timedelta(hours=1)  # type: ignore[operator]
        assert await miner.restart() is True
        await asyncio.sleep(0.1)
        with pytest.raises(MinerError):
            await miner.get_pools_config()  # down while rebooting
        await until_back(miner)
        data = await miner.get_data()
        assert data.uptime is not None and data.uptime < timedelta(seconds=5)


async def test_pause_resume_current_firmware(fleet: SimFleet, session: Session) -> None:
    sim = pick(fleet, CURRENT_VERSION)
    miner = backend(sim, session)
    pools_before, fan_before = await miner.get_pools_config(), await miner.get_fan_config()
    assert await miner.pause() is True
    data = await miner.get_data()
    assert data.is_mining is False and sim.inventory()["hashrate_ths"] == 0
    assert data.hashrate is not None and data.hashrate.value == 0
    assert await miner.get_pools_config() == pools_before and await miner.get_fan_config() == fan_before
    assert "Mining paused by API request" in await miner.read_logs()
    assert await miner.resume() is True
    data = await miner.get_data()
    assert data.is_mining is True
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(sim.state.hashrate_ths, rel=0.01)


async def test_legacy_firmware_lacks_pause_identify_logs(fleet: SimFleet, session: Session) -> None:
    miner = backend(pick(fleet, LEGACY_VERSION), session)
    for control in (miner.pause(), miner.resume(), miner.set_fault_light(True), miner.read_logs()):
        with pytest.raises(UnsupportedControlError):
            await control


async def test_fault_light_toggle(fleet: SimFleet, session: Session) -> None:
    sim = pick(fleet, CURRENT_VERSION)
    miner = backend(sim, session)
    assert await miner.set_fault_light(True) is True and sim.identifying
    assert await miner.set_fault_light(True) is True and sim.identifying  # identify toggles: sent twice
    assert await miner.set_fault_light(False) is True and not sim.identifying
    assert await miner.set_fault_light(False) is True and not sim.identifying


@pytest.mark.parametrize("version", [LEGACY_VERSION, CURRENT_VERSION])
async def test_pools_round_trip(fleet: SimFleet, session: Session, version: str) -> None:
    sim = pick(fleet, version)
    miner = backend(sim, session)
    fan_before, tuning_before = await miner.get_fan_config(), await miner.get_tuning_config()
    pools = [Pool(url="stratum+tcp://solo.example.org:4444", username="bc1qexample.rig1", password="p1"),
             Pool(url="stratum+tcp://alt.example.org:3333", username="bc1qexample.rig1b", password="p2")]
    assert await miner.set_pools_config([PoolGroup(pools=pools)]) is True
    (group,) = await miner.get_pools_config()
    assert [(p.url, p.username) for p in group.pools] == [(p.url, p.username) for p in pools]
    assert (sim.nvs["stratumPassword"], sim.nvs["fallbackStratumPassword"]) == ("p1", "p2")
    assert await miner.get_fan_config() == fan_before and await miner.get_tuning_config() == tuning_before
    assert await miner.set_pools_config([PoolGroup(pools=pools[:1])]) is True  # the fallback is cleared
    (group,) = await miner.get_pools_config()
    assert [p.url for p in group.pools] == [pools[0].url]
    with pytest.raises(ValueError):
        await miner.set_pools_config([PoolGroup(pools=[*pools, pools[0]])])  # three: AxeOS has two slots
    tls = [Pool(url="stratum+ssl://secure.example.org:4333", username="bc1qexample.rig1")]
    if version == LEGACY_VERSION:
        with pytest.raises(UnsupportedControlError):
            await miner.set_pools_config([PoolGroup(pools=tls)])
    else:
        assert await miner.set_pools_config([PoolGroup(pools=tls)]) is True
        assert (await miner.get_pools_config())[0].pools[0].url == tls[0].url and sim.nvs["stratumTLS"] == 1


@pytest.mark.parametrize("version", [LEGACY_VERSION, CURRENT_VERSION])
async def test_fan_round_trip(fleet: SimFleet, session: Session, version: str) -> None:
    sim = pick(fleet, version)
    miner = backend(sim, session)
    pools_before = await miner.get_pools_config()
    assert await miner.set_fan_config(FanConfig.manual(70)) is True
    assert await miner.get_fan_config() == FanConfig.manual(70) == sim.state.fan
    data = await miner.get_data()
    assert [f.rpm for f in data.fans] == [int(sim.state.extra["fan_max_rpm"] * 0.7)] == sim.state.fan_rpms
    if version == LEGACY_VERSION:
        with pytest.raises(UnsupportedControlError):
            await miner.set_fan_config(FanConfig.auto(target_temp=55))
        assert await miner.set_fan_config(FanConfig.auto()) is True
        assert await miner.get_fan_config() == FanConfig.auto() == sim.state.fan
    else:
        assert await miner.set_fan_config(FanConfig.auto(target_temp=55, idle_speed=30)) is True
        assert await miner.get_fan_config() == FanConfig.auto(target_temp=55, idle_speed=30) == sim.state.fan
        with pytest.raises(ValueError):
            await miner.set_fan_config(FanConfig.auto(target_temp=80))
    assert await miner.get_pools_config() == pools_before


@pytest.mark.parametrize("version", [LEGACY_VERSION, CURRENT_VERSION])
async def test_tuning_round_trip(fleet: SimFleet, session: Session, version: str) -> None:
    sim = pick(fleet, version, "BM1368")
    miner = backend(sim, session)
    pools_before, voltage_before = await miner.get_pools_config(), sim.nvs["coreVoltage"]
    ratio = sim.state.hashrate_ths / (expected_ghs(sim.asic, sim.nvs["frequency"]) / 1000)
    target = HashRate(value=0.55, unit="TH/s")  # 1276 cores: 431.03 MHz
    assert await miner.set_tuning_config(TuningConfig.hashrate(target)) is True
    assert sim.nvs["frequency"] == pytest.approx(431.03 if version == CURRENT_VERSION else 431, abs=0.01)
    tuned = await miner.get_tuning_config()
    assert tuned.target_hashrate is not None and tuned.target_hashrate.value == pytest.approx(0.55, rel=0.001)
    data = await miner.get_data()
    assert data.tuning_target is not None and data.tuning_target.target_hashrate == tuned.target_hashrate
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(0.55 * ratio, rel=0.01)
    assert sim.inventory()["hashrate_ths"] == pytest.approx(0.55 * ratio, rel=0.01)
    assert await miner.get_pools_config() == pools_before and sim.nvs["coreVoltage"] == voltage_before
    with pytest.raises(UnsupportedControlError):
        await miner.set_tuning_config(TuningConfig.power(15))


async def test_upgrade_firmware_changes_generation(fleet: SimFleet, session: Session) -> None:
    sim = pick(fleet, LEGACY_VERSION)
    miner = backend(sim, session)
    with pytest.raises(UnsupportedControlError):
        await miner.pause()
    with pytest.raises(MinerAPIError):
        await miner.upgrade_firmware(b"not an ESP image", "esp-miner.bin")
    assert await miner.upgrade_firmware(b"\x00" * 1024, "www.bin") is True
    assert sim.requests["80:POST /api/system/OTAWWW"] == 1
    assert await miner.upgrade_firmware(esp_image(CURRENT_VERSION), "esp-miner.bin") is True
    await until_back(miner)
    data = await miner.get_data()
    assert data.firmware_version == CURRENT_VERSION == sim.state.firmware_version
    assert await miner.pause() is True  # the new firmware has it


async def test_unsupported_controls(fleet: SimFleet, session: Session) -> None:
    miner = backend(pick(fleet, CURRENT_VERSION), session)
    for name in ("set_power_limit", "change_password", "factory_reset", "get_scaling_config", "set_scaling_config"):
        assert not Bitaxe.supports(name)
    assert Bitaxe.supports("pause") and Bitaxe.supports("set_pools_config")
    for call in (miner.set_power_limit(10), miner.change_password("x"), miner.factory_reset(),
                 miner.set_scaling_config(ScalingConfig(step=10, minimum=50))):
        with pytest.raises(UnsupportedControlError):
            await call


async def test_firmware_http_behaviour(fleet: SimFleet, session: Session) -> None:
    """What each generation answers where it has nothing, and how it takes settings."""
    legacy, current = pick(fleet, LEGACY_VERSION), pick(fleet, CURRENT_VERSION)
    http = session.http
    reply = await http.request("GET", legacy.state.ip, "/api/system/asic")
    assert (reply.status, reply.headers["location"]) == (302, "/")  # the file handler's captive-portal redirect
    assert (await http.request("POST", legacy.state.ip, "/api/system/pause")).status == 405
    reply = await http.request("GET", current.state.ip, "/api/system/nothing")
    assert (reply.status, reply.json()) == (404, {"error": "unknown route"})
    asic = (await http.request("GET", current.state.ip, "/api/system/asic")).json()
    assert (asic["ASICModel"], asic["asicCount"], asic["deviceModel"]) == (
        current.state.model.name, 1, FAMILY_NAMES[current.state.model.name])
    # cJSON looks names up ignoring case: pyasic's "autoFanspeed" works on both
    for sim in (legacy, current):
        assert (await http.request("PATCH", sim.state.ip, "/api/system", json={"autoFanspeed": 0})).status == 200
        assert sim.nvs["autofanspeed"] in (0, False)
    # the current firmware validates all or nothing
    bad = await http.request("PATCH", current.state.ip, "/api/system", json={"hostname": "new", "temptarget": 90})
    assert (bad.status, bad.text) == (400, "Wrong API input") and current.nvs["hostname"] != "new"
    assert (await http.request("PATCH", legacy.state.ip, "/api/system", content=b"{nope")).status == 400


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_faults_yield_errors(fleet: SimFleet, fault: Fault) -> None:
    settings = TransportSettings(ports=fleet.ports or PortMap(), read_timeout=1.0, connect_timeout=1.0,
                                 max_reply_bytes=1024 * 1024)
    quick = Session(settings=settings)
    try:
        for version in (LEGACY_VERSION, CURRENT_VERSION):
            sim = pick(fleet, version)
            sim.fault, sim.slow_seconds, sim.oversized_bytes = fault, 2.0, 4 * 1024 * 1024
            started = time.monotonic()
            data = await backend(sim, quick).get_data()
            assert time.monotonic() - started < 4.0
            if fault is Fault.AUTH_FAILURE and version == LEGACY_VERSION:
                assert data.errors == []  # v2.4.5 has no access control at all
                continue
            assert data.errors and data.hashrate is None, (fault, version, data.errors)
            if fault is Fault.AUTH_FAILURE:
                assert "401" in data.errors[0]
            sim.fault = Fault.NONE
    finally:
        await quick.aclose()


# ----- (c) against pyasic and pyasic-rs ------------------------------------------------------------
def real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only talk to port 80; the simulator could not bind it (not root)")


@pytest.mark.interop
async def test_pyasic_reads_every_model(fleet: SimFleet) -> None:
    """pyasic finds the page title "AxeOS", reads ASICModel and reports the board family as the model."""
    import pyasic  # type: ignore[import-untyped]

    real_ports(fleet)
    for sim in bitaxes(fleet):
        inventory = sim.inventory()
        found = await pyasic.get_miner(sim.state.ip)
        assert found is not None, sim.state.ip
        data = await found.get_data()
        assert str(data.make).casefold() == inventory["make"].casefold()  # pyasic spells it "BitAxe"
        assert str(data.firmware) == inventory["firmware"] == "Stock"
        assert str(data.model) == FAMILY_NAMES[inventory["model"]]
        assert data.hashrate is not None and str(data.hashrate.unit) == "TH/s"
        assert float(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)


@pytest.mark.interop
async def test_pyasic_rs_reads_every_model(fleet: SimFleet) -> None:
    """pyasic-rs names the firmware "Bitaxe Stock" (make + "Stock") and the model by board family."""
    from pyasic_rs import MinerFactory

    real_ports(fleet)
    for sim in bitaxes(fleet):
        inventory = sim.inventory()
        found = await MinerFactory().get_miner(sim.state.ip)
        assert found is not None, sim.state.ip
        data = await found.get_data()
        info = data.device_info
        assert info.make == inventory["make"] == "Bitaxe"
        assert info.firmware == f"{inventory['make']} {inventory['firmware']}"
        assert info.model == FAMILY_NAMES[inventory["model"]]
        assert data.hashrate is not None and str(data.hashrate.unit) == "TH/s"
        assert float(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)

