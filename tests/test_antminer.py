"""Antminer stock firmware: parsers on captured replies, the backend against the simulator over loopback,
and the simulator against the independent clients pyasic and pyasic-rs (marker `interop`).

Addresses: 127.81.0.0/16 only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from asicfleet._errors import AuthenticationError, MinerAPIError, MinerConnectionError, UnsupportedControlError
from asicfleet._session import CredentialRule, Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.antminer import AntminerStock, model_from_type
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import MessageSeverity
from asicfleet.discovery._identify import identify
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, SimFleet, make_sim_image
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.transport import HttpReply, PortMap, TransportSettings, decode_json
from tests.conftest import FleetFactory, fixture_bytes, lo

FIXTURE = ("antminer", "v2020")
ALL_MODELS = AntminerStockSim.models
REQUIRED_MODELS = ("Antminer S19 Pro", "Antminer S19j Pro", "Antminer S21")


def raw(name: str) -> bytes:
    return fixture_bytes(*FIXTURE, f"{name}.json")


def fixture_backend(model: str = "Antminer S19 Pro") -> AntminerStock:
    return AntminerStock(lo("127.81.0.1"), AntminerStock.device_info("AntMiner", model, "Stock"), Session())


def norm(model: str) -> str:
    """Model names compared the way the hardware table looks them up (case, spaces, make prefix)."""
    known = lookup_model("AntMiner", model)
    assert known is not None, f"{model!r} is not a known Antminer model"
    return known.name


# ===== (a) parsers on the captured v2020 replies =====================================================
def test_version_fixture() -> None:
    data = fixture_backend().parse_raw({"rpc:version": raw("version")})
    assert data.api_version == "3.1"
    assert data.firmware_version == "Tue Dec  6 16:12:30 CST 2022"  # CompileTime, without the web API
    assert model_from_type(decode_json(raw("version"))["VERSION"][0]["Type"]) == "Antminer S19 Pro"
    assert model_from_type("Antminer S19 Pro (vnish 1.2.6)") == "Antminer S19 Pro"
    assert data.errors == []


def test_summary_fixture() -> None:
    data = fixture_backend().parse_raw({"rpc:summary": raw("summary")})
    assert data.hashrate is not None
    assert data.hashrate.unit.value == "TH/s"
    assert data.hashrate.value == pytest.approx(110.56689)  # GHS 5s 110566.89
    assert data.uptime == timedelta(seconds=50474)
    assert data.errors == []


def test_stats_fixture() -> None:
    data = fixture_backend().parse_raw({"rpc:stats": raw("stats")})
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(110.0)
    assert [f.rpm for f in data.fans] == [6000, 5880, 5040, 5040]
    assert [f.position for f in data.fans] == [0, 1, 2, 3]
    boards = data.hashboards
    assert [b.position for b in boards] == [0, 1, 2]  # chain 4 is an empty slot
    assert [b.hashrate.value for b in boards if b.hashrate] == pytest.approx([37.6033, 35.53622, 37.42738])
    assert [b.working_chips for b in boards] == [114, 114, 114]
    assert [b.expected_chips for b in boards] == [114, 114, 114]
    assert [b.frequency for b in boards] == [525, 525, 525]
    # mean of the PCB sensors: 73-45-64-65, 47-50-65-66, 46-44-64-63
    assert [b.board_temperature for b in boards] == [61.75, 57.0, 54.25]
    assert all(b.active for b in boards)
    assert data.total_chips == 342 and data.expected_chips == 342
    # without summary, the hash rate and uptime come from stats
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(110.56689)
    assert data.uptime == timedelta(seconds=50474)
    assert data.errors == []


def test_stats_missing_comma_quirk_is_repaired() -> None:
    """Some bmminer builds write `}{` between the two STATS objects; the figures must survive it."""
    text = raw("stats").decode()
    broken = text.replace('"Type": "Antminer S19 Pro"\n    },\n    {', '"Type": "Antminer S19 Pro"\n    }{', 1)
    assert broken != text
    data = fixture_backend().parse_raw({"rpc:stats": broken.encode()})
    assert [b.working_chips for b in data.hashboards] == [114, 114, 114]
    assert [f.rpm for f in data.fans] == [6000, 5880, 5040, 5040]


def test_pools_fixture() -> None:
    data = fixture_backend().parse_raw({"rpc:pools": raw("pools")})
    assert len(data.pools) == 1
    pools = data.pools[0].pools
    assert [p.position for p in pools] == [0, 1, 2]
    assert {p.url for p in pools} == {"stratum+tcp://btc.global.luxor.tech:700"}
    assert {p.user for p in pools} == {"satokierepair.H04YK"}
    assert [p.accepted_shares for p in pools] == [4057, 0, 0]
    assert [p.rejected_shares for p in pools] == [11, 0, 0]
    assert [p.active for p in pools] == [True, False, False]
    assert [p.alive for p in pools] == [True, True, True]


def test_system_info_fixture() -> None:
    data = fixture_backend("Antminer S21").parse_raw({"web:get_system_info": raw("system_info"),
                                                      "rpc:version": raw("version")})
    assert data.mac == "02:55:97:22:3M:72"  # as the firmware wrote it
    assert data.hostname == "Antminer"
    assert data.serial_number == "THQING0BDJAB024NF"
    assert data.firmware_version == "FR-1.12(251009-S21)"  # the web's build name wins over CompileTime
    assert data.errors == []


def test_devs_fixture_is_not_a_hashrate_source() -> None:
    """The SoC device row says 0 MH/s while the miner hashes 110 TH/s: devs must not feed the hash rate."""
    devs = decode_json(raw("devs"))
    assert devs["DEVS"][0]["MHS 5s"] == 0.0 and devs["DEVS"][0]["Accepted"] == 4057
    data = fixture_backend().parse_raw({"rpc:devs": raw("devs")})
    assert data.hashrate is None and data.errors == []
    full = fixture_backend().parse_raw({"rpc:devs": raw("devs"), "rpc:summary": raw("summary")})
    assert full.hashrate is not None and full.hashrate.value == pytest.approx(110.56689)


def test_all_fixtures_together() -> None:
    names = ("version", "summary", "stats", "pools", "devs")
    data = fixture_backend().parse_raw({f"rpc:{n}": raw(n) for n in names}
                                       | {"web:get_system_info": raw("system_info")})
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(110.56689)
    assert data.average_temperature == pytest.approx((61.75 + 57.0 + 54.25) / 3, abs=0.01)
    assert data.wattage is None and data.efficiency is None  # the stock firmware reports no power
    assert data.errors == []


def test_rpc_error_reply_is_recorded() -> None:
    refused = b'{"STATUS":[{"STATUS":"E","When":1,"Code":14,"Msg":"Invalid command","Description":"cgminer 1.0.0"}]}'
    data = fixture_backend().parse_raw({"rpc:summary": refused})
    assert data.hashrate is None
    assert any("Invalid command" in e for e in data.errors)


def test_web_summary_messages_and_conf_parsing() -> None:
    summary = {"SUMMARY": [{"status": [{"type": "rate", "status": "s", "code": 0, "msg": ""},
                                       {"type": "fans", "status": "e", "code": 4, "msg": "Fan lost"},
                                       {"type": "temp", "status": "w", "code": 7, "msg": "Hot intake"}]}]}
    conf = {"bitmain-work-mode": "1", "bitmain-fan-ctrl": True, "bitmain-fan-pwm": "55", "pools": []}
    data = fixture_backend().extract({"web:summary": summary, "web:get_miner_conf": conf})
    assert [(m.code, m.message, m.severity) for m in data.messages] == [
        (4, "Fan lost", MessageSeverity.ERROR), (7, "Hot intake", MessageSeverity.WARNING)]
    assert data.is_mining is False
    assert data.tuning_target is not None and data.tuning_target.target_mode == "sleep"


# ===== identification signals =========================================================================
def _version_probe(text: str) -> Probe:
    return Probe(ip=lo("127.81.0.1"), rpc={"version": {"VERSION": [{"Type": text}], "STATUS": []}})


def test_matches_signals() -> None:
    assert AntminerStock.matches(_version_probe("Antminer S19 Pro"))
    challenge = {"www-authenticate": 'Digest realm="antMiner Configuration", nonce="1", qop="auth"'}
    web_only = Probe(ip=lo("127.81.0.1"), web=HttpReply(401, challenge, b""),
                     rpc={"version": MinerConnectionError("refused")})
    assert AntminerStock.matches(web_only)
    # the same hardware under another firmware is not stock
    assert not AntminerStock.matches(_version_probe("Antminer S19 Hiveon"))
    lux = Probe(ip=lo("127.81.0.1"), rpc={"version": {"VERSION": [{"LUXminer": "2024", "Type": "Antminer S19"}]}})
    assert not AntminerStock.matches(lux)
    hammer = Probe(ip=lo("127.81.0.1"),
                   web=HttpReply(401, {"www-authenticate": 'Digest realm="blackMiner Config"'}, b""))
    assert not AntminerStock.matches(hammer)
    assert not AntminerStock.matches(Probe(ip=lo("127.81.0.1")))
    assert backend_for("antminer") is AntminerStock and AntminerStock in BACKENDS


# ===== (b) against the simulator over loopback ==========================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
def antminers(family_miners: Callable[..., Start]) -> Start:
    """`fleet, session = await antminers(models, **settings)`: one simulated miner per model on its own 127.81.N.x block
    (conftest's `family_miners`)."""
    return family_miners(AntminerStockSim, "127.81", REQUIRED_MODELS)


def sims(fleet: SimFleet) -> dict[str, AntminerStockSim]:
    found = {ip: m for ip, m in fleet.miners.items() if isinstance(m, AntminerStockSim)}
    assert len(found) == len(fleet.miners)
    return found


async def _backend(fleet: SimFleet, session: Session, ip: str) -> AntminerStock:
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None, found.error
    backend = found.miner.backend
    assert isinstance(backend, AntminerStock)
    return backend


async def test_identify_every_simulated_model(antminers: Start) -> None:
    fleet, session = await antminers(ALL_MODELS)
    for ip, sim in sims(fleet).items():
        backend = await _backend(fleet, session, ip)
        info = backend.device
        assert (info.make, info.model, info.firmware) == ("AntMiner", sim.model_name, "Stock")
        assert info.hardware.board_count == 3 and info.hardware.chips_per_board == sim.state.model.chips_per_board


async def test_identify_through_the_web_api_when_rpc_is_silent(antminers: Start) -> None:
    fleet, session = await antminers(("Antminer S19j Pro",))
    ip = next(iter(fleet.miners))
    challenge = {"www-authenticate": 'Digest realm="antMiner Configuration", nonce="1", qop="auth"'}
    probe = Probe(ip=ip, web=HttpReply(401, challenge, b""), rpc={"version": MinerConnectionError("refused")})
    assert AntminerStock.matches(probe)
    info = await AntminerStock.identify(probe, session)
    assert info is not None and info.model == "Antminer S19j Pro"


async def test_get_data_matches_the_simulator_state(antminers: Start) -> None:
    fleet, session = await antminers(REQUIRED_MODELS)
    for ip, sim in sims(fleet).items():
        backend = await _backend(fleet, session, ip)
        data = await backend.get_data()
        state, inventory = sim.state, sim.inventory()
        assert data.errors == []
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(data.hashrate.value,
                                                                                           rel=0.001)
        assert data.expected_hashrate is not None and data.expected_hashrate.value == state.model.nominal_ths
        assert [b.board_temperature for b in data.hashboards] == [round(t) for t in state.board_temps]
        assert [b.serial_number for b in data.hashboards] == state.extra["board_serials"]
        assert [b.working_chips for b in data.hashboards] == [state.model.chips_per_board] * 3
        assert [f.rpm for f in data.fans] == state.fan_rpms
        assert (data.mac, data.hostname, data.serial_number) == (state.mac, state.hostname, state.serial)
        assert data.firmware_version == state.firmware_version == inventory["firmware_version"]
        assert data.api_version == "3.1"
        assert data.control_board_version == sim.build_info.subtype
        assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 2
        group = data.pools[0]
        assert [(p.url, p.user) for p in group.pools] == [(p.url, p.username) for p in state.pools[0].pools]
        assert group.pools[0].accepted_shares == state.accepted
        assert data.is_mining is True and data.light_flashing is False
        assert data.tuning_target is not None and data.tuning_target.target_mode == "normal"
        assert data.messages == []
        assert data.wattage is None  # stock firmware reports no power draw


async def test_sim_from_shared_fleet_fixture(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.81.200.0/24"), 4, ["antminer"], seed=7)
    session = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), read_timeout=2.0))
    try:
        for item in fleet.inventory():
            found = await identify(item["ip"], session, timeout=5)
            assert found.miner is not None
            assert (found.miner.make, found.miner.model) == (item["make"], item["model"])
            data = await found.miner.get_data(include=[DataField.HASHRATE, DataField.MAC])
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(item["hashrate_ths"], rel=0.01)
            assert data.mac == item["mac"]
    finally:
        await session.aclose()


async def test_get_data_sends_each_command_once(antminers: Start) -> None:
    fleet, session = await antminers(("Antminer S19 Pro",))
    ip, sim = next(iter(sims(fleet).items()))
    backend = await _backend(fleet, session, ip)
    sim.requests.clear()
    await backend.get_data()
    rpc = {k: v for k, v in sim.requests.items() if k.startswith("4028:")}
    assert rpc == {"4028:version": 1, "4028:stats": 1, "4028:pools": 1}  # stats holds summary's hash rate too
    cgi = ("get_system_info", "get_miner_conf", "get_blink_status", "summary", "stats", "miner_type")
    answered = {k: v for k, v in sim.requests.items() if k.startswith("auth:")}
    assert answered == {f"auth:GET /cgi-bin/{c}.cgi": 1 for c in cgi}
    # the challenge identification's probe saw is answered at once: no CGI call earns a 401 first
    assert {k: v for k, v in sim.requests.items() if k.startswith("80:")} == {f"80:GET /cgi-bin/{c}.cgi": 1
                                                                             for c in cgi}
    # a narrower read sends only what it needs
    sim.requests.clear()
    await backend.get_data([DataField.HASHRATE])
    assert dict(sim.requests) == {"4028:summary": 1}


async def test_pools_round_trip_leaves_other_settings(antminers: Start) -> None:
    fleet, session = await antminers(("Antminer S19j Pro",))
    ip, sim = next(iter(sims(fleet).items()))
    backend = await _backend(fleet, session, ip)
    await backend.set_fan_config(FanConfig.manual(70))
    new = [PoolGroup(pools=[Pool(url=f"stratum+tcp://p{i}.example.net:{3330 + i}", username=f"w.{i}", password="p")
                            for i in range(3)])]
    assert await backend.set_pools_config(new) is True
    assert await backend.get_pools_config() == new
    data = await backend.get_data([DataField.POOLS, DataField.TUNING_TARGET])
    assert [p.url for p in data.pools[0].pools] == [p.url for p in new[0].pools]
    assert await backend.get_fan_config() == FanConfig.manual(70)  # untouched
    assert data.tuning_target is not None and data.tuning_target.target_mode == "normal"
    # more than the firmware's three slots is refused before anything is sent
    too_many = [PoolGroup(pools=new[0].pools), PoolGroup(name="b", pools=new[0].pools[:1])]
    sim.requests.clear()
    with pytest.raises(ValueError, match="at most 3"):
        await backend.set_pools_config(too_many)
    assert sim.total_requests == 0
    assert await backend.get_pools_config() == new


async def test_fan_round_trip(antminers: Start) -> None:
    fleet, session = await antminers(("Antminer S21",))
    ip, sim = next(iter(sims(fleet).items()))
    backend = await _backend(fleet, session, ip)
    pools_before = await backend.get_pools_config()
    auto_rpms = list(sim.state.fan_rpms)
    assert await backend.set_fan_config(FanConfig.manual(60)) is True
    assert await backend.get_fan_config() == FanConfig.manual(60)
    data = await backend.get_data([DataField.FANS])
    assert [f.rpm for f in data.fans] == [3600] * 4
    assert await backend.get_pools_config() == pools_before
    assert await backend.set_fan_config(FanConfig.auto()) is True
    assert await backend.get_fan_config() == FanConfig.auto()
    assert [f.rpm for f in (await backend.get_data([DataField.FANS])).fans] == auto_rpms
    with pytest.raises(UnsupportedControlError):
        await backend.set_fan_config(FanConfig.auto(target_temp=60))


async def test_fault_light_pause_resume_and_tuning(antminers: Start) -> None:
    fleet, session = await antminers(("Antminer S19 Pro",))
    ip, sim = next(iter(sims(fleet).items()))
    backend = await _backend(fleet, session, ip)
    normal = sim.inventory()["hashrate_ths"]
    assert await backend.set_fault_light(True)
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False)
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is False

    assert await backend.pause()
    paused = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE, DataField.TUNING_TARGET])
    assert paused.is_mining is False and paused.hashrate is not None and paused.hashrate.value == 0
    assert paused.tuning_target is not None and paused.tuning_target.target_mode == "sleep"
    assert await backend.resume()
    resumed = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE])
    assert resumed.is_mining is True
    assert resumed.hashrate is not None and resumed.hashrate.value == pytest.approx(normal, rel=0.01)

    pools = await backend.get_pools_config()
    assert await backend.set_tuning_config(TuningConfig.mode("low"))
    assert await backend.get_tuning_config() == TuningConfig.mode("low")
    low = await backend.get_data([DataField.HASHRATE])
    assert low.hashrate is not None
    assert low.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
    assert low.hashrate.value < normal * 0.8
    assert await backend.get_pools_config() == pools
    assert await backend.set_tuning_config(TuningConfig.mode("normal"))
    assert await backend.get_tuning_config() == TuningConfig.mode("normal")
    with pytest.raises(UnsupportedControlError):
        await backend.set_tuning_config(TuningConfig.power(3000))
    with pytest.raises(ValueError, match="unknown Antminer work mode"):
        await backend.set_tuning_config(TuningConfig.mode("turbo"))


async def test_unsupported_controls(antminers: Start) -> None:
    fleet, session = await antminers(("Antminer S21",))
    backend = await _backend(fleet, session, next(iter(fleet.miners)))
    for control in ("set_power_limit", "get_scaling_config", "set_scaling_config"):
        assert not AntminerStock.supports(control)
    with pytest.raises(UnsupportedControlError):
        await backend.set_power_limit(3000)
    with pytest.raises(UnsupportedControlError):
        await backend.get_scaling_config()
    for control in ("restart", "pause", "resume", "set_fault_light", "get_pools_config", "set_pools_config",
                    "get_fan_config", "set_fan_config", "get_tuning_config", "set_tuning_config",
                    "change_password", "read_logs", "factory_reset", "upgrade_firmware"):
        assert AntminerStock.supports(control), control


async def test_change_password_logs_and_factory_reset(antminers: Start) -> None:
    fleet, session = await antminers(("Antminer S19j Pro",))
    ip, sim = next(iter(sims(fleet).items()))
    backend = await _backend(fleet, session, ip)
    assert await backend.change_password("n3w-secret") is True
    assert sim.state.password == "n3w-secret"
    assert (await backend.get_data([DataField.MAC])).mac == sim.state.mac  # the session uses the new login
    # a fresh session knowing only the default login is refused; one told the new password is let in
    stranger = Session(settings=session.settings)
    told = Session(settings=session.settings)
    told.credentials.add(CredentialRule(family="antminer", passwords=["n3w-secret"]))
    try:
        refused = await AntminerStock(ip, backend.device, stranger).get_data([DataField.MAC, DataField.HASHRATE])
        assert refused.mac is None and any("refused the login" in e for e in refused.errors)
        assert refused.hashrate is not None  # the RPC needs no login
        assert (await AntminerStock(ip, backend.device, told).get_data([DataField.MAC])).mac == sim.state.mac
        with pytest.raises(AuthenticationError):
            await AntminerStock(ip, backend.device, stranger).change_password("other")
    finally:
        await stranger.aclose()
        await told.aclose()

    log = await backend.read_logs()
    assert sim.model_name in log and "chain[2]" in log

    assert await backend.factory_reset() is True
    assert await backend.get_pools_config() == []
    assert await backend.get_fan_config() == FanConfig.auto()
    data = await backend.get_data([DataField.HASHRATE, DataField.POOLS])
    assert data.pools[0].pools == [] and data.hashrate is not None and data.hashrate.value == 0


async def test_restart_and_firmware_upgrade(antminers: Start) -> None:
    fleet, session = await antminers(("Antminer S21",))
    ip, sim = next(iter(sims(fleet).items()))
    backend = await _backend(fleet, session, ip)
    assert await backend.restart() is True
    await asyncio.sleep(0.15)
    down = await backend.get_data([DataField.UPTIME])
    assert down.uptime is None and down.errors  # rebooting: nothing answers
    await asyncio.sleep(sim.restart_seconds + 0.3)
    up = await backend.get_data([DataField.UPTIME])
    assert up.uptime is not None and up.uptime.total_seconds() <= 2

    with pytest.raises(MinerAPIError, match="invalid firmware image"):  # the miner checks what it is sent
        await backend.upgrade_firmware(b"\xab" * 4096, "random.bmu")
    with pytest.raises(MinerAPIError, match="not this"):
        await backend.upgrade_firmware(make_sim_image("2099", "AntMiner", ["Antminer S19"]), "s19.bmu")
    image = make_sim_image("2099-01-01", "AntMiner", ["Antminer S21"])
    assert await backend.upgrade_firmware(image, "Antminer-S21-release.bmu") is True
    assert sim.state.extra["upgrades"][-1]["filename"] == "Antminer-S21-release.bmu"
    assert sim.state.extra["upgrades"][-1]["bytes"] == len(image)
    await asyncio.sleep(sim.restart_seconds + 0.4)
    after = await backend.get_data([DataField.HASHRATE, DataField.FIRMWARE_VERSION])
    assert after.hashrate is not None and after.firmware_version == "2099-01-01"


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_fault_modes_yield_errors_without_hanging(antminers: Start, fault: Fault) -> None:
    fleet, session = await antminers(("Antminer S19 Pro",))
    ip = next(iter(fleet.miners))
    backend = await _backend(fleet, session, ip)
    fleet.set_fault(ip, fault)
    started = time.monotonic()
    data = await asyncio.wait_for(backend.get_data(), 10)  # each failed command is recorded, not raised
    assert time.monotonic() - started < 6
    assert data.errors, f"{fault}: no error recorded"
    if fault is Fault.AUTH_FAILURE:
        assert data.hashrate is not None and data.mac is None  # RPC still reads; the web refuses every login
        assert len(data.hashboards) == 3 and all(b.serial_number is None for b in data.hashboards)  # RPC only
        assert all("refused the login" in e for e in data.errors if e.startswith("web:"))
    else:
        assert data.hashrate is None


# ===== (c) the independent clients against the simulator ===============================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


@pytest.mark.interop
async def test_pyasic_reads_every_model(antminers: Start) -> None:
    """pyasic: web `GET /` (401 realm antMiner) and RPC version/devdetails identify; the model comes from
    RPC `version` or `get_system_info.cgi`; get_data reads RPC version/summary/stats/pools and the CGI
    scripts get_system_info, get_miner_conf, get_blink_status, summary and stats."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await antminers(ALL_MODELS)
    _real_ports(fleet)
    for ip, sim in sims(fleet).items():
        miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.make, data.firmware) == (inventory["make"], inventory["firmware"])
        assert norm(str(data.model)) == inventory["model"]
        assert data.hashrate is not None
        assert float(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.mac == inventory["mac"] and data.hostname == inventory["hostname"]
        assert [f.speed for f in data.fans] == sim.state.fan_rpms
        assert [b.serial_number for b in data.hashboards] == sim.state.extra["board_serials"]


@pytest.mark.interop
async def test_pyasic_rs_reads_every_model(antminers: Start) -> None:
    """pyasic-rs: RPC version + devdetails and `GET /` identify; the model from `miner_type.cgi`, the
    backend generation from `summary.cgi` INFO.CompileTime; get_data reads RPC version/stats/summary/pools
    (and stats with new_api) and the CGI scripts get_system_info, get_blink_status, get_miner_conf,
    summary, miner_type. It reports make "Antminer" and firmware "AntMiner Stock"."""
    from pyasic_rs import MinerFactory

    fleet, _ = await antminers(ALL_MODELS)
    _real_ports(fleet)
    factory = MinerFactory()
    for ip, sim in sims(fleet).items():
        miner = await factory.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert data.device_info.make.lower() == inventory["make"].lower()
        assert "stock" in data.device_info.firmware.lower()
        assert norm(data.device_info.model) == inventory["model"]
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.mac == inventory["mac"] and data.serial_number == inventory["serial"]
        assert data.firmware_version == inventory["firmware_version"]
        assert [b.board_temperature for b in data.hashboards] == [round(t) for t in sim.state.board_temps]


@pytest.mark.interop
async def test_interop_controls_change_the_simulator(antminers: Start) -> None:
    """Both clients' controls land in the simulator's state: fault light, sleep/normal mode, fan."""
    import pyasic
    from pyasic_rs import FanConfig as RsFanConfig
    from pyasic_rs import MinerFactory

    fleet, _ = await antminers(("Antminer S19 Pro",))
    _real_ports(fleet)
    ip, sim = next(iter(sims(fleet).items()))
    miner = await pyasic.get_miner(ip)
    assert await miner.fault_light_on() is True and sim.state.fault_light is True
    assert await miner.stop_mining() and sim.state.mining is False and sim.work_mode == 1
    assert await miner.resume_mining() and sim.state.mining is True and sim.work_mode == 0
    rs_miner = await MinerFactory().get_miner(ip)
    assert await rs_miner.set_fault_light(False) and sim.state.fault_light is False
    assert await rs_miner.set_fan_config(RsFanConfig.manual(45)) and sim.state.fan == FanConfig.manual(45)
    assert await rs_miner.pause() and sim.state.mining is False
    assert await rs_miner.resume() and sim.state.mining is True
    pools = await rs_miner.get_pools_config()
    assert [str(p.url) for p in pools[0].pools] == [p.url for p in sim.state.pools[0].pools]
