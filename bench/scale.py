"""Does a scan lose miners at high concurrency or on a busy machine? (issue: scans that never lose a miner)

One simulator process serves N miners over a /16 (127.88.0.0/16); asicfleet scans it in process, plain
asyncio, once per concurrency, each run with and without a CPU hog (one busy process per core).
Reports found/N and addresses/s per run. Bounded: each scan has a deadline; everything stops by itself.

    .venv/bin/python bench/scale.py                      # 400 miners, concurrency 1000,2500,10000
    .venv/bin/python bench/scale.py --concurrency 2500 --no-hog --json out.json
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/scale.py   # the same on another version
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUBNET = "127.88.0.0/16"
SCAN = """
import asyncio, json, sys, time
from asicfleet import MinerFactory
async def main() -> None:
    f = (MinerFactory.from_subnet(sys.argv[1]).with_concurrent_limit(int(sys.argv[2]))
         .with_connectivity_timeout_secs(1).with_identification_timeout_secs(10))
    if sys.argv[3]:
        f = f.with_port_map(sys.argv[3])
    started = time.perf_counter()
    found = [str(m.ip) for m in await f.scan()]
    elapsed = time.perf_counter() - started
    summary = getattr(f, "last_scan", None)
    print(json.dumps({"found": found, "seconds": elapsed,
                      "undecided": getattr(summary, "undecided", None),
                      "peak_in_flight": getattr(summary, "peak_in_flight", None)}))
asyncio.run(main())
"""


def start_fleet(miners: int, inventory: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "sim", "--subnet", SUBNET, "--count",
                                str(miners), "--seed", "3", "--mix", "antminer,braiins,whatsminer,avalon,bitaxe",
                                "--inventory", str(inventory)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not inventory.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the simulator did not come up")
        time.sleep(0.2)
    return process


def run_scan(concurrency: int, ports: str, hog: bool, timeout: float) -> dict[str, object]:
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)] \
        if hog else []
    try:
        done = subprocess.run([sys.executable, "-c", SCAN, SUBNET, str(concurrency), ports], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f}s"}
    finally:
        for process in hogs:
            process.kill()
            process.wait()
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miners", type=int, default=400)
    parser.add_argument("--concurrency", default="1000,2500,10000")
    parser.add_argument("--no-hog", action="store_true", help="skip the runs with a CPU hog")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per scan")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        inventory = Path(scratch) / "fleet.json"
        fleet = start_fleet(args.miners, inventory)
        try:
            miners = json.loads(inventory.read_text())
            expected = {m["ip"] for m in miners}
            ports = ",".join(f"{k}={v}" for k, v in miners[0]["ports"].items())
            rows = []
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                for hog in (False,) if args.no_hog else (False, True):
                    result = run_scan(concurrency, ports, hog, args.timeout)
                    found = set(result.get("found", []))  # type: ignore[call-overload]
                    seconds = float(result.get("seconds", 0) or 0)  # type: ignore[arg-type]
                    row = {"concurrency": concurrency, "cpu_hog": hog, "found": len(found & expected),
                           "total": len(expected), "invented": len(found - expected),
                           "addresses_per_s": round(65534 / seconds) if seconds else None,
                           "undecided": result.get("undecided"), "peak_in_flight": result.get("peak_in_flight"),
                           "error": result.get("error")}
                    rows.append(row)
                    print(f"concurrency {concurrency:>6}  cpu hog {'yes' if hog else 'no ':3}  found "
                          f"{row['found']}/{row['total']}  {row['addresses_per_s'] or '-':>6} addresses/s  "
                          f"undecided {row['undecided']}  peak in flight {row['peak_in_flight']}"
                          + (f"  error: {row['error']}" if row["error"] else ""), flush=True)
        finally:
            fleet.terminate()
            fleet.wait(timeout=30)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
