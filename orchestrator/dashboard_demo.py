"""`asicfleet demo --dashboard`: the demo's fleet watched live. The simulator serves in this process (so that
one miner can be made to degrade), a private Redis, Celery workers of site `demo` (one with beat: collection
rounds every few seconds, the rule engine after each), a distributed scan that fills the site's inventory, and
`asicfleet dashboard`; then one Antminer falls to 45 % of its rate, the rule `low-hashrate` fires and turns
its fault light on, and the ledger is shown next to what the simulator says. Everything stops on Ctrl-C."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import redis
from rich.console import Console

from asicfleet.sim import SIM_FAMILIES, Fault, SimFleet, claim_loopback
from fleet import monitor, rules
from fleet.sites import DiscoveryOptions
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.redis_server import EmbeddedRedis, free_port

SITE = "demo"
RULE = "low-hashrate"
DEGRADE_TO = 0.45  # of the miner's nominal rate


@contextmanager
def served_fleet(fleet: SimFleet) -> Iterator[asyncio.AbstractEventLoop]:
    """The simulator on an event loop of its own in a thread of this process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="simulator", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fleet.start(), loop).result(timeout=300)
        yield loop
    finally:
        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(fleet.stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


def _port(wanted: int) -> int:
    """`wanted` when it is free on 127.0.0.1, else any free port."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", wanted))
            return wanted
        except OSError:
            return free_port()


def _wait(what: str, check: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.5)


def run_dashboard_demo(subnet: str, count: int, faults: str, workers: int, hold_seconds: float, port: int,
                       interval_seconds: float = 10.0) -> int:
    console = Console(stderr=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does: everything it started is stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return _run(console, subnet, count, faults, workers, hold_seconds, port, interval_seconds)
    except KeyboardInterrupt:
        console.print("stopped (interrupted): dashboard, workers, Redis and simulator")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(console: Console, subnet: str, count: int, faults: str, workers: int, hold_seconds: float, port: int,
         interval_seconds: float) -> int:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="asicfleet-demo-")))
        if subnet == "auto":
            subnet = stack.enter_context(claim_loopback(22, start=os.getpid()))
        from orchestrator.cli import _parse_faults  # the demo's fault syntax, as `asicfleet sim --faults`

        fleet = SimFleet.generate(subnet, count, sorted(SIM_FAMILIES), seed=1)
        fleet.assign_faults({Fault(k): v for k, v in _parse_faults(faults).items()}, seed=1)
        for miner in fleet.miners.values():
            miner.slow_seconds = 1.0
        console.print(f"[bold]1/5[/] simulator: {count} miners on {subnet} (faults: {faults or 'none'})")
        stack.enter_context(served_fleet(fleet))
        assert fleet.ports is not None
        # generous timeouts: on a busy laptop a miner that answers late is not shown offline
        options = DiscoveryOptions(ports=str(fleet.ports), read_timeout=5.0, identify_timeout=8.0)
        console.print("[bold]2/5[/] Redis (a private redis-server, nothing kept on disk)")
        server = stack.enter_context(EmbeddedRedis())
        sites_file = workdir / "sites.yaml"
        sites_file.write_text(f"sites:\n  {SITE}:\n    ranges: ['{subnet}']\n    collect_every_minutes: 1\n"
                              f"    collect_batch_size: 100\n    discovery: {options.model_dump_json()}\n")
        rules_file = workdir / "rules.yaml"
        rules_file.write_text(
            f"rules:\n  - name: {RULE}\n    when: {{kind: hashrate_below, percent: 70}}\n"
            f"    for_minutes: {interval_seconds / 60:.3f}\n    scope: {{sites: [{SITE}]}}\n"
            "    actions: [{kind: fault_light}]\n    cooldown_minutes: 60\n")
        env = {"ASICFLEET_SITES_FILE": str(sites_file), "ASICFLEET_RULES_FILE": str(rules_file),
               "ASICFLEET_COLLECT_INTERVAL_SECONDS": f"{interval_seconds:g}"}
        console.print(f"[bold]3/5[/] {workers} Celery workers of site {SITE} (one with beat: a collection round "
                      f"every {interval_seconds:g} s, the rules after each)")
        with_beat, names = start_workers(server.url, 1, SITE, beat=True, extra_env=env)
        rest, more = start_workers(server.url, max(0, workers - 1), SITE, extra_env=env)
        stack.callback(stop_processes, with_beat + rest)
        wait_for_workers(server.url, names + more, with_beat + rest)
        console.print(f"[bold]4/5[/] distributed scan of {subnet}: it fills the site's inventory")
        run_env = {**os.environ, "ASICFLEET_REDIS_URL": server.url, **env}
        run_env.pop("ASICFLEET_BROKER_URL", None)
        scan = subprocess.run([sys.executable, "-m", "orchestrator.cli", "scan", subnet, "--distributed", "--site",
                               SITE, "--ports", str(fleet.ports), "--read-timeout", "3", "--identify-timeout", "4",
                               "--format", "csv"], env=run_env, stdout=subprocess.DEVNULL)
        if scan.returncode not in (0, 1):
            raise RuntimeError(f"the scan failed (exit {scan.returncode})")
        password = secrets.token_urlsafe(9)
        port = _port(port)
        dashboard = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "dashboard", "--port", str(port),
                                      "--refresh", "3"],
                                     env={**run_env, "ASICFLEET_DASHBOARD_PASSWORD": password},
                                     stderr=subprocess.DEVNULL)
        stack.callback(stop_processes, [dashboard])
        url = f"http://127.0.0.1:{port}/"
        client = redis.Redis.from_url(server.url, decode_responses=True)
        stack.callback(client.close)
        def rounds_after(moment: float) -> bool:
            info = monitor.last_round(client, SITE)
            return info is not None and info.finished is not None and info.started > moment

        _wait("a collection round", lambda: rounds_after(0.0), 120)
        first = monitor.last_round(client, SITE)
        assert first is not None
        _wait("a second collection round", lambda: rounds_after(first.started), 120)  # the full rate, twice
        console.print(f"[bold]5/5[/] dashboard: [bold]{url}[/] (actions: user admin, password {password})")
        sick_ip = next(ip for ip, m in sorted(fleet.miners.items(), key=lambda kv: ipaddress.IPv4Address(kv[0]))
                       if m.family == "antminer" and m.fault is Fault.NONE)
        sick = fleet.miners[sick_ip].state
        sick.hashrate_ths = round(sick.model.nominal_ths * DEGRADE_TO, 2)
        console.print(f"     {sick_ip} ({sick.model.name}) now hashes {sick.hashrate_ths:g} TH/s of "
                      f"{sick.model.nominal_ths:g}: rule {RULE} (below 70 % for {interval_seconds:g} s) will fire; "
                      f"see {url}miners/{sick_ip}")

        def ended() -> bool:
            found = rules.firings(client, ip=sick_ip, limit=1)
            return bool(found) and found[0].state not in ("queued", "running")

        _wait(f"rule {RULE} on {sick_ip}", ended, 180)
        firing = rules.firings(client, ip=sick_ip, limit=1)[0]
        values = ", ".join(f"{k} {v}" for k, v in firing.values.items())
        results = "; ".join(f"{r.action}: {r.state}" + (f" ({r.detail})" if r.detail else "") for r in firing.results)
        console.print(f"     ledger: firing {firing.id} rule {firing.rule} on {firing.ip}: {firing.condition}; "
                      f"seen {values}; {results} -> {firing.state}")
        console.print(f"     simulator: {sick_ip} fault light {'on' if sick.fault_light else 'off'}, "
                      f"{sick.hashrate_ths:g} TH/s")
        console.print(f"dashboard: {url} (user admin, password {password}); "
                      + (f"up for {hold_seconds:g} s" if hold_seconds > 0 else "up until Ctrl-C"))
        with suppress(KeyboardInterrupt):
            if hold_seconds > 0:
                time.sleep(hold_seconds)
            else:
                while dashboard.poll() is None:
                    time.sleep(1)
    console.print("stopped: dashboard, workers, Redis and simulator")
    return 0
