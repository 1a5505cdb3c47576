"""A scan's memory is bounded per scan, not only per reply: hosts that all send oversized replies at once
are marked with an error each, and the scanning process's peak RSS stays under a documented bound.

Before the reply budget, 100 such hosts (`--faults oversized=100`, each reply running on for 64 MiB
against the 4 MiB cap) took the scanner to ~795 MB, about 7 MB a hostile host."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.local import stop_processes
from tests.conftest import lo

pytestmark = pytest.mark.slow

ASICFLEET = [sys.executable, "-m", "orchestrator.cli"]
RSS_BOUND_MB = 300  # the README's documented bound for a scan at concurrency 1000


@contextlib.contextmanager
def _hostile_fleet(subnet: str, hosts: int, inventory: Path) -> Iterator[list[dict[str, object]]]:
    """`hosts` simulated hosts on `subnet` whose every reply runs on past the cap."""
    process = subprocess.Popen([*ASICFLEET, "sim", "--subnet", subnet, "--count", str(hosts), "--seed", "5",
                                "--faults", f"oversized={hosts}", "--inventory", str(inventory)])
    try:
        deadline = time.monotonic() + 300
        while not inventory.exists():
            assert process.poll() is None, "the simulator died at start"
            assert time.monotonic() < deadline, "the simulator did not come up in 300 s"
            time.sleep(0.1)
        yield json.loads(inventory.read_text())
    finally:
        stop_processes([process])


def _scan_peak_rss(args: list[str]) -> tuple[int, str, float]:
    """Runs the scan in a process of its own, under a wrapper whose only child it is: (rc, stdout, peak MB)."""
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "sys.stderr.write(r.stderr); print(r.returncode); print(resource.getrusage(resource.RUSAGE_CHILDREN)"
               ".ru_maxrss); sys.stdout.write(r.stdout)")
    done = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True, timeout=600)
    rc, peak_kb, out = done.stdout.split("\n", 2)
    return int(rc), out, int(peak_kb) / 1024


@pytest.mark.parametrize(("hosts", "subnet"), [(100, "127.158.0.0/23"), (1000, "127.159.0.0/22")])
def test_oversized_hosts_stay_under_the_memory_bound(hosts: int, subnet: str, tmp_path: Path) -> None:
    """100 hosts passed while 1,000 took 724 MB: what each connection held outside the budget (its stream buffer
    and free allowance) grew with the hosts, and a thousand hosts hold a few thousand connections at once."""
    subnet = lo(subnet)
    with _hostile_fleet(subnet, hosts, tmp_path / "fleet.json") as fleet:
        ports = ",".join(f"{k}={v}" for k, v in dict(fleet[0]["ports"]).items())  # type: ignore[call-overload]
        rc, out, peak_mb = _scan_peak_rss([*ASICFLEET, "scan", subnet, "--json", "--no-progress", "--ports", ports,
                                           "--concurrency", "1000", "--read-timeout", "20",
                                           "--identify-timeout", "30"])
    print(f"peak RSS of the scan of {hosts} oversized hosts: {peak_mb:.0f} MB")
    assert rc == 0
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    hostile = {str(m["ip"]) for m in fleet}
    # every hostile host is marked (an error, or a miner read without the oversized replies); none is lost
    reported = {str(r["ip"]) for r in records}
    assert hostile <= reported, f"{len(hostile - reported)} hostile hosts missing from the output"
    assert peak_mb < RSS_BOUND_MB, f"the scan peaked at {peak_mb:.0f} MB with {hosts} oversized hosts"


async def test_replies_past_the_allowance_wait_for_budget_and_ordinary_ones_never_do() -> None:
    from asicfleet.transport._budget import FREE_PER_REPLY, ReplyBuffer, loop_budget

    budget_bytes = 2 * 1024 * 1024
    big = b"x" * (FREE_PER_REPLY + 1024 * 1024)  # 1 MiB past the allowance
    first = ReplyBuffer(8 * 1024 * 1024, budget_bytes)
    async with first:
        await first.add(big)
        assert loop_budget(budget_bytes).used == 1024 * 1024
        second = ReplyBuffer(8 * 1024 * 1024, budget_bytes)
        async with second:
            await second.add(big)  # 2 MiB drawn: the budget is spent
            ordinary = ReplyBuffer(8 * 1024 * 1024, budget_bytes)
            async with ordinary:
                await asyncio.wait_for(ordinary.add(b"y" * FREE_PER_REPLY), 1)  # within the allowance: no wait
            third = ReplyBuffer(8 * 1024 * 1024, budget_bytes)
            async with third:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(third.add(big), 0.3)  # waits while the others hold the budget
        async with ReplyBuffer(8 * 1024 * 1024, budget_bytes) as fourth:
            await asyncio.wait_for(fourth.add(big), 1)  # the second gave its share back
    assert loop_budget(budget_bytes).used == 0


async def test_replies_that_each_hold_part_of_the_budget_and_wait_do_not_wait_until_their_deadlines() -> None:
    """Two replies each hold part of the budget and need more than is left: neither can finish until the other
    gives back, so both used to wait until their read deadlines. The one holding the most is refused now."""
    from asicfleet import ResponseTooLargeError
    from asicfleet.transport._budget import FREE_PER_REPLY, ReplyBuffer, loop_budget

    budget_bytes = 1024 * 1024
    both_hold = asyncio.Barrier(2)

    async def read(what: str, first: int) -> bytes:
        async with ReplyBuffer(8 * 1024 * 1024, budget_bytes, what) as buffer:
            await buffer.add(b"x" * (FREE_PER_REPLY + first))
            await both_hold.wait()  # 900 KiB of the 1 MiB held between them
            await buffer.add(b"x" * (200 * 1024))
            return buffer.content()

    larger, smaller = await asyncio.wait_for(asyncio.gather(read("GET /a", 600 * 1024), read("GET /b", 300 * 1024),
                                                            return_exceptions=True), 2)
    assert isinstance(larger, ResponseTooLargeError), larger
    assert "GET /a refused: it held the most" in str(larger)
    assert smaller == b"x" * (FREE_PER_REPLY + 500 * 1024)  # it went on with what the larger gave back
    assert loop_budget(budget_bytes).used == 0


async def test_length_framed_replies_draw_on_the_budget_too() -> None:
    """Whatsminer API v3 announces each reply's length: the announcement alone used to let a host make us hold
    the whole cap at once, whatever the budget. Now the bytes are drawn from the budget as they arrive."""
    import struct

    from asicfleet import ResponseTooLargeError
    from asicfleet.backends.whatsminer import v3_request
    from asicfleet.transport import PortMap, TransportSettings
    from asicfleet.transport._budget import loop_budget

    filler = "x" * (800 * 1024)  # past the free allowance: drawn from the budget while it is read
    replies = {"big": b"x" * (3 * 1024 * 1024), "ordinary": b'{"code": 0, "msg": {"ok": 1}}',
               "large": json.dumps({"code": 0, "msg": {"filler": filler}}).encode()}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack("<I", await reader.readexactly(4))
        command = json.loads(await reader.readexactly(length))["cmd"]
        writer.write(struct.pack("<I", len(replies[command])) + replies[command])
        await writer.drain()
        writer.close()

    host = lo("127.89.0.1")
    server = await asyncio.start_server(serve, host, 0)
    port = server.sockets[0].getsockname()[1]
    settings = TransportSettings(reply_budget_bytes=1024 * 1024, ports=PortMap({4433: port}))
    async with server:
        with pytest.raises(ResponseTooLargeError, match="reply budget"):
            await v3_request(host, {"cmd": "big"}, settings=settings)  # under the 4 MiB cap, over the budget
        assert (await v3_request(host, {"cmd": "ordinary"}, settings=settings))["msg"] == {"ok": 1}
        large = await asyncio.gather(*(v3_request(host, {"cmd": "large"}, settings=settings) for _ in range(3)))
        assert all(reply["msg"]["filler"] == filler for reply in large)  # they took turns on the budget
        assert loop_budget(settings.reply_budget_bytes).used == 0
        tight = TransportSettings(max_reply_bytes=16, ports=PortMap({4433: port}))
        with pytest.raises(ResponseTooLargeError, match="announced 29 bytes, over the 16-byte cap"):
            await v3_request(host, {"cmd": "ordinary"}, settings=tight)  # refused before a byte is read



async def test_an_http_reply_announcing_more_than_the_cap_is_refused_before_its_body_is_read() -> None:
    """Content-Length is known before the body: an announced length past the cap is refused at once, rather
    than read (or waited for, from a host that never sends it) up to the cap; a fitting one is drawn whole."""
    from asicfleet import ResponseTooLargeError
    from asicfleet.transport import PortMap, TransportSettings
    from asicfleet.transport._budget import loop_budget
    from asicfleet.transport._http import HttpClient

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        body = b"x" * (200 * 1024)
        if b"/huge" in request:  # announces 5 MiB, sends a little and then nothing
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5242880\r\n\r\n" + body[:1024])
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        await asyncio.sleep(30)
        writer.close()

    host = lo("127.89.0.2")
    server = await asyncio.start_server(serve, host, 0)
    port = server.sockets[0].getsockname()[1]
    settings = TransportSettings(read_timeout=10, ports=PortMap({80: port}))
    client = HttpClient(settings)
    async with server:
        try:
            with pytest.raises(ResponseTooLargeError, match="announced 5242880 bytes, over the 4194304-byte cap"):
                await client.request("GET", host, "/huge")
            reply = await client.request("GET", host, "/fits")
            assert reply.body == b"x" * (200 * 1024)
            assert loop_budget(settings.reply_budget_bytes).used == 0
        finally:
            await client.aclose()
            server.close()
