"""Continuous monitoring with real parts: the simulator, a private Redis, and Celery workers with beat.

A scan fills a site's known inventory; beat then plans collection rounds every two seconds on the site's
queue, and the site's workers read the known miners (no rescan). A miner switched off in the simulator
turns offline with the time it was last seen, and comes back when switched on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from asicfleet.sim import SimFleet
from fleet import monitor
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions, SiteConfig, load_sites, site_queue
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.watch import Orchestrator
from tests.conftest import ThreadedFleet, lo

SITE = "mon"
SUBNET = lo("127.215.0.0/24")
LIVENESS = "3"
INTERVAL = "2"  # seconds between rounds (a farm's shortest is a minute)


@pytest.fixture(scope="module")
def fleet() -> Iterator[SimFleet]:
    sim = SimFleet.generate(SUBNET, 6, ["antminer", "whatsminer", "braiins", "avalon", "bitaxe"], seed=5)
    threaded = ThreadedFleet(sim)
    with threaded as served:
        _THREADS[id(served)] = threaded
        yield served


def _options(fleet: SimFleet) -> DiscoveryOptions:
    assert fleet.ports is not None
    # generous: on a loaded machine a healthy simulated miner must not time out and count as offline
    return DiscoveryOptions(ports=str(fleet.ports), read_timeout=4.0, identify_timeout=8.0, connect_timeout=1.0)


@pytest.fixture(scope="module")
def sites_file(fleet: SimFleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sites") / "sites.yaml"
    options = _options(fleet)
    path.write_text(f"sites:\n  {SITE}:\n    ranges: ['{SUBNET}']\n    collect_every_minutes: 1\n"
                    f"    collect_batch_size: 4\n    discovery: {options.model_dump_json()}\n")
    return path


@pytest.fixture(scope="module")
def collecting(redis_url: str, sites_file: Path) -> Iterator[None]:
    """Two workers of the site, one of them running beat: they scan the site, then collect it."""
    env = {"ASICFLEET_WORKER_LIVENESS_SECONDS": LIVENESS, "ASICFLEET_SITES_FILE": str(sites_file),
           "ASICFLEET_COLLECT_INTERVAL_SECONDS": INTERVAL}
    with_beat, names = start_workers(redis_url, 1, SITE, beat=True, extra_env=env)
    plain, more = start_workers(redis_url, 1, SITE, extra_env=env)
    try:
        wait_for_workers(redis_url, names + more, with_beat + plain)
        yield
    finally:
        stop_processes(with_beat + plain)


@pytest.fixture(scope="module")
def scanned(redis_url: str, fleet: SimFleet, collecting: None) -> str:
    """A scan of the site, whose miners the monitor then knows (rounds before it ends find nothing to read)."""
    orchestrator = Orchestrator(FleetSettings(redis_url=redis_url, worker_liveness_seconds=float(LIVENESS)))
    scan_id = orchestrator.start_scan([SUBNET], site=SITE, options=_options(fleet))
    final = orchestrator.watch(scan_id, timeout=60)
    assert final.miners == len(fleet.miners)
    return scan_id


def _round_after(client: redis.Redis, moment: float, timeout: float = 20.0) -> monitor.RoundInfo:
    """The first round of the site that started after `moment` and finished."""
    deadline = time.monotonic() + timeout
    while True:
        info = monitor.last_round(client, SITE)
        if info is not None and info.finished is not None and info.started > moment:
            return info
        assert time.monotonic() < deadline, f"no round started after {moment} finished within {timeout:g}s: {info}"
        time.sleep(0.2)


def _switch(fleet: SimFleet, ip: str, on: bool) -> None:
    _THREADS[id(fleet)].run(fleet.switch_on(ip) if on else fleet.switch_off(ip))


_THREADS: dict[int, ThreadedFleet] = {}


def test_a_finished_scan_fills_the_sites_inventory(client: redis.Redis, fleet: SimFleet, scanned: str) -> None:
    assert monitor.sites_known(client) == [SITE]
    states = monitor.known_miners(client, SITE)
    assert sorted(s.ip for s in states) == sorted(fleet.miners)
    for state in states:
        assert state.online and state.data is not None and state.last_seen is not None
        assert (state.make, state.model) == (state.data.make, state.data.model)
    assert monitor.site_totals(client, SITE).online == len(fleet.miners)


def test_rounds_read_the_known_miners_and_keep_per_board_history(
        client: redis.Redis, fleet: SimFleet, scanned: str) -> None:
    begun = time.time()
    requests_before = fleet.request_count()
    first = _round_after(client, begun)
    second = _round_after(client, first.started)
    assert first.miners == second.miners == len(fleet.miners)
    assert first.batches == second.batches == 2  # 6 miners in batches of 4
    assert second.started - first.started >= 1.0, "rounds ran back to back, not on the schedule"
    assert fleet.request_count() > requests_before
    # only the known miners were asked: nothing was scanned (every request went to a simulated miner)
    for ip in fleet.miners:
        history = monitor.miner_history(client, ip, begun)
        assert len(history) >= 2, ip
        state = monitor.miner_state(client, ip)
        assert state is not None and state.data is not None and state.online
        assert state.last_seen is not None and state.last_seen >= first.started
        latest = history[-1]
        assert latest.online and latest.hashrate is not None and latest.hashrate > 0
        assert len(latest.boards) == len(state.data.hashboards) >= 1
        for board in latest.boards:
            assert board.hashrate is not None and board.hashrate > 0
            assert board.working_chips is not None and board.expected_chips is not None
        assert len(latest.fans) == len(state.data.fans)
        assert latest.active_pool is not None
    site = monitor.site_history(client, SITE, begun)
    assert len(site) >= 2 and all(s.online == len(fleet.miners) and s.hashrate > 0 for s in site)
    entries = client.xrange(monitor.rounds_key())
    assert len(entries) >= 2 and entries[-1][1][b"site"] == SITE.encode()


def test_a_switched_off_miner_goes_offline_with_its_last_seen(
        client: redis.Redis, fleet: SimFleet, scanned: str) -> None:
    victim = sorted(fleet.miners)[1]
    before = _round_after(client, time.time())
    seen_before = monitor.miner_state(client, victim)
    assert seen_before is not None and seen_before.online and seen_before.last_seen is not None
    switched_at = time.time()
    _switch(fleet, victim, on=False)
    try:
        after = _round_after(client, switched_at)
        state = monitor.miner_state(client, victim)
        assert state is not None and not state.online
        assert state.offline_since is not None and state.offline_since >= switched_at
        assert state.last_seen is not None and before.started <= state.last_seen < switched_at
        assert state.error and state.data is not None  # the last good reading is kept
        assert monitor.miner_history(client, victim, switched_at)[-1].online is False
        totals = monitor.site_totals(client, SITE)
        assert (totals.online, totals.offline) == (len(fleet.miners) - 1, 1)
        assert totals.hashrate < totals.expected_hashrate
        offline_since = state.offline_since
        _round_after(client, after.started)
        still = monitor.miner_state(client, victim)
        assert still is not None and still.offline_since == offline_since  # the first failure is kept
    finally:
        _switch(fleet, victim, on=True)
    back_at = time.time()
    _round_after(client, back_at)
    state = monitor.miner_state(client, victim)
    assert state is not None and state.online and state.offline_since is None
    assert state.last_seen is not None and state.last_seen >= back_at


def test_beat_sends_each_sites_collection_to_its_queue(sites_file: Path) -> None:
    from workers.app import beat_schedule

    schedule = beat_schedule(FleetSettings(sites_file=sites_file))
    entry = schedule[f"collect-{SITE}"]
    assert entry["task"] == "asicfleet.monitor.collect_site" and entry["kwargs"] == {"site": SITE}
    assert entry["options"]["queue"] == site_queue(SITE) and entry["schedule"] == 60
    fast = beat_schedule(FleetSettings(sites_file=sites_file, collect_interval_seconds=2))
    assert fast[f"collect-{SITE}"]["schedule"] == 2
    assert load_sites(sites_file).sites[SITE].collect_every_minutes == 1
    with pytest.raises(ValueError):
        SiteConfig.model_validate({"ranges": ["10.0.0.0/24"], "collect_every_minutes": 0.5})


def test_hooks_run_after_the_round_with_the_sites_miners(redis_url: str, client: redis.Redis, fleet: SimFleet,
                                                        scanned: str) -> None:
    from workers import monitor_tasks

    seen: list[tuple[str, list[str]]] = []

    def hook(r: redis.Redis, site: str, states: list[monitor.MinerState]) -> None:
        seen.append((site, sorted(s.ip for s in states if s.data is not None)))

    def broken(r: redis.Redis, site: str, states: list[monitor.MinerState]) -> None:
        raise RuntimeError("a hook that fails")

    site = "hooked"
    ips = sorted(fleet.miners)[:2]
    settings = FleetSettings(redis_url=redis_url)
    monitor.start_round(client, site, "r1", 1, len(ips), time.time())
    monitor.after_collection[:] = [broken, hook]
    monitor_tasks._handles.clear()
    before = fleet.request_count()
    try:
        result = monitor_tasks.collect(settings, site, "r1", ips, _options(fleet))
    finally:
        monitor.after_collection.clear()
    identified_and_read = fleet.request_count() - before
    assert result["closed_round"] and result["online"] == 2
    assert seen == [(site, ips)]
    assert monitor.last_round(client, site).finished is not None  # type: ignore[union-attr]
    # a redelivered batch of a closed round closes nothing again; it reads through the handles kept
    before = fleet.request_count()
    again = monitor_tasks.collect(settings, site, "r1", ips, _options(fleet))
    assert again["closed_round"] is False and again["online"] == 2
    assert 0 < fleet.request_count() - before < identified_and_read, "the kept handles were identified again"
    # a batch of a round given up (a newer one started) reads nothing
    monitor.start_round(client, site, "r2", 1, len(ips), time.time())
    before = fleet.request_count()
    assert "skipped" in monitor_tasks.collect(settings, site, "r1", ips, _options(fleet))
    assert fleet.request_count() == before


def test_site_history_downsamples_beyond_the_recent_day(client: redis.Redis) -> None:
    site = "rollup"
    now = time.time()
    start = now - 2 * 3600
    for minute in range(120):  # two hours of one-minute rounds, online count rising
        t = start + minute * 60
        monitor.record_site_sample(client, site, monitor.SiteSample(
            t=t, miners=10, online=minute % 10, offline=10 - minute % 10, hashrate=100.0 + minute,
            expected_hashrate=250.0, wattage=3000.0, efficiency=30.0))
    recent = monitor.site_history(client, site, now - 3 * 3600)
    assert len(recent) == 120 and abs(recent[0].t - start) < 0.1
    longer = monitor.site_history(client, site, now - 26 * 3600)  # beyond a day: 15-minute means before the roll
    buckets = [s for s in longer if s.t % monitor.SITE_BUCKET_SECONDS == 0]
    assert 7 <= len(buckets) <= 9
    assert all(b.hashrate >= 100.0 and b.miners == 10 for b in buckets)
    times = [s.t for s in longer]
    assert times == sorted(times) and len(longer) < 120


def test_closed_hours_compact_and_read_back_the_same(client: redis.Redis, scanned: str) -> None:
    """A day of one-minute samples of real readings: compacting closed hours keeps every sample and takes
    well under half the memory of the lists."""
    readings = [s.data for s in monitor.known_miners(client, SITE) if s.data is not None]
    assert readings
    ips = [f"10.9.0.{n}" for n in range(1, 6)]
    now = time.time()
    start = now - 24 * 3600 + 120
    pipe = client.pipeline(transaction=False)
    for index, ip in enumerate(ips):
        first = monitor.MinerSample.of(readings[index % len(readings)], start)
        for minute in range(24 * 60 - 2):
            sample = first.model_copy(update={"t": round(start + minute * 60, 1),
                                              "hashrate": (first.hashrate or 0.0) + minute % 7})  # none alike
            monitor.queue_sample(pipe, ip, sample)
    pipe.execute()

    def used() -> int:
        return sum(int(client.memory_usage(k, samples=0) or 0) for ip in ips
                   for k in client.scan_iter(match=f"{monitor.MON}:miner:{ip}:*"))

    before = monitor.miner_history(client, ips[0], start - 1)
    lists = used()
    current = int(now // 3600)
    for hour in range(int(start // 3600), current):
        assert monitor.compact_history(client, ips, hour) == len(ips)
    assert monitor.compact_history(client, ips, current - 1) == 0  # once per hour
    compacted = used()
    after = monitor.miner_history(client, ips[0], start - 1)
    assert len(after) == len(before) == 24 * 60 - 2 and after == before
    assert compacted < lists * 0.5, (compacted, lists)
    per_thousand_per_day_mib = compacted / len(ips) * 1000 / 2**20
    assert per_thousand_per_day_mib < 150
    # a late sample of a compacted hour merges on the next compaction
    late = monitor.MinerSample(t=start + 30, online=False)
    pipe = client.pipeline()
    monitor.queue_sample(pipe, ips[0], late)
    pipe.execute()
    assert monitor.compact_history(client, [ips[0]], int(late.t // 3600)) == 1
    assert len(monitor.miner_history(client, ips[0], start - 1)) == 24 * 60 - 1
