"""Redis outages with real parts: our own persistent redis-server (restarted on the same port and
directory, as a production Redis is), Celery worker processes, and the simulator. A scan and a rollout
are cut by a Redis restart, with and without the command line that started them, and each still ends
complete and closed, with nothing stuck and no manual resume."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from asicfleet.sim import Fault, SimFleet, SimMiner
from fleet.controls import PoolsControl, control_from_file_content, parse_control
from fleet.ledger import TERMINAL, MinerStep, RolloutStatus
from fleet.loop import run_async
from fleet.messaging import APPLY_BATCH, SCAN_CHUNK, create_app
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions, site_queue
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.redis_server import EmbeddedRedis
from orchestrator.rollouts import Rollouts
from orchestrator.targeting import plan_rollout, scan_targets
from tests.conftest import ThreadedFleet, lo

SCAN_RANGE = lo("127.150.0.0/18")  # 64 chunks of /24
ROLLOUT_RANGE = lo("127.151.0.0/22")
MINERS = 150
LIVENESS = "3"
DOWN_SECONDS = 8.0
ASICFLEET = [sys.executable, "-m", "orchestrator.cli"]


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(persist=True) as running:  # ours alone: restarting it never touches the shared Redis
        yield running


@pytest.fixture(scope="module")
def scan_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    inventory = tmp_path_factory.mktemp("outage") / "fleet.json"
    process = subprocess.Popen([*ASICFLEET, "sim", "--subnet", SCAN_RANGE, "--count", str(MINERS), "--seed", "9",
                                "--inventory", str(inventory)])
    try:
        deadline = time.monotonic() + 90
        while not inventory.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the simulator did not come up"
            time.sleep(0.1)
        yield json.loads(inventory.read_text())
    finally:
        stop_processes([process])


@pytest.fixture(scope="module")
def workers(server: EmbeddedRedis) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes, names = start_workers(server.url, 2, None, extra_env={"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
    wait_for_workers(server.url, names, processes)
    yield processes
    stop_processes(processes)


def _ports(fleet: list[dict[str, Any]]) -> str:
    return ",".join(f"{k}={v}" for k, v in fleet[0]["ports"].items())


def _env(server: EmbeddedRedis) -> dict[str, str]:
    env = {**os.environ, "ASICFLEET_REDIS_URL": server.url, "ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS}
    env.pop("ASICFLEET_BROKER_URL", None)
    return env


def _wait_until(check: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.ConnectionError:
            pass  # Redis restarting
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


def _newest_scan(client: redis.Redis) -> str:
    return str(client.zrange("asicfleet:scans", -1, -1)[0])


def _assert_scan_complete(client: redis.Redis, scan_id: str, fleet: list[dict[str, Any]]) -> None:
    record = client.hgetall(f"asicfleet:scan:{scan_id}")
    assert record["status"] == "done", record
    chunks = [client.hgetall(f"asicfleet:scan:{scan_id}:chunk:{n}") for n in range(int(record["total_chunks"]))]
    stuck = {n: c["state"] for n, c in enumerate(chunks) if c["state"] != "done"}
    assert not stuck, f"chunks not done: {stuck}"
    assert set(client.hkeys(f"asicfleet:scan:{scan_id}:miners")) == {m["ip"] for m in fleet}


def _started_chunks(client: redis.Redis, scan_id: str) -> int:
    return int(client.scard(f"asicfleet:scan:{scan_id}:finished"))


def _all_sent(client: redis.Redis, scan_id: str) -> bool:
    """Every chunk's message is recorded as handed to the broker (on a loaded machine the command may still be
    queueing while the first chunks end)."""
    total = int(client.hget(f"asicfleet:scan:{scan_id}", "total_chunks") or 0)
    return total > 0 and all(float(client.hget(f"asicfleet:scan:{scan_id}:chunk:{n}", "sent_at") or 0) > 0
                             for n in range(total))


@pytest.mark.usefixtures("workers")
def test_a_redis_restart_mid_scan_loses_nothing_and_the_watching_command_finishes(
        server: EmbeddedRedis, scan_fleet: list[dict[str, Any]]) -> None:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    before = client.zcard("asicfleet:scans")
    scan = subprocess.Popen([*ASICFLEET, "scan", SCAN_RANGE, "--distributed", "--json", "--no-progress",
                             "--ports", _ports(scan_fleet)], env=_env(server), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_until(lambda: client.zcard("asicfleet:scans") > before, 60, "the scan was not recorded")
        scan_id = _newest_scan(client)
        _wait_until(lambda: _started_chunks(client, scan_id) >= 3, 120, "no chunk ended")
        assert _started_chunks(client, scan_id) < 64, "the scan ended before Redis could be restarted"
        server.restart(DOWN_SECONDS)
        out, err = scan.communicate(timeout=400)
    finally:
        if scan.poll() is None:
            scan.kill()
    assert scan.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    errors = {line["ip"]: line.get("error") for line in lines if line.get("error")}
    assert not errors, f"{len(errors)} error lines, e.g. {list(errors.items())[:5]}"
    assert {line["ip"] for line in lines} == {m["ip"] for m in scan_fleet}
    client = redis.Redis.from_url(server.url, decode_responses=True)
    _assert_scan_complete(client, scan_id, scan_fleet)


@pytest.mark.usefixtures("workers")
@pytest.mark.timeout(600)  # its own waits (60 + 120 + 400 s) must not be cut by the suite's 300 s
def test_a_scan_whose_command_was_killed_closes_itself_after_a_redis_restart(
        server: EmbeddedRedis, scan_fleet: list[dict[str, Any]]) -> None:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    before = client.zcard("asicfleet:scans")
    scan = subprocess.Popen([*ASICFLEET, "scan", SCAN_RANGE, "--distributed", "--no-progress",
                             "--ports", _ports(scan_fleet)], env=_env(server), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_until(lambda: client.zcard("asicfleet:scans") > before, 60, "the scan was not recorded")
        scan_id = _newest_scan(client)
        _wait_until(lambda: _started_chunks(client, scan_id) >= 3, 120, "no chunk ended")
    finally:
        scan.send_signal(signal.SIGKILL)  # the orchestrator goes; nobody watches the scan any more
        scan.wait()
    assert _started_chunks(client, scan_id) < 64, "the scan ended before Redis could be restarted"
    server.restart(DOWN_SECONDS)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    _wait_until(lambda: client.hget(f"asicfleet:scan:{scan_id}", "status") != "running", 400,
                "the scan was never closed")
    _assert_scan_complete(client, scan_id, scan_fleet)

    # a stale delivery of a chunk that is done changes nothing
    chunk = client.hgetall(f"asicfleet:scan:{scan_id}:chunk:0")
    app = create_app(FleetSettings(redis_url=server.url))
    app.send_task(SCAN_CHUNK, kwargs={"scan_id": scan_id, "chunk": 0, "first": chunk["first"], "last": chunk["last"],
                                      "label": chunk["label"], "site": None, "options": {}})
    time.sleep(3)
    assert client.hgetall(f"asicfleet:scan:{scan_id}:chunk:0") == chunk


# a consumer takes one message as a worker's does (into kombu's `unacked` hash) and dies before the task
# starts: what a worker does with a prefetched task when its broker connection breaks
_TAKE_AND_DIE = """
import os, sys
from kombu import Connection
channel = Connection(sys.argv[1]).channel()
message = channel.basic_get(sys.argv[2], no_ack=False)
print(message.headers["id"] if message is not None else "", flush=True)
os._exit(0)
"""


@pytest.mark.usefixtures("workers")  # their reapers judge every running scan, whatever its site
def test_a_chunk_message_a_worker_took_and_dropped_is_sent_again(server: EmbeddedRedis,
                                                                 scan_fleet: list[dict[str, Any]]) -> None:
    target = lo("127.150.0.0/23")
    client = redis.Redis.from_url(server.url, decode_responses=True)
    scan = subprocess.run([*ASICFLEET, "scan", target, "--distributed", "--no-wait", "--site", "dropsite",
                           "--ports", _ports(scan_fleet)], env=_env(server), capture_output=True, text=True,
                          timeout=120)
    assert scan.returncode == 0, scan.stderr
    scan_id = scan.stdout.strip()
    queue = site_queue("dropsite")
    _wait_until(lambda: client.llen(queue) == 2, 30, "the two chunks were not queued")
    taken = subprocess.run([sys.executable, "-c", _TAKE_AND_DIE, server.url, queue], capture_output=True,
                           text=True, timeout=60, check=True).stdout.strip()
    assert taken and client.llen(queue) == 1
    chunks = {n: client.hgetall(f"asicfleet:scan:{scan_id}:chunk:{n}") for n in range(2)}
    dropped = next(n for n, c in chunks.items() if c["task_id"] == taken)
    _wait_until(lambda: client.hget(f"asicfleet:scan:{scan_id}:chunk:{dropped}", "task_id") != taken, 120,
                "the chunk whose message was dropped was never sent again")
    assert client.llen(queue) == 2  # its new message waits beside the other chunk's
    assert client.hget(f"asicfleet:scan:{scan_id}:chunk:{dropped}", "requeues") == "1"
    processes, names = start_workers(server.url, 1, "dropsite",
                                     extra_env={"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
    try:
        wait_for_workers(server.url, names, processes)
        _wait_until(lambda: client.hget(f"asicfleet:scan:{scan_id}", "status") != "running", 120,
                    "the scan never closed")
    finally:
        stop_processes(processes)
    assert client.hget(f"asicfleet:scan:{scan_id}", "status") == "done"
    network = ipaddress.ip_network(target)
    assert set(client.hkeys(f"asicfleet:scan:{scan_id}:miners")) == {
        m["ip"] for m in scan_fleet if ipaddress.ip_address(m["ip"]) in network}
    time.sleep(3 * float(LIVENESS))  # the reapers go on: the stale delivery in `unacked` is no cause to resend
    assert client.hget(f"asicfleet:scan:{scan_id}:chunk:{dropped}", "requeues") == "1"


# ----- rollouts -----------------------------------------------------------------------------------
POOL_WRITES = {"antminer": ("80:POST /cgi-bin/set_miner_conf.cgi",),
               # Braiins OS: REST from 25.07, a GraphQL mutation before
               "braiins": ("80:PUT /api/v1/pools/batch", "80:graphql bosminer.config.updateGroups"),
               "whatsminer": ("4028:update_pools", "4433:set.miner.pools"), "avalon": ("4028:setpool",),
               "bitaxe": ("80:PATCH /api/system",)}


def _writes(miner: SimMiner) -> int:
    return sum(miner.requests[key] for key in POOL_WRITES[miner.family])


def _desired(entry: dict[str, str]) -> list[tuple[str, str]]:
    control = parse_control(json.loads(entry["desired"]))
    assert isinstance(control, PoolsControl)
    return [(p.url, p.username) for g in control.groups for p in g.pools]


@pytest.mark.usefixtures("workers")  # their reapers move every running rollout on, whatever its site
def test_a_batch_message_a_worker_took_and_dropped_is_sent_again(server: EmbeddedRedis) -> None:
    sim = SimFleet.generate(lo("127.151.8.0/24"), 4, ["antminer", "whatsminer"], seed=7)
    with ThreadedFleet(sim) as fleet:
        assert fleet.ports is not None
        options = DiscoveryOptions(ports=str(fleet.ports), read_timeout=2.0, identify_timeout=4.0,
                                   connect_timeout=0.5)
        inventory = run_async(scan_targets(list(fleet.miners), options))
        control = control_from_file_content(
            {"pools": [{"url": "stratum+tcp://dropped.example:3333", "username": "d.{ip}", "password": "x"}]})
        plan = run_async(plan_rollout(control, inventory, options=options, batch_size=10, canary=0,
                                      pause_seconds=0.0, max_fail=0.1, verify_timeout=15.0, site="dropbatch"))
        rollouts = Rollouts(FleetSettings(redis_url=server.url, worker_liveness_seconds=float(LIVENESS)))
        rollout_id = rollouts.create(plan)
        rollouts.start(rollout_id)
        client = redis.Redis.from_url(server.url, decode_responses=True)
        queue = site_queue("dropbatch")
        _wait_until(lambda: client.llen(queue) == 1, 30, "the batch was not queued")
        taken = subprocess.run([sys.executable, "-c", _TAKE_AND_DIE, server.url, queue], capture_output=True,
                               text=True, timeout=60, check=True).stdout.strip()
        batch = f"asicfleet:rollout:{rollout_id}:batch:0"
        assert taken and taken == client.hget(batch, "task_id") and client.llen(queue) == 0
        _wait_until(lambda: client.hget(batch, "task_id") != taken, 120,
                    "the batch whose message was dropped was never sent again")
        assert client.llen(queue) == 1
        processes, names = start_workers(server.url, 1, "dropbatch",
                                         extra_env={"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
        try:
            wait_for_workers(server.url, names, processes)
            _wait_until(lambda: client.hget(f"asicfleet:rollout:{rollout_id}", "status") != "running", 120,
                        "the rollout never closed")
        finally:
            stop_processes(processes)
        assert client.hget(f"asicfleet:rollout:{rollout_id}", "status") == "done"
        for ip, miner in fleet.miners.items():
            assert client.hget(f"asicfleet:rollout:{rollout_id}:miner:{ip}", "state") == "verified"
            assert next((p.url, p.username) for g in miner.state.pools for p in g.pools) == \
                ("stratum+tcp://dropped.example:3333", f"d.{ip.replace('.', '_')}")


@pytest.mark.usefixtures("workers")
def test_a_rollout_nobody_follows_survives_a_redis_restart_and_closes(server: EmbeddedRedis) -> None:
    sim = SimFleet.generate(ROLLOUT_RANGE, 40, ["antminer", "braiins", "whatsminer", "avalon", "bitaxe"], seed=5)
    with ThreadedFleet(sim) as fleet:
        assert fleet.ports is not None
        options = DiscoveryOptions(ports=str(fleet.ports), read_timeout=2.0, identify_timeout=4.0,
                                   connect_timeout=0.5)
        inventory = run_async(scan_targets(list(fleet.miners), options))
        control = control_from_file_content(
            {"pools": [{"url": "stratum+tcp://outage.example:3333", "username": "o.{ip}", "password": "x"}]})
        plan = run_async(plan_rollout(control, inventory, options=options, batch_size=10, canary=0,
                                      pause_seconds=0.0, max_fail=0.1, verify_timeout=15.0))
        for miner in fleet.miners.values():  # slow, so that batches are in flight when Redis goes
            miner.fault = Fault.SLOW
            miner.slow_seconds = 0.3
        before = {ip: _writes(m) for ip, m in fleet.miners.items()}
        rollouts = Rollouts(FleetSettings(redis_url=server.url, worker_liveness_seconds=float(LIVENESS)))
        rollout_id = rollouts.create(plan)
        rollouts.start(rollout_id)  # and nobody follows it: the workers carry it on
        client = redis.Redis.from_url(server.url, decode_responses=True)
        _wait_until(lambda: any(client.hget(f"asicfleet:rollout:{rollout_id}:miner:{ip}", "state") == "verified"
                                for ip in fleet.miners), 120, "no miner was changed")
        assert client.hget(f"asicfleet:rollout:{rollout_id}", "status") == "running"
        server.restart(DOWN_SECONDS)
        client = redis.Redis.from_url(server.url, decode_responses=True)
        _wait_until(lambda: client.hget(f"asicfleet:rollout:{rollout_id}", "status") != "running", 400,
                    "the rollout was never closed")
        for miner in fleet.miners.values():
            miner.fault = Fault.NONE
        rollouts = Rollouts(FleetSettings(redis_url=server.url))
        assert rollouts.ledger.info(rollout_id)["status"] == RolloutStatus.DONE
        ledger = rollouts.ledger.miners(rollout_id)
        assert len(ledger) == len(plan.miners)
        assert all(entry["state"] in TERMINAL for entry in ledger.values()), ledger
        assert not [ip for ip, e in ledger.items() if e["state"] == MinerStep.FAILED]
        batches = int(rollouts.ledger.info(rollout_id)["batches"])
        assert all(rollouts.ledger.batch(rollout_id, n)["state"] == "done" for n in range(batches))
        for ip, entry in ledger.items():
            sim_miner = fleet.miners[ip]
            expected = len(_desired(entry)) if sim_miner.family == "avalon" else 1
            sent = _writes(sim_miner) - before[ip]
            assert sent <= expected, f"{ip} ({sim_miner.family}) got the change {sent} times"
            if entry["state"] == MinerStep.VERIFIED:
                pools = [(p.url, p.username) for g in sim_miner.state.pools for p in g.pools]
                assert pools[: len(_desired(entry))] == _desired(entry), ip

        # a stale delivery of a finished batch (a message redelivered an hour later) rewrites nothing
        batch = rollouts.ledger.batch(rollout_id, 0)
        writes = {ip: _writes(m) for ip, m in fleet.miners.items()}
        rollouts.app.send_task(APPLY_BATCH, kwargs={"rollout_id": rollout_id, "batch": 0,
                                                    "ips": json.loads(batch["ips"]), "site": None})
        time.sleep(3)
        assert rollouts.ledger.batch(rollout_id, 0) == batch
        assert {ip: _writes(m) for ip, m in fleet.miners.items()} == writes


# ----- a live worker that no longer runs its chunk; a network blip; an outage past the budget ----------
SLOW_RANGE = lo("127.155.0.0/22")


@pytest.fixture(scope="module")
def slow_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    """Miners that answer slowly, so that a chunk runs for several seconds."""
    inventory = tmp_path_factory.mktemp("slow") / "fleet.json"
    process = subprocess.Popen([*ASICFLEET, "sim", "--subnet", SLOW_RANGE, "--count", "24", "--seed", "3",
                                "--faults", "slow=24", "--slow-seconds", "1.5", "--inventory", str(inventory)])
    try:
        deadline = time.monotonic() + 90
        while not inventory.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the simulator did not come up"
            time.sleep(0.1)
        yield json.loads(inventory.read_text())
    finally:
        stop_processes([process])


def _pool_children(pid: int) -> list[int]:
    return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]


def test_a_chunk_its_live_worker_no_longer_runs_is_taken_over(server: EmbeddedRedis,
                                                              slow_fleet: list[dict[str, Any]]) -> None:
    processes, names = start_workers(server.url, 2, "leasesite",
                                     extra_env={"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
    frozen: list[int] = []
    try:
        wait_for_workers(server.url, names, processes)
        by_name = dict(zip(names, processes, strict=True))
        client = redis.Redis.from_url(server.url, decode_responses=True)
        scan = subprocess.run([*ASICFLEET, "scan", SLOW_RANGE, "--distributed", "--no-wait", "--site", "leasesite",
                               "--ports", _ports(slow_fleet), "--read-timeout", "5"], env=_env(server),
                              capture_output=True, text=True, timeout=120)
        assert scan.returncode == 0, scan.stderr
        scan_id = scan.stdout.strip()
        running: dict[str, str] = {}

        def one_running() -> bool:
            for n in range(4):
                chunk = client.hgetall(f"asicfleet:scan:{scan_id}:chunk:{n}")
                if chunk.get("state") == "running":
                    running.update(chunk, index=str(n))
                    return True
            return False

        _wait_until(one_running, 60, "no chunk ran")
        holder = running["worker"].split("@")[0]
        # the pool process stops (as a task a worker dropped): its worker still beats, the chunk's lease lapses
        frozen = _pool_children(by_name[holder].pid)
        for child in frozen:
            os.kill(child, signal.SIGSTOP)
        assert client.exists(f"asicfleet:worker:{running['worker']}")
        _wait_until(lambda: client.hget(f"asicfleet:scan:{scan_id}", "status") != "running", 240,
                    "the scan never closed while its chunk's attempt was frozen")
        assert client.exists(f"asicfleet:worker:{running['worker']}"), "the frozen chunk's worker was alive"
        _assert_scan_complete(client, scan_id, slow_fleet)
        taken = client.hgetall(f"asicfleet:scan:{scan_id}:chunk:{running['index']}")
        assert int(taken.get("requeues", 0)) >= 1 and taken["worker"] != running["worker"], taken
        for child in frozen:  # the old attempt wakes, finds its lease taken, and stops without a write
            os.kill(child, signal.SIGCONT)
        frozen = []
        time.sleep(5)
        assert client.hgetall(f"asicfleet:scan:{scan_id}:chunk:{running['index']}") == taken
    finally:
        for child in frozen:
            os.kill(child, signal.SIGCONT)
        stop_processes(processes)


@pytest.mark.usefixtures("workers")
def test_a_network_blip_mid_scan_loses_nothing(server: EmbeddedRedis, scan_fleet: list[dict[str, Any]]) -> None:
    """Redis frozen (SIGSTOP) for a while: every connection hangs instead of failing, as in a network blip."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    before = client.zcard("asicfleet:scans")
    scan = subprocess.Popen([*ASICFLEET, "scan", SCAN_RANGE, "--distributed", "--json", "--no-progress",
                             "--ports", _ports(scan_fleet)], env=_env(server), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert server.process is not None
    try:
        _wait_until(lambda: client.zcard("asicfleet:scans") > before, 60, "the scan was not recorded")
        scan_id = _newest_scan(client)
        _wait_until(lambda: _started_chunks(client, scan_id) >= 3, 120, "no chunk ended")
        server.process.send_signal(signal.SIGSTOP)
        time.sleep(DOWN_SECONDS)
        server.process.send_signal(signal.SIGCONT)
        out, err = scan.communicate(timeout=400)
    finally:
        server.process.send_signal(signal.SIGCONT)
        if scan.poll() is None:
            scan.kill()
    assert scan.returncode == 0, err[-3000:]
    assert {json.loads(line)["ip"] for line in out.splitlines() if line.strip()} == {m["ip"] for m in scan_fleet}
    _assert_scan_complete(client, scan_id, scan_fleet)


def test_an_outage_past_the_budget_is_reported_and_the_workers_finish_later(
        scan_fleet: list[dict[str, Any]]) -> None:
    password = "outage-secret"
    with EmbeddedRedis(persist=True, password=password) as private:
        # one worker and /28 chunks (1,024): the scan must outlast the wait below, and 64 /24 chunks on two
        # workers whose chunks cost a few milliseconds each can end within it on a quiet machine
        processes, names = start_workers(private.url, 1, None,
                                         extra_env={"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS})
        try:
            wait_for_workers(private.url, names, processes)
            client = redis.Redis.from_url(private.url, decode_responses=True)
            scan = subprocess.Popen([*ASICFLEET, "scan", SCAN_RANGE, "--distributed", "--no-progress", "--chunk", "28",
                                     "--ports", _ports(scan_fleet)],
                                    env={**_env(private), "ASICFLEET_REDIS_RETRY_SECONDS": "3"},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                _wait_until(lambda: client.zcard("asicfleet:scans") > 0, 60, "the scan was not recorded")
                scan_id = _newest_scan(client)
                _wait_until(lambda: _started_chunks(client, scan_id) >= 3 and _all_sent(client, scan_id), 120,
                            "no chunk ended, or not every chunk was queued")
                time.sleep(2)  # the command watches the scan now (it reads its progress every 0.5 s)
                private.terminate()  # for longer than the command's budget, shorter than the workers' (60 s)
                _, err = scan.communicate(timeout=120)
            finally:
                if scan.poll() is None:
                    scan.kill()
            message = " ".join(err.split())
            assert scan.returncode == 1, message[-2000:]
            assert "Traceback" not in err and password not in err, message[-2000:]
            assert f"Redis at redis://:***@127.0.0.1:{private.port} did not answer for 3 s" in message, message
            assert f"Scan {scan_id} is not finished here" in message and "chunks were done" in message, message
            assert f"asicfleet scan --resume {scan_id}" in message, message
            time.sleep(DOWN_SECONDS)
            private.start()
            client = redis.Redis.from_url(private.url, decode_responses=True)
            _wait_until(lambda: client.hget(f"asicfleet:scan:{scan_id}", "status") != "running", 400,
                        "the workers did not finish the scan after Redis came back")
            _assert_scan_complete(client, scan_id, scan_fleet)
        finally:
            stop_processes(processes)


@pytest.mark.usefixtures("workers")
def test_chunks_recorded_but_never_sent_are_sent_by_the_workers(server: EmbeddedRedis,
                                                                scan_fleet: list[dict[str, Any]]) -> None:
    """The command line died (or lost Redis past its budget) after recording the scan, before its messages
    reached the broker: the workers' reaper sends them, and the scan ends complete."""
    import ipaddress

    from fleet.plan import plan_chunks
    from fleet.scans import new_scan_id
    from fleet.store import ScanStore

    part = str(next(ipaddress.ip_network(SCAN_RANGE).subnets(new_prefix=22)))
    options = DiscoveryOptions(ports=_ports(scan_fleet))
    store = ScanStore.from_url(server.url, 3600)
    scan_id = new_scan_id()
    chunks = plan_chunks([part], prefix=24)
    store.create_scan(scan_id, targets=[part], site=None, chunk_prefix=24,
                      chunks=[(c.label, c.first, c.last, c.addresses) for c in chunks], options=options.model_dump())
    client = redis.Redis.from_url(server.url, decode_responses=True)
    _wait_until(lambda: client.hget(f"asicfleet:scan:{scan_id}", "status") != "running", 120,
                "the unsent chunks were never sent")
    expected = [m for m in scan_fleet if ipaddress.ip_address(m["ip"]) in ipaddress.ip_network(part)]
    assert expected, "no simulated miner in the range"
    _assert_scan_complete(client, scan_id, expected)
