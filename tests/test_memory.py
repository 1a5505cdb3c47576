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
