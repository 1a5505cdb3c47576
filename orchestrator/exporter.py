"""The Prometheus exporter (`asicfleet exporter`): the monitor's state in Redis (`fleet.monitor`) as gauges.

Each scrape reads the current state: nothing is cached or kept here, so any number of exporters can serve
one Redis, and long-term history lives in Prometheus. Labels are bounded: `ip`, `site`, `make`, `model`
(catalogue names), `board` (slot index), `fan` (position) and, per site, `state` (online/offline); never free
text such as pool URLs or error messages. An offline miner exports only `asicfleet_miner_up` 0 and its last
seen time (its old readings would look current).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from fleet import monitor

MINER_LABELS = ["ip", "site", "make", "model"]
_LABEL_MAX = 64  # a model string the catalogue does not know keeps its raw spelling: never let it grow


def _label(value: str) -> str:
    return value[:_LABEL_MAX]


class _Gauges:
    """The metric families of one scrape, by name."""

    def __init__(self) -> None:
        self.families: dict[str, GaugeMetricFamily] = {}

    def add(self, name: str, doc: str, labels: list[str], values: list[str], value: float | None) -> None:
        if value is None:
            return
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = GaugeMetricFamily(name, doc, labels=labels)
        family.add_metric(values, float(value))


class FleetCollector(Collector):
    """Reads every known miner (with its latest reading) and every site's totals at each scrape."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterator[GaugeMetricFamily]:
        started = time.monotonic()
        gauges = _Gauges()
        for site in monitor.sites_known(self.client):
            states = monitor.known_miners(self.client, site)
            for state in states:
                self._miner(gauges, state)
            totals = monitor.totals_of(site, states)
            for label, count in (("online", totals.online), ("offline", totals.offline)):
                gauges.add("asicfleet_site_miners", "known miners of the site, by state", ["site", "state"],
                           [site, label], count)
            gauges.add("asicfleet_site_hashrate_ths", "hash rate of the site's online miners, TH/s", ["site"],
                       [site], totals.hashrate)
            gauges.add("asicfleet_site_expected_hashrate_ths", "expected hash rate of the site's miners, TH/s",
                       ["site"], [site], totals.expected_hashrate)
            gauges.add("asicfleet_site_power_watts", "power drawn by the site's online miners, W", ["site"], [site],
                       totals.wattage)
            info = monitor.last_round(self.client, site)
            if info is not None and info.finished is not None:
                gauges.add("asicfleet_site_last_round_timestamp_seconds", "when the latest collection round "
                           "finished", ["site"], [site], info.finished)
                gauges.add("asicfleet_site_round_duration_seconds", "how long the latest collection round took",
                           ["site"], [site], info.seconds)
        yield from gauges.families.values()
        scrape = GaugeMetricFamily("asicfleet_exporter_scrape_seconds", "time this scrape took to read Redis")
        scrape.add_metric([], time.monotonic() - started)
        yield scrape

    @staticmethod
    def _miner(gauges: _Gauges, state: monitor.MinerState) -> None:
        labels = [state.ip, state.site, _label(state.make), _label(state.model)]
        gauges.add("asicfleet_miner_up", "1 when the latest collection read the miner, else 0", MINER_LABELS,
                   labels, 1.0 if state.online else 0.0)
        gauges.add("asicfleet_miner_last_seen_timestamp_seconds", "the miner's latest good read", MINER_LABELS,
                   labels, state.last_seen)
        if not state.online or state.data is None:
            return
        sample = monitor.MinerSample.of(state.data, state.last_seen or time.time())
        for name, doc, value in (
                ("asicfleet_miner_hashrate_ths", "hash rate, TH/s", sample.hashrate),
                ("asicfleet_miner_expected_hashrate_ths", "expected hash rate, TH/s", sample.expected_hashrate),
                ("asicfleet_miner_power_watts", "power drawn, W", sample.wattage),
                ("asicfleet_miner_efficiency_jth", "efficiency, J/TH", sample.efficiency),
                ("asicfleet_miner_board_temperature_celsius", "hottest hashboard, °C", sample.board_temperature),
                ("asicfleet_miner_chip_temperature_celsius", "hottest chip, °C", sample.chip_temperature),
                ("asicfleet_miner_chips_working", "working chips", sample.working_chips),
                ("asicfleet_miner_chips_expected", "chips the model has", sample.expected_chips),
                ("asicfleet_miner_errors", "failed reads and error messages of the latest reading", sample.errors),
                ("asicfleet_miner_pool_active", "1 when the miner works on a pool", 0.0 if sample.active_pool is None
                 else 1.0)):
            gauges.add(name, doc, MINER_LABELS, labels, value)
        for position, rpm in enumerate(sample.fans):
            gauges.add("asicfleet_miner_fan_rpm", "fan speed, rpm", [*MINER_LABELS, "fan"], [*labels, str(position)],
                       rpm)
        for board in sample.boards:
            values = [*labels, str(board.index)]
            board_labels = [*MINER_LABELS, "board"]
            for name, doc, value in (
                    ("asicfleet_board_hashrate_ths", "hashboard hash rate, TH/s", board.hashrate),
                    ("asicfleet_board_expected_hashrate_ths", "hashboard expected hash rate, TH/s",
                     board.expected_hashrate),
                    ("asicfleet_board_temperature_celsius", "hashboard temperature, °C", board.board_temperature),
                    ("asicfleet_board_chip_temperature_celsius", "hottest chip of the board, °C",
                     board.chip_temperature),
                    ("asicfleet_board_chips_working", "working chips of the board", board.working_chips),
                    ("asicfleet_board_chips_expected", "chips the board should have", board.expected_chips)):
                gauges.add(name, doc, board_labels, values, value)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """One line per scrape would flood the log."""


class _ThreadingServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request: object, client_address: object) -> None:
        threading.Thread(target=self._handle, args=(request, client_address), daemon=True).start()

    def _handle(self, request: object, client_address: object) -> None:
        try:
            self.finish_request(request, client_address)  # type: ignore[arg-type]
        finally:
            self.shutdown_request(request)  # type: ignore[arg-type]


def make_exporter(client: redis.Redis, host: str, port: int) -> WSGIServer:
    """An HTTP server answering /metrics from Redis (call `serve_forever()`; `server_port` is the bound port)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(client))
    return make_server(host, port, make_wsgi_app(registry), server_class=_ThreadingServer,
                       handler_class=_QuietHandler)
