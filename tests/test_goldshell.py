"""Goldshell stock firmware: parsers on restated replies (tests/fixtures/goldshell), identification, the backend
against the simulator over loopback (reads with figures, every control applied and checked on the simulator's
state), a mixed scan with the other families, and pyasic / pyasic-rs against the simulator (marker `interop`).

Addresses: 127.195.0.0/16 only (and 127.197.0.0/16 for the mixed scan).
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
from asicfleet._errors import AuthenticationError, MinerConnectionError, UnsupportedControlError
from asicfleet._session import CredentialRule, Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.goldshell import (
    Goldshell,
    login_cipher,
    model_from_status,
    parse_hashboards,
    parse_is_mining,
    plan_index,
)
from asicfleet.backends.innosilicon import Innosilicon
from asicfleet.config import Pool, PoolGroup
from asicfleet.data import HashAlgorithm
from asicfleet.discovery._identify import identify
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.goldshell import SLEEP_LEVEL, VERSIONS, GoldshellSim
from asicfleet.sim.innosilicon import InnosiliconSim
from asicfleet.transport import HttpReply, PortMap, rpc_call
from tests.capabilities import check_tables
from tests.conftest import identified_backend, lo, only_miner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "goldshell"
ALL_MODELS = GoldshellSim.models


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fixture_backend(model: str = "Goldshell CK5") -> Goldshell:
    return Goldshell(lo("127.195.0.1"), Goldshell.device_info("Goldshell", model, "Stock"), Session())


def all_replies() -> dict[str, Any]:
    return {"rpc:summary": fixture("rpc_summary.json"), "rpc:devs": fixture("rpc_devs.json"),
            "rpc:devdetails": fixture("rpc_devdetails.json"), "web:status": fixture("status.json"),
            "web:setting": fixture("setting.json")}


# ===== (a) parsers ======================================================================================
def test_fields_from_the_rpc_and_the_web_api() -> None:
    data = fixture_backend().extract(all_replies())
    assert data.errors == []
    assert data.hashrate is not None and data.hashrate.algo is HashAlgorithm.EAGLESONG
    assert data.hashrate.value == pytest.approx(10.86100025)  # `MHS 20s`, MH/s
    assert data.uptime == timedelta(seconds=741600)
    assert (data.mac, data.firmware_version, data.control_board_version) == ("28:E2:97:0A:1B:2C", "2.1.8", "MCB_V3_3")
    assert data.is_mining is True and data.light_flashing is False
    assert [f.rpm for f in data.fans] == [2100] * 4
    assert [b.active for b in data.hashboards] == [True, True, True, False]
    assert [b.working_chips for b in data.hashboards] == [84, 84, 84, 0]
    assert [b.board_temperature for b in data.hashboards] == [78.7, 81.25, 81.4, None]  # 0 marks no reading
    assert (data.hashboards[1].intake_temperature, data.hashboards[1].outlet_temperature) == (90.0, 91.0)
    assert data.hashboards[0].frequency == 840.0 and data.hashboards[3].hashrate is not None
    assert data.expected_hashrate is not None and data.expected_hashrate.value == 12  # the catalogue's CK5
    assert (data.wattage, data.serial_number, data.hostname) == (None, None, None)  # the firmware reports none


def test_the_web_devs_stand_in_for_a_failed_rpc() -> None:
    backend = fixture_backend()
    data = backend.extract({"rpc:summary": MinerConnectionError("refused"),
                            "web:cgminer?cgminercmd=devs": fixture("cgminer_devs.json")}, [DataField.HASHRATE])
    assert data.hashrate is not None
    assert data.hashrate.value == pytest.approx((2990000.25 + 3240000.25 + 3205000.0 + 3015000.0) / 1e6)
    assert backend.fallback_commands([DataField.HASHRATE], {"rpc:summary": MinerConnectionError("refused")}) == {
        "web:cgminer?cgminercmd=devs"}


def test_login_cipher_and_model_strings() -> None:
    assert login_cipher("123456789") == "bbad7537f4c8b6ea31eea0b3d760e257"  # what pyasic sends for the default
    assert len(login_cipher("a much longer password than one block")) == 96
    assert model_from_status(fixture("status.json")) == "Goldshell CK5"
    assert model_from_status({"model": "Goldshell-KDBoxPro"}) == "Goldshell KD Box Pro"
    assert model_from_status({"model": "Goldshell-SC5Pro"}) == "Goldshell-SC5Pro"  # not catalogued: kept raw
    assert model_from_status({"model": ""}) is None and model_from_status([]) is None


def test_power_plans() -> None:
    setting = fixture("setting.json")
    assert plan_index(setting, SLEEP_LEVEL) == 1 and parse_is_mining(setting) is True
    assert parse_is_mining({**setting, "select": 1}) is False
    assert parse_is_mining({**setting, "select": 7}) is None
    boards = parse_hashboards(fixture("rpc_devs.json"), None, board_count=5)
    assert len(boards) == 5 and boards[4].active is False and boards[0].working_chips is None


def test_a_hostile_reply_costs_its_fields_only() -> None:
    data = fixture_backend().extract({**all_replies(), "rpc:devs": {"DEVS": "none"}, "web:setting": []})
    assert data.hashboards == [] and data.fans == [] and data.mac is None
    assert data.hashrate is not None and data.firmware_version == "2.1.8"
    assert any("hashboards" in e for e in data.errors) and any("fans" in e for e in data.errors)


# ===== identification signals ===========================================================================
def _probe(version: dict[str, Any] | Exception | None = None, web: HttpReply | None = None) -> Probe:
    return Probe(ip=lo("127.195.0.1"), web=web, rpc={} if version is None else {"version": version})


def test_matches_signals() -> None:
    page = HttpReply(200, {"content-type": "text/html"}, b"<html><title>cloud-box</title></html>")
    assert Goldshell.matches(_probe(MinerConnectionError("refused"), page))
    version = {"STATUS": [{"STATUS": "S", "Msg": "BFGMiner versions", "Description": "intminer 5.4.2"}],
               "VERSION": [{"BFGMiner": "5.4.2", "API": "3.1"}]}
    assert Goldshell.matches(_probe(version))
    stock = {"STATUS": [{"STATUS": "S", "Description": "cgminer 1.0.0"}], "VERSION": [{"Type": "Antminer S19 Pro"}]}
    assert not Goldshell.matches(_probe(stock)) and not Goldshell.matches(_probe())
    assert not AntminerStock.matches(_probe(version, page)) and not Innosilicon.matches(_probe(version, page))
    assert backend_for("goldshell") is Goldshell and BACKENDS.index(Goldshell) < BACKENDS.index(AntminerStock)


# ===== (c) against the simulator over loopback ==========================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
def goldshell_miners(family_miners: Callable[..., Start]) -> Start:
    """`fleet, session = await goldshell_miners(models)`: one simulated miner per model on its own 127.195.N.x block
    (conftest's `family_miners`)."""
    return family_miners(GoldshellSim, "127.195", ("Goldshell KD5",))


def only(fleet: SimFleet) -> tuple[str, GoldshellSim]:
    return only_miner(fleet, GoldshellSim)


async def _backend(session: Session, ip: str) -> Goldshell:
    return await identified_backend(session, ip, Goldshell)


async def test_identify_every_simulated_model(goldshell_miners: Start) -> None:
    fleet, session = await goldshell_miners(ALL_MODELS)
    for ip, sim in fleet.miners.items():
        backend = await _backend(session, ip)
        info = backend.device
        assert (info.make, info.model, info.firmware) == ("Goldshell", sim.model_name, "Stock")
        assert info.hardware.chips_per_board == sim.state.model.chips_per_board == 46
        assert backend.firmware_version == sim.state.firmware_version
    empty = await identify(lo("127.195.250.99"), session, timeout=5)  # nothing listens: one refused connection
    assert empty.miner is None and empty.absent == "refused" and empty.error is None


async def test_status_is_open_and_the_rest_needs_the_token(goldshell_miners: Start) -> None:
    fleet, session = await goldshell_miners()
    ip, sim = only(fleet)
    status = await session.http.request("GET", ip, "/mcb/status")
    assert status.status == 200 and status.json()["model"] == "Goldshell-KD5"
    for path in ("/mcb/setting", "/mcb/pools", "/mcb/cgminer"):
        assert (await session.http.request("GET", ip, path)).status == 401
    assert (await session.http.request("PUT", ip, "/mcb/restart")).status == 401 and sim.state.extra["restarts"] == 0
    wrong = await session.http.request("GET", ip, "/user/login", params={
        "username": "admin", "password": "nope", "cipher": "false"})
    assert wrong.status == 401
    plain = await session.http.request("GET", ip, "/user/login", params={
        "username": "admin", "password": "123456789", "cipher": "false"})
    token = plain.json()["JWT Token"]
    assert (await session.http.request("GET", ip, "/mcb/setting", headers={"Authorization": token})).status == 200
    version = await rpc_call(ip, "version", settings=session.settings)  # the RPC needs no login
    assert version["STATUS"][0]["Description"] == "intminer 5.4.2"
    raw_stats = await session.http.request("GET", ip, "/mcb/cgminer", params={"cgminercmd": "devs"},
                                           headers={"Authorization": f"Bearer {token}"})
    assert len(raw_stats.json()["data"]) == 4


async def test_get_data_matches_the_simulator_state(goldshell_miners: Start) -> None:
    fleet, session = await goldshell_miners(ALL_MODELS)
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, GoldshellSim)
        data = await (await _backend(session, ip)).get_data()
        state, inventory = sim.state, sim.inventory()
        assert data.errors == []
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.001)
        assert data.hashrate.algo is state.model.algo
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(data.hashrate.value,
                                                                                           rel=0.001)
        assert [b.board_temperature for b in data.hashboards] == [sim.board_temps(i)[2] for i in range(4)]
        assert [b.working_chips for b in data.hashboards] == [46] * 4 and all(b.active for b in data.hashboards)
        assert [b.frequency for b in data.hashboards] == [float(sim.hardware[3])] * 4
        assert [f.rpm for f in data.fans] == state.fan_rpms
        assert (data.mac, data.firmware_version, data.api_version) == (state.mac, state.firmware_version, "3.1")
        assert data.control_board_version == sim.hardware[2]
        assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 2
        assert [[(p.url, p.user) for p in g.pools] for g in data.pools] == [
            [(p.url, p.username) for p in g.pools] for g in state.pools]
        assert data.pools[0].pools[0].active is True and data.pools[0].pools[0].accepted_shares == state.accepted
        assert data.is_mining is True and data.light_flashing is False
        assert data.expected_hashrate is not None and data.expected_hashrate.value == state.model.nominal_ths


async def test_get_data_sends_each_request_once(goldshell_miners: Start) -> None:
    fleet, session = await goldshell_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    sim.requests.clear()
    await backend.get_data()
    assert dict(sim.requests) == {"80:GET /user/login": 1, "80:GET /mcb/status": 1, "80:GET /mcb/setting": 1,
                                  "4028:version": 1, "4028:summary": 1, "4028:devs": 1, "4028:devdetails": 1,
                                  "4028:pools": 1}
    sim.requests.clear()
    await backend.get_data()  # the token is kept
    assert "80:GET /user/login" not in sim.requests
    sim.requests.clear()
    await backend.get_data([DataField.HASHRATE, DataField.UPTIME])
    assert dict(sim.requests) == {"4028:summary": 1}


async def test_pause_resume_and_fault_light(goldshell_miners: Start) -> None:
    fleet, session = await goldshell_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.pause() is True
    assert sim.level == SLEEP_LEVEL and sim.state.mining is False
    data = await backend.get_data([DataField.HASHRATE, DataField.IS_MINING])
    assert data.is_mining is False and data.hashrate is not None and data.hashrate.value == 0
    assert await backend.resume() is True
    assert sim.level == 0 and sim.state.mining is True
    assert (await backend.get_data([DataField.HASHRATE])).hashrate.value == pytest.approx(  # type: ignore[union-attr]
        sim.inventory()["hashrate_ths"], rel=0.001)
    assert await backend.set_fault_light(True) and sim.state.extra["ledcontrol"] is True
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False) and sim.state.fault_light is False
    assert sim.state.extra["temp_target"] == 65 and sim.state.extra["tempcontrol"] is True  # written back unchanged


async def test_restart_reboots(goldshell_miners: Start) -> None:
    fleet, session = await goldshell_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.restart() is True
    assert sim.state.extra["restarts"] == 1
    for _ in range(100):  # back after its restart time
        try:
            data = await backend.get_data([DataField.UPTIME])
        except MinerConnectionError:
            data = None
        if data is not None and data.uptime is not None:
            break
        await asyncio.sleep(0.1)
    assert data is not None and data.uptime is not None and data.uptime.total_seconds() < 60


async def test_pools_round_trip(goldshell_miners: Start) -> None:
    fleet, session = await goldshell_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    before = await backend.get_pools_config()
    assert [(p.url, p.username) for p in before[0].pools] == [(p.url, p.username) for p in sim.state.pools[0].pools]
    wanted = [PoolGroup(name="default", quota=1, pools=[
        Pool(url="stratum+tcp://kda.pool.example:3700", username="farm.kd5", password="x"),
        Pool(url="stratum+tcp://kda.backup.example:3700", username="farm.kd5b", password="p2"),
        Pool(url="stratum+tcp://kda.third.example:443", username="farm.kd5c", password="p3")])]
    assert await backend.set_pools_config(wanted) is True
    assert [(p.url, p.username, p.password) for p in sim.state.pools[0].pools] == [
        (p.url, p.username, p.password) for p in wanted[0].pools]
    assert await backend.get_pools_config() == wanted
    data = await backend.get_data([DataField.POOLS])
    assert [p.url for p in data.pools[0].pools] == [p.url for p in wanted[0].pools]
    with pytest.raises(ValueError, match="one pool group"):
        await backend.set_pools_config([*wanted, PoolGroup(name="b", quota=1, pools=wanted[0].pools[:1])])
    with pytest.raises(ValueError, match="one pool group"):
        await backend.set_pools_config([])


async def test_change_password(goldshell_miners: Start) -> None:
    fleet, session = await goldshell_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.change_password("n3w-secret") is True
    assert sim.state.password == "n3w-secret"
    fresh = await _backend(session, ip)  # the session remembers the new password
    assert (await fresh.get_data([DataField.MAC])).mac == sim.state.mac


async def test_unsupported_controls_and_a_wrong_password(goldshell_miners: Start) -> None:
    fleet, session = await goldshell_miners()
    ip, sim = only(fleet)
    session.credentials.add(CredentialRule(family="goldshell", username="admin", passwords=["wrong"]))
    sim.state.password = "changed"  # neither the configured nor the default password fits
    backend = await _backend(session, ip)
    data = await backend.get_data()
    assert data.hashrate is not None and data.firmware_version == sim.state.firmware_version  # RPC and status
    assert data.mac is None and any("refused the login" in e for e in data.errors)
    with pytest.raises(AuthenticationError):
        await backend.pause()
    assert sim.state.mining is True
    for control in ("set_power_limit", "get_fan_config", "get_tuning_config"):
        assert not backend.can(control)
    with pytest.raises(UnsupportedControlError):
        await backend.set_power_limit(2000)


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_fault_modes_yield_errors_without_hanging(goldshell_miners: Start, fault: Fault) -> None:
    fleet, session = await goldshell_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    fleet.set_fault(ip, fault)
    data = await asyncio.wait_for(backend.get_data(), 30)  # a guard against a hang, not a timing assertion
    if fault is Fault.AUTH_FAILURE:  # the RPC and status need no login; the kept token still works
        assert data.hashrate is not None
    elif data.hashrate is not None:  # the web devs, over the connection kept open from before the fault
        assert data.errors and data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.001)
    else:
        assert data.errors


async def test_mixed_scan_tells_goldshell_from_the_others() -> None:
    miners = []
    plan = [(GoldshellSim, "Goldshell", "Goldshell KD5"), (AntminerStockSim, "AntMiner", "Antminer S19j Pro"),
            (InnosiliconSim, "Innosilicon", "Innosilicon A11 Pro"), (GoldshellSim, "Goldshell", "Goldshell CK5")]
    for i, (kind, make, name) in enumerate(plan):
        model = lookup_model(make, name)
        assert model is not None
        miners.append(kind.build(lo(f"127.197.1.{20 + i}"), model, random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.197.1.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)


# ===== capabilities: the supports_* table at both simulated firmware versions ============================
async def test_capabilities_at_both_versions(goldshell_miners: Start, tmp_path: Path) -> None:
    """The same table at both simulated releases: the Goldshell web API has no version-dependent control."""
    fleet, _ = await goldshell_miners(("Goldshell KD5", "Goldshell CK5"))
    sims = list(fleet.miners.values())
    for sim, version in zip(sims, VERSIONS, strict=True):
        sim.state.firmware_version = version
    await check_tables(sims, {"pools_config", "set_fault_light", "pause", "resume", "change_password", "restart"},
                       tmp_path, fleet.ports)


# ===== (d) the independent clients against the simulator ===============================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


@pytest.mark.interop
async def test_pyasic_reads_every_model(goldshell_miners: Start) -> None:
    """pyasic: `GET /` ("cloud-box") or RPC devdetails (`intchains_qomo`) identify; the model from `/mcb/status`.
    Its full get_data fails on the firmware's list-shaped `/mcb/pools` (its Goldshell config reader looks for a
    `pools` key in an object; Foreman's capture is a list, which we keep), so the fields are read one by one."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await goldshell_miners(ALL_MODELS)
    _real_ports(fleet)
    for ip, sim in fleet.miners.items():
        miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        inventory = sim.inventory()
        with pytest.raises(pyasic.errors.APIError, match="config"):
            await miner.get_data()
        data = await miner.get_data(include=["hashrate", "mac", "fw_ver", "fans", "hashboards", "pools", "api_ver"])
        assert (data.make, data.firmware) == (inventory["make"], inventory["firmware"])
        assert lookup_model("Goldshell", f"Goldshell {data.model}").name == inventory["model"]  # type: ignore[union-attr]
        assert data.hashrate is not None
        assert float(data.hashrate.into(data.hashrate.unit.__class__.TH)) == pytest.approx(  # its TH/s
            inventory["hashrate_ths"], rel=0.01)
        assert data.fw_ver == inventory["firmware_version"] and data.mac == inventory["mac"]
        assert [f.speed for f in data.fans] == sim.state.fan_rpms
        assert [b.chips for b in data.hashboards] == [46] * 4
        assert [p.user for p in data.pools] == [p.username for p in sim.state.pools[0].pools]


@pytest.mark.interop
async def test_pyasic_rs_reads_every_model(goldshell_miners: Start) -> None:
    """pyasic-rs: `GET /` ("cloud-box") identifies; the model from `/mcb/status`, kept as the firmware spells it
    (`Goldshell-KD5`), with no algorithm (`Unknown`), so its rate is in MH/s. get_data reads the RPC
    (summary, devs, devdetails, version, pools) and the web `setting` and `status`."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await goldshell_miners(ALL_MODELS)
    _real_ports(fleet)
    factory = RsFactory()
    for ip, sim in fleet.miners.items():
        miner = await factory.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert data.device_info.make.lower() == inventory["make"].lower()
        assert data.device_info.firmware == "Goldshell Stock"
        assert data.device_info.model == sim.hardware[0]
        assert data.hashrate is not None and str(data.hashrate.unit) .lower().startswith("m")
        assert data.hashrate.value / 1e6 == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.mac == inventory["mac"] and data.firmware_version == inventory["firmware_version"]
        assert [f.rpm for f in data.fans] == pytest.approx(sim.state.fan_rpms)


@pytest.mark.interop
async def test_interop_controls_change_the_simulator(goldshell_miners: Start) -> None:
    """pyasic's controls land in the simulator's state: stop/resume select the sleep and the stock plan, its
    send_config deletes the pools (first to last, with the ids of one read) and adds the new ones. It has no
    Goldshell LED or reboot (both report False)."""
    import pyasic
    from pyasic.config import MinerConfig, PoolConfig

    fleet, _ = await goldshell_miners()
    _real_ports(fleet)
    ip, sim = only(fleet)
    miner = await pyasic.get_miner(ip)
    assert await miner.stop_mining() is True and sim.level == SLEEP_LEVEL and sim.state.mining is False
    assert await miner.resume_mining() is True and sim.level == 0 and sim.state.mining is True
    config = MinerConfig(pools=PoolConfig.simple([{"url": "stratum+tcp://kda.example:3700", "user": "farm.x",
                                                    "password": "p1"}]))
    await miner.send_config(config)
    assert [(p.url, p.username, p.password) for p in sim.state.pools[0].pools] == [
        ("stratum+tcp://kda.example:3700", "farm.x", "p1")]
    assert await miner.fault_light_on() is False and sim.state.fault_light is False
    assert await miner.reboot() is False and sim.state.extra["restarts"] == 0
