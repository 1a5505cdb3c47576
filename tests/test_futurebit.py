"""FutureBit Apollo: the parsers on restated API replies, the backend against the simulator (GraphQL on
port 5000, the 308 on port 80), identification, and the simulator against pyasic-rs (pyasic has no
FutureBit support).

Live tests run on 127.211.30.0/24: an Apollo II and an Apollo BTC.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from asicfleet._errors import AuthenticationError, MinerConnectionError, UnsupportedControlError
from asicfleet._session import CredentialRule, CredentialStore, Session
from asicfleet.backends import Probe
from asicfleet.backends.futurebit import MCU, STATS, FutureBit, graphql_data
from asicfleet.config import Pool, PoolGroup, TuningConfig
from asicfleet.data import HashRate
from asicfleet.hardware import SimulableModel, lookup_model
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim.futurebit import FutureBitSim, parse_operation
from asicfleet.transport import HttpReply, PortMap, TransportSettings, open_tcp, rpc_call
from tests.conftest import lo

SUBNET = lo("127.211.30.0/24")
FIXTURES = Path(__file__).parent / "fixtures" / "futurebit"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def apollo2(session: Session | None = None) -> FutureBit:
    return FutureBit(lo("127.211.0.1"), FutureBit.device_info("FutureBit", "Apollo II", "Stock"), session or Session())


# ----- (a) parsers on restated replies -----------------------------------------------------------
def test_fixture_every_figure() -> None:
    data = apollo2().parse_raw({STATS: fixture("miner_stats.json"), MCU: fixture("mcu_stats.json")})
    assert data.errors == []
    assert data.mac == "16:A1:04:59:2D:7D"  # eth0: the miner interface's zero MAC is skipped
    assert data.hostname == "futurebit-apollo-2"
    assert data.serial_number == "590055001351323532343337"
    assert (data.firmware_version, data.api_version, data.control_board_version) == ("2.0.5", "1.3", "v2")
    assert data.hashrate == HashRate(value=7.0504, unit="TH/s")  # slots.int_0.ghs 7050.4 GH/s
    assert data.expected_hashrate == HashRate(value=7.0, unit="TH/s")  # the catalogue's Apollo II
    assert data.wattage == 362.5 and data.uptime == timedelta(seconds=93784)
    assert [(f.position, f.rpm) for f in data.fans] == [(0, 2850)]
    (board,) = data.hashboards
    assert (board.working_chips, board.expected_chips, board.board_temperature, board.outlet_temperature) == (
        44, 44, 68, 63.5)
    assert board.serial_number == "590055001351323532343337" and board.active is True
    (pool,) = data.pools[0].pools
    assert (pool.url, pool.user, pool.accepted_shares, pool.rejected_shares, pool.alive) == (
        "stratum+tcp://solo.ckpool.org:3333", "bc1qexample.apollo", 10234, 17, True)


def test_mac_falls_back_to_the_stats_when_the_login_fails() -> None:
    refused = AuthenticationError("no login")
    data = apollo2().extract({STATS: orjson.loads(fixture("miner_stats.json")), MCU: refused})
    assert data.mac == "16:A1:04:59:2D:7D" and data.hostname is None  # master.hwAddr
    assert data.hashrate is not None and any("no login" in e for e in data.errors)


def test_unauthenticated_reply_is_an_authentication_error() -> None:
    with pytest.raises(AuthenticationError):
        graphql_data(HttpReply(200, {}, fixture("mcu_stats_unauthenticated.json")), "Mcu.stats")
    ok = graphql_data(HttpReply(200, {}, b'{"data": {"Miner": null}}'), "Miner")
    assert ok == {"Miner": None}


def test_matches_the_redirect_only() -> None:
    def probe(status: int, location: str) -> Probe:
        return Probe(ip=lo("127.211.0.1"), web=HttpReply(status, {"location": location}, b""))

    assert FutureBit.matches(probe(308, "/overview"))
    assert not FutureBit.matches(probe(307, "https://127.0.0.1/cgi-bin/luci"))
    assert not FutureBit.matches(probe(302, "/"))
    assert not FutureBit.matches(Probe(ip=lo("127.211.0.1")))


def test_the_simulators_graphql_reader() -> None:
    operation = parse_operation('query Login($input: AuthLoginInput!) { Auth { login(input: $input) '
                                '{ result { accessToken } } } }', {"input": {"password": "x"}})
    (auth,) = operation.selections
    (login,) = auth.children
    assert (operation.kind, auth.name, login.name, login.arguments) == ("query", "Auth", "login",
                                                                        {"input": {"password": "x"}})
    inline = parse_operation('{ Logs { read(input: {logType: MINER, lines: 5}) { result { content } } } }')
    assert inline.selections[0].children[0].arguments == {"input": {"logType": "MINER", "lines": 5}}


# ----- the simulated fleet -----------------------------------------------------------------------
@pytest.fixture
async def fleet() -> AsyncIterator[SimFleet]:
    miners = []
    for index, name in enumerate(("Apollo II", "Apollo")):
        model = lookup_model("FutureBit", name)
        assert model is not None
        miner = FutureBitSim.build(SUBNET.replace("0/24", str(10 + index)), SimulableModel.of(model),
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


def apollos(fleet: SimFleet) -> list[FutureBitSim]:
    return [m for m in fleet.miners.values() if isinstance(m, FutureBitSim)]


def backend(sim: FutureBitSim, session: Session) -> FutureBit:
    return FutureBit(sim.state.ip, FutureBit.device_info("FutureBit", sim.state.model.name, "Stock"), session)


async def test_discovery_identifies_both_models(fleet: SimFleet, session: Session) -> None:
    from asicfleet.discovery import identify

    for sim in apollos(fleet):
        found = await identify(sim.state.ip, session, timeout=3.0)
        assert found.error is None and found.miner is not None, found
        assert isinstance(found.miner.backend, FutureBit)
        assert (found.miner.make, found.miner.model, found.miner.firmware) == ("FutureBit", sim.state.model.name,
                                                                               "Stock")
        assert found.miner.backend.firmware_version == sim.state.firmware_version
        with pytest.raises(MinerConnectionError):  # no CGMiner-style API on an Apollo
            await rpc_call(sim.state.ip, "version", settings=session.settings)
        with pytest.raises(MinerConnectionError):
            await open_tcp(sim.state.ip, session.settings.ports(443), 1.0)


async def test_get_data_equals_state(fleet: SimFleet, session: Session) -> None:
    for sim in apollos(fleet):
        sim.requests.clear()
        data = await backend(sim, session).get_data()
        assert dict(sim.requests) == {"5000:POST /api/graphql": 5}  # the login, then four reads
        s = sim.state
        assert data.errors == []
        assert data.hashrate is not None and data.hashrate.value == pytest.approx(s.hashrate_ths, rel=1e-6)
        assert data.wattage == s.wattage and [f.rpm for f in data.fans] == s.fan_rpms
        assert (data.mac, data.hostname, data.serial_number) == (s.mac, s.hostname, s.serial)
        assert data.uptime is not None and abs(data.uptime.total_seconds() - s.uptime) <= 2
        assert data.pools[0].pools[0].url == s.pools[0].pools[0].url
        assert data.is_mining is True and data.tuning_target is not None
        assert data.tuning_target.target_mode == "turbo"


async def test_pause_resume_restart(fleet: SimFleet, session: Session) -> None:
    sim = apollos(fleet)[0]
    miner = backend(sim, session)
    assert await miner.pause() is True and sim.state.mining is False
    data = await miner.get_data()
    assert data.is_mining is False and data.hashrate == HashRate(value=0.0, unit="TH/s")
    assert await miner.resume() is True and sim.state.mining is True
    assert (await miner.get_data()).uptime > timedelta(hours=1)  # type: ignore[operator]
    assert await miner.restart() is True
    uptime = (await miner.get_data()).uptime
    assert uptime is not None and uptime < timedelta(seconds=10)  # the miner service started again


async def test_pools_round_trip(fleet: SimFleet, session: Session) -> None:
    sim = apollos(fleet)[0]
    miner = backend(sim, session)
    wanted = [PoolGroup(name="default", quota=1, pools=[
        Pool(url="stratum+tcp://solo.example.org:3333", username="bc1qme.apollo", password="x"),
        Pool(url="stratum+tcp://backup.example.org:4444", username="bc1qme.backup", password="y")])]
    assert await miner.set_pools_config(wanted) is True
    assert [(p["url"], p["index"]) for p in sim.state.extra["pools"]] == [
        ("stratum+tcp://solo.example.org:3333", 0), ("stratum+tcp://backup.example.org:4444", 1)]
    assert sim.state.extra["running_pool"].host == "solo.example.org"  # the miner restarted onto it
    assert await miner.get_pools_config() == wanted
    assert (await miner.get_data()).pools[0].pools[0].url == "stratum+tcp://solo.example.org:3333"


async def test_tuning_by_mode(fleet: SimFleet, session: Session) -> None:
    sim = apollos(fleet)[0]
    miner = backend(sim, session)
    turbo = sim.state.hashrate_ths
    assert await miner.set_tuning_config(TuningConfig.mode("eco")) is True
    assert sim.state.extra["mode"] == "eco" and sim.state.hashrate_ths == pytest.approx(turbo * 0.75)
    assert await miner.get_tuning_config() == TuningConfig.mode("eco")
    with pytest.raises(UnsupportedControlError):
        await miner.set_tuning_config(TuningConfig.power(200))


async def test_password_logs_and_unsupported(fleet: SimFleet, session: Session) -> None:
    sim = apollos(fleet)[1]
    miner = backend(sim, session)
    assert "miner started" in await miner.read_logs()
    assert await miner.change_password("n3w-secret") is True
    assert sim.state.password == "n3w-secret"
    fresh = Session(settings=session.settings)
    try:
        with pytest.raises(AuthenticationError):
            await backend(sim, fresh).read_logs()  # the default password no longer works
        stored = CredentialStore()
        stored.add(CredentialRule(family="futurebit", username="futurebit", passwords=["n3w-secret"]))
        configured = Session(settings=session.settings, credentials=stored)
        assert "miner" in await backend(sim, configured).read_logs()
        await configured.aclose()
    finally:
        await fresh.aclose()
    for control in ("set_fault_light", "set_power_limit", "factory_reset", "set_fan_config", "upgrade_firmware"):
        assert not FutureBit.supports(control)


async def test_api_behaviour(fleet: SimFleet, session: Session) -> None:
    """What the simulated Apollo API answers to what pyasic-rs and a browser send."""
    sim = apollos(fleet)[0]
    http = session.http

    async def gql(query: str, token: str | None = None) -> HttpReply:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return await http.request("POST", sim.state.ip, "/api/graphql", port=5000, json={"query": query},
                                  headers=headers)

    root = await http.request("GET", sim.state.ip, "/")
    assert (root.status, root.headers["location"]) == (308, "/overview")
    reply = await gql("mutation { Miner { restart { error { message } } } }")  # the schema's Mutation is empty
    assert reply.status == 400 and "Mutation" in reply.json()["errors"][0]["message"]
    reply = await gql("{ Mcu { stats { result { stats { hostname } } } } }")
    assert reply.status == 200 and reply.json()["data"] == {"Mcu": None}
    assert reply.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    reply = await gql("{ Miner { stats { result { stats { nope } } } } }")
    assert reply.status == 400 and reply.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    reply = await gql('{ Auth { login(input: {password: "wrong"}) { result { accessToken } error { message } } } }')
    assert reply.json()["data"]["Auth"]["login"] == {"result": None, "error": {"message": "Invalid password"}}


@pytest.mark.parametrize("fault", [Fault.HUNG, Fault.MALFORMED, Fault.RESET])
async def test_faults_yield_errors(fleet: SimFleet, fault: Fault) -> None:
    quick = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), read_timeout=1.0, connect_timeout=1.0))
    try:
        sim = apollos(fleet)[0]
        sim.fault = fault
        data = await backend(sim, quick).get_data()
        assert data.errors and data.hashrate is None, data.errors
    finally:
        await quick.aclose()


async def test_auth_failure_still_reads_the_open_stats(fleet: SimFleet, session: Session) -> None:
    sim = apollos(fleet)[0]
    sim.fault = Fault.AUTH_FAILURE
    data = await backend(sim, session).get_data()
    assert data.hashrate is not None and data.hostname is None  # Miner.stats needs no login; Mcu.stats does
    assert any("gql:mcu" in e for e in data.errors)


async def test_mixed_scan(sim_fleet: Any) -> None:
    from asicfleet import MinerFactory

    mixed = await sim_fleet(lo("127.211.32.0/24"), 6, ["futurebit", "bitaxe", "antminer"], seed=5)
    factory = MinerFactory.from_subnet(lo("127.211.32.0/24")).with_port_map(mixed.ports or PortMap())
    found = {str(m.ip): m for m in await factory.scan()}
    assert sorted(found) == sorted(mixed.miners)
    for ip, sim in mixed.miners.items():
        assert (found[ip].make, found[ip].model) == (sim.inventory()["make"], sim.inventory()["model"])


# ----- (c) against pyasic-rs ---------------------------------------------------------------------
@pytest.mark.interop
async def test_pyasic_rs_reads_every_model(fleet: SimFleet) -> None:
    """pyasic-rs follows the 308 to /overview, reads Miner.stats on :5000 and names the models Apollo1/2."""
    from pyasic_rs import MinerFactory

    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic-rs only talks to port 80; the simulator could not bind it (not root)")
    for sim in apollos(fleet):
        found = await MinerFactory().get_miner(sim.state.ip)
        assert found is not None
        data = await found.get_data()
        info = data.device_info
        assert (info.make, info.firmware) == ("FutureBit", "FutureBit Stock")
        assert info.model == {"Apollo II": "Apollo2", "Apollo": "Apollo1"}[sim.state.model.name]
        assert data.hashrate is not None and str(data.hashrate.unit) == "TH/s"
        assert float(data.hashrate) == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)


@pytest.mark.interop
async def test_pyasic_does_not_know_the_apollo(fleet: SimFleet) -> None:
    import pyasic  # type: ignore[import-untyped]

    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic only talks to the real ports; the simulator could not bind them (not root)")
    for sim in apollos(fleet):
        assert await pyasic.get_miner(sim.state.ip) is None  # no FutureBit support in pyasic
