"""Soak: distributed scans of a simulated /16, one after another for a fixed time, while Redis is restarted
and a worker is SIGKILLed on a schedule. Reports the throughput of each scan, chunks stuck and miners lost
(both must be 0), and the workers' memory (RSS of each worker and its pool) over time.

Everything runs on this machine: the simulator (bench/_simserver.py), a private persistent Redis
(`EmbeddedRedis(persist=True)`: a real redis-server on a free 127.0.0.1 port, restarted on the same port and
directory, as a production Redis comes back), and Celery workers (`orchestrator.local.start_workers`). A
killed worker is replaced by a new one, so the worker count stays the same. Scans run through
`Orchestrator.start_scan` and `watch`, as `asicfleet scan --distributed` runs them.

Run:
    .venv/bin/python bench/soak.py [--minutes 10] [--miners 300] [--subnet 127.88.0.0/16] [--workers 2] \
        [--restart-every 120] [--redis-down 8] [--kill-every 180] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, SimProcess, check_subnet, host_count, port_map, print_total, report_header

LIVENESS = "5"


def _rss_mib(pid: int) -> float:
    """Resident set of a process and its children (a Celery worker and its pool), MiB; 0 once it is gone."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending += [int(c) for c in children]
        except (OSError, ValueError):
            continue
    return total


class Cluster:
    """The workers, with a replacement started for each one killed."""

    def __init__(self, redis_url: str, count: int) -> None:
        from orchestrator.local import start_workers, wait_for_workers

        self.redis_url = redis_url
        self.processes, names = start_workers(redis_url, count, None, concurrency=1, extra_env={
            "PYTHONWARNINGS": "ignore", "ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
        wait_for_workers(redis_url, names, self.processes, timeout=120)
        self.lock = threading.Lock()

    def kill_one(self) -> int:
        from orchestrator.local import start_workers

        with self.lock:
            victim = self.processes.pop(0)
            os.kill(victim.pid, signal.SIGKILL)  # the main process: its pool child is orphaned and exits
            victim.wait()
            new, _ = start_workers(self.redis_url, 1, None, concurrency=1, extra_env={
                "PYTHONWARNINGS": "ignore", "ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
            self.processes += new
            return victim.pid

    def rss(self) -> list[float]:
        with self.lock:
            return [round(_rss_mib(p.pid), 1) for p in self.processes]

    def stop(self) -> None:
        from orchestrator.local import stop_processes

        stop_processes(self.processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to keep starting scans")
    parser.add_argument("--miners", type=int, default=300)
    parser.add_argument("--subnet", default="127.88.0.0/16")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--restart-every", type=float, default=120.0, help="seconds between Redis restarts")
    parser.add_argument("--redis-down", type=float, default=8.0, help="seconds Redis stays down each time")
    parser.add_argument("--kill-every", type=float, default=180.0, help="seconds between worker SIGKILLs")
    parser.add_argument("--rss-every", type=float, default=10.0, help="seconds between memory samples")
    parser.add_argument("--scan-timeout", type=float, default=900.0, help="a scan not done by then is stuck")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    network = check_subnet(args.subnet)
    os.chdir(ROOT)  # workers are started as `python -m orchestrator.cli` from here
    from fleet.settings import FleetSettings
    from fleet.sites import DiscoveryOptions
    from orchestrator.redis_server import EmbeddedRedis
    from orchestrator.watch import Orchestrator

    addresses = host_count(network)
    started = time.monotonic()
    print(f"soak: {args.miners} simulated miners on {args.subnet} ({addresses} addresses), {args.workers} workers, "
          f"{args.minutes:g} min; Redis restarted every {args.restart_every:g} s (down {args.redis_down:g} s), a "
          f"worker SIGKILLed every {args.kill_every:g} s", flush=True)
    scans: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    rss: list[dict[str, Any]] = []
    with SimProcess(args.subnet, args.miners) as sim:
        inventory = sim.start()
        expected = {m["ip"] for m in inventory}
        ports = ",".join(f"{k}={v}" for k, v in sorted(port_map(inventory).items()))
        with EmbeddedRedis(persist=True) as redis_server:
            cluster = Cluster(redis_server.url, args.workers)
            stop = threading.Event()
            soak_start = time.monotonic()

            def schedule() -> None:
                next_restart, next_kill, next_rss = args.restart_every, args.kill_every, 0.0
                while not stop.wait(0.5):
                    now = time.monotonic() - soak_start
                    if now >= next_rss:
                        rss.append({"t": round(now, 1), "workers_mib": cluster.rss()})
                        next_rss += args.rss_every
                    if now >= next_restart:
                        redis_server.restart(args.redis_down)
                        events.append({"t": round(now, 1), "event": f"redis restarted ({args.redis_down:g} s down)"})
                        print(f"  [{now:6.0f} s] Redis restarted after {args.redis_down:g} s down", flush=True)
                        next_restart += args.restart_every
                    if now >= next_kill:
                        pid = cluster.kill_one()
                        events.append({"t": round(now, 1), "event": f"worker {pid} SIGKILLed, replaced"})
                        print(f"  [{now:6.0f} s] worker {pid} SIGKILLed and replaced", flush=True)
                        next_kill += args.kill_every

            scheduler = threading.Thread(target=schedule, daemon=True)
            scheduler.start()
            settings = FleetSettings(redis_url=redis_server.url, worker_liveness_seconds=float(LIVENESS))
            orchestrator = Orchestrator(settings)
            options = DiscoveryOptions(concurrency=args.concurrency, ports=ports)
            try:
                while time.monotonic() - soak_start < args.minutes * 60:
                    begin = time.perf_counter()
                    scan_id = orchestrator.start_scan([args.subnet], options=options)
                    record: dict[str, Any] = {"scan_id": scan_id, "t": round(time.monotonic() - soak_start, 1)}
                    try:
                        final = orchestrator.watch(scan_id, poll_seconds=0.5, timeout=args.scan_timeout)
                        record["chunks_stuck"] = final.chunks_total - final.chunks_done - final.chunks_failed
                        record["chunks_failed"] = final.chunks_failed
                        record["requeued"] = final.requeued
                    except TimeoutError:
                        progress = orchestrator.progress(scan_id)
                        record["chunks_stuck"] = progress.chunks_total - progress.chunks_done - progress.chunks_failed
                        record["chunks_failed"] = progress.chunks_failed
                    seconds = time.perf_counter() - begin
                    found = {str(m.ip) for m in orchestrator.inventory(scan_id)}
                    record.update(seconds=round(seconds, 2), addresses_per_s=round(addresses / seconds),
                                  miners=len(found), miners_lost=len(expected - found),
                                  status=orchestrator.store.scan(scan_id).status.value)  # type: ignore[union-attr]
                    scans.append(record)
                    print(f"  scan {len(scans):3d} {scan_id}: {seconds:6.1f} s  {record['addresses_per_s']:>7,} addr/s"
                          f"  miners {len(found)}/{len(expected)}  stuck chunks {record['chunks_stuck']}  failed "
                          f"{record['chunks_failed']}  status {record['status']}", flush=True)
            finally:
                stop.set()
                scheduler.join(timeout=60)
                rss.append({"t": round(time.monotonic() - soak_start, 1), "workers_mib": cluster.rss()})
                cluster.stop()
    elapsed = time.monotonic() - started
    stuck = sum(s.get("chunks_stuck", 0) for s in scans)
    lost = sum(s.get("miners_lost", 0) for s in scans)
    rates = [s["addresses_per_s"] for s in scans]
    print(f"{len(scans)} scans, {len(events)} faults; chunks stuck {stuck}, miners lost {lost}; throughput "
          f"{min(rates, default=0):,}-{max(rates, default=0):,} addr/s (median "
          f"{sorted(rates)[len(rates) // 2] if rates else 0:,})")
    if rss:
        print(f"worker RSS (MiB, each worker with its pool): first {rss[0]['workers_mib']}, last "
              f"{rss[-1]['workers_mib']}, highest {max((max(r['workers_mib'], default=0) for r in rss), default=0)}")
    print_total(elapsed)
    if args.json:
        report = {**report_header(args.subnet, addresses, args.miners, args.concurrency), "scans": scans,
                  "events": events, "worker_rss": rss, "chunks_stuck": stuck, "miners_lost": lost, "seconds": elapsed}
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    if stuck or lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
