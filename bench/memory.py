"""A scan's peak memory with 1,000 hostile hosts (issue: outages and holes, "memory per scan").

One simulator process serves N hosts that all send oversized replies (`--faults oversized=N`: each reply runs
on past the 4 MiB cap); `asicfleet scan --json` reads them in a process of its own, once per concurrency.
Reports the scanner's peak RSS, how many hostile hosts were reported (each must be: an error, or a miner read
without the oversized reply) and the time taken. tests/test_memory.py checks 100 such hosts in the suite.

    .venv/bin/python bench/memory.py                           # 1000 hosts, concurrency 1000 and 2500
    .venv/bin/python bench/memory.py --hosts 254 --concurrency 254 --json out.json   # a worker's /24
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, check_subnet

SUBNET = "127.89.0.0/22"
ASICFLEET = [sys.executable, "-m", "orchestrator.cli"]
# the scanner runs under this wrapper, whose only child it is, so RUSAGE_CHILDREN is the scan's own peak
PEAK_WRAPPER = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
                "print(r.returncode); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                "print(time.perf_counter() - t); sys.stdout.write(r.stdout)")


def start_simulator(subnet: str, hosts: int, inventory: Path, mix: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([*ASICFLEET, "sim", "--subnet", subnet, "--count", str(hosts), "--seed", "5",
                                "--mix", mix, "--faults", f"oversized={hosts}", "--inventory", str(inventory)],
                               cwd=ROOT)
    deadline = time.monotonic() + 300
    while not inventory.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the simulator did not come up")
        time.sleep(0.2)
    return process


def scan(subnet: str, concurrency: int, ports: str) -> dict[str, object]:
    args = [*ASICFLEET, "scan", subnet, "--json", "--no-progress", "--concurrency", str(concurrency),
            "--ports", ports, "--read-timeout", "5", "--identify-timeout", "10"]
    done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *args], capture_output=True, text=True,
                          timeout=1800, cwd=ROOT)
    rc, peak_kb, seconds, out = done.stdout.split("\n", 3)
    reported = {json.loads(line)["ip"] for line in out.splitlines() if line.startswith("{")}
    return {"concurrency": concurrency, "rc": int(rc), "peak_mb": round(int(peak_kb) / 1024),
            "seconds": round(float(seconds), 1), "reported": sorted(reported)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subnet", default=SUBNET)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--concurrency", default="1000,2500")
    parser.add_argument("--mix", default="all", help="firmware families, as `asicfleet sim --mix` takes them")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    options = parser.parse_args()
    check_subnet(options.subnet)
    with tempfile.TemporaryDirectory() as scratch:
        inventory = Path(scratch) / "fleet.json"
        simulator = start_simulator(options.subnet, options.hosts, inventory, options.mix)
        try:
            fleet = json.loads(inventory.read_text())
            ports = ",".join(f"{k}={v}" for k, v in fleet[0]["ports"].items())
            hostile = {str(m["ip"]) for m in fleet}
            runs = []
            for concurrency in (int(c) for c in options.concurrency.split(",")):
                run = scan(options.subnet, concurrency, ports)
                reported = set(run.pop("reported"))  # type: ignore[arg-type]
                run["hostile_reported"] = f"{len(hostile & reported)}/{len(hostile)}"
                runs.append(run)
                print(f"concurrency {concurrency:>5}: peak {run['peak_mb']} MB, {run['hostile_reported']} hostile "
                      f"hosts reported, {run['seconds']} s, exit {run['rc']}", flush=True)
        finally:
            simulator.terminate()
            simulator.wait(30)
    if options.json:
        options.json.write_text(json.dumps({"hosts": options.hosts, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
