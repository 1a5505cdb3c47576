"""The capability checks the family test files share: each supports_* property, the control behind it (which
must work when the property says yes) and the controls a no covers (which must be refused before anything is
sent). Used by tests/test_capabilities.py for every simulated family and by a family's own test file for its
table at each simulated version."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from asicfleet import Miner, MinerFactory, UnsupportedControlError
from asicfleet.config import FanConfig, Pool, PoolGroup, ScalingConfig, TemperatureConfig, TuningConfig
from asicfleet.sim import SimMiner, make_sim_image
from asicfleet.transport import PortMap

# every capability property of the handle, in the order the controls are exercised: reads and
# same-value writes first, then what changes the miner, then what reboots it
PROPERTIES = ("pools_config", "fan_config", "tuning_config", "scaling_config", "temperature_config",
              "read_logs", "set_fault_light", "set_power_limit", "set_tuning_percent", "pause", "resume",
              "change_password", "upgrade_firmware", "factory_reset", "restart")

def esp_image(version: str) -> bytes:
    """The head of an ESP32 app image naming `version` (what AxeOS checks before flashing)."""
    head = bytearray(256)
    head[0] = 0xE9
    struct.pack_into("<I", head, 32, 0xABCD5432)
    head[48:48 + len(version)] = version.encode()
    return bytes(head)


def image_for(sim: SimMiner, folder: Path) -> Path:
    """A firmware image this simulated miner accepts, installing the version it already runs."""
    version = sim.state.firmware_version
    if sim.family in ("bitaxe", "nerdaxe"):  # AxeOS and its relatives flash ESP32 app images
        content = esp_image(version)
    elif sim.family == "braiins":
        content = b"BOS-UPGRADE" * 1000
    else:
        content = make_sim_image(version, sim.make, [sim.model_name])
    path = folder / f"{sim.family}-{sim.state.ip}.bin"
    path.write_bytes(content)
    return path


async def back_online(miner: Miner, seconds: float = 10.0) -> None:
    """Waits out a reboot: the miner identifies again as itself."""
    deadline = time.monotonic() + seconds
    while not await miner.revalidate(timeout=2.0):
        assert time.monotonic() < deadline, f"{miner.ip} did not come back after a reboot"
        await asyncio.sleep(0.1)


def exercise(miner: Miner, sim: SimMiner, prop: str, folder: Path) -> Callable[[], Awaitable[Any]]:
    """The control behind one capability property, with arguments this miner takes."""
    password = "Capab1e8"  # letters and digits, exactly 8: what every family accepts (Proto: at least 8)

    async def pools() -> None:
        assert await miner.set_pools_config(await miner.get_pools_config()) is not False
        await asyncio.sleep(0.3)
        await back_online(miner)  # an Avalon reboots to apply its pools

    async def fan() -> None:
        assert await miner.set_fan_config(await miner.get_fan_config()) is not False

    async def tuning() -> None:
        assert await miner.set_tuning_config(await miner.get_tuning_config()) is not False

    async def scaling() -> None:
        assert await miner.set_scaling_config(await miner.get_scaling_config()) is not False

    async def temperature() -> None:
        config = await miner.get_temperature_config()
        assert isinstance(config, TemperatureConfig) and (config.hot is not None or config.danger is not None)

    async def logs() -> None:
        assert isinstance(await miner.read_logs(), str)

    async def rebooting(control: Callable[[], Awaitable[bool]]) -> None:
        assert await control() is True
        await asyncio.sleep(0.3)
        await back_online(miner)

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "pools_config": pools, "fan_config": fan, "tuning_config": tuning, "scaling_config": scaling,
        "temperature_config": temperature, "read_logs": logs,
        "set_fault_light": lambda: miner.set_fault_light(True),
        "set_power_limit": lambda: miner.set_power_limit(round(sim.state.model.nominal_watts * 0.9)),
        "set_tuning_percent": lambda: miner.set_tuning_percent(80),
        "pause": miner.pause, "resume": miner.resume,
        "change_password": lambda: miner.change_password(password),
        "upgrade_firmware": lambda: rebooting(lambda: miner.upgrade_firmware(image_for(sim, folder))),
        "factory_reset": lambda: rebooting(miner.factory_reset),
        "restart": lambda: rebooting(miner.restart),
    }
    return calls[prop]


def refused_without_sending(miner: Miner, sim: SimMiner, prop: str, folder: Path
                            ) -> list[Callable[[], Awaitable[Any]]]:
    """Every control a false property covers (a config property covers its getter and its setter)."""
    pools = [PoolGroup(name="default", pools=[Pool(url="stratum+tcp://pool.example.com:3333", username="w")])]
    pairs: dict[str, dict[str, Callable[[], Awaitable[Any]]]] = {
        "pools_config": {"get_pools_config": miner.get_pools_config,
                         "set_pools_config": lambda: miner.set_pools_config(pools)},
        "fan_config": {"get_fan_config": miner.get_fan_config,
                       "set_fan_config": lambda: miner.set_fan_config(FanConfig.manual(60))},
        "tuning_config": {"get_tuning_config": miner.get_tuning_config,
                          "set_tuning_config": lambda: miner.set_tuning_config(TuningConfig.power(1000))},
        "scaling_config": {"get_scaling_config": miner.get_scaling_config,
                           "set_scaling_config": lambda: miner.set_scaling_config(ScalingConfig(step=10, minimum=50))},
        "temperature_config": {"get_temperature_config": miner.get_temperature_config},
    }
    if prop not in pairs:
        return [exercise(miner, sim, prop, folder)]
    # a half (an Avalon sets its fans but cannot read the setting back) is no config support, but that
    # half still works: only the halves this miner cannot do must be refused
    refused = [call for name, call in pairs[prop].items() if not miner.backend.can(name)]
    assert refused, f"supports_{prop} is false though both halves are available"
    return refused


async def check_table(miner: Miner, sim: SimMiner, expected: set[str], folder: Path) -> None:
    table = {prop: getattr(miner, f"supports_{prop}") for prop in PROPERTIES}
    assert {p for p, yes in table.items() if yes} == expected, f"{miner!r} at {sim.state.firmware_version}"
    for prop in PROPERTIES:
        if table[prop]:
            await exercise(miner, sim, prop, folder)()  # promised: it must work, whatever it raises fails
            continue
        for control in refused_without_sending(miner, sim, prop, folder):
            before = sim.total_requests
            with pytest.raises(UnsupportedControlError):
                await control()
            assert sim.total_requests == before, f"{prop}: refused, yet something was sent"


async def check_tables(sims: list[SimMiner], expected: set[str], folder: Path, ports: PortMap | None) -> None:
    """`check_table` for each simulated miner (one model each), through one factory."""
    async with MinerFactory.from_targets([sim.state.ip for sim in sims]).with_port_map(ports or PortMap()) as factory:
        for sim in sims:
            miner = await factory.get_miner(sim.state.ip)
            assert miner is not None, f"{sim.state.ip} was not identified"
            await check_table(miner, sim, expected, folder)
