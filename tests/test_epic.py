"""ePIC UMC OS (PowerPlay) on Antminer hardware: parsers on the captured replies, the simulator's replies against
ePIC's own OpenAPI schemas (1.22.5 and 1.30.0), the backend against the simulator over loopback, identification
beside stock Antminer and the other families, and the simulator against pyasic and pyasic-rs (marker `interop`).

Addresses: 127.180.0.0/16 and 127.181.0.0/16 only (through `lo`). Captures: ../shared/fixtures/asic-rs/responses/epic
(see tests/fixtures/epic/README.md); specifications: ../shared/fixtures/asic-rs/meta/epic.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from asicfleet import MinerFactory, UnsupportedControlError
from asicfleet._errors import AuthenticationError, MinerAPIError, MinerResponseError
from asicfleet._session import CredentialRule, Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.epic import (
    EPic,
    model_from_capabilities,
    parse_chips,
    parse_fan_config,
    parse_firmware_version,
    parse_hashboards,
    tune_algorithms,
)
from asicfleet.config import FanConfig, Pool, PoolGroup, ScalingConfig, TuningConfig
from asicfleet.data import HashRate, MessageSeverity
from asicfleet.discovery._identify import identify
from asicfleet.hardware import lookup_model
from asicfleet.sim import Fault, HttpRequest, SimFleet, make_sim_image
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.epic import POWER_TUNED_MODELS, STOPPED_WATTS, EPicSim
from asicfleet.sim.luxos import LuxOSSim
from asicfleet.sim.vnish import VNishSim
from asicfleet.transport import HttpReply, PortMap, rpc_call
from tests.conftest import fixture_bytes, identified_backend, lo, only_miner

SPECS = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "asic-rs" / "meta" / "epic"
LOCAL = Path(__file__).resolve().parent / "fixtures" / "epic"
ALL_MODELS = EPicSim.models
CAPTURED = {"web:summary": "summary", "web:capabilities": "capabilities", "web:network": "network",
            "web:temps": "temps", "web:hashrate": "chip_hashrates", "web:temps/chip": "chip_temps",
            "web:voltages": "chip_voltages", "web:clocks": "chip_clocks"}


def captured(name: str) -> Any:
    return json.loads(fixture_bytes("epic", "v1", f"{name}.json"))


def fixture_backend(model: str = "Antminer S19 XP") -> EPic:
    return EPic(lo("127.180.0.1"), EPic.device_info("AntMiner", model, "ePIC"), Session())


# ===== (a) parsers, on the captured replies of PowerPlay-BMS 1.5.13 on an S19 XP ===========================
def test_every_captured_reply_reads() -> None:
    raw = {key: fixture_bytes("epic", "v1", f"{name}.json") for key, name in CAPTURED.items()}
    data = fixture_backend().parse_raw(raw)
    assert data.errors == []
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(99.365848)  # 49440724 + 49925124 MH/s
    assert data.wattage == pytest.approx(2166.6174) and data.uptime == timedelta(seconds=23170)
    assert (data.hostname, data.firmware_version, data.mac) == ("cminer32092035", "1.5.13", "E6:D4:41:51:64:28")
    assert data.serial_number == "002000353232510933363631"  # no `Miner Serial Number`: the control board's
    assert data.control_board_version == "STM32 (Device Tree Support)"
    assert data.expected_hashrate == HashRate(value=143, unit="TH/s")
    assert [(f.position, f.rpm) for f in data.fans] == [(0, 5971), (1, 0), (2, 5942), (3, 5745)]
    assert data.is_mining is True and data.light_flashing is False and data.messages == []
    assert data.wattage_limit is None  # the Voltage Optimizer holds a hash rate target
    assert data.tuning_target is not None and data.tuning_target.target_mode == "VoltageOptimizer"
    assert data.tuning_target.target_hashrate == HashRate(value=143, unit="TH/s")
    assert data.scaled_tuning_target is None  # `Throttle Target` null: not throttled
    [group] = data.pools
    assert [(p.position, p.url, p.user, p.active, p.alive, p.accepted_shares, p.rejected_shares)
            for p in group.pools] == [(0, "stratum+tcp://mine.ocean.xyz:3334", "randomuser.randomworker", True, True,
                                       1862, 2)]
    capabilities = data.tuning_capabilities
    assert capabilities is not None and capabilities.power is None and capabilities.hashrate is not None
    assert capabilities.hashrate.minimum is not None and capabilities.hashrate.maximum is not None
    assert capabilities.hashrate.minimum.target_hashrate == HashRate(value=60, unit="TH/s")
    assert capabilities.hashrate.maximum.target_hashrate == HashRate(value=300, unit="TH/s")
    assert capabilities.presets is not None
    assert [(p.target_watts, p.target_hashrate.value if p.target_hashrate else None) for p in capabilities.presets] == [
        (1700, 80), (2200, 100), (2700, 120), (3350, 142), (3850, 154), (4400, 169)]


def test_captured_hashboards_and_chips() -> None:
    """Board 0 is detected but disabled (no `HBs` row, no serial); boards 1 and 2 hash with 110 chips each."""
    boards = {name: captured(name) for name in CAPTURED.values()}
    chips = parse_chips(boards["chip_hashrates"], boards["chip_temps"], boards["chip_voltages"], boards["chip_clocks"])
    assert sorted(chips) == [1, 2] and [len(chips[i]) for i in (1, 2)] == [110, 110]  # the enabled boards
    assert chips[1][69].hashrate == HashRate(value=305937.8, unit="MH/s").into_unit("TH/s")  # as asic-rs reads it
    assert chips[2][72].hashrate == HashRate(value=487695.28, unit="MH/s").into_unit("TH/s")
    assert chips[1][0].frequency == 487.5 and chips[1][0].working is True
    assert chips[1][0].temperature is None and chips[1][0].voltage is None  # 0.0: the S19 XP has no chip sensors
    hashboards = parse_hashboards(boards["summary"], boards["capabilities"], boards["temps"], chips)
    off, first, second = hashboards
    assert (off.active, off.hashrate, off.serial_number, off.working_chips, off.chips) == (False, None, None, 0, [])
    assert (off.intake_temperature, off.outlet_temperature) == (42.312, 42.875)
    assert first.active is True and first.hashrate == HashRate(value=49.440724, unit="TH/s")
    assert (first.serial_number, second.serial_number) == ("YNAHYPDBCJEBC0D6S", "YNAHYPDBCJEBC0C6R")
    assert (first.board_temperature, first.intake_temperature, first.outlet_temperature) == (67.0, 55.062, 67.0)
    assert (second.board_temperature, second.intake_temperature) == (64.312, 52.062)
    assert (first.voltage, first.frequency, first.expected_chips, first.working_chips) == (12.6, 487.5, 110, 110)
    assert first.tuned is False  # the tuner has not optimised yet
    assert first.expected_hashrate is not None  # 110 chips x 894 MH/s per MHz x 487.5 MHz
    assert first.expected_hashrate.value == pytest.approx(110 * 894 * 487.5 / 1e6)
    # per-chip figures of another moment than the summary's: their sum is 49.158 TH/s, not 49.925
    assert sum(c.hashrate.value for c in second.chips if c.hashrate) == pytest.approx(49.158, abs=0.001)


def test_identification_facts_from_capabilities() -> None:
    capabilities = captured("capabilities")
    assert model_from_capabilities(capabilities) == ("AntMiner", "Antminer S19 XP")
    assert tune_algorithms(capabilities) == ["VoltageOptimizer", "ChipTune", "BoardTune"]
    assert model_from_capabilities({"Model": "BLOCKMINER 520i"}) == ("ePIC", "BLOCKMINER 520i")
    assert model_from_capabilities({"Model": "AntMiner S19k Pro Dual"}) == ("ePIC", "ANTMINER S19K PRO DUAL")
    dual = EPic.device_info("ePIC", "ANTMINER S19K PRO DUAL", "ePIC").hardware
    assert (dual.board_count, dual.chips_per_board, dual.fans) == (6, 77, 8)  # as pyasic and asic-rs have it
    assert model_from_capabilities({"Model": "undefined"}) is None and model_from_capabilities([]) is None
    assert model_from_capabilities({"Model": "AntMiner S99"}) == ("AntMiner", "AntMiner S99")  # kept, never guessed
    assert parse_firmware_version("PowerPlay-BMS v1.5.13") == "1.5.13" and parse_firmware_version("") is None
    assert parse_fan_config(captured("summary")) == FanConfig.auto(target_temp=60, idle_speed=20)


def test_a_stopped_power_tuned_miner_reads_as_such() -> None:
    """The restated reply (tests/fixtures/epic/README.md): idle, a power target throttled twice, manual fans."""
    data = fixture_backend("Antminer S21").parse_raw({"web:summary": (LOCAL / "summary_power_idle.json").read_bytes()})
    assert data.errors == []
    assert data.is_mining is False and data.light_flashing is True
    assert data.hashrate == HashRate(value=0, unit="TH/s") and data.wattage == 23.5
    assert data.wattage_limit == 3200
    assert data.tuning_target is not None and data.tuning_target.target_watts == 3200
    assert data.scaled_tuning_target is not None and data.scaled_tuning_target.target_watts == 2900  # the lower
    assert [(m.message, m.severity) for m in data.messages] == [("Hashboard 0 failed to initialize",
                                                                 MessageSeverity.ERROR)]
    [group] = data.pools
    assert [(p.url, p.active, p.alive) for p in group.pools] == [("stratum+tcp://mine.ocean.xyz:3334", True, False),
                                                                ("stratum+tcp://backup.example.com:3333", False, None)]
    assert parse_fan_config(json.loads((LOCAL / "summary_power_idle.json").read_text())) == FanConfig.manual(70)


def test_a_hostile_summary_costs_its_fields_only() -> None:
    bad = {"HBs": "none", "Fans Rpm": [1, 2], "StratumConfigs": {}, "Session": {"Uptime": "long"},
           "PerpetualTune": {"Algorithm": []}}
    data = fixture_backend().extract({"web:summary": bad, "web:network": captured("network")})
    assert data.hashrate is not None and data.hashrate.value == 0  # `HBs` that is no list holds no hashing board
    assert data.fans == [] and data.uptime is None and data.tuning_target is None
    assert data.mac == "E6:D4:41:51:64:28"


def _probe(rpc: Any = None, web: HttpReply | None = None) -> Probe:
    return Probe(ip="127.0.0.1", web=web, rpc={"version": rpc} if rpc is not None else {})


def test_matches_signals() -> None:
    """The dashboard page says ePIC; without a page, an HTTP reply on the RPC port is worth a look; a stock
    Antminer's digest challenge is not ePIC, and ePIC's page is not a stock Antminer."""
    page = HttpReply(200, {"content-type": "text/html"}, b"<title>Miner Web Dashboard</title>")
    http_on_4028 = MinerResponseError("malformed JSON (Expecting value at byte 0): 'HTTP/1.1 400 Bad Request\\r\\n'")
    assert EPic.matches(_probe(http_on_4028, page)) and EPic.matches(_probe(None, page))
    assert not AntminerStock.matches(_probe(http_on_4028, page))
    assert EPic.matches(_probe(http_on_4028))  # no web reply: the hint alone
    stock = HttpReply(401, {"www-authenticate": 'Digest realm="antMiner Configuration", nonce="1"'}, b"")
    assert not EPic.matches(_probe(http_on_4028, stock)) and not EPic.matches(_probe(None, stock))
    assert not EPic.matches(_probe(MinerResponseError("malformed JSON: 'garbage'")))
    assert not EPic.matches(_probe())
    assert backend_for("epic") is EPic and BACKENDS.index(EPic) < BACKENDS.index(AntminerStock)


# ===== (b) the simulator's replies against ePIC's OpenAPI schemas ======================================
def _nullable_as_null(value: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` (the 1.22.5 spec) as JSON Schema's `null` type (what 1.30.0 writes)."""
    if isinstance(value, list):
        return [_nullable_as_null(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _nullable_as_null(v) for k, v in value.items() if k != "nullable"}
    if value.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "type" not in out:
            out = {"oneOf": [{"type": "null"}, out]}
    return out


def _schema_checker(version: str, route: str, method: str = "get") -> Callable[[Any], None]:
    from jsonschema import Draft202012Validator

    doc = _nullable_as_null(json.loads((SPECS / version / "powerplay.json").read_text()))
    reply = doc["paths"][route][method]["responses"]["200"]
    schema = {**reply["content"]["application/json"]["schema"], "components": doc["components"]}
    validator = Draft202012Validator(schema)

    def leaves(error: Any) -> list[str]:  # a oneOf failure hides the reason in its context
        inner = [m for sub in error.context or [] for m in leaves(sub)]
        return inner or [f"{list(error.absolute_path)}: {error.message[:120]}"]

    def check(value: Any) -> None:
        errors = [m for e in validator.iter_errors(value) for m in leaves(e)]
        assert not errors, f"{version} {route}: " + "; ".join(errors[:6])
    return check


# Schemas a spec's generator wrote against the replies: 1.22.5 has `network` as an enum of two examples typed as
# a string and `hashratesplit/config` with one split object where 1.30.0 has a list; 1.30.0 gives `temps` one
# number per board for `temps`, `temps/board`, `temps/chip`, `voltages` and `clocks`, where 1.22.5 and the
# captured replies have a list per board (every sensor's or chip's reading: `Data: [42.312, 42.875]`)
UNUSABLE_SCHEMAS = {"1.22.5": {"network", "hashratesplit/config"},
                    "1.30.0": {"temps", "temps/board", "temps/chip", "voltages", "clocks"}}


def _request(method: str, route: str, body: Any = None) -> HttpRequest:
    return HttpRequest(method=method, path=f"/{route}", query="", headers={},
                       body=json.dumps(body).encode() if body is not None else b"", port=4028)


@pytest.mark.parametrize("version", ["1.22.5", "1.30.0"])
@pytest.mark.parametrize("model", ["Antminer S19 XP", "Antminer S21"])
async def test_simulated_replies_follow_the_spec(version: str, model: str) -> None:
    known = lookup_model("AntMiner", model)
    assert known is not None
    sim = EPicSim.build(lo("127.180.0.2"), known, random.Random(3))
    assert isinstance(sim, EPicSim)
    for route in ("summary", "capabilities", "network", "temps", "temps/board", "temps/chip", "hashrate", "voltages",
                  "clocks",
                  "perpetualtune", "hashratesplit/config", "hashratesplit/status"):
        reply = await sim.handle_http(_request("GET", route))
        assert reply.status == 200, route
        if route in UNUSABLE_SCHEMAS[version]:
            continue
        _schema_checker(version, f"/{route}")(json.loads(reply.body))
    for route, param in (("miner", "Stop"), ("identify", True), ("fanspeed", {"Manual": 80}), ("reboot", 0),
                         ("coin", {"coin": "BTC", "stratum_configs": [{"pool": "stratum+tcp://p.example:3333",
                                                                      "login": "w"}]}),
                         ("perpetualtune/algo", {"algo": "ChipTune", "target": 120})):
        reply = await sim.handle_http(_request("POST", route, {"param": param, "password": "letmein"}))
        _schema_checker(version, f"/{route}", "post")(json.loads(reply.body))
        assert json.loads(reply.body) == {"result": True, "error": None}, route
    stopped = await sim.handle_http(_request("GET", "summary"))
    _schema_checker(version, "/summary")(json.loads(stopped.body))  # a stopped miner's summary too


async def test_posts_need_the_password_and_a_param() -> None:
    known = lookup_model("AntMiner", "Antminer S19 XP")
    assert known is not None
    sim = EPicSim.build(lo("127.180.0.3"), known, random.Random(1))
    wrong = await sim.handle_http(_request("POST", "miner", {"param": "Stop", "password": "admin"}))
    assert json.loads(wrong.body) == {"result": False, "error": "BadPassword"} and sim.state.mining is True
    missing = await sim.handle_http(_request("POST", "miner", {"password": "letmein"}))
    assert json.loads(missing.body)["error"] == "MissingParam"
    power = await sim.handle_http(_request("POST", "perpetualtune/algo",
                                           {"param": {"algo": "Power", "target": 3000}, "password": "letmein"}))
    assert json.loads(power.body)["error"] == "MissingParam"  # the S19 XP offers no power tuner
    assert (await sim.handle_http(_request("GET", "nothing"))).status == 404
    assert (await sim.handle_http(HttpRequest("GET", "/", "", {}, b"", 80))).body.count(b"Miner Web Dashboard") == 1


# ===== (c) against the simulator over loopback ==========================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
def epic_miners(family_miners: Callable[..., Start]) -> Start:
    """`fleet, session = await epic_miners(models)`: one simulated miner per model on its own 127.180.N.x block
    (conftest's `family_miners`)."""
    return family_miners(EPicSim, "127.180", ("Antminer S21",))


def only(fleet: SimFleet) -> tuple[str, EPicSim]:
    return only_miner(fleet, EPicSim)


async def _backend(session: Session, ip: str) -> EPic:
    return await identified_backend(session, ip, EPic)


async def test_identify_every_simulated_model(epic_miners: Start) -> None:
    fleet, session = await epic_miners(ALL_MODELS)
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, EPicSim)
        backend = await _backend(session, ip)
        info = backend.device
        assert (info.make, info.model, info.firmware) == ("AntMiner", sim.model_name, "ePIC")
        assert info.hardware.chips_per_board == sim.state.model.chips_per_board
        assert backend.learned["tune_algorithms"] == sim.offers
        assert backend.can("set_power_limit") is (sim.model_name in POWER_TUNED_MODELS)


async def test_identification_costs_three_requests_and_an_empty_address_one_attempt(epic_miners: Start) -> None:
    """The page on 80 and the RPC probe on 4028 (answered 400: it is HTTP), then `capabilities` for the model.
    An address where nothing listens is absent after its one connection attempt, ePIC or not."""
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    sim.requests.clear()
    await _backend(session, ip)
    assert dict(sim.requests) == {"80:GET /": 1, "4028:not http": 1, "4028:GET /capabilities": 1}
    empty = await identify(lo("127.180.200.1"), session, timeout=5)
    assert empty.miner is None and empty.absent == "refused" and empty.error is None


async def test_the_rpc_hint_alone_identifies(epic_miners: Start) -> None:
    """Without the dashboard (port check off, web port unread), the RPC probe's HTTP reply leads to `capabilities`."""
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    with pytest.raises(MinerResponseError, match=r"HTTP/1\.1 400") as refused:
        await rpc_call(ip, "version", settings=session.settings)
    probe = Probe(ip=ip, web=None, rpc={"version": refused.value})
    assert EPic.matches(probe)
    info = await EPic.identify(probe, session)
    assert info is not None and info.model == sim.model_name and probe.learned["tune_algorithms"] == sim.offers
    nobody = Probe(ip=lo("127.180.200.2"), web=None, rpc={"version": refused.value})
    assert await EPic.identify(nobody, session) is None  # a hint without a miner behind it is no error


async def test_get_data_matches_the_simulator_state(epic_miners: Start) -> None:
    fleet, session = await epic_miners(("Antminer S19 XP", "Antminer S21"))
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, EPicSim)
        data = await (await _backend(session, ip)).get_data()
        state, inventory = sim.state, sim.inventory()
        assert data.errors == []
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=1e-6)
        assert [b.hashrate.value for b in data.hashboards if b.hashrate] == pytest.approx(state.board_hashrates())
        assert all(b.active and b.working_chips == state.model.chips_per_board for b in data.hashboards)
        assert [b.serial_number for b in data.hashboards] == state.extra["board_serials"]
        assert [b.outlet_temperature for b in data.hashboards] == state.board_temps
        assert sum(c.hashrate.value for c in data.hashboards[0].chips if c.hashrate) == pytest.approx(
            state.board_hashrates()[0], rel=1e-6)
        assert data.expected_hashrate == HashRate(value=round(state.model.nominal_ths), unit="TH/s")
        assert [f.rpm for f in data.fans] == state.fan_rpms
        assert (data.mac, data.hostname, data.serial_number) == (state.mac, state.hostname, state.serial)
        assert data.firmware_version == state.firmware_version == "1.5.13"
        assert data.wattage == state.wattage
        assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 2
        assert [[(p.url, p.user) for p in g.pools] for g in data.pools] == [
            [(p.url, p.username) for p in g.pools] for g in state.pools]
        assert data.pools[0].pools[0].accepted_shares == state.accepted
        assert data.is_mining is True and data.light_flashing is False and data.messages == []
        assert data.tuning_target is not None and data.tuning_target.target_mode == "VoltageOptimizer"
        assert data.wattage_limit is None


async def test_get_data_sends_each_request_once(epic_miners: Start) -> None:
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    sim.requests.clear()
    await backend.get_data()
    assert dict(sim.requests) == {f"4028:GET /{route}": 1 for route in (
        "summary", "capabilities", "network", "temps", "hashrate", "temps/chip", "voltages", "clocks")}
    sim.requests.clear()
    await backend.get_data([DataField.WATTAGE, DataField.HASHRATE])
    assert dict(sim.requests) == {"4028:GET /summary": 1}


async def test_pause_resume_and_fault_light(epic_miners: Start) -> None:
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.pause() is True and sim.state.mining is False
    data = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE, DataField.WATTAGE])
    assert data.is_mining is False and data.hashrate == HashRate(value=0, unit="TH/s") and data.wattage == STOPPED_WATTS
    assert await backend.resume() is True and sim.state.mining is True
    assert await backend.set_fault_light(True) is True and sim.state.fault_light is True
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False) is True and sim.state.fault_light is False


async def test_power_limit_where_the_tuner_offers_one(epic_miners: Start) -> None:
    fleet, session = await epic_miners(("Antminer S21", "Antminer S19 XP"))
    (s21_ip, s21), (xp_ip, xp) = fleet.miners.items()
    assert isinstance(s21, EPicSim) and isinstance(xp, EPicSim)
    backend = await _backend(session, s21_ip)
    assert await backend.set_power_limit(3000) is True
    assert (s21.state.extra["algorithm"], s21.state.extra["target"]) == ("Power", 3000)
    assert s21.state.extra["min_throttle"] == 50 and s21.state.extra["throttle_step"] == 5  # kept
    data = await backend.get_data([DataField.WATTAGE_LIMIT, DataField.TUNING_TARGET, DataField.WATTAGE])
    assert data.wattage_limit == 3000 and data.wattage == s21.state.wattage <= 3000
    assert data.tuning_target is not None and data.tuning_target.target_watts == 3000
    assert await backend.get_tuning_config() == TuningConfig.power(3000)
    offered = (await backend.get_data([DataField.TUNING_CAPABILITIES])).tuning_capabilities
    assert offered is not None and offered.power is not None and offered.power.minimum is not None
    assert offered.power.maximum is not None
    assert (offered.power.minimum.target_watts, offered.power.maximum.target_watts) == s21.bounds("Power")
    assert await backend.set_tuning_config(TuningConfig.hashrate(HashRate(value=180, unit="TH/s"))) is True
    assert (s21.state.extra["algorithm"], s21.state.extra["target"]) == ("VoltageOptimizer", 180)
    assert s21.state.hashrate_ths == pytest.approx(180 * s21.state.extra["hash_factor"], rel=1e-3)
    without = await _backend(session, xp_ip)
    xp.requests.clear()
    with pytest.raises(UnsupportedControlError, match="no power target"):
        await without.set_power_limit(3000)
    assert not xp.requests  # refused before anything is sent
    assert await without.set_tuning_config(TuningConfig.mode("ChipTune")) is True
    assert (xp.state.extra["algorithm"], xp.state.extra["target"]) == ("ChipTune", round(xp.state.model.nominal_ths))
    with pytest.raises(ValueError, match="ePIC has no tuning algorithm"):
        await without.set_tuning_config(TuningConfig.mode("turbo"))


async def test_scaling_and_temperature_config(epic_miners: Start) -> None:
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.get_scaling_config() == ScalingConfig(step=5, minimum=50)
    assert await backend.set_scaling_config(ScalingConfig(step=10, minimum=40)) is True
    assert (sim.state.extra["throttle_step"], sim.state.extra["min_throttle"]) == (10, 40)
    assert sim.state.extra["target"] == round(sim.state.model.nominal_ths)  # the target is kept
    temperature = await backend.get_temperature_config()
    assert (temperature.hot, temperature.danger) == (100.0, 85.0)


async def test_pools_round_trip(epic_miners: Start) -> None:
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.get_pools_config() == sim.state.pools
    pools = [Pool(url="stratum+tcp://a.example.com:3333", username="w.1", password="p1"),
             Pool(url="stratum+ssl://b.example.com:443", username="w.2")]
    assert await backend.set_pools_config([PoolGroup(pools=pools)]) is True
    assert sim.state.pools == [PoolGroup(pools=pools)] and sim.state.extra["coin"] == "BTC"
    assert await backend.get_pools_config() == [PoolGroup(pools=pools)]
    with pytest.raises(ValueError, match="exactly one pool group"):
        await backend.set_pools_config([PoolGroup(pools=pools[:1]), PoolGroup(name="b", pools=pools[1:])])


async def test_fan_round_trip(epic_miners: Start) -> None:
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.get_fan_config() == FanConfig.auto(target_temp=60, idle_speed=20)
    assert await backend.set_fan_config(FanConfig.manual(70)) is True
    assert sim.state.fan == FanConfig.manual(70) and sim.state.fan_rpms == [4200] * sim.state.model.fans
    assert await backend.get_fan_config() == FanConfig.manual(70)
    assert await backend.set_fan_config(FanConfig.auto(target_temp=65)) is True  # the idle speed is kept
    assert (sim.state.extra["fan_target"], sim.state.extra["fan_idle"]) == (65, 20)
    assert await backend.get_fan_config() == FanConfig.auto(target_temp=65, idle_speed=20)


async def test_factory_reset_restores_the_defaults(epic_miners: Start) -> None:
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    await backend.set_fan_config(FanConfig.manual(90))
    await backend.set_power_limit(3000)
    await backend.set_fault_light(True)
    assert await backend.factory_reset() is True
    assert sim.state.fan == FanConfig.auto(target_temp=60, idle_speed=20) and sim.state.fault_light is False
    assert (sim.state.extra["algorithm"], sim.state.extra["target"]) == ("VoltageOptimizer",
                                                                         round(sim.state.model.nominal_ths))
    data = await backend.get_data([DataField.TUNING_TARGET, DataField.WATTAGE_LIMIT, DataField.POOLS])
    assert data.wattage_limit is None and data.tuning_target is not None
    assert data.tuning_target.target_hashrate == HashRate(value=round(sim.state.model.nominal_ths), unit="TH/s")
    assert [p.url for p in data.pools[0].pools] == [p.url for p in sim.state.pools[0].pools]  # pools stay


async def test_upgrade_firmware(epic_miners: Start) -> None:
    """The image goes up with its SHA-256; a miner checks it, installs its version and reboots; an image for
    other hardware is refused and nothing changes."""
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    wrong = make_sim_image("1.6.0", "AntMiner", ["Antminer S19"])
    with pytest.raises(MinerAPIError, match="BadUpdateFile"):
        await backend.upgrade_firmware(wrong, "update.zip")
    assert sim.state.firmware_version == "1.5.13" and sim.state.extra["reboots"] == 0
    assert await backend.upgrade_firmware(make_sim_image("1.6.0", "AntMiner", [sim.model_name]), "update.zip")
    assert sim.state.firmware_version == "1.6.0" and sim.state.extra["reboots"] == 1
    assert sim.requests["4028:POST /systemupdate"] == 2
    for _ in range(300):  # back once the reboot is over
        data = await backend.get_data([DataField.FIRMWARE_VERSION])
        if data.firmware_version is not None:
            break
        await asyncio.sleep(0.1)
    assert data.firmware_version == "1.6.0"


async def test_restart_reboots(epic_miners: Start) -> None:
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    before = sim.state.uptime
    assert await backend.restart() is True and sim.state.extra["reboots"] == 1
    await asyncio.sleep(0.5)
    for _ in range(300):  # back once the reboot is over
        data = await backend.get_data([DataField.UPTIME])
        if data.uptime is not None:
            break
        await asyncio.sleep(0.1)
    assert data.uptime is not None and data.uptime.total_seconds() < before


async def test_password_change_logs_and_a_wrong_password(epic_miners: Start) -> None:
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    logs = await backend.read_logs()
    assert "== log ==" in logs and "PowerPlay-BMS v1.5.13" in logs and "== log/error ==" in logs
    assert await backend.change_password("Capab1") is True and sim.state.password == "Capab1"
    assert await backend.set_fault_light(True) is True and sim.state.fault_light is True  # the new one is used
    stranger = EPic(ip, backend.device, Session(settings=session.settings))
    with pytest.raises(AuthenticationError, match="refused the password"):
        await stranger.pause()
    assert sim.state.mining is True
    stranger.session.credentials.rules.append(_rule(ip, "Capab1"))
    assert await stranger.pause() is True and sim.state.mining is False  # a configured password is tried first


def _rule(ip: str, password: str) -> CredentialRule:
    return CredentialRule(family="epic", username="root", passwords=[SecretStr(password)], network=f"{ip}/32")


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_fault_modes_yield_errors_without_hanging(epic_miners: Start, fault: Fault) -> None:
    fleet, session = await epic_miners()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    fleet.set_fault(ip, fault)
    data = await asyncio.wait_for(backend.get_data(), 60)  # a guard against a hang, not a timing assertion
    if fault is Fault.AUTH_FAILURE:  # reads need no password; only the controls are refused
        assert data.errors == [] and data.hashrate is not None
        with pytest.raises(AuthenticationError):
            await backend.pause()
        assert sim.state.mining is True
    else:
        assert data.errors and data.hashrate is None


async def test_mixed_scan_tells_epic_from_the_others() -> None:
    miners = []
    kinds = [(EPicSim, "Antminer S19 XP"), (AntminerStockSim, "Antminer S19 XP"), (EPicSim, "Antminer S21"),
             (AntminerStockSim, "Antminer S21"), (LuxOSSim, "Antminer S19 XP"), (VNishSim, "Antminer S21")]
    for i, (kind, name) in enumerate(kinds):
        model = lookup_model("AntMiner", name)
        assert model is not None
        miners.append(kind.build(lo(f"127.181.250.{20 + i}"), model, random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.181.250.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)
        assert factory.last_scan is not None


# ===== (d) the independent clients against the simulator ===============================================
def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


@pytest.mark.interop
async def test_pyasic_reads_every_model(epic_miners: Start) -> None:
    """pyasic: `GET /` ("Miner Web Dashboard") identifies; the model from `:4028/capabilities` `Model`; get_data
    reads summary, capabilities and network."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await epic_miners(ALL_MODELS)
    _real_ports(fleet)
    for ip, sim in fleet.miners.items():
        miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.make, data.firmware) == (inventory["make"], inventory["firmware"]) == ("AntMiner", "ePIC")
        known = lookup_model("AntMiner", f"Antminer {data.model}")
        assert known is not None and known.name == inventory["model"]
        assert data.hashrate is not None
        assert float(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.fw_ver == inventory["firmware_version"] and data.mac == inventory["mac"]
        assert data.hostname == inventory["hostname"] and data.wattage == round(sim.state.wattage)
        # pyasic lists all twelve `Fans Rpm` slots, None where no fan is fitted
        assert [f.speed for f in data.fans] == [*sim.state.fan_rpms, *[None] * (12 - len(sim.state.fan_rpms))]


@pytest.mark.interop
async def test_pyasic_rs_reads_every_model(epic_miners: Start) -> None:
    """pyasic-rs: `GET /` identifies ("Miner Web Dashboard"); the model from `capabilities`, the version from
    `summary`. It names the firmware "UMC OS" (pyasic and we: "ePIC") and the make "Antminer"."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await epic_miners(ALL_MODELS)
    _real_ports(fleet)
    factory = RsFactory()
    for ip, sim in fleet.miners.items():
        miner = await factory.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert data.device_info.make.lower() == inventory["make"].lower()
        assert data.device_info.firmware == "UMC OS"
        known = lookup_model("AntMiner", f"Antminer {data.device_info.model}")
        assert known is not None and known.name == inventory["model"]
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.mac == inventory["mac"] and data.hostname == inventory["hostname"]
        assert data.firmware_version == f"PowerPlay-BMS v{inventory['firmware_version']}"  # `Software` as it is
        assert data.wattage == pytest.approx(sim.state.wattage)
        assert [b.hashrate.value for b in data.hashboards] == pytest.approx(sim.state.board_hashrates(), rel=0.001)


@pytest.mark.interop
async def test_interop_controls_change_the_simulator(epic_miners: Start) -> None:
    """Both clients' controls land in the simulator's state. pyasic reads a control's outcome from a `success` key
    the firmware's `{"result": true, "error": null}` does not have, so it reports False although the miner did
    what was asked; it has no fault-light control for ePIC. pyasic-rs reads `result`. pyasic-rs sends the
    reboot delay as the string "0" where the spec types it u64: the simulator refuses that (`MissingParam`)."""
    import pyasic
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await epic_miners()
    _real_ports(fleet)
    ip, sim = only(fleet)
    miner = await pyasic.get_miner(ip)
    assert await miner.stop_mining() is False and sim.state.mining is False
    assert await miner.resume_mining() is False and sim.state.mining is True
    config = await miner.get_config()
    await miner.send_config(config)  # thresholds, fans, the tuner and the pools, each POSTed
    assert [p.url for p in sim.state.pools[0].pools] == [p.url for p in config.pools.groups[0].pools]
    assert sim.state.extra["algorithm"] == "VoltageOptimizer" and sim.state.extra["tune_enabled"] is True
    rs_miner = await RsFactory().get_miner(ip)
    assert await rs_miner.pause() is True and sim.state.mining is False
    assert await rs_miner.resume() is True and sim.state.mining is True
    assert await rs_miner.set_fault_light(True) is True and sim.state.fault_light is True
    assert rs_miner.supports_set_power_limit is False
    assert await rs_miner.set_pools_config(await rs_miner.get_pools_config()) is True
    assert sim.state.extra["split_enabled"] is False  # it turns the split off after writing `coin`
    fan = await rs_miner.get_fan_config()
    assert await rs_miner.set_fan_config(fan) is True and sim.state.fan.mode == "auto"
    tuning, scaling = await rs_miner.get_tuning_config(), await rs_miner.get_scaling_config()
    assert (scaling.step, scaling.minimum) == (sim.state.extra["throttle_step"], sim.state.extra["min_throttle"])
    assert await rs_miner.set_tuning_config(tuning, scaling) is True
    assert sim.state.extra["target"] == round(sim.state.model.nominal_ths)
    assert await rs_miner.restart() is False and sim.state.extra["reboots"] == 0
