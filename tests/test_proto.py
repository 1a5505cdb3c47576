"""Proto Rig / Proto OS: the parsers on restated replies, the backend against the simulator (REST under
/api/v1/, a bearer token for all but `system`), identification, and the simulator against pyasic-rs
(pyasic has no Proto support).

Live tests run on 127.213.40.0/24: two Rigs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from asicfleet._errors import AuthenticationError, MinerError, UnsupportedControlError
from asicfleet._session import CredentialRule, CredentialStore, Session
from asicfleet.backends import Probe
from asicfleet.backends.proto import (
    COOLING,
    ERRORS,
    HARDWARE,
    MINING,
    NETWORK,
    POOLS,
    SYSTEM,
    TELEMETRY,
    Proto,
    fan_config_of,
)
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import HashRate, TuningTarget
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim._fleet import servable_models
from asicfleet.sim.proto import RIG_SHAPE, ProtoSim
from asicfleet.transport import HttpReply, PortMap, TransportSettings
from tests.conftest import lo

SUBNET = lo("127.213.40.0/24")
FIXTURES = Path(__file__).parent / "fixtures" / "proto"
KEYS = {SYSTEM: "system", NETWORK: "network", HARDWARE: "hardware", MINING: "mining", POOLS: "pools",
        COOLING: "cooling", ERRORS: "errors", TELEMETRY: "telemetry"}


def raw_replies() -> dict[str, bytes]:
    return {key: (FIXTURES / f"{name}.json").read_bytes() for key, name in KEYS.items()}


def rig(session: Session | None = None, ip: str = lo("127.213.0.1")) -> Proto:
    return Proto(ip, Proto.device_info("Proto", "Rig", "Stock"), session or Session())


# ----- (a) parsers on restated replies -----------------------------------------------------------
def test_fixture_every_figure() -> None:
    data = rig().parse_raw(raw_replies())
    assert data.errors == []
    assert (data.mac, data.hostname, data.serial_number) == ("02:1A:2B:3C:4D:5E", "rig-b7", "PR-CB-0042")
    assert (data.firmware_version, data.api_version, data.control_board_version) == ("1.9.2", "1.9.1", "C3")
    assert data.hashrate == HashRate(value=102.5, unit="TH/s")  # telemetry miner.hashrate
    assert data.expected_hashrate == HashRate(value=108.0, unit="TH/s")  # ideal_hashrate_ghs 108000
    assert (data.wattage, data.wattage_limit) == (2511.25, 2500)
    assert data.uptime == timedelta(seconds=7250)  # reboot_uptime_s
    assert data.is_mining is True  # DegradedMining still mines
    assert data.tuning_target == TuningTarget(target_watts=2500)
    assert [(f.position, f.rpm) for f in data.fans] == [(0, 4100), (1, 4180)]
    # a sparse chassis: boards at the positions of their slots 1, 3 and 4
    assert [(b.position, b.serial_number, b.working_chips) for b in data.hashboards] == [
        (0, "HB-A1", 120), (2, "HB-A3", 120), (3, "HB-A4", 120)]
    third = data.hashboards[1]
    assert third.hashrate == HashRate(value=34.25, unit="TH/s") and third.expected_hashrate == HashRate(
        value=36.0, unit="TH/s")  # 108 TH/s ideal over 3 boards
    assert (third.board_temperature, third.intake_temperature, third.outlet_temperature, third.voltage) == (
        52.5, 45.5, 58.5, 14.4)
    primary, spare = data.pools[0].pools
    assert (primary.url, primary.user, primary.active, primary.accepted_shares, primary.rejected_shares) == (
        "stratum+tcp://mine.example.net:3333", "acct.rig-b7", True, 880, 4)
    assert (spare.position, spare.active) == (1, False)
    assert [(m.code, m.message) for m in data.messages] == [
        (1024, "hashboard 2: Hashboard not detected"), (0, "psu 0: PSU input voltage low (PSU_WARN)")]
    import json
    assert fan_config_of(json.loads(raw_replies()[COOLING])["cooling-status"]) == FanConfig.manual(70)


def test_fallbacks_when_the_login_fails() -> None:
    refused = AuthenticationError("refused")
    replies: dict[str, Any] = {key: refused for key in KEYS if key != SYSTEM}
    replies[SYSTEM] = raw_replies()[SYSTEM]
    data = rig().parse_raw(replies)
    assert data.hostname == "rig-b7" and data.serial_number == "PR-CB-0042"  # from system-info
    assert data.uptime == timedelta(seconds=7260) and data.hashrate is None


def test_matches_the_title() -> None:
    def probe(page: bytes) -> Probe:
        return Probe(ip=lo("127.213.0.1"), web=HttpReply(200, {}, page))

    assert Proto.matches(probe(b"<title>Proto OS</title>"))
    assert not Proto.matches(probe(b"<title>AxeOS</title>")) and not Proto.matches(Probe(ip=lo("127.213.0.1")))


def test_the_catalogue_keeps_no_shape_and_the_simulator_serves_one() -> None:
    known = lookup_model("Proto", "Rig")
    assert known is not None and known.boards is None  # hot-swappable: no fixed shape in the catalogue
    (served,) = servable_models(ProtoSim)
    assert (served.boards, served.chips_per_board, served.fans) == (
        RIG_SHAPE["boards"], RIG_SHAPE["chips_per_board"], RIG_SHAPE["fans"])


# ----- the simulated fleet -----------------------------------------------------------------------
@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    known = lookup_model("Proto", "RIG")
    assert known is not None
    miners = []
    for index in range(2):
        miner = ProtoSim.build(SUBNET.replace("0/24", str(10 + index)), ProtoSim.simulable(known),
                               random.Random(index))
        miner.restart_seconds = 0.3
        miners.append(miner)
    started = SimFleet(miners)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def session(fleet: SimFleet) -> AsyncIterator[Session]:
    made = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), read_timeout=2.0))
    yield made
    await made.aclose()


def rigs(fleet: SimFleet) -> list[ProtoSim]:
    return [m for m in fleet.miners.values() if isinstance(m, ProtoSim)]


def backend(sim: ProtoSim, session: Session) -> Proto:
    return Proto(sim.state.ip, Proto.device_info("Proto", "Rig", "Stock"), session)


async def test_discovery(fleet: SimFleet, session: Session) -> None:
    from asicfleet.discovery import identify

    for sim in rigs(fleet):
        sim.requests.clear()
        found = await identify(sim.state.ip, session, timeout=3.0)
        assert found.error is None and found.miner is not None, found
        assert isinstance(found.miner.backend, Proto)
        assert (found.miner.make, found.miner.model, found.miner.backend.firmware_version) == ("Proto", "Rig", "1.8.0")
        assert sim.requests["80:GET /api/v1/system"] == 1 and "80:POST /api/v1/auth/login" not in sim.requests


async def test_get_data_equals_state(fleet: SimFleet, session: Session) -> None:
    for sim in rigs(fleet):
        sim.requests.clear()
        data = await backend(sim, session).get_data()
        assert sim.requests["80:POST /api/v1/auth/login"] == 1  # once, before the protected reads
        assert all(n == 1 for n in sim.requests.values())
        s = sim.state
        assert data.errors == []
        assert data.hashrate is not None and data.hashrate.value == pytest.approx(s.hashrate_ths, rel=1e-6)
        assert data.wattage == pytest.approx(s.wattage) and data.wattage_limit == s.power_limit
        assert (data.mac, data.hostname, data.serial_number) == (s.mac, s.hostname, s.serial)
        assert len(data.hashboards) == s.model.boards and sum(b.working_chips or 0 for b in data.hashboards) == (
            s.model.boards * s.model.chips_per_board)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(s.hashrate_ths)
        assert [f.rpm for f in data.fans] == s.fan_rpms
        assert [p.url for p in data.pools[0].pools] == [p.url for p in s.pools[0].pools]
        assert data.is_mining is True and data.messages == []


async def test_protected_routes_need_the_token(fleet: SimFleet, session: Session) -> None:
    sim = rigs(fleet)[0]
    http = session.http
    assert (await http.request("GET", sim.state.ip, "/api/v1/system")).status == 200
    for route in ("mining", "pools", "cooling", "errors", "telemetry", "hardware", "network"):
        assert (await http.request("GET", sim.state.ip, f"/api/v1/{route}")).status == 401, route
    login = await http.request("POST", sim.state.ip, "/api/v1/auth/login", json={"password": "nope"})
    assert login.status == 401
    token = (await http.request("POST", sim.state.ip, "/api/v1/auth/login", json={"password": ""})).json()
    reply = await http.request("GET", sim.state.ip, "/api/v1/mining",
                               headers={"Authorization": f"Bearer {token['access_token']}"})
    assert reply.status == 200 and reply.json()["mining-status"]["status"] == "Mining"


async def test_pause_resume_and_power_target(fleet: SimFleet, session: Session) -> None:
    sim = rigs(fleet)[0]
    miner = backend(sim, session)
    assert await miner.pause() is True and sim.state.mining is False
    data = await miner.get_data()
    assert data.is_mining is False and data.hashrate == HashRate(value=0.0, unit="TH/s")
    assert await miner.resume() is True and sim.state.mining is True
    per_watt = sim.state.extra["ths_per_watt"]
    assert await miner.set_power_limit(2800.4) is True
    assert sim.state.power_limit == 2800 and sim.state.hashrate_ths == pytest.approx(2800 * 1.01 * per_watt, rel=1e-3)
    assert await miner.get_tuning_config() == TuningConfig.power(2800)
    assert await miner.set_tuning_config(TuningConfig.power(3000)) is True and sim.state.power_limit == 3000
    assert (await miner.get_data()).wattage_limit == 3000
    with pytest.raises(MinerError):
        await miner.set_power_limit(200)  # below what the target accepts: 400
    with pytest.raises(UnsupportedControlError):
        await miner.set_tuning_config(TuningConfig.mode("low"))


async def test_pools_fan_and_locate(fleet: SimFleet, session: Session) -> None:
    sim = rigs(fleet)[0]
    miner = backend(sim, session)
    wanted = [PoolGroup(name="default", quota=1, pools=[
        Pool(url="stratum+tcp://new.example.org:3333", username="acct.a", password="p"),
        Pool(url="stratum+tcp://other.example.org:3334", username="acct.b", password="q")])]
    assert await miner.set_pools_config(wanted) is True
    assert [(p.url, p.username, p.password) for p in sim.state.pools[0].pools] == [
        ("stratum+tcp://new.example.org:3333", "acct.a", "p"), ("stratum+tcp://other.example.org:3334", "acct.b", "q")]
    (group,) = await miner.get_pools_config()
    assert [(p.url, p.username, p.password) for p in group.pools] == [
        ("stratum+tcp://new.example.org:3333", "acct.a", ""), ("stratum+tcp://other.example.org:3334", "acct.b", "")]

    assert await miner.set_fan_config(FanConfig.manual(80)) is True and sim.state.fan == FanConfig.manual(80)
    assert await miner.get_fan_config() == FanConfig.manual(80)
    assert await miner.set_fan_config(FanConfig.auto(target_temp=55)) is True
    assert sim.state.fan == FanConfig.auto(target_temp=55) == await miner.get_fan_config()

    assert await miner.set_fault_light(True) is True and sim.state.fault_light is True
    first = sim.state.extra["locate_until"]
    assert await miner.set_fault_light(True) is True and sim.state.extra["locate_until"] == first  # ignored
    with pytest.raises(UnsupportedControlError):
        await miner.set_fault_light(False)


async def test_password_logs_and_reboot(fleet: SimFleet, session: Session) -> None:
    sim = rigs(fleet)[1]
    miner = backend(sim, session)
    assert "mining started" in await miner.read_logs()
    assert await miner.change_password("rig-secret-1") is True and sim.state.password == "rig-secret-1"
    assert (await miner.get_data()).errors == []  # logs in again with the new password
    fresh = Session(settings=session.settings)
    try:
        data = await backend(sim, fresh).get_data()
        assert data.hashrate is None and any("refused" in e for e in data.errors)
        assert data.firmware_version == "1.8.0"  # `system` needs no login
    finally:
        await fresh.aclose()
    stored = CredentialStore()
    stored.add(CredentialRule(family="proto", username="", passwords=["rig-secret-1"]))
    configured = Session(settings=session.settings, credentials=stored)
    try:
        assert (await backend(sim, configured).get_data()).errors == []
    finally:
        await configured.aclose()

    assert await miner.restart() is True
    deadline = time.monotonic() + 10
    while True:
        try:
            data = await miner.get_data()
            if not data.errors:
                break
        except MinerError:
            pass
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert data.uptime is not None and data.uptime < timedelta(seconds=10)


@pytest.mark.parametrize("fault", [Fault.HUNG, Fault.MALFORMED, Fault.AUTH_FAILURE, Fault.RESET])
async def test_faults_yield_errors(fleet: SimFleet, fault: Fault) -> None:
    quick = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), read_timeout=1.0, connect_timeout=1.0))
    try:
        sim = rigs(fleet)[0]
        sim.fault = fault
        data = await backend(sim, quick).get_data()
        assert data.errors and data.hashrate is None, data.errors
    finally:
        await quick.aclose()


async def test_mixed_scan(sim_fleet: Any) -> None:
    from asicfleet import MinerFactory

    mixed = await sim_fleet(lo("127.213.42.0/24"), 8, ["proto", "futurebit", "nerdaxe", "bitaxe"], seed=6)
    factory = MinerFactory.from_subnet(lo("127.213.42.0/24")).with_port_map(mixed.ports or PortMap())
    found = {str(m.ip): m for m in await factory.scan()}
    assert sorted(found) == sorted(mixed.miners)
    for ip, sim in mixed.miners.items():
        inventory = sim.inventory()
        assert (found[ip].make, found[ip].model) == (inventory["make"], inventory["model"]), ip
        data = await found[ip].get_data()
        assert data.hashrate is not None
        assert data.hashrate.into_unit("TH/s").value == pytest.approx(inventory["hashrate_ths"], rel=0.01)


# ----- (c) against pyasic-rs ---------------------------------------------------------------------
@pytest.mark.interop
async def test_pyasic_rs_reads_the_rig(fleet: SimFleet) -> None:
    """pyasic-rs finds "Proto OS" in the page, reads system-info.model, logs in with the empty password."""
    from pyasic_rs import MinerFactory

    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic-rs only talks to port 80; the simulator could not bind it (not root)")
    for sim in rigs(fleet):
        found = await MinerFactory().get_miner(sim.state.ip)
        assert found is not None
        data = await found.get_data()
        info = data.device_info
        assert (info.make, info.model, info.firmware) == ("Proto", "Rig", "Proto Stock")
        assert data.hashrate is not None and str(data.hashrate.unit) == "TH/s"
        assert float(data.hashrate) == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)


@pytest.mark.interop
async def test_pyasic_does_not_know_the_rig(fleet: SimFleet) -> None:
    import pyasic  # type: ignore[import-untyped]

    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic only talks to the real ports; the simulator could not bind them (not root)")
    for sim in rigs(fleet):
        assert await pyasic.get_miner(sim.state.ip) is None  # no Proto support in pyasic
