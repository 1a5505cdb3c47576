"""What one `get_data()` of an identified miner costs, per firmware: requests at most the figure below,
counted by the simulator as `bench/compare.py` counts them, and every figure still right.

A count, not a time: it fails when a change sends a command more, not when the machine is slow. Each
figure is the least that firmware allows for a full read (see the notes beside them); a change that
lowers one should lower the figure here too.

Addresses: 127.61.0.0/16 only.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import asicfleet.sim._fleet as sim_fleet_module
from asicfleet import Miner
from asicfleet._errors import MinerTimeoutError
from asicfleet._session import Session
from asicfleet.discovery._identify import identify
from asicfleet.sim import Fault, SimFleet, SimMiner
from asicfleet.sim._servers import connection_handler as served_by
from asicfleet.sim.braiins import _GRAPHQL_RELEASES, _RELEASES
from asicfleet.transport import PortMap, TransportSettings
from tests.conftest import FleetFactory, lo

ANNOTATIONS = ("auth:",)  # simulator keys that annotate a request already counted (as bench/compare.py)

# (family, model, firmware version or "", requests per full read at most, connections per read at most)
CASES: list[tuple[str, str, str, int, int]] = [
    # RPC version, stats, pools (not joined: stock S19-era bmminer mishandles `a+b`; one connection each) and
    # six CGI scripts on one kept-alive connection, each answering the digest challenge the identification
    # probe saw (no 401 first); summary's hash rate and uptime are read from stats
    ("antminer", "Antminer S19 Pro", "", 9, 4),
    # REST: the login and eleven routes, one field group each, on one kept-alive connection (the one
    # identification left open, when it is still there)
    ("braiins", "Antminer S21", _RELEASES["26.04"][0], 12, 1),
    # GraphQL: the login and every read query joined in one request; RPC version (API version)
    ("braiins", "Antminer S19j Pro", _GRAPHQL_RELEASES["24.09"], 4, 2),
    # GraphQL before 24.09: the MAC only in LuCI's network status (its login, then the page)
    ("braiins", "Antminer S19j Pro", _GRAPHQL_RELEASES["22.08"], 6, 2),
    # API v2: summary+devs+pools joined; btminer's own get_* and status go one by one
    ("whatsminer", "M50S", "", 8, 6),
    # API v3 on 4433: get.device.info and three get.miner.status sections, one exchange per connection
    ("whatsminer", "M60S", "", 4, 4),
    # version+summary+estats+pools joined: four commands, one connection
    ("avalon", "Avalon 1246", "", 4, 1),
    # one GET of /api/system/info, on the connection identification left open
    ("bitaxe", "Gamma", "", 1, 1),
]


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Accepted connections per miner address, counted by wrapping the handler the fleet binds (as the bench)."""
    counted: Counter[str] = Counter()
    original = served_by

    def counting(miner: SimMiner, service: Any) -> Callable[..., Awaitable[None]]:
        handle = original(miner, service)

        async def count(reader: Any, writer: Any) -> None:
            counted[miner.state.ip] += 1
            await handle(reader, writer)

        return count

    monkeypatch.setattr(sim_fleet_module, "connection_handler", counting)
    return counted


@pytest.fixture
async def session() -> AsyncIterator[Callable[[SimFleet], Session]]:
    opened: list[Session] = []

    def make(fleet: SimFleet) -> Session:
        opened.append(Session(settings=TransportSettings(ports=fleet.ports or PortMap(), connect_timeout=2.0,
                                                         read_timeout=5.0)))
        return opened[-1]

    yield make
    for each in opened:
        await each.aclose()


def counted_requests(miner: SimMiner) -> dict[str, int]:
    return {k: v for k, v in miner.requests.items() if not k.startswith(ANNOTATIONS)}


@pytest.mark.parametrize(("family", "model", "version", "most", "most_connections"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2] or 'stock'}".replace(" ", "_") for c in CASES])
async def test_one_read_costs_at_most(sim_fleet: FleetFactory, session: Callable[[SimFleet], Session],
                                      connections: Counter[str], family: str, model: str, version: str,
                                      most: int, most_connections: int) -> None:
    index = CASES.index((family, model, version, most, most_connections))
    fleet = await sim_fleet(lo(f"127.61.{index}.0/24"), mix=[family], models=[model],
                            versions=[version] if version else ())
    sim = next(iter(fleet.miners.values()))
    found = await identify(sim.state.ip, session(fleet), timeout=10)
    miner = found.miner
    assert isinstance(miner, Miner), found
    sim.requests.clear()
    connections.clear()
    data = await miner.get_data()
    requests = counted_requests(sim)
    assert sum(requests.values()) <= most, requests
    assert connections[sim.state.ip] <= most_connections, (connections, requests)
    # no command twice (GraphQL's login and its joined read share one path)
    assert all(n == 1 for k, n in requests.items() if k != "80:POST /graphql"), requests
    # every figure still right
    inventory = sim.inventory()
    assert data.errors == []
    assert (miner.make, miner.model) == (inventory["make"], inventory["model"])
    assert data.hashrate is not None
    assert data.hashrate.into_unit("TH/s").value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
    if family == "antminer":
        assert data.wattage is None  # the stock firmware reports no power figure
    else:
        assert data.wattage == pytest.approx(inventory["wattage"], rel=0.01, abs=0.5)
    assert data.mac == inventory["mac"]
    mining_since_boot = 20 if family == "whatsminer" else 0  # btminer's Elapsed counts from the mining start
    assert data.uptime is not None
    assert abs(data.uptime.total_seconds() - (sim.state.uptime - mining_since_boot)) <= 2
    assert data.hashboards and len(data.hashboards) == sim.state.model.boards
    assert sum(b.hashrate.into_unit("TH/s").value for b in data.hashboards if b.hashrate) == pytest.approx(
        inventory["hashrate_ths"], rel=0.01)
    assert [p.url for g in data.pools for p in g.pools] == [p.url for g in sim.state.pools for p in g.pools]


async def test_a_narrow_read_sends_only_what_it_needs(sim_fleet: FleetFactory,
                                                      session: Callable[[SimFleet], Session]) -> None:
    """Hash rate alone on stock Antminer: RPC summary only (stats, which a full read takes it from, is bigger)."""
    from asicfleet.backends import DataField

    fleet = await sim_fleet(lo("127.61.100.0/24"), mix=["antminer"], models=["Antminer S21"])
    sim = next(iter(fleet.miners.values()))
    miner = (await identify(sim.state.ip, session(fleet), timeout=10)).miner
    assert miner is not None
    sim.requests.clear()
    data = await miner.get_data(include=[DataField.HASHRATE, DataField.UPTIME])
    assert counted_requests(sim) == {"4028:summary": 1}
    assert data.hashrate is not None
    assert data.hashrate.into_unit("TH/s").value == pytest.approx(sim.state.hashrate_ths, rel=0.01)


async def test_stats_failing_falls_back_to_summary(sim_fleet: FleetFactory,
                                                   session: Callable[[SimFleet], Session]) -> None:
    """When the reply a field was planned from fails, its other sources are still tried: the hash rate and
    uptime a full read takes from stats come from summary when stats is refused."""
    fleet = await sim_fleet(lo("127.61.101.0/24"), mix=["antminer"], models=["Antminer S19 Pro"])
    sim = next(iter(fleet.miners.values()))
    miner = (await identify(sim.state.ip, session(fleet), timeout=10)).miner
    assert miner is not None
    original = sim.handle_rpc

    def without_stats(command: str, parameter: Any, port: int) -> Any:
        return original("no-such-command" if command == "stats" else command, parameter, port)

    sim.handle_rpc = without_stats  # type: ignore[method-assign]
    sim.requests.clear()
    data = await miner.get_data()
    assert any("rpc:stats" in e for e in data.errors)
    assert sim.requests["4028:summary"] == 1
    assert data.hashrate is not None
    assert data.hashrate.into_unit("TH/s").value == pytest.approx(sim.state.hashrate_ths, rel=0.01)
    assert data.uptime is not None and abs(data.uptime.total_seconds() - sim.state.uptime) <= 2


# ----- the transport: a read's parallel requests share one kept-alive connection ----------------------------
def _transport(client_session: Session) -> Any:
    return client_session.http._get()._transport


async def test_parallel_requests_share_one_connection(sim_fleet: FleetFactory, connections: Counter[str],
                                                      session: Callable[[SimFleet], Session]) -> None:
    fleet = await sim_fleet(lo("127.61.110.0/24"), mix=["bitaxe"], models=["Gamma"])
    sim = next(iter(fleet.miners.values()))
    http = session(fleet)
    replies = await asyncio.gather(*(http.http.request("GET", sim.state.ip, "/api/system/info") for _ in range(6)))
    assert [r.status for r in replies] == [200] * 6
    assert all(r.json()["macAddr"].upper() == sim.state.mac for r in replies)
    assert sim.requests["80:GET /api/system/info"] == 6
    assert connections[sim.state.ip] == 1
    transport = _transport(http)
    assert transport._busy == {} and transport._waiting == {} and transport._stall_timers == {}


async def test_a_slow_reply_does_not_hold_the_others_back(sim_fleet: FleetFactory, connections: Counter[str],
                                                          session: Callable[[SimFleet], Session]) -> None:
    """Requests waiting for a slow miner's busy connection open their own after a short wait: every one of
    them is answered within its deadline (5 s each here; the miner takes 2 s per reply, so three in turn on
    one connection would not be)."""
    fleet = await sim_fleet(lo("127.61.111.0/24"), mix=["bitaxe"], models=["Gamma"])
    sim = next(iter(fleet.miners.values()))
    sim.fault, sim.slow_seconds = Fault.SLOW, 2.0
    http = session(fleet)
    replies = await asyncio.gather(*(http.http.request("GET", sim.state.ip, "/api/system/info") for _ in range(3)))
    assert [r.status for r in replies] == [200] * 3
    assert connections[sim.state.ip] == 3
    transport = _transport(http)
    assert transport._busy == {} and transport._waiting == {} and transport._stall_timers == {}


async def test_timed_out_waiters_leave_nothing_behind(sim_fleet: FleetFactory,
                                                      session: Callable[[SimFleet], Session]) -> None:
    """A hung miner: requests ended at their deadline (a timeout), or cancelled by their caller while still
    waiting for the busy connection, leave nothing counted busy or waiting (the next read starts clean)."""
    fleet = await sim_fleet(lo("127.61.112.0/24"), mix=["bitaxe"], models=["Gamma"])
    sim = next(iter(fleet.miners.values()))
    sim.fault = Fault.HUNG
    quick = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), connect_timeout=0.1, read_timeout=0.2))
    patient = session(fleet)  # a stall limit of 1 s: its waiters are still waiting when cancelled at 0.3 s
    try:
        for client, call in ((quick, lambda c: c), (patient, lambda c: asyncio.wait_for(c, 0.3))):
            results = await asyncio.gather(*(call(client.http.request("GET", sim.state.ip, "/api/system/info"))
                                             for _ in range(4)), return_exceptions=True)
            assert all(isinstance(r, MinerTimeoutError | TimeoutError) for r in results), results
            transport = _transport(client)
            assert transport._busy == {} and transport._waiting == {} and transport._stall_timers == {}
        sim.fault = Fault.NONE
        for client in (quick, patient):
            assert (await client.http.request("GET", sim.state.ip, "/api/system/info")).status == 200
    finally:
        await quick.aclose()


async def test_a_refused_graphql_query_costs_only_its_own_fields(sim_fleet: FleetFactory,
                                                                 session: Callable[[SimFleet], Session],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Braiins OS before 25.07: when the joined read is refused (here a field its release lacks, in the events
    query), each query goes again alone; the others' fields are all read, the events query's error is kept."""
    from asicfleet.backends import braiins as braiins_backend

    fleet = await sim_fleet(lo("127.61.120.0/24"), mix=["braiins"], models=["Antminer S19j Pro"],
                            versions=[_GRAPHQL_RELEASES["24.09"]])
    sim = next(iter(fleet.miners.values()))
    miner = (await identify(sim.state.ip, session(fleet), timeout=10)).miner
    assert miner is not None
    queries = braiins_backend.graphql_queries

    def with_an_unknown_field(release: str) -> dict[str, str]:
        return queries(release) | {"gql:events": "{ events { noSuchField } }"}

    monkeypatch.setattr(braiins_backend, "graphql_queries", with_an_unknown_field)
    sim.requests.clear()
    data = await miner.get_data()
    assert [e for e in data.errors if e.startswith("gql:")] == [e for e in data.errors if "gql:events" in e] != []
    assert data.messages == []
    assert data.hashrate is not None
    assert data.hashrate.into_unit("TH/s").value == pytest.approx(sim.state.hashrate_ths, rel=0.01)
    assert data.mac == sim.state.mac and len(data.hashboards) == sim.state.model.boards
    assert data.pools and data.tuning_target is not None and data.tuning_capabilities is not None
    # the login, the refused joined request, then each of the six queries alone
    assert sim.requests["80:POST /graphql"] == 1 + 1 + 6


async def test_an_old_challenge_is_not_answered(sim_fleet: FleetFactory,
                                                session: Callable[[SimFleet], Session]) -> None:
    """A handle identified long ago does not answer the probe's challenge (its nonce may be stale by now, and
    every CGI call sent with it at once would earn a 401): the first CGI call learns a new one alone, the
    others answer that; every figure is read."""
    from asicfleet.backends.antminer import CHALLENGE_FRESH

    fleet = await sim_fleet(lo("127.61.130.0/24"), mix=["antminer"], models=["Antminer S19 Pro"])
    sim = next(iter(fleet.miners.values()))
    miner = (await identify(sim.state.ip, session(fleet), timeout=10)).miner
    assert miner is not None and "digest_challenge" in miner.backend.learned
    miner.backend.learned["digest_challenge_at"] -= CHALLENGE_FRESH + 1
    sim.requests.clear()
    data = await miner.get_data()
    assert data.errors == [] and data.mac == sim.state.mac
    cgi = {k: v for k, v in counted_requests(sim).items() if k.startswith("80:")}
    assert sum(cgi.values()) == 6 + 1, cgi  # one 401, then each CGI script once
