"""The simulated fleet for the benchmarks, in its own process, with a control socket.

Serves `asicfleet.sim.SimFleet.generate(...)` as `asicfleet sim` does (same generator, seed and mix,
uvloop when installed), writes the inventory once every miner listens, and answers one-line commands
on a Unix socket (no network traffic):

- `counts`: {ip: {"requests": {key: n}, "connections": {port: n}}, "_cpu": seconds, ...} since the last reset
- `reset`: zeroes the counters

Requests are the simulator's own per-miner counters (`SimMiner.requests`, as `SimFleet.request_count`
sums them). Connections are counted here by wrapping the connection handler the fleet binds: that
wrapper lives in this process only; no simulator file is changed.

Run: python -m bench._simserver --subnet 127.88.0.0/16 --count 300 --inventory F --control SOCK
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from asicfleet.sim import SimFleet, SimMiner
from asicfleet.sim import _fleet as sim_fleet_module
from bench._common import check_subnet, cpu_seconds
from fleet.loop import run_async

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CONNECTIONS: defaultdict[str, Counter[int]] = defaultdict(Counter)


def count_connections() -> bool:
    """Wraps the handler factory the fleet binds with, so each accepted connection is counted."""
    original = getattr(sim_fleet_module, "connection_handler", None)
    if original is None:
        return False

    def counting(miner: SimMiner, service: Any) -> Handler:
        handle: Handler = original(miner, service)
        ip, port = miner.state.ip, int(service.port)

        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            CONNECTIONS[ip][port] += 1
            await handle(reader, writer)

        return counted

    sim_fleet_module.connection_handler = counting  # type: ignore[attr-defined]
    return True


def snapshot(fleet: SimFleet, connections_counted: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        ip: {"requests": dict(miner.requests), "connections": {str(p): n for p, n in CONNECTIONS[ip].items()}}
        for ip, miner in fleet.miners.items()
    }
    out["_cpu"] = cpu_seconds()
    out["_connections_counted"] = connections_counted
    return out


def reset(fleet: SimFleet) -> None:
    for miner in fleet.miners.values():
        miner.requests.clear()
    CONNECTIONS.clear()


async def serve(args: argparse.Namespace) -> None:
    counted = count_connections()
    fleet = SimFleet.generate(args.subnet, args.count, args.mix.split(","), seed=args.seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def on_control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            command = (await reader.readline()).decode().strip()
            if command == "counts":
                reply: Any = snapshot(fleet, counted)
            elif command == "reset":
                reset(fleet)
                reply = {"ok": True, "_cpu": cpu_seconds()}
            else:
                reply = {"error": f"unknown command {command!r}"}
            writer.write(orjson.dumps(reply))
            await writer.drain()
        finally:
            writer.close()

    ports = await fleet.start()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.control)
    server = await asyncio.start_unix_server(on_control, path=args.control)
    fleet.write_inventory(args.inventory)
    print(f"simulator: {len(fleet.miners)} miners on {args.subnet}"
          + (f", ports {ports}" if ports.overrides else ", real ports"), file=sys.stderr)
    try:
        await asyncio.wait_for(stop.wait(), args.max_seconds)
    except TimeoutError:
        print(f"simulator: stopping after {args.max_seconds:g}s (--max-seconds)", file=sys.stderr)
    server.close()
    await fleet.stop()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.control)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subnet", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", default="antminer,braiins,whatsminer,avalon,bitaxe")
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="stop by itself after this long")
    args = parser.parse_args()
    check_subnet(args.subnet)
    run_async(serve(args))


if __name__ == "__main__":
    main()
