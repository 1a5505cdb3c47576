"""VNish on Antminer hardware: parsers on replies in the firmware's shapes, the simulator's replies against VNish's own
OpenAPI schemas (1.2.6 and 1.3.4), the backend against the simulator over loopback, a mixed scan with stock Antminers,
and the simulator against pyasic and pyasic-rs (marker `interop`).

Addresses: 127.103.0.0/16 only. Specifications: ../shared/fixtures/asic-rs/meta/vnish (from asic-rs).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from asicfleet import MinerFactory
from asicfleet._errors import AuthenticationError, MinerAPIError, MinerConnectionError, UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.vnish import (
    VNish,
    model_from_info,
    parse_is_mining,
    parse_uptime,
    preset_for_watts,
)
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import HashRate, MessageSeverity
from asicfleet.discovery._identify import identify
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, HttpRequest, SimFleet
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.vnish import STOPPED_WATTS, VNishSim, format_uptime
from asicfleet.transport import HttpReply, PortMap, rpc_call
from tests.conftest import identified_backend, lo, only_miner

SPECS = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "asic-rs" / "meta" / "vnish"
ALL_MODELS = VNishSim.models


def fixture_backend(model: str = "Antminer S19") -> VNish:
    return VNish(lo("127.103.0.1"), VNish.device_info("AntMiner", model, "VNish"), Session())


# ===== (a) parsers, on replies in VNish 1.2.6's published shapes ======================================
INFO = {"miner": "Antminer S19", "model": "s19", "fw_name": "Vnish", "fw_version": "1.2.6", "platform": "xil",
        "install_type": "nand", "algorithm": "sha256d", "hr_measure": "GH/s", "serial": "N/A",
        "system": {"os": "GNU/Linux", "uptime": "0:06",
                   "network_status": {"mac": "fe:07:26:3c:be:1b", "dhcp": True, "hostname": "antminer"}}}
FAILED_SUMMARY = {"miner": {
    "miner_status": {"miner_state": "failure", "miner_state_time": 1, "failure_code": 1002,
                     "description": "Failed to parse miner configuration"},
    "miner_type": "Antminer S19 (Vnish 1.2.6)", "hr_realtime": 0.0, "hr_nominal": 0.0, "hr_stock": 0.0,
    "power_consumption": 0, "power_usage": 0, "pools": [{"id": 0, "url": "DevFee", "pool_type": "DevFee",
                                                          "user": "DevFee", "status": "working"}],
    "cooling": {"fan_num": 0, "fans": [], "settings": {"mode": {"name": "auto"}}, "fan_duty": 0}, "chains": []}}


def test_info_fields() -> None:
    data = fixture_backend().extract({"web:info": INFO})
    assert (data.mac, data.hostname, data.firmware_version) == ("FE:07:26:3C:BE:1B", "antminer", "1.2.6")
    assert data.serial_number is None  # "N/A": the EEPROM holds none
    assert data.control_board_version == "xil" and data.uptime == timedelta(minutes=6)
    assert data.errors == []
    assert model_from_info(INFO) == "Antminer S19"
    assert model_from_info({"miner": "Antminer S19j Pro"}) == lookup_model("AntMiner", "S19j Pro").name  # type: ignore[union-attr]
    assert model_from_info({"miner": ""}) is None and model_from_info([]) is None


def test_uptime_formats_round_trip() -> None:
    assert parse_uptime("0:06") == 360 and parse_uptime("10 days, 18:00") == (10 * 24 + 18) * 3600
    assert parse_uptime("1 day, 2:03") == 26 * 3600 + 180
    for seconds in (0, 59 * 60, 86399, 86400, 3 * 86400 + 7 * 3600 + 5 * 60):
        assert parse_uptime(format_uptime(seconds)) == seconds // 60 * 60
    assert parse_uptime("soon") is None and parse_uptime(360) is None


def test_a_failed_miner_reads_as_such() -> None:
    status = {"miner_state": "failure", "find_miner": False, "unlocked": False}
    data = fixture_backend().extract({"web:summary": FAILED_SUMMARY, "web:status": status})
    assert data.is_mining is False and data.light_flashing is False
    assert [(m.code, m.message, m.severity) for m in data.messages] == [
        (1002, "Failed to parse miner configuration", MessageSeverity.ERROR)]
    assert data.pools[0].pools == []  # the firmware's DevFee pool is not a configured pool
    assert data.fans == [] and data.wattage == 0 and data.expected_hashrate is not None  # from the table
    assert data.hashrate is not None and data.hashrate.value == 0
    assert [b.active for b in data.hashboards] == [False, False, False]  # no chains listed: 3 empty slots
    assert parse_is_mining("auto-tuning") is True and parse_is_mining("stopped") is False
    assert parse_is_mining("") is None


def test_presets_and_tuning_target() -> None:
    presets = [{"name": "disabled"}, {"name": "1100"}, {"name": "2100"}, {"name": "3250"}]
    assert preset_for_watts(presets, 3000)["name"] == "2100"
    assert preset_for_watts(presets, 3250)["name"] == "3250"
    with pytest.raises(ValueError, match="lowest is 1100 W"):
        preset_for_watts(presets, 900)
    tuned = fixture_backend().extract({"web:settings": {"miner": {"overclock": {"preset": "3250"}}}})
    assert tuned.wattage_limit == 3250 and tuned.tuning_target is not None
    assert (tuned.tuning_target.target_watts, tuned.tuning_target.target_mode) == (3250, "3250")
    stock = fixture_backend().extract({"web:settings": {"miner": {"overclock": {"preset": "disabled"}}}})
    assert stock.wattage_limit is None and stock.tuning_target is not None
    assert stock.tuning_target.target_mode == "disabled"


def test_a_hostile_summary_costs_its_fields_only() -> None:
    bad = {"miner": {"hr_realtime": "fast", "chains": "none", "cooling": {"fans": 3}, "pools": {}}}
    data = fixture_backend().extract({"web:summary": bad, "web:info": INFO})
    assert data.hashrate is None and data.fans == [] and data.hashboards == []
    assert data.mac == "FE:07:26:3C:BE:1B"
    assert any("hashboards" in e for e in data.errors) and any("fans" in e for e in data.errors)


# ===== identification signals =========================================================================
def _probe(version: dict[str, object] | Exception | None = None, web: HttpReply | None = None) -> Probe:
    return Probe(ip=lo("127.103.0.1"), web=web, rpc={} if version is None else {"version": version})


def test_matches_signals() -> None:
    page = HttpReply(200, {"content-type": "text/html"}, b"<html><title>AnthillOS</title></html>")
    assert VNish.matches(_probe(MinerConnectionError("refused"), page))
    rpc = {"STATUS": [{"STATUS": "S", "Description": "vnish 1.2.6"}], "VERSION": [{"Miner": "vnish 1.2.6"}]}
    assert VNish.matches(_probe(rpc))
    old = {"STATUS": [{"STATUS": "S", "Description": "cgminer 4.11.1"}],
           "VERSION": [{"Type": "Antminer S9 (vnish 3.8.6)"}]}
    assert VNish.matches(_probe(old)) and not AntminerStock.matches(_probe(old))
    stock = {"STATUS": [{"STATUS": "S", "Description": "cgminer 1.0.0"}], "VERSION": [{"Type": "Antminer S19 Pro"}]}
    assert not VNish.matches(_probe(stock)) and not VNish.matches(_probe())
    assert backend_for("vnish") is VNish and BACKENDS.index(VNish) < BACKENDS.index(AntminerStock)


# ===== (b) the simulator's replies against VNish's OpenAPI schemas =====================================
def _schema_checker(version: str, route: str, method: str = "get", status: str = "200") -> Callable[[Any], None]:
    from jsonschema import Draft202012Validator

    doc = json.loads((SPECS / version / "api-doc.json").read_text())
    reply = doc["paths"][route][method]["responses"][status]
    schema = {**reply["content"]["application/json"]["schema"], "components": doc["components"]}
    validator = Draft202012Validator(schema)

    def leaves(error: Any) -> list[str]:  # a oneOf failure hides the reason in its context
        inner = [m for sub in error.context or [] for m in leaves(sub)]
        return inner or [f"{list(error.absolute_path)}: {error.message[:120]}"]

    def check(value: Any) -> None:
        errors = [m for e in validator.iter_errors(value) for m in leaves(e)]
        assert not errors, f"{version} {route}: " + "; ".join(errors[:6])
    return check


def _request(method: str, path: str, body: Any = None, token: str | None = None) -> HttpRequest:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return HttpRequest(method=method, path=path, query="", headers=headers,
                       body=json.dumps(body).encode() if body is not None else b"", port=80)


@pytest.mark.parametrize("version", ["v1.2.6", "v1.3.4"])
@pytest.mark.parametrize("model", ["Antminer S19 Pro", "Antminer S21"])
async def test_simulated_replies_follow_the_spec(version: str, model: str) -> None:
    known = lookup_model("AntMiner", model)
    assert known is not None
    sim = VNishSim.build(lo("127.103.0.2"), known, random.Random(3))
    sim.state.firmware_version = version[1:]
    unlocked = await sim.handle_http(_request("POST", "/api/v1/unlock", {"pw": "admin"}))
    _schema_checker(version, "/unlock", "post")(json.loads(unlocked.body))
    token = json.loads(unlocked.body)["token"]
    boards = "/boards" if version == "v1.3.4" else "/chains"
    for route in ("/info", "/model", "/status", "/summary", "/perf-summary", "/settings", "/autotune/presets",
                  "/chains/factory-info", boards):
        reply = await sim.handle_http(_request("GET", "/api/v1" + route, token=token))
        assert reply.status == 200, route
        _schema_checker(version, route)(json.loads(reply.body))
    for route, body in (("/find-miner", None), ("/settings", {"miner": {"overclock": {"preset": "disabled"}}}),
                        ("/system/reboot", None)):
        reply = await sim.handle_http(_request("POST", "/api/v1" + route, body, token=token))
        assert reply.status == 200, route
        _schema_checker(version, route, "post")(json.loads(reply.body))
    other = "/chains" if version == "v1.3.4" else "/boards"  # 1.3 renamed chains to boards
    assert (await sim.handle_http(_request("GET", "/api/v1" + other))).status == 404


async def test_locked_routes_need_the_token() -> None:
    known = lookup_model("AntMiner", "Antminer S19j Pro")
    assert known is not None
    sim = VNishSim.build(lo("127.103.0.3"), known, random.Random(4))
    for route in ("settings", "autotune/presets"):
        assert (await sim.handle_http(_request("GET", f"/api/v1/{route}"))).status == 401
        assert (await sim.handle_http(_request("GET", f"/api/v1/{route}", token="forged"))).status == 401
    assert (await sim.handle_http(_request("POST", "/api/v1/mining/stop"))).status == 401
    assert sim.state.mining is True
    assert (await sim.handle_http(_request("POST", "/api/v1/unlock", {"pw": "wrong"}))).status == 403
    assert (await sim.handle_http(_request("GET", "/api/v1/summary"))).status == 200  # its login is optional


# ===== (c) against the simulator over loopback ==========================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
def vnish_miners(family_miners: Callable[..., Start]) -> Start:
    """`fleet, session = await vnish_miners(models)`: one simulated miner per model on its own 127.103.N.x block
    (conftest's `family_miners`)."""
    return family_miners(VNishSim, "127.103", ("Antminer S19j Pro",))


def only(fleet: SimFleet) -> tuple[str, VNishSim]:
    return only_miner(fleet, VNishSim)


async def _backend(session: Session, ip: str) -> VNish:
    return await identified_backend(session, ip, VNish)


async def test_identify_every_simulated_model(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners(ALL_MODELS)
    for ip, sim in fleet.miners.items():
        info = (await _backend(session, ip)).device
        assert (info.make, info.model, info.firmware) == ("AntMiner", sim.model_name, "VNish")
        assert info.hardware.chips_per_board == sim.state.model.chips_per_board


async def test_identify_reads_the_model_from_info(vnish_miners: Start) -> None:
    """The model comes from `info` (RPC `stats`' `Type` when the web API cannot tell); where neither answers,
    the web API's error is what identification reports."""
    fleet, session = await vnish_miners()
    ip, sim = only(fleet)
    version = await rpc_call(ip, "version", settings=session.settings)
    probe = Probe(ip=lo("127.103.0.9"), web=None, rpc={"version": version})  # nothing serves the web port there
    assert VNish.matches(probe)
    with pytest.raises(MinerConnectionError, match="api/v1/info"):
        await VNish.identify(probe, session)
    page = HttpReply(200, {}, b"<title>AnthillOS</title>")
    info = await VNish.identify(Probe(ip=ip, web=page), session)
    assert info is not None and info.model == sim.model_name


async def test_get_data_matches_the_simulator_state(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners(("Antminer S19 Pro", "Antminer S21"))
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, VNishSim)
        data = await (await _backend(session, ip)).get_data()
        state, inventory = sim.state, sim.inventory()
        assert data.errors == []
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(data.hashrate.value,
                                                                                           rel=0.001)
        assert data.expected_hashrate is not None
        assert data.expected_hashrate.value == pytest.approx(state.model.nominal_ths, rel=0.01)  # the nominal preset
        assert [b.board_temperature for b in data.hashboards] == [max(sim._board_temps(i)[0]) for i in range(3)]
        assert [b.frequency for b in data.hashboards] == [sim.hardware[2]] * 3
        assert [b.serial_number for b in data.hashboards] == state.extra["board_serials"]
        assert all(b.active for b in data.hashboards) and len(data.hashboards) == 3
        assert [f.rpm for f in data.fans] == state.fan_rpms
        assert (data.mac, data.hostname, data.serial_number) == (state.mac, state.hostname, state.serial)
        assert data.firmware_version == state.firmware_version == inventory["firmware_version"]
        assert data.control_board_version == sim.hardware[1]
        assert data.wattage == round(state.wattage)
        assert data.wattage_limit == state.power_limit == round(state.model.nominal_watts)
        assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 61  # to the minute
        assert [[(p.url, p.user) for p in g.pools] for g in data.pools] == [
            [(p.url, p.username) for p in g.pools] for g in state.pools]
        assert data.pools[0].pools[0].active is True and data.pools[0].pools[0].accepted_shares == state.accepted
        assert data.is_mining is True and data.light_flashing is False and data.messages == []
        assert data.tuning_target is not None and data.tuning_target.target_mode == inventory["preset"]


@pytest.mark.parametrize("version", ["1.2.6", "1.2.7", "1.3.4"])
async def test_every_release_reads_alike(vnish_miners: Start, version: str) -> None:
    fleet, session = await vnish_miners()
    ip, sim = only(fleet)
    sim.state.firmware_version = version  # 1.3 serves `boards` where 1.2 served `chains`; neither is needed
    data = await (await _backend(session, ip)).get_data()
    assert data.errors == [] and data.firmware_version == version
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
    assert len(data.hashboards) == 3 and data.wattage == round(sim.state.wattage)


async def test_get_data_sends_each_request_once(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    sim.requests.clear()
    await backend.get_data()
    assert dict(sim.requests) == {"80:POST /api/v1/unlock": 1, "80:GET /api/v1/info": 1, "80:GET /api/v1/summary": 1,
                                  "80:GET /api/v1/status": 1, "80:GET /api/v1/settings": 1,
                                  "80:GET /api/v1/chains/factory-info": 1}
    sim.requests.clear()
    await backend.get_data()  # the token is kept
    assert "80:POST /api/v1/unlock" not in sim.requests
    sim.requests.clear()
    await backend.get_data([DataField.WATTAGE, DataField.HASHRATE])
    assert dict(sim.requests) == {"80:GET /api/v1/summary": 1}


async def test_a_lapsed_token_is_renewed_once(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    await backend.get_data([DataField.WATTAGE_LIMIT])
    sim.state.extra["tokens"].clear()  # the miner forgot it (a reboot, a timeout)
    sim.requests.clear()
    data = await backend.get_data([DataField.WATTAGE_LIMIT])
    assert data.wattage_limit == sim.state.power_limit and data.errors == []
    assert sim.requests["80:GET /api/v1/settings"] == 2 and sim.requests["80:POST /api/v1/unlock"] == 1


async def test_fault_light_is_read_before_the_toggle(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.set_fault_light(True) is True and sim.state.fault_light is True
    assert await backend.set_fault_light(True) is True and sim.state.fault_light is True  # not toggled off
    assert sim.requests["80:POST /api/v1/find-miner"] == 1
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False) is True and sim.state.fault_light is False
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is False


async def test_pause_and_resume(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners(("Antminer S19 XP",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    normal = sim.inventory()["hashrate_ths"]
    assert await backend.pause() is True
    paused = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE, DataField.WATTAGE])
    assert paused.is_mining is False and paused.hashrate is not None and paused.hashrate.value == 0
    assert paused.wattage == STOPPED_WATTS
    assert await backend.resume() is True
    resumed = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE])
    assert resumed.is_mining is True
    assert resumed.hashrate is not None and resumed.hashrate.value == pytest.approx(normal, rel=0.01)


async def test_restart_reboots(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.restart() is True
    await asyncio.sleep(0.15)
    down = await backend.get_data([DataField.UPTIME])
    assert down.uptime is None and down.errors
    await asyncio.sleep(sim.restart_seconds + 0.3)
    up = await backend.get_data([DataField.UPTIME, DataField.WATTAGE_LIMIT])
    assert up.uptime is not None and up.uptime.total_seconds() < 60
    assert up.wattage_limit == sim.state.power_limit  # a fresh token after the reboot


async def test_power_limit_and_tuning_by_preset(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners(("Antminer S21",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    default_ths = sim.inventory()["hashrate_ths"]
    assert await backend.set_power_limit(3000) is True
    chosen = preset_for_watts(sim.presets(), 3000)
    assert sim.state.extra["preset"] == chosen["name"] and int(chosen["name"]) <= 3000
    data = await backend.get_data([DataField.WATTAGE_LIMIT, DataField.HASHRATE, DataField.TUNING_TARGET])
    assert data.wattage_limit == int(chosen["name"])
    assert data.hashrate is not None and data.hashrate.value < default_ths
    assert await backend.power_limit_held(3000) == int(chosen["name"])
    assert await backend.get_tuning_config() == TuningConfig.mode(chosen["name"])
    assert await backend.set_tuning_config(TuningConfig.mode("disabled")) is True
    assert (await backend.get_data([DataField.WATTAGE_LIMIT])).wattage_limit is None
    before = dict(sim.requests)
    with pytest.raises(ValueError, match="no preset 'turbo'"):
        await backend.set_tuning_config(TuningConfig.mode("turbo"))
    with pytest.raises(ValueError, match="or less"):
        await backend.set_power_limit(100)
    with pytest.raises(ValueError, match="not by hash rate"):
        await backend.set_tuning_config(TuningConfig.hashrate(HashRate(value=150, unit="TH/s")))
    sent = {k: v - before.get(k, 0) for k, v in sim.requests.items() if v != before.get(k, 0)}
    assert sent == {"80:GET /api/v1/autotune/presets": 2}  # refused after reading the presets, before any write
    with pytest.raises(MinerAPIError, match="HTTP 500: Unknown preset 9999"):  # the firmware's own `err` text
        await backend.request("POST", "settings", locked=True, json={"miner": {"overclock": {"preset": "9999"}}})


async def test_pools_round_trip(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    new = [PoolGroup(name="default", pools=[Pool(url="stratum+tcp://a.example.net:3333", username="w.1",
                                                 password="secret"),
                                            Pool(url="stratum+ssl://b.example.net:443", username="w.1")])]
    assert await backend.set_pools_config(new) is True
    assert sim.state.pools == new
    assert await backend.get_pools_config() == new  # settings keep the passwords
    data = await backend.get_data([DataField.POOLS])
    assert [p.url for p in data.pools[0].pools] == [p.url for p in new[0].pools]
    sim.requests.clear()
    with pytest.raises(ValueError, match="one pool group"):
        await backend.set_pools_config([*new, PoolGroup(name="b", pools=new[0].pools)])
    with pytest.raises(ValueError, match="one pool group"):
        await backend.set_pools_config([])
    assert sim.total_requests == 0 and sim.state.pools == new


async def test_fan_round_trip(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners(("Antminer T21",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    auto_rpms = list(sim.state.fan_rpms)
    assert await backend.get_fan_config() == FanConfig.auto(target_temp=60)
    assert await backend.set_fan_config(FanConfig.manual(60)) is True
    assert await backend.get_fan_config() == FanConfig.manual(60)
    assert [f.rpm for f in (await backend.get_data([DataField.FANS])).fans] == [3600] * 4
    with pytest.raises(ValueError, match="give target_temp"):  # from manual fans no current target to keep
        await backend.set_fan_config(FanConfig.auto())
    assert await backend.set_fan_config(FanConfig.auto(target_temp=70)) is True
    assert await backend.get_fan_config() == FanConfig.auto(target_temp=70)
    assert [f.rpm for f in (await backend.get_data([DataField.FANS])).fans] == auto_rpms
    assert await backend.set_fan_config(FanConfig.auto()) is True  # keeps the current target
    assert await backend.get_fan_config() == FanConfig.auto(target_temp=70)
    sim.requests.clear()
    with pytest.raises(UnsupportedControlError):
        await backend.set_fan_config(FanConfig.auto(idle_speed=30))
    with pytest.raises(ValueError, match=r"20\.\.90"):
        await backend.set_fan_config(FanConfig.auto(target_temp=110))
    assert sim.total_requests == 0


async def test_rollout_controls_apply_verify_and_restore(vnish_miners: Start) -> None:
    """The rollout layer's controls on a VNish miner: each is applied, read back as verified, and (where
    reversible) restored to the recorded previous value."""
    from fleet.controls import FanControl, FaultLightControl, MiningControl, PoolsControl, RestartControl

    fleet, session = await vnish_miners()
    ip, sim = only(fleet)
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None
    miner = found.miner
    pools = PoolsControl(groups=[PoolGroup(pools=[Pool(url="stratum+tcp://r.example.net:3333", username="f.{ip}")])])
    controls = [pools.for_miner({"ip": ip.replace(".", "_")}), FanControl(config=FanConfig.manual(70)),
                FaultLightControl(on=True), MiningControl(mining=False)]
    for control in controls:
        previous = await control.read_current(miner)
        await control.apply(miner)
        outcome = await control.verify(miner, time.time())
        assert outcome.state == "verified", (control, outcome)
        back = control.restore(previous)
        if back is not None:
            await back.apply(miner)
            assert (await back.verify(miner, time.time())).state == "verified", back
    assert sim.state.pools[0].pools[0].url == "stratum+tcp://pool.example.com:3333"  # restored
    assert sim.state.fan == FanConfig.auto(target_temp=60) and sim.state.fault_light is False
    assert sim.state.mining is True
    restart = RestartControl()
    sent = time.time()
    await restart.apply(miner)
    await asyncio.sleep(sim.restart_seconds + 0.3)
    assert (await restart.verify(miner, sent)).state == "verified"


async def test_change_password(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.change_password("n3w-secret") is True and sim.state.password == "n3w-secret"
    fresh = await _backend(session, ip)  # a new handle on the same session unlocks with the remembered password
    assert (await fresh.get_data([DataField.WATTAGE_LIMIT])).wattage_limit == sim.state.power_limit
    assert await fresh.change_password("admin") is True and sim.state.password == "admin"
    with pytest.raises(ValueError, match="must not be empty"):
        await backend.change_password("")


async def test_unsupported_controls_and_a_wrong_password(vnish_miners: Start) -> None:
    fleet, session = await vnish_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    for control in ("read_logs", "factory_reset", "upgrade_firmware", "get_scaling_config", "set_scaling_config"):
        assert not VNish.supports(control), control
    with pytest.raises(UnsupportedControlError):
        await backend.read_logs()
    for control in ("restart", "pause", "resume", "set_fault_light", "set_power_limit", "get_pools_config",
                    "change_password",
                    "set_pools_config", "get_tuning_config", "set_tuning_config", "get_fan_config",
                    "set_fan_config"):
        assert VNish.supports(control), control
    sim.state.password = "changed-on-the-miner"
    data = await backend.get_data()
    assert data.hashrate is not None and data.mac == sim.state.mac  # reads that need no token still work
    assert data.wattage_limit is None and any("settings" in e for e in data.errors)
    with pytest.raises(AuthenticationError):
        await backend.pause()
    assert sim.state.mining is True


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_fault_modes_yield_errors_without_hanging(vnish_miners: Start, fault: Fault) -> None:
    fleet, session = await vnish_miners()
    ip, _ = only(fleet)
    backend = await _backend(session, ip)
    fleet.set_fault(ip, fault)
    started = time.monotonic()
    data = await asyncio.wait_for(backend.get_data(), 10)
    assert time.monotonic() - started < 6
    if fault is Fault.AUTH_FAILURE:  # only the settings need a token; every unlock is refused
        assert data.hashrate is not None and data.wattage_limit is None and data.errors
    else:
        assert data.errors and data.hashrate is None


async def test_mixed_scan_tells_vnish_from_stock() -> None:
    miners = []
    for i, (kind, name) in enumerate([(VNishSim, "Antminer S19j Pro"), (AntminerStockSim, "Antminer S19j Pro"),
                                      (VNishSim, "Antminer S21"), (AntminerStockSim, "Antminer S21")]):
        model = lookup_model("AntMiner", name)
        assert model is not None
        miners.append(kind.build(lo(f"127.103.250.{20 + i}"), model, random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.103.250.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)


async def test_distributed_scan_reads_vnish_beside_stock() -> None:
    """`asicfleet scan --distributed` (a private Redis and one Celery worker) identifies and reads VNish
    miners as the in-process scan does."""
    miners = []
    for i, (kind, name) in enumerate([(VNishSim, "Antminer S19 Pro"), (AntminerStockSim, "Antminer S19 Pro"),
                                      (VNishSim, "Antminer T21")]):
        model = lookup_model("AntMiner", name)
        assert model is not None
        miners.append(kind.build(lo(f"127.103.251.{1 + i}"), model, random.Random(i)))
    async with SimFleet(miners) as fleet:
        ports = ["--ports", str(fleet.ports)] if fleet.ports is not None and fleet.ports.overrides else []
        env = {k: v for k, v in os.environ.items() if k not in ("ASICFLEET_REDIS_URL", "ASICFLEET_BROKER_URL")}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orchestrator.cli", "scan", lo("127.103.251.0/29"), "--distributed",
            "--local-workers", "1", "--json", "--no-progress", *ports, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 240)
        assert process.returncode == 0, err.decode()[-2000:]
        found = {row["ip"]: row for row in map(json.loads, out.decode().splitlines())}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            row = found[ip]
            assert (row["device_info"]["model"], row["device_info"]["firmware"]) == (sim.model_name, sim.firmware)
            assert row["errors"] == [] and row["hashrate"]["value"] == pytest.approx(
                sim.inventory()["hashrate_ths"], rel=0.01)


# ===== (d) the independent clients against the simulator ===============================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


def norm(model: str) -> str:
    known = lookup_model("AntMiner", model)
    assert known is not None, f"{model!r} is not a known Antminer model"
    return known.name


@pytest.mark.interop
async def test_pyasic_reads_every_model(vnish_miners: Start) -> None:
    """pyasic: `GET /` ("AnthillOS") or RPC version/devdetails ("VNISH") identify; the model from RPC `stats`
    `STATS[0].Type`; get_data reads RPC version, summary, stats, pools and web unlock, info, summary, settings,
    autotune/presets, perf-summary. Its wattage is `summary.miner.power_usage`, which the spec defines as the
    efficiency (J/TH), so that is what it reports; its hostname is looked up in `summary` and stays None."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await vnish_miners(ALL_MODELS)
    _real_ports(fleet)
    for ip, sim in fleet.miners.items():
        miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.make, data.firmware) == (inventory["make"], inventory["firmware"])
        assert norm(f"Antminer {data.model}") == inventory["model"]
        assert data.hashrate is not None
        assert float(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.fw_ver == inventory["firmware_version"] and data.mac == inventory["mac"]
        assert data.wattage_limit == sim.state.power_limit
        assert [f.speed for f in data.fans] == sim.state.fan_rpms
        assert data.wattage == pytest.approx(sim.state.wattage / inventory["hashrate_ths"], abs=1)  # J/TH, see above


@pytest.mark.interop
async def test_pyasic_rs_reads_every_model(vnish_miners: Start) -> None:
    """pyasic-rs: RPC version ("VNISH") or `GET /` identify; the model and version from `/api/v1/info`; get_data
    unlocks, then reads summary, info, status, settings, chains and chains/factory-info (VNish 1.2 backend). It
    lists the firmware's DevFee pool among the pools; we leave it out."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await vnish_miners(ALL_MODELS)
    _real_ports(fleet)
    factory = RsFactory()
    for ip, sim in fleet.miners.items():
        miner = await factory.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert data.device_info.make.lower() == inventory["make"].lower()
        assert data.device_info.firmware == inventory["firmware"]
        assert norm(f"Antminer {data.device_info.model}") == inventory["model"]
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.mac == inventory["mac"] and data.firmware_version == inventory["firmware_version"]
        assert data.hostname == inventory["hostname"] and data.wattage == round(sim.state.wattage)
        assert [b.hashrate.value for b in data.hashboards] == pytest.approx(
            [r / 1000 for r in sim._board_rates_ghs()], rel=0.001)
        users = [p.url for g in data.pools for p in g.pools]
        assert len(users) == len(sim.state.pools[0].pools) + 1 and "DevFee" in str(users[-1])


@pytest.mark.interop
@pytest.mark.parametrize("version", ["1.2.6", "1.3.4"])
async def test_interop_controls_change_the_simulator(vnish_miners: Start, version: str) -> None:
    """Both clients' controls land in the simulator's state. The mining actions answer 200 with no body, as the
    spec says; pyasic then raises (it parses the empty body as JSON) and pyasic-rs reports False (1.2) or raises
    (1.3), although the miner did what was asked."""
    import pyasic
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await vnish_miners()
    _real_ports(fleet)
    ip, sim = only(fleet)
    sim.state.firmware_version = version
    miner = await pyasic.get_miner(ip)
    assert await miner.fault_light_on() is True and sim.state.fault_light is True
    assert await miner.fault_light_off() is True and sim.state.fault_light is False
    with pytest.raises(pyasic.errors.APIError, match="empty response"):
        await miner.stop_mining()
    assert sim.state.mining is False
    rs_miner = await RsFactory().get_miner(ip)
    try:  # its 1.2 backend reports False for the empty reply, its 1.3 backend raises "error decoding response body"
        await rs_miner.resume()
    except RuntimeError as exc:
        assert "decoding response body" in str(exc)
    assert sim.state.mining is True
    assert await rs_miner.set_fault_light(True) and sim.state.fault_light is True
    assert await rs_miner.set_power_limit(3000.0)
    assert sim.state.extra["preset"] == preset_for_watts(sim.presets(), 3000)["name"]
