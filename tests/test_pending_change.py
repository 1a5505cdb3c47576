"""A change that may sit on the miner written but not applied is never left to chance: Avalon firmware takes
new pools only at its next reboot, so a worker killed between the pool writes and the reboot leaves them
`pending`; `rollout status` lists them and `rollout resume` completes the change. Real parts: a private
redis-server, Celery worker processes, and simulated Avalons (which keep written pools until a reboot)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from asicfleet.sim import Fault, SimFleet
from fleet.controls import control_from_file_content
from fleet.ledger import MinerStep, RolloutStatus
from fleet.loop import run_async
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.rollouts import Rollouts
from orchestrator.targeting import plan_rollout, scan_targets
from tests.conftest import ThreadedFleet, lo

SUBNET = lo("127.153.0.0/24")
LIVENESS = "3"
WANTED = [("stratum+tcp://pending.example:3333", "p.{ip}"), ("stratum+tcp://pending2.example:3333", "q.{ip}")]


def _cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASICFLEET_REDIS_URL": redis_url, "COLUMNS": "250"}
    env.pop("ASICFLEET_BROKER_URL", None)
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_avalon_pools_written_without_their_reboot_are_pending_then_resumed(redis_url: str) -> None:
    sim = SimFleet.generate(SUBNET, 4, ["avalon"], seed=7)
    processes, names = start_workers(redis_url, 2, "pendsite",
                                     extra_env={"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
    try:
        wait_for_workers(redis_url, names, processes)
        by_name = dict(zip(names, processes, strict=True))
        with ThreadedFleet(sim) as fleet:
            assert fleet.ports is not None
            options = DiscoveryOptions(ports=str(fleet.ports), read_timeout=6.0, identify_timeout=8.0,
                                       connect_timeout=0.5)
            inventory = run_async(scan_targets(list(fleet.miners), options))
            control = control_from_file_content(
                {"pools": [{"url": url, "username": user, "password": "x"} for url, user in WANTED]})
            plan = run_async(plan_rollout(control, inventory, options=options, batch_size=4, canary=0,
                                          pause_seconds=0.0, max_fail=1.0, verify_timeout=8.0, site="pendsite"))
            assert len(plan.miners) == 4 and all(m.skip_reason is None for m in plan.miners)
            for miner in fleet.miners.values():
                miner.fault = Fault.SLOW  # each write answers late, so the writes can be told from the reboot
                miner.slow_seconds = 0.4
            rollouts = Rollouts(FleetSettings(redis_url=redis_url, worker_liveness_seconds=float(LIVENESS)))
            rollout_id = rollouts.create(plan)
            rollouts.start(rollout_id)
            deadline = time.monotonic() + 60
            flipped: set[str] = set()
            while len(flipped) < len(fleet.miners):  # once both slots are written, the reboot hangs
                assert time.monotonic() < deadline, "the pool writes never came"
                for ip, miner in fleet.miners.items():
                    if ip not in flipped and miner.requests["4028:setpool"] >= len(WANTED):
                        miner.fault = Fault.HUNG
                        flipped.add(ip)
                time.sleep(0.01)
            holder = rollouts.ledger.batch(rollout_id, 0).get("worker", "").split("@")[0]
            os.kill(by_name[holder].pid, signal.SIGKILL)  # dies with the writes done and the reboot unsent
            states = {m["state"] for m in rollouts.ledger.miners(rollout_id).values()}
            assert states == {MinerStep.INTENT}, states
            for miner in fleet.miners.values():
                miner.fault = Fault.NONE
                assert miner.pending_slots is not None  # type: ignore[attr-defined]  # written, not applied

            deadline = time.monotonic() + 120
            while rollouts.progress(rollout_id).status is RolloutStatus.RUNNING:
                assert time.monotonic() < deadline, "the rollout did not end after its worker was killed"
                time.sleep(0.3)
            ledger = rollouts.ledger.miners(rollout_id)
            assert {e["state"] for e in ledger.values()} == {MinerStep.PENDING}, ledger
            assert all("not resent" in e["detail"] and "next reboot" in e["detail"] for e in ledger.values())
            assert sorted(rollouts.pending(rollout_id)) == sorted(fleet.miners)

            # a rollback would write each pending miner's recorded previous pools back over the pending ones
            undo = rollouts.rollback_plan(rollout_id)
            assert sorted(m.ip for m in undo.miners) == sorted(fleet.miners)
            for planned in undo.miners:
                assert planned.skip_reason is None and planned.desired is not None
                previous = json.loads(ledger[planned.ip]["previous"])
                assert planned.desired["groups"] == previous, planned.ip

            shown = _cli(redis_url, "rollout", "status", rollout_id, "--no-follow")
            assert shown.returncode == 0, shown.stderr
            listing = " ".join(shown.stderr.split())
            assert "4 miners may have the change written but not applied" in listing, listing
            assert all(ip in listing for ip in fleet.miners)

            resumed = _cli(redis_url, "rollout", "resume", rollout_id)
            assert resumed.returncode == 0, resumed.stdout + resumed.stderr
            ledger = rollouts.ledger.miners(rollout_id)
            assert {e["state"] for e in ledger.values()} == {MinerStep.VERIFIED}, ledger
            assert rollouts.ledger.info(rollout_id)["status"] == RolloutStatus.DONE
            for ip, miner in fleet.miners.items():
                pools = [(p.url, p.username) for g in miner.state.pools for p in g.pools]
                wanted = [(url, user.format(ip=ip.replace(".", "_"))) for url, user in WANTED]
                assert pools[: len(wanted)] == wanted, ip
                assert miner.pending_slots is None  # type: ignore[attr-defined]
    finally:
        stop_processes(processes)
