"""Braiins OS: parsers on captured replies, the backend against the simulator over loopback, the
simulator's BOS+ gRPC API (its dict <-> message rules, calls through a grpc.aio client), and the
independent clients pyasic / pyasic-rs against the simulator. Loopback range: 127.82.0.0/16.
The releases before 25.07 (GraphQL, LuCI and the RPC; 22.08 to 25.05 simulated) follow at the end, on
127.190-192.0.0/16."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.message import DecodeError, Message

from asicfleet import MinerFactory
from asicfleet._errors import MinerError, UnsupportedControlError
from asicfleet._session import CredentialRule, Session
from asicfleet.backends import BACKENDS, DataField, Probe
from asicfleet.backends import braiins as braiins_backend
from asicfleet.backends.braiins import (
    LUCI_LAN,
    BraiinsBackend,
    _version_tuple,
    gql_data,
    graphql_queries,
    release_of,
)
from asicfleet.config import FanConfig, Pool, PoolGroup, ScalingConfig, TemperatureConfig, TuningConfig
from asicfleet.data import DeviceInfo, HashRate, TuningTarget
from asicfleet.discovery._identify import identify
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim._core import SimMiner
from asicfleet.sim._graphql import execute, parse
from asicfleet.sim._grpc import ProtobufError, decode, encode, fill, to_dict
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.bos_api.bos.v1 import actions_pb2, authentication_pb2, miner_pb2, pool_pb2
from asicfleet.sim.braiins import _GRAPHQL_RELEASES, _RELEASES, FIRMWARE_VERSIONS, BraiinsSim
from asicfleet.sim.luxos import LuxOSSim
from asicfleet.transport import HttpReply, PortMap, TransportSettings
from tests.conftest import FIXTURES, FleetFactory, fixture_bytes, lo

REST_FILES = {
    "actions_locate": "web:actions/locate", "configuration_miner": "web:configuration/miner",
    "cooling_state": "web:cooling/state", "miner_details": "web:miner/details", "miner_errors": "web:miner/errors",
    "miner_hw_hashboards": "web:miner/hw/hashboards", "miner_stats": "web:miner/stats", "network": "web:network",
    "performance_tuner_state": "web:performance/tuner-state", "pools": "web:pools", "version": "web:version",
}
S19XP = BraiinsBackend.device_info("AntMiner", "Antminer S19 XP", "Braiins OS")


def rest_fixtures(version: str) -> dict[str, bytes]:
    return {key: fixture_bytes("braiins", version, f"{name}.json") for name, key in REST_FILES.items()}


def ts(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp())


# ----- (a) parsers on every captured reply -------------------------------------------------------
def test_rest_25_07_every_figure() -> None:
    data = BraiinsBackend(lo("127.82.0.1"), S19XP, Session()).parse_raw(rest_fixtures("v25_07"))
    assert data.errors == []
    assert data.mac == "02:EE:DA:A9:B6:4A" and data.hostname == "Antminer" and data.serial_number is None
    assert data.firmware_version == "2025-08-06-0-3881c51d-25.07-plus"
    assert data.api_version == "1.0.0" and data.control_board_version == "Amlogic"
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(141.46356540072063)  # 141463.565 GH/s
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(141.0)
    assert data.wattage == 3137 and data.wattage_limit == 3031
    assert data.uptime == timedelta(seconds=69725) and data.is_mining is True and data.light_flashing is False
    assert data.tuning_target is not None and data.tuning_target.target_watts == 3031
    assert [(f.position, f.rpm) for f in data.fans] == [(0, 5904), (1, 5874), (2, 5874), (3, 5904)]
    assert [b.position for b in data.hashboards] == [0, 1, 2]
    first, second, third = data.hashboards
    assert first.hashrate is not None and first.hashrate.value == pytest.approx(50.13772942148807)
    assert first.expected_hashrate is not None and first.expected_hashrate.value == pytest.approx(47.980850153652005)
    assert (first.board_temperature, first.intake_temperature, first.outlet_temperature) == (55.5, 41.0, 55.5)
    assert first.working_chips == 110 and first.expected_chips == 110 and first.active is True
    assert first.serial_number == "NGSBYPDBCJBAG8562" and first.voltage == pytest.approx(12.93826530612245)
    assert first.frequency == pytest.approx(486.704545)
    assert second.board_temperature == 52.0 and second.intake_temperature == 40.0
    assert third.frequency == pytest.approx(500.0) and third.serial_number == "NGSBYPDBCJBBA0309"
    assert data.total_chips == 330 and data.average_temperature == pytest.approx((55.5 + 52.0 + 54.0) / 3, abs=0.01)
    (group,) = data.pools
    assert (group.name, group.quota, len(group.pools)) == ("foremanGroup", 1, 2)
    main, backup = group.pools
    assert (main.url, main.user, main.accepted_shares, main.rejected_shares, main.active, main.alive) == (
        "stratum+tcp://example.pool.com:3333", "asic_rs.test", 10460, 18, True, True)
    assert (backup.url, backup.accepted_shares, backup.active) == ("stratum+tcp://example.pool2.com:3333", 4, False)
    assert len(data.messages) == 8
    assert data.messages[0].message == 'Failed to resolve ("a830bcc3.bos.braiins.com", 3336)'
    assert data.messages[0].timestamp == ts(2026, 3, 22, 5, 43, 43)
    assert data.messages[3].timestamp == ts(2015, 1, 1, 0, 0, 37)
    assert data.efficiency == pytest.approx(3137 / 141.46356540072063, abs=0.001)


def test_rest_25_11_every_figure() -> None:
    data = BraiinsBackend(lo("127.82.0.1"), S19XP, Session()).parse_raw(rest_fixtures("v25_11"))
    assert data.errors == []
    assert data.mac == "90:34:86:54:14:C0" and data.serial_number == "YNAHEAUBCJCBA03GL"
    assert data.firmware_version == "2025-11-21-0-eb658dcd-25.11-plus" and data.api_version == "1.1.0"
    assert data.control_board_version == "CVITek"
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(121.0154090279137)
    # the configured power target (the limit) and the tuner's current target differ in this capture
    assert data.wattage == 2472 and data.wattage_limit == 3031 and data.uptime == timedelta(seconds=21448)
    # configured 3031 W; DPS has the tuner at 2431 W now (asic-rs: tuning vs scaled tuning target)
    assert data.tuning_target is not None and data.tuning_target.target_watts == 3031
    assert data.scaled_tuning_target is not None and data.scaled_tuning_target.target_watts == 2431
    assert [f.rpm for f in data.fans] == [5879, 5819, 5909, 5909]
    assert [b.board_temperature for b in data.hashboards] == [56.5, 54.5, 56.0]
    assert [b.intake_temperature for b in data.hashboards] == [42.0, 42.0, 44.0]
    assert data.hashboards[2].hashrate is not None
    assert data.hashboards[2].hashrate.value == pytest.approx(38.24462948209911)
    assert data.hashboards[1].frequency == pytest.approx(402.727272)
    assert data.hashboards[0].voltage == pytest.approx(12.606122448979592)
    (group,) = data.pools
    assert group.name == "foremanGroup" and [p.accepted_shares for p in group.pools] == [5048, 0]
    assert group.pools[0].rejected_shares == 10 and group.pools[1].alive is True
    assert len(data.messages) == 54 and data.messages[0].timestamp == ts(2026, 4, 8, 8, 3, 18)


def test_rest_fallback_sources() -> None:
    """MAC/hostname from `network`, the target from `configuration/miner` when those are all there is."""
    backend = BraiinsBackend(lo("127.82.0.1"), S19XP, Session())
    config = fixture_bytes("braiins", "v25_07", "configuration_miner.json")
    data = backend.parse_raw({"web:network": fixture_bytes("braiins", "v25_07", "network.json"),
                              "web:configuration/miner": config})
    assert data.mac == "02:EE:DA:A9:B6:4A" and data.hostname == "Antminer"
    assert data.tuning_target is not None and data.tuning_target.target_watts == 3031 and data.wattage_limit == 3031


@pytest.mark.parametrize("version", ["v21_09", "v24_09", "v25_03", "v25_05"])
def test_rpc_version_replies(version: str) -> None:
    """The BOSer RPC `version` of every release: API version read, and the firmware recognised by it.
    (The GraphQL replies beside them are parsed by the tests of the releases before 25.07, below.)"""
    raw = fixture_bytes("braiins", version, "version.json")
    data = BraiinsBackend(lo("127.82.0.1"), S19XP, Session()).parse_raw({"rpc:version": raw}, [DataField.API_VERSION])
    assert data.api_version == "3.7" and data.errors == []
    assert BraiinsBackend.matches(Probe(ip=lo("127.82.0.1"), rpc={"version": json.loads(raw)}))


def test_matches_only_braiins_signals() -> None:
    page = HttpReply(200, {"content-type": "text/html"}, b"<html><title>Braiins OS</title></html>")
    assert BraiinsBackend.matches(Probe(ip=lo("127.82.0.1"), web=page))
    stock = json.loads(fixture_bytes("antminer", "v2020", "version.json"))
    assert not BraiinsBackend.matches(Probe(ip=lo("127.82.0.1"), rpc={"version": stock}))
    assert not BraiinsBackend.matches(Probe(ip=lo("127.82.0.1"), web=HttpReply(200, {}, b"<title>AxeOS</title>")))
    assert BraiinsBackend in BACKENDS


# ----- (b) the backend against the simulator -----------------------------------------------------
def session_for(fleet: SimFleet, **timeouts: float) -> Session:
    return Session(settings=TransportSettings(ports=fleet.ports or TransportSettings().ports,
                                              connect_timeout=timeouts.get("connect", 1.0),
                                              read_timeout=timeouts.get("read", 3.0),
                                              max_reply_bytes=int(timeouts.get("cap", 4 * 1024 * 1024))))


def backend_for(miner: BraiinsSim, session: Session) -> BraiinsBackend:
    device = BraiinsBackend.device_info("AntMiner", miner.model_name, "Braiins OS")
    return BraiinsBackend(miner.state.ip, device, session)


def releases(*names: str) -> list[str]:
    """The firmware versions of the named Braiins OS releases, for `sim_fleet(..., versions=...)`."""
    return [_RELEASES[name][0] for name in names]


def sim(fleet: SimFleet, index: int = 0) -> BraiinsSim:
    miner = list(fleet.miners.values())[index]
    assert isinstance(miner, BraiinsSim)
    return miner


async def test_identification_of_every_model(sim_fleet: FleetFactory) -> None:
    models, names = zip(*zip(BraiinsSim.models, sorted(_RELEASES) * 2, strict=False), strict=True)
    fleet = await sim_fleet(lo("127.82.1.0/24"), mix=["braiins"], models=models, versions=releases(*names))
    session = session_for(fleet)
    for expected in fleet.inventory():
        found = await identify(expected["ip"], session, timeout=5.0)
        assert found.error is None and found.miner is not None, found
        assert isinstance(found.miner.backend, BraiinsBackend)
        assert (found.miner.make, found.miner.model, found.miner.firmware) == (
            expected["make"], expected["model"], expected["firmware"])
        assert found.miner.device_info.hardware.chips_per_board == lookup_model("AntMiner", expected["model"]
                                                                                ).chips_per_board  # type: ignore[union-attr]
    await session.aclose()


async def test_identify_falls_back_to_graphql_model(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.2.0/24"),
                            mix=["braiins"], models=["Antminer S19 XP"], versions=releases("25.07"))
    session = session_for(fleet)
    no_boards = {"STATUS": [{"STATUS": "S", "Code": 69, "Msg": "Device Details"}], "DEVDETAILS": [], "id": 1}
    device = await BraiinsBackend.identify(Probe(ip=sim(fleet).state.ip, rpc={"devdetails": no_boards}), session)
    assert device is not None and device.model == "Antminer S19 XP" and device.firmware == "Braiins OS"
    assert sim(fleet).requests["80:POST /graphql"] == 1
    await session.aclose()


async def test_get_data_equals_the_simulator_state(sim_fleet: FleetFactory) -> None:
    # the REST releases (the GraphQL ones before 25.07 have their own test below)
    fleet = await sim_fleet(lo("127.82.3.0/24"), mix=["braiins"], models=BraiinsSim.models[:3],
                            versions=releases("25.07", "25.11", "26.04"))
    session = session_for(fleet)
    for miner in fleet.miners.values():
        assert isinstance(miner, BraiinsSim)
        s = miner.state
        s.messages = [(0, "Failed to resolve (\"pool.example.com\", 3333)")]
        data = await backend_for(miner, session).get_data()
        assert data.errors == [], data.errors
        assert data.hashrate is not None
        assert data.hashrate.into_unit("TH/s").value == pytest.approx(miner.inventory()["hashrate_ths"], rel=0.01)
        assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(s.model.nominal_ths)
        assert data.wattage == round(s.wattage) and data.wattage_limit == s.power_limit
        assert (data.mac, data.hostname, data.serial_number) == (s.mac, s.hostname, s.serial)
        assert data.firmware_version == s.firmware_version and data.api_version == miner.rest_api_version
        assert [f.rpm for f in data.fans] == s.fan_rpms
        assert [b.board_temperature for b in data.hashboards] == s.board_temps
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(s.hashrate_ths, rel=1e-6)
        assert [b.working_chips for b in data.hashboards] == [s.model.chips_per_board] * s.model.boards
        assert data.uptime is not None and abs(data.uptime.total_seconds() - s.uptime) <= 2
        assert data.is_mining is True and data.light_flashing is False
        assert [(p.url, p.user) for g in data.pools for p in g.pools] == [
            (p.url, p.username) for g in s.pools for p in g.pools]
        assert data.pools[0].pools[0].accepted_shares == s.accepted
        assert [m.message for m in data.messages] == ['Failed to resolve ("pool.example.com", 3333)']
        assert data.tuning_target is not None and data.tuning_target.target_watts == s.power_limit
    await session.aclose()


async def test_get_data_sends_each_command_once(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.4.0/24"), mix=["braiins"], models=["Antminer S21"], versions=releases("26.04"))
    miner = sim(fleet)
    session = session_for(fleet)
    backend = backend_for(miner, session)
    await backend.get_data()
    routes = ["miner/details", "miner/stats", "miner/hw/hashboards", "miner/errors", "cooling/state", "pools",
              "configuration/miner", "performance/tuner-state", "actions/locate", "version",
              "configuration/constraints"]
    assert {k: v for k, v in miner.requests.items()} == {
        "80:POST /api/v1/auth/login": 1, **{f"80:GET /api/v1/{r}": 1 for r in routes}}
    miner.requests.clear()
    await backend.get_data(fields=[DataField.HASHRATE, DataField.WATTAGE])  # the session token is reused
    assert dict(miner.requests) == {"80:GET /api/v1/miner/stats": 1}
    await session.aclose()


async def test_refused_login_falls_back_to_the_rpc(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.5.0/24"),
                            mix=["braiins"], models=["Antminer S19j Pro"], versions=releases("25.11"))
    miner = sim(fleet)
    miner.fault = Fault.AUTH_FAILURE
    session = session_for(fleet)
    data = await backend_for(miner, session).get_data()
    assert data.errors and all("refused the login" in e for e in data.errors)
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(miner.state.hashrate_ths, rel=0.01)
    assert [f.rpm for f in data.fans] == miner.state.fan_rpms and data.wattage_limit == miner.state.power_limit
    assert data.api_version == "3.7" and data.is_mining is True and len(data.hashboards) == 3
    assert data.mac is None  # only the REST API tells the MAC
    rpc = {k: v for k, v in miner.requests.items() if k.startswith("4028:")}
    assert rpc and all(count == 1 for count in rpc.values())
    assert miner.requests["80:POST /api/v1/auth/login"] == 2  # both default logins tried, once each
    await session.aclose()


async def test_every_fault_is_an_error_without_hanging(sim_fleet: FleetFactory) -> None:
    faults: list[Fault] = [f for f in Fault if f is not Fault.NONE]
    fleet = await sim_fleet(lo("127.82.6.0/24"), len(faults), ["braiins"], seed=6)
    session = session_for(fleet, connect=0.5, read=1.0, cap=256 * 1024)
    miners = [m for m in fleet.miners.values() if isinstance(m, BraiinsSim)]
    for miner, assigned in zip(miners, faults, strict=True):
        miner.fault = assigned
        miner.slow_seconds, miner.oversized_bytes = 2.5, 2 * 1024 * 1024

    async def outcome(miner: BraiinsSim) -> tuple[Fault, bool, bool]:
        found = await identify(miner.state.ip, session, timeout=3.0)
        identified_clean = found.error is None and found.miner is not None
        try:
            data = await backend_for(miner, session).get_data()
            read_error = bool(data.errors)
        except MinerError:
            read_error = True
        return miner.fault, identified_clean, read_error

    start = time.monotonic()
    results = await asyncio.gather(*(outcome(m) for m in miners))
    assert time.monotonic() - start < 20
    for fault, identified_clean, read_error in results:
        assert read_error, f"{fault}: get_data reported no error"
        # identification needs no login, so only a refused login leaves it clean
        assert identified_clean is (fault is Fault.AUTH_FAILURE), fault
    await session.aclose()


async def test_fault_light_pause_and_resume(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.7.0/24"),
                            mix=["braiins"], models=["Antminer S19 XP"], versions=releases("25.07"))
    miner, session = sim(fleet), session_for(fleet)
    backend = backend_for(miner, session)
    assert await backend.set_fault_light(True) is True
    assert miner.state.fault_light and (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False) is True and not miner.state.fault_light
    assert await backend.pause() is True
    data = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE])
    assert miner.state.mining is False and data.is_mining is False
    assert data.hashrate is not None and data.hashrate.value == 0
    assert await backend.resume() is True
    assert (await backend.get_data([DataField.IS_MINING])).is_mining is True
    await session.aclose()


async def test_power_limit_and_tuning_change_only_the_target(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.8.0/24"), mix=["braiins"], models=["Antminer S21"], versions=releases("25.11"))
    miner, session = sim(fleet), session_for(fleet)
    backend = backend_for(miner, session)
    pools_before, fan_before = list(miner.state.pools), miner.state.fan
    assert await backend.set_power_limit(3000.0) is True
    data = await backend.get_data([DataField.WATTAGE_LIMIT, DataField.TUNING_TARGET, DataField.POOLS])
    assert miner.state.power_limit == 3000 and data.wattage_limit == 3000
    assert data.tuning_target is not None and data.tuning_target.target_watts == 3000
    assert await backend.get_tuning_config() == TuningConfig.power(3000)
    target = HashRate(value=180.0, unit="TH/s")
    assert await backend.set_tuning_config(TuningConfig.hashrate(target)) is True
    assert await backend.get_tuning_config() == TuningConfig.hashrate(target)
    data = await backend.get_data([DataField.TUNING_TARGET, DataField.WATTAGE_LIMIT])
    assert data.tuning_target is not None and data.tuning_target.target_hashrate == target
    assert data.wattage_limit == 3000  # the power target stays as it was
    assert await backend.set_tuning_config(TuningConfig.power(3400)) is True and miner.state.power_limit == 3400
    assert miner.state.pools == pools_before and miner.state.fan == fan_before
    with pytest.raises(UnsupportedControlError):
        await backend.set_tuning_config(TuningConfig.mode("low"))
    with pytest.raises(MinerError):
        await backend.set_power_limit(100)  # below the firmware's bounds: refused, nothing changed
    assert miner.state.power_limit == 3400
    await session.aclose()


async def test_pools_round_trip(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.9.0/24"),
                            mix=["braiins"], models=["Antminer S19j Pro"], versions=releases("26.04"))
    miner, session = sim(fleet), session_for(fleet)
    backend = backend_for(miner, session)
    limit_before = miner.state.power_limit
    groups = [PoolGroup(name="main", quota=2, pools=[
        Pool(url="stratum+tcp://eu.example.net:3333", username="farm.a1"),
        Pool(url="stratum2+tcp://v2.example.net:3336/9awtMD5KQgvRUh2yFbjVeT7b6hjipWcAsQHd6wEhgtDT9soosna",
             username="farm.a1")]),
        PoolGroup(name="backup", quota=1, pools=[Pool(url="stratum+tcp://us.example.net:443", username="farm.b")])]
    assert await backend.get_pools_config() == [PoolGroup(name="default", quota=1, pools=[
        Pool(url=p.url, username=p.username) for p in miner.state.pools[0].pools])]
    assert await backend.set_pools_config(groups) is True
    assert await backend.get_pools_config() == groups
    assert miner.state.pools == groups and miner.state.power_limit == limit_before
    data = await backend.get_data([DataField.POOLS])
    assert [(g.name, g.quota, [p.url for p in g.pools]) for g in data.pools] == [
        (g.name, g.quota, [p.url for p in g.pools]) for g in groups]
    await session.aclose()


async def test_fan_config_round_trip(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.10.0/24"),
                            mix=["braiins"], models=["Antminer S19 Pro"], versions=releases("25.07"))
    miner, session = sim(fleet), session_for(fleet)
    backend = backend_for(miner, session)
    limit_before = miner.state.power_limit
    assert await backend.get_fan_config() == FanConfig.auto()
    assert await backend.set_fan_config(FanConfig.manual(70)) is True
    assert await backend.get_fan_config() == FanConfig.manual(70) and miner.state.fan == FanConfig.manual(70)
    data = await backend.get_data([DataField.FANS])
    assert [f.rpm for f in data.fans] == miner.state.fan_rpms == [4620] * 4
    assert await backend.set_fan_config(FanConfig.auto(target_temp=72.0, idle_speed=20)) is True
    assert await backend.get_fan_config() == FanConfig.auto(target_temp=72.0, idle_speed=20)
    assert miner.state.power_limit == limit_before
    await session.aclose()


async def test_scaling_config_round_trip(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.11.0/24"),
                            mix=["braiins"], models=["Antminer S19 XP"], versions=releases("26.04"))
    miner, session = sim(fleet), session_for(fleet)
    backend = backend_for(miner, session)
    assert await backend.get_scaling_config() == ScalingConfig(step=10, minimum=25, shutdown=False,
                                                               shutdown_duration=3)
    wanted = ScalingConfig(step=5, minimum=60, shutdown=True, shutdown_duration=4)
    assert await backend.set_scaling_config(wanted) is True
    assert await backend.get_scaling_config() == wanted
    assert miner.state.extra["dps"]["power_step"] == {"watt": round(3010 * 0.05)}
    assert miner.state.power_limit == 3010 and miner.state.fan == FanConfig.auto()
    await session.aclose()


async def test_change_password(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.12.0/24"), mix=["braiins"], models=["Antminer S21"], versions=releases("25.07"))
    miner, session = sim(fleet), session_for(fleet)
    backend = backend_for(miner, session)
    assert await backend.change_password("n3w-secret") is True and miner.state.password == "n3w-secret"
    fresh = backend_for(miner, session_for(fleet))  # defaults only: refused now
    assert any("refused the login" in e for e in (await fresh.get_data([DataField.MAC])).errors)
    told = session_for(fleet)
    told.credentials.add(CredentialRule(family="braiins", passwords=["n3w-secret"]))
    assert (await backend_for(miner, told).get_data([DataField.MAC])).mac == miner.state.mac
    backend._token = None  # the session that changed it remembers the new password
    assert (await backend.get_data([DataField.MAC])).mac == miner.state.mac
    await asyncio.gather(session.aclose(), fresh.session.aclose(), told.aclose())


async def test_logs_reset_and_upgrade_on_26_04(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.13.0/24"),
                            mix=["braiins"], models=["Antminer S19j Pro"], versions=releases("26.04"))
    miner, session = sim(fleet), session_for(fleet)
    miner.restart_seconds = 0.2
    backend = backend_for(miner, session)
    logs = await backend.read_logs()
    assert "bosminer" in logs and "Antminer S19J Pro" in logs
    image = b"BOS-UPGRADE" * 1000
    assert await backend.upgrade_firmware(image, "braiins-os_am2-s19_ssh.tar") is True
    assert miner.state.extra["last_upgrade"] == {"size": len(image), "hash": hashlib.sha256(image).hexdigest()}
    await asyncio.sleep(0.5)
    await backend.set_power_limit(2900)
    await backend.set_fan_config(FanConfig.manual(50))
    assert await backend.factory_reset() is True
    await asyncio.sleep(0.5)
    assert miner.state.power_limit == 3068 and miner.state.fan == FanConfig.auto()
    assert (await backend.get_data([DataField.WATTAGE_LIMIT])).wattage_limit == 3068
    await session.aclose()


async def test_restart_reboots(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.14.0/24"),
                            mix=["braiins"], models=["Antminer S19 XP"], versions=releases("25.11"))
    miner, session = sim(fleet), session_for(fleet)
    miner.restart_seconds = 0.3
    backend = backend_for(miner, session)
    assert (await backend.get_data([DataField.UPTIME])).uptime > timedelta(hours=1)  # type: ignore[operator]
    assert await backend.restart() is True
    await asyncio.sleep(0.7)
    data = await backend.get_data([DataField.UPTIME])
    assert data.uptime is not None and data.uptime < timedelta(seconds=30), data.errors
    await session.aclose()


async def test_older_release_lacks_the_newer_controls(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.15.0/24"),
                            mix=["braiins"], models=["Antminer S19 XP"], versions=releases("25.07"))
    miner, session = sim(fleet), session_for(fleet)
    backend = backend_for(miner, session)
    assert all(BraiinsBackend.supports(c) for c in ("restart", "pause", "resume", "set_fault_light",
                                                     "set_power_limit", "change_password", "read_logs",
                                                     "factory_reset", "upgrade_firmware", "set_pools_config",
                                                     "set_fan_config", "set_tuning_config", "set_scaling_config"))
    with pytest.raises(UnsupportedControlError):
        await backend.read_logs()
    with pytest.raises(UnsupportedControlError):
        await backend.factory_reset()
    with pytest.raises(UnsupportedControlError):
        await backend.upgrade_firmware(b"x" * 10, "image.tar")
    assert miner.state.extra.get("last_upgrade") is None and miner.state.mining
    await session.aclose()


# ----- the BOS+ gRPC API (port 50051): dicts <-> messages, then calls through a grpc.aio client ---
def test_dicts_round_trip_through_generated_messages() -> None:
    """The simulator's dict rules on BOS+ messages: a wrapper holds the bare value (and keeps a set zero),
    a oneof's member may sit under the oneof's name, None values and unknown keys are skipped."""
    board = {"id": "0", "enabled": True, "chips_count": 0, "model": "", "board_temp": {"degree_c": 61.5},
             "current_voltage": None, "no_such_field": 1}
    message = fill(miner_pb2.Hashboard(), board)
    assert message.HasField("chips_count") and message.chips_count.value == 0
    assert not message.HasField("current_voltage")
    expected = {"id": "0", "enabled": True, "chips_count": 0, "model": "", "board_temp": {"degree_c": 61.5}}
    assert to_dict(message) == expected
    assert decode(miner_pb2.Hashboard, encode(miner_pb2.Hashboard, board)) == expected
    groups = {"pool_groups": [
        {"name": "main", "load_balance_strategy": {"quota": {"value": 2}},
         "pools": [{"url": "stratum+tcp://a.example.com:3333", "user": "w1", "enabled": False}]},
        {"name": "backup", "fixed_share_ratio": {"value": 0.25}, "pools": []}]}
    reply = fill(pool_pb2.SetPoolGroupsResponse(), groups)
    assert [g.WhichOneof("load_balance_strategy") for g in reply.pool_groups] == ["quota", "fixed_share_ratio"]
    assert decode(pool_pb2.SetPoolGroupsResponse, reply.SerializeToString()) == {"pool_groups": [
        {"name": "main", "quota": {"value": 2},  # the oneof flattened into its member
         "pools": [{"url": "stratum+tcp://a.example.com:3333", "user": "w1", "enabled": False}]},
        {"name": "backup", "fixed_share_ratio": {"value": 0.25}}]}
    # a truncated field, a missing wire type, and a known field with the wrong wire type are refused
    for broken in (b"\x12\x05ab", b"\x0f", b"\x0d\x02\x00\x00\x00"):
        with pytest.raises(ProtobufError):
            decode(pool_pb2.Quota, broken)


@dataclass
class GrpcResult:
    code: grpc.StatusCode
    details: str
    headers: dict[str, str]  # the initial metadata
    reply: Any  # the deserialized reply (raw bytes without a reply type); None when the call failed


async def grpc_call(ip: str, path: str, request: Message, reply_type: type[Message] | None, token: str | None = None,
                    timeout: float = 3.0, max_reply_bytes: int = 4 * 1024 * 1024) -> GrpcResult:
    """One unary call through a grpc.aio channel of its own (so a dropped connection spoils no other call)."""
    options = [("grpc.enable_http_proxy", 0),  # no proxy from the environment: the simulator is on loopback
               ("grpc.max_receive_message_length", max_reply_bytes)]  # 4 MiB: grpc's default
    async with grpc.aio.insecure_channel(f"{ip}:50051", options=options) as channel:
        method = channel.unary_unary(path, request_serializer=type(request).SerializeToString,
                                     response_deserializer=None if reply_type is None else reply_type.FromString)
        call = method(request, metadata=[("authorization", token)] if token else None, timeout=timeout)
        try:
            reply = await call
        except grpc.aio.AioRpcError as exc:
            return GrpcResult(exc.code(), exc.details() or "", dict(exc.initial_metadata() or ()), None)
        return GrpcResult(await call.code(), await call.details(), dict(await call.initial_metadata() or ()), reply)


LOGIN = "/braiins.bos.v1.AuthenticationService/Login"
DETAILS = "/braiins.bos.v1.MinerService/GetMinerDetails"


async def grpc_login(ip: str, username: str = "root", password: str = "root",
                     reply_type: type[Message] | None = authentication_pb2.LoginResponse,
                     max_reply_bytes: int = 4 * 1024 * 1024) -> GrpcResult:
    return await grpc_call(ip, LOGIN, authentication_pb2.LoginRequest(username=username, password=password),
                           reply_type, max_reply_bytes=max_reply_bytes)


async def grpc_details(ip: str, token: str | None) -> GrpcResult:
    return await grpc_call(ip, DETAILS, miner_pb2.GetMinerDetailsRequest(), miner_pb2.GetMinerDetailsResponse, token)


async def test_grpc_login_and_reads(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.16.0/24"),
                            mix=["braiins"], models=["Antminer S19j Pro"], versions=releases("25.11"))
    miner = sim(fleet)
    s, ip = miner.state, miner.state.ip
    login = await grpc_login(ip)
    assert login.code == grpc.StatusCode.OK
    token = login.headers["authorization"]
    assert to_dict(login.reply) == {"token": token, "timeout_s": 3600}
    unauthenticated = await grpc_details(ip, None)
    assert unauthenticated.code == grpc.StatusCode.UNAUTHENTICATED and unauthenticated.reply is None
    details = to_dict((await grpc_details(ip, token)).reply)
    assert (details["hostname"], details["mac_address"], details["serial_number"]) == (s.hostname, s.mac.lower(),
                                                                                       s.serial)
    assert details["bos_version"]["current"] == s.firmware_version and details["status"] == 2
    assert details["miner_identity"]["name"] == "Antminer S19J Pro" and details["psu_info"]["version"] == 117
    stats = (await grpc_call(ip, "/braiins.bos.v1.MinerService/GetMinerStats", miner_pb2.GetMinerStatsRequest(),
                             miner_pb2.GetMinerStatsResponse, token)).reply
    assert stats.miner_stats.real_hashrate.last_5s.gigahash_per_second == pytest.approx(s.hashrate_ths * 1000)
    assert stats.power_stats.approximated_consumption.watt == round(s.wattage)
    assert stats.pool_stats.accepted_shares == s.accepted
    # a control: the locate LED, seen by the REST API too
    locate = await grpc_call(ip, "/braiins.bos.v1.ActionsService/SetLocateDeviceStatus",
                             actions_pb2.SetLocateDeviceStatusRequest(enable=True),
                             actions_pb2.LocateDeviceStatusResponse, token)
    assert locate.code == grpc.StatusCode.OK and locate.reply.enabled is True and s.fault_light is True
    unknown = await grpc_call(ip, "/braiins.bos.v1.MinerService/NoSuchMethod", miner_pb2.GetMinerDetailsRequest(),
                              miner_pb2.GetMinerDetailsResponse, token)
    assert unknown.code == grpc.StatusCode.UNIMPLEMENTED
    # the REST rule for logins: any password while none is set, only the set one afterwards
    s.password = "s3cret"
    assert (await grpc_login(ip)).code == grpc.StatusCode.UNAUTHENTICATED
    assert (await grpc_login(ip, password="s3cret")).code == grpc.StatusCode.OK
    assert (await grpc_login(ip, username="admin", password="s3cret")).code == grpc.StatusCode.UNAUTHENTICATED
    miner.fault = Fault.AUTH_FAILURE
    refused = await grpc_login(ip, password="s3cret")
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED and "authorization" not in refused.headers
    assert (await grpc_details(ip, token)).code == grpc.StatusCode.UNAUTHENTICATED
    assert miner.requests[f"50051:{LOGIN}"] == 5 and miner.requests[f"50051:{DETAILS}"] == 3


async def test_grpc_faults(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.82.17.0/24"), mix=["braiins"], models=["Antminer S19 XP"] * 4,
                            versions=releases("25.07") * 4)
    slow, malformed, truncated, oversized = (sim(fleet, i) for i in range(4))
    for miner, fault in ((slow, Fault.SLOW), (malformed, Fault.MALFORMED), (truncated, Fault.TRUNCATED),
                         (oversized, Fault.OVERSIZED)):
        miner.fault, miner.slow_seconds, miner.oversized_bytes = fault, 0.5, 1024 * 1024
    start = time.monotonic()
    late = await grpc_login(slow.state.ip)
    assert late.code == grpc.StatusCode.OK and late.reply.token and time.monotonic() - start >= 0.5
    garbled = await grpc_login(malformed.state.ip, reply_type=None)  # the bytes as they came
    assert garbled.code == grpc.StatusCode.OK and isinstance(garbled.reply, bytes)
    with pytest.raises(ProtobufError):
        decode(authentication_pb2.LoginResponse, garbled.reply)
    with pytest.raises(DecodeError):
        authentication_pb2.LoginResponse.FromString(garbled.reply)
    # the response headers (the login's token among them), then the connection closes: no message, no status
    cut = await grpc_login(truncated.state.ip)
    assert cut.code == grpc.StatusCode.UNAVAILABLE and cut.reply is None and "authorization" in cut.headers
    assert "Stream removed" in cut.details  # grpc's words for a call whose connection ended
    # a megabyte of one field, then the connection closes without a status: under grpc's default limit
    # the message is taken and the missing status fails the call; under a smaller limit the size does
    huge = await grpc_login(oversized.state.ip, reply_type=None)
    assert huge.code == grpc.StatusCode.UNAVAILABLE and huge.reply is None and "Stream removed" in huge.details
    limited = await grpc_login(oversized.state.ip, reply_type=None, max_reply_bytes=64 * 1024)
    assert limited.code == grpc.StatusCode.RESOURCE_EXHAUSTED and limited.reply is None
    assert f"larger than max ({1024 * 1024 + 4} vs. {64 * 1024})" in limited.details  # + tag and 3-byte length
    assert [m.requests[f"50051:{LOGIN}"] for m in (slow, malformed, truncated, oversized)] == [1, 1, 1, 2]


# ----- (c) the independent clients ---------------------------------------------------------------
PYASIC_GRPC_READS = {  # what pyasic's BOSer handler asks for over gRPC in a full get_data()
    "/braiins.bos.v1.MinerService/GetMinerDetails", "/braiins.bos.v1.MinerService/GetHashboards",
    "/braiins.bos.v1.MinerService/GetMinerStats", "/braiins.bos.v1.PerformanceService/GetActivePerformanceMode",
    "/braiins.bos.v1.CoolingService/GetCoolingState", "/braiins.bos.v1.ActionsService/GetLocateDeviceStatus",
    "/braiins.bos.v1.PoolService/GetPoolGroups", "/braiins.bos.v1.ConfigurationService/GetMinerConfiguration",
}


@pytest.mark.interop
async def test_pyasic_and_pyasic_rs_read_every_model(sim_fleet: FleetFactory) -> None:
    """pyasic and pyasic-rs against each simulated model, on the real ports.

    pyasic identifies the family from the page and the BOSer RPC and the model from `devdetails`;
    its BOSer handler then reads hash rate, uptime, mining state and tuner errors over the CGMiner RPC
    and everything else over the BOS+ gRPC API on 50051 (a Login per call, then the eight reads in
    PYASIC_GRPC_READS). pyasic-rs reads everything over the REST API after a GraphQL model/version query.
    """
    import pyasic  # type: ignore[import-untyped]
    from pyasic_rs import MinerFactory

    models, names = zip(*zip(BraiinsSim.models, ["26.04", "25.07", "25.11", "25.07"], strict=True), strict=True)
    fleet = await sim_fleet(lo("127.82.20.0/24"), mix=["braiins"], models=models, versions=releases(*names))
    if fleet.ports is None or fleet.ports.overrides:
        pytest.skip("the independent clients need the real ports 80/4028 (run as root)")
    for expected in fleet.inventory():
        miner = fleet.miners[expected["ip"]]
        assert isinstance(miner, BraiinsSim)
        s = miner.state
        s.fault_light = expected["ip"].endswith(".11")  # one of them blinks
        known = lookup_model("AntMiner", expected["model"])
        assert known is not None
        found = await pyasic.get_miner(expected["ip"])
        assert found is not None
        miner.requests.clear()
        data = await found.get_data()
        assert (data.make, data.firmware) == ("AntMiner", "BOS+")
        assert lookup_model("AntMiner", data.model) == known
        assert data.hashrate is not None and float(data.hashrate) == pytest.approx(expected["hashrate_ths"], rel=0.01)
        assert float(data.expected_hashrate) == pytest.approx(known.nominal_ths)
        assert (data.mac, data.hostname, data.serial_number) == (s.mac, s.hostname, s.serial)
        assert data.fw_ver == miner.release and data.api_ver == "3.7"
        assert data.wattage == round(s.wattage) and data.wattage_limit == s.power_limit
        assert [f.speed for f in data.fans] == s.fan_rpms
        assert len(data.hashboards) == known.boards
        assert [b.temp for b in data.hashboards] == [int(t) for t in s.board_temps]
        assert [b.chips for b in data.hashboards] == [known.chips_per_board] * known.boards
        assert [b.serial_number for b in data.hashboards] == miner.board_serials
        assert sum(float(b.hashrate) for b in data.hashboards) == pytest.approx(s.hashrate_ths, rel=1e-6)
        assert [(str(p.url), p.user, p.active) for p in data.pools] == [
            (p.url, p.username, i == 0) for i, p in enumerate(s.pools[0].pools)]
        assert (data.pools[0].accepted, data.pools[0].rejected) == (s.accepted, s.rejected)
        assert data.fault_light is s.fault_light and data.is_mining is True and data.errors == []
        assert abs(data.uptime - s.uptime) <= 2
        assert data.config is not None and data.config.mining_mode.power == s.power_limit
        assert [(p.url, p.user) for p in data.config.pools.groups[0].pools] == [
            (p.url, p.username) for p in s.pools[0].pools]
        grpc = {k.removeprefix("50051:"): v for k, v in miner.requests.items() if k.startswith("50051:")}
        assert grpc.pop("/braiins.bos.v1.AuthenticationService/Login") >= 1
        assert grpc == dict.fromkeys(PYASIC_GRPC_READS, 1)

        rs_miner = await MinerFactory().get_miner(expected["ip"])
        assert rs_miner is not None
        rs_data = await rs_miner.get_data()
        info = rs_data.device_info
        assert (info.make.lower(), info.firmware) == ("antminer", "Braiins")
        assert lookup_model("AntMiner", info.model) == known
        assert rs_data.hashrate is not None
        assert rs_data.hashrate.value == pytest.approx(expected["hashrate_ths"], rel=0.01)
        assert rs_data.mac == expected["mac"] and rs_data.hostname == expected["hostname"]
        assert rs_data.firmware_version == expected["firmware_version"]


@pytest.mark.interop
async def test_pyasic_controls_over_grpc(sim_fleet: FleetFactory) -> None:
    """pyasic's BOSer controls (gRPC): each one changes the simulator's state, and reads show it."""
    import pyasic  # type: ignore[import-untyped]

    fleet = await sim_fleet(lo("127.82.21.0/24"), mix=["braiins"], models=["Antminer S21"], versions=releases("26.04"))
    if fleet.ports is None or fleet.ports.overrides:
        pytest.skip("the independent clients need the real ports 80/4028 (run as root)")
    miner = sim(fleet)
    s = miner.state
    found = await pyasic.get_miner(s.ip)
    assert await found.fault_light_on() is True and s.fault_light is True
    assert await found.fault_light_off() is True and s.fault_light is False
    assert await found.stop_mining() is True and s.mining is False
    assert await found.resume_mining() is True and s.mining is True
    assert await found.set_power_limit(3200) is True and s.power_limit == 3200
    config = await found.get_config()
    assert config.mining_mode.power == 3200
    config.pools.groups[0].pools[0].url = "stratum+tcp://new.example.com:3333"
    await found.send_config(config)
    assert [p.url for p in s.pools[0].pools] == ["stratum+tcp://new.example.com:3333",
                                                 "stratum+tcp://backup.example.com:3333"]
    assert s.power_limit == 3200 and s.fan == FanConfig.auto()
    # the REST API sees what gRPC set
    backend = backend_for(miner, session_for(fleet))
    assert (await backend.get_pools_config())[0].pools[0].url == "stratum+tcp://new.example.com:3333"
    await backend.session.aclose()


# ===== Braiins OS before 25.07: GraphQL, LuCI and the RPC (loopback ranges 127.190-192.0.0/16) ==========
GQL_FILES = {"gql_system": "gql:system", "gql_boards": "gql:boards", "gql_pools": "gql:pools",
             "gql_tuning": "gql:tuning", "gql_events": "gql:events"}
# the captured replies of each release (asic-rs fixtures; "v21_09" holds a 22.08 miner's replies, which
# asic-rs's 21.09 backend reads) and the release the backend then takes the miner for
CAPTURED = {"v21_09": "22.08", "v24_09": "24.09", "v25_03": "25.03", "v25_05": "25.05.1"}
S9 = BraiinsBackend.device_info("AntMiner", "Antminer S9", "Braiins OS")
S21_PRO = BraiinsBackend.device_info("AntMiner", "Antminer S21 Pro", "Braiins OS")
S21_PLUS = BraiinsBackend.device_info("AntMiner", "Antminer S21+", "Braiins OS")


def graphql_backend(release: str, device: DeviceInfo = S9, session: Session | None = None,
                    ip: str | None = None) -> BraiinsBackend:
    """A backend as identification leaves it for a miner of `release` (before 25.07)."""
    backend = BraiinsBackend(ip or lo("127.190.0.1"), device, session or Session())
    backend.learned = {"rest_api_version": None, "graphql_release": release}
    return backend


def graphql_fixtures(version: str) -> dict[str, Any]:
    """The captured GraphQL replies of a release (whole, as the firmware sent them) and its RPC `version`."""
    replies: dict[str, Any] = {"rpc:version": fixture_bytes("braiins", version, "version.json")}
    for name, key in GQL_FILES.items():
        if FIXTURES.joinpath("braiins", version, f"{name}.json").exists():  # the 22.08 capture has no events
            replies[key] = fixture_bytes("braiins", version, f"{name}.json")
    return replies


def test_graphql_22_08_every_figure() -> None:
    """The 22.08 capture (an S9): every figure, the MAC from LuCI's network status."""
    replies = graphql_fixtures("v21_09")
    replies[LUCI_LAN] = fixture_bytes("braiins", "v21_09", "web_net_conf.json")
    data = graphql_backend("22.08").parse_raw(replies)
    assert data.errors == []
    assert (data.mac, data.hostname, data.serial_number) == ("01:23:45:67:89:10", "miner-60726c", None)
    assert data.firmware_version == "2022-09-13-0-11012d53-22.08-plus" and data.api_version == "3.7"
    assert data.control_board_version is None  # not in the 22.08 schema
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(7.160208944955902)
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(7.24240252323)
    assert data.wattage == 735 and data.wattage_limit == 900 and data.uptime == timedelta(seconds=1189)
    assert data.is_mining is True and data.light_flashing is False
    assert data.tuning_target is not None and data.tuning_target.target_watts == 900
    assert data.scaled_tuning_target is not None and data.scaled_tuning_target.target_watts == 900
    assert [(f.position, f.rpm) for f in data.fans] == [(0, 4080), (1, 5580), (2, 0), (3, 0)]
    # S9-era chain names 6, 7, 8 are slots 0, 1, 2
    assert [b.position for b in data.hashboards] == [0, 1, 2]
    first, second, third = data.hashboards
    assert first.hashrate is not None and first.hashrate.value == pytest.approx(2.9669503918025643)
    assert first.expected_hashrate is not None and first.expected_hashrate.value == pytest.approx(3.017667719808)
    assert (first.board_temperature, first.intake_temperature, first.outlet_temperature) == (71.0, None, None)
    assert first.working_chips == 63 and first.expected_chips == 63 and first.active is True
    assert first.frequency == pytest.approx(420.170944) and first.voltage == pytest.approx(9.097456932067873)
    assert (second.board_temperature, third.board_temperature) == (75.375, 66.125)
    assert third.hashrate is not None and third.hashrate.value == pytest.approx(2.9468691247815643)
    assert data.total_chips == 189
    assert [(g.name, g.quota) for g in data.pools] == [("group", 1), ("test", 1)]
    (main,), (second_group,) = (g.pools for g in data.pools)
    assert (main.url, main.user, main.accepted_shares, main.rejected_shares, main.active, main.alive) == (
        "stratum+tcp://btc1.example.pool:3333", "asic-rs.test", 31, 0, True, True)
    assert (second_group.url, second_group.accepted_shares) == ("stratum+tcp://btc2.example.pool:3333", 18)
    assert data.messages == []


def test_graphql_24_09_every_figure() -> None:
    data = graphql_backend("24.09", S21_PRO).parse_raw(graphql_fixtures("v24_09"))
    assert data.errors == []
    assert data.hostname == "IC078" and data.firmware_version == "2024-10-17-0-75912fc7-24.09-plus"
    assert data.serial_number is None and data.control_board_version is None  # both came with 25.03
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(230.7009492148378)
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(239.3135480814)
    assert data.wattage == 3572 and data.uptime == timedelta(seconds=717641)
    # the tuning capture is of another moment than the system one: its limit and target are 900 W
    assert data.wattage_limit == 900 and data.tuning_target is not None and data.tuning_target.target_watts == 900
    assert [f.rpm for f in data.fans] == [6414, 6414, 6354, 6324]
    assert [b.board_temperature for b in data.hashboards] == [56.4375, 53.375, 52.9375]
    assert [b.working_chips for b in data.hashboards] == [65, 65, 65]
    assert [b.serial_number for b in data.hashboards] == [None, None, None]
    assert data.hashboards[1].frequency == pytest.approx(611.121011)
    third = data.hashboards[2].hashrate
    assert third is not None and third.value == pytest.approx(74.457705937424)
    (group,) = data.pools
    assert (group.name, group.quota) == ("foremanGroup", 1)
    assert [(p.url, p.accepted_shares, p.rejected_shares, p.active) for p in group.pools] == [
        ("stratum+tcp://example.pool.com:3333", 111393, 239, True),
        ("stratum+tcp://example.pool2.com:3333", 13, 0, False)]
    assert data.messages == [] and data.light_flashing is False and data.is_mining is True


def test_graphql_25_03_every_figure() -> None:
    data = graphql_backend("25.03", S21_PLUS).parse_raw(graphql_fixtures("v25_03"))
    assert data.errors == []
    assert data.hostname == "Antminer" and data.firmware_version == "2025-04-07-0-424f9a7f-25.03-plus"
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(251.23533070591792)
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(259.19043918624)
    assert data.wattage == 4448 and data.wattage_limit == 3878 and data.uptime == timedelta(seconds=96949)
    assert data.scaled_tuning_target is not None and data.scaled_tuning_target.target_watts == 3878
    assert [f.rpm for f in data.fans] == [6418, 6448, 6328, 5998]
    # 25.03 names its sensors "Max Board", "Max Chip", "Inlet", "Outlet"
    first = data.hashboards[0]
    assert (first.board_temperature, first.intake_temperature, first.outlet_temperature) == (60.0, 39.0, 60.0)
    assert [b.serial_number for b in data.hashboards][:2] == ["NGSBYT0BEJCJD0CHY", "NGSBYT0BEJCJD0BP5"]
    assert first.frequency == pytest.approx(766.136363) and first.voltage == pytest.approx(12.945725)
    assert first.working_chips == 55 and first.expected_chips == 55
    assert first.hashrate is not None and first.hashrate.value == pytest.approx(83.91810633861414)
    (group,) = data.pools
    assert [(p.accepted_shares, p.rejected_shares) for p in group.pools] == [(10781, 24), (0, 0)]
    assert data.messages == []


def test_graphql_25_05_every_figure() -> None:
    data = graphql_backend("25.05.1", S21_PLUS).parse_raw(graphql_fixtures("v25_05"))
    assert data.errors == []
    assert data.firmware_version == "2025-06-25-0-45f356ea-25.05.1-plus" and data.hostname == "Antminer"
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(205.74960559787723)
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(216.72244199088)
    assert data.wattage == 3698 and data.wattage_limit == 3878 and data.uptime == timedelta(seconds=693609)
    assert [f.rpm for f in data.fans] == [6421, 6391, 6061, 6331]
    # 25.05 names them MAX_BOARD, MAX_CHIP, INLET, OUTLET
    assert [(b.board_temperature, b.intake_temperature, b.outlet_temperature) for b in data.hashboards] == [
        (51.5, 37.5, 51.5), (53.5, 39.5, 53.5), (54.5, 39.0, 54.5)]
    assert [b.serial_number for b in data.hashboards] == ["NGSBYT0BEJCJD074A", "NGSBYT0BEJCJD06ZX",
                                                           "NGSBYT0BEJCJD074C"]
    assert [b.frequency for b in data.hashboards] == [601.477272, 662.5, 662.5]
    (group,) = data.pools
    assert (group.name, group.quota) == ("foremanGroup", 1)
    assert [(p.url, p.user, p.accepted_shares, p.rejected_shares, p.active) for p in group.pools] == [
        ("stratum+tcp://example.pool.com:3333", "asic_rs.test", 92875, 164, True),
        ("stratum+tcp://example.pool2.com:3333", "asic_rs.test", 18, 0, False),
        ("stratum+tcp://stratum.braiins.com:3333", "ICM", 6, 0, False)]


@pytest.mark.parametrize(("version", "mac"), [("v21_09", "01:23:45:67:89:10"), ("v24_09", "02:9B:85:41:7E:08"),
                                               ("v25_03", "02:34:98:9E:9F:E1"), ("v25_05", "02:B7:87:EE:7F:F5")])
def test_luci_network_status_of_every_release(version: str, mac: str) -> None:
    """LuCI's `admin/network/iface_status/lan`, where the MAC is before 24.09 (and still is after)."""
    raw = fixture_bytes("braiins", version, "web_net_conf.json")
    assert graphql_backend("22.08").parse_raw({LUCI_LAN: raw}, [DataField.MAC]).mac == mac


def test_graphql_sources_follow_each_schema() -> None:
    """MAC over GraphQL from 24.09 (LuCI before), serial numbers and the control board from 25.03."""
    queries = {release: graphql_queries(release) for release in ("22.08", "24.09", "25.03")}
    assert "macAddress" not in queries["22.08"]["gql:system"] and "macAddress" in queries["24.09"]["gql:system"]
    assert "serialNumber" not in queries["24.09"]["gql:system"] and "serialNumber" in queries["25.03"]["gql:system"]
    assert "hbSerialNumber" in queries["25.03"]["gql:boards"] and "hbSerialNumber" not in queries["24.09"]["gql:boards"]
    assert graphql_backend("22.08").commands_for([DataField.MAC]) == {LUCI_LAN}
    assert graphql_backend("24.09").commands_for([DataField.MAC]) == {"gql:system"}
    assert graphql_backend("24.09").commands_for([DataField.SERIAL_NUMBER]) == set()


def test_graphql_messages_and_capabilities_restated() -> None:
    """Appeals and autotuning metadata shaped as the 21.09 schema declares them (no capture holds any)."""
    backend = graphql_backend("24.09", S21_PRO)
    appeals = {"data": {"events": {"appeals": [
        {"kind": "ERROR", "timestamp": 1730000000, "message": "Hashboard 2: no chips found"},
        {"kind": "WARNING", "timestamp": 1730000060, "message": "Fan 3 is slow"},
        {"kind": "SUCCESS", "timestamp": 1730000120, "message": "Tuning finished"}]}}}
    metadata = {"data": {"bosminer": {"metadata": {"autotuning": {
        "powerTarget": {"default": 3500, "min": 875, "max": 4550},
        "hashrateTarget": {"default": 234.0, "min": 58.5, "max": None}}}}}}
    data = backend.parse_raw({"gql:events": appeals, "gql:metadata": metadata},
                             [DataField.MESSAGES, DataField.TUNING_CAPABILITIES])
    assert data.errors == []
    assert [(m.message, m.severity.value, m.timestamp) for m in data.messages] == [
        ("Hashboard 2: no chips found", "error", 1730000000), ("Fan 3 is slow", "warning", 1730000060),
        ("Tuning finished", "info", 1730000120)]
    capabilities = data.tuning_capabilities
    assert capabilities is not None and capabilities.power is not None and capabilities.hashrate is not None
    assert capabilities.power.minimum is not None and capabilities.power.minimum.target_watts == 875
    assert capabilities.power.default is not None and capabilities.power.default.target_watts == 3500
    assert capabilities.hashrate.maximum is None
    assert capabilities.hashrate.minimum is not None and capabilities.hashrate.minimum.target_hashrate == HashRate(
        value=58.5, unit="TH/s")


def test_graphql_errors_are_errors() -> None:
    backend = graphql_backend("22.08")
    data = backend.parse_raw({"gql:system": b'{"data": null, "errors": [{"message": "Unauthorized"}]}'},
                             [DataField.HOSTNAME])
    # a reply with `errors` has no data to read; live, the transport turns it into a failed command
    assert data.hostname is None
    with pytest.raises(MinerError, match="Unauthorized"):
        gql_data({"data": None, "errors": [{"message": "Unauthorized"}]})
    with pytest.raises(MinerError):
        gql_data([])
    assert gql_data({"data": {"bos": {}}}) == {"bos": {}}
    assert release_of("2025-06-25-0-45f356ea-25.05.1-plus") == "25.05.1" and release_of("garbage") is None


# ----- the simulator's GraphQL executor ------------------------------------------------------------
def test_graphql_executor_rules() -> None:
    root: dict[str, Any] = {
        "query": {"bos": {"hostname": "m1", "info": {"version": {"full": "v"}}},
                  "bosminer": {"config": {"__typename": "BosminerConfig", "groups": [
                      {"id": "0", "strategy": {"__typename": "QuotaStrategy", "quota": 2}}]}}},
        "mutation": {"bos": {"setFaultLight": lambda args: {"enabled": args["enable"]}}},
    }
    reply = execute("{ bos { name: hostname info { version { full } } } bosminer { config { ... on BosminerConfig"
                    " { groups { id strategy { ... on QuotaStrategy { quota } ... on Other { x } } } } } } }", root)
    assert reply == {"data": {"bos": {"name": "m1", "info": {"version": {"full": "v"}}},
                              "bosminer": {"config": {"groups": [{"id": "0", "strategy": {"quota": 2}}]}}}}
    assert execute('mutation ($on: Boolean!) { bos { setFaultLight(enable: $on) { enabled } } }', root,
                   {"on": True}) == {"data": {"bos": {"setFaultLight": {"enabled": True}}}}
    assert execute("{ bos { macAddress } }", root)["errors"][0]["message"].startswith('Cannot query field "macAddress"')
    assert execute("{ bos { info } }", root)["errors"]  # an object needs a selection
    assert execute("{ bos { hostname { x } } }", root)["errors"]  # a scalar has none
    assert execute("{ bos { hostname ", root)["errors"][0]["message"].startswith("Syntax Error")
    assert execute("mutation { bos { setFaultLight(enable: $missing) { enabled } } }", root)["errors"]
    guarded = execute("{ bos { hostname } }", root, allowed=lambda path: path != ("query", "bos", "hostname"))
    assert guarded == {"data": None, "errors": [{"message": "Unauthorized"}]}
    assert parse('query Q { a(s: "x\\"y", n: -2.5e1, l: [1, true, null], o: {k: ENUM}) { b } }')[0].name == "Q"


# ----- (b) the backend against simulated old releases over loopback ----------------------------------
OLD_MODELS = ("Antminer S19j Pro", "Antminer S19 XP", "Antminer S21", "Antminer S19 Pro")


def old_releases(*names: str) -> list[str]:
    return [_GRAPHQL_RELEASES[name] for name in names]


async def identified(miner: BraiinsSim, session: Session) -> BraiinsBackend:
    found = await identify(miner.state.ip, session, timeout=5.0)
    assert found.error is None and found.miner is not None, found
    backend = found.miner.backend
    assert isinstance(backend, BraiinsBackend)
    return backend


async def test_old_releases_identify_and_read_as_the_state(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.190.1.0/24"), mix=["braiins"], models=OLD_MODELS,
                            versions=old_releases("22.08", "24.09", "25.03", "25.05"))
    session = session_for(fleet)
    for miner in fleet.miners.values():
        assert isinstance(miner, BraiinsSim)
        s = miner.state
        s.messages = [(0, "Hashboard 2: chip 14 is not responding")]
        backend = await identified(miner, session)
        assert (backend.device.make, backend.device.model, backend.device.firmware) == (
            miner.make, miner.model_name, "Braiins OS")
        assert backend.learned["graphql_release"] == miner.release and backend.firmware_version == s.firmware_version
        assert not any("/api/v1/auth" in k for k in miner.requests)  # no REST login tried at identification
        miner.requests.clear()
        data = await backend.get_data()
        assert data.errors == [], data.errors
        newer = miner.at_least("25.03")
        assert (data.mac, data.hostname, data.firmware_version) == (s.mac, s.hostname, s.firmware_version)
        assert data.serial_number == (s.serial if newer else None)
        assert data.control_board_version == ("Amlogic" if newer else None)
        assert data.api_version == "3.7"
        assert data.hashrate is not None and data.hashrate.value == pytest.approx(s.hashrate_ths, rel=1e-6)
        assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(s.model.nominal_ths)
        assert data.wattage == round(s.wattage) and data.wattage_limit == s.power_limit
        assert data.uptime is not None and abs(data.uptime.total_seconds() - s.uptime) <= 2
        assert data.is_mining is True and data.light_flashing is False
        assert [f.rpm for f in data.fans] == s.fan_rpms
        assert [b.board_temperature for b in data.hashboards] == s.board_temps
        assert [b.working_chips for b in data.hashboards] == [s.model.chips_per_board] * s.model.boards
        assert [b.serial_number for b in data.hashboards] == (miner.board_serials if newer else [None] * 3)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(s.hashrate_ths, rel=1e-6)
        assert [(p.url, p.user) for g in data.pools for p in g.pools] == [
            (p.url, p.username) for g in s.pools for p in g.pools]
        assert data.pools[0].pools[0].accepted_shares == s.accepted and data.pools[0].pools[0].active is True
        assert [(m.message, m.severity.value) for m in data.messages] == [
            ("Hashboard 2: chip 14 is not responding", "error")]
        assert data.tuning_target == data.scaled_tuning_target == TuningTarget(target_watts=s.power_limit)
        caps = data.tuning_capabilities
        assert caps is not None and caps.power is not None and caps.power.default is not None
        assert caps.power.default.target_watts == round(s.model.nominal_watts)
        # one login, then every query joined in one request; LuCI (login + network status) only where GraphQL
        # has no MAC
        luci = {} if miner.at_least("24.09") else {"80:POST /cgi-bin/luci": 1,
                                                   "80:GET /cgi-bin/luci/admin/network/iface_status/lan": 1}
        assert {k: v for k, v in miner.requests.items() if not k.startswith("4028:")} == {
            "80:POST /graphql": 2, "80:graphql auth.login": 1, **luci}
        assert dict((k, v) for k, v in miner.requests.items() if k.startswith("4028:")) == {"4028:version": 1}
    await session.aclose()


# the handle's capability properties per release (test_capabilities.PROPERTIES): before 25.07 everything
# but DPS and firmware upgrade over GraphQL; factory reset from 24.09
GRAPHQL_22_08 = {"pools_config", "fan_config", "tuning_config", "temperature_config", "read_logs", "set_fault_light",
                 "set_power_limit", "pause", "resume", "change_password", "restart"}
CAPABILITIES = {"22.08": GRAPHQL_22_08, "24.09": GRAPHQL_22_08 | {"factory_reset"},
                "25.03": GRAPHQL_22_08 | {"factory_reset"}, "25.05": GRAPHQL_22_08 | {"factory_reset"}}


async def test_old_release_capabilities_on_the_handle(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.190.3.0/24"), mix=["braiins"], models=OLD_MODELS,
                            versions=old_releases(*CAPABILITIES))
    session = session_for(fleet)
    properties = ("pools_config", "fan_config", "tuning_config", "scaling_config", "temperature_config",
                  "read_logs", "set_fault_light", "set_power_limit", "set_tuning_percent", "pause", "resume",
                  "change_password", "upgrade_firmware", "factory_reset", "restart")
    for label, miner in zip(CAPABILITIES, fleet.miners.values(), strict=True):
        found = await identify(miner.state.ip, session, timeout=5.0)
        assert found.miner is not None
        table = {prop for prop in properties if getattr(found.miner, f"supports_{prop}")}
        assert table == CAPABILITIES[label], label
    await session.aclose()


async def test_old_release_schemas_and_ports(sim_fleet: FleetFactory) -> None:
    """Each release answers only the fields of its schema; the gRPC port opens with 23.03; no REST API."""
    fleet = await sim_fleet(lo("127.190.2.0/24"), mix=["braiins"], models=OLD_MODELS[:3],
                            versions=old_releases("22.08", "24.09", "25.03"))
    old, middle, newer = (sim(fleet, i) for i in range(3))
    session = session_for(fleet)

    async def gql(miner: BraiinsSim, query: str, cookie: str = "") -> dict[str, Any]:
        reply = await session.http.request("POST", miner.state.ip, "/graphql", json={"query": query},
                                           headers={"Cookie": f"session_id={cookie}"} if cookie else None)
        assert reply.status == 200
        decoded = reply.json()
        assert isinstance(decoded, dict)
        return decoded

    # public without a session: the model and the version; everything else needs the login
    assert (await gql(old, "{ bosminer { info { modelName } } }"))["data"]["bosminer"]["info"]["modelName"] == \
        "Bitmain Antminer S19J Pro"
    assert (await gql(old, "{ bos { hostname } }")) == {"data": None, "errors": [{"message": "Unauthorized"}]}
    login = await session.http.request("POST", old.state.ip, "/graphql", json={
        "query": "mutation { auth { login(username: \"root\", password: \"root\") { ... on VoidResult { void } } } }"})
    cookie = login.headers["set-cookie"].split(";")[0].removeprefix("session_id=")
    assert (await gql(old, "{ bos { hostname } }", cookie))["data"] == {"bos": {"hostname": old.state.hostname}}
    assert "errors" in await gql(old, "{ bos { macAddress } }", cookie)  # 24.09 brought it
    for miner in (middle, newer):
        backend = await identified(miner, session)
        assert (await backend.graphql("{ bos { macAddress } }"))["bos"]["macAddress"] == miner.state.mac.lower()
    assert "errors" in await gql(middle, "{ bos { serialNumber } }", backend._gql_cookie or "")
    for miner in (old, middle, newer):
        rest = await session.http.request("GET", miner.state.ip, "/api/v1/version")
        assert rest.status == 404
    ports = fleet.ports or TransportSettings().ports

    async def grpc_open(miner: BraiinsSim) -> bool:
        try:
            _, writer = await asyncio.open_connection(miner.state.ip, ports(50051))
        except OSError:
            return False
        writer.close()
        return True

    assert [await grpc_open(m) for m in (old, middle, newer)] == [False, True, True]
    await session.aclose()


async def test_old_release_controls_apply_and_verify(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.191.1.0/24"), mix=["braiins"], models=["Antminer S19 XP", "Antminer S21"],
                            versions=old_releases("24.09", "22.08"))
    session = session_for(fleet)
    for miner in (sim(fleet, 0), sim(fleet, 1)):
        s = miner.state
        miner.restart_seconds = 0.2
        backend = await identified(miner, session)
        pools_before, fan_before = list(s.pools), s.fan
        assert await backend.set_fault_light(True) is True and s.fault_light is True
        assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
        assert await backend.set_fault_light(False) is True and s.fault_light is False
        assert await backend.pause() is True and s.mining is False
        paused = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE])
        assert paused.is_mining is False and paused.hashrate is not None and paused.hashrate.value == 0
        assert await backend.resume() is True and s.mining is True
        assert await backend.set_power_limit(3000.0) is True and s.power_limit == 3000
        assert (await backend.get_data([DataField.WATTAGE_LIMIT])).wattage_limit == 3000
        assert await backend.get_tuning_config() == TuningConfig.power(3000)
        target = HashRate(value=120.0, unit="TH/s")
        assert await backend.set_tuning_config(TuningConfig.hashrate(target)) is True
        assert s.extra["tuner_mode"] == 2 and s.extra["hashrate_target_ths"] == 120.0
        assert await backend.get_tuning_config() == TuningConfig.hashrate(target)
        assert (await backend.get_data([DataField.TUNING_TARGET])).tuning_target == TuningTarget(
            target_hashrate=target)
        assert await backend.set_tuning_config(TuningConfig.power(3100)) is True and s.power_limit == 3100
        with pytest.raises(MinerError):
            await backend.set_power_limit(100)  # below the firmware's bounds: refused, nothing changed
        assert s.power_limit == 3100 and s.pools == pools_before and s.fan == fan_before
        # pools
        groups = [PoolGroup(name="main", quota=2, pools=[Pool(url="stratum+tcp://eu.example.net:3333",
                                                              username="farm.a1")]),
                  PoolGroup(name="backup", quota=1, pools=[Pool(url="stratum+tcp://us.example.net:443",
                                                                username="farm.b")])]
        assert await backend.get_pools_config() == [PoolGroup(name="default", quota=1, pools=[
            Pool(url=p.url, username=p.username) for p in pools_before[0].pools])]
        assert await backend.set_pools_config(groups) is True
        assert s.pools == groups and await backend.get_pools_config() == groups and s.power_limit == 3100
        # one write, then bosminer restarts to take the pools (the mutations are counted by their fields)
        assert miner.requests["80:graphql bosminer.config.updateGroups"] == 1
        assert miner.requests["80:graphql bosminer.restart"] == 1
        # cooling
        assert await backend.get_fan_config() == FanConfig.auto(target_temp=75.0)
        assert await backend.set_fan_config(FanConfig.manual(60)) is True
        assert s.fan == FanConfig.manual(60) and s.fan_rpms == [3960] * s.model.fans
        assert await backend.get_fan_config() == FanConfig.manual(60)
        assert await backend.set_fan_config(FanConfig.auto(target_temp=70.0)) is True
        assert s.fan == FanConfig.auto(target_temp=70.0) and await backend.get_fan_config() == s.fan
        with pytest.raises(UnsupportedControlError):
            await backend.set_fan_config(FanConfig.auto(idle_speed=30))
        assert await backend.get_temperature_config() == TemperatureConfig(hot=90.0, danger=110.0)
        # logs, password, reboot
        logs = await backend.read_logs()
        assert f"bosminer: starting {miner.signature}" in logs
        assert await backend.change_password("n3w-secret") is True and s.password == "n3w-secret"
        backend._gql_cookie = None  # the session remembers the new password for the next login
        assert (await backend.get_data([DataField.HOSTNAME])).hostname == s.hostname
        fresh = await identified(miner, session_for(fleet))
        assert any("refused the login" in e for e in (await fresh.get_data([DataField.HOSTNAME])).errors)
        await fresh.session.aclose()
        uptime_before = s.uptime
        assert await backend.restart() is True
        await asyncio.sleep(0.5)
        assert s.uptime < uptime_before
        data = await backend.get_data([DataField.UPTIME, DataField.HASHRATE])
        assert data.uptime is not None and data.uptime < timedelta(seconds=30), data.errors
        # what the release does not have
        for control in ("upgrade_firmware", "get_scaling_config", "set_scaling_config"):
            assert not backend.can(control)
        with pytest.raises(UnsupportedControlError):
            await backend.upgrade_firmware(b"x" * 10, "image.tar")
        with pytest.raises(UnsupportedControlError):
            await backend.get_scaling_config()
        if miner.at_least("24.09"):
            assert backend.can("factory_reset")
            assert await backend.factory_reset() is True
            await asyncio.sleep(0.5)
            assert s.password == "" and s.power_limit == round(s.model.nominal_watts) and s.fan == FanConfig.auto()
        else:
            assert not backend.can("factory_reset") and "24.09" in backend.unavailable()["factory_reset"]
            with pytest.raises(UnsupportedControlError):
                await backend.factory_reset()
            assert s.password == "n3w-secret"
        assert all(backend.can(c) for c in ("restart", "pause", "resume", "set_fault_light", "set_power_limit",
                                            "change_password", "read_logs", "get_pools_config", "set_pools_config",
                                            "get_fan_config", "set_fan_config", "get_tuning_config",
                                            "set_tuning_config", "get_temperature_config"))
    await session.aclose()


async def test_old_release_refused_login_falls_back_to_the_rpc(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.191.2.0/24"), mix=["braiins"], models=["Antminer S19j Pro"],
                            versions=old_releases("25.03"))
    miner = sim(fleet)
    session = session_for(fleet)
    backend = await identified(miner, session)  # identification needs no login
    miner.fault = Fault.AUTH_FAILURE
    miner.requests.clear()
    data = await backend.get_data()
    assert data.errors and all("refused the login" in e for e in data.errors)
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(miner.state.hashrate_ths, rel=0.01)
    assert [f.rpm for f in data.fans] == miner.state.fan_rpms and data.wattage_limit == miner.state.power_limit
    assert len(data.hashboards) == 3 and data.is_mining is True and data.mac is None
    assert miner.requests["80:POST /graphql"] == 2  # both default logins tried, once each
    with pytest.raises(MinerError):
        await backend.set_fault_light(True)
    assert miner.state.fault_light is False
    await session.aclose()


def test_mix_braiins_offers_the_old_releases() -> None:
    fleet = SimFleet.generate(lo("127.191.3.0/24"), 40, ["braiins"], seed=3)
    versions = {m.state.firmware_version for m in fleet.miners.values()}
    assert set(_GRAPHQL_RELEASES.values()) <= versions and set(FIRMWARE_VERSIONS) == versions | set(
        FIRMWARE_VERSIONS)


async def test_mixed_scan_with_old_releases() -> None:
    miners = []
    families: list[tuple[type[SimMiner], str, str | None]] = [
        (BraiinsSim, "Antminer S19j Pro", _GRAPHQL_RELEASES["22.08"]), (AntminerStockSim, "Antminer S19j Pro", None),
        (BraiinsSim, "Antminer S21", _GRAPHQL_RELEASES["25.05"]), (LuxOSSim, "Antminer S21", None),
        (BraiinsSim, "Antminer S19 XP", _RELEASES["25.11"][0])]
    for i, (kind, name, version) in enumerate(families):
        model = lookup_model("AntMiner", name)
        assert model is not None
        miner = kind.build(lo(f"127.191.4.{20 + i}"), model, random.Random(i))
        if version is not None:
            miner.state.firmware_version = version
        miners.append(miner)
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.191.4.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, miner in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (
                miner.make, miner.model_name, miner.firmware)
            data = await found[ip].get_data()
            assert data.errors == [], (ip, data.errors)
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(miner.inventory()["hashrate_ths"], rel=0.01)
            if isinstance(miner, BraiinsSim):
                assert data.firmware_version == miner.state.firmware_version and data.mac == miner.state.mac


# ----- (c) the independent clients against the old releases --------------------------------------
@pytest.mark.interop
async def test_pyasic_and_pyasic_rs_read_the_old_releases(sim_fleet: FleetFactory) -> None:
    """pyasic-rs picks its backend by the GraphQL version (21.09 before 25.03, then 25.03 and 25.05) and
    reads GraphQL after a login (session cookie) plus LuCI's network status for the MAC. pyasic takes
    every Braiins OS S19/S21 for its BOSer class (gRPC on 50051 + the RPC): the releases from 23.03 on
    read in full; on 22.08, which has no gRPC API, its full get_data raises (its serial number step
    fails on the closed port) while the hash rate, from the RPC, reads alone."""
    import pyasic  # type: ignore[import-untyped]
    from pyasic_rs import MinerFactory as RsFactory

    fleet = await sim_fleet(lo("127.192.1.0/24"), mix=["braiins"], models=OLD_MODELS,
                            versions=old_releases("22.08", "24.09", "25.03", "25.05"))
    if fleet.ports is None or fleet.ports.overrides:
        pytest.skip("the independent clients need the real ports 80/4028 (run as root)")
    for expected in fleet.inventory():
        miner = fleet.miners[expected["ip"]]
        assert isinstance(miner, BraiinsSim)
        s = miner.state
        known = lookup_model("AntMiner", expected["model"])
        assert known is not None
        found = await pyasic.get_miner(expected["ip"])
        assert found is not None
        if miner.at_least("23.03"):
            data = await found.get_data()
            assert data.fw_ver == miner.release and data.mac == s.mac and data.hostname == s.hostname
            assert data.errors == [] and data.wattage == round(s.wattage)
        else:
            with pytest.raises(pyasic.APIError, match="serial_number"):
                await found.get_data()
            data = await found.get_data(include=["hashrate"])
        assert (data.make, data.firmware) == ("AntMiner", "BOS+") and lookup_model("AntMiner", data.model) == known
        assert data.hashrate is not None and float(data.hashrate) == pytest.approx(expected["hashrate_ths"], rel=0.01)

        miner.requests.clear()
        rs_miner = await RsFactory().get_miner(expected["ip"])
        assert rs_miner is not None
        rs_data = await rs_miner.get_data()
        info = rs_data.device_info
        assert (info.make.lower(), info.firmware) == ("antminer", "Braiins")
        assert lookup_model("AntMiner", info.model) == known
        assert rs_data.hashrate is not None
        assert rs_data.hashrate.value == pytest.approx(expected["hashrate_ths"], rel=0.01)
        assert rs_data.mac == s.mac and rs_data.hostname == s.hostname
        assert rs_data.firmware_version == s.firmware_version and rs_data.light_flashing is False
        assert len(rs_data.hashboards) == known.boards
        assert [f.rpm for f in rs_data.fans] == pytest.approx(s.fan_rpms)  # pyasic-rs converts via rad/s
        assert miner.requests["80:POST /graphql"] >= 2  # the version, the login, its queries
        assert (miner.requests["80:POST /cgi-bin/luci"] == 1) and not any(k.startswith("80:GET /api/v1")
                                                                          and "version" not in k
                                                                          for k in miner.requests)


@pytest.mark.interop
async def test_pyasic_rs_controls_over_graphql(sim_fleet: FleetFactory) -> None:
    """pyasic-rs's GraphQL mutations (its 21.09 and 25.05 backends): each changes the simulator's state."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet = await sim_fleet(lo("127.192.2.0/24"), mix=["braiins"], models=["Antminer S19 XP", "Antminer S21"],
                            versions=old_releases("22.08", "25.05"))
    if fleet.ports is None or fleet.ports.overrides:
        pytest.skip("the independent clients need the real ports 80/4028 (run as root)")
    for miner in (sim(fleet, 0), sim(fleet, 1)):
        s = miner.state
        rs_miner = await RsFactory().get_miner(s.ip)
        assert rs_miner is not None
        assert await rs_miner.set_fault_light(True) is True and s.fault_light is True
        assert await rs_miner.set_power_limit(3000) is True and s.power_limit == 3000
        assert await rs_miner.pause() is True and s.mining is False
        assert await rs_miner.resume() is True and s.mining is True
        assert "bosminer: starting" in await rs_miner.read_logs()
        groups = await rs_miner.get_pools_config()
        assert [p.username for g in groups for p in g.pools] == [p.username for g in s.pools for p in g.pools]


async def test_old_release_faults_are_errors_without_hanging(sim_fleet: FleetFactory) -> None:
    faults: list[Fault] = [f for f in Fault if f is not Fault.NONE]
    fleet = await sim_fleet(lo("127.191.5.0/24"), mix=["braiins"], models=["Antminer S19 XP"] * len(faults),
                            versions=old_releases("24.09") * len(faults))
    session = session_for(fleet, connect=0.5, read=1.0, cap=256 * 1024)
    miners = [sim(fleet, i) for i in range(len(faults))]
    for miner, assigned in zip(miners, faults, strict=True):
        miner.fault = assigned
        miner.slow_seconds, miner.oversized_bytes = 2.5, 2 * 1024 * 1024

    async def outcome(miner: BraiinsSim) -> tuple[Fault, bool]:
        backend = graphql_backend("24.09", S19XP, session, ip=miner.state.ip)
        try:
            return miner.fault, bool((await backend.get_data()).errors)
        except MinerError:
            return miner.fault, True

    # bounded by the session's timeouts (the test's own timeout catches a hang); no timed assertion
    for fault, read_error in await asyncio.gather(*(outcome(m) for m in miners)):
        assert read_error, f"{fault}: get_data reported no error"
    await session.aclose()


# ----- the queries against the firmware's own schemas --------------------------------------------
SCHEMAS = FIXTURES.parent / "meta" / "braiins"
_SDL_TYPE = re.compile(r"^(?:type|interface|input) (\w+)[^{]*\{(.*?)^\}", re.M | re.S)
_SDL_FIELD = re.compile(r"^\s+(\w+)(?:\([^)]*\))?\s*:\s*\[?\s*(\w+)", re.M)


def schema_fields(release: str) -> dict[str, dict[str, str]]:
    """type name -> {field: the type it returns} from a release's schema.graphql (unions resolve by fragment)."""
    text = re.sub(r"#[^\n]*", "", (SCHEMAS / release / "schema.graphql").read_text())
    return {name: dict(_SDL_FIELD.findall(body)) for name, body in _SDL_TYPE.findall(text)}


def unknown_fields(document: str, types: dict[str, dict[str, str]]) -> list[str]:
    """The fields of `document` its schema does not have (a path per field)."""
    (operation,) = parse(document)
    missing: list[str] = []

    def walk(selections: list[Any], type_name: str, path: str) -> None:
        for selection in selections:
            if not hasattr(selection, "name"):  # an inline fragment
                walk(selection.selections, selection.type_condition or type_name, path)
                continue
            if selection.name == "__typename":
                continue
            returned = types.get(type_name, {}).get(selection.name)
            if returned is None:
                missing.append(f"{path}.{selection.name} (on {type_name})")
            elif selection.selections:
                walk(selection.selections, returned, f"{path}.{selection.name}")

    walk(operation.selections, operation.kind.capitalize(), operation.kind)
    return missing


@pytest.mark.parametrize(("schema", "release"), [("21.09", "21.09"), ("24.09", "24.09"), ("25.03", "25.03"),
                                                  ("25.05.1", "25.05.1")])
def test_backend_queries_agree_with_each_schema(schema: str, release: str) -> None:
    """Every read query and every mutation the backend sends exists in that release's schema."""
    types = schema_fields(schema)
    documents = [*graphql_queries(release).values(), braiins_backend.GQL_LOGIN, braiins_backend.GQL_LOG,
                 *braiins_backend.GQL_MUTATIONS]
    if _version_tuple(release) >= _version_tuple("24.09"):
        documents.append(braiins_backend.GQL_FACTORY_RESET)
    for document in documents:
        assert unknown_fields(document, types) == [], document
    # and what the newer releases added is really missing from the older schemas
    assert unknown_fields("{ bos { macAddress serialNumber } }", schema_fields("21.09")) == [
        "query.bos.macAddress (on BosQuery)", "query.bos.serialNumber (on BosQuery)"]
    assert unknown_fields("{ bos { serialNumber } }", schema_fields("24.09")) == [
        "query.bos.serialNumber (on BosQuery)"]
