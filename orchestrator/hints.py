"""What to tell a user whose scan found no miner: why (every address refused, or stayed silent), and
the likely fix (the simulator run without privileges serves ports 80 and 443 at +10000)."""

from __future__ import annotations

import asyncio
import contextlib
from ipaddress import IPv4Address

from asicfleet.discovery import ScanSummary

SIM_OFFSET_PORTS = "80=10080,443=10443"
_SIM_WEB_PORT = 10080


async def _accepts(ip: str, port: int, timeout: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def simulator_remap_seen(refused: list[str], timeout: float = 0.5) -> bool:
    """Whether something accepts on the simulator's unprivileged web port at a few refused addresses."""
    answers = await asyncio.gather(*(_accepts(ip, _SIM_WEB_PORT, timeout) for ip in refused[:16]))
    return any(answers)


def empty_scan_lines(summary: ScanSummary | None, ports_given: bool, remap_seen: bool,
                     refused_sample: list[str], connect_timeout: float) -> list[str]:
    """Lines for stderr after a scan that found no miner; empty when there is nothing to add."""
    if summary is None or summary.miners:
        return []
    total = summary.addresses
    lines: list[str] = []
    if summary.refused == total:
        lines.append(f"0 miners: all {total:,} addresses refused the connection or were unreachable "
                     "(nothing listens on the web port)")
    elif summary.silent == total:
        lines.append(f"0 miners: none of the {total:,} addresses answered within the {connect_timeout:g} s "
                     "connect timeout (nothing there, or a firewall)")
    else:
        lines.append(f"0 miners: {summary.refused:,} addresses refused, {summary.silent:,} stayed silent, "
                     f"{summary.listening:,} answered but were not miners")
    if not ports_given and remap_seen:
        lines.append(f"hint: something listens on port {_SIM_WEB_PORT} there: the simulator run without "
                     f"privileges serves ports 80 and 443 at +10000; scan with --ports {SIM_OFFSET_PORTS}")
    elif not ports_given and refused_sample and IPv4Address(refused_sample[0]).is_loopback:
        lines.append(f"hint: if this is the simulator run without privileges, pass --ports {SIM_OFFSET_PORTS}")
    return lines
