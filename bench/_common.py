"""Shared pieces of the benchmarks: loopback checks, the simulator helper process and its control
socket, per-process memory figures, and the make/model normalisation used to judge each client."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ALLOWED = (ipaddress.IPv4Network("127.88.0.0/16"), ipaddress.IPv4Network("127.89.0.0/16"),
           ipaddress.IPv4Network("127.62.0.0/16"),  # bench/distributed.py's own, off the other benches' ranges
           # the loopback pool of asicfleet.sim.claim_loopback (not imported: peer clients load this module)
           *(ipaddress.IPv4Network(f"127.{octet}.0.0/16") for octet in range(100, 250)))


def check_subnet(subnet: str) -> ipaddress.IPv4Network:
    """The benchmarks only ever talk to loopback: 127.88.0.0/16, 127.89.0.0/16, 127.62.0.0/16, or a /16 of the
    claimed pool."""
    network = ipaddress.ip_network(subnet, strict=False)
    if not isinstance(network, ipaddress.IPv4Network) or not any(network.subnet_of(n) for n in ALLOWED):
        raise SystemExit(f"refusing {subnet}: the benchmarks use 127.88.0.0/16, 127.89.0.0/16, 127.62.0.0/16 or "
                         "127.100-249.0.0/16 (the loopback pool they claim) only")
    return network


def host_count(network: ipaddress.IPv4Network) -> int:
    return network.num_addresses - 2 if network.prefixlen < 31 else network.num_addresses


# ----- memory ---------------------------------------------------------------------------------------
def _status_mib(field: str) -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


def peak_rss_mib() -> float:
    """Peak resident set of this process (every thread), MiB.

    VmHWM, the high-water mark of this address space: unlike getrusage's ru_maxrss, which Linux keeps
    across execve, it does not start from the RSS of the parent that forked this process."""
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    current = _status_mib("VmRSS")
    return current if current is not None else float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ----- the simulator helper process -----------------------------------------------------------------
def control(path: str, command: str, timeout: float = 30.0) -> Any:
    """One command to the simulator helper's control socket (a Unix socket: no network traffic)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks))
    if isinstance(reply, dict) and "error" in reply:
        raise RuntimeError(f"simulator control {command!r}: {reply['error']}")
    return reply


@dataclass
class SimProcess:
    """The fleet, served by bench/_simserver.py in its own process."""

    subnet: str
    count: int
    seed: int = 1
    mix: str = "antminer,braiins,whatsminer,avalon,bitaxe"
    process: subprocess.Popen[bytes] | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="asicfleet-bench-")))

    @property
    def inventory_path(self) -> Path:
        return self.workdir / "inventory.json"

    @property
    def control_path(self) -> str:
        return str(self.workdir / "control.sock")

    def start(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        self.process = subprocess.Popen(
            [PYTHON, "-m", "bench._simserver", "--subnet", self.subnet, "--count", str(self.count), "--seed",
             str(self.seed), "--mix", self.mix, "--inventory", str(self.inventory_path), "--control",
             self.control_path],
            cwd=ROOT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not (self.inventory_path.exists() and Path(self.control_path).exists()):
            if self.process.poll() is not None:
                raise RuntimeError(f"the simulator exited at start (code {self.process.returncode})")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the simulator did not come up within {timeout:g}s")
            time.sleep(0.1)
        inventory: list[dict[str, Any]] = json.loads(self.inventory_path.read_text())
        return inventory

    @property
    def pid(self) -> int:
        assert self.process is not None, "the simulator is not started"
        return self.process.pid

    def control(self, command: str) -> Any:
        return control(self.control_path, command)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def port_map(inventory: list[dict[str, Any]]) -> dict[int, int]:
    """The inventory's port map ({} when the simulator serves the real ports)."""
    ports = inventory[0].get("ports") if inventory else None
    return {int(k): int(v) for k, v in (ports or {}).items()}


# ----- judging what a client read -------------------------------------------------------------------
_MAKE_WORDS = ("antminer", "avalonminer", "avalon", "whatsminer", "bitaxe")
# Bitaxe boards: the inventory names the ASIC, pyasic and pyasic-rs name the board family
_ALIASES = {"bm1366": "ultra", "bm1368": "supra", "bm1370": "gamma", "bm1397": "max"}


def norm_make(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (text or "").casefold())


def norm_model(text: str | None) -> str:
    """`Antminer S19 XP`, `S19 XP`, `S19XP` -> `s19xp`; `M30S+` and `M30SPlus` -> `m30splus`."""
    value = re.sub(r"[^a-z0-9]", "", (text or "").casefold().replace("+", "plus"))
    for word in _MAKE_WORDS:
        if value.startswith(word) and len(value) > len(word):
            return value[len(word):]
    return value


def judge_model(expected: str, found: str | None) -> str:
    """ok | variant (one names a sub-variant of the other) | alias (a known other name) | missing | wrong."""
    want, got = norm_model(expected), norm_model(found)
    if not got:
        return "missing"
    if want == got:
        return "ok"
    if _ALIASES.get(want) == got or (want.lstrip("a") == got.lstrip("a") and want[-1:].isdigit()):
        return "alias"  # a known other name, or Avalon `A1466` named `1466`
    if got.startswith(want) or want.startswith(got):
        return "variant"
    return "wrong"


def judge_figure(expected: float | None, found: float | None, tolerance: float = 0.01,
                 rounding: float = 0.0) -> str:
    """ok | rounded (off by more than `tolerance` but within `rounding` absolute: a whole-unit
    rounding of the same figure) | missing | wrong."""
    if found is None:
        return "missing"
    if expected is None:
        return "ok"
    error = abs(found - expected)
    if error <= tolerance * abs(expected):
        return "ok"
    return "rounded" if error <= rounding else "wrong"


def env_for_children() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def print_total(elapsed: float) -> None:
    print(f"total {elapsed:.0f}s, load average"
          f" {os.getloadavg()[0]:.2f} (1 min; other work on this machine skews the figures)")


def report_header(subnet: str, addresses: int, miners: int, concurrency: int) -> dict[str, Any]:
    """What every benchmark's JSON starts with: when, on what machine, on which fleet."""
    from datetime import UTC, datetime

    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
                        "load_average_at_end": os.getloadavg()},
            "subnet": subnet, "addresses": addresses, "miners": miners, "concurrency": concurrency}


# ----- CPU of other processes -----------------------------------------------------------------------
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # the command name may hold spaces; fields from `state` on


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one live process (its threads, not its children), s."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS if fields is not None else 0.0


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process and its live descendants (a worker and its pool processes), s."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current and child not in tree]
        tree.update(children)
        frontier += children
    total = 0.0
    for member in tree:
        if (fields := _stat_fields(member)) is not None:
            total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return total
