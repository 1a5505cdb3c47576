"""MinerListener: the IP-report datagrams parsed, and heard from simulated miners whose button is pressed
(the simulator sends the datagram from the miner's own loopback address). Loopback range: 127.162.0.0/16."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner

from asicfleet import IPReport, ListenerError, MinerFactory, MinerListener
from asicfleet.discovery import parse_ip_report
from asicfleet.sim import SIM_FAMILIES, press_ip_report, send_ip_report
from tests.conftest import FleetFactory, lo

T = TypeVar("T")


async def first(stream: AsyncIterator[T], count: int = 1, seconds: float = 5.0) -> list[T]:
    """The first `count` items of a stream, or a failure after `seconds` (a listener never ends by itself)."""
    got: list[T] = []
    async with asyncio.timeout(seconds):
        async for item in stream:
            got.append(item)
            if len(got) == count:
                break
    return got


def test_datagrams_of_each_firmware_parse() -> None:
    assert parse_ip_report(b"10.1.4.17,aa:bb:cc:dd:ee:0f") == (IPv4Address("10.1.4.17"), "AA:BB:CC:DD:EE:0F")
    assert parse_ip_report(b"IP:10.1.4.18MAC:C4:11:22:33:44:55\x00") == (IPv4Address("10.1.4.18"),
                                                                        "C4:11:22:33:44:55")
    assert parse_ip_report(b"[10.1.4.19/16],02-00-00-00-00-01\n") == (IPv4Address("10.1.4.19"), "02:00:00:00:00:01")
    assert parse_ip_report(b"OK" + b"\x00" * 8) is None  # an IP-report tool's acknowledgement, not a miner
    assert parse_ip_report(b"\xff\xfe garbage") == (None, None)  # still a sender worth reporting
    assert parse_ip_report(b"999.1.1.1,zz") == (None, None)


def test_the_simulated_buttons_send_their_firmwares_formats() -> None:
    antminer, port = SIM_FAMILIES["antminer"].ip_report_payload("10.0.0.5", "02:ab:00:00:00:01"), 14235
    assert antminer == b"10.0.0.5,02:AB:00:00:00:01" and SIM_FAMILIES["antminer"].ip_report_port == port
    assert SIM_FAMILIES["braiins"].ip_report_payload("10.0.0.6", "02:AB:00:00:00:01") == b"10.0.0.6,02:ab:00:00:00:01"
    assert SIM_FAMILIES["whatsminer"].ip_report_payload("10.0.0.7", "02:ab:00:00:00:01") == \
        b"IP:10.0.0.7MAC:02:AB:00:00:00:01\x00"
    assert SIM_FAMILIES["whatsminer"].ip_report_port == 8888
    for family in ("avalon", "bitaxe"):
        with pytest.raises(ValueError, match="no IP-report button"):
            send_ip_report(SIM_FAMILIES[family], lo("127.162.9.1"), "02:00:00:00:00:01")


async def test_listener_hears_a_simulated_ip_report(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.162.1.0/24"), 3, ["antminer", "whatsminer", "braiins"], seed=4)
    host = lo("127.162.200.1")
    async with MinerListener(host=host, ports={"antminer": 0, "whatsminer": 0}) as listener:
        assert set(listener.ports) == {"antminer", "whatsminer"} and all(listener.ports.values())
        sims = sorted(fleet.miners.values(), key=lambda m: m.family)
        for sim in sims:
            kind = "whatsminer" if sim.family == "whatsminer" else "antminer"
            press_ip_report(sim, host=host, port=listener.ports[kind])
        reports: list[IPReport] = await first(listener.reports(), count=3)
    by_ip = {str(r.ip): r for r in reports}
    assert set(by_ip) == set(fleet.miners)
    for ip, sim in fleet.miners.items():
        report = by_ip[ip]
        assert report.reported_ip == IPv4Address(ip) and report.mac == sim.state.mac.upper()
        assert report.kind == ("whatsminer" if sim.family == "whatsminer" else "antminer")
    assert not listener.listening


async def test_listen_yields_the_identified_miner(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.162.2.0/24"), 2, ["whatsminer", "antminer"], seed=2)
    host = lo("127.162.200.2")
    factory = MinerFactory().with_port_map(fleet.ports).with_identification_timeout_secs(5)
    async with MinerListener(factory, host=host, ports={"antminer": 0, "whatsminer": 0}) as listener:
        # a report from an address where no miner answers is left out; the next one comes through
        send_ip_report(SIM_FAMILIES["antminer"], lo("127.162.2.250"), "02:00:00:00:00:09", host=host,
                       port=listener.ports["antminer"])
        for sim in fleet.miners.values():
            kind = "whatsminer" if sim.family == "whatsminer" else "antminer"
            press_ip_report(sim, host=host, port=listener.ports[kind])
        miners = await first(listener.listen(), count=2, seconds=15)
    assert {str(m.ip) for m in miners} == set(fleet.miners)
    for miner in miners:
        sim = fleet.miners[str(miner.ip)]
        assert (miner.make, miner.model) == (sim.make, sim.model_name)
        assert (await miner.get_mac()) == sim.state.mac.upper()
    await factory.aclose()


async def test_listen_ip_only_opens_and_closes_its_own_ports(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.162.3.0/24"), 1, ["antminer"])
    sim = next(iter(fleet.miners.values()))
    host = lo("127.162.200.3")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a free port to name explicitly
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    listener = MinerListener(host=host, ports={"antminer": port})

    async def press_when_listening() -> None:
        for _ in range(500):  # the iterator opens the port on its first step
            if listener.listening:
                break
            await asyncio.sleep(0.01)
        press_ip_report(sim, host=host, port=port)

    presser = asyncio.create_task(press_when_listening())
    stream = listener.listen_ip_only()
    assert await first(stream) == [IPv4Address(sim.state.ip)]
    await stream.aclose()
    await presser
    assert not listener.listening
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind((host, port))  # released: the port can be bound again


async def test_a_port_in_use_is_a_clear_error_and_nothing_stays_open() -> None:
    host = lo("127.162.200.4")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((host, 0))
        busy = taken.getsockname()[1]
        listener = MinerListener(host=host, ports={"antminer": 0, "whatsminer": busy})
        with pytest.raises(ListenerError, match=re.escape(f"whatsminer IP reports on UDP {host}:{busy}")):
            await listener.start()
        assert not listener.listening and listener.ports == {}


def test_bad_listener_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="formats"):
        MinerListener(ports={"iceriver": 11503})
    with pytest.raises(ValueError, match=re.escape("0..65535")):
        MinerListener(ports={"antminer": 70000})
    with pytest.raises(ValueError, match="IPv4"):
        MinerListener(host="::1")
    with pytest.raises(ValueError, match="IPv4"):
        MinerListener(host="not-an-address")


async def test_the_cli_presses_a_simulated_button(sim_fleet: FleetFactory, tmp_path: Path) -> None:
    from orchestrator.cli import app

    fleet = await sim_fleet(lo("127.162.4.0/24"), 1, ["whatsminer"])
    inventory = tmp_path / "fleet.json"
    fleet.write_inventory(inventory)
    sim = next(iter(fleet.miners.values()))
    host = lo("127.162.200.5")
    async with MinerListener(host=host, ports={"whatsminer": 0}) as listener:
        target = f"{host}:{listener.ports['whatsminer']}"
        result = await asyncio.to_thread(CliRunner().invoke, app, [
            "sim-ip-report", sim.state.ip, "--inventory", str(inventory), "--to", target])
        assert result.exit_code == 0, result.output
        [report] = await first(listener.reports())
    assert report.ip == IPv4Address(sim.state.ip) and report.mac == sim.state.mac.upper()
    missing = CliRunner().invoke(app, ["sim-ip-report", lo("127.162.4.254"), "--inventory", str(inventory)])
    assert missing.exit_code != 0 and "not in the inventory" in missing.output
    assert json.loads(inventory.read_text())[0]["family"] == "whatsminer"
