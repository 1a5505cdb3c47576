"""LuxOS (LUXminer) on Antminer hardware: parsers on captured replies, the backend against the simulator over
loopback (sessions included), a mixed scan, and the simulator against pyasic and pyasic-rs (marker `interop`).

Addresses: 127.101.0.0/16 only. Captured replies: tests/fixtures/luxos (from asic-rs, see the README there).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from asicfleet import MinerFactory
from asicfleet._errors import MinerAPIError, MinerConnectionError, UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.luxos import LuxOS, event_severity, model_from_version, profile_for_watts
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import HashRate, MessageSeverity
from asicfleet.discovery._identify import identify
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.luxos import SLEEP_WATTS, LuxOSSim
from asicfleet.transport import HttpReply, PortMap, decode_json, rpc_call
from tests.conftest import identified_backend, lo, only_miner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "luxos"
COMMANDS = ("version", "config", "summary", "stats", "pools", "devs", "fans", "power", "profiles", "temps", "events")
ALL_MODELS = LuxOSSim.models


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture_backend() -> LuxOS:
    return LuxOS(lo("127.101.0.1"), LuxOS.device_info("AntMiner", "Antminer S19k Pro", "LuxOS"), Session())


def norm(model: str) -> str:
    known = lookup_model("AntMiner", model)
    assert known is not None, f"{model!r} is not a known Antminer model"
    return known.name


# ===== (a) parsers on the captured LUXminer 2025.4 replies ==============================================
def test_version_and_config_fixtures() -> None:
    data = fixture_backend().parse_raw({"rpc:version": raw("version"), "rpc:config": raw("config")})
    assert data.firmware_version == "2025.4.8.220305" and data.api_version == "3.7"
    assert model_from_version(decode_json(raw("version"))) == "Antminer S19k Pro"
    assert data.mac == "62:F7:5E:B7:10:46"
    assert (data.serial_number, data.hostname) == ("JYZZB0UBDJABF06RB", "UrlacherS19k")
    assert data.control_board_version == "cvitek"
    assert data.light_flashing is False  # RedLed "auto": the firmware's own, not a locate request
    assert data.is_mining is True  # CurtailMode "None"
    assert data.errors == []


def test_summary_stats_devs_temps_fixtures() -> None:
    replies = {f"rpc:{n}": raw(n) for n in ("summary", "stats", "devs", "temps")}
    data = fixture_backend().parse_raw(replies)
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(59.75606)  # GHS 5s 59756.06
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(61.9542)
    assert data.uptime == timedelta(seconds=3453)
    boards = data.hashboards
    assert [b.position for b in boards] == [0, 1, 2]  # chain 4 is an empty slot
    assert [b.hashrate.value for b in boards if b.hashrate] == pytest.approx([18.91028, 18.93995, 19.06767])
    assert [b.working_chips for b in boards] == [77, 77, 77] and [b.expected_chips for b in boards] == [77] * 3
    assert [b.frequency for b in boards] == [300.0, 300.0, 300.0]
    assert [b.board_temperature for b in boards] == [40.5, 40.0, 40.5]  # mean of 47-34-34-47, 47-33-33-47...
    assert [(b.intake_temperature, b.outlet_temperature) for b in boards] == [(34.0, 47.0), (33.0, 47.0), (34.0, 47.0)]
    # devs lists the boards out of order (ID 2, 0, 1): each serial must land on its own board
    assert [b.serial_number for b in boards] == ["JYZZYRSBDJEBI06Z5", "JYZZYRSBDJEBI06ZM", "JYZZYRSBDJEBI06ZR"]
    assert [b.expected_hashrate.value for b in boards if b.expected_hashrate] == pytest.approx([20.6514] * 3)
    assert data.errors == []


def test_fans_power_profiles_fixtures() -> None:
    data = fixture_backend().parse_raw({f"rpc:{n}": raw(n) for n in ("fans", "power", "config", "profiles")})
    assert [f.rpm for f in data.fans] == [1920, 1920, 2340, 2340]
    assert data.wattage == 1051
    assert data.wattage_limit == 1188  # the active profile "290MHz" is estimated at 1188 W
    assert data.tuning_target is not None
    assert (data.tuning_target.target_watts, data.tuning_target.target_mode) == (1188, "290MHz")
    profiles = decode_json(raw("profiles"))["PROFILES"]
    assert profile_for_watts(profiles, 1200)["Profile Name"] == "290MHz"
    assert profile_for_watts(profiles, 2794)["Profile Name"] == "default"
    with pytest.raises(ValueError, match="lowest is 784 W"):
        profile_for_watts(profiles, 500)


def test_pools_fixture_groups_by_group_id() -> None:
    groups_reply = {"GROUPS": [{"GROUP": 0, "Name": "default", "Quota": 80.0},
                               {"GROUP": 1, "Name": "split", "Quota": 20.0}],
                    "STATUS": [{"STATUS": "S", "Msg": "2 Group(s)"}]}
    data = fixture_backend().extract({"rpc:pools": decode_json(raw("pools")), "rpc:groups": groups_reply})
    assert [(g.name, g.quota) for g in data.pools] == [("default", 80), ("split", 20)]
    assert [[p.position for p in g.pools] for g in data.pools] == [[0, 1], [2, 3]]
    assert [[p.user for p in g.pools] for g in data.pools] == [["asic-rs.user1"] * 2, ["asic-rs.user2"] * 2]
    assert [p.accepted_shares for g in data.pools for p in g.pools] == [724, 0, 759, 0]
    assert [p.alive for g in data.pools for p in g.pools] == [True, False, True, False]
    assert [p.active for g in data.pools for p in g.pools] == [True, False, True, False]
    # without the groups reply the pools still split by GROUP
    alone = fixture_backend().parse_raw({"rpc:pools": raw("pools")})
    assert [len(g.pools) for g in alone.pools] == [2, 2] and alone.errors == []


def test_events_fixture() -> None:
    data = fixture_backend().parse_raw({"rpc:events": raw("events")})
    assert [(m.message, m.severity) for m in data.messages] == [
        ("[MINER] Miner shutdown due to NOPIC protection.", MessageSeverity.WARNING),
        ("[BOARD 0] Board reboot due to it not hashing.", MessageSeverity.WARNING)]
    assert event_severity("FAN_FAILURE") is MessageSeverity.ERROR
    assert event_severity("BOARD_OVERTEMP_SHUTDOWN") is MessageSeverity.ERROR
    assert event_severity("SHUTDOWN_USER") is MessageSeverity.INFO and event_severity("SLEEP") is MessageSeverity.INFO


def test_all_fixtures_together_and_an_error_reply() -> None:
    data = fixture_backend().parse_raw({f"rpc:{n}": raw(n) for n in COMMANDS})
    assert data.errors == []
    assert data.efficiency == pytest.approx(1051 / 59.75606, rel=1e-3)
    refused = b'{"STATUS":[{"STATUS":"E","Code":14,"Msg":"Invalid command","Description":"LUXminer 2025"}],"id":1}'
    bad = fixture_backend().parse_raw({"rpc:power": refused})
    assert bad.wattage is None and any("Invalid command" in e for e in bad.errors)


# ===== identification signals =========================================================================
def _probe(version: dict[str, object] | Exception | None = None, web: HttpReply | None = None) -> Probe:
    return Probe(ip=lo("127.101.0.1"), web=web, rpc={} if version is None else {"version": version})


def test_matches_signals() -> None:
    lux = decode_json(raw("version"))
    assert LuxOS.matches(_probe(lux))
    assert not AntminerStock.matches(_probe(lux))  # names an Antminer, but it is not stock
    page = HttpReply(200, {"content-type": "text/html"}, b"<html><title>Luxor Firmware</title></html>")
    assert LuxOS.matches(_probe(MinerConnectionError("refused"), page))
    stock = {"STATUS": [{"STATUS": "S", "Description": "cgminer 1.0.0"}], "VERSION": [{"Type": "Antminer S19 Pro"}]}
    assert not LuxOS.matches(_probe(stock))
    assert not LuxOS.matches(_probe())
    assert backend_for("luxos") is LuxOS and LuxOS in BACKENDS
    assert BACKENDS.index(LuxOS) < BACKENDS.index(AntminerStock)


# ===== (b) against the simulator over loopback ==========================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
def luxminers(family_miners: Callable[..., Start]) -> Start:
    """`fleet, session = await luxminers(models)`: one simulated miner per model on its own 127.101.N.x block
    (conftest's `family_miners`)."""
    return family_miners(LuxOSSim, "127.101", ("Antminer S19j Pro",))


def only(fleet: SimFleet) -> tuple[str, LuxOSSim]:
    return only_miner(fleet, LuxOSSim)


async def _backend(session: Session, ip: str) -> LuxOS:
    return await identified_backend(session, ip, LuxOS)


async def test_identify_every_simulated_model(luxminers: Start) -> None:
    fleet, session = await luxminers(ALL_MODELS)
    for ip, sim in fleet.miners.items():
        info = (await _backend(session, ip)).device
        assert (info.make, info.model, info.firmware) == ("AntMiner", sim.model_name, "LuxOS")
        assert info.hardware.chips_per_board == sim.state.model.chips_per_board


async def test_identified_by_the_web_page_when_the_probe_missed_the_rpc(luxminers: Start) -> None:
    fleet, session = await luxminers()
    ip, sim = only(fleet)
    page = HttpReply(200, {}, b"<title>Luxor Firmware</title>")
    probe = Probe(ip=ip, web=page, rpc={"version": MinerConnectionError("refused")})
    assert LuxOS.matches(probe)
    info = await LuxOS.identify(probe, session)  # asks version itself
    assert info is not None and info.model == sim.model_name


async def test_get_data_matches_the_simulator_state(luxminers: Start) -> None:
    fleet, session = await luxminers(("Antminer S19 Pro", "Antminer S21"))
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, LuxOSSim)
        data = await (await _backend(session, ip)).get_data()
        state, inventory = sim.state, sim.inventory()
        assert data.errors == []
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(data.hashrate.value,
                                                                                           rel=0.001)
        assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(
            state.model.nominal_ths)
        assert [b.board_temperature for b in data.hashboards] == [round(t) for t in state.board_temps]
        assert [b.serial_number for b in data.hashboards] == state.extra["board_serials"]
        assert [b.working_chips for b in data.hashboards] == [state.model.chips_per_board] * 3
        assert [b.frequency for b in data.hashboards] == [sim.nameplate.frequency] * 3
        assert [f.rpm for f in data.fans] == state.fan_rpms
        assert (data.mac, data.hostname, data.serial_number) == (state.mac, state.hostname, state.serial)
        assert data.firmware_version == state.firmware_version == inventory["firmware_version"]
        assert data.wattage == round(state.wattage)
        assert data.wattage_limit == state.power_limit == state.model.nominal_watts  # the default profile
        assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 2
        assert [(g.name, [(p.url, p.user) for p in g.pools]) for g in data.pools] == [
            (g.name, [(p.url, p.username) for p in g.pools]) for g in state.pools]
        assert data.is_mining is True and data.light_flashing is False and data.messages == []
        assert data.tuning_target is not None and data.tuning_target.target_mode == "default"


async def test_get_data_is_one_joined_request(luxminers: Start) -> None:
    fleet, session = await luxminers()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    sim.requests.clear()
    await backend.get_data()
    assert dict(sim.requests) == {f"4028:{c}": 1 for c in ("version", "config", "summary", "stats", "pools",
                                                           "groups", "devs", "fans", "power", "profiles", "temps",
                                                           "events")}
    sim.requests.clear()
    await backend.get_data([DataField.WATTAGE])
    assert dict(sim.requests) == {"4028:power": 1}


async def test_writes_need_a_session_and_controls_end_theirs(luxminers: Start) -> None:
    fleet, session = await luxminers()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    settings = session.settings
    with pytest.raises(MinerAPIError, match="Missing session id"):
        await rpc_call(ip, "rebootdevice", settings=settings)
    with pytest.raises(MinerAPIError, match="Invalid session id"):
        await rpc_call(ip, "curtail", "sleep", settings=settings)  # the action taken for a session id
    with pytest.raises(MinerAPIError, match="Invalid session id"):
        await rpc_call(ip, "curtail", "nosuchid,sleep", settings=settings)
    assert sim.state.mining is True

    assert await backend.set_fault_light(True) is True
    assert sim.state.extra["red_led"] == "blink"
    assert (await rpc_call(ip, "session", settings=settings))["SESSION"][0]["SessionID"] == ""  # logged off
    assert sim.requests["4028:logon"] == 1 and sim.requests["4028:logoff"] == 1

    # someone else holds the only session: the control says so and changes nothing
    held = (await rpc_call(ip, "logon", settings=settings))["SESSION"][0]["SessionID"]
    with pytest.raises(MinerAPIError, match="refused a session"):
        await backend.pause()
    assert sim.state.mining is True
    sim.state.extra["session_used"] = time.monotonic() - 61  # the other session lapses after a minute unused
    assert await backend.pause() is True and sim.state.mining is False
    with pytest.raises(MinerAPIError, match="Invalid session id"):
        await rpc_call(ip, "curtail", f"{held},wakeup", settings=settings)


async def test_pause_resume_and_fault_light(luxminers: Start) -> None:
    fleet, session = await luxminers(("Antminer S19 XP",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    normal = sim.inventory()["hashrate_ths"]
    assert await backend.pause() is True
    paused = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE, DataField.WATTAGE, DataField.MESSAGES])
    assert paused.is_mining is False and paused.hashrate is not None and paused.hashrate.value == 0
    assert paused.wattage == SLEEP_WATTS
    assert [(m.message, m.severity) for m in paused.messages] == [("[MINER] Miner is in Sleep mode.",
                                                                  MessageSeverity.INFO)]
    assert await backend.resume() is True
    resumed = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE])
    assert resumed.is_mining is True
    assert resumed.hashrate is not None and resumed.hashrate.value == pytest.approx(normal, rel=0.01)
    assert await backend.set_fault_light(True)
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False)
    assert sim.state.extra["red_led"] == "auto"
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is False


async def test_power_limit_and_tuning_by_profile(luxminers: Start) -> None:
    fleet, session = await luxminers(("Antminer S21",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    default_ths = sim.inventory()["hashrate_ths"]
    assert await backend.set_power_limit(3000) is True
    chosen = profile_for_watts(sim.profiles(), 3000)
    assert sim.state.extra["profile"] == chosen["Profile Name"] != "default"
    assert sim.state.extra["atm_enabled"] is True and sim.requests["4028:atmset"] == 2  # paused around the change
    data = await backend.get_data([DataField.WATTAGE_LIMIT, DataField.HASHRATE, DataField.TUNING_TARGET])
    assert data.wattage_limit == chosen["Watts"] and data.wattage_limit <= 3000
    assert data.hashrate is not None and data.hashrate.value < default_ths
    assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
    assert await backend.get_tuning_config() == TuningConfig.mode(chosen["Profile Name"])

    assert await backend.set_tuning_config(TuningConfig.mode("default")) is True
    assert await backend.get_tuning_config() == TuningConfig.mode("default")
    assert await backend.set_tuning_config(TuningConfig.hashrate(HashRate(value=150, unit="TH/s"))) is True
    assert sim.state.hashrate_ths < 150 * 1.03
    before = dict(sim.requests)
    with pytest.raises(ValueError, match="no profile 'turbo'"):
        await backend.set_tuning_config(TuningConfig.mode("turbo"))
    with pytest.raises(ValueError, match="or less"):
        await backend.set_power_limit(100)
    sent = {k: v - before.get(k, 0) for k, v in sim.requests.items() if v != before.get(k, 0)}
    assert sent == {"4028:profiles": 2}  # refused after reading the profiles, before any session or write


async def test_a_power_limit_rollout_verifies_against_the_profile_step(luxminers: Start) -> None:
    """A rollout reads the limit back: LuxOS holds the profile step at or below the request, so that step is what
    the read-back is checked against (asked 3000 W, a simulated S19j Pro holds its 520 MHz profile, 2846 W)."""
    from fleet.controls import PowerLimitControl

    fleet, session = await luxminers()
    ip, sim = only(fleet)
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None
    control = PowerLimitControl(watts=3000)
    assert await control.read_current(found.miner) == sim.state.model.nominal_watts
    await control.apply(found.miner)
    outcome = await control.verify(found.miner, time.time())
    held = profile_for_watts(sim.profiles(), 3000)["Watts"]
    assert (outcome.state, outcome.detail) == ("verified", f"the firmware's step for 3000 W: {held:g} W")
    assert held < 3000 and sim.state.power_limit == held
    sim.state.extra["profile"] = "default"  # changed behind the rollout's back: the read-back fails
    sim.state.power_limit = sim.state.model.nominal_watts
    assert (await control.verify(found.miner, time.time())).state == "failed"


async def test_pools_round_trip(luxminers: Start) -> None:
    fleet, session = await luxminers()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    new = [PoolGroup(name="main", quota=80, pools=[Pool(url="stratum+tcp://a.example.net:3333", username="w.1",
                                                        password="secret"),
                                                   Pool(url="stratum+ssl://b.example.net:443", username="w.1")]),
           PoolGroup(name="split", quota=20, pools=[Pool(url="stratum+tcp://c.example.net:700", username="w.2")])]
    assert await backend.set_pools_config(new) is True
    assert sim.state.pools == new  # passwords included: the writes carried them
    read = await backend.get_pools_config()
    assert [(g.name, g.quota, [(p.url, p.username) for p in g.pools]) for g in read] == [
        (g.name, g.quota, [(p.url, p.username) for p in g.pools]) for g in new]
    assert {p.password for g in read for p in g.pools} == {"x"}  # the pools reply shows no password
    data = await backend.get_data([DataField.POOLS, DataField.IS_MINING])
    assert [(g.name, g.quota) for g in data.pools] == [("main", 80), ("split", 20)] and data.is_mining is True

    sim.requests.clear()
    twice = [PoolGroup(name="a", pools=new[0].pools), PoolGroup(name="a", pools=new[1].pools)]
    with pytest.raises(ValueError, match="distinct"):
        await backend.set_pools_config(twice)
    with pytest.raises(ValueError, match="commas"):
        await backend.set_pools_config([PoolGroup(name="x,y", pools=new[1].pools)])
    with pytest.raises(ValueError, match="at least one"):
        await backend.set_pools_config([])
    assert sim.total_requests == 0 and sim.state.pools == new


async def test_fan_round_trip(luxminers: Start) -> None:
    fleet, session = await luxminers(("Antminer T21",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    auto_rpms = list(sim.state.fan_rpms)
    assert await backend.get_fan_config() == FanConfig.auto()
    assert await backend.set_fan_config(FanConfig.manual(60)) is True
    assert await backend.get_fan_config() == FanConfig.manual(60)
    assert [f.rpm for f in (await backend.get_data([DataField.FANS])).fans] == [3600] * 4
    assert await backend.set_fan_config(FanConfig.auto(idle_speed=35)) is True
    assert await backend.get_fan_config() == FanConfig.auto()
    assert sim.state.extra["power_off_speed"] == 35
    assert [f.rpm for f in (await backend.get_data([DataField.FANS])).fans] == auto_rpms
    with pytest.raises(UnsupportedControlError):
        await backend.set_fan_config(FanConfig.auto(target_temp=60))


async def test_restart_and_unsupported_controls(luxminers: Start) -> None:
    fleet, session = await luxminers()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.restart() is True
    await asyncio.sleep(0.15)
    down = await backend.get_data([DataField.UPTIME])
    assert down.uptime is None and down.errors
    await asyncio.sleep(sim.restart_seconds + 0.3)
    up = await backend.get_data([DataField.UPTIME])
    assert up.uptime is not None and up.uptime.total_seconds() <= 2
    for control in ("change_password", "read_logs", "factory_reset", "upgrade_firmware", "get_scaling_config",
                    "set_scaling_config"):
        assert not LuxOS.supports(control), control
    with pytest.raises(UnsupportedControlError):
        await backend.change_password("new")
    for control in ("restart", "pause", "resume", "set_fault_light", "set_power_limit", "get_pools_config",
                    "set_pools_config", "get_fan_config", "set_fan_config", "get_tuning_config",
                    "set_tuning_config"):
        assert LuxOS.supports(control), control


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_fault_modes_yield_errors_without_hanging(luxminers: Start, fault: Fault) -> None:
    fleet, session = await luxminers()
    ip, _ = only(fleet)
    backend = await _backend(session, ip)
    fleet.set_fault(ip, fault)
    started = time.monotonic()
    data = await asyncio.wait_for(backend.get_data(), 10)
    assert time.monotonic() - started < 6
    if fault is Fault.AUTH_FAILURE:  # reads need no session; every logon is refused
        assert data.errors == [] and data.hashrate is not None
        with pytest.raises(MinerAPIError, match="refused a session"):
            await backend.pause()
    else:
        assert data.errors and data.hashrate is None


async def test_mixed_scan_tells_luxos_from_stock() -> None:
    miners = []
    for i, (kind, name) in enumerate([(LuxOSSim, "Antminer S19j Pro"), (AntminerStockSim, "Antminer S19j Pro"),
                                      (LuxOSSim, "Antminer S21"), (AntminerStockSim, "Antminer S21")]):
        model = lookup_model("AntMiner", name)
        assert model is not None
        miners.append(kind.build(lo(f"127.101.250.{20 + i}"), model, random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.101.250.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)


# ===== (c) the independent clients against the simulator ===============================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


@pytest.mark.interop
async def test_pyasic_reads_every_model(luxminers: Start) -> None:
    """pyasic: `GET /` ("Luxor Firmware") or RPC version/devdetails ("LUXminer") identify; the model from RPC
    `version` Type; get_data joins summary+stats+power+config+profiles+fans+pools+version. Its LuxOS backend
    (0.79) returns None for MAC and its own hash rate (a misplaced `return None`), so the hash rate it reports
    is the sum of the boards' chain_rateN; its fault light is "RedLed is not off", so `auto` reads as lit."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await luxminers(ALL_MODELS)
    _real_ports(fleet)
    for ip, sim in fleet.miners.items():
        miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.make, data.firmware) == (inventory["make"], inventory["firmware"])
        assert norm(f"Antminer {data.model}") == inventory["model"]
        assert data.hashrate is not None
        assert float(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.wattage == round(sim.state.wattage) and data.wattage_limit == sim.state.power_limit
        assert data.fw_ver == inventory["firmware_version"]
        assert [f.speed for f in data.fans] == sim.state.fan_rpms
        assert data.mac is None  # see the docstring: pyasic never returns it for LuxOS


@pytest.mark.interop
async def test_pyasic_rs_reads_every_model(luxminers: Start) -> None:
    """pyasic-rs: RPC version ("LUXMINER") or `GET /` identify; the model from `version` Type; get_data reads
    version, config, stats, summary, pools, devs, fans, power, profiles, temps, events, and per board
    voltageget and healthchipget (board voltage, per-chip rates). Make "Antminer", firmware "LuxOS"."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await luxminers(ALL_MODELS)
    _real_ports(fleet)
    factory = RsFactory()
    for ip, sim in fleet.miners.items():
        miner = await factory.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert data.device_info.make.lower() == inventory["make"].lower()
        assert data.device_info.firmware == inventory["firmware"]
        assert norm(f"Antminer {data.device_info.model}") == inventory["model"]
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.mac == inventory["mac"] and data.firmware_version == inventory["firmware_version"]
        assert [b.serial_number for b in data.hashboards] == sim.state.extra["board_serials"]
        assert data.wattage == round(sim.state.wattage)
        assert [len(b.chips) for b in data.hashboards] == [sim.state.model.chips_per_board] * 3
        assert {b.voltage for b in data.hashboards} == {sim.profiles()[16]["Voltage"]}  # the default profile's


@pytest.mark.interop
async def test_interop_controls_change_the_simulator(luxminers: Start) -> None:
    """Both clients' controls land in the simulator's state. Both take the miner's current session when one
    exists (`session` first, `logon` otherwise) and neither logs off, so ours, polite, waits for it to lapse."""
    import pyasic
    from pyasic_rs import MinerFactory as RsFactory

    fleet, session = await luxminers()
    _real_ports(fleet)
    ip, sim = only(fleet)
    miner = await pyasic.get_miner(ip)
    assert await miner.fault_light_on() is True and sim.state.extra["red_led"] == "blink"
    assert await miner.stop_mining() is True and sim.state.mining is False
    assert await miner.resume_mining() is True and sim.state.mining is True
    rs_miner = await RsFactory().get_miner(ip)
    assert await rs_miner.set_fault_light(False) and sim.state.extra["red_led"] == "auto"
    assert await rs_miner.pause() and sim.state.mining is False
    assert await rs_miner.resume() and sim.state.mining is True
    assert sim.state.extra["session_id"] != ""  # left open by them
    backend = await _backend(session, ip)
    with pytest.raises(MinerAPIError, match="refused a session"):
        await backend.pause()
    sim.state.extra["session_used"] = time.monotonic() - 61
    assert await backend.pause() is True and sim.state.mining is False
