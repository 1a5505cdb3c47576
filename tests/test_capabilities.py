"""Capabilities per firmware version: each family's supports_* table, checked against its simulator at two
firmware versions. A property that says yes is followed by the control itself, which must work; one that
says no is followed by the control too, which must raise UnsupportedControlError before anything is sent.
Then the rest of pyasic-rs's surface on the handle and the factory (expected hardware, fluid temperatures,
tuning capabilities, temperature config, the port check). Loopback range: 127.161.0.0/16."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from asicfleet import MinerFactory
from asicfleet._session import Session
from asicfleet.backends import DataField
from asicfleet.backends.avalon import AvalonBackend
from asicfleet.backends.whatsminer import WhatsMinerBackend
from asicfleet.config import TemperatureConfig
from asicfleet.data import MessageSeverity, TuningTarget
from asicfleet.hardware import lookup_model
from asicfleet.sim import SIM_FAMILIES, SimFleet
from asicfleet.sim.bitaxe import CURRENT_VERSION, LEGACY_VERSION
from asicfleet.sim.braiins import _RELEASES
from tests.capabilities import PROPERTIES, back_online, check_table, esp_image
from tests.conftest import FleetFactory, fixture_bytes, lo

ALWAYS_NOT = {"set_tuning_percent"}  # no family here has a manual throttle (asic-rs: VNish only)

# family -> (how the two versions are chosen, {version label: the properties that are true})
BRAIINS_25_07 = {"pools_config", "fan_config", "tuning_config", "scaling_config", "temperature_config",
                 "set_fault_light", "set_power_limit", "pause", "resume", "change_password", "restart"}
BITAXE_LEGACY = {"pools_config", "fan_config", "tuning_config", "upgrade_firmware", "restart"}
WHATSMINER_V3 = {"pools_config", "tuning_config", "set_fault_light", "set_power_limit", "pause", "resume",
                 "factory_reset", "restart"}
ANTMINER = {"pools_config", "fan_config", "tuning_config", "read_logs", "set_fault_light", "pause", "resume",
            "change_password", "upgrade_firmware", "factory_reset", "restart"}
AVALON = {"pools_config", "tuning_config", "set_fault_light", "set_power_limit", "pause", "resume", "restart"}
EPIC = {"pools_config", "fan_config", "tuning_config", "scaling_config", "temperature_config", "read_logs",
        "set_fault_light", "pause", "resume", "change_password", "upgrade_firmware", "factory_reset", "restart"}
MARATHON = {"pools_config", "fan_config", "tuning_config", "set_fault_light", "set_power_limit", "pause", "resume",
            "restart"}
HIVEON = {"pools_config", "fan_config", "tuning_config", "set_fault_light", "pause", "resume", "restart"}

TABLES: dict[str, dict[str, set[str]]] = {
    "braiins": {"25.07": BRAIINS_25_07, "26.04": BRAIINS_25_07 | {"read_logs", "factory_reset", "upgrade_firmware"}},
    "bitaxe": {LEGACY_VERSION: BITAXE_LEGACY,
               CURRENT_VERSION: BITAXE_LEGACY | {"pause", "resume", "set_fault_light", "read_logs"}},
    # the simulated Whatsminer's API generation follows its model: M50S ships API v2, M60S API v3
    "whatsminer": {"M50S": WHATSMINER_V3 | {"change_password"}, "M60S": WHATSMINER_V3},
    # stock Antminer and Avalon controls do not depend on the version: the same table at both
    "antminer": {"Antminer S19 Pro": ANTMINER, "Antminer S21": ANTMINER},
    "avalon": {"Avalon 1246": AVALON, "Avalon A1466": AVALON},
    # ePIC's power target follows the hardware, not the version: its tuner offers `Power` on some units only
    "epic": {"Antminer S19 XP": EPIC, "Antminer S21": EPIC | {"set_power_limit"}},
    # no MaraFW or Hiveon version is known to lack a control: the same table at both (two models)
    "marathon": {"Antminer S19 Pro": MARATHON, "Antminer S21": MARATHON},
    "hiveon": {"Antminer S19": HIVEON, "Antminer S19j Pro": HIVEON},
}
SUBNETS = {"braiins": "127.161.1.0/24", "bitaxe": "127.161.2.0/24", "whatsminer": "127.161.3.0/24",
           "antminer": "127.161.4.0/24", "avalon": "127.161.5.0/24", "epic": "127.182.1.0/24",
           "marathon": "127.188.161.0/24", "hiveon": "127.188.162.0/24"}


async def start(sim_fleet: FleetFactory, family: str) -> SimFleet:
    labels = list(TABLES[family])
    subnet = lo(SUBNETS[family])
    if family == "braiins":
        return await sim_fleet(subnet, mix=["braiins"], models=["Antminer S19j Pro"] * 2,
                               versions=[_RELEASES[label][0] for label in labels])
    if family == "bitaxe":
        return await sim_fleet(subnet, mix=["bitaxe"], models=["BM1370"] * 2, versions=labels)
    return await sim_fleet(subnet, mix=[family], models=labels)


@pytest.mark.parametrize("family", sorted(TABLES))
async def test_capability_table_per_version(sim_fleet: FleetFactory, family: str, tmp_path: Path) -> None:
    fleet = await start(sim_fleet, family)
    sims = sorted(fleet.miners.values(), key=lambda m: tuple(int(o) for o in m.state.ip.split(".")))
    for sim in sims:
        sim.restart_seconds = 0.2
    async with MinerFactory.from_targets([s.state.ip for s in sims]).with_port_map(fleet.ports) as factory:
        for (label, expected), sim in zip(TABLES[family].items(), sims, strict=True):
            miner = await factory.get_miner(sim.state.ip)
            assert miner is not None, f"{family} {label} was not identified"
            assert not expected & ALWAYS_NOT
            await check_table(miner, sim, expected, tmp_path)


async def test_versions_are_what_identification_read(sim_fleet: FleetFactory) -> None:
    """The version behind each decision is the one the miner reports (Braiins: the REST API's own)."""
    bitaxe = await start(sim_fleet, "bitaxe")
    whatsminer = await start(sim_fleet, "whatsminer")
    braiins = await start(sim_fleet, "braiins")
    for fleet in (bitaxe, whatsminer):
        async with MinerFactory.from_targets(list(fleet.miners)).with_port_map(fleet.ports) as factory:
            for ip, sim in fleet.miners.items():
                miner = await factory.get_miner(ip)
                assert miner is not None and miner.firmware_version == sim.state.firmware_version
    async with MinerFactory.from_targets(list(braiins.miners)).with_port_map(braiins.ports) as factory:
        for ip, sim in braiins.miners.items():
            miner = await factory.get_miner(ip)
            assert miner is not None and miner.backend.learned["rest_api_version"] == sim.rest_api_version  # type: ignore[attr-defined]


async def test_capabilities_follow_a_firmware_upgrade_after_revalidate(sim_fleet: FleetFactory,
                                                                       tmp_path: Path) -> None:
    """A legacy AxeOS flashed to 2.14: the handle keeps its old table until revalidate() reads the new one."""
    fleet = await sim_fleet(lo("127.161.6.0/24"), mix=["bitaxe"], models=["BM1368"], versions=[LEGACY_VERSION])
    sim = next(iter(fleet.miners.values()))
    sim.restart_seconds = 0.2
    async with MinerFactory.from_targets([sim.state.ip]).with_port_map(fleet.ports) as factory:
        miner = await factory.get_miner(sim.state.ip)
        assert miner is not None and not miner.supports_pause
        image = tmp_path / "esp-miner.bin"
        image.write_bytes(esp_image(CURRENT_VERSION))
        assert await miner.upgrade_firmware(image) is True
        await asyncio.sleep(0.3)
        await back_online(miner)
        assert miner.firmware_version == CURRENT_VERSION and miner.supports_pause
        assert await miner.pause() is True and sim.state.mining is False


async def test_revalidate_is_false_for_a_gone_or_changed_miner(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.161.7.0/24"), mix=["avalon"], models=["Avalon 1246"])
    ip = next(iter(fleet.miners))
    async with MinerFactory.from_targets([ip]).with_port_map(fleet.ports) as factory:
        miner = await factory.get_miner(ip)
        assert miner is not None and await miner.revalidate() is True
        await fleet.stop()
        assert await miner.revalidate(timeout=2.0) is False


# ----- the rest of pyasic-rs's surface on the handle and the factory ----------------------------------------
async def test_expected_hardware_comes_from_the_catalogue(sim_fleet: FleetFactory) -> None:
    fleet = await start(sim_fleet, "antminer")
    async with MinerFactory.from_targets(list(fleet.miners)).with_port_map(fleet.ports) as factory:
        for ip, sim in fleet.miners.items():
            miner = await factory.get_miner(ip)
            assert miner is not None
            known = lookup_model(miner.make, miner.model)
            assert known is not None and known.boards and known.chips_per_board
            assert miner.expected_hashboards == known.boards == sim.state.model.boards
            assert miner.expected_chips == known.boards * known.chips_per_board
            assert miner.expected_fans == known.fans == len(sim.state.fan_rpms)


def test_fluid_temperatures_only_for_hydro_models() -> None:
    """The inlet/outlet sensors read coolant on a hydro model and air on the others, which are not reported."""
    summary = {"rpc:summary": fixture_bytes("whatsminer", "v2", "summary.json")}
    hydro = WhatsMinerBackend.device_info("WhatsMiner", "M33S++VG40", "Stock")
    air = WhatsMinerBackend.device_info("WhatsMiner", "M50S", "Stock")
    wet = WhatsMinerBackend(lo("127.161.0.1"), hydro, Session()).parse_raw(summary, [DataField.FLUID_TEMPERATURE])
    dry = WhatsMinerBackend(lo("127.161.0.1"), air, Session()).parse_raw(summary, [DataField.FLUID_TEMPERATURE])
    assert wet.fluid_temperature == 28.5 and dry.fluid_temperature is None
    stats = {"rpc:stats": fixture_bytes("avalonminer", "stats.json")}
    wanted = [DataField.FLUID_TEMPERATURE, DataField.OUTLET_FLUID_TEMPERATURE]
    avalon_hydro = AvalonBackend(lo("127.161.0.2"), AvalonBackend.device_info("AvalonMiner", "Avalon 1566HA", "Stock"),
                                 Session()).parse_raw(stats, wanted)
    assert (avalon_hydro.fluid_temperature, avalon_hydro.outlet_fluid_temperature) == (26, 27)
    avalon_air = AvalonBackend(lo("127.161.0.2"), AvalonBackend.device_info("AvalonMiner", "Avalon 1246", "Stock"),
                               Session()).parse_raw(stats, wanted)
    assert avalon_air.fluid_temperature is None and avalon_air.outlet_fluid_temperature is None


async def test_braiins_tuning_capabilities_and_temperature_config(sim_fleet: FleetFactory) -> None:
    fleet = await start(sim_fleet, "braiins")
    async with MinerFactory.from_targets(list(fleet.miners)).with_port_map(fleet.ports) as factory:
        for ip, sim in fleet.miners.items():
            miner = await factory.get_miner(ip)
            assert miner is not None
            caps = await miner.get_tuning_capabilities()
            nominal = round(sim.state.model.nominal_watts)
            assert caps is not None and caps.power is not None and caps.hashrate is not None
            assert caps.power.default == TuningTarget(target_watts=nominal)
            assert caps.power.minimum == TuningTarget(target_watts=round(nominal * 0.25))
            assert caps.power.maximum == TuningTarget(target_watts=round(nominal * 1.3))
            assert caps.hashrate.default is not None and caps.hashrate.default.target_hashrate is not None
            assert caps.hashrate.default.target_hashrate.value == sim.state.model.nominal_ths
            assert await miner.get_temperature_config() == TemperatureConfig(hot=90.0, danger=110.0)
            sim.state.extra["cooling"] = {"auto": {"hot_temperature": {"degree_c": 85.0},
                                                   "dangerous_temperature": {"degree_c": 100.0}}}
            assert await miner.get_temperature_config() == TemperatureConfig(hot=85.0, danger=100.0)
            # none of our firmwares has a manual throttle: the getter says so with None, the setter refuses
            assert await miner.get_tuning_percent() is None
            scaled = await miner.get_scaled_tuning_target()  # what the tuner runs now: the power target
            assert scaled is not None and scaled.target_watts == sim.state.power_limit
            with pytest.raises(ValueError):
                await miner.set_tuning_percent(120)


async def test_port_check_off_finds_a_miner_whose_web_port_is_closed(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.161.8.0/24"), mix=["avalon"], models=["Avalon 1246"])
    ip, sim = next(iter(fleet.miners.items()))
    assert fleet.ports is not None
    web_port = fleet.ports(80)
    for server in fleet._servers[ip]:  # the miner's web interface switched off; its RPC still answers
        if isinstance(server, asyncio.Server) and any(s.getsockname()[1] == web_port for s in server.sockets):
            server.close()
    async with MinerFactory.from_targets([ip]).with_port_map(fleet.ports) as factory:
        assert await factory.get_miner(ip) is None  # the port check: no web port, no miner
        before = sim.total_requests
        found = await factory.with_port_check(False).get_miner(ip)
        assert found is not None and found.model == "Avalon 1246" and sim.total_requests > before
        empty = await factory.with_port_check(False).identify(lo("127.161.8.250"))
        assert empty.miner is None and empty.error is None  # nothing at all there is still no miner


def test_pyasic_rs_spellings_are_aliases() -> None:
    assert MessageSeverity.Error is MessageSeverity.ERROR and MessageSeverity.Warning is MessageSeverity.WARNING
    assert MessageSeverity.Info is MessageSeverity.INFO and MessageSeverity("error") is MessageSeverity.Error


# the families without a table above: whatever each says it supports must work, and whatever it refuses must
# be refused before anything is sent (issue 10's "no supports_* promises a control that then raises")
UNTABLED = sorted(set(SIM_FAMILIES) - set(TABLES))


@pytest.mark.parametrize("family", UNTABLED)
async def test_every_other_family_keeps_its_promises(sim_fleet: FleetFactory, family: str, tmp_path: Path) -> None:
    index = sorted(SIM_FAMILIES).index(family)
    fleet = await sim_fleet(lo(f"127.236.{index}.0/24"), models=[SIM_FAMILIES[family].models[0]], mix=[family])
    sim = next(iter(fleet.miners.values()))
    sim.restart_seconds = 0.2
    async with MinerFactory.from_targets([sim.state.ip]).with_port_map(fleet.ports) as factory:
        miner = await factory.get_miner(sim.state.ip)
        assert miner is not None, f"{family} was not identified"
        promised = {prop for prop in PROPERTIES if getattr(miner, f"supports_{prop}")}
        await check_table(miner, sim, promised, tmp_path)
