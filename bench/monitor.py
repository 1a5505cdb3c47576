"""Monitoring benchmarks: Redis memory of a day of history, and the time of a collection round.

memory   A day of one-minute samples (`fleet.monitor.MinerSample`, written as the workers write them: one list
         per miner per UTC hour, closed hours compacted) for N miners into a private Redis; reports `used_memory`
         grown, the sum of `MEMORY USAGE` over the history keys, and bytes per sample. The samples are those of
         real simulated readings (the five usual families in turn), their values jittered each minute.

collect  N simulated miners (bench/_simserver.py, its own process) known to a site, two worker processes of that
         site (pool concurrency 1 each), and `ROUNDS` collection rounds (asicfleet.monitor.collect_site, sent as
         beat sends it); reports each round's time from the plan to its last batch, as the round records it.

Run:
    .venv/bin/python bench/monitor.py memory [--miners 1000] [--hours 24]
    .venv/bin/python bench/monitor.py collect [--miners 10000] [--workers 2] [--rounds 2] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import redis

from asicfleet.data import MinerData
from bench._common import SimProcess, check_subnet
from fleet import monitor
from orchestrator.redis_server import EmbeddedRedis

FAMILIES = ["antminer", "whatsminer", "braiins", "avalon", "bitaxe"]


def _claim_subnet() -> tuple[Any, str]:
    """A /16 of the loopback pool (preferring 127.217) held for this run."""
    from asicfleet.sim import claim_loopback

    claim = claim_loopback(16, start=217 - 100)
    subnet = claim.__enter__()
    check_subnet(subnet)
    return claim, subnet


def sample_readings() -> list[MinerData]:
    """One real reading of each usual family, from simulated miners served in this process."""
    from asicfleet import MinerFactory
    from asicfleet.sim import SimFleet

    claim, subnet = _claim_subnet()

    async def read() -> list[MinerData]:
        fleet = SimFleet.generate(subnet, len(FAMILIES), FAMILIES, seed=1)
        await fleet.start()
        factory = MinerFactory().with_port_map(fleet.ports or {})
        try:
            out = []
            for ip in fleet.miners:
                miner = await factory.get_miner(ip)
                assert miner is not None, ip
                out.append(await miner.get_data())
            return out
        finally:
            await factory.aclose()
            await fleet.stop()

    try:
        return asyncio.run(read())
    finally:
        claim.__exit__(None, None, None)


def _jitter(row: list[Any], rng: random.Random) -> list[Any]:
    """The encoded sample with every float moved a little (so no two minutes are byte-identical)."""
    def move(value: Any) -> Any:
        if isinstance(value, float):
            return round(value * (1 + rng.uniform(-0.02, 0.02)), 2)
        if isinstance(value, list):
            return [move(v) for v in value]
        return value
    return [row[0], *(move(v) for v in row[1:])]


def bench_memory(miners: int, hours: float) -> dict[str, Any]:
    readings = sample_readings()
    rng = random.Random(1)
    minutes = int(hours * 60)
    start = time.time() - minutes * 60  # the last `hours`, so nothing has expired yet
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.config_set("save", "")
        before = int(client.info("memory")["used_memory"])
        ips = [f"10.{n // 65536}.{(n // 256) % 256}.{n % 256}" for n in range(1, miners + 1)]
        total_bytes = samples = 0
        started = time.perf_counter()
        for index, ip in enumerate(ips):
            template = orjson.loads(monitor.MinerSample.of(readings[index % len(readings)], start).encode())
            pipe = client.pipeline(transaction=False)
            for minute in range(minutes):
                row = _jitter(template, rng)
                row[0] = round(start + minute * 60 + rng.uniform(0, 2), 1)
                raw = orjson.dumps(row)
                hour = int(row[0] // 3600)
                pipe.rpush(monitor.miner_history_key(ip, hour), raw)
                pipe.expireat(monitor.miner_history_key(ip, hour), (hour + 1) * 3600 + monitor.RECENT_SECONDS)
                total_bytes += len(raw)
                samples += 1
            pipe.execute()
            # as the workers do once an hour closes: every hour but the current one compacted
            for hour in range(int(start // 3600), int(time.time() // 3600)):
                monitor.compact_history(client, [ip], hour)
        written = time.perf_counter() - started
        after = int(client.info("memory")["used_memory"])
        usage = 0
        client_keys = list(client.scan_iter(match=f"{monitor.MON}:miner:*", count=1000))
        for key in client_keys:
            usage += int(client.memory_usage(key, samples=0) or 0)
        check = monitor.miner_history(client, ips[0], start - 60)
        client.close()
    per_thousand_day = (after - before) / miners * 1000 * (24 / hours)
    return {"miners": miners, "hours": hours, "samples": samples, "keys_per_miner": len(client_keys) // miners,
            "mean_sample_bytes": round(total_bytes / samples, 1),
            "used_memory_grown_mib": round((after - before) / 2**20, 1),
            "memory_usage_sum_mib": round(usage / 2**20, 1),
            "mib_per_1000_miners_per_day": round(per_thousand_day / 2**20, 1),
            "bytes_per_sample_in_redis": round((after - before) / samples, 1), "write_seconds": round(written, 1),
            "samples_read_back_first_miner": len(check)}


def bench_collect(miners: int, workers: int, rounds: int, batch: int) -> dict[str, Any]:
    from fleet.messaging import COLLECT_SITE, create_app
    from fleet.settings import FleetSettings
    from fleet.sites import DiscoveryOptions, site_queue
    from orchestrator.local import start_workers, stop_processes, wait_for_workers

    claim, subnet = _claim_subnet()
    site = "bench"
    workdir = Path(tempfile.mkdtemp(prefix="asicfleet-bench-monitor-"))
    results: dict[str, Any] = {"miners": miners, "sim_processes": -(-miners // 2500),
                               "workers": workers, "batch": batch, "subnet": subnet,
                               "cpus": os.cpu_count(), "rounds": []}
    # one simulator process holds at most 20,000 descriptors here (the hard limit): about three listening
    # ports per miner, so the fleet is served by processes of at most 2,500 miners, each on its own /18
    parts = max(1, -(-miners // 2500))
    blocks = list(ipaddress.ip_network(subnet).subnets(new_prefix=18))
    if parts > len(blocks):
        raise SystemExit(f"at most {2500 * len(blocks)} miners")
    sims = [SimProcess(str(blocks[i]), miners // parts + (1 if i < miners % parts else 0), seed=i + 1)
            for i in range(parts)]
    try:
        with EmbeddedRedis() as server:
            inventory = [m for sim in sims for m in sim.start()]
            ports = ",".join(f"{k}={v}" for k, v in (inventory[0].get("ports") or {}).items())
            options = DiscoveryOptions(ports=ports, concurrency=batch, read_timeout=10.0, identify_timeout=20.0,
                                       connect_timeout=2.0)
            sites = workdir / "sites.yaml"
            sites.write_text(f"sites:\n  {site}:\n    ranges: ['{subnet}']\n    collect_every_minutes: 1\n"
                             f"    collect_batch_size: {batch}\n    discovery: {options.model_dump_json()}\n")
            client = redis.Redis.from_url(server.url)
            pipe = client.pipeline(transaction=False)
            for miner in inventory:
                monitor.queue_known(pipe, site, str(miner["ip"]))
            pipe.execute()
            env = {"ASICFLEET_SITES_FILE": str(sites), "ASICFLEET_WORKER_LIVENESS_SECONDS": "10"}
            processes, names = start_workers(server.url, workers, site, extra_env=env)
            try:
                wait_for_workers(server.url, names, processes)
                app = create_app(FleetSettings(redis_url=server.url))
                for _ in range(rounds):
                    sent = time.time()
                    app.send_task(COLLECT_SITE, kwargs={"site": site}, queue=site_queue(site))
                    while True:
                        info = monitor.last_round(client, site)
                        if info is not None and info.started >= sent - 1 and info.finished is not None:
                            break
                        if time.time() - sent > 900:
                            raise SystemExit("a round did not finish within 15 minutes")
                        time.sleep(0.5)
                    totals = monitor.site_totals(client, site)
                    entry = {"round_seconds": info.seconds, "wall_seconds": round(time.time() - sent, 1),
                             "online": totals.online, "offline": totals.offline, "batches": info.batches}
                    results["rounds"].append(entry)
                    print(json.dumps(entry), flush=True)
            finally:
                stop_processes(processes)
                client.close()
    finally:
        for sim in sims:
            sim.stop()
        claim.__exit__(None, None, None)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    memory = sub.add_parser("memory")
    memory.add_argument("--miners", type=int, default=1000)
    memory.add_argument("--hours", type=float, default=24.0)
    collect = sub.add_parser("collect")
    collect.add_argument("--miners", type=int, default=10_000)
    collect.add_argument("--workers", type=int, default=2)
    collect.add_argument("--rounds", type=int, default=2)
    collect.add_argument("--batch", type=int, default=500)
    for each in (memory, collect):
        each.add_argument("--json", type=Path, help="write the result here too")
    args = parser.parse_args()
    if args.what == "memory":
        result = bench_memory(args.miners, args.hours)
    else:
        result = bench_collect(args.miners, args.workers, args.rounds, args.batch)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
