"""Innosilicon stock firmware: parsers on restated replies (tests/fixtures/innosilicon), identification, the
backend against the simulator over loopback (reads with figures, every control applied and checked on the
simulator's state), a mixed scan with the other families, and pyasic / pyasic-rs against the simulator
(marker `interop`).

Addresses: 127.196.0.0/16 only (and 127.197.0.0/16 for the mixed scan).
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
from asicfleet.backends.goldshell import Goldshell
from asicfleet.backends.innosilicon import Innosilicon, model_from_type, parse_messages, parse_total_hash
from asicfleet.config import Pool, PoolGroup
from asicfleet.data import HashAlgorithm
from asicfleet.discovery._identify import identify
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.goldshell import GoldshellSim
from asicfleet.sim.innosilicon import VERSIONS, InnosiliconSim
from asicfleet.transport import HttpReply, PortMap, rpc_call
from tests.capabilities import check_tables
from tests.conftest import identified_backend, lo, only_miner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "innosilicon"
ALL_MODELS = InnosiliconSim.models


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fixture_backend(model: str = "Innosilicon T3H+") -> Innosilicon:
    return Innosilicon(lo("127.196.0.1"), Innosilicon.device_info("Innosilicon", model, "Stock"), Session())


def all_replies() -> dict[str, Any]:
    return {"rpc:summary": fixture("rpc_summary.json"), "rpc:stats": fixture("rpc_stats.json"),
            "rpc:version": fixture("rpc_version.json"), "rpc:pools": fixture("rpc_pools.json"),
            "web:getAll": fixture("getAll.json"), "web:overview": fixture("overview.json"),
            "web:getErrorDetail": {"success": True, "code": 0}}


# ===== (a) parsers ======================================================================================
def test_fields_from_the_rpc_and_the_web_api() -> None:
    data = fixture_backend().extract(all_replies())
    assert data.errors == []
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(51.4000005)  # `MHS 1m`, MH/s
    assert data.uptime == timedelta(seconds=48700)
    assert (data.firmware_version, data.api_version, data.control_board_version) == ("t3h+-1.2.1", "3.7", "g19")
    assert data.mac == "00:0A:35:12:34:56" and data.wattage == 3300
    assert [b.working_chips for b in data.hashboards] == [114, 112, 114]  # the pool row after them is no board
    assert [b.hashrate.value for b in data.hashboards if b.hashrate] == pytest.approx([17.1000002, 16.9000002,
                                                                                      17.2700002])
    assert [(b.intake_temperature, b.board_temperature, b.outlet_temperature) for b in data.hashboards] == [
        (57.0, 62.0, 71.0), (61.0, 64.0, 72.0), (56.0, 60.0, 67.0)]
    assert [[p.user for p in g.pools] for g in data.pools] == [["farm.t3h", "farm.t3h"]]
    assert data.pools[0].pools[0].active is True and data.pools[0].pools[0].accepted_shares == 5120
    assert data.is_mining is True and data.messages == []
    assert data.fans == []  # a duty percentage is all the firmware gives, not a speed
    assert (data.serial_number, data.hostname, data.wattage_limit) == (None, None, None)


def test_the_web_total_and_the_error_code() -> None:
    backend = fixture_backend()
    data = backend.extract({"rpc:summary": MinerConnectionError("refused"), "web:getAll": fixture("getAll.json")},
                           [DataField.HASHRATE])
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(51.4000005)  # H/s
    assert parse_total_hash({"all": {"total_hash": {"Hash Rate": 1500.5}}}) is not None
    assert parse_total_hash({"all": {"total_hash": {"Hash Rate": 1500.5}}},
                            HashAlgorithm.ETHASH).value == pytest.approx(0.0015005)  # type: ignore[union-attr]
    assert [(m.code, m.message) for m in parse_messages({"code": 32})] == [(32, "Innosilicon error code 32")]
    assert parse_messages({"code": 0}) == [] and parse_messages({}) == []
    assert model_from_type({"type": "T3H+"}) == "Innosilicon T3H+"
    assert model_from_type({"type": "a11pro"}) == "Innosilicon A11 Pro"
    assert model_from_type({"type": "T9"}) == "T9" and model_from_type({"type": ""}) is None


def test_a_hostile_reply_costs_its_fields_only() -> None:
    data = fixture_backend().extract({**all_replies(), "rpc:stats": {"STATS": "none"}, "web:getAll": []})
    assert data.hashboards == [] and data.wattage is None and data.mac == "00:0A:35:12:34:56"  # from overview
    assert data.hashrate is not None and data.control_board_version == "g19"
    assert any("hashboards" in e for e in data.errors)


# ===== identification signals ===========================================================================
def _probe(version: dict[str, Any] | Exception | None = None, web: HttpReply | None = None) -> Probe:
    return Probe(ip=lo("127.196.0.1"), web=web, rpc={} if version is None else {"version": version})


def test_matches_signals() -> None:
    page = HttpReply(200, {"content-type": "text/html"}, b"<html><title>DragonMint</title></html>")
    assert Innosilicon.matches(_probe(MinerConnectionError("refused"), page))
    version = fixture("rpc_version.json")
    assert Innosilicon.matches(_probe(version))
    stock = {"STATUS": [{"STATUS": "S", "Description": "cgminer 1.0.0"}], "VERSION": [{"Type": "Antminer S19 Pro"}]}
    assert not Innosilicon.matches(_probe(stock)) and not Innosilicon.matches(_probe())
    assert not AntminerStock.matches(_probe(version, page)) and not Goldshell.matches(_probe(version, page))
    assert backend_for("innosilicon") is Innosilicon and BACKENDS.index(Innosilicon) < BACKENDS.index(AntminerStock)


# ===== (c) against the simulator over loopback ==========================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
def inno_miners(family_miners: Callable[..., Start]) -> Start:
    """`fleet, session = await inno_miners(models)`: one simulated miner per model on its own 127.196.N.x block
    (conftest's `family_miners`)."""
    return family_miners(InnosiliconSim, "127.196", ("Innosilicon A11 Pro",))


def only(fleet: SimFleet) -> tuple[str, InnosiliconSim]:
    return only_miner(fleet, InnosiliconSim)


async def _backend(session: Session, ip: str) -> Innosilicon:
    return await identified_backend(session, ip, Innosilicon)


async def test_identify_every_simulated_model(inno_miners: Start) -> None:
    fleet, session = await inno_miners(ALL_MODELS)
    for ip, sim in fleet.miners.items():
        backend = await _backend(session, ip)
        info = backend.device
        assert (info.make, info.model, info.firmware) == ("Innosilicon", sim.model_name, "Stock")
        assert info.hardware.chips_per_board == sim.state.model.chips_per_board
        assert info.algo is HashAlgorithm.ETHASH and backend.firmware_version == sim.state.firmware_version
    empty = await identify(lo("127.196.250.99"), session, timeout=5)  # nothing listens: one refused connection
    assert empty.miner is None and empty.absent == "refused" and empty.error is None


async def test_the_web_api_needs_the_token(inno_miners: Start) -> None:
    fleet, session = await inno_miners()
    ip, sim = only(fleet)
    refused = await session.http.request("POST", ip, "/api/reboot", json={})
    assert refused.status == 401 and refused.json() == {"success": False, "token": "expired"}
    assert sim.state.extra["cgminer_restarts"] == 0 and sim.state.uptime > 60
    wrong = await session.http.request("POST", ip, "/api/auth", data={"username": "admin", "password": "nope"})
    assert wrong.status == 403 and wrong.json()["success"] is False
    auth = await session.http.request("POST", ip, "/api/auth", json={"username": "admin", "password": "admin"})
    token = auth.json()["jwt"]
    typed = await session.http.request("POST", ip, "/api/type", headers={"Authorization": f"Bearer {token}"})
    assert typed.json() == {"success": True, "type": "A11 Pro"}
    version = await rpc_call(ip, "version", settings=session.settings)  # the RPC needs no login
    assert version["STATUS"][0]["Description"] == f"innominer {sim.state.firmware_version}"


async def test_get_data_matches_the_simulator_state(inno_miners: Start) -> None:
    fleet, session = await inno_miners(ALL_MODELS)
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, InnosiliconSim)
        data = await (await _backend(session, ip)).get_data()
        state, inventory = sim.state, sim.inventory()
        assert data.errors == []
        assert data.hashrate is not None and data.hashrate.algo is HashAlgorithm.ETHASH
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.001)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(data.hashrate.value,
                                                                                           rel=0.001)
        assert [b.board_temperature for b in data.hashboards] == [sim.board_temps(i)[1] for i in range(4)]
        assert [b.working_chips for b in data.hashboards] == [8] * 4 and all(b.active for b in data.hashboards)
        assert (data.mac, data.firmware_version, data.api_version) == (state.mac, state.firmware_version, "3.7")
        assert data.control_board_version == "g19" and data.wattage == round(state.wattage)
        assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 2
        assert [[(p.url, p.user) for p in g.pools] for g in data.pools] == [
            [(p.url, p.username) for p in g.pools] for g in state.pools]
        assert data.is_mining is True and data.messages == []
        assert data.expected_hashrate is not None and data.expected_hashrate.value == state.model.nominal_ths


async def test_get_data_sends_each_request_once(inno_miners: Start) -> None:
    fleet, session = await inno_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    sim.requests.clear()
    await backend.get_data()
    assert dict(sim.requests) == {"80:POST /api/auth": 1, "80:POST /api/getAll": 1, "80:POST /api/overview": 1,
                                  "80:POST /api/getErrorDetail": 1, "4028:version": 1, "4028:summary": 1,
                                  "4028:stats": 1, "4028:pools": 1}
    sim.requests.clear()
    await backend.get_data()  # the token is kept
    assert "80:POST /api/auth" not in sim.requests
    sim.requests.clear()
    await backend.get_data([DataField.HASHRATE, DataField.UPTIME])
    assert dict(sim.requests) == {"4028:summary": 1}


async def test_a_lapsed_token_is_renewed_once(inno_miners: Start) -> None:
    fleet, session = await inno_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    await backend.get_data([DataField.WATTAGE])
    sim.state.extra["tokens"].clear()  # the token lapsed
    sim.requests.clear()
    data = await backend.get_data([DataField.WATTAGE])
    assert data.wattage == round(sim.state.wattage) and sim.requests["80:POST /api/auth"] == 1
    assert sim.requests["80:POST /api/getAll"] == 2


async def test_restart_reboots(inno_miners: Start) -> None:
    fleet, session = await inno_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.restart() is True
    data = None
    for _ in range(100):  # back after its restart time
        try:
            data = await backend.get_data([DataField.UPTIME, DataField.WATTAGE])
        except MinerConnectionError:
            data = None
        if data is not None and data.uptime is not None and data.wattage is not None:
            break
        await asyncio.sleep(0.1)
    assert data is not None and data.uptime is not None and data.uptime.total_seconds() < 60
    assert data.wattage == round(sim.state.wattage)  # a new token after the reboot forgot the old one


async def test_pools_round_trip(inno_miners: Start) -> None:
    fleet, session = await inno_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    before = await backend.get_pools_config()
    assert [(p.url, p.username) for p in before[0].pools] == [(p.url, p.username) for p in sim.state.pools[0].pools]
    wanted = [PoolGroup(name="default", quota=1, pools=[
        Pool(url="stratum+tcp://eth.pool.example:4444", username="farm.a11", password="x")])]
    assert await backend.set_pools_config(wanted) is True
    assert [(p.url, p.username, p.password) for p in sim.state.pools[0].pools] == [
        ("stratum+tcp://eth.pool.example:4444", "farm.a11", "x")]
    assert await backend.get_pools_config() == wanted
    data = await backend.get_data([DataField.POOLS])
    assert [p.url for p in data.pools[0].pools] == ["stratum+tcp://eth.pool.example:4444"]
    with pytest.raises(ValueError, match="one pool group"):
        await backend.set_pools_config([*wanted, *wanted])


async def test_change_password(inno_miners: Start) -> None:
    fleet, session = await inno_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.change_password("n3w-secret") is True
    assert sim.state.password == "n3w-secret"
    sim.state.extra["tokens"].clear()
    fresh = await _backend(session, ip)  # the session remembers the new password
    assert (await fresh.get_data([DataField.MAC])).mac == sim.state.mac


async def test_unsupported_controls_and_a_wrong_password(inno_miners: Start) -> None:
    fleet, session = await inno_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    for control in ("pause", "set_fault_light", "set_power_limit", "get_fan_config"):
        assert not backend.can(control)
    with pytest.raises(UnsupportedControlError):
        await backend.pause()
    session.credentials.add(CredentialRule(family="innosilicon", username="admin", passwords=["wrong"]))
    sim.state.password = "changed"  # neither the configured nor the default password fits
    found = await identify(ip, session, timeout=5)  # the model needs the login
    assert found.miner is None and found.error is not None and "refused the login" in found.error
    backend._token = None
    data = await backend.get_data()
    assert data.hashrate is not None and data.firmware_version == sim.state.firmware_version  # the RPC
    assert data.mac is None and any("refused the login" in e for e in data.errors)
    with pytest.raises(AuthenticationError):
        await backend.restart()


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_fault_modes_yield_errors_without_hanging(inno_miners: Start, fault: Fault) -> None:
    fleet, session = await inno_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    fleet.set_fault(ip, fault)
    data = await asyncio.wait_for(backend.get_data(), 30)  # a guard against a hang, not a timing assertion
    if fault is Fault.AUTH_FAILURE:  # the RPC needs no login; the kept token still works
        assert data.hashrate is not None
    elif data.hashrate is not None:  # the web total, over the connection kept open from before the fault
        assert data.errors and data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.001)
    else:
        assert data.errors


async def test_mixed_scan_tells_innosilicon_from_the_others() -> None:
    miners = []
    plan = [(InnosiliconSim, "Innosilicon", "Innosilicon A11 Pro"), (AntminerStockSim, "AntMiner", "Antminer S21"),
            (GoldshellSim, "Goldshell", "Goldshell HS5"), (InnosiliconSim, "Innosilicon", "Innosilicon A11 Pro")]
    for i, (kind, make, name) in enumerate(plan):
        model = lookup_model(make, name)
        assert model is not None
        miners.append(kind.build(lo(f"127.197.2.{20 + i}"), model, random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.197.2.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)


# ===== capabilities: the supports_* table at both simulated firmware versions ============================
async def test_capabilities_at_both_versions(inno_miners: Start, tmp_path: Path) -> None:
    """The same table at both simulated releases: the Innosilicon web API has no version-dependent control."""
    fleet, _ = await inno_miners(("Innosilicon A11 Pro", "Innosilicon A11 Pro"))
    sims = list(fleet.miners.values())
    for sim, version in zip(sims, VERSIONS, strict=True):
        sim.state.firmware_version = f"a11pro-{version}"
    await check_tables(sims, {"pools_config", "change_password", "restart"}, tmp_path, fleet.ports)


# ===== (d) the independent clients against the simulator ===============================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


@pytest.mark.interop
async def test_pyasic_reads_every_model(inno_miners: Start) -> None:
    """pyasic: `GET /` ("DragonMint") or RPC version ("INNOMINER") identify; the model from web `type` after
    `auth`. Its model table knows T3H+, A10X, A11 and A11MX only, so an A11 Pro is its "InnosiliconUnknown"
    (make Innosilicon, empty model, no boards). Its hash rate is `getAll`'s `Hash Rate H`, its power `getAll`'s
    `power`, its firmware version RPC `version`'s `CGMiner`."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await inno_miners(ALL_MODELS)
    _real_ports(fleet)
    for ip, sim in fleet.miners.items():
        with pytest.warns(UserWarning, match="Partially supported miner found: A11 Pro"):
            miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.make, data.firmware) == (inventory["make"], inventory["firmware"])
        assert data.hashrate is not None
        assert float(data.hashrate) * 1e-12 == pytest.approx(inventory["hashrate_ths"], rel=0.01)  # its H/s
        assert data.fw_ver == inventory["firmware_version"] and data.mac == inventory["mac"]
        assert data.wattage == round(sim.state.wattage)
        assert [p.user for p in data.pools] == [p.username for p in sim.state.pools[0].pools]


@pytest.mark.interop
async def test_pyasic_rs_does_not_know_innosilicon(inno_miners: Start) -> None:
    """pyasic-rs (0.8.6, as asic-rs) has no Innosilicon firmware: it finds no miner at the address. Recorded so
    that a release which learns the make shows here."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await inno_miners()
    _real_ports(fleet)
    ip, _ = only(fleet)
    assert await RsFactory().get_miner(ip) is None


@pytest.mark.interop
async def test_interop_controls_change_the_simulator(inno_miners: Start) -> None:
    """pyasic's controls land in the simulator's state: send_config writes `updatePools` (JSON), get_config
    reads `pools`, restart_backend restarts CGMiner, reboot reboots."""
    import pyasic
    from pyasic.config import MinerConfig, PoolConfig

    fleet, _ = await inno_miners()
    _real_ports(fleet)
    ip, sim = only(fleet)
    with pytest.warns(UserWarning, match="Partially supported"):
        miner = await pyasic.get_miner(ip)
    config = MinerConfig(pools=PoolConfig.simple([{"url": "stratum+tcp://eth.example:4444", "user": "farm.x",
                                                    "password": "p1"}]))
    await miner.send_config(config)
    assert [(p.url, p.username, p.password) for p in sim.state.pools[0].pools] == [
        ("stratum+tcp://eth.example:4444", "farm.x", "p1")]
    read = await miner.get_config()
    assert [(p.url, p.user) for g in read.pools.groups for p in g.pools] == [("stratum+tcp://eth.example:4444",
                                                                              "farm.x")]
    assert await miner.restart_backend() is True and sim.inventory()["cgminer_restarts"] == 1
    uptime = sim.state.uptime
    assert await miner.reboot() is True and sim.state.uptime < uptime and not sim.state.extra["tokens"]
