"""The Prometheus exporter with real parts: simulated miners read by a real collection into a private Redis,
`asicfleet exporter` in its own process, and a real Prometheus (Debian's package) scraping it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from asicfleet.sim import SimFleet
from fleet import monitor
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions
from orchestrator.local import stop_processes
from tests.conftest import ThreadedFleet, debian_tool, lo

SITE = "exp"
SUBNET = lo("127.216.0.0/24")
EXPORTER_HOST = lo("127.216.1.1")
PROMETHEUS_HOST = lo("127.216.1.2")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def collected(redis_url: str, client: redis.Redis) -> Iterator[tuple[SimFleet, ThreadedFleet]]:
    """Five simulated miners read by one collection batch (the monitor's own code), one then switched off and
    read again, so that the state holds online and offline miners."""
    from workers import monitor_tasks

    sim = SimFleet.generate(SUBNET, 5, ["antminer", "whatsminer", "braiins", "avalon", "bitaxe"], seed=7)
    threaded = ThreadedFleet(sim)
    with threaded as fleet:
        assert fleet.ports is not None
        options = DiscoveryOptions(ports=str(fleet.ports), read_timeout=1.0, identify_timeout=3.0,
                                   connect_timeout=0.5)
        settings = FleetSettings(redis_url=redis_url)
        ips = sorted(fleet.miners)
        monitor.start_round(client, SITE, "r1", 1, len(ips), time.time())
        assert monitor_tasks.collect(settings, SITE, "r1", ips, options)["online"] == len(ips)
        threaded.run(fleet.switch_off(ips[-1]))
        monitor.start_round(client, SITE, "r2", 1, len(ips), time.time())
        assert monitor_tasks.collect(settings, SITE, "r2", ips, options)["online"] == len(ips) - 1
        yield fleet, threaded


@pytest.fixture(scope="module")
def exporter(redis_url: str, collected: object) -> Iterator[str]:
    port = _free_port(EXPORTER_HOST)
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "exporter", "--host", EXPORTER_HOST,
                                "--port", str(port)], env={**os.environ, "ASICFLEET_REDIS_URL": redis_url})
    url = f"http://{EXPORTER_HOST}:{port}/metrics"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the exporter exited at start"
            try:
                httpx.get(url, timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the exporter did not answer within 30 s"
                time.sleep(0.2)
        yield url
    finally:
        stop_processes([process])


def _series(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def test_gauges_per_miner_and_board_with_bounded_labels(exporter: str, client: redis.Redis,
                                                        collected: tuple[SimFleet, ThreadedFleet]) -> None:
    fleet, _ = collected
    series = _series(exporter)
    states = {s.ip: s for s in monitor.known_miners(client, SITE)}
    offline = sorted(fleet.miners)[-1]
    up = {labels["ip"]: value for labels, value in series["asicfleet_miner_up"]}
    assert up == {ip: (0.0 if ip == offline else 1.0) for ip in fleet.miners}
    hashrate = {labels["ip"]: value for labels, value in series["asicfleet_miner_hashrate_ths"]}
    assert set(hashrate) == set(fleet.miners) - {offline}  # an offline miner's old reading is not exported
    for ip, value in hashrate.items():
        assert value == pytest.approx(states[ip].hashrate)
    boards = series["asicfleet_board_hashrate_ths"]
    expected_boards = sum(len(states[ip].data.hashboards) for ip in hashrate)  # type: ignore[union-attr]
    assert len(boards) == expected_boards and all(value > 0 for _, value in boards)
    for name, rows in series.items():
        for labels, _ in rows:
            assert set(labels) <= {"ip", "site", "make", "model", "board", "fan", "state"}, (name, labels)
    sites = {labels["state"]: value for labels, value in series["asicfleet_site_miners"]}
    assert sites == {"online": 4.0, "offline": 1.0}
    total = series["asicfleet_site_hashrate_ths"][0][1]
    assert total == pytest.approx(sum(hashrate.values()), rel=1e-3)
    last_seen = {labels["ip"]: value for labels, value in series["asicfleet_miner_last_seen_timestamp_seconds"]}
    assert last_seen[offline] == pytest.approx(states[offline].last_seen)


def _prometheus_or_skip() -> str:
    return debian_tool(PROMETHEUS, "prometheus", "the scrape test")


def test_a_real_prometheus_scrapes_the_exporter(exporter: str, tmp_path: Path, client: redis.Redis,
                                                collected: tuple[SimFleet, ThreadedFleet]) -> None:
    binary = _prometheus_or_skip()
    target = exporter.removeprefix("http://").removesuffix("/metrics")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: asicfleet\n"
                      f"    static_configs:\n      - targets: ['{target}']\n")
    port = _free_port(PROMETHEUS_HOST)
    api = f"http://{PROMETHEUS_HOST}:{port}/api/v1"
    process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                f"--web.listen-address={PROMETHEUS_HOST}:{port}", "--log.level=warn"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fleet, _ = collected
    states = {s.ip: s for s in monitor.known_miners(client, SITE)}
    online = [ip for ip, s in states.items() if s.online]
    boards = sum(len(states[ip].data.hashboards) for ip in online)  # type: ignore[union-attr]
    try:
        deadline = time.monotonic() + 45
        result: list[dict[str, object]] = []
        while True:
            assert process.poll() is None, "prometheus exited"
            try:
                reply = httpx.get(f"{api}/query", params={"query": "asicfleet_board_hashrate_ths"}, timeout=5)
                result = reply.json()["data"]["result"] if reply.status_code == 200 else []
            except httpx.HTTPError:
                result = []
            if len(result) == boards:
                break
            assert time.monotonic() < deadline, f"Prometheus holds {len(result)} board series, not {boards}"
            time.sleep(0.5)
        assert {r["metric"]["ip"] for r in result} == set(online)  # type: ignore[index]
        assert all(r["metric"]["job"] == "asicfleet" and r["metric"]["site"] == SITE for r in result)  # type: ignore[index]
        up = httpx.get(f"{api}/query", params={"query": "asicfleet_miner_up == 0"}, timeout=5).json()
        assert [r["metric"]["ip"] for r in up["data"]["result"]] == [sorted(fleet.miners)[-1]]
        ratio = httpx.get(f"{api}/query", params={"query": "sum(asicfleet_site_hashrate_ths) / "
                                                            "sum(asicfleet_site_expected_hashrate_ths)"},
                          timeout=5).json()
        assert 0.0 < float(ratio["data"]["result"][0]["value"][1]) < 1.0  # one miner of five is down
    finally:
        stop_processes([process])


def test_the_grafana_dashboard_queries_only_exported_series(exporter: str) -> None:
    import json
    import re

    dashboard = json.loads((Path(__file__).resolve().parent.parent / "docs" / "grafana" / "asicfleet.json").read_text())
    exported = {name.removesuffix("_total") for name in _series(exporter)}
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"asicfleet_[a-z_]+", target["expr"])}
    queried |= {name for var in dashboard["templating"]["list"] if var["type"] == "query"
                for name in re.findall(r"asicfleet_[a-z_]+", var["definition"])}
    assert len(queried) >= 15
    assert queried <= exported, f"the dashboard queries series the exporter never serves: {queried - exported}"
    assert {p["gridPos"]["y"] for p in dashboard["panels"]} and len({p["id"] for p in dashboard["panels"]}) == len(
        dashboard["panels"])
