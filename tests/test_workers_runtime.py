"""What a worker's pool process keeps between scan chunks (`workers.runtime`): one event loop and one Redis
client, cleaned after each chunk and closed at the process's end; and what a finished chunk refreshes in
Redis. Real parts: uvloop, a private redis-server, Celery worker processes, the simulator."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from fleet.plan import plan_chunks
from fleet.scans import new_scan_id
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions
from fleet.store import ChunkState, ScanStore, chunk_key, miners_key, scan_key, ttl_refresh_seconds, worker_key
from orchestrator.local import stop_processes
from orchestrator.redis_server import EmbeddedRedis
from orchestrator.watch import Orchestrator
from tests.conftest import lo
from workers.runtime import ProcessLoop
from workers.tasks import scan_chunk_async

EMPTY = lo("127.61.0.0/22")  # nothing listens here: four chunks that end at once
FLEET = lo("127.63.0.0/22")
MINERS = 40


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as embedded:
        yield embedded


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, object]]]:
    inventory = tmp_path_factory.mktemp("runtime") / "fleet.json"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "sim", "--subnet", FLEET, "--count",
                                str(MINERS), "--seed", "5", "--inventory", str(inventory)])
    try:
        deadline = time.monotonic() + 90
        while not inventory.exists():
            assert process.poll() is None, "the simulator died at start"
            assert time.monotonic() < deadline, "the simulator did not come up"
            time.sleep(0.1)
        yield json.loads(inventory.read_text())
    finally:
        stop_processes([process])


# ----- the loop kept between chunks ---------------------------------------------------------------------
def test_the_loop_is_kept_between_runs_and_what_a_run_leaves_running_is_cancelled() -> None:
    loops = ProcessLoop()
    ended: list[str] = []

    async def leaves_a_task() -> asyncio.AbstractEventLoop:
        async def forever() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                ended.append("cancelled")

        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    try:
        first = loops.run(leaves_a_task())
        assert ended == ["cancelled"], "the task the run left behind still runs"
        second = loops.run(leaves_a_task())
        assert second is first and not first.is_closed()
        assert type(first).__module__.startswith("uvloop")
    finally:
        loops.close()
    assert first.is_closed()
    again = ProcessLoop()
    try:
        assert again.run(leaves_a_task()) is not first  # closed: a later run starts afresh
    finally:
        again.close()


def test_a_failed_run_leaves_the_loop_usable_with_a_new_redis_client(server: EmbeddedRedis) -> None:
    loops = ProcessLoop()

    async def ping() -> tuple[object, bool]:
        client = loops.redis(server.url)
        return client, bool(await client.ping())

    async def fails() -> None:
        await loops.redis(server.url).ping()
        raise RuntimeError("a chunk that failed")

    try:
        client, answered = loops.run(ping())
        assert answered and loops.run(ping())[0] is client  # one client for the process
        with pytest.raises(RuntimeError, match="a chunk that failed"):
            loops.run(fails())
        fresh, answered = loops.run(ping())
        assert answered and fresh is not client
    finally:
        loops.close()


def test_a_forked_process_makes_its_own_loop() -> None:
    loops = ProcessLoop()

    async def current() -> int:
        return id(asyncio.get_running_loop())

    try:
        parent = loops.run(current())
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the parent's loop must not be reused (its selector is the parent's)
            code = 1
            try:
                child = loops.run(current())
                os.write(writer, b"own" if child != parent else b"same")
                loops.close()
                code = 0
            finally:
                os._exit(code)
        os.close(writer)
        _, status = os.waitpid(pid, 0)
        answer = os.read(reader, 16)
        os.close(reader)
        assert os.waitstatus_to_exitcode(status) == 0 and answer == b"own"
        assert loops.run(current()) == parent  # the parent's loop is untouched
    finally:
        loops.close()


# ----- what a finished chunk refreshes -------------------------------------------------------------------
def test_a_chunk_refreshes_the_keys_it_wrote_and_every_key_once_the_scan_hash_ran_down(server: EmbeddedRedis) -> None:
    ttl = 3600
    settings = FleetSettings(redis_url=server.url, result_ttl_hours=ttl / 3600)
    assert settings.result_ttl_seconds == ttl
    store = ScanStore.from_url(server.url, ttl)
    chunks = plan_chunks([EMPTY], prefix=24)
    scan_id = new_scan_id()
    options = DiscoveryOptions(concurrency=256, connect_timeout=0.5)
    store.create_scan(scan_id, targets=[EMPTY], site=None, chunk_prefix=24,
                      chunks=[(c.label, c.first, c.last, c.addresses) for c in chunks], options=options.model_dump())
    client = redis.Redis.from_url(server.url)
    ran_down = ttl - ttl_refresh_seconds(ttl) // 2  # less than a refresh period gone: no round of every key
    for key in client.scan_iter(f"{scan_key(scan_id)}*"):
        client.expire(key, ran_down)
    loops = ProcessLoop()

    def run_chunk(index: int) -> None:
        chunk = chunks[index]

        async def run() -> None:
            await scan_chunk_async(settings, "runtime-test", scan_id, index, chunk.first, chunk.last,
                                   options.model_dump(), chunk.label, task_id=f"t{index}",
                                   client=loops.redis(server.url))

        loops.run(run())
        assert client.hget(chunk_key(scan_id, index), "state") == ChunkState.DONE.value.encode()

    try:
        run_chunk(0)
        assert client.ttl(chunk_key(scan_id, 0)) > ran_down, "the chunk's own hash was not refreshed"
        assert client.ttl(chunk_key(scan_id, 1)) <= ran_down, "a queued chunk's hash was refreshed by another's end"
        assert client.ttl(scan_key(scan_id)) <= ran_down
        client.expire(scan_key(scan_id), ttl - 2 * ttl_refresh_seconds(ttl))  # a refresh period and more gone
        client.expire(chunk_key(scan_id, 3), ttl - 2 * ttl_refresh_seconds(ttl))
        run_chunk(1)
        for key in (scan_key(scan_id), chunk_key(scan_id, 2), chunk_key(scan_id, 3)):
            assert client.ttl(key) > ran_down, f"{key} was not refreshed once the scan's hash ran down"
        run_chunk(2)
        run_chunk(3)  # the last chunk closes the scan, which refreshes every key
        assert client.hget(scan_key(scan_id), "status") == b"done"
        assert client.hlen(miners_key(scan_id)) == 0
        for key in client.scan_iter(f"{scan_key(scan_id)}*"):
            assert client.ttl(key) > ran_down, key
    finally:
        loops.close()


# ----- real workers whose pool processes are replaced after every chunk --------------------------------
def test_pool_processes_replaced_after_each_chunk_lose_no_miner(server: EmbeddedRedis,
                                                               fleet: list[dict[str, object]]) -> None:
    """`--max-tasks-per-child 1`: every chunk runs in a new pool process, whose loop is made on its chunk and
    closed when it ends; no chunk runs twice and every miner is read."""
    name = f"maxtasks-{os.getpid()}"
    env = {**os.environ, "ASICFLEET_REDIS_URL": server.url, "ASICFLEET_WORKER_LIVENESS_SECONDS": "3"}
    env.pop("ASICFLEET_BROKER_URL", None)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--queues",
                               "asicfleet.default", "--concurrency", "1", "--max-tasks-per-child", "1", "--hostname",
                               f"{name}@%h", "--loglevel", "warning", "--without-gossip", "--without-mingle",
                               "--prefetch-multiplier", "1"], env=env, stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis.from_url(server.url)
        deadline = time.monotonic() + 90
        while not client.exists(worker_key(f"{name}@{socket.gethostname()}")):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker did not come up"
            time.sleep(0.2)
        ports = fleet[0]["ports"]
        assert isinstance(ports, dict)
        options = DiscoveryOptions(concurrency=500, ports=",".join(f"{k}={v}" for k, v in ports.items()))
        orchestrator = Orchestrator(FleetSettings(redis_url=server.url, worker_liveness_seconds=3.0))
        scan_id = orchestrator.start_scan([FLEET], chunk_prefix=None, options=options)  # auto: /24 here
        final = orchestrator.watch(scan_id, timeout=180)
    finally:
        stop_processes([worker])
    assert final.finished and final.chunks_done == 4 and final.chunks_failed == 0 and final.requeued == 0
    assert {str(m.ip) for m in orchestrator.inventory(scan_id)} == {m["ip"] for m in fleet}
    assert orchestrator.errors(scan_id) == {}
    assert [c.attempts for c in orchestrator.store.chunks(scan_id, 4)] == [1, 1, 1, 1]


# ----- chunk size from the range and the workers -------------------------------------------------------
def test_auto_chunks_give_each_worker_sixteen_and_are_never_past_a_slash16_or_under_a_slash24() -> None:
    from fleet.scans import auto_chunk_prefix

    assert auto_chunk_prefix(["10.0.0.0/16"], workers=1) == 20  # 16 chunks of 4,096 addresses
    assert auto_chunk_prefix(["10.0.0.0/16"], workers=0) == 20  # none beating yet: one assumed
    assert auto_chunk_prefix(["10.0.0.0/16"], workers=2) == 21
    assert auto_chunk_prefix(["10.0.0.0/16"], workers=64) == 24  # 1,024 wanted: /24 is the smallest chunk
    assert auto_chunk_prefix(["10.0.0.0/22"], workers=1) == 24
    assert auto_chunk_prefix(["10.0.0.0/12"], workers=1) == 16
    # an exclusion splits blocks: the chunks counted are those planned, not the range's size over the prefix
    assert auto_chunk_prefix(["10.0.0.0/16"], exclude=["10.0.0.0/17"], workers=1) == 21
