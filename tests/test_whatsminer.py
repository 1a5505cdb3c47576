"""Whatsminer (BTMiner stock firmware): parsers on captured replies, the simulator over loopback, interop.

Loopback range for this family: 127.83.0.0/16.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import orjson
import pytest
from pydantic import SecretStr

from asicfleet._errors import AuthenticationError, MinerAPIError, MinerError, UnsupportedControlError
from asicfleet._session import CredentialRule, Session
from asicfleet.backends import DataField, Probe
from asicfleet.backends.whatsminer import (
    ApiGeneration,
    WhatsMinerBackend,
    aes_decrypt,
    aes_encrypt,
    aes_key,
    api_generation,
    md5_crypt,
    v3_token,
    whatsminer_model,
)
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import DeviceInfo, MinerData
from asicfleet.discovery import identify
from asicfleet.sim import Fault, SimFleet, SimMiner
from asicfleet.sim.whatsminer import WhatsMinerV3Sim
from asicfleet.transport import HttpReply, TransportSettings
from tests.conftest import FleetFactory, fixture_bytes, lo

WM = "whatsminer"
DEVICE = WhatsMinerBackend.device_info("WhatsMiner", "M50S", "Stock")


def parse(raw: dict[str, bytes], device: DeviceInfo = DEVICE) -> MinerData:
    return WhatsMinerBackend(lo("127.83.0.1"), device, Session()).parse_raw(raw)


def ths(data: MinerData) -> float:
    assert data.hashrate is not None
    return data.hashrate.into_unit("TH/s").value


# ----- (a) parsers on the captured replies -------------------------------------------------------
def v1_replies(summary: str = "summary_with_errors.json") -> dict[str, bytes]:
    return {"rpc:summary": fixture_bytes(WM, "v1", summary), "rpc:devs": fixture_bytes(WM, "v1", "devs.json"),
            "rpc:pools": fixture_bytes(WM, "v1", "pools.json"),
            "rpc:get_version": fixture_bytes(WM, "v1", "get_version.json"),
            "rpc:get_psu": fixture_bytes(WM, "v1", "get_psu.json"),
            "rpc:status": fixture_bytes(WM, "v1", "status.json")}


def test_v1_fixture_figures() -> None:
    data = parse(v1_replies())
    assert data.errors == []
    assert data.mac == "C4:08:28:00:A4:19"
    assert data.firmware_version == "20210322.22.REL"
    assert data.api_version == "1.4.0"  # 'whatsminer v1.4.0'
    assert data.control_board_version == "ALLWINNER_H3"
    assert ths(data) == pytest.approx(67.39480097)  # HS RT 67394800.97 MH/s
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(68.796)  # 68796 GH/s
    boards = data.hashboards
    assert [b.position for b in boards] == [0, 1, 2]
    assert [b.hashrate.value for b in boards if b.hashrate] == pytest.approx([22.10378984, 22.71979979, 22.55473792])
    assert [b.board_temperature for b in boards] == [70.0, 69.5, 71.5]
    assert [b.intake_temperature for b in boards] == [71.0, 71.0, 72.0]  # chip temp min
    assert [b.outlet_temperature for b in boards] == [90.0, 90.11, 92.5]  # chip temp max
    assert [b.working_chips for b in boards] == [105, 105, 105]
    assert [b.frequency for b in boards] == [650.0, 652.0, 643.0]
    assert boards[0].serial_number == "H5M14S69129A17K10095"
    assert boards[0].expected_chips == 129  # from the hardware table (M50S)
    assert [(f.position, f.rpm) for f in data.fans] == [(0, 6450.0), (1, 6480.0)]
    assert [f.rpm for f in data.psu_fans] == [9060.0]  # 'Power Fanspeed'
    assert data.wattage == 3417.0
    assert data.wattage_limit == 3500.0
    assert data.uptime == timedelta(seconds=10154)  # Elapsed
    pools = data.pools[0].pools
    assert [p.url for p in pools] == ["stratum+tcp://btc.example.pool:3333", "stratum+tcp://btc2.example.pool:3333",
                                      "stratum+tcp://btc3.example.pool:3333"]
    assert [p.user for p in pools] == ["asic-rs.test"] * 3
    first = pools[0]
    assert (first.accepted_shares, first.rejected_shares, first.active, first.alive) == (2338, 0, True, True)
    assert pools[1].active is False
    assert [m.code for m in data.messages] == [110, 600]  # 'Error Code 0': 110, 'Error Code 1': 600
    assert data.is_mining is True  # btmineroff false
    assert data.tuning_target is not None and data.tuning_target.target_watts == 3500.0  # Normal mode: the limit


def test_v1_summary_without_errors_and_psu_model() -> None:
    data = parse(v1_replies("summary.json"))
    assert data.messages == []
    assert ths(data) == pytest.approx(67.39480097)
    assert data.hostname is None and data.light_flashing is None  # v1 has no get_miner_info


def v2_replies(errors: str = "get_error_code_with_errors.json") -> dict[str, bytes]:
    names = ["summary", "devs", "pools", "get_version", "get_psu", "status", "get_miner_info"]
    raw = {f"rpc:{n}": fixture_bytes(WM, "v2", f"{n}.json") for n in names}
    raw["rpc:get_error_code"] = fixture_bytes(WM, "v2", errors)
    return raw


def test_v2_fixture_figures() -> None:
    data = parse(v2_replies())
    assert data.errors == []
    assert data.mac == "D4:01:02:03:04:05"  # get_miner_info
    assert data.hostname == "WhatsMiner"
    assert data.light_flashing is False  # ledstat auto
    assert data.firmware_version == "20230803.11.REL"
    assert data.api_version == "2.0.5"
    assert data.control_board_version == "H616"
    assert ths(data) == pytest.approx(124.5)  # HS RT 124500000 MH/s
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(126.0)
    boards = data.hashboards
    assert [b.hashrate.value for b in boards if b.hashrate] == pytest.approx([41.5, 41.8, 41.7])  # MHS av
    assert [b.expected_hashrate.value for b in boards if b.expected_hashrate] == pytest.approx([42.0] * 3)
    assert [b.board_temperature for b in boards] == [65.0, 66.0, 67.0]
    assert [b.intake_temperature for b in boards] == [62.0, 63.0, 62.5]
    assert [b.outlet_temperature for b in boards] == [80.0, 81.0, 81.0]
    assert [b.working_chips for b in boards] == [135, 135, 135]
    assert [b.serial_number for b in boards] == ["BHM5CSD1302803K30001", "BHM5CSD1302803K30002",
                                                 "BHM5CSD1302803K30003"]
    assert all(b.frequency == 600.0 and b.active for b in boards)
    assert [f.rpm for f in data.fans] == [5400.0, 5280.0]
    assert [f.rpm for f in data.psu_fans] == [6000.0]  # get_psu fan_speed "6000"
    assert data.wattage == 3200.0
    assert data.wattage_limit == 3300.0
    assert data.uptime == timedelta(seconds=25000)
    pools = data.pools[0].pools
    assert len(pools) == 3 and pools[0].accepted_shares == 5412 and pools[0].active is True
    assert pools[2].url == "stratum+tcp://btc3.example.pool:3333" and pools[2].alive is True
    assert [(m.code, m.timestamp) for m in data.messages] == [(218, 1718447400), (110, 1718442900)]
    assert data.is_mining is True
    assert data.tuning_target is not None and data.tuning_target.target_watts == 3300.0
    assert data.efficiency == pytest.approx(3200 / 124.5, abs=1e-3)


def test_v2_empty_error_list_and_status_fallbacks() -> None:
    assert parse(v2_replies("get_error_code.json")).messages == []
    # without a summary the power limit comes from `status` (power_limit_set "3600")
    raw = {k: v for k, v in v2_replies().items() if k in ("rpc:status", "rpc:get_version")}
    data = parse(raw)
    assert data.wattage_limit == 3600.0
    assert data.is_mining is True  # mineroff "false"
    assert data.hashrate is None


def test_failed_command_is_reported_not_guessed() -> None:
    raw = v2_replies()
    raw["rpc:devs"] = b'{"STATUS":[{"STATUS":"E","Code":14,"Msg":"invalid cmd"}]}'
    raw["rpc:pools"] = b'{"POOLS": [{"URL" = broken'
    data = parse(raw)
    assert any(e.startswith("rpc:devs") for e in data.errors)
    assert any(e.startswith("rpc:pools") for e in data.errors)
    assert data.hashboards == [] and data.pools == []
    assert ths(data) == pytest.approx(124.5)  # the rest still read


def v3_replies(info: str = "get_device_info_with_errors.json") -> dict[str, bytes]:
    return {"v3:get.device.info": fixture_bytes(WM, "v3", info),
            "v3:get.miner.status|summary": fixture_bytes(WM, "v3", "get_miner_status_summary.json"),
            "v3:get.miner.status|pools": fixture_bytes(WM, "v3", "get_miner_status_pools.json"),
            "v3:get.miner.status|edevs": fixture_bytes(WM, "v3", "get_miner_status_edevs.json")}


def test_v3_fixture_figures() -> None:
    data = parse(v3_replies(), WhatsMinerBackend.device_info("WhatsMiner", "M60S", "Stock"))
    assert data.errors == []
    assert data.mac == "CE:02:01:00:8C:36"
    assert data.serial_number == "BTM3CS40HD24083100000000000000000"
    assert data.hostname == "WhatsMiner"
    assert data.firmware_version == "20251209.16.Rel2"
    assert data.api_version == "3.0.2"
    assert data.control_board_version == "CB6V10"
    assert ths(data) == pytest.approx(171.259)
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(181.051)
    boards = data.hashboards
    assert [b.hashrate.value for b in boards if b.hashrate] == pytest.approx([57.2, 57.0, 57.1])  # hash-realtime
    assert [b.expected_hashrate.value for b in boards if b.expected_hashrate] == pytest.approx([60.35] * 3)
    assert [b.board_temperature for b in boards] == [41.1, 40.1, 41.5]  # summary board-temperature
    assert [b.intake_temperature for b in boards] == [68.0, 69.0, 70.0]
    assert [b.outlet_temperature for b in boards] == [80.0, 82.0, 81.0]
    assert [b.working_chips for b in boards] == [75, 75, 75]
    assert [b.serial_number for b in boards] == ["BKM3CSE1404807K42757", "BKM3CSE1404812K43675",
                                                 "BKM3CSE1404807K42762"]
    assert all(b.frequency == 625.0 and b.expected_chips == 128 for b in boards)
    assert [f.rpm for f in data.fans] == [5400.0, 5280.0]
    assert [f.rpm for f in data.psu_fans] == [6344.0]
    assert data.wattage == 3156.0
    assert data.wattage_limit == 3600.0
    assert data.uptime == timedelta(seconds=50000)
    pools = data.pools[0].pools
    assert [(p.position, p.user, p.active, p.alive) for p in pools] == [
        (0, "asic-rs.test", True, True), (1, "asic-rs.test", False, True), (2, "asic-rs.test", False, True)]
    assert pools[1].url == "stratum+tcp://btc2.example.pool:3333"
    assert [m.code for m in data.messages] == [264, 265, 266, 267, 270]
    assert data.messages[0].message == "Power xfer error. code: 0xffffffffc0000000"  # the firmware's reason
    assert data.messages[0].timestamp == 1779527950  # 2026-05-23 09:19:10 UTC
    assert data.is_mining is True  # miner.working "true"
    assert data.light_flashing is False
    assert data.tuning_target is not None and data.tuning_target.target_watts == 3600.0  # mode "1" = normal


def test_v3_without_errors() -> None:
    data = parse(v3_replies("get_device_info.json"))
    assert data.messages == [] and data.errors == []
    assert data.mac == "CE:02:01:00:8C:36"


def test_crypto_and_identification_helpers() -> None:
    # md5-crypt vectors agree with `openssl passwd -1 -salt ...`
    assert md5_crypt("admin", "D6w5gVOb") == "$1$D6w5gVOb$x/LfL.qU1wBJhndXCyVkC/"
    assert md5_crypt("super", "uhCiDyVj") == "$1$uhCiDyVj$NOMHa4IgChq0f1XfSlBo1/"
    key = aes_key("secret")
    sealed = aes_encrypt(key, b'{"cmd":"power_on"}')
    assert aes_decrypt(key, sealed) == b'{"cmd":"power_on"}'
    assert aes_decrypt(aes_key("other"), sealed) != b'{"cmd":"power_on"}'
    token, digest = v3_token("set.system.reboot", "super", "uhCiDyVj", 1700000000)
    assert len(token) == 8 and len(digest) == 32
    assert [whatsminer_model(m) for m in ("M50S_VJ40", "M50S.VK30", "M30S+_VH65", "M31SV10", "M30S++_VH40")] == [
        "M50S", "M50S", "M30S+", "M31S", "M30S++"]
    assert api_generation(orjson.loads(fixture_bytes(WM, "v1", "get_version.json"))) == "v1"
    assert api_generation(orjson.loads(fixture_bytes(WM, "v2", "get_version.json"))) == "v2"
    assert api_generation({"Msg": {"api_ver": "2.0.5", "fw_ver": "20251209.16.Rel2"}}) == "v3"


def test_matches_on_real_signals() -> None:
    redirect = HttpReply(307, {"location": "https://10.0.0.5/"}, b"")
    assert WhatsMinerBackend.matches(Probe(ip="10.0.0.5", web=redirect))
    antminer = HttpReply(401, {"www-authenticate": 'Digest realm="antMiner Configuration"'}, b"")
    assert not WhatsMinerBackend.matches(Probe(ip="10.0.0.5", web=antminer))
    flat_refusal = MinerAPIError("version: invalid cmd (code 14)")
    assert WhatsMinerBackend.matches(Probe(ip="10.0.0.5", rpc={"version": flat_refusal}))
    cgminer_refusal = MinerAPIError("version: Invalid command (code 14)")
    assert not WhatsMinerBackend.matches(Probe(ip="10.0.0.5", rpc={"version": cgminer_refusal}))


# ----- (b) the simulator over loopback ----------------------------------------------------------------
MODELS = ("M30S+", "M50S", "M60S")
def session_for(fleet: SimFleet, **settings: float) -> Session:
    assert fleet.ports is not None
    return Session(settings=TransportSettings(ports=fleet.ports, **settings))  # type: ignore[arg-type]


def backend_for(fleet: SimFleet, miner: SimMiner, session: Session) -> WhatsMinerBackend:
    device = WhatsMinerBackend.device_info("WhatsMiner", miner.state.model.name, "Stock")
    return WhatsMinerBackend(miner.state.ip, device, session)


def only(fleet: SimFleet) -> SimMiner:
    (miner,) = fleet.miners.values()
    return miner


async def test_each_model_identifies_with_its_api_generation(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.83.1.0/24"), mix=[WM], models=MODELS)
    session = session_for(fleet)
    for miner in fleet.miners.values():
        found = await identify(miner.state.ip, session, timeout=5.0)
        assert found.miner is not None, found.error
        assert isinstance(found.miner.backend, WhatsMinerBackend)
        assert (found.miner.make, found.miner.model, found.miner.firmware) == (
            "WhatsMiner", miner.inventory()["model"], "Stock")
        assert found.miner.hardware.board_count == 3
        expected_api = "v3" if miner.state.model.name == "M60S" else "v2"
        assert isinstance(miner, WhatsMinerV3Sim) == (expected_api == "v3")
        backend = found.miner.backend
        assert backend.api == expected_api  # identification read it: no second get_version
        assert found.miner.firmware_version == miner.state.firmware_version
        before = miner.requests["4028:get_version"]
        api, version_reply = await backend.detect_api()
        assert api == expected_api and version_reply == {} and miner.requests["4028:get_version"] == before


async def test_generated_fleet_identifies(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.83.2.0/24"), 6, [WM], seed=3)
    session = session_for(fleet)
    found = await asyncio.gather(*(identify(ip, session, timeout=5.0) for ip in fleet.miners))
    for item in found:
        assert item.miner is not None, item.error
        assert item.miner.model == fleet.miners[item.ip].inventory()["model"]


async def test_web_redirects_to_luci(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.83.3.0/24"), mix=[WM], models=["M50S"])
    session = session_for(fleet)
    miner = only(fleet)
    root = await session.http.request("GET", miner.state.ip, "/")
    assert root.status == 307 and root.headers["location"] == f"https://{miner.state.ip}/"
    page = await session.http.request("GET", miner.state.ip, "/", port=443, tls=True)
    assert page.status == 200 and "/cgi-bin/luci" in page.text
    await session.aclose()


@pytest.mark.parametrize("model", MODELS)
async def test_get_data_equals_state(sim_fleet: FleetFactory, model: str) -> None:
    fleet = await sim_fleet(lo("127.83.4.0/24"), mix=[WM], models=[model])
    miner = only(fleet)
    state = miner.state
    data = await backend_for(fleet, miner, session_for(fleet)).get_data()
    assert data.errors == []
    assert ths(data) == pytest.approx(miner.inventory()["hashrate_ths"], rel=0.01)
    assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(state.hashrate_ths, rel=0.01)
    assert len(data.hashboards) == state.model.boards
    assert all(b.working_chips == state.model.chips_per_board for b in data.hashboards)
    assert data.wattage == pytest.approx(state.wattage, abs=0.5)
    assert data.wattage_limit == state.power_limit
    assert [f.rpm for f in data.fans] == state.fan_rpms
    assert [f.rpm for f in data.psu_fans] == [state.extra["psu_fan_rpm"]]
    assert data.mac == state.mac
    assert data.hostname == state.hostname
    assert data.serial_number == state.serial
    assert data.firmware_version == state.firmware_version
    assert data.is_mining is True and data.light_flashing is False
    assert data.uptime is not None and abs(data.uptime.total_seconds() - (state.uptime - 20)) <= 2
    pools = data.pools[0].pools
    assert [(p.url, p.user) for p in pools] == [(p.url, p.username) for p in state.pools[0].pools]
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(
        state.model.nominal_ths)
    assert data.tuning_target is not None and data.tuning_target.target_watts == state.power_limit


@pytest.mark.parametrize("model", ["M50S", "M60S"])
async def test_get_data_sends_each_command_once(sim_fleet: FleetFactory, model: str) -> None:
    fleet = await sim_fleet(lo("127.83.5.0/24"), mix=[WM], models=[model])
    miner = only(fleet)
    backend = backend_for(fleet, miner, session_for(fleet))
    await backend.get_data()  # the first read also learns the API generation from get_version
    assert miner.requests["4028:get_version"] == 1
    miner.requests.clear()
    await backend.get_data()
    counts = dict(miner.requests)
    if model == "M60S":
        assert counts == {"4433:get.device.info": 1, "4433:get.miner.status|summary": 1,
                          "4433:get.miner.status|pools": 1, "4433:get.miner.status|edevs": 1}
    else:
        assert counts == {f"4028:{c}": 1 for c in ("summary", "devs", "pools", "get_version", "get_miner_info",
                                                    "get_psu", "get_error_code", "status")}
    miner.requests.clear()
    await backend.get_data(fields=[DataField.HASHRATE, DataField.MAC])
    expected = {"4433:get.miner.status|summary", "4433:get.device.info"} if model == "M60S" else {
        "4028:summary", "4028:get_miner_info"}
    assert dict(miner.requests) == dict.fromkeys(expected, 1)  # only what the two fields need


@pytest.mark.parametrize("model", ["M50S", "M60S"])
async def test_controls_round_trip(sim_fleet: FleetFactory, model: str) -> None:
    fleet = await sim_fleet(lo("127.83.6.0/24"), mix=[WM], models=[model])
    miner = only(fleet)
    state = miner.state
    backend = backend_for(fleet, miner, session_for(fleet))

    assert await backend.set_fault_light(True)
    assert state.fault_light and (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is True
    assert await backend.set_fault_light(False)
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is False

    pools_before = list(state.pools)
    assert await backend.set_power_limit(3000)
    data = await backend.get_data()
    assert data.wattage_limit == 3000.0 and state.power_limit == 3000.0
    assert data.wattage is not None and data.wattage <= 3000.0
    assert ths(data) == pytest.approx(miner.inventory()["hashrate_ths"], rel=0.01)
    assert state.pools == pools_before  # a power target leaves the pools alone

    new_pools = [PoolGroup(pools=[Pool(url="stratum+tcp://new.example.org:3333", username="acct.w1", password="p1"),
                                  Pool(url="stratum+ssl://spare.example.org:443", username="acct.w2")])]
    assert await backend.set_pools_config(new_pools)
    got = await backend.get_pools_config()
    assert [(p.url, p.username) for p in got[0].pools] == [(p.url, p.username) for p in new_pools[0].pools]
    assert state.pools[0].pools[0].password == "p1"  # the password reached the miner
    assert state.power_limit == 3000.0  # pools leave the power limit alone
    with pytest.raises(ValueError, match="one pool group"):
        await backend.set_pools_config([*new_pools, *new_pools])

    assert await backend.pause()
    paused = await backend.get_data()
    assert paused.is_mining is False and ths(paused) == 0.0
    assert await backend.resume()
    assert (await backend.get_data()).is_mining is True

    assert await backend.set_tuning_config(TuningConfig.mode("low"))
    assert await backend.get_tuning_config() == TuningConfig.mode("low")
    assert await backend.set_tuning_config(TuningConfig.power(3100))
    assert await backend.get_tuning_config() == TuningConfig.power(3100)
    assert state.extra["power_mode"] == "Normal"
    with pytest.raises(UnsupportedControlError):
        await backend.set_tuning_config(TuningConfig.hashrate({"value": 100, "unit": "TH/s"}))


async def test_unsupported_controls_raise(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.83.7.0/24"), mix=[WM], models=["M50S", "M60S"])
    session = session_for(fleet)
    v2, v3 = (backend_for(fleet, m, session) for m in fleet.miners.values())
    assert not WhatsMinerBackend.supports("set_fan_config") and WhatsMinerBackend.supports("set_pools_config")
    with pytest.raises(UnsupportedControlError):
        await v2.set_fan_config(FanConfig.manual(80))
    with pytest.raises(UnsupportedControlError):
        await v2.get_scaling_config()
    with pytest.raises(UnsupportedControlError):
        await v3.change_password("newpass")  # btminer's API v3 password change is not implemented here


async def test_change_password_then_writes_use_it(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.83.8.0/24"), mix=[WM], models=["M50S"])
    miner = only(fleet)
    backend = backend_for(fleet, miner, session_for(fleet))
    with pytest.raises(ValueError):
        await backend.change_password("far-too-long-password")
    assert await backend.change_password("n3wpass")
    assert miner.state.password == "n3wpass"
    assert await backend.set_fault_light(True)  # the remembered new password is tried first
    assert miner.state.fault_light


async def test_configured_password_falls_back_to_default(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.83.9.0/24"), mix=[WM], models=["M50S"])
    miner = only(fleet)
    session = session_for(fleet)
    session.credentials.add(CredentialRule(family=WM, username="admin", passwords=[SecretStr("wrong1")]))
    backend = backend_for(fleet, miner, session)
    assert await backend.set_fault_light(True)
    assert miner.requests["4028:enc-refused"] == 1  # the wrong one was refused first
    miner.fault = Fault.AUTH_FAILURE
    with pytest.raises(AuthenticationError):
        await backend.set_fault_light(False)
    assert miner.state.fault_light is True


async def test_v3_wrong_then_right_login_and_refusal(sim_fleet: FleetFactory) -> None:
    fleet = await sim_fleet(lo("127.83.10.0/24"), mix=[WM], models=["M60S"])
    miner = only(fleet)
    session = session_for(fleet)
    session.credentials.add(CredentialRule(family=WM, username="super", passwords=[SecretStr("nope")]))
    backend = backend_for(fleet, miner, session)
    assert await backend.set_fault_light(True)  # 'nope' is refused, then the default super/super signs
    assert miner.state.fault_light and miner.requests["4433:refused"] >= 1
    miner.fault = Fault.AUTH_FAILURE
    with pytest.raises(AuthenticationError):
        await backend.pause()
    assert miner.state.mining is True


@pytest.mark.parametrize("model", ["M50S", "M60S"])
async def test_miner_reported_errors_become_messages(sim_fleet: FleetFactory, model: str) -> None:
    fleet = await sim_fleet(lo("127.83.13.0/24"), mix=[WM], models=[model])
    miner = only(fleet)
    miner.state.messages = [(218, "power supply input voltage too low"), (600, "environment too hot")]
    data = await backend_for(fleet, miner, session_for(fleet)).get_data([DataField.MESSAGES])
    assert [m.code for m in data.messages] == [218, 600]
    assert all(m.timestamp is not None and m.timestamp <= time.time() for m in data.messages)


@pytest.mark.parametrize("model", ["M50S", "M60S"])
async def test_restart_and_factory_reset(sim_fleet: FleetFactory, model: str) -> None:
    fleet = await sim_fleet(lo("127.83.11.0/24"), mix=[WM], models=[model])
    miner = only(fleet)
    miner.restart_seconds = 0.4
    backend = backend_for(fleet, miner, session_for(fleet, read_timeout=1.0))
    factory = list(miner.state.pools)
    await backend.set_pools_config([PoolGroup(pools=[Pool(url="stratum+tcp://x.example.org:3333", username="u")])])
    assert await backend.restart()
    await asyncio.sleep(0.15)
    down = await backend.get_data([DataField.HASHRATE])
    assert down.hashrate is None and down.errors  # rebooting: unreachable
    await asyncio.sleep(0.6)
    up = await backend.get_data([DataField.UPTIME, DataField.POOLS])
    assert up.uptime is not None and up.uptime.total_seconds() < 5
    assert up.pools[0].pools[0].url == "stratum+tcp://x.example.org:3333"  # a reboot keeps the settings
    assert await backend.factory_reset()
    await asyncio.sleep(0.7)
    assert miner.state.pools == factory
    assert (await backend.get_pools_config())[0].pools[0].url == factory[0].pools[0].url


FAULTS = [Fault.SLOW, Fault.HUNG, Fault.MALFORMED, Fault.TRUNCATED, Fault.OVERSIZED, Fault.RESET]


@pytest.mark.parametrize("model", ["M50S", "M60S"])
@pytest.mark.parametrize("fault", FAULTS)
async def test_faults_give_errors_quickly(sim_fleet: FleetFactory, model: str, fault: Fault) -> None:
    fleet = await sim_fleet(lo("127.83.12.0/24"), mix=[WM], models=[model])
    miner = only(fleet)
    miner.slow_seconds, miner.oversized_bytes = 1.5, 2 * 1024 * 1024
    session = session_for(fleet, read_timeout=0.5, connect_timeout=0.5, max_reply_bytes=256 * 1024)
    api: ApiGeneration = "v3" if model == "M60S" else "v2"  # known, so the fault hits the generation's own transport
    backend = WhatsMinerBackend(miner.state.ip, backend_for(fleet, miner, session).device, session, api=api)
    miner.fault = fault
    started = time.monotonic()
    data = await backend.get_data()
    assert time.monotonic() - started < 3.0
    assert data.errors and data.hashrate is None
    with pytest.raises(MinerError):
        await backend.set_fault_light(True)
    assert miner.state.fault_light is False


# ----- (c) the independent clients --------------------------------------------------------------------
def normalised(model: str) -> str:
    return model.upper().replace("PLUS", "+").replace(" ", "").replace("_", "")


@pytest.mark.interop
async def test_pyasic_reads_each_model(sim_fleet: FleetFactory) -> None:
    """pyasic finds the type by the web redirect and `devdetails`, the model by devdetails `Model`,
    picks its V2 or V3 class by `get_version` fw_ver (after 2024.11 -> V3 on 4433), then reads."""
    import pyasic  # type: ignore[import-untyped]

    fleet = await sim_fleet(lo("127.83.20.0/24"), mix=[WM], models=MODELS)
    if fleet.ports and fleet.ports.overrides:
        pytest.skip("pyasic needs the real ports (run as root)")
    for miner in fleet.miners.values():
        found = await pyasic.get_miner(miner.state.ip)
        assert found is not None
        data = await found.get_data()
        inventory = miner.inventory()
        assert data.make is not None and data.make.lower() == "whatsminer"
        assert data.firmware == "Stock"
        assert normalised(str(data.model)).startswith(normalised(inventory["model"]))
        assert data.hashrate is not None and float(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert type(found).__mro__[1].__name__ == ("BTMinerV3" if inventory["model"] == "M60S" else "BTMinerV2")
        assert await found.fault_light_on()  # its write path (encrypted v2 / signed v3) works on ours
        assert miner.state.fault_light is True


@pytest.mark.interop
async def test_pyasic_rs_reads_each_model(sim_fleet: FleetFactory) -> None:
    """pyasic-rs sends devdetails (+ version, GET /) to find the type, get_version to choose v2/v3
    (fw_ver date >= 2024-11-01 -> v3, then get.device.info "miner" on 4433 for the model), then reads."""
    from pyasic_rs import MinerFactory
    from pyasic_rs.config import Pool as RsPool
    from pyasic_rs.config import PoolGroup as RsPoolGroup

    fleet = await sim_fleet(lo("127.83.21.0/24"), mix=[WM], models=MODELS)
    if fleet.ports and fleet.ports.overrides:
        pytest.skip("pyasic-rs needs the real ports (run as root)")
    factory = MinerFactory()
    for miner in fleet.miners.values():
        found = await factory.get_miner(miner.state.ip)
        assert found is not None
        data = await found.get_data()
        inventory = miner.inventory()
        assert data.device_info.make.lower() == "whatsminer"
        assert "Stock" in data.device_info.firmware  # "WhatsMiner Stock"
        assert normalised(data.device_info.model).startswith(normalised(inventory["model"]))
        assert data.hashrate is not None
        assert float(data.hashrate.value) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        group = RsPoolGroup(name="default", quota=1, pools=[
            RsPool(url="stratum+tcp://rs.example.org:3333", username="rs.worker", password="x")])
        assert await found.set_pools_config([group])
        assert miner.state.pools[0].pools[0].url == "stratum+tcp://rs.example.org:3333"
