"""The IP-report button of a simulated miner: its datagram, sent from the miner's own loopback address.

Real miners broadcast the datagram (255.255.255.255); loopback has no broadcast, so the simulator sends it
to one address and port, by default 127.0.0.1 and the port the firmware uses (14235 Antminer and Braiins OS,
8888 Whatsminer), from the miner's address, which is what a listener takes as the miner's.
"""

from __future__ import annotations

import socket

from asicfleet.sim._core import SimMiner


def ip_report_datagram(family: type[SimMiner], ip: str, mac: str) -> tuple[bytes, int]:
    """The datagram and destination port of `family`'s IP report for a miner at `ip` with `mac`."""
    if family.ip_report_port is None:
        raise ValueError(f"simulated {family.family} miners have no IP-report button")
    return family.ip_report_payload(ip, mac), family.ip_report_port


def send_ip_report(family: type[SimMiner], ip: str, mac: str, *, host: str = "127.0.0.1",
                   port: int | None = None) -> bytes:
    """Presses the button: sends the report from `ip` (a loopback address) to host:port; returns the datagram."""
    payload, default_port = ip_report_datagram(family, ip, mac)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind((ip, 0))
        sender.sendto(payload, (host, default_port if port is None else port))
    return payload


def press_ip_report(miner: SimMiner, *, host: str = "127.0.0.1", port: int | None = None) -> bytes:
    """`send_ip_report` for a simulated miner: its family's format, its address and MAC."""
    return send_ip_report(type(miner), miner.state.ip, miner.state.mac, host=host, port=port)
