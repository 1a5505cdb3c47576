"""Shared fixtures: simulated fleets on loopback, and the captured firmware replies in ../shared."""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import random
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from asicfleet._session import Session
from asicfleet.hardware import SimulableModel, lookup_model
from asicfleet.sim import SIM_FAMILIES, SimFleet, SimMiner, claim_loopback
from asicfleet.transport import PortMap, TransportSettings
from orchestrator.redis_server import EmbeddedRedis

# the helper modules the test files share: their asserts explain themselves as the test files' do
pytest.register_assert_rewrite("tests.capabilities", "tests.browser")

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "asic-rs" / "responses"


def fixture_bytes(*parts: str) -> bytes:
    """A captured reply from ../shared/fixtures/asic-rs/responses (see its README for attribution)."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"fixture {path} is missing: the shared fixtures must sit beside the project")
    return path.read_bytes()


_CLAIMS = contextlib.ExitStack()  # held until this process exits, which drops every lock
_CLAIMED: dict[int, int] = {}
_LOOPBACK = re.compile(r"127\.(\d+)\.(.*)")


def lo(text: str) -> str:
    """A test's loopback address or range, `127.N.rest`, moved onto a /16 that this run holds alone.

    Each test names its ranges as it always did; the second octet N stands for a /16 claimed for this
    process on first use (`asicfleet.sim.claim_loopback`), so two runs of the suite, a benchmark and the
    demo share a machine without taking each other's addresses. Every N maps to its own /16.
    """
    match = _LOOPBACK.fullmatch(text)
    if match is None or match[1] == "0":
        raise ValueError(f"{text!r} is not a test range of 127.N.0.0/16 (N > 0)")
    octet = int(match[1])
    if octet not in _CLAIMED:
        subnet = _CLAIMS.enter_context(claim_loopback(16, start=os.getpid() + len(_CLAIMED)))
        _CLAIMED[octet] = int(subnet.split(".")[1])
    return f"127.{_CLAIMED[octet]}.{match[2]}"


FleetFactory = Callable[..., Awaitable[SimFleet]]


@pytest.fixture
async def sim_fleet() -> AsyncIterator[FleetFactory]:
    """`fleet = await sim_fleet("127.81.0.0/24", 4, ["antminer"])` serves until the test ends.

    Generated (`SimFleet.generate`): `count` miners at seeded addresses of `subnet`, families taken in turn
    from `mix`. Chosen instead, with `models=["M50S", "M60S"]`: one miner of the family `mix[0]` per model
    named, at `subnet`'s .10, .11, ... (each seeded by its place in the list); `versions`, if given, sets
    their firmware versions in the same order.

    Serves on the real ports when it may bind them (root, as in CI); otherwise on the +10000 offset,
    which `fleet.ports` reports for the scanner.
    """
    started: list[SimFleet] = []

    async def start(subnet: str, count: int = 0, mix: Sequence[str] = (), seed: int = 1,
                    ports: PortMap | None = None, *, models: Sequence[str] = (),
                    versions: Sequence[str] = ()) -> SimFleet:
        if models:
            fleet = SimFleet(chosen_miners(subnet, mix[0], models, versions), ports)
        else:
            fleet = SimFleet.generate(subnet, count, list(mix), seed=seed, ports=ports)
        await fleet.start()
        started.append(fleet)
        return fleet

    yield start
    for fleet in started:
        await fleet.stop()


def chosen_miners(subnet: str, family: str, models: Sequence[str], versions: Sequence[str] = ()) -> list[SimMiner]:
    """One `family` miner per model named, at `subnet`'s .10, .11, ...; `versions` are their firmware versions."""
    kind = SIM_FAMILIES[family]
    base = ipaddress.ip_network(subnet).network_address + 10
    miners = []
    for index, name in enumerate(models):
        model = lookup_model(kind.make, name)
        assert model is not None, f"{name!r} is not a {kind.make} model"
        miner = kind.build(str(base + index), kind.simulable(model), random.Random(index))  # Proto: its chassis
        if versions:
            miner.state.firmware_version = versions[index]
        miners.append(miner)
    return miners


MinerStart = Callable[..., Awaitable[tuple[SimFleet, Session]]]
SimT = TypeVar("SimT", bound=SimMiner)
BackendT = TypeVar("BackendT")


def only_miner(fleet: SimFleet, kind: type[SimT]) -> tuple[str, SimT]:
    """The address and simulator of a fleet's one miner (a family test's fleet of one model), checked to be `kind`."""
    ip, sim = next(iter(fleet.miners.items()))
    assert isinstance(sim, kind)
    return ip, sim


async def identified_backend(session: Session, ip: str, kind: type[BackendT]) -> BackendT:
    """The backend identification picks for `ip`, checked to be `kind`."""
    from asicfleet.discovery._identify import identify

    found = await identify(ip, session, timeout=5)
    assert found.miner is not None, found.error
    backend = found.miner.backend
    assert isinstance(backend, kind)
    return backend
_BLOCKS: dict[str, itertools.count[int]] = {}
QUICK_SIMULATOR = {"restart_seconds": 0.3, "slow_seconds": 1.5, "oversized_bytes": 2 * 1024 * 1024}


@pytest.fixture
async def family_miners() -> AsyncIterator[Callable[..., MinerStart]]:
    """A family's test file starts its miners with this (`start = family_miners(LuxOSSim, "127.101")`, then
    `fleet, session = await start(models, **transport_settings)`): one simulated miner of `kind` per model
    named (catalogued under `kind.make`), on a fresh /24 of the test's `127.N` range at .10, .11, ..., quick to
    restart and to show its faults, and a session pointed at the fleet's ports; both closed at the end."""
    opened: list[tuple[SimFleet, Session]] = []

    def starter(kind: type[SimMiner], octets: str, default_models: Sequence[str] = (), *,
                simulator: dict[str, float] | None = None, **session_defaults: float) -> MinerStart:
        blocks = _BLOCKS.setdefault(octets, itertools.count(1))

        async def start(models: Sequence[str] = (), **settings: float) -> tuple[SimFleet, Session]:
            block = next(blocks)
            miners = []
            for index, name in enumerate(models or default_models or kind.models[:1]):
                model = lookup_model(kind.make, name)
                assert model is not None, f"{name!r} is not a {kind.make} model"
                miner = kind.build(lo(f"{octets}.{block}.{10 + index}"), SimulableModel.of(model),
                                   random.Random(index))
                for name_, value in (QUICK_SIMULATOR | (simulator or {})).items():
                    setattr(miner, name_, value)
                miners.append(miner)
            fleet = SimFleet(miners)
            await fleet.start()
            chosen = {"connect_timeout": 0.5, "read_timeout": 1.0, "max_reply_bytes": 512 * 1024}
            session = Session(settings=TransportSettings(ports=fleet.ports or PortMap(),
                                                         **(chosen | session_defaults | settings)))
            opened.append((fleet, session))
            return fleet, session

        return start

    yield starter
    for fleet, session in opened:
        await session.aclose()
        await fleet.stop()


class ThreadedFleet:
    """A SimFleet served by an event loop of its own in a thread, for tests whose code blocks (rollout
    drivers, Celery): `with ThreadedFleet(SimFleet.generate(...)) as fleet: fleet.miners[ip].state`."""

    def __init__(self, fleet: SimFleet) -> None:
        import asyncio
        import threading

        self.fleet = fleet
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sim-fleet", daemon=True)

    def __enter__(self) -> SimFleet:
        import asyncio

        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fleet.start(), self._loop).result(timeout=120)
        return self.fleet

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        """Runs a coroutine (e.g. `fleet.switch_off(ip)`) on the simulator's loop and returns its result."""
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def __exit__(self, *exc: object) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.fleet.stop(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


def _can_bind_real_ports() -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.66.6.6", 80))
        except PermissionError:
            return False
        except OSError:
            return True  # in use, but allowed
    return True


# the files that take longest, run first: with a file per process (scripts/test.sh), a long file that
# started last would leave one process working alone at the end
_LONGEST_FIRST = ("test_rollouts.py", "test_outage.py", "test_distributed.py", "test_cli.py", "test_flower.py",
                  "test_pending_change.py", "test_dashboard.py", "test_monitor.py", "test_rules.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first (see above). pyasic and pyasic-rs only speak to the real ports (80, 443, 4028,
    4433): without the right to bind below 1024 (CI runs as root) the interop tests are skipped, with that
    reason, rather than failing."""
    rank = {name: n for n, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order is kept
    if _can_bind_real_ports():
        return
    skip = pytest.mark.skip(reason="interop needs the real ports 80/443: run as root, or lower "
                                   "net.ipv4.ip_unprivileged_port_start to 80")
    for item in items:
        if "interop" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A Redis of the test module's own (`EmbeddedRedis` on a free port), for as long as the module runs; a
    module that needs another (persisted, with a password) defines its own."""
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture(scope="module")
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the module's Redis."""
    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()


def debian_tool(path: str, package: str, purpose: str) -> str:
    """The tool at `path` (or by that name on PATH) that Debian's `package` provides. Missing, the test skips for
    a normal user, saying what to install; as root (CI) it fails, since scripts/bootstrap.sh installs it there."""
    found = path if os.access(path, os.X_OK) else shutil.which(Path(path).name)
    if found:
        return found
    message = f"{purpose} needs {path} (Debian: apt-get install {package}; scripts/bootstrap.sh installs it as root)"
    if os.geteuid() == 0:
        pytest.fail(message)
    pytest.skip(message)
