"""Loopback claims: two processes never hold the same /16."""

from __future__ import annotations

import subprocess
import sys

import pytest

from asicfleet.sim import claim_loopback
from asicfleet.sim._loopback import POOL

HOLD = """
import sys, time
from asicfleet.sim import claim_loopback
with claim_loopback(16, start=int(sys.argv[1])) as subnet:
    print(subnet, flush=True)
    time.sleep(60)
"""


def test_another_process_never_gets_a_claimed_range() -> None:
    with claim_loopback(22, start=7) as mine:
        octet = int(mine.split(".")[1])
        assert mine == f"127.{octet}.0.0/22" and octet in POOL
        holder = subprocess.Popen([sys.executable, "-c", HOLD, str(POOL.index(octet))], stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert holder.stdout is not None
            theirs = holder.stdout.readline().strip()
            assert theirs and theirs.split(".")[1] != str(octet), "two processes hold one range"
        finally:
            holder.kill()
            holder.wait()


def test_claims_are_refused_beyond_a_slash16() -> None:
    with pytest.raises(ValueError), claim_loopback(15):
        pass
