"""Distributed scan throughput: a simulated fleet scanned through Celery workers (1, then 2 worker
processes) against one in-process scan of the same subnet.

Everything runs on this machine: the simulator (bench/_simserver.py), a private Redis
(`orchestrator.redis_server.EmbeddedRedis`, a real redis-server on a free 127.0.0.1 port, nothing on
disk), workers started with `orchestrator.local.start_workers` (one Celery worker process each,
pool concurrency 1). A scan is `Orchestrator.start_scan([subnet], chunk_prefix=P, options=...)`
followed by `Orchestrator.watch(scan_id)` polling every 0.5 s as the CLI does; it identifies every
address and reads every miner found (`get_data`), as `asicfleet scan --distributed` does. The
in-process reference does the same work (`scan_and_collect`, on uvloop as the workers and the CLI run
it) in one process. `--chunk auto` lets `start_scan` choose the chunk size from the range and the
live workers (`fleet.scans.auto_chunk_prefix`).

Workers are started and seen beating before the clock starts; the time is the scan's own record in
Redis, from `start_scan` (before queueing) to the closing of the scan by the worker that ends the last
chunk (queueing and Redis writes included). CPU seconds are counted for each part over that time: the
simulator, Redis, the workers (main process and pool process) and this process (queueing, watching).
Each round runs the in-process scan and then every distributed configuration; with `--repeat N` the
summary gives medians and ranges over the rounds, each ratio taken against its own round's in-process
scan.

Run (as root so the simulator binds the real ports; not required here):
    .venv/bin/python bench/distributed.py [--miners 300] [--subnet 127.62.0.0/16] [--workers 1,2] \
        [--chunk 24,auto] [--concurrency 1000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
    cpu_seconds,
    env_for_children,
    host_count,
    port_map,
    print_total,
    process_cpu_seconds,
    process_tree_cpu_seconds,
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
def chunk_timeline(chunks: list[Any], workers: int, seconds: float) -> dict[str, Any]:
    """How the workers' time went: a chunk runs from `started` (claimed) to `finished` (recorded done);
    the rest of each worker's time is between chunks (Celery dispatch, task start-up, the claim)."""
    timed = [c for c in chunks if c.started and c.finished]
    busy = sum(c.finished - c.started for c in timed)
    per_chunk = sorted(c.finished - c.started for c in timed)
    return {"chunk_busy_share": busy / (workers * seconds) if seconds > 0 else 0.0,
            "chunk_seconds_median": statistics.median(per_chunk) if per_chunk else 0.0,
            "chunk_seconds_max": per_chunk[-1] if per_chunk else 0.0}


def run_distributed(args: argparse.Namespace, redis: Any, sim: SimProcess, workers: int, chunk: int | None,
                    ports: str, addresses: int) -> dict[str, Any]:
    from fleet.settings import FleetSettings
    from fleet.sites import DiscoveryOptions
    from orchestrator.local import start_workers, stop_processes, wait_for_workers
    from orchestrator.watch import Orchestrator

    processes, names = start_workers(redis.url, workers, None, concurrency=1,
                                     extra_env={"PYTHONWARNINGS": "ignore"})
    try:
        wait_for_workers(redis.url, names, processes, timeout=120)
        orchestrator = Orchestrator(FleetSettings(redis_url=redis.url))
        options = DiscoveryOptions(concurrency=args.concurrency, ports=ports)
        pids = {"simulator": [sim.pid], "redis": [redis.process.pid], "workers": [p.pid for p in processes]}
        cpu_before = {name: sum(process_tree_cpu_seconds(pid) for pid in group) for name, group in pids.items()}
        main_before = sum(process_cpu_seconds(p.pid) for p in processes)
        own_before = cpu_seconds()
        start = time.perf_counter()
        scan_id = orchestrator.start_scan([args.subnet], chunk_prefix=chunk, options=options)
        # polled as `asicfleet scan --distributed` polls (faster polling costs the workers CPU on 2 cores);
        # the time is the scan's own record (recorded at `start_scan`, closed by the last chunk's worker)
        final = orchestrator.watch(scan_id, poll_seconds=args.poll, timeout=args.timeout)
        watch_seconds = time.perf_counter() - start
        seconds = final.elapsed
        cpu = {name: sum(process_tree_cpu_seconds(pid) for pid in group) - cpu_before[name]
               for name, group in pids.items()}
        cpu["watcher"] = cpu_seconds() - own_before  # this process: queueing the chunks and watching
        # the workers' main processes (Celery's consumer, task events, heartbeat, reaper); the rest is their pools'
        cpu["worker_main"] = sum(process_cpu_seconds(p.pid) for p in processes) - main_before
        inventory = orchestrator.inventory(scan_id)
        with_errors = sum(bool(m.errors) for m in inventory)
        info = orchestrator.store.scan(scan_id)
        timeline = chunk_timeline(orchestrator.store.chunks(scan_id, final.chunks_total), workers, seconds)
        return {"workers": workers, "chunk_prefix": info.chunk_prefix if info else chunk,
                "chunks": final.chunks_total, "chunks_failed": final.chunks_failed, "requeued": final.requeued,
                "seconds": seconds, "addresses_per_s": addresses / seconds, "miners": final.miners,
                "miners_per_s": final.miners / seconds, "errors": final.errors,
                "miners_with_read_errors": with_errors, "watch_seconds": watch_seconds,
                "cpu_seconds": cpu, **timeline}
    except Exception as exc:  # a failed run is a result: report it and go on
        return {"workers": workers, "chunk_prefix": chunk, "failed": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        stop_processes(processes)
        forget_workers(redis.url, names)


def forget_workers(redis_url: str, names: list[str]) -> None:
    """Drops the stopped workers' heartbeats (a worker stopped by SIGTERM may leave its key to expire), so the
    next run's automatic chunk size counts only its own workers."""
    import socket

    import redis as redis_client

    from fleet.store import worker_key, workers_key

    client = redis_client.Redis.from_url(redis_url)
    try:
        hostnames = [f"{name}@{socket.gethostname()}" for name in names]
        client.delete(*(worker_key(h) for h in hostnames))
        client.srem(workers_key(), *hostnames)
    finally:
        client.close()


def spread(values: list[float]) -> str:
    """`median (min-max)`, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def summarize(reference_runs: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (chunk prefix, workers): medians and ranges over the repeats; each run's ratio is taken
    against the in-process run of its own round (the machine's load drifts between rounds)."""
    summary: list[dict[str, Any]] = []
    keys = sorted({(r["chunk_key"], r["workers"]) for r in runs}, key=lambda k: (str(k[0]), k[1]))
    for chunk_key, workers in keys:
        ok = [r for r in runs if (r["chunk_key"], r["workers"]) == (chunk_key, workers) and "failed" not in r]
        failed = sum((r["chunk_key"], r["workers"]) == (chunk_key, workers) and "failed" in r for r in runs)
        if not ok:
            summary.append({"chunk": chunk_key, "workers": workers, "failed_runs": failed})
            continue
        ratios = [r["ratio_to_in_process"] for r in ok if "ratio_to_in_process" in r]
        one = [r for r in runs if (r["chunk_key"], r["workers"]) == (chunk_key, 1) and "failed" not in r]
        by_round_one = {r["round"]: r["seconds"] for r in one}
        scaling = [by_round_one[r["round"]] / r["seconds"] for r in ok if r["round"] in by_round_one]
        summary.append({
            "chunk": chunk_key, "workers": workers, "chunks": sorted({r["chunks"] for r in ok}), "runs": len(ok),
            "failed_runs": failed,
            "seconds_median": statistics.median(r["seconds"] for r in ok),
            "seconds_range": [min(r["seconds"] for r in ok), max(r["seconds"] for r in ok)],
            "addresses_per_s_median": statistics.median(r["addresses_per_s"] for r in ok),
            "ratio_to_in_process_median": statistics.median(ratios) if ratios else None,
            "ratio_to_in_process_range": [min(ratios), max(ratios)] if ratios else None,
            "ratio_to_one_worker_median": statistics.median(scaling) if scaling and workers != 1 else None,
            "ratio_to_one_worker_range": [min(scaling), max(scaling)] if scaling and workers != 1 else None,
            "miners_min": min(r["miners"] for r in ok), "errors_max": max(r["errors"] for r in ok),
            "cpu_seconds_median": {name: statistics.median(r["cpu_seconds"][name] for r in ok)
                                   for name in ok[0]["cpu_seconds"]},
            "chunk_busy_share_median": statistics.median(r["chunk_busy_share"] for r in ok),
        })
    return summary


def print_summary(reference_runs: list[dict[str, Any]], summary: list[dict[str, Any]], miners: int) -> None:
    ok = [r for r in reference_runs if "failed" not in r]
    print(f"summary over {len(reference_runs)} round(s): median (min-max)")
    if ok:
        print(f"  in-process            {spread([r['seconds'] for r in ok])} s  "
              f"{statistics.median(r['addresses_per_s'] for r in ok):>8,.0f} addr/s  miners min "
              f"{min(r['miners'] for r in ok)}/{miners}  CPU: client "
              f"{statistics.median(r['cpu_seconds'] for r in ok):.1f} s, simulator "
              f"{statistics.median(r['simulator_cpu_seconds'] for r in ok):.1f} s")
    for entry in summary:
        name = f"{entry['workers']} worker(s) /{entry['chunk']}"
        if "seconds_median" not in entry:
            print(f"  {name}: every run FAILED")
            continue
        ratio = entry["ratio_to_in_process_median"]
        line = (f"  {name} ({'/'.join(map(str, entry['chunks']))} chunks)  {entry['seconds_median']:.2f}"
                f" s [{entry['seconds_range'][0]:.2f}-{entry['seconds_range'][1]:.2f}]"
                f"  {entry['addresses_per_s_median']:>8,.0f} addr/s")
        if ratio is not None:
            low, high = entry["ratio_to_in_process_range"]
            line += f"  {ratio:.2f}x in-process [{low:.2f}-{high:.2f}]"
        if entry["ratio_to_one_worker_median"] is not None:
            low, high = entry["ratio_to_one_worker_range"]
            line += f"  {entry['ratio_to_one_worker_median']:.2f}x one worker [{low:.2f}-{high:.2f}]"
        cpu = entry["cpu_seconds_median"]
        line += (f"  miners min {entry['miners_min']}/{miners}, errors max {entry['errors_max']}, failed runs "
                 f"{entry['failed_runs']}; CPU s: workers {cpu['workers']:.1f} (main {cpu['worker_main']:.1f}), "
                 f"simulator {cpu['simulator']:.1f}, "
                 f"redis {cpu['redis']:.1f}, watcher {cpu['watcher']:.1f}; chunks busy "
                 f"{entry['chunk_busy_share_median']:.0%} of the workers' time")
        print(line)


# ----- main ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miners", type=int, default=300)
    parser.add_argument("--subnet", default="127.62.0.0/16")
    parser.add_argument("--workers", default="1,2", help="worker process counts to measure, comma-separated")
    parser.add_argument("--chunk", default="24,auto", help="chunk prefix lengths to measure, comma-separated (8..32, "
                                                          "or auto: chosen from the range and the live workers)")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1, help="rounds (each: the in-process scan, then every "
                                                              "distributed run); medians and ranges are reported")
    parser.add_argument("--poll", type=float, default=0.5, help="the watcher's poll interval, s (the CLI's: 0.5)")
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
    chunks: list[int | None] = [None if c.strip() == "auto" else int(c) for c in args.chunk.split(",") if c.strip()]
    started = time.monotonic()
    print(f"distributed: {args.miners} simulated miners on {args.subnet} ({addresses} addresses), concurrency "
          f"{args.concurrency}, workers {worker_counts}, chunk prefixes {chunks}, {args.repeat} round(s)",
          flush=True)
    runs: list[dict[str, Any]] = []
    reference_runs: list[dict[str, Any]] = []
    with SimProcess(args.subnet, args.miners) as sim:
        inventory = sim.start()
        ports = ",".join(f"{k}={v}" for k, v in sorted(port_map(inventory).items()))
        with EmbeddedRedis() as redis:
            for round_ in range(args.repeat):
                tag = f"[{round_ + 1}/{args.repeat}]" if args.repeat > 1 else ""
                sim_before = process_tree_cpu_seconds(sim.pid)
                reference = run_in_process(args, ports)
                reference["simulator_cpu_seconds"] = process_tree_cpu_seconds(sim.pid) - sim_before
                reference["round"] = round_
                reference_runs.append(reference)
                if "failed" not in reference:
                    reference["addresses_per_s"] = addresses / reference["seconds"]
                    reference["miners_per_s"] = reference["miners"] / reference["seconds"]
                    print(f"  {tag}in-process      {reference['seconds']:7.2f} s  "
                          f"{reference['addresses_per_s']:>8,.0f} addr/s  {reference['miners_per_s']:>6.1f} miners/s  "
                          f"miners {reference['miners']}/{len(inventory)}  records with errors "
                          f"{reference['records_with_errors']}  CPU s: client {reference['cpu_seconds']:.1f}, "
                          f"simulator {reference['simulator_cpu_seconds']:.1f}", flush=True)
                else:
                    print(f"  {tag}in-process FAILED: {reference['failed']}", flush=True)
                for chunk in chunks:
                    for count in worker_counts:
                        result = run_distributed(args, redis, sim, count, chunk, ports, addresses)
                        result["round"], result["chunk_key"] = round_, chunk or "auto"
                        runs.append(result)
                        if "failed" in result:
                            print(f"  {tag}{count} worker(s) /{chunk or 'auto'}: FAILED {result['failed']}", flush=True)
                            continue
                        share = ""
                        if "addresses_per_s" in reference:
                            result["ratio_to_in_process"] = result["addresses_per_s"] / reference["addresses_per_s"]
                            share = f"  = {result['ratio_to_in_process']:.2f}x in-process"
                        cpu = result["cpu_seconds"]
                        print(f"  {tag}{count} worker(s) /{chunk or 'auto'} = /{result['chunk_prefix']} "
                              f"({result['chunks']} chunks) "
                              f"{result['seconds']:7.2f} s  {result['addresses_per_s']:>8,.0f} addr/s  "
                              f"{result['miners_per_s']:>6.1f} miners/s  miners {result['miners']}/{len(inventory)}  "
                              f"errors {result['errors']}  failed chunks {result['chunks_failed']}{share}  CPU s: "
                              f"workers {cpu['workers']:.1f} (main {cpu['worker_main']:.1f}), simulator "
                              f"{cpu['simulator']:.1f}, redis "
                              f"{cpu['redis']:.1f}, watcher {cpu['watcher']:.1f}; chunks busy "
                              f"{result['chunk_busy_share']:.0%}", flush=True)
    summary = summarize(reference_runs, runs)
    print_summary(reference_runs, summary, len(inventory))
    elapsed = time.monotonic() - started
    print_total(elapsed)
    if args.json:
        report = {
            **report_header(args.subnet, addresses, args.miners, args.concurrency),
            "repeat": args.repeat, "in_process": reference_runs, "distributed": runs, "summary": summary,
            "seconds": elapsed,
        }
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
