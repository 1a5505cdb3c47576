"""Rules with actions, and alerts: pure evaluation (durations, scope, cooldown, cap, dry run) without sockets;
webhooks against a real HTTP receiver on loopback; and end to end, a simulated miner that degrades, a rule
that fires, the action reaching the miner once through a real Celery worker, the ledger and one webhook POST."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

from asicfleet import MinerFactory
from asicfleet.data import (
    BoardData,
    ChipData,
    DeviceInfo,
    FanData,
    HashRate,
    MinerData,
    MinerHardware,
    PoolData,
    PoolGroupData,
)
from asicfleet.sim import SimFleet
from fleet import monitor
from fleet.alerts import Alert, AlertError, JsonTarget, SlackTarget, TelegramTarget, send_alert
from fleet.loop import run_async
from fleet.messaging import COLLECT_SITE, create_app
from fleet.rules import (
    RULE_ACTION,
    BoardFault,
    FanFailure,
    HashrateBelow,
    MemoryRuleState,
    NoActivePool,
    Observation,
    Offline,
    RuleEngine,
    RulesConfig,
    TemperatureAbove,
    claim_key,
    configured_rules,
    firing,
    firing_key,
    firings,
    load_rules,
    rules_from_data,
    run_round,
)
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions, load_sites
from orchestrator import cli
from orchestrator.local import start_workers, stop_processes, wait_for_workers
from orchestrator.rules_cli import firings_table
from tests.conftest import ThreadedFleet, lo

T0 = 1_800_000_000.0  # a round hour: budgets count per clock hour
MIN = 60.0


def reading(ip: str = "10.1.0.5", *, ths: float = 200.0, expected: float = 200.0, boards: int = 3, chips: int = 110,
            working: list[int] | None = None, board_rates: list[float] | None = None, board_temp: float = 65.0,
            chip_temp: float = 75.0, fans: list[float] | None = None, pool_active: bool | None = True,
            make: str = "AntMiner", model: str = "Antminer S21") -> MinerData:
    """A MinerData as a read makes it, with the knobs the conditions look at."""
    working = working if working is not None else [chips] * boards
    rates = board_rates if board_rates is not None else [ths / boards] * boards
    return MinerData(
        ip=ip, device_info=DeviceInfo(make=make, model=model, firmware="Stock", hardware=MinerHardware(
            board_count=boards, chips_per_board=chips, fans=4)),
        hashrate=HashRate(value=ths), expected_hashrate=HashRate(value=expected),
        hashboards=[BoardData(position=i, hashrate=HashRate(value=rates[i]), board_temperature=board_temp,
                              expected_chips=chips, working_chips=working[i],
                              chips=[ChipData(position=0, temperature=chip_temp)]) for i in range(len(working))],
        fans=[FanData(position=i, rpm=rpm) for i, rpm in enumerate(fans if fans is not None else [5000.0] * 4)],
        pools=[PoolGroupData(pools=[PoolData(position=0, url="stratum+tcp://pool.example:3333",
                                             active=pool_active)])] if pool_active is not None else [])


def seen(data: MinerData, site: str = "east", online: bool = True, last_seen: float | None = None) -> Observation:
    return Observation(ip=str(data.ip), site=site, make=data.make, model=data.model, data=data, online=online,
                       last_seen=last_seen)


def config(*rules: dict[str, Any], **extra: Any) -> RulesConfig:
    return RulesConfig.model_validate({"rules": list(rules), **extra})


LOW = {"name": "low", "when": {"kind": "hashrate_below", "percent": 70}, "for_minutes": 10,
       "actions": [{"kind": "restart"}], "cooldown_minutes": 60}


# ----- conditions ----------------------------------------------------------------------------------
def test_each_condition_holds_on_its_evidence_and_cannot_tell_without_it() -> None:
    low = HashrateBelow(percent=70).check(seen(reading(ths=100)))
    assert low.holds and low.values == {"hashrate_ths": 100.0, "expected_ths": 200.0, "percent_of_expected": 50.0}
    assert HashrateBelow(percent=70).check(seen(reading(ths=150))).holds is False
    assert HashrateBelow(percent=70).check(seen(reading(), online=False)).holds is None

    assert BoardFault().check(seen(reading())).holds is False
    chips_gone = BoardFault().check(seen(reading(working=[110, 90, 110])))
    assert chips_gone.holds and chips_gone.values["faults"][0]["board"] == 1
    assert BoardFault(max_missing_chips=30).check(seen(reading(working=[110, 90, 110]))).holds is False
    assert BoardFault().check(seen(reading(board_rates=[100, 100, 0]))).holds  # a board at zero
    assert BoardFault().check(seen(reading(working=[110, 110]))).holds  # a board missing: 2 of 3

    assert TemperatureAbove(celsius=80, sensor="chip").check(seen(reading(chip_temp=85))).holds
    assert TemperatureAbove(celsius=80, sensor="board").check(seen(reading(chip_temp=85))).holds is False
    hot = TemperatureAbove(celsius=80).check(seen(reading(board_temp=81)))
    assert hot.holds and hot.values["where"] == "board 0"

    offline = Offline().check(seen(reading(), online=False, last_seen=T0 - 600))
    assert offline.holds and offline.since == T0 - 600
    assert Offline().check(seen(reading())).holds is False

    assert NoActivePool().check(seen(reading(pool_active=False))).holds
    assert NoActivePool().check(seen(reading(pool_active=True))).holds is False
    assert NoActivePool().check(seen(reading(pool_active=None))).holds  # no pool configured at all

    assert FanFailure().check(seen(reading(fans=[5000, 0, 5000, 5000]))).holds
    assert FanFailure().check(seen(reading(fans=[5000, 5000, 5000]))).holds  # 3 of 4 fans reported
    assert FanFailure(min_rpm=1000).check(seen(reading(fans=[5000, 800, 5000, 5000]))).holds
    assert FanFailure().check(seen(reading())).holds is False


# ----- held durations, scope, cooldown, cap, dry run --------------------------------------------------
def test_a_condition_must_hold_for_its_duration_and_a_lapse_starts_it_again() -> None:
    state = MemoryRuleState()
    engine = RuleEngine(config(LOW), state)
    low, ok = seen(reading(ths=100)), seen(reading(ths=190))
    assert engine.evaluate([low], T0) == []
    assert engine.evaluate([low], T0 + 5 * MIN) == []
    assert engine.evaluate([ok], T0 + 6 * MIN) == []  # recovered: the clock starts again
    assert engine.evaluate([low], T0 + 7 * MIN) == []
    assert engine.evaluate([low], T0 + 16 * MIN) == []  # 9 minutes since the lapse
    fired = engine.evaluate([low], T0 + 17 * MIN)
    assert [(f.rule, f.ip, f.state, f.held_since) for f in fired] == [("low", "10.1.0.5", "queued", T0 + 7 * MIN)]
    assert fired[0].values["percent_of_expected"] == 50.0 and state.ledger == fired
    # data that cannot be judged (offline) is no evidence: the clock starts again when it is back
    engine.evaluate([seen(reading(ip="10.1.0.6", ths=100))], T0)
    engine.evaluate([seen(reading(ip="10.1.0.6"), online=False)], T0 + 5 * MIN)
    assert engine.evaluate([seen(reading(ip="10.1.0.6", ths=100))], T0 + 11 * MIN) == []


def test_offline_counts_from_last_seen() -> None:
    rule = {"name": "gone", "when": {"kind": "offline"}, "for_minutes": 30, "actions": [{"kind": "restart"}]}
    engine = RuleEngine(config(rule), MemoryRuleState())
    assert engine.evaluate([seen(reading(), online=False, last_seen=T0 - 20 * MIN)], T0) == []
    fired = engine.evaluate([seen(reading(), online=False, last_seen=T0 - 20 * MIN)], T0 + 10 * MIN)
    assert len(fired) == 1 and fired[0].held_since == T0 - 20 * MIN


def test_scope_picks_sites_makes_models_and_ip_ranges() -> None:
    rule = {**LOW, "for_minutes": 0, "scope": {"sites": ["east"], "makes": ["antminer"], "models": ["antminer s21"],
                                               "ips": ["10.1.0.0/24", "10.2.0.10-10.2.0.20"]}}
    engine = RuleEngine(config(rule), MemoryRuleState())
    candidates = [seen(reading("10.1.0.5", ths=10)), seen(reading("10.2.0.15", ths=10)),
                  seen(reading("10.2.0.21", ths=10)), seen(reading("10.1.0.6", ths=10), site="west"),
                  seen(reading("10.1.0.7", ths=10, make="WhatsMiner", model="M60S")),
                  seen(reading("10.1.0.8", ths=10, model="Antminer S19"))]
    assert sorted(f.ip for f in engine.evaluate(candidates, T0)) == ["10.1.0.5", "10.2.0.15"]
    with pytest.raises(ValidationError, match="bad IP range"):
        config({**LOW, "scope": {"ips": ["10.1.0.300/24"]}})


def test_cooldown_is_per_miner_and_rule() -> None:
    other = {**LOW, "name": "low-light", "actions": [{"kind": "fault_light"}]}
    engine = RuleEngine(config({**LOW, "for_minutes": 0}, {**other, "for_minutes": 0}), MemoryRuleState())
    a, b = seen(reading("10.1.0.5", ths=10)), seen(reading("10.1.0.6", ths=10))
    assert len(engine.evaluate([a], T0)) == 2  # both rules
    assert [f.ip for f in engine.evaluate([a, b], T0 + 1 * MIN)] == ["10.1.0.6", "10.1.0.6"]  # a cools down
    assert engine.evaluate([a, b], T0 + 59 * MIN) == []
    assert {(f.rule, f.ip) for f in engine.evaluate([a, b], T0 + 60 * MIN)} == {("low", "10.1.0.5"),
                                                                                ("low-light", "10.1.0.5")}


def test_the_site_cap_limits_actions_per_hour_and_capped_miners_are_tried_next_hour() -> None:
    notify = {"name": "tell", "when": {"kind": "hashrate_below", "percent": 70},
              "actions": [{"kind": "webhook", "target": "ops"}]}
    engine = RuleEngine(config({**LOW, "for_minutes": 0}, notify, max_actions_per_site_per_hour=2,
                               alerts={"ops": {"kind": "json", "url": "http://127.0.0.1:9/"}}), MemoryRuleState())
    miners = [seen(reading(f"10.1.0.{n}", ths=10)) for n in (5, 6, 7)]
    west = seen(reading("10.1.1.5", ths=10), site="west")
    fired = engine.evaluate([*miners, west], T0 + 10 * MIN)
    states = {(f.rule, f.ip): f.state for f in fired}
    assert [states[("low", m.ip)] for m in miners] == ["queued", "queued", "capped"]
    assert states[("low", "10.1.1.5")] == "queued"  # another site has its own budget
    assert all(states[("tell", m.ip)] == "queued" for m in miners)  # webhooks cost no budget
    assert engine.evaluate(miners, T0 + 30 * MIN) == []  # the capped one waits for the next hour
    again = engine.evaluate(miners, T0 + 60 * MIN)
    assert [(f.rule, f.ip, f.state) for f in again] == [("low", "10.1.0.7", "queued")]


def test_dry_run_records_and_sends_no_control_but_still_notifies() -> None:
    notify = {**LOW, "name": "tell", "for_minutes": 0, "dry_run": True,
              "actions": [{"kind": "restart"}, {"kind": "webhook", "target": "ops"}]}
    everything_dry = config({**LOW, "for_minutes": 0}, dry_run=True, max_actions_per_site_per_hour=0)
    fired = RuleEngine(everything_dry, MemoryRuleState()).evaluate([seen(reading(ths=10))], T0)
    assert [(f.state, f.dry_run) for f in fired] == [("dry-run", True)]  # the cap of 0 did not matter
    with_hook = config(notify, alerts={"ops": {"kind": "json", "url": "http://127.0.0.1:9/"}})
    fired = RuleEngine(with_hook, MemoryRuleState()).evaluate([seen(reading(ths=10))], T0)
    assert [(f.state, f.dry_run) for f in fired] == [("queued", True)]
    assert fired[0].alert().dry_run and "dry run" in fired[0].alert().text


def test_site_events_hashrate_below_and_workers_gone() -> None:
    events = [{"name": "site-low", "kind": "site_hashrate_below", "percent": 80, "for_minutes": 5, "notify": ["ops"]},
              {"name": "gone", "kind": "workers_gone", "minutes": 15, "notify": ["ops"], "sites": ["east"]}]
    cfg = RulesConfig.model_validate({"site_events": events, "alerts": {"ops": {"kind": "json",
                                                                                 "url": "http://127.0.0.1:9/"}}})
    engine = RuleEngine(cfg, MemoryRuleState())
    half = [seen(reading(f"10.1.0.{n}", ths=200 if n < 7 else 0)) for n in range(5, 9)]  # 2 of 4 hashing
    assert engine.evaluate(half, T0) == []
    fired = engine.evaluate(half, T0 + 5 * MIN)
    assert [(f.kind, f.rule, f.site, f.values["percent_of_expected"]) for f in fired] == [
        ("site_event", "site-low", "east", 50.0)]
    assert engine.check_sites(T0 + 19 * MIN) == []
    gone = engine.check_sites(T0 + 21 * MIN)
    assert [(f.rule, f.site, f.values["minutes_since"]) for f in gone] == [("gone", "east", 16.0)]
    assert engine.check_sites(T0 + 22 * MIN) == []  # its cooldown


# ----- the rules file --------------------------------------------------------------------------------
def test_rules_files_are_validated_before_anything_runs(tmp_path: Path) -> None:
    own = tmp_path / "rules.yaml"
    own.write_text(yaml.safe_dump({"alerts": {"ops": {"kind": "slack", "url_env": "SLACK_URL"}},
                                   "rules": [{**LOW, "actions": [{"kind": "power_limit", "watts": 3000},
                                                                 {"kind": "webhook", "target": "ops"}]}]}))
    assert [a.describe() for a in load_rules(own).rule("low").actions] == ["3000 W", "webhook ops"]
    every = config({**LOW, "actions": [{"kind": "restart"}, {"kind": "fault_light"}, {"kind": "pause"},
                                       {"kind": "curtail"}, {"kind": "power_limit", "watts": 2800}]})
    controls = [a.control() for a in every.rules[0].actions]
    assert [(c.kind, c.describe()) for c in controls if c is not None] == [
        ("restart", "restart"), ("fault_light", "fault light on"), ("mining", "pause mining"),
        ("mining", "pause mining"), ("power_limit", "2800 W")]
    sites = tmp_path / "sites.yaml"  # rules inside the sites file: scopes must name its sites
    sites.write_text(yaml.safe_dump({"sites": {"east": {"ranges": ["10.1.0.0/16"]}},
                                     "rules": [{**LOW, "scope": {"sites": ["east"]}}]}))
    assert load_rules(sites).rules[0].scope.sites == ["east"]
    assert list(load_sites(sites).sites) == ["east"]  # and the sites file still loads as one
    # the workers' view: the rules file wins over the sites file's section, names its sites, and is re-read
    both = FleetSettings(rules_file=own, sites_file=sites)
    assert [r.name for r in configured_rules(both).rules] == ["low"]  # type: ignore[union-attr]
    own.write_text(yaml.safe_dump({"rules": [{**LOW, "name": "north-low", "scope": {"sites": ["north"]}}]}))
    os.utime(own, (time.time() + 5, time.time() + 5))
    with pytest.raises(ValueError, match="sites the sites file does not have: north"):
        configured_rules(both)
    assert configured_rules(FleetSettings(rules_file=own)).rules[0].name == "north-low"  # type: ignore[union-attr]
    assert configured_rules(FleetSettings(sites_file=sites)).rules[0].name == "low"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="north"):
        configured_rules(both)  # still refused: the unchecked reading above is not taken for a checked one
    bad = [({"rules": [{**LOW, "scope": {"sites": ["north"]}}], "sites": {"east": {"ranges": ["10.1.0.0/16"]}}},
            "sites the sites file does not have: north"),
           ({"rules": [LOW, LOW]}, "unique: low"),
           ({"rules": [{**LOW, "actions": [{"kind": "webhook", "target": "nowhere"}]}]}, "low -> nowhere"),
           ({"rules": [{**LOW, "when": {"kind": "hashrate_below", "percent": 170}}]}, "less than or equal to 100"),
           ({"rules": [{**LOW, "actions": [{"kind": "reboot"}]}]}, "does not match any of the expected tags"),
           ({"alerts": {"ops": {"kind": "json"}}}, "exactly one of url and url_env"),
           ({"rulez": []}, "Extra inputs")]
    for raw, reason in bad:
        with pytest.raises(ValueError, match=reason):
            rules_from_data(raw)


# ----- alerts against a real HTTP receiver --------------------------------------------------------------
class Receiver:
    """An HTTP server on a loopback address that keeps every POST; `fail` first answers that many 503s."""

    def __init__(self, host: str) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.fail = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls it by this name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.fail:
                    outer.fail -= 1
                    self.send_response(503)
                else:
                    outer.posts.append((self.path, json.loads(body)))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhooks_post_json_slack_and_telegram_payloads_and_never_log_secrets(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    alert = Alert(kind="rule_firing", title="low: 10.1.0.5", text="hash rate below 70 % of expected", site="east",
                  ip="10.1.0.5", rule="low", values={"percent_of_expected": 50.0})
    with Receiver(lo("127.220.0.1")) as receiver:
        secret_path = "/hooks/T000-very-secret"
        monkeypatch.setenv("RULES_TEST_HOOK", receiver.url + secret_path)
        token = "123456:SECRET-TOKEN"

        async def send_all() -> list[str]:
            async with httpx.AsyncClient() as client:
                return [await send_alert("plain", JsonTarget(url_env="RULES_TEST_HOOK"), alert, client=client),
                        await send_alert("chat", SlackTarget(url=receiver.url + "/slack"), alert, client=client),
                        await send_alert("bot", TelegramTarget(token=token, chat_id=-1001, api_url=receiver.url),
                                         alert, client=client)]

        results = run_async(send_all())
        assert results == ["posted to plain, HTTP 200", "posted to chat, HTTP 200", "posted to bot, HTTP 200"]
        (p1, generic), (p2, slack), (p3, telegram) = receiver.posts
        assert p1 == secret_path and generic["ip"] == "10.1.0.5" and generic["values"] == {"percent_of_expected": 50.0}
        assert p2 == "/slack" and slack["text"].startswith("low: 10.1.0.5") and slack["blocks"][0]["type"] == "header"
        assert p3 == f"/bot{token}/sendMessage" and telegram["chat_id"] == -1001 and "50.0" in telegram["text"]
        receiver.fail = 1  # one 503, then it answers
        assert run_async(send_alert("plain", JsonTarget(url_env="RULES_TEST_HOOK"), alert)).endswith("HTTP 200")
        receiver.fail = 5
        with pytest.raises(AlertError) as refused:
            run_async(send_alert("plain", JsonTarget(url_env="RULES_TEST_HOOK"), alert))
        assert str(refused.value) == "webhook 'plain' failed: HTTP 503"
    target = TelegramTarget(token=token, chat_id=1)
    assert token not in repr(target) and token not in str(target.model_dump())
    assert "very-secret" not in caplog.text and token not in caplog.text


# ----- end to end ------------------------------------------------------------------------------------
BLINK = "auth:POST /cgi-bin/blink.cgi"


def test_a_degraded_miner_gets_one_action_within_its_cooldown_and_the_ledger_and_webhook_show_it(
        redis_url: str, tmp_path: Path) -> None:
    sim = SimFleet.generate(lo("127.221.0.0/24"), 2, ["antminer"], seed=3)
    with ThreadedFleet(sim) as fleet, Receiver(lo("127.222.0.1")) as receiver:
        rules_file = tmp_path / "rules.yaml"
        rules_file.write_text(yaml.safe_dump({
            "alerts": {"ops": {"kind": "json", "url": receiver.url + "/hook"}},
            "rules": [{"name": "low-hashrate", "when": {"kind": "hashrate_below", "percent": 60}, "for_minutes": 1,
                       "scope": {"sites": ["east"]}, "cooldown_minutes": 30,
                       "actions": [{"kind": "fault_light"}, {"kind": "webhook", "target": "ops"}]}]}))
        settings = FleetSettings(redis_url=redis_url, rules_file=rules_file)
        assert fleet.ports is not None
        options = DiscoveryOptions(ports=str(fleet.ports), connect_timeout=0.5, read_timeout=2.0, identify_timeout=4.0)
        processes, names = start_workers(redis_url, 1, "east", extra_env={
            "ASICFLEET_RULES_FILE": str(rules_file), "ASICFLEET_WORKER_LIVENESS_SECONDS": "3"})
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        app = create_app(settings)
        try:
            wait_for_workers(redis_url, names, processes)
            ips = sorted(fleet.miners)
            degraded, healthy = fleet.miners[ips[0]], fleet.miners[ips[1]]

            def observe() -> list[Observation]:
                factory = MinerFactory.from_targets(ips).with_port_map(options.ports)

                async def read() -> list[MinerData]:
                    try:
                        found = [m for m in await factory.scan()]
                        return [await m.get_data() for m in found]
                    finally:
                        await factory.aclose()
                return [Observation.of(d, site="east") for d in run_async(read())]

            def round_at(now: float) -> list[Any]:
                return run_round(client, app, settings, observe(), now=now, options={"east": options})

            start = time.time()
            assert round_at(start) == []  # healthy
            degraded.state.hashrate_ths = round(degraded.state.hashrate_ths * 0.3, 3)
            assert round_at(start + 10) == []  # holds, not for a minute yet
            fired = round_at(start + 71)
            assert [(f.rule, f.ip, f.state) for f in fired] == [("low-hashrate", degraded.state.ip, "queued")]
            firing_id = fired[0].id
            deadline = time.monotonic() + 30
            while (done := firing(client, firing_id)) is not None and done.state in ("queued", "running"):
                assert time.monotonic() < deadline, "the worker did not act on the firing"
                time.sleep(0.1)
            assert done is not None and done.state == "done", done
            assert [(r.action, r.state) for r in done.results] == [("fault light on", "done"), ("webhook ops", "done")]
            assert done.values["percent_of_expected"] < 60 and done.values["expected_ths"] > 0
            # still degraded, within the cooldown: no new firing
            assert round_at(start + 140) == []
            # at-least-once delivery: the same firing delivered again, even put back to queued, acts no more
            client.hset(firing_key(firing_id), "state", json.dumps("queued"))
            for _ in range(2):
                app.send_task(RULE_ACTION, kwargs={"firing_id": firing_id, "site": "east"}, queue="asicfleet.site.east")
            deadline = time.monotonic() + 30
            # both deliveries taken and acknowledged (kombu's Redis transport: the queue list, then `unacked`)
            while client.llen("asicfleet.site.east") or client.hlen("unacked"):
                assert time.monotonic() < deadline, "the worker did not take the redeliveries"
                time.sleep(0.1)
            assert client.get(claim_key("low-hashrate", degraded.state.ip, done.window))  # the first delivery's
        finally:
            stop_processes(processes)
            app.close()
        assert degraded.state.fault_light is True and degraded.requests[BLINK] == 1, dict(degraded.requests)
        assert healthy.state.fault_light is False and healthy.requests[BLINK] == 0
        assert [path for path, _ in receiver.posts] == ["/hook"]
        posted = receiver.posts[0][1]
        assert posted["firing_id"] == firing_id and posted["ip"] == degraded.state.ip
        assert posted["actions"] == ["fault light on", "webhook ops"] and posted["results"] == ["fault light on: done"]
        assert done.results[0].detail == "sent, verified"  # read back from the miner
        ledger = firings(client, site="east")
        assert [(f.id, f.rule, f.ip) for f in ledger] == [(firing_id, "low-hashrate", degraded.state.ip)]
        assert firings(client, ip=healthy.state.ip) == []
        assert ledger[0].values == done.values
        client.close()


REBOOT = "auth:POST /cgi-bin/reboot.cgi"


def test_rules_in_the_sites_file_run_after_each_monitor_round_and_restart_a_hot_miner_once(
        redis_url: str, tmp_path: Path) -> None:
    """The whole path: the monitor's collection round (a real worker reading the simulator) calls the rules
    hook, the firing goes to the site's queue, the same worker restarts the miner; the next round, still
    hot, is within the cooldown."""
    subnet = lo("127.223.0.0/24")
    sim = SimFleet.generate(subnet, 2, ["antminer"], seed=6)
    for miner in sim.miners.values():
        miner.restart_seconds = 0.3
    with ThreadedFleet(sim) as fleet, Receiver(lo("127.224.0.1")) as receiver:
        assert fleet.ports is not None
        options = DiscoveryOptions(ports=str(fleet.ports), connect_timeout=0.5, read_timeout=2.0, identify_timeout=4.0)
        sites_file = tmp_path / "sites.yaml"
        sites_file.write_text(yaml.safe_dump({
            "sites": {"north": {"ranges": [subnet], "collect_every_minutes": 1,
                                "discovery": options.model_dump(mode="json")}},
            "alerts": {"oncall": {"kind": "telegram", "chat_id": 7, "token_env": "RULES_TEST_BOT_TOKEN",
                                  "api_url": receiver.url}},
            "rules": [{"name": "hot-restart", "when": {"kind": "temperature_above", "celsius": 90, "sensor": "board"},
                       "scope": {"sites": ["north"]}, "cooldown_minutes": 30,
                       "actions": [{"kind": "restart"}, {"kind": "webhook", "target": "oncall"}]}]}))
        ips = sorted(fleet.miners)
        hot, cool = fleet.miners[ips[0]], fleet.miners[ips[1]]
        client = redis.Redis.from_url(redis_url)
        factory = MinerFactory.from_targets(ips).with_port_map(options.ports)

        async def read() -> list[MinerData]:
            try:
                return [await m.get_data() for m in await factory.scan()]
            finally:
                await factory.aclose()

        monitor.ingest_inventory(client, "north", run_async(read()), options.model_dump_json())
        processes, names = start_workers(redis_url, 1, "north", extra_env={
            "ASICFLEET_SITES_FILE": str(sites_file), "ASICFLEET_WORKER_LIVENESS_SECONDS": "3",
            "RULES_TEST_BOT_TOKEN": "42:BOT-SECRET"})
        app = create_app(FleetSettings(redis_url=redis_url))

        def collection_round() -> None:
            before = monitor.last_round(client, "north")
            app.send_task(COLLECT_SITE, kwargs={"site": "north"}, queue="asicfleet.site.north")
            deadline = time.monotonic() + 30
            while True:
                now = monitor.last_round(client, "north")
                if now is not None and now.finished is not None and (before is None or now.round_id != before.round_id):
                    return
                assert time.monotonic() < deadline, "no collection round finished"
                time.sleep(0.1)

        try:
            wait_for_workers(redis_url, names, processes)
            collection_round()
            assert firings(client, site="north") == []  # nothing hot yet
            hot.state.board_temps = [100.0] * len(hot.state.board_temps)
            collection_round()
            deadline = time.monotonic() + 30
            while not (found := firings(client, site="north")) or found[0].state in ("queued", "running"):
                assert time.monotonic() < deadline, f"no firing acted on: {found}"
                time.sleep(0.1)
            time.sleep(1.0)  # the miner is back from its restart
            collection_round()  # still hot: within its cooldown
        finally:
            stop_processes(processes)
            app.close()
        (item,) = firings(client, site="north")
        assert (item.rule, item.ip, item.state) == ("hot-restart", hot.state.ip, "done"), item
        assert item.values["max_celsius"] >= 90 and item.values["where"].startswith("board")
        assert [r.action for r in item.results] == ["restart", "webhook oncall"]
        assert hot.requests[REBOOT] == 1 and cool.requests[REBOOT] == 0
        assert [(path, body["chat_id"]) for path, body in receiver.posts] == [("/bot42:BOT-SECRET/sendMessage", 7)]
        assert hot.state.ip in receiver.posts[0][1]["text"] and "restart: done" in receiver.posts[0][1]["text"]
        client.close()
    # the command line shows the same ledger, and checks the file the workers ran
    listed = _cli(redis_url, "rules", "firings", "--site", "north", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [item.id]
    console = Console(width=250, record=True)
    console.print(firings_table([item]))
    assert "hot-restart" in (table := console.export_text()) and "restart: done" in table, table
    runner = CliRunner()
    checked = runner.invoke(cli.app, ["rules", "check", str(sites_file)])
    assert checked.exit_code == 0 and "1 rules, 1 alert targets" in checked.stdout, checked.stdout
    assert "BOT-SECRET" not in checked.stdout and "from $RULES_TEST_BOT_TOKEN" in checked.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"rules": [{**LOW, "when": {"kind": "hashrate_below", "percent": 0}}]}))
    refused = runner.invoke(cli.app, ["rules", "check", str(bad)])
    assert refused.exit_code == 2 and "rules.0.when.percent: Input should be greater than 0" in refused.output


def _cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASICFLEET_REDIS_URL": redis_url, "COLUMNS": "250"}
    env.pop("ASICFLEET_BROKER_URL", None)
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)
