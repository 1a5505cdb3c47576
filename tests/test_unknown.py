"""Hosts that answer as miners of no family we know: reported as unknown miners with what they said, never
dropped and never mislabelled; hosts that are no miner at all (a switch's web page) stay out.

Addresses: 127.214.0.0/16 only. The hosts are real servers on loopback sockets: a CGMiner-style RPC of a
made-up firmware, and web pages.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from asicfleet import MinerFactory
from asicfleet._errors import MinerResponseError
from asicfleet.backends import Probe
from asicfleet.backends.unknown import SAID_LIMIT, UnknownMiner, named_by_version, page_title, said_text
from asicfleet.discovery import scan_and_collect
from asicfleet.sim import SimFleet
from asicfleet.transport import HttpReply, PortMap
from tests.conftest import lo

RPC_VERSION = {"STATUS": [{"STATUS": "S", "Msg": "FooMiner versions", "Description": "foominer 0.9"}],
               "VERSION": [{"FooMiner": "0.9.1", "API": "3.1", "Type": "Foo X1 Turbo"}], "id": 1}
MINER_PAGE = "<html><head><title>FooCorp Miner Console</title></head><body>Hashrate: 101 TH/s</body></html>"
SWITCH_PAGE = "<html><head><title>GS108 Managed Switch</title></head><body>Port status</body></html>"

Serve = Callable[[str, str | None, dict[str, object] | None], Awaitable[None]]


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[Serve, PortMap]]:
    """`await serve(ip, page, rpc_version)` starts a web server (and an RPC server, when a reply is given) on
    `ip`, on the two ports of the returned map (the test's own, not 80 and 4028)."""
    servers: list[asyncio.Server] = []
    web_port, rpc_port = 18080, 14028  # the same on every address: each test address is ours alone

    async def answer_web(page: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = page.encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def answer_rpc(reply: dict[str, object], reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(json.dumps(reply).encode() + b"\x00")
        await writer.drain()
        writer.close()

    async def serve(ip: str, page: str | None, rpc_version: dict[str, object] | None) -> None:
        if page is not None:
            servers.append(await asyncio.start_server(lambda r, w: answer_web(page, r, w), ip, web_port))
        if rpc_version is not None:
            servers.append(await asyncio.start_server(lambda r, w: answer_rpc(rpc_version, r, w), ip, rpc_port))

    yield serve, PortMap.parse(f"80={web_port},4028={rpc_port}")
    for server in servers:
        server.close()
        await server.wait_closed()


# ----- parsers: what the host said, in, names out --------------------------------------------------
def test_names_come_from_the_version_row_and_the_page_title() -> None:
    assert named_by_version(RPC_VERSION, ("Type", "Model")) == "Foo X1 Turbo"
    assert named_by_version(RPC_VERSION, ("Make",)) is None
    assert named_by_version({"Model": " Z9 "}, ("Model",)) == "Z9"  # no VERSION section: the top level
    assert page_title(MINER_PAGE) == "FooCorp Miner Console"
    assert page_title("<p>no title</p>") is None
    long = said_text("x" * 1000)
    assert len(long) == SAID_LIMIT and long.endswith("…")
    assert said_text({"a": [1, 2]}) == '{"a":[1,2]}'


def test_a_switch_page_is_no_miner_and_a_bad_rpc_is_left_to_the_error_path() -> None:
    page = HttpReply(status=200, headers={}, body=SWITCH_PAGE.encode())
    assert not UnknownMiner.matches(Probe(ip="127.0.0.1", web=page))
    assert UnknownMiner.matches(Probe(ip="127.0.0.1", rpc={"version": RPC_VERSION}))
    failed = Probe(ip="127.0.0.1", web=HttpReply(status=200, headers={}, body=MINER_PAGE.encode()),
                   rpc={"version": MinerResponseError("reply too large")})
    assert not UnknownMiner.matches(failed)  # reported as "unrecognised: version: ...", with its error


# ----- a scan over real sockets ----------------------------------------------------------------------
async def test_a_scan_reports_unknown_miners_with_what_they_said_beside_known_ones(
        hosts: tuple[Serve, PortMap]) -> None:
    serve, ports = hosts
    rpc_host, web_host, switch = lo("127.214.0.10"), lo("127.214.0.11"), lo("127.214.0.12")
    await serve(rpc_host, "<html><title>login</title></html>", RPC_VERSION)
    await serve(web_host, MINER_PAGE, None)
    await serve(switch, SWITCH_PAGE, None)
    factory = (MinerFactory.from_subnet(lo("127.214.0.0/27")).with_port_map(ports)
               .with_identification_timeout_secs(5).with_connectivity_timeout_secs(1))
    records = {str(r.ip): r async for r in scan_and_collect(factory)}
    assert set(records) == {rpc_host, web_host}, records  # the switch is no miner; nothing is dropped
    by_rpc = records[rpc_host].data
    assert by_rpc is not None and records[rpc_host].error is None
    assert (by_rpc.device_info.make, by_rpc.device_info.model, by_rpc.device_info.firmware) == \
        ("Unknown", "Foo X1 Turbo", "Unknown")
    assert len(by_rpc.messages) == 1 and "RPC version: " in by_rpc.messages[0].message
    assert '"Type":"Foo X1 Turbo"' in by_rpc.messages[0].message
    by_web = records[web_host].data
    assert by_web is not None
    assert (by_web.device_info.make, by_web.device_info.model) == ("Unknown", "FooCorp Miner Console")
    assert "HTTP 200: " in by_web.messages[0].message and "Hashrate: 101 TH/s" in by_web.messages[0].message
    assert json.loads(by_web.model_dump_json())["device_info"]["firmware"] == "Unknown"  # as Redis stores it


async def test_an_unknown_miner_offers_no_control_and_known_families_keep_their_names(
        hosts: tuple[Serve, PortMap]) -> None:
    serve, ports = hosts
    unknown = lo("127.214.1.5")
    await serve(unknown, None, RPC_VERSION)  # RPC only: identified without a port check
    miner = await MinerFactory().with_port_map(ports).with_port_check(False).get_miner(unknown)
    assert miner is not None and miner.firmware == "Unknown"
    assert not any((miner.supports_restart, miner.supports_pause, miner.supports_set_fault_light,
                    miner.supports_set_power_limit))
    async with SimFleet.generate(lo("127.214.2.0/28"), 3, ["antminer", "whatsminer", "bitaxe"]) as fleet:
        factory = MinerFactory.from_subnet(lo("127.214.2.0/28")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
    assert sorted(found) == sorted(fleet.miners)
    for ip, sim in fleet.miners.items():  # the families it knows are never passed off as unknown
        assert (found[ip].make, found[ip].firmware) == (sim.make, sim.firmware)
