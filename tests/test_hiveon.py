"""Hiveon ASIC firmware on Antminer hardware: parsers on restated replies, the backend against the simulator over
loopback (every control applied and checked on the simulator), identification beside stock Antminer and MaraFW,
a mixed scan, and pyasic / pyasic-rs against the simulator (marker `interop`).

Addresses: 127.186.0.0/16 (lo), 127.188.0.0/16 for the mixed scan. Replies: tests/fixtures/hiveon (README).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from asicfleet import MinerFactory
from asicfleet._errors import MinerConnectionError, MinerTimeoutError, UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.hiveon import Hiveon, model_from_type, parse_chain_power
from asicfleet.backends.marathon import Marathon
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.discovery._identify import identify
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.hiveon import HiveonSim
from asicfleet.sim.marathon import MarathonSim
from asicfleet.transport import HttpReply, PortMap
from tests.conftest import lo, only_miner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hiveon"


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture_backend() -> Hiveon:
    return Hiveon(lo("127.186.0.1"), Hiveon.device_info("AntMiner", "Antminer S19j Pro", "Hive"), Session())


def all_replies() -> dict[str, bytes]:
    return ({f"rpc:{n}": raw(f"rpc_{n}") for n in ("version", "summary", "stats", "pools")}
            | {f"web:{n}": raw(n) for n in ("get_system_info", "get_miner_conf")}
            | {"web:blink_status": raw("blink_onpageloaded")})


# ===== parsers on the restated replies ===================================================================
def test_every_reply_parses_into_the_fields() -> None:
    data = fixture_backend().parse_raw(all_replies())
    assert data.errors == []
    assert (data.mac, data.hostname, data.serial_number) == ("02:18:25:30:BB:1D", "hiveon-3-11", "8PCF32ERF3DHQD1D")
    assert data.firmware_version == "Mon Dec 26 17:10:01 CST 2022" and data.api_version == "3.1"
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(101.49399)
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(104.0)
    assert data.wattage == pytest.approx(3003.7)  # chain_power, which stock lacks
    assert data.uptime == timedelta(seconds=2353489)
    assert [b.position for b in data.hashboards] == [0, 1, 2]
    assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(101.49399, rel=1e-4)
    assert {b.working_chips for b in data.hashboards} == {126}
    assert [f.rpm for f in data.fans] == [5080, 5740, 4330, 4200]
    assert [p.user for p in data.pools[0].pools] == ["farm.3x11", "farm.3x11"]
    assert data.is_mining is True and data.light_flashing is False
    assert data.tuning_target is not None and data.tuning_target.target_mode == "normal"
    assert data.messages == [] and data.control_board_version is None  # not read on Hiveon (see the module)


def test_model_and_power_parsers() -> None:
    assert model_from_type("Antminer S19jPro HIVEON") == "Antminer S19j Pro"
    assert model_from_type("Antminer S19k Pro HIVEON") == "Antminer S19k Pro"
    assert model_from_type("Antminer S19j Pro") is None  # no marker: not Hiveon
    assert parse_chain_power({"chain_power": "3003.70 W"}) == pytest.approx(3003.7)
    assert parse_chain_power({"chain_power": 1200}) == 1200 and parse_chain_power({}) is None


# ===== identification signals ============================================================================
REALM = HttpReply(401, {"www-authenticate": 'Digest realm="antMiner Configuration", qop="auth"'}, b"")


def _probe(version: dict[str, Any] | Exception | None) -> Probe:
    return Probe(ip=lo("127.186.0.1"), web=REALM, rpc={} if version is None else {"version": version})


def test_matches_signals() -> None:
    hive = json.loads(raw("rpc_version"))
    stock = {"STATUS": [{"STATUS": "S", "Description": "cgminer 1.0.0"}], "VERSION": [{"Type": "Antminer S19"}]}
    assert Hiveon.matches(_probe(hive))
    assert not AntminerStock.matches(_probe(hive)) and not Marathon.matches(_probe(hive))
    assert not Hiveon.matches(_probe(stock))  # an answering stock RPC: no web request for Hiveon
    assert Hiveon.matches(_probe(MinerConnectionError("refused")))  # RPC off: get_system_info decides
    assert not Hiveon.matches(_probe(MinerTimeoutError("timed out")))  # no extra request on a sick host
    assert backend_for("hiveon") is Hiveon and BACKENDS.index(Hiveon) < BACKENDS.index(AntminerStock)


# ===== against the simulator ===============================================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
def hiveminers(family_miners: Callable[..., Start]) -> Start:
    """: one simulated miner per model on its own 127.186.N.x block (conftest's family_miners)."""
    return family_miners(HiveonSim, "127.186", ("Antminer S19j Pro",))


def only(fleet: SimFleet) -> tuple[str, HiveonSim]:
    return only_miner(fleet, HiveonSim)


async def _backend(session: Session, ip: str) -> Hiveon:
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None, found.error
    assert isinstance(found.miner.backend, Hiveon)
    return found.miner.backend


async def test_identify_every_model_with_the_probe_alone(hiveminers: Start) -> None:
    fleet, session = await hiveminers(HiveonSim.models)
    for ip, sim in fleet.miners.items():
        sim.requests.clear()
        info = (await _backend(session, ip)).device
        assert (info.make, info.model, info.firmware) == ("AntMiner", sim.model_name, "Hive")
        assert info.hardware.chips_per_board == sim.state.model.chips_per_board
        assert dict(sim.requests) == {"80:GET /": 1, "4028:version": 1}


async def test_identified_by_the_web_when_the_rpc_is_silent(hiveminers: Start) -> None:
    fleet, session = await hiveminers()
    ip, sim = only(fleet)
    probe = Probe(ip=ip, web=REALM, rpc={"version": MinerConnectionError("refused")})
    assert await Marathon.identify(probe, session) is None  # tried first: /kaonsu/v1/overview is a 404 here
    info = await Hiveon.identify(probe, session)
    assert info is not None and info.model == sim.model_name
    assert await AntminerStock.identify(probe, session) is None  # stock sees the marker and declines


async def test_get_data_matches_the_simulator(hiveminers: Start) -> None:
    fleet, session = await hiveminers(("Antminer S19", "Antminer S19k Pro"))
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, HiveonSim)
        data = await (await _backend(session, ip)).get_data()
        s, inventory = sim.state, sim.inventory()
        assert data.errors == []
        assert data.hashrate is not None and data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=1e-3)
        assert data.wattage == pytest.approx(s.wattage)
        assert (data.mac, data.hostname, data.serial_number) == (s.mac, s.hostname, s.serial)
        assert data.firmware_version == s.firmware_version == inventory["firmware_version"]
        assert [f.rpm for f in data.fans] == s.fan_rpms
        assert len(data.hashboards) == 3 and {b.working_chips for b in data.hashboards} == {s.model.chips_per_board}
        assert data.is_mining is True and data.light_flashing is False


async def test_controls_change_the_simulator(hiveminers: Start) -> None:
    fleet, session = await hiveminers()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.set_fault_light(True) is True and sim.state.fault_light is True
    assert sim.requests["auth:POST /cgi-bin/blink.cgi"] == 1  # Hiveon's form, not stock's JSON
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False) is True and sim.state.fault_light is False
    assert await backend.pause() is True and sim.state.mining is False and sim.work_mode == 1
    assert (await backend.get_data([DataField.IS_MINING])).is_mining is False
    assert await backend.resume() is True and sim.state.mining is True and sim.work_mode == 0
    assert await backend.set_tuning_config(TuningConfig.mode("low")) is True and sim.work_mode == 3
    assert await backend.get_tuning_config() == TuningConfig.mode("low")
    new = [PoolGroup(pools=[Pool(url="stratum+tcp://a.example.net:3333", username="w.1", password="p")])]
    assert await backend.set_pools_config(new) is True
    assert sim.state.pools[0].pools == new[0].pools and await backend.get_pools_config() == new
    assert await backend.set_fan_config(FanConfig.manual(50)) is True and sim.state.fan == FanConfig.manual(50)
    assert await backend.get_fan_config() == FanConfig.manual(50)
    sim.restart_seconds = 1.0  # a wide window to see it down in, on a loaded machine
    assert await backend.restart() is True
    await asyncio.sleep(0.15)
    assert (await backend.get_data([DataField.UPTIME])).uptime is None
    await asyncio.sleep(sim.restart_seconds + 0.3)
    up = await backend.get_data([DataField.UPTIME])
    assert up.uptime is not None and up.uptime.total_seconds() <= 2
    for control in ("change_password", "read_logs", "factory_reset", "upgrade_firmware", "set_power_limit"):
        assert not Hiveon.supports(control), control
    with pytest.raises(UnsupportedControlError):
        await backend.factory_reset()


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_fault_modes_yield_errors_without_hanging(hiveminers: Start, fault: Fault) -> None:
    fleet, session = await hiveminers()
    ip, _ = only(fleet)
    backend = await _backend(session, ip)
    fleet.set_fault(ip, fault)
    data = await asyncio.wait_for(backend.get_data(), 15)
    assert data.errors
    if fault is Fault.AUTH_FAILURE:  # the RPC needs no login: its fields still read
        assert data.hashrate is not None and data.mac is None
    else:
        assert data.hashrate is None


async def test_mixed_scan_with_stock_and_marathon() -> None:
    miners = []
    kinds = [(HiveonSim, "Antminer S19j Pro"), (AntminerStockSim, "Antminer S19j Pro"),
             (MarathonSim, "Antminer S19j Pro"), (HiveonSim, "Antminer S19"), (AntminerStockSim, "Antminer S19")]
    for i, (kind, name) in enumerate(kinds):
        model = lookup_model("AntMiner", name)
        assert model is not None
        miners.append(kind.build(lo(f"127.188.1.{20 + i}"), model, random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.188.1.0/26")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None and data.errors == []
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
        await factory.aclose()


# ===== the independent clients against the simulator ======================================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


def norm(model: str) -> str:
    known = lookup_model("AntMiner", model if model.startswith("Antminer") else f"Antminer {model}")
    assert known is not None, model
    return known.name


@pytest.mark.interop
async def test_pyasic_reads_every_model(hiveminers: Start) -> None:
    """pyasic 0.79: HIVEON in RPC `version` says Hiveon (or, when its web probe wins with the antMiner realm, the
    model string's ` HIVEON` reroutes it); the model is `VERSION[0].Type` without ` HIVEON`. Firmware "Hive"."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await hiveminers(HiveonSim.models)
    _real_ports(fleet)
    for ip, sim in fleet.miners.items():
        miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.make, data.firmware) == ("AntMiner", "Hive") == (inventory["make"], inventory["firmware"])
        assert norm(str(data.model)) == inventory["model"]
        assert data.hashrate is not None
        assert float(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.wattage == round(sim.state.wattage) and data.fw_ver == sim.state.firmware_version
        assert data.mac == sim.state.mac


@pytest.mark.interop
async def test_pyasic_rs_reads_it_as_stock(hiveminers: Start) -> None:
    """pyasic-rs 0.8.6 (asic-rs) has no Hiveon firmware: the RPC's ANTMINER and the antMiner realm make it stock
    Antminer. Same make, same hash rate; firmware "AntMiner Stock" instead of Hiveon (it cannot tell)."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await hiveminers(HiveonSim.models)
    _real_ports(fleet)
    factory = RsFactory()
    for ip, sim in fleet.miners.items():
        miner = await factory.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.device_info.make.lower(), data.device_info.firmware) == ("antminer", "AntMiner Stock")
        assert norm(data.device_info.model) == inventory["model"]
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.01)


@pytest.mark.interop
async def test_pyasic_controls_change_the_simulator(hiveminers: Start) -> None:
    """pyasic's Hiveon fault light (blink.cgi `action`) and reboot land in the simulator. Its stop/resume mining
    return True and send nothing: HiveonModern keeps BaseMiner's empty send_config (pyasic 0.79)."""
    import pyasic

    fleet, _ = await hiveminers()
    _real_ports(fleet)
    ip, sim = only(fleet)
    miner = await pyasic.get_miner(ip)
    assert await miner.fault_light_on() is True and sim.state.fault_light is True
    assert await miner.fault_light_off() is True and sim.state.fault_light is False
    before = dict(sim.requests)
    assert await miner.stop_mining() is True and sim.state.mining is True
    assert not any("set_miner_conf" in k for k in sim.requests if sim.requests[k] != before.get(k, 0))
    boot = sim.state.boot_time
    assert await miner.reboot() is True and sim.state.boot_time > boot
