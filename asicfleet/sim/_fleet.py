"""A fleet of simulated miners, each on its own loopback address with its firmware's ports."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import random
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from asicfleet._limits import raise_fd_limit
from asicfleet.hardware import Make, MinerModel, SimulableModel, catalogue, lookup_model
from asicfleet.sim._core import Fault, SimMiner
from asicfleet.sim._grpc import GrpcServer
from asicfleet.sim._servers import connection_handler, tls_context
from asicfleet.transport import PortMap

UNPRIVILEGED_OFFSET = 10000  # 80 -> 10080, 443 -> 10443 when binding below 1024 is not allowed


def _loopback_network(subnet: str) -> ipaddress.IPv4Network:
    network = ipaddress.ip_network(subnet, strict=False)
    if not isinstance(network, ipaddress.IPv4Network) or not network.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
        raise ValueError(f"the simulator serves on loopback addresses only (127.0.0.0/8); got {subnet}")
    return network


def servable_models(family: type[SimMiner]) -> list[SimulableModel]:
    """Every catalogued model that `family` can be served as: its make, and all figures a simulation needs."""
    found = []
    for known in catalogue():
        if known.make not in family.makes():
            continue
        try:
            model = family.simulable(known)
        except ValidationError:
            continue  # shape or nominal figures not catalogued
        if family.serves(model):
            found.append(model)
    return found


def lookup_any_make(family: type[SimMiner], name: str) -> MinerModel | None:
    """The catalogued model `name` of any make `family` runs on (its own make first)."""
    for make in family.makes():
        known = lookup_model(make, name)
        if known is not None:
            return known
    return None


def _model_plan(families: list[type[SimMiner]], names: list[str]) -> list[tuple[type[SimMiner], SimulableModel]]:
    """Each named model with the first family that serves it; an unknown or unservable name is refused."""
    plan = []
    for name in names:
        matches = [(f, m) for f in families if (m := lookup_any_make(f, name)) is not None]
        if not matches:
            makes = sorted({f.make for f in families})
            raise ValueError(f"unknown model {name!r} for the simulated makes {makes} "
                             "(`asicfleet models` lists the catalogue)")
        for family, known in matches:
            try:
                model = family.simulable(known)
            except ValidationError as exc:
                missing = sorted(str(e["loc"][0]) for e in exc.errors())
                raise ValueError(f"{known.name} cannot be simulated: the catalogue lacks {missing}") from None
            if family.serves(model):
                plan.append((family, model))
                break
        else:
            raise ValueError(f"{name!r} is catalogued, but no simulated firmware of {[f.family for f in families]} "
                             "serves it")
    return plan


def _weighted_pools(families: list[type[SimMiner]], weights: Mapping[str, float]
                    ) -> dict[str, tuple[float, list[tuple[type[SimMiner], SimulableModel]]]]:
    """make -> (weight, every (family, model) of that make the families can serve)."""
    pools: dict[str, tuple[float, list[tuple[type[SimMiner], SimulableModel]]]] = {}
    for text, weight in weights.items():
        make = next((m for m in Make if m.value.lower() == text.strip().lower()), None)
        if make is None:
            raise ValueError(f"unknown make {text!r}; known: {[m.value for m in Make]}")
        if weight < 0:
            raise ValueError(f"the weight of {make.value} is negative")
        options = [(f, m) for f in families if make in f.makes() for m in servable_models(f) if m.make == make]
        if not options:
            raise ValueError(f"no simulated firmware of {[f.family for f in families]} serves {make.value}")
        pools[make.value] = (weight, options)
    if not any(w for w, _ in pools.values()):
        raise ValueError("the make weights add up to zero")
    return pools


class SimFleet:
    """Simulated miners; `async with SimFleet.generate(...) as fleet:` serves them until the block ends."""

    def __init__(self, miners: Iterable[SimMiner], ports: PortMap | None = None) -> None:
        self.miners: dict[str, SimMiner] = {m.state.ip: m for m in miners}
        self.ports = ports
        self._servers: dict[str, list[asyncio.Server | GrpcServer]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def generate(cls, subnet: str, count: int, mix: Iterable[str], seed: int = 1,
                 ports: PortMap | None = None, models: Iterable[str] | None = None,
                 weights: Mapping[str, float] | None = None) -> SimFleet:
        """`count` miners spread over `subnet` (seeded). By default the families of `mix` are taken in turn,
        each with one of its usual models; `models` (catalogue names or aliases) are taken in turn instead,
        each served by the first family of `mix` that runs that make; `weights` (make -> weight) draws each
        miner's make at random and then any catalogued model of it that a family of `mix` can serve."""
        from asicfleet.sim import SIM_FAMILIES

        families = [f.strip().lower() for f in mix if f.strip()]
        unknown = [f for f in families if f not in SIM_FAMILIES]
        if not families or unknown:
            raise ValueError(f"unknown simulated firmware {unknown or mix!r}; known: {sorted(SIM_FAMILIES)}")
        chosen = [SIM_FAMILIES[f] for f in families]
        wanted = [m.strip() for m in models or () if m.strip()]
        if wanted and weights:
            raise ValueError("give either models or make weights, not both")
        plan = _model_plan(chosen, wanted) if wanted else None
        pools = _weighted_pools(chosen, weights) if weights else None
        network = _loopback_network(subnet)
        hosts = [str(h) for h in network.hosts() if not str(h).endswith((".0", ".255"))]
        if count < 0 or count > len(hosts):
            raise ValueError(f"{subnet} has room for {len(hosts)} miners, not {count}")
        rng = random.Random(seed)
        addresses = sorted(rng.sample(hosts, count), key=lambda a: ipaddress.ip_address(a))
        miners = []
        for index, ip in enumerate(addresses):
            if plan is not None:
                family, model = plan[index % len(plan)]
            elif pools is not None:
                make = rng.choices(list(pools), weights=[pools[m][0] for m in pools])[0]
                family, model = rng.choice(pools[make][1])
            else:
                family = chosen[index % len(chosen)]
                known = lookup_any_make(family, rng.choice(family.models))
                if known is None:
                    raise ValueError(f"{family.__name__} names a model missing from the hardware table")
                model = family.simulable(known)
            miners.append(family.build(ip, model, random.Random(rng.random())))
        return cls(miners, ports)

    # ----- serving ----------------------------------------------------------------------------
    def _needs_privilege(self) -> bool:
        return any(s.port < 1024 for m in self.miners.values() for s in m.services)

    async def _choose_ports(self) -> PortMap:
        if self.ports is not None:
            return self.ports
        if not self._needs_privilege():
            return PortMap()
        probe = next(iter(self.miners))
        try:
            server = await asyncio.start_server(lambda r, w: None, probe, 80)
        except PermissionError:
            print(f"simulator: binding ports below 1024 needs privileges; serving them at +{UNPRIVILEGED_OFFSET} "
                  f"(80 -> {80 + UNPRIVILEGED_OFFSET}, 443 -> {443 + UNPRIVILEGED_OFFSET}); "
                  f"scan with --ports {PortMap(self._offset_map())}", file=sys.stderr)
            return PortMap(self._offset_map())
        server.close()
        await server.wait_closed()
        return PortMap()

    def _offset_map(self) -> dict[int, int]:
        low = {s.port for m in self.miners.values() for s in m.services if s.port < 1024}
        return {p: p + UNPRIVILEGED_OFFSET for p in sorted(low)}

    async def _bind(self, miner: SimMiner) -> None:
        assert self.ports is not None
        servers: list[asyncio.Server | GrpcServer] = []
        try:
            for service in miner.served():
                if service.kind == "grpc":
                    grpc_server = GrpcServer(miner, miner.state.ip, self.ports(service.port), service.port)
                    await grpc_server.start()
                    servers.append(grpc_server)
                    continue
                servers.append(await asyncio.start_server(
                    connection_handler(miner, service), miner.state.ip, self.ports(service.port),
                    ssl=tls_context() if service.kind == "https" else None, reuse_address=True, backlog=512,
                ))
        except BaseException:
            await self._close(servers)
            raise
        self._servers[miner.state.ip] = servers

    @staticmethod
    async def _close(servers: list[asyncio.Server | GrpcServer]) -> None:
        for server in servers:
            if isinstance(server, GrpcServer):
                await server.stop()  # its open calls and connections end with it
            else:
                server.close()

    async def _unbind(self, ip: str) -> None:
        """Stops listening and drops the open connections too, as a reboot does."""
        await self._close(self._servers.pop(ip, []))
        miner = self.miners.get(ip)
        for writer in list(miner.connections if miner else ()):
            writer.transport.abort()
        await asyncio.sleep(0)

    async def start(self) -> PortMap:
        raise_fd_limit()
        self.ports = await self._choose_ports()
        for miner in self.miners.values():
            miner.on_restart = self._restart_hook(miner)
        await asyncio.gather(*(self._bind(m) for m in self.miners.values()))
        return self.ports

    def _restart_hook(self, miner: SimMiner):  # type: ignore[no-untyped-def]
        def hook(seconds: float) -> None:
            async def cycle() -> None:
                # the reply to the restart command leaves first (a slow miner sends it late)
                patience = 1.0 + (miner.slow_seconds if miner.fault is Fault.SLOW else 0.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(miner.restart_reply_left.wait(), patience)
                await self._unbind(miner.state.ip)
                await asyncio.sleep(seconds)
                await self._bind(miner)

            task = asyncio.get_running_loop().create_task(cycle())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return hook

    async def switch_off(self, ip: str) -> None:
        """The miner loses power: it stops listening and its connections drop (it keeps its state)."""
        await self._unbind(ip)

    async def switch_on(self, ip: str) -> None:
        """Power comes back: the miner listens again (no-op while it already does)."""
        if ip not in self._servers:
            await self._bind(self.miners[ip])

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for ip in list(self._servers):
            await self._unbind(ip)

    async def __aenter__(self) -> SimFleet:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # ----- inspection and faults ---------------------------------------------------------------
    def inventory(self) -> list[dict[str, Any]]:
        ports = {str(k): v for k, v in (self.ports.overrides.items() if self.ports else [])}
        return [{**m.inventory(), "ports": ports} for m in self.miners.values()]

    def write_inventory(self, path: str | Path) -> None:
        """Writes the inventory atomically, so a reader never sees half a file."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.inventory(), indent=1))
        tmp.replace(target)

    def set_fault(self, ip: str, fault: Fault | str) -> None:
        self.miners[ip].fault = Fault(fault)

    def assign_faults(self, counts: dict[Fault, int], seed: int = 1) -> dict[str, Fault]:
        """Gives `counts[f]` distinct miners fault `f` (seeded); returns ip -> fault."""
        rng = random.Random(seed)
        healthy = sorted(ip for ip, m in self.miners.items() if m.fault is Fault.NONE)
        needed = sum(counts.values())
        if needed > len(healthy):
            raise ValueError(f"{needed} faulty miners asked for, {len(healthy)} miners without a fault")
        chosen = rng.sample(healthy, needed)
        assigned: dict[str, Fault] = {}
        for fault, n in counts.items():
            for ip in chosen[:n]:
                self.set_fault(ip, fault)
                assigned[ip] = fault
            chosen = chosen[n:]
        return assigned

    def request_count(self, ip: str | None = None) -> int:
        miners = [self.miners[ip]] if ip else list(self.miners.values())
        return sum(m.total_requests for m in miners)
