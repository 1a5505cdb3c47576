"""Shared fixtures: simulated fleets on loopback, and the captured firmware replies in ../shared."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from asicfleet.sim import SimFleet
from asicfleet.transport import PortMap

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "asic-rs" / "responses"


def fixture_bytes(*parts: str) -> bytes:
    """A captured reply from ../shared/fixtures/asic-rs/responses (see its README for attribution)."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"fixture {path} is missing: the shared fixtures must sit beside the project")
    return path.read_bytes()


FleetFactory = Callable[..., Awaitable[SimFleet]]


@pytest.fixture
async def sim_fleet() -> AsyncIterator[FleetFactory]:
    """`fleet = await sim_fleet("127.81.0.0/24", 4, ["antminer"])` serves until the test ends.

    Serves on the real ports when it may bind them (root, as in CI); otherwise on the +10000 offset,
    which `fleet.ports` reports for the scanner.
    """
    started: list[SimFleet] = []

    async def start(subnet: str, count: int, mix: list[str], seed: int = 1, ports: PortMap | None = None
                    ) -> SimFleet:
        fleet = SimFleet.generate(subnet, count, mix, seed=seed, ports=ports)
        await fleet.start()
        started.append(fleet)
        return fleet

    yield start
    for fleet in started:
        await fleet.stop()
