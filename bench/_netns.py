"""A private network namespace where empty addresses stay silent instead of refusing.

On the host, connecting to an empty loopback address is refused at once (the kernel answers RST).
A real farm network mostly answers nothing: a probe waits for its connect timeout. To measure that,
the benchmark re-runs itself inside a new network namespace (`unshare --net`, root) and there:

- brings `lo` up and removes the catch-all `local 127.0.0.0/8` route, so only addresses given to
  `lo` are local: 127.0.0.1 and one /32 per simulated miner;
- routes the rest of the scanned subnet out of one end of a veth pair (both ends inside this
  namespace) to a next hop with a fixed, unanswered MAC address: the SYN leaves and nothing comes
  back, so every empty address costs a connect timeout.

Nothing leaves the namespace; every packet is addressed to the scanned 127.88/16 or 127.89/16
subnet. The namespace disappears with the process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

MARK = "ASICFLEET_BENCH_NETNS"
NEXT_HOP = "169.254.88.1"  # link-local, only inside the namespace
NEXT_HOP_MAC = "02:00:00:00:88:01"


def inside() -> bool:
    return os.environ.get(MARK) == "1"


def reexec_inside(argv: list[str]) -> int:
    """Runs `python argv...` in a new network namespace; returns its exit code."""
    if os.geteuid() != 0:
        raise SystemExit("--silent needs root (a network namespace of its own)")
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("ip") is None:
        raise SystemExit("--silent needs `unshare` (util-linux) and `ip` (iproute2)")
    env = {**os.environ, MARK: "1"}
    return subprocess.run([unshare, "--net", "--", sys.executable, *argv], env=env, check=False).returncode


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, stdout=subprocess.DEVNULL)


def fleet_addresses(subnet: str, count: int, mix: str, seed: int) -> list[str]:
    """The addresses `SimFleet.generate` will pick (it is seeded), so they can be made local first."""
    from asicfleet.sim import SimFleet

    return list(SimFleet.generate(subnet, count, mix.split(","), seed=seed).miners)


def setup(subnet: str, local_addresses: list[str]) -> None:
    """Inside the namespace: `local_addresses` answer (or refuse), the rest of `subnet` is silent."""
    if not inside():
        raise RuntimeError("refusing to change routes outside the benchmark's own network namespace")
    _ip("link", "set", "lo", "up")
    _ip("route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")  # 127.0.0.1 stays local
    # one batch for the miners' addresses (hundreds of them)
    batch = "".join(f"address add {a}/32 dev lo\n" for a in local_addresses)
    subprocess.run(["ip", "-batch", "-"], input=batch.encode(), check=True)
    _ip("link", "add", "silent0", "type", "veth", "peer", "name", "silent1")
    _ip("link", "set", "silent0", "up")
    _ip("link", "set", "silent1", "up")
    for conf in ("all", "silent0"):
        with open(f"/proc/sys/net/ipv4/conf/{conf}/route_localnet", "w") as handle:
            handle.write("1\n")
    _ip("neigh", "add", NEXT_HOP, "lladdr", NEXT_HOP_MAC, "dev", "silent0", "nud", "permanent")
    _ip("route", "add", f"{NEXT_HOP}/32", "dev", "silent0")
    _ip("route", "add", subnet, "via", NEXT_HOP, "dev", "silent0")
