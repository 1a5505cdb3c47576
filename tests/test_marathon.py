"""Marathon MaraFW (KaonSu) on Antminer hardware: parsers on restated replies, the backend against the simulator
over loopback (every control applied and checked on the simulator), identification beside stock Antminer, a
mixed scan, and pyasic / pyasic-rs against the simulator (marker `interop`).

Addresses: 127.185.0.0/16 (lo), 127.187.0.0/16 for the mixed scans. Replies: tests/fixtures/marathon (README).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from asicfleet import MinerFactory
from asicfleet._errors import AuthenticationError, MinerConnectionError, MinerTimeoutError, UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.marathon import (
    Marathon,
    group_percents,
    mode_before_sleep,
    model_from_version,
    pool_groups_from,
    pools_payload,
)
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import HashRate, MessageSeverity
from asicfleet.discovery._identify import identify
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.marathon import SLEEP_WATTS, MarathonSim
from asicfleet.transport import HttpReply, PortMap
from tests.conftest import lo, only_miner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "marathon"
WEB = ("brief", "overview", "network_config", "hashboards", "fans", "pools", "event_chart", "locate_miner",
       "miner_config")


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture_backend() -> Marathon:
    return Marathon(lo("127.185.0.1"), Marathon.device_info("AntMiner", "Antminer S19 XP", "MaraFW"), Session())


# ===== parsers on the restated replies ===================================================================
def test_every_reply_parses_into_the_fields() -> None:
    data = fixture_backend().parse_raw({f"web:{n}": raw(n) for n in WEB} | {"rpc:version": raw("rpc_version")})
    assert data.errors == []
    assert (data.mac, data.hostname, data.firmware_version, data.api_version) == (
        "02:18:25:30:BB:1D", "marathon-3-10", "1.5.2", "3.7")
    assert data.control_board_version == "xilinx_7007"
    assert data.serial_number is None  # MaraFW's API names no miner serial number
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(137.603)  # TH/s as written
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(141.0)  # GH/s
    assert data.wattage == pytest.approx(2946.9) and data.uptime == timedelta(seconds=2353489)
    assert data.wattage_limit is None  # the Stock work mode has no power target
    assert data.tuning_target is not None and data.tuning_target.target_mode == "Stock"
    boards = data.hashboards
    assert [b.position for b in boards] == [0, 1, 2]
    assert [b.hashrate.value for b in boards if b.hashrate] == pytest.approx([45.86767, 45.86767, 45.86766])
    assert [b.board_temperature for b in boards] == [72.0, 56.0, 70.0]  # mean of the four PCB sensors
    assert (boards[0].intake_temperature, boards[0].outlet_temperature) == (73.0, 87.0)  # chip sensors
    assert [b.serial_number for b in boards] == ["MGNZGEDP73W55ZVRM", "RFV97X4UEH82LXK72", "CEWXY75EFT6EDV4U0"]
    assert {(b.working_chips, b.expected_chips, b.frequency, b.voltage) for b in boards} == {(110, 110, 500, 13.4)}
    assert [f.rpm for f in data.fans] == [5080, 5740, 4330, 4200]
    assert [(p.position, p.user, p.accepted_shares, p.active, p.alive) for p in data.pools[0].pools] == [
        (0, "farm.3x10", 75830, True, True), (1, "farm.3x10", 0, False, True)]
    assert [(m.message, m.severity, m.timestamp) for m in data.messages] == [
        ("Fan 2 speed low", MessageSeverity.WARNING, 1764748800)]
    assert data.is_mining is True and data.light_flashing is False
    assert model_from_version(json.loads(raw("rpc_version"))) == "Antminer S19 XP"


def test_config_helpers() -> None:
    config = json.loads(raw("miner_config"))
    assert pool_groups_from(config) == [PoolGroup(name="default", quota=100, pools=[
        Pool(url="stratum+tcp://pool.example.com:3333", username="farm.3x10", password="x"),
        Pool(url="stratum+tcp://backup.example.com:3333", username="farm.3x10", password="x")])]
    # pyasic writes pools without a gid and without pool-group: one group
    bare = {"pools": [{"url": "stratum+tcp://a.example:3333", "user": "w", "pass": ""}]}
    assert [(g.name, g.quota, len(g.pools)) for g in pool_groups_from(bare)] == [("default", 100, 1)]
    assert group_percents([PoolGroup(quota=1, pools=[Pool(url="stratum+tcp://a.b:1", username="u")])] * 3) == [
        34, 33, 33]
    with pytest.raises(ValueError, match="at most 3"):
        pools_payload([PoolGroup(pools=[Pool(url="stratum+tcp://a.b:1", username="u")])] * 4)
    history = [{"t1": [{"type": "update", "path": ["Mode", "WorkModeSelector"], "from": "Auto", "to": "Sleep"}]},
               {"t2": [{"type": "update", "path": ["Mode", "WorkModeSelector"], "from": "Sleep", "to": "Auto"}]},
               {"t3": [{"type": "update", "path": ["Mode", "WorkModeSelector"], "from": "Stock", "to": "Sleep"}]}]
    assert mode_before_sleep(history) == "Stock" and mode_before_sleep([]) is None


def test_a_refused_or_malformed_reply_is_an_error_not_a_crash() -> None:
    data = fixture_backend().parse_raw({"web:brief": b"<html>404</html>", "web:fans": b'{"fans": "none"}'})
    assert data.hashrate is None and data.fans == [] and data.errors


# ===== identification signals ============================================================================
def _probe(version: dict[str, Any] | Exception | None, web: HttpReply | None) -> Probe:
    return Probe(ip=lo("127.185.0.1"), web=web, rpc={} if version is None else {"version": version})


def test_matches_signals() -> None:
    mara = json.loads(raw("rpc_version"))
    realm = HttpReply(401, {"www-authenticate": 'Digest realm="antMiner Configuration", qop="auth"'}, b"")
    with_algorithm = HttpReply(401, {"www-authenticate": 'Digest realm="antMiner Configuration"',
                                     "algorithm": "MD5"}, b"")
    stock = {"STATUS": [{"STATUS": "S", "Description": "cgminer 1.0.0"}], "VERSION": [{"Type": "Antminer S19"}]}
    assert Marathon.matches(_probe(mara, realm)) and not AntminerStock.matches(_probe(mara, realm))
    assert not Marathon.matches(_probe(stock, realm))  # an answering stock RPC: no web request for MaraFW
    assert Marathon.matches(_probe(MinerConnectionError("refused"), with_algorithm))
    assert Marathon.matches(_probe(MinerConnectionError("refused"), realm))  # asked in identify()
    assert not Marathon.matches(_probe(MinerTimeoutError("timed out"), realm))  # no extra request on a sick host
    assert Marathon.matches(_probe(MinerTimeoutError("timed out"), with_algorithm))
    assert not Marathon.matches(_probe(None, HttpReply(200, {}, b"<title>Luxor Firmware</title>")))
    assert backend_for("marathon") is Marathon and BACKENDS.index(Marathon) < BACKENDS.index(AntminerStock)


# ===== against the simulator ===============================================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
def maraminers(family_miners: Callable[..., Start]) -> Start:
    """: one simulated miner per model on its own 127.185.N.x block (conftest's family_miners)."""
    return family_miners(MarathonSim, "127.185", ("Antminer S19j Pro",))


def only(fleet: SimFleet) -> tuple[str, MarathonSim]:
    return only_miner(fleet, MarathonSim)


async def _backend(session: Session, ip: str) -> Marathon:
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None, found.error
    assert isinstance(found.miner.backend, Marathon)
    return found.miner.backend


async def test_identify_every_model_with_the_probe_alone(maraminers: Start) -> None:
    fleet, session = await maraminers(MarathonSim.models)
    for ip, sim in fleet.miners.items():
        sim.requests.clear()
        info = (await _backend(session, ip)).device
        assert (info.make, info.model, info.firmware) == ("AntMiner", sim.model_name, "MaraFW")
        assert info.hardware.chips_per_board == sim.state.model.chips_per_board
        assert dict(sim.requests) == {"80:GET /": 1, "4028:version": 1}  # nothing beyond the probe


async def test_identified_by_the_web_api_when_the_rpc_is_silent(maraminers: Start) -> None:
    fleet, session = await maraminers()
    ip, sim = only(fleet)
    web = HttpReply(401, {"www-authenticate": 'Digest realm="antMiner Configuration"'}, b"")
    probe = Probe(ip=ip, web=web, rpc={"version": MinerConnectionError("refused")})
    info = await Marathon.identify(probe, session)
    assert info is not None and info.model == sim.model_name and sim.requests["auth:GET /kaonsu/v1/overview"] == 1


async def test_get_data_matches_the_simulator(maraminers: Start) -> None:
    fleet, session = await maraminers(("Antminer S19 Pro", "Antminer S21"))
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, MarathonSim)
        backend = await _backend(session, ip)
        sim.requests.clear()
        data = await backend.get_data()
        s, inventory = sim.state, sim.inventory()
        assert data.errors == []
        assert data.hashrate is not None and data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=1e-3)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(data.hashrate.value,
                                                                                           rel=1e-3)
        assert data.expected_hashrate is not None and data.expected_hashrate.value == s.model.nominal_ths
        assert [b.board_temperature for b in data.hashboards] == [round(t) for t in s.board_temps]
        assert [b.serial_number for b in data.hashboards] == s.extra["board_serials"]
        assert [f.rpm for f in data.fans] == s.fan_rpms
        assert (data.mac, data.hostname, data.firmware_version) == (s.mac, s.hostname, s.firmware_version)
        assert data.wattage == s.wattage and data.uptime is not None
        assert abs(data.uptime.total_seconds() - s.uptime) <= 2
        assert [(p.url, p.user) for p in data.pools[0].pools] == [(p.url, p.username) for p in s.pools[0].pools]
        assert data.is_mining is True and data.light_flashing is False and data.messages == []
        # each endpoint once (the first alone, to learn the digest challenge)
        assert {k for k in sim.requests if k.startswith("auth:")} == {f"auth:GET /kaonsu/v1/{n}" for n in WEB}
        assert all(sim.requests[f"auth:GET /kaonsu/v1/{n}"] == 1 for n in WEB)
        assert sum(v for k, v in sim.requests.items() if k.startswith("80:")) == len(WEB) + 1  # one 401 only


async def test_pause_resume_restores_the_mode_it_left(maraminers: Start) -> None:
    fleet, session = await maraminers(("Antminer S19 XP",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.set_power_limit(2500) is True
    assert sim.work_mode == "Auto" and sim.state.power_limit == 2500
    assert await backend.pause() is True
    assert sim.work_mode == "Sleep" and sim.state.mining is False
    paused = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE, DataField.WATTAGE, DataField.MESSAGES])
    assert paused.is_mining is False and paused.hashrate is not None and paused.hashrate.value == 0
    assert paused.wattage == SLEEP_WATTS and [m.message for m in paused.messages] == ["Miner is sleeping"]
    assert await backend.resume() is True
    assert sim.work_mode == "Auto" and sim.state.mining is True  # not Stock: the history said Auto
    assert sim.config["mode"]["concorde"]["power-target"] == 2500  # the rest of the config came back untouched
    assert await backend.resume() is True and sim.requests["auth:GET /kaonsu/v1/log"] == 1  # awake: nothing sent


async def test_power_limit_and_tuning(maraminers: Start) -> None:
    fleet, session = await maraminers(("Antminer S21",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    full = sim.inventory()["hashrate_ths"]
    assert await backend.set_power_limit(2800.4) is True
    data = await backend.get_data([DataField.WATTAGE_LIMIT, DataField.TUNING_TARGET, DataField.HASHRATE])
    assert data.wattage_limit == 2800 == sim.state.power_limit == await backend.power_limit_held(2800.4)
    assert data.tuning_target is not None and data.tuning_target.target_watts == 2800
    assert data.hashrate is not None and data.hashrate.value < full
    assert await backend.get_tuning_config() == TuningConfig.power(2800)
    assert await backend.set_tuning_config(TuningConfig.hashrate(HashRate(value=150, unit="TH/s"))) is True
    assert sim.config["mode"]["concorde"] | {"power-target": 0} == {"mode-select": "Hashrate", "hash-target": 150,
                                                                     "power-target": 0}
    assert sim.state.hashrate_ths == pytest.approx(150, rel=0.01)
    assert await backend.get_tuning_config() == TuningConfig.hashrate(HashRate(value=150, unit="TH/s"))
    assert await backend.set_tuning_config(TuningConfig.mode("Stock")) is True and sim.work_mode == "Stock"
    before = sim.total_requests
    with pytest.raises(ValueError, match="Stock"):
        await backend.set_tuning_config(TuningConfig.mode("turbo"))
    with pytest.raises(ValueError, match="> 0 W"):
        await backend.set_power_limit(0)
    assert sim.total_requests == before


async def test_a_power_limit_rollout_verifies_its_read_back(maraminers: Start) -> None:
    """A rollout's power-limit step on MaraFW: the previous value (none: the Stock mode has no target), the write,
    and the read-back against the whole watts MaraFW stores."""
    from fleet.controls import PowerLimitControl

    fleet, session = await maraminers()
    ip, sim = only(fleet)
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None
    control = PowerLimitControl(watts=2900.4)
    await control.apply(found.miner)
    outcome = await control.verify(found.miner, time.time())
    assert outcome.state == "verified" and sim.state.power_limit == 2900
    sim.state.extra["config"]["mode"]["concorde"]["power-target"] = 3000  # changed behind the rollout's back
    sim._apply_config()
    assert (await control.verify(found.miner, time.time())).state == "failed"


async def test_pools_round_trip(maraminers: Start) -> None:
    fleet, session = await maraminers()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    new = [PoolGroup(name="main", quota=3, pools=[Pool(url="stratum+tcp://a.example.net:3333", username="w.1",
                                                       password="secret"),
                                                  Pool(url="stratum+ssl://b.example.net:443", username="w.1")]),
           PoolGroup(name="split", quota=1, pools=[Pool(url="stratum+tcp://c.example.net:700", username="w.2")])]
    assert await backend.set_pools_config(new) is True
    assert [(g.name, g.quota, g.pools) for g in sim.state.pools] == [("main", 75, new[0].pools),
                                                                    ("split", 25, new[1].pools)]
    assert await backend.get_pools_config() == [PoolGroup(name="main", quota=75, pools=new[0].pools),
                                                PoolGroup(name="split", quota=25, pools=new[1].pools)]
    data = await backend.get_data([DataField.POOLS])
    assert [p.url for p in data.pools[0].pools] == [p.url for g in new for p in g.pools]
    before = sim.total_requests
    with pytest.raises(ValueError, match="at least one"):
        await backend.set_pools_config([])
    assert sim.total_requests == before


async def test_fan_fault_light_and_restart(maraminers: Start) -> None:
    fleet, session = await maraminers(("Antminer T21",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    auto_rpms = list(sim.state.fan_rpms)
    assert await backend.get_fan_config() == FanConfig.auto()
    assert await backend.set_fan_config(FanConfig.manual(70)) is True
    assert sim.state.fan == FanConfig.manual(70) and sim.state.fan_rpms == [4200] * 4
    assert await backend.get_fan_config() == FanConfig.manual(70)
    assert await backend.set_fan_config(FanConfig.auto()) is True and sim.state.fan_rpms == auto_rpms
    with pytest.raises(UnsupportedControlError):
        await backend.set_fan_config(FanConfig.auto(target_temp=60))
    assert await backend.set_fault_light(True) is True and sim.state.fault_light is True
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False) is True and sim.state.fault_light is False
    sim.restart_seconds = 1.0  # a wide window to see it down in, on a loaded machine
    assert await backend.restart() is True
    await asyncio.sleep(0.15)
    assert (await backend.get_data([DataField.UPTIME])).uptime is None
    await asyncio.sleep(sim.restart_seconds + 0.3)
    up = await backend.get_data([DataField.UPTIME])
    assert up.uptime is not None and up.uptime.total_seconds() <= 2
    for control in ("change_password", "read_logs", "factory_reset", "upgrade_firmware", "get_scaling_config"):
        assert not Marathon.supports(control), control


async def test_a_refused_login_is_an_authentication_error(maraminers: Start) -> None:
    fleet, session = await maraminers()
    ip, _ = only(fleet)
    backend = await _backend(session, ip)
    fleet.set_fault(ip, Fault.AUTH_FAILURE)
    data = await backend.get_data([DataField.HASHRATE])
    assert data.hashrate is None and any("refused the login" in e for e in data.errors)
    with pytest.raises(AuthenticationError):
        await backend.pause()


@pytest.mark.parametrize("fault", [f for f in Fault if f not in (Fault.NONE, Fault.AUTH_FAILURE)])
async def test_fault_modes_yield_errors_without_hanging(maraminers: Start, fault: Fault) -> None:
    fleet, session = await maraminers()
    ip, _ = only(fleet)
    backend = await _backend(session, ip)
    fleet.set_fault(ip, fault)
    data = await asyncio.wait_for(backend.get_data(), 15)
    assert data.errors and data.hashrate is None


async def test_mixed_scan_tells_marathon_from_stock_at_no_extra_cost() -> None:
    """MaraFW and stock Antminer side by side, with empty addresses and an RPC-only listener that names
    KAONSU at an address whose web port is closed: that listener is never contacted (no web port, no miner)."""
    miners = []
    for i, (kind, name) in enumerate([(MarathonSim, "Antminer S19j Pro"), (AntminerStockSim, "Antminer S19j Pro"),
                                      (MarathonSim, "Antminer S21"), (AntminerStockSim, "Antminer S21")]):
        model = lookup_model("AntMiner", name)
        assert model is not None
        miners.append(kind.build(lo(f"127.187.1.{20 + i}"), model, random.Random(i)))
    contacted: list[int] = []

    async def rpc_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        contacted.append(1)
        writer.write(b'{"STATUS":[{"STATUS":"S","Description":"KAONSU"}],"VERSION":[{"Model":"Antminer S19"}]}')
        writer.close()

    lone = await asyncio.start_server(rpc_only, lo("127.187.1.40"), 4028)
    try:
        async with SimFleet(miners) as fleet:
            factory = MinerFactory.from_subnet(lo("127.187.1.0/26")).with_port_map(fleet.ports or PortMap())
            found = {str(m.ip): m for m in await factory.scan()}
            assert sorted(found) == sorted(fleet.miners)
            for ip, sim in fleet.miners.items():
                assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name,
                                                                                  sim.firmware)
                assert not any("kaonsu" in key for key in sim.requests if isinstance(sim, AntminerStockSim))
                data = await found[ip].get_data()
                assert data.hashrate is not None
                assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
            await factory.aclose()
    finally:
        lone.close()
    assert contacted == []


# ===== the independent clients against the simulator ======================================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


def norm(model: str) -> str:
    known = lookup_model("AntMiner", model if model.startswith("Antminer") else f"Antminer {model}")
    assert known is not None, model
    return known.name


@pytest.mark.interop
async def test_pyasic_reads_every_model(maraminers: Start) -> None:
    """pyasic 0.79: the antMiner realm on `GET /`, then `/kaonsu/v1/brief` with root/root, says MaraFW (the RPC's
    KAONSU says it too); the model from `/kaonsu/v1/overview`. It reads `hashrate_realtime` as TH/s. Its wattage,
    uptime and is_mining getters return None before reading the reply (a misplaced `return None` in 0.79)."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await maraminers(MarathonSim.models)
    _real_ports(fleet)
    for ip, sim in fleet.miners.items():
        miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.make, data.firmware) == ("AntMiner", "MaraFW") == (inventory["make"], inventory["firmware"])
        assert norm(str(data.model)) == inventory["model"]
        assert data.hashrate is not None
        assert float(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert (data.mac, data.hostname, data.fw_ver) == (sim.state.mac, sim.state.hostname, sim.state.firmware_version)
        assert [f.speed for f in data.fans] == sim.state.fan_rpms
        assert data.wattage is None and data.uptime is None  # see the docstring


@pytest.mark.interop
async def test_pyasic_rs_reads_every_model(maraminers: Start) -> None:
    """pyasic-rs 0.8.6: KAONSU/MARAFW in RPC `version` (or the 401's `Algorithm: MD5`) says Marathon; the model
    from `VERSION[0].Model`. Same make, same firmware (its spelling "Marathon"). It reads `hashrate_realtime` as
    GH/s where pyasic and the KaonSu contract say TH/s, so its total is 1000 times low; its boards (GH/s from
    `details`) add up to the right figure, which is what is compared."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await maraminers(MarathonSim.models)
    _real_ports(fleet)
    factory = RsFactory()
    for ip, sim in fleet.miners.items():
        miner = await factory.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.device_info.make.lower(), data.device_info.firmware) == ("antminer", "Marathon")
        assert norm(data.device_info.model) == inventory["model"]
        boards = sum(b.hashrate.value for b in data.hashboards if b.hashrate)
        assert boards == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.hashrate is not None and data.hashrate.value == pytest.approx(inventory["hashrate_ths"] / 1000,
                                                                                   rel=0.01)
        assert (data.mac, data.hostname, data.firmware_version) == (sim.state.mac, sim.state.hostname,
                                                                     sim.state.firmware_version)
        assert data.wattage == pytest.approx(sim.state.wattage)


@pytest.mark.interop
async def test_interop_controls_change_the_simulator(maraminers: Start) -> None:
    """Both clients' controls land in the simulator: pyasic's fault light, sleep/wake, power limit and reboot;
    pyasic-rs's pause and resume (its resume reads the configuration history, as ours does)."""
    import pyasic
    from pyasic_rs import MinerFactory as RsFactory

    fleet, session = await maraminers()
    _real_ports(fleet)
    ip, sim = only(fleet)
    miner = await pyasic.get_miner(ip)
    assert await miner.fault_light_on() is True and sim.state.fault_light is True
    assert await miner.fault_light_off() is True and sim.state.fault_light is False
    assert await miner.set_power_limit(2900) is True
    assert (sim.work_mode, sim.state.power_limit) == ("Auto", 2900)
    assert await miner.stop_mining() is True and sim.state.mining is False
    assert await miner.resume_mining() is True and sim.state.mining is True and sim.work_mode == "Auto"
    rs_miner = await RsFactory().get_miner(ip)
    assert await rs_miner.pause() and sim.work_mode == "Sleep"
    assert await rs_miner.resume() and sim.work_mode == "Auto"  # the mode before sleep, from the history
    assert sim.state.power_limit == 2900
    backend = await _backend(session, ip)
    assert (await backend.get_data([DataField.WATTAGE_LIMIT])).wattage_limit == 2900
    boot = sim.state.boot_time
    assert await miner.reboot() is True
    assert sim.state.boot_time > boot
    await asyncio.sleep(sim.restart_seconds + 0.3)
    assert time.time() >= sim.state.boot_time
