"""Distributed scan throughput: a simulated fleet scanned through Celery workers (1, then 2 worker
processes) against one in-process scan of the same subnet.

Everything runs on this machine: the simulator (bench/_simserver.py), a private Redis
(`orchestrator.redis_server.EmbeddedRedis`, a real redis-server on a free 127.0.0.1 port, nothing on
disk), workers started with `orchestrator.local.start_workers` (one Celery worker process each,
pool concurrency 1). A scan is `Orchestrator.start_scan([subnet], options=DiscoveryOptions(...))`
followed by `Orchestrator.watch(scan_id)`; it identifies every address and reads every miner found
(`get_data`), as `asicfleet scan --distributed` does. The in-process reference does the same work
(`scan_and_collect`, on uvloop as the workers and the CLI run it) in one process.

Workers are started and seen beating before the clock starts; the clock runs from `start_scan` to
the last chunk done (queueing, Redis writes and polling included).

Run (as root so the simulator binds the real ports; not required here):
    .venv/bin/python bench/distributed.py [--miners 300] [--subnet 127.89.0.0/16] [--workers 1,2] \
        [--chunk 24] [--concurrency 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    PYTHON,
    ROOT,
    SimProcess,
    check_subnet,
    env_for_children,
    host_count,
    port_map,
    print_total,
    report_header,
)


# ----- the in-process reference (run in a child process) ------------------------------------------
def in_process_child(subnet: str, concurrency: int, ports: str) -> None:
    """Prints one JSON line: seconds, miners, errors of `scan_and_collect` over the subnet."""
    from asicfleet.discovery import MinerFactory, scan_and_collect
    from asicfleet.transport import PortMap
    from bench._common import cpu_seconds, peak_rss_mib
    from fleet.loop import run_async

    async def scan() -> dict[str, Any]:
        factory = (MinerFactory.from_subnet(subnet).with_concurrent_limit(concurrency)
                   .with_port_map(PortMap.parse(ports)))
        miners = errors = 0
        start, cpu = time.perf_counter(), cpu_seconds()
        try:
            async for record in scan_and_collect(factory):
                if record.data is not None:
                    miners += 1
                    errors += bool(record.data.errors)
                else:
                    errors += 1
        finally:
            await factory.aclose()
        return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu, "miners": miners,
                "records_with_errors": errors}

    result = run_async(scan())
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


def run_in_process(args: argparse.Namespace, ports: str) -> dict[str, Any]:
    command = [PYTHON, str(Path(__file__).resolve()), "--in-process-child", "--subnet", args.subnet,
               "--concurrency", str(args.concurrency), "--ports", ports]
    done = subprocess.run(command, cwd=ROOT, env=env_for_children(), capture_output=True, timeout=args.timeout,
                          check=False)
    lines = done.stdout.decode().strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"failed": f"exit {done.returncode}: {done.stderr.decode(errors='replace')[-600:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# ----- the distributed runs -----------------------------------------------------------------------
def run_distributed(args: argparse.Namespace, redis_url: str, workers: int, chunk: int, ports: str,
                    addresses: int) -> dict[str, Any]:
    from fleet.settings import FleetSettings
    from fleet.sites import DiscoveryOptions
    from orchestrator.local import start_workers, stop_processes, wait_for_workers
    from orchestrator.watch import Orchestrator

    processes, names = start_workers(redis_url, workers, None, concurrency=1,
                                     extra_env={"PYTHONWARNINGS": "ignore"})
    try:
        wait_for_workers(redis_url, names, processes, timeout=120)
        orchestrator = Orchestrator(FleetSettings(redis_url=redis_url))
        options = DiscoveryOptions(concurrency=args.concurrency, ports=ports)
        start = time.perf_counter()
        scan_id = orchestrator.start_scan([args.subnet], chunk_prefix=chunk, options=options)
        final = orchestrator.watch(scan_id, poll_seconds=0.1, timeout=args.timeout)
        seconds = time.perf_counter() - start
        inventory = orchestrator.inventory(scan_id)
        with_errors = sum(bool(m.errors) for m in inventory)
        return {"workers": workers, "chunk_prefix": chunk, "chunks": final.chunks_total,
                "chunks_failed": final.chunks_failed, "requeued": final.requeued, "seconds": seconds,
                "addresses_per_s": addresses / seconds, "miners": final.miners, "miners_per_s": final.miners / seconds,
                "errors": final.errors, "miners_with_read_errors": with_errors,
                "store_elapsed_seconds": final.elapsed}
    except Exception as exc:  # a failed run is a result: report it and go on
        return {"workers": workers, "chunk_prefix": chunk, "failed": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        stop_processes(processes)


# ----- main ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miners", type=int, default=300)
    parser.add_argument("--subnet", default="127.89.0.0/16")
    parser.add_argument("--workers", default="1,2", help="worker process counts to measure, comma-separated")
    parser.add_argument("--chunk", default="24", help="chunk prefix lengths to measure, comma-separated (8..32)")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=300.0, help="limit for each scan, s")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--in-process-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ports", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    network = check_subnet(args.subnet)
    if args.in_process_child:
        in_process_child(args.subnet, args.concurrency, args.ports)
        return
    os.chdir(ROOT)  # workers are started as `python -m orchestrator.cli` from here
    from orchestrator.redis_server import EmbeddedRedis

    addresses = host_count(network)
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    chunks = [int(c) for c in args.chunk.split(",") if c.strip()]
    started = time.monotonic()
    print(f"distributed: {args.miners} simulated miners on {args.subnet} ({addresses} addresses), concurrency "
          f"{args.concurrency}, workers {worker_counts}, chunk prefixes {chunks}", flush=True)
    runs: list[dict[str, Any]] = []
    with SimProcess(args.subnet, args.miners) as sim:
        inventory = sim.start()
        ports = ",".join(f"{k}={v}" for k, v in sorted(port_map(inventory).items()))
        reference = run_in_process(args, ports)
        if "failed" not in reference:
            reference["addresses_per_s"] = addresses / reference["seconds"]
            reference["miners_per_s"] = reference["miners"] / reference["seconds"]
            print(f"  in-process      {reference['seconds']:7.2f} s  {reference['addresses_per_s']:>8,.0f} addr/s  "
                  f"{reference['miners_per_s']:>6.1f} miners/s  miners {reference['miners']}/{len(inventory)}  "
                  f"records with errors {reference['records_with_errors']}", flush=True)
        else:
            print(f"  in-process FAILED: {reference['failed']}", flush=True)
        with EmbeddedRedis() as redis:
            for chunk in chunks:
                for count in worker_counts:
                    result = run_distributed(args, redis.url, count, chunk, ports, addresses)
                    runs.append(result)
                    if "failed" in result:
                        print(f"  {count} worker(s) /{chunk}: FAILED {result['failed']}", flush=True)
                        continue
                    share = (f"  = {result['addresses_per_s'] / reference['addresses_per_s']:.2f}x in-process"
                             if "addresses_per_s" in reference else "")
                    print(f"  {count} worker(s) /{chunk} ({result['chunks']} chunks) {result['seconds']:7.2f} s  "
                          f"{result['addresses_per_s']:>8,.0f} addr/s  {result['miners_per_s']:>6.1f} miners/s  "
                          f"miners {result['miners']}/{len(inventory)}  errors {result['errors']}  "
                          f"failed chunks {result['chunks_failed']}{share}", flush=True)
    elapsed = time.monotonic() - started
    print_total(elapsed)
    if args.json:
        report = {
            **report_header(args.subnet, addresses, args.miners, args.concurrency),
            "in_process": reference, "distributed": runs, "seconds": elapsed,
        }
        for run in runs:
            if "addresses_per_s" in run and "addresses_per_s" in reference:
                run["ratio_to_in_process"] = run["addresses_per_s"] / reference["addresses_per_s"]
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
