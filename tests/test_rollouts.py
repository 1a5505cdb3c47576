"""Control fan-out and rollouts with real parts: a private redis-server, Celery worker processes, and a
simulated fleet (served from a thread of this process, so its state can be compared with the ledger)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from asicfleet.data import MinerData
from asicfleet.sim import SIM_FAMILIES, Fault, SimFleet, SimMiner, make_sim_image
from fleet.controls import (
    FirmwareControl,
    MiningControl,
    PasswordControl,
    PoolsControl,
    PowerLimitControl,
    control_from_file_content,
    parse_control,
)
from fleet.ledger import MinerStep, RolloutPlan, RolloutStatus
from fleet.loop import run_async
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.rollouts import Rollouts
from orchestrator.targeting import MinerFilter, filter_inventory, plan_rollout, scan_targets
from orchestrator.watch import Orchestrator
from tests.conftest import ThreadedFleet, lo

SUBNET = lo("127.98.0.0/22")
LIVENESS = "3"
POOLS = {"pools": [{"url": "stratum+tcp://new.pool.example:3333", "username": "farm.{mac}", "password": "x"},
                   {"url": "stratum+tcp://backup2.example:3333", "username": "farm.{ip}", "password": "x"}]}
# the request each firmware's pool change is, as the simulator counts it
POOL_WRITES = {"antminer": ("80:POST /cgi-bin/set_miner_conf.cgi",),
               # Braiins OS: REST from 25.07, a GraphQL mutation before
               "braiins": ("80:PUT /api/v1/pools/batch", "80:graphql bosminer.config.updateGroups"),
               "whatsminer": ("4028:update_pools", "4433:set.miner.pools"), "avalon": ("4028:setpool",),
               "bitaxe": ("80:PATCH /api/system",)}


@pytest.fixture(scope="module")
def fleet() -> Iterator[SimFleet]:
    sim = SimFleet.generate(SUBNET, 300, ["antminer", "braiins", "whatsminer", "avalon", "bitaxe"], seed=4)
    with ThreadedFleet(sim) as served:
        yield served


@pytest.fixture(scope="module")
def workers(redis_url: str) -> Iterator[None]:
    processes, names = start_workers(redis_url, 2, None, extra_env={"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
    wait_for_workers(redis_url, names, processes)
    yield
    stop_processes(processes)


def _options(fleet: SimFleet) -> DiscoveryOptions:
    assert fleet.ports is not None
    return DiscoveryOptions(ports=str(fleet.ports), read_timeout=2.0, identify_timeout=4.0, connect_timeout=0.5)


def _rollouts(redis_url: str) -> Rollouts:
    return Rollouts(FleetSettings(redis_url=redis_url, worker_liveness_seconds=float(LIVENESS)))


def _inventory(fleet: SimFleet, prefix: str) -> list[MinerData]:
    targets = [ip for ip in fleet.miners if ip.startswith(prefix)]
    return run_async(scan_targets(targets, _options(fleet)))


def _plan(fleet: SimFleet, inventory: list[MinerData], control: Any, **batching: Any) -> RolloutPlan:
    settings = {"batch_size": 20, "canary": 5, "pause_seconds": 0.0, "max_fail": 0.1, "verify_timeout": 8.0}
    settings.update(batching)
    return run_async(plan_rollout(control, inventory, options=_options(fleet), **settings))


def _pools_of(miner: SimMiner) -> list[tuple[str, str]]:
    return [(p.url, p.username) for g in miner.state.pools for p in g.pools]


def _desired_pools(entry: dict[str, str]) -> list[tuple[str, str]]:
    control = parse_control(json.loads(entry["desired"]))
    assert isinstance(control, PoolsControl)
    return [(p.url, p.username) for g in control.groups for p in g.pools]


def _writes(miner: SimMiner) -> int:
    return sum(miner.requests[key] for key in POOL_WRITES[miner.family])


def _expected_writes(miner: SimMiner, entry: dict[str, str]) -> int:
    """Writes one pool change takes: Avalon's setpool fills one slot per pool; the others take one request."""
    return len(_desired_pools(entry)) if miner.family == "avalon" else 1


def test_dry_run_shows_current_and_new_and_sends_nothing(redis_url: str, fleet: SimFleet) -> None:
    inventory = _inventory(fleet, lo("127.98.0."))
    before = {ip: (_pools_of(m), _writes(m)) for ip, m in fleet.miners.items()}
    plan = run_async(plan_rollout(control_from_file_content(POOLS), inventory, options=_options(fleet),
                                  batch_size=10, canary=2, pause_seconds=0, max_fail=0.1, verify_timeout=5,
                                  read_current=True))
    assert {m.ip for m in plan.miners} == {str(d.ip) for d in inventory} and plan.miners
    for planned in plan.miners:
        sim = fleet.miners[planned.ip]
        assert planned.skip_reason is None
        current = [(p["url"], p["username"]) for g in planned.current for p in g["pools"]]
        assert current == _pools_of(sim)[: len(current)]
        mac = sim.state.mac.replace(":", "").lower()
        assert planned.desired is not None
        assert planned.desired["groups"][0]["pools"][0]["username"] == f"farm.{mac}"
        assert planned.desired["groups"][0]["pools"][1]["username"] == f"farm.{planned.ip.replace('.', '_')}"
    assert {ip: (_pools_of(m), _writes(m)) for ip, m in fleet.miners.items()} == before
    assert _rollouts(redis_url).ledger.recent() == []  # nothing was recorded either


@pytest.mark.usefixtures("workers")
def test_pools_rollout_goes_on_past_a_few_failures_and_matches_the_simulator(redis_url: str, fleet: SimFleet) -> None:
    inventory = _inventory(fleet, lo("127.98.1.")) + _inventory(fleet, lo("127.98.2."))  # ~150 miners, 5 firmwares
    plan = _plan(fleet, inventory, control_from_file_content(POOLS))
    batches = plan.batches()
    assert len(batches) >= 3
    # one miner refuses logins in each of two later batches (1 of 20 each: under the 10 % limit)
    faulty = [next(ip for ip in batches[i] if fleet.miners[ip].family in ("antminer", "whatsminer", "braiins"))
              for i in (1, 2)]
    for ip in faulty:
        fleet.miners[ip].fault = Fault.AUTH_FAILURE
    original = {ip: _pools_of(m) for ip, m in fleet.miners.items()}
    rollouts = _rollouts(redis_url)
    rollout_id = rollouts.create(plan)
    final = rollouts.run(rollout_id, timeout=300)
    for ip in faulty:
        fleet.miners[ip].fault = Fault.NONE
    assert final.status is RolloutStatus.DONE
    ledger = rollouts.ledger.miners(rollout_id)
    assert {ip for ip, e in ledger.items() if e["state"] == MinerStep.FAILED} == set(faulty)
    for ip in faulty:
        assert "refused" in ledger[ip]["detail"] or "denied" in ledger[ip]["detail"].lower(), ledger[ip]
    for ip, entry in ledger.items():  # the simulator's state matches the ledger, miner for miner
        sim = fleet.miners[ip]
        if entry["state"] == MinerStep.VERIFIED:
            assert _pools_of(sim)[: len(_desired_pools(entry))] == _desired_pools(entry), ip
            assert _writes(sim) >= _expected_writes(sim, entry)
        else:
            assert entry["state"] == MinerStep.FAILED and _pools_of(sim) == original[ip], ip
    assert sum(e["state"] == MinerStep.VERIFIED for e in ledger.values()) == len(inventory) - 2

    # rollback: every changed miner gets its previous pools back
    rollback = rollouts.create(rollouts.rollback_plan(rollout_id))
    assert rollouts.run(rollback, timeout=300).status is RolloutStatus.DONE
    for ip, entry in ledger.items():
        if entry["state"] == MinerStep.VERIFIED:
            restored = _pools_of(fleet.miners[ip])
            assert restored[:2] == _rollback_expectation(entry), ip


def _rollback_expectation(entry: dict[str, str]) -> list[tuple[str, str]]:
    previous = json.loads(entry["previous"])
    return [(p["url"], p["username"]) for g in previous for p in g["pools"]][:2]


@pytest.mark.usefixtures("workers")
def test_a_failing_canary_stops_the_rollout(redis_url: str, fleet: SimFleet) -> None:
    inventory = [m for m in _inventory(fleet, lo("127.98.2.")) if m.make != "Bitaxe"]
    plan = _plan(fleet, inventory, control_from_file_content(POOLS), canary=5, batch_size=10)
    canary, *rest = plan.batches()
    for ip in canary[:2]:  # 2 of 5 (40 %) refuse: far over the 10 % limit
        fleet.miners[ip].fault = Fault.AUTH_FAILURE
    untouched = {ip: (_pools_of(fleet.miners[ip]), _writes(fleet.miners[ip])) for batch in rest for ip in batch}
    rollouts = _rollouts(redis_url)
    rollout_id = rollouts.create(plan)
    final = rollouts.run(rollout_id, timeout=300)
    for ip in canary[:2]:
        fleet.miners[ip].fault = Fault.NONE
    assert final.status is RolloutStatus.STOPPED
    assert "2 of 5 failed" in rollouts.ledger.info(rollout_id)["stopped_reason"]
    ledger = rollouts.ledger.miners(rollout_id)
    for ip, (pools, writes) in untouched.items():  # nothing was sent past the canary
        assert ledger[ip]["state"] == MinerStep.SKIPPED and "stopped" in ledger[ip]["detail"]
        assert (_pools_of(fleet.miners[ip]), _writes(fleet.miners[ip])) == (pools, writes)
    assert final.counts[MinerStep.FAILED] == 2 and final.counts[MinerStep.VERIFIED] == 3


@pytest.mark.usefixtures("workers")
def test_unsupported_controls_are_skipped_with_the_reason(redis_url: str, fleet: SimFleet) -> None:
    inventory = _inventory(fleet, lo("127.98.3."))
    plan = _plan(fleet, inventory, PowerLimitControl(watts=3000))
    skipped = {m.ip: m.skip_reason for m in plan.miners if m.skip_reason}
    makes = {fleet.miners[ip].family for ip in skipped}
    assert "antminer" in makes and "bitaxe" in makes  # stock Antminer and AxeOS have no power limit
    assert all("cannot do this control" in reason for reason in skipped.values())
    rollouts = _rollouts(redis_url)
    rollout_id = rollouts.create(plan)
    final = rollouts.run(rollout_id, timeout=300)
    ledger = rollouts.ledger.miners(rollout_id)
    for ip in skipped:
        assert ledger[ip]["state"] == MinerStep.SKIPPED  # listed, never counted as done
    for ip, entry in ledger.items():
        if entry["state"] == MinerStep.VERIFIED:
            assert fleet.miners[ip].state.power_limit == pytest.approx(3000, abs=30)
    assert final.counts[MinerStep.VERIFIED] == len(plan.miners) - len(skipped)


def test_filters_pick_the_target_set(fleet: SimFleet) -> None:
    inventory = _inventory(fleet, lo("127.98.0."))
    only = filter_inventory(inventory, [MinerFilter.parse("make=AntMiner"), MinerFilter.parse("firmware=stock")])
    assert only and all(m.make == "AntMiner" and m.firmware == "Stock" for m in only)
    assert {str(m.ip) for m in only} == {str(m.ip) for m in inventory if m.make == "AntMiner" and
                                         m.firmware == "Stock"}
    for bad in ("colour=red", "make", "make="):
        with pytest.raises(ValueError):
            MinerFilter.parse(bad)


def test_bad_control_files_are_refused_before_anything_is_sent() -> None:
    for raw in ({"pools": [{"url": "http://nope:1", "username": "w"}]}, {"fan": {"mode": "manual", "fan_speed": 140}},
                {"power_limit": -5}, {"colour": 1}, {"pools": [], "fan": {}}, [],
                {"pools": [{"url": "stratum+tcp://a:1", "username": "w.{rack}"}]}):
        with pytest.raises(ValueError):
            control = control_from_file_content(raw)
            control.placeholders()


@pytest.mark.usefixtures("workers")
def test_a_sigkilled_worker_loses_no_step_and_sends_no_change_twice(redis_url: str, fleet: SimFleet) -> None:
    inventory = _inventory(fleet, lo("127.98."))  # every miner of the fleet
    own = [m for m in inventory if str(m.ip).rsplit(".", 2)[1] in ("0", "3")]  # not changed by the tests above
    plan = _plan(fleet, own, control_from_file_content(
        {"pools": [{"url": "stratum+tcp://kill.example:3333", "username": "k.{ip}", "password": "x"}]}),
        canary=0, batch_size=60, verify_timeout=15.0)
    for planned in plan.miners:  # slow miners, so that the batch is in flight when its worker dies
        fleet.miners[planned.ip].fault = Fault.SLOW
        fleet.miners[planned.ip].slow_seconds = 0.4
    before = {ip: _writes(m) for ip, m in fleet.miners.items()}
    processes, names = start_workers(redis_url, 2, "killsite",
                                     extra_env={"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
    wait_for_workers(redis_url, names, processes)
    by_name = dict(zip(names, processes, strict=True))
    plan.site = "killsite"
    rollouts = _rollouts(redis_url)
    rollout_id = rollouts.create(plan)
    killed: list[str] = []

    def kill_mid_batch(progress: Any) -> None:
        if killed:
            return
        batch = rollouts.ledger.batch(rollout_id, 0)
        holder = batch.get("worker", "").split("@")[0]
        in_flight = progress.counts.get(MinerStep.SENT, 0) + progress.counts.get(MinerStep.INTENT, 0)
        if holder in by_name and in_flight and progress.finished < len(plan.miners) // 2:
            os.kill(by_name[holder].pid, signal.SIGKILL)  # the worker's main process
            killed.append(holder)

    try:
        final = rollouts.run(rollout_id, kill_mid_batch, poll_seconds=0.05, timeout=300)
    finally:
        stop_processes(processes)
        for planned in plan.miners:
            fleet.miners[planned.ip].fault = Fault.NONE
    assert killed, "the batch finished before its worker could be killed"
    assert final.status is RolloutStatus.DONE
    ledger = rollouts.ledger.miners(rollout_id)
    terminal = {MinerStep.VERIFIED, MinerStep.FAILED, MinerStep.UNVERIFIED, MinerStep.PENDING, MinerStep.SKIPPED}
    assert all(e["state"] in terminal for e in ledger.values()), "a step was lost"
    for ip, entry in ledger.items():
        sim = fleet.miners[ip]
        sent = _writes(sim) - before[ip]
        assert sent <= _expected_writes(sim, entry), f"{ip} ({sim.family}) got the change {sent} times"
        if entry["state"] == MinerStep.VERIFIED:
            assert _pools_of(sim)[: len(_desired_pools(entry))] == _desired_pools(entry), ip
            assert sent == _expected_writes(sim, entry)
    # miners caught between intent and confirmation were read back, not resent: the ledger says so
    for entry in ledger.values():
        if entry["state"] in (MinerStep.UNVERIFIED, MinerStep.PENDING):
            assert "not resent" in entry["detail"]
        if entry["state"] == MinerStep.PENDING:  # only where a change can wait on the miner unapplied
            assert entry["make"].startswith("Avalon"), entry
    assert final.counts[MinerStep.VERIFIED] > 0 and final.counts[MinerStep.FAILED] == 0


def _cli(redis_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "ASICFLEET_REDIS_URL": redis_url, "COLUMNS": "250", **(env or {})}
    full_env.pop("ASICFLEET_BROKER_URL", None)
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], env=full_env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.usefixtures("workers")
def test_cli_apply_to_a_scan_with_a_filter_then_status_and_rollback(
        redis_url: str, fleet: SimFleet, tmp_path: Path) -> None:
    orchestrator = Orchestrator(FleetSettings(redis_url=redis_url))
    scan_id = orchestrator.start_scan([lo("127.98.2.0/24")], options=_options(fleet))
    orchestrator.watch(scan_id, timeout=120)
    config = tmp_path / "pools.yaml"
    config.write_text("pools:\n  - url: stratum+tcp://cli.pool.example:3333\n    username: cli.{hostname}\n")
    antminers = {str(m.ip) for m in orchestrator.inventory(scan_id) if m.make == "AntMiner"}
    dry = _cli(redis_url, "apply", str(config), "--target", scan_id, "--filter", "make=AntMiner", "--dry-run",
               "--ports", str(fleet.ports))
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and "cli.pool.example" in dry.stdout and "->" in dry.stdout
    assert all(fleet.miners[ip].state.pools[0].pools[0].url != "stratum+tcp://cli.pool.example:3333"
               for ip in antminers)
    run = _cli(redis_url, "apply", str(config), "--target", scan_id, "--filter", "make=AntMiner", "--batch", "4",
               "--canary", "2", "--max-fail", "10%", "--verify-timeout", "10", "--ports", str(fleet.ports))
    assert run.returncode == 0, run.stderr
    rollout_id = run.stderr.split("rollout ", 1)[1].split()[0]
    for ip in antminers:  # only the filtered make was touched
        sim = fleet.miners[ip]
        assert sim.state.pools[0].pools[0].url == "stratum+tcp://cli.pool.example:3333"
        assert sim.state.pools[0].pools[0].username == f"cli.{sim.state.hostname}"
    others = [ip for ip in fleet.miners if ip.startswith(lo("127.98.2.")) and ip not in antminers]
    assert all(fleet.miners[ip].state.pools[0].pools[0].url != "stratum+tcp://cli.pool.example:3333" for ip in others)
    status = _cli(redis_url, "rollout", "status", rollout_id)
    assert status.returncode == 0 and status.stdout.count("verified") == len(antminers)
    again = _cli(redis_url, "rollout", "resume", rollout_id)  # a finished rollout sends nothing again
    assert again.returncode == 0 and f"rollout {rollout_id}: done" in again.stderr
    back = _cli(redis_url, "rollout", "rollback", rollout_id)
    assert back.returncode == 0, back.stderr
    assert all(fleet.miners[ip].state.pools[0].pools[0].url != "stratum+tcp://cli.pool.example:3333"
               for ip in antminers)
    listing = _cli(redis_url, "rollout", "list")
    assert rollout_id in listing.stdout


def test_new_passwords_never_reach_redis(redis_url: str, fleet: SimFleet) -> None:
    secret = "Farm-New-Secret-4242"
    processes, names = start_workers(redis_url, 1, "pwsite", extra_env={
        "ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS, "ASICFLEET_NEW_MINER_PASSWORD": secret})
    wait_for_workers(redis_url, names, processes)
    targets = [m for m in _inventory(fleet, lo("127.98.1.")) if m.make == "AntMiner" and m.firmware == "Stock"][:3]
    assert targets
    try:
        plan = _plan(fleet, targets, PasswordControl(), canary=0)
        plan.site = "pwsite"
        rollouts = _rollouts(redis_url)
        rollout_id = rollouts.create(plan)
        final = rollouts.run(rollout_id, timeout=120)
    finally:
        stop_processes(processes)
    assert final.counts[MinerStep.VERIFIED] == len(targets)
    for miner in targets:
        assert fleet.miners[str(miner.ip)].state.password == secret
        fleet.miners[str(miner.ip)].state.password = "root"  # back to the default for the other tests
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"hash":
            blob = repr(client.hgetall(key))
        elif kind == b"stream":
            blob = repr(client.xrange(key))
        elif kind == b"zset":
            blob = repr(client.zrange(key, 0, -1))
        else:
            blob = repr(client.get(key)) if kind == b"string" else ""
        assert secret not in blob, f"the new password leaked into {key!r}"


@pytest.mark.usefixtures("workers")
def test_firmware_goes_only_to_the_models_it_is_for(redis_url: str, fleet: SimFleet, tmp_path: Path) -> None:
    inventory = _inventory(fleet, lo("127.98.2."))
    s21 = [m for m in inventory if m.make == "AntMiner" and m.firmware == "Stock" and m.model == "Antminer S21"]
    assert s21, "the fleet has no stock S21 in this range"
    image = tmp_path / "Antminer-S21-2099.bmu"
    image.write_bytes(make_sim_image("2099-01-01", "AntMiner", ["Antminer S21"]))
    control = FirmwareControl(source=str(image), make="AntMiner", models=["Antminer S21"], firmware="Stock",
                              version="2099-01-01")
    plan = _plan(fleet, inventory, control, canary=1, verify_timeout=20.0)
    skipped = {m.ip: m.skip_reason for m in plan.miners if m.skip_reason}
    assert set(skipped) == {str(m.ip) for m in inventory} - {str(m.ip) for m in s21}
    braiins_s21 = [ip for ip in skipped if fleet.miners[ip].family == "braiins"
                   and fleet.miners[ip].state.model.name == "Antminer S21"]
    for ip in braiins_s21:  # the same hardware, another firmware: refused too
        assert "Braiins OS" in (skipped[ip] or "")
    rollouts = _rollouts(redis_url)
    rollout_id = rollouts.create(plan)
    final = rollouts.run(rollout_id, timeout=300)
    ledger = rollouts.ledger.miners(rollout_id)
    assert final.counts[MinerStep.VERIFIED] == len(s21), [ledger[str(m.ip)] for m in s21]
    for miner in s21:
        assert fleet.miners[str(miner.ip)].state.firmware_version == "2099-01-01"
    for ip in skipped:
        assert fleet.miners[ip].state.firmware_version != "2099-01-01"


@pytest.mark.usefixtures("workers")
def test_curtailment_spreads_the_load_change_over_time(redis_url: str, fleet: SimFleet) -> None:
    targets = [ip for ip in fleet.miners if ip.startswith(lo("127.98.1."))]
    start = time.time()
    down = _cli(redis_url, "curtail", "down", "--target", *[a for ip in targets for a in ("--target", ip)][1:],
                "--over", "0.05", "--steps", "3", "--ports", str(fleet.ports))
    assert down.returncode == 0, down.stderr
    rollout_id = down.stderr.split("rollout ", 1)[1].split()[0]
    ledger = _rollouts(redis_url).ledger.miners(rollout_id)
    paused = [ip for ip, e in ledger.items() if e["state"] == MinerStep.VERIFIED]
    assert paused and all(fleet.miners[ip].state.mining is False for ip in paused)
    sent = sorted(float(ledger[ip]["sent_at"]) for ip in paused)
    assert sent[-1] - sent[0] >= 2.0, "the miners were all paused at once"
    assert sent[0] >= start
    up = _cli(redis_url, "curtail", "up", "--target", *[a for ip in paused for a in ("--target", ip)][1:],
              "--over", "0", "--steps", "1", "--ports", str(fleet.ports))
    assert up.returncode == 0, up.stderr
    assert all(fleet.miners[ip].state.mining is True for ip in paused)


@pytest.mark.usefixtures("workers")
def test_fan_and_tuning_rollouts_verify_and_roll_back(redis_url: str, fleet: SimFleet) -> None:
    inventory = [m for m in _inventory(fleet, lo("127.98.0.")) if m.make == "AntMiner"]
    rollouts = _rollouts(redis_url)
    for raw in ({"fan": {"mode": "manual", "fan_speed": 80}}, {"tuning": {"target_mode": "low"}}):
        control = control_from_file_content(raw)
        plan = _plan(fleet, inventory, control, canary=0, verify_timeout=10.0)
        takers = [m.ip for m in plan.miners if m.skip_reason is None]
        assert takers, f"no miner can take {raw}"
        rollout_id = rollouts.create(plan)
        rollouts.run(rollout_id, timeout=300)
        ledger = rollouts.ledger.miners(rollout_id)
        changed = [ip for ip in takers if ledger[ip]["state"] == MinerStep.VERIFIED]
        for ip in set(takers) - set(changed):
            # Braiins OS tunes to watts or TH/s only: a named mode is refused when sent, and skipped
            assert ledger[ip]["state"] == MinerStep.SKIPPED and fleet.miners[ip].family == "braiins", ledger[ip]
            assert "tuning" in raw and ledger[ip]["detail"]
        assert changed and all(fleet.miners[ip].family == "antminer" or "fan" in raw for ip in changed)
        back = rollouts.create(rollouts.rollback_plan(rollout_id))
        assert rollouts.run(back, timeout=300).counts[MinerStep.VERIFIED] == len(changed)
        restored = parse_control(json.loads(rollouts.ledger.miners(back)[changed[0]]["desired"]))
        assert restored != control  # the rollback wrote the previous value, not the change again


@pytest.mark.usefixtures("workers")
def test_every_family_takes_a_dry_run_a_pools_rollout_and_a_curtailment(redis_url: str) -> None:
    """Two miners of each simulated family: what each firmware supports is changed and verified on the
    simulator; what it does not is skipped with the reason, never counted as done."""
    sim = SimFleet.generate(lo("127.99.0.0/24"), 2 * len(SIM_FAMILIES), sorted(SIM_FAMILIES), seed=6)
    # the families whose firmware has no such control (no pause in any source for Innosilicon or NerdQAxe)
    without: dict[str, set[str]] = {"pools": set(), "pause": {"innosilicon", "nerdaxe"}}
    with ThreadedFleet(sim) as fleet:
        inventory = run_async(scan_targets(list(fleet.miners), _options(fleet)))
        assert sorted(str(m.ip) for m in inventory) == sorted(fleet.miners)  # every family identified
        assert {fleet.miners[str(m.ip)].family for m in inventory} == set(SIM_FAMILIES)
        rollouts = _rollouts(redis_url)
        plans = {
            "pools": run_async(plan_rollout(control_from_file_content(POOLS), inventory, options=_options(fleet),
                                            batch_size=10, canary=2, pause_seconds=0, max_fail=0.5,
                                            verify_timeout=8, read_current=True)),
            "pause": _plan(fleet, inventory, MiningControl(mining=False), max_fail=0.5),
        }
        dry = plans["pools"]
        for planned in dry.miners:  # the dry run read each supporting miner's pools as the simulator has them
            if planned.skip_reason is None:
                current = [(p["url"], p["username"]) for g in planned.current for p in g["pools"]]
                assert current == _pools_of(fleet.miners[planned.ip])[: len(current)], planned.ip
        for name, plan in plans.items():
            skipped = {m.ip: m.skip_reason for m in plan.miners if m.skip_reason}
            assert all("cannot do this control" in (reason or "") for reason in skipped.values()), skipped
            final = rollouts.run(rollouts.create(plan), timeout=300)
            assert final.status is RolloutStatus.DONE, (name, final)
            ledger = rollouts.ledger.miners(final.rollout_id)
            for ip, entry in ledger.items():
                miner = fleet.miners[ip]
                if ip in skipped:
                    assert entry["state"] == MinerStep.SKIPPED, (name, miner.family)
                    continue
                assert entry["state"] == MinerStep.VERIFIED, (name, miner.family, entry.get("detail"))
                if name == "pools":
                    assert _pools_of(miner)[:2] == _desired_pools(entry)[:2], miner.family
                else:
                    assert miner.state.mining is False, miner.family
            done = {fleet.miners[ip].family for ip, e in ledger.items() if e["state"] == MinerStep.VERIFIED}
            assert set(SIM_FAMILIES) - done == without[name], name
