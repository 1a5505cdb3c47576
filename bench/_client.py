"""One client measured in its own process (so its peak RSS is its own): discovery of a whole subnet,
then `get_data()` on every miner found, both at the same concurrency. Writes one JSON result.

Clients:
- asicfleet: `MinerFactory.from_subnet(s).with_concurrent_limit(c)[.with_port_map(p)].scan()`
- pyasic: `pyasic.network.MinerNetwork.from_subnet(s).scan()` with settings `network_scan_semaphore = c`
- pyasic_rs: `pyasic_rs.MinerFactory.from_subnet(s).with_concurrent_limit(c).scan()`
- bare: the machine's limit: `asyncio.open_connection(ip, 80)` then close, for each address, c at once
  (bare_waitfor: the same with `asyncio.wait_for` as the connect deadline)

`--loop uvloop` runs the same code on uvloop (asicfleet's CLI and workers do); default: asyncio.

Run: python -m bench._client --client asicfleet --subnet 127.88.0.0/16 --concurrency 1000 \
         --inventory inv.json --control SOCK --out result.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import ipaddress
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench._common import check_subnet, control, cpu_seconds, current_rss_mib, peak_rss_mib, port_map

Found = dict[str, Any]  # ip, make, model, firmware (the client's own strings)
Read = dict[str, Any]  # ip, hashrate_ths, wattage, error


class Client:
    """What every measured client provides."""

    name = "?"
    version = "?"

    connect_timeout: float | None = None  # None: the client's own default

    async def discover(self, subnet: str, concurrency: int, ports: dict[int, int]) -> list[Any]:
        raise NotImplementedError

    def describe(self, miner: Any) -> Found:
        raise NotImplementedError

    async def read(self, miner: Any) -> Read:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _text(value: Any) -> str:
    """An enum's value, or the string form; '' for None."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


class Asicfleet(Client):
    name = "asicfleet"

    def __init__(self) -> None:
        from asicfleet import MinerFactory

        self.factory_type = MinerFactory
        self.factory: Any = None
        self.version = _version("asicfleet")

    async def discover(self, subnet: str, concurrency: int, ports: dict[int, int]) -> list[Any]:
        factory = self.factory_type.from_subnet(subnet).with_concurrent_limit(concurrency)
        if self.connect_timeout is not None:
            factory = factory.with_connectivity_timeout_secs(self.connect_timeout)
        if ports:
            factory = factory.with_port_map(ports)
        self.factory = factory
        return list(await factory.scan())

    def describe(self, miner: Any) -> Found:
        return {"ip": str(miner.ip), "make": miner.make, "model": miner.model, "firmware": miner.firmware}

    async def read(self, miner: Any) -> Read:
        data = await miner.get_data()
        ths = data.hashrate.into_unit("TH/s").value if data.hashrate is not None else None
        return {"ip": str(miner.ip), "hashrate_ths": ths, "wattage": data.wattage,
                "error": "; ".join(data.errors) or None}

    async def close(self) -> None:
        if self.factory is not None:
            await self.factory.aclose()


class Pyasic(Client):
    name = "pyasic"

    def __init__(self) -> None:
        from pyasic import settings
        from pyasic.network import MinerNetwork

        self.settings = settings
        self.network_type = MinerNetwork
        self.version = _version("pyasic")

    async def discover(self, subnet: str, concurrency: int, ports: dict[int, int]) -> list[Any]:
        if ports:
            raise RuntimeError("pyasic speaks to the standard ports only; the simulator is not on them")
        self.settings.update("network_scan_semaphore", concurrency)  # read when the network is built
        if self.connect_timeout is not None:
            self.settings.update("network_ping_timeout", max(1, round(self.connect_timeout)))  # whole seconds
        return list(await self.network_type.from_subnet(subnet).scan())

    def describe(self, miner: Any) -> Found:
        # `miner.model` reads "S19 XP (Stock)"; raw_model is the model alone (None when unknown)
        return {"ip": str(miner.ip), "make": _text(miner.make), "model": _text(miner.raw_model),
                "firmware": _text(miner.firmware)}

    async def read(self, miner: Any) -> Read:
        data = await miner.get_data()
        rate = data.hashrate
        ths = float(rate.rate) * int(rate.unit) / 1e12 if rate is not None else None
        return {"ip": str(miner.ip), "hashrate_ths": ths, "wattage": data.wattage, "error": None}


class PyasicRs(Client):
    name = "pyasic_rs"

    def __init__(self) -> None:
        from pyasic_rs import MinerFactory
        from pyasic_rs.data import HashRateUnit

        self.factory_type = MinerFactory
        self.terahash = HashRateUnit.TH
        self.version = _version("pyasic-rs")

    async def discover(self, subnet: str, concurrency: int, ports: dict[int, int]) -> list[Any]:
        if ports:
            raise RuntimeError("pyasic-rs speaks to the standard ports only; the simulator is not on them")
        factory = self.factory_type.from_subnet(subnet).with_concurrent_limit(concurrency)
        if self.connect_timeout is not None:
            factory = factory.with_connectivity_timeout_secs(max(1, round(self.connect_timeout)))  # whole seconds
        return list(await factory.scan())

    def describe(self, miner: Any) -> Found:
        return {"ip": str(miner.ip), "make": _text(miner.make), "model": _text(miner.model),
                "firmware": _text(miner.firmware)}

    async def read(self, miner: Any) -> Read:
        data = await miner.get_data()
        ths = float(data.hashrate.into_unit(self.terahash).value) if data.hashrate is not None else None
        return {"ip": str(miner.ip), "hashrate_ths": ths, "wattage": data.wattage, "error": None}


class Bare(Client):
    """Connect to port 80 and close: what the machine allows, with no identification at all.

    Each connect is bounded (1 s unless --connect-timeout) with `asyncio.timeout` (the cheapest
    bounded form); `bare_waitfor` bounds it with `asyncio.wait_for` instead, as asicfleet's `open_tcp`
    does (on Python 3.11 wait_for wraps the connect in one more Task)."""

    name = "bare"
    version = f"python {sys.version.split()[0]}"
    use_wait_for = False

    async def _connect(self, ip: str, port: int) -> asyncio.StreamWriter:
        timeout = self.connect_timeout or 1.0
        if self.use_wait_for:
            _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout)
            return writer
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(ip, port)
        return writer

    async def discover(self, subnet: str, concurrency: int, ports: dict[int, int]) -> list[Any]:
        network = ipaddress.IPv4Network(subnet, strict=False)
        first, last = int(network.network_address) + 1, int(network.broadcast_address) - 1
        addresses = iter(range(first, last + 1))
        port = ports.get(80, 80)
        accepted: list[str] = []

        async def worker() -> None:
            for number in addresses:
                ip = str(ipaddress.IPv4Address(number))
                try:
                    writer = await self._connect(ip, port)
                except (OSError, TimeoutError):
                    continue
                accepted.append(ip)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        await asyncio.gather(*(worker() for _ in range(min(concurrency, last - first + 1))))
        return sorted(accepted, key=lambda a: ipaddress.IPv4Address(a))

    def describe(self, miner: Any) -> Found:
        return {"ip": str(miner), "make": "", "model": "", "firmware": ""}


class BareWaitFor(Bare):
    name = "bare_waitfor"
    use_wait_for = True


CLIENTS: dict[str, Callable[[], Client]] = {"asicfleet": Asicfleet, "pyasic": Pyasic, "pyasic_rs": PyasicRs,
                                            "bare": Bare, "bare_waitfor": BareWaitFor}


async def _timed(coro: Awaitable[Any], limit: float) -> tuple[Any, float, float]:
    cpu, start = cpu_seconds(), time.perf_counter()
    async with asyncio.timeout(limit):
        result = await coro
    return result, time.perf_counter() - start, cpu_seconds() - cpu


async def run(args: argparse.Namespace, client: Client, out: dict[str, Any], ports: dict[int, int]) -> None:
    sim_cpu = control(args.control, "reset")["_cpu"] if args.control else None
    miners, seconds, cpu = await _timed(client.discover(args.subnet, args.concurrency, ports), args.phase_timeout)
    out["discovery"] = {"seconds": seconds, "cpu_seconds": cpu, "found": [client.describe(m) for m in miners],
                        "rss_mib": current_rss_mib()}
    if args.control:
        out["discovery"]["sim"] = control(args.control, "counts")
        out["discovery"]["sim"]["_cpu_start"] = sim_cpu
        sim_cpu = control(args.control, "reset")["_cpu"]
    if args.collect and not isinstance(client, Bare):
        limit = asyncio.Semaphore(args.concurrency)

        async def one(miner: Any) -> Read:
            async with limit:
                try:
                    return await asyncio.wait_for(client.read(miner), args.read_timeout)
                except Exception as exc:  # a failed read is a result, not a crash of the benchmark
                    return {"ip": client.describe(miner)["ip"], "hashrate_ths": None, "wattage": None,
                            "error": f"{type(exc).__name__}: {exc}"[:300]}

        reads, seconds, cpu = await _timed(asyncio.gather(*(one(m) for m in miners)), args.phase_timeout)
        out["collection"] = {"seconds": seconds, "cpu_seconds": cpu, "reads": reads}
        if args.control:
            out["collection"]["sim"] = control(args.control, "counts")
            out["collection"]["sim"]["_cpu_start"] = sim_cpu
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", choices=sorted(CLIENTS), required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--subnet", required=True)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--control", default="", help="the simulator helper's control socket (request counts)")
    parser.add_argument("--no-collect", dest="collect", action="store_false")
    parser.add_argument("--phase-timeout", type=float, default=300.0)
    parser.add_argument("--read-timeout", type=float, default=60.0, help="per-miner get_data deadline")
    parser.add_argument("--connect-timeout", type=float, default=None, help="seconds; default: each client's own")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    check_subnet(args.subnet)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    out: dict[str, Any] = {"client": args.client, "loop": args.loop, "concurrency": args.concurrency,
                           "subnet": args.subnet, "rss_start_mib": peak_rss_mib()}
    ports = port_map(json.loads(Path(args.inventory).read_text()))
    client = CLIENTS[args.client]()
    client.connect_timeout = args.connect_timeout
    out.update(version=client.version, rss_after_import_mib=current_rss_mib())
    try:
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(run(args, client, out, ports))
        else:
            asyncio.run(run(args, client, out, ports))
    except Exception as exc:
        out["failed"] = f"{type(exc).__name__}: {exc}"[:500]
    out["peak_rss_mib"] = peak_rss_mib()
    Path(args.out).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
