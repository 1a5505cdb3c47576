"""A scan's memory is bounded per scan, not only per reply: hosts that all send oversized replies at once
are marked with an error each, and the scanning process's peak RSS stays under a documented bound.

Before the reply budget, 100 such hosts (`--faults oversized=100`, each reply running on for 64 MiB
against the 4 MiB cap) took the scanner to ~795 MB, about 7 MB a hostile host."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from orchestrator.local import stop_processes
from tests.conftest import lo

pytestmark = pytest.mark.slow

SUBNET = lo("127.158.0.0/23")
HOSTILE = 100
ASICFLEET = [sys.executable, "-m", "orchestrator.cli"]
RSS_BOUND_MB = 300  # the README's documented bound for a scan at concurrency 1000


@pytest.fixture(scope="module")
def hostile_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, object]]]:
    inventory = tmp_path_factory.mktemp("memory") / "fleet.json"
    process = subprocess.Popen([*ASICFLEET, "sim", "--subnet", SUBNET, "--count", str(HOSTILE), "--seed", "5",
                                "--faults", f"oversized={HOSTILE}", "--inventory", str(inventory)])
    try:
        deadline = time.monotonic() + 120
        while not inventory.exists():
            assert process.poll() is None, "the simulator died at start"
            assert time.monotonic() < deadline, "the simulator did not come up in 120 s"
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


def test_a_hundred_oversized_hosts_stay_under_the_memory_bound(hostile_fleet: list[dict[str, object]]) -> None:
    ports = ",".join(f"{k}={v}" for k, v in dict(hostile_fleet[0]["ports"]).items())  # type: ignore[call-overload]
    rc, out, peak_mb = _scan_peak_rss([*ASICFLEET, "scan", SUBNET, "--json", "--no-progress", "--ports", ports,
                                       "--concurrency", "1000", "--read-timeout", "20", "--identify-timeout", "30"])
    assert rc == 0
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    hostile = {str(m["ip"]) for m in hostile_fleet}
    # every hostile host is marked (an error, or a miner read without the oversized replies); none is lost
    reported = {str(r["ip"]) for r in records}
    assert hostile <= reported, f"{len(hostile - reported)} hostile hosts missing from the output"
    assert peak_mb < RSS_BOUND_MB, f"the scan peaked at {peak_mb:.0f} MB with {HOSTILE} oversized hosts"


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
