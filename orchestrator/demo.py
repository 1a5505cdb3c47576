"""`asicfleet demo`: a simulated fleet scanned on the distributed path, all on this machine.

Starts the simulator, a private Redis, two Celery workers and Flower; runs the scan with its live
progress; shows the fleet table and the Flower address; stops everything it started.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from rich.console import Console

from asicfleet.sim import claim_loopback
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.redis_server import EmbeddedRedis, free_port


@contextmanager
def simulator(subnet: str, count: int, faults: str, workdir: Path) -> Iterator[list[dict[str, object]]]:
    inventory = workdir / "fleet.json"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "sim", "--subnet", subnet, "--count",
                                str(count), "--seed", "1", "--faults", faults, "--slow-seconds", "1",
                                "--inventory", str(inventory)])
    try:
        deadline = time.monotonic() + 120
        while not inventory.exists():
            if process.poll() is not None:
                raise RuntimeError("the simulator exited at start")
            if time.monotonic() > deadline:
                raise RuntimeError("the simulator did not come up within 120 s")
            time.sleep(0.1)
        yield json.loads(inventory.read_text())
    finally:
        stop_processes([process])


@contextmanager
def flower(redis_url: str, port: int, password: str) -> Iterator[str]:
    env = {**os.environ, "ASICFLEET_REDIS_URL": redis_url, "ASICFLEET_FLOWER_PASSWORD": password}
    env.pop("ASICFLEET_BROKER_URL", None)
    # --no-persistent: the demo's tasks die with its private Redis; nothing is written to the user's data directory
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "flower", "--port", str(port),
                                "--no-persistent"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_processes([process])


def run_demo(subnet: str, count: int, faults: str, workers: int, hold_seconds: float) -> int:
    console = Console(stderr=True)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="asicfleet-demo-")))
        if subnet == "auto":  # a range no other demo, test run or benchmark on this machine holds
            subnet = stack.enter_context(claim_loopback(22, start=os.getpid()))
        console.print(f"[bold]1/4[/] simulator: {count} miners on {subnet} (faults: {faults or 'none'})")
        fleet = stack.enter_context(simulator(subnet, count, faults, workdir))
        ports = fleet[0]["ports"] if fleet else {}
        assert isinstance(ports, dict)
        console.print("[bold]2/4[/] Redis (a private redis-server, nothing kept on disk)")
        redis = stack.enter_context(EmbeddedRedis())
        console.print(f"[bold]3/4[/] {workers} Celery workers and Flower")
        processes, names = start_workers(redis.url, workers, None)
        stack.callback(stop_processes, processes)
        wait_for_workers(redis.url, names, processes)
        password = secrets.token_urlsafe(9)
        flower_url = stack.enter_context(flower(redis.url, free_port(), password))
        console.print(f"     Flower: {flower_url} (user admin, password {password})")
        console.print(f"[bold]4/4[/] distributed scan of {subnet}")
        port_map = ",".join(f"{k}={v}" for k, v in ports.items())
        env = {**os.environ, "ASICFLEET_REDIS_URL": redis.url}
        env.pop("ASICFLEET_BROKER_URL", None)
        result = subprocess.run([sys.executable, "-m", "orchestrator.cli", "scan", subnet, "--distributed",
                                 "--ports", port_map, "--read-timeout", "3", "--identify-timeout", "4"], env=env)
        faulty = sum(1 for m in fleet if m.get("fault", "none") != "none")
        console.print(f"the simulator serves {len(fleet)} miners ({faulty} with a fault: listed above with their "
                      "error, or read despite it when only slow)")
        if hold_seconds > 0:
            console.print(f"Flower: {flower_url} (user admin, password {password}); keeping everything up for "
                          f"{hold_seconds:g} s (Ctrl-C stops)")
            with suppress(KeyboardInterrupt):
                time.sleep(hold_seconds)
    # said once everything is really stopped: no address is advertised that no longer answers
    console.print("stopped: simulator, workers, Flower and Redis" + ("" if hold_seconds > 0 else
                  f" (Flower was at {flower_url} during the scan; --hold SECONDS keeps it up afterwards)"))
    return result.returncode
