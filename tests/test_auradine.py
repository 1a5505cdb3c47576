"""Auradine Teraflux (stock FluxOS / GCMiner): parsers on captured replies, the backend against the simulator
over loopback (RPC on 4028, token REST on 8080), a mixed scan, and the simulator against pyasic and pyasic-rs
(marker `interop`).

Addresses: 127.171.0.0/16 only. Captured replies: tests/fixtures/auradine (from asic-rs, see the README there).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from asicfleet import MinerFactory
from asicfleet._errors import AuthenticationError, MinerAPIError, MinerConnectionError, UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends import BACKENDS, DataField, Probe, backend_for
from asicfleet.backends.auradine import Auradine, model_from_devdetails, pools_payload
from asicfleet.config import Pool, PoolGroup, TuningConfig
from asicfleet.data import HashRate, MessageSeverity
from asicfleet.discovery._identify import identify
from asicfleet.hardware import SimulableModel, lookup_model
from asicfleet.sim import SIM_FAMILIES, Fault, SimFleet
from asicfleet.sim.antminer import AntminerStockSim
from asicfleet.sim.auradine import IDLE_WATTS, AuradineSim
from asicfleet.sim.avalon import AvalonSim
from asicfleet.transport import HttpReply, PortMap, TransportSettings, decode_json
from tests.conftest import identified_backend, lo, only_miner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "auradine"
RPC = ("version", "summary", "devs", "asccount", "pools")
WEB = ("ipreport", "fan", "led", "mode", "psu", "temperature", "voltage", "frequency")


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture_backend() -> Auradine:
    return Auradine(lo("127.171.0.1"), Auradine.device_info("Auradine", "AT1500", "Stock"), Session())


def all_fixtures() -> dict[str, bytes]:
    return {**{f"rpc:{n}": raw(n) for n in RPC}, **{f"web:{n}": raw(n) for n in WEB}}


# ===== (a) parsers on the captured replies =============================================================
def test_ipreport_version_summary_fixtures() -> None:
    data = fixture_backend().parse_raw({k: v for k, v in all_fixtures().items()
                                        if k in ("web:ipreport", "rpc:version", "rpc:summary")})
    assert data.mac == "1C:00:00:0E:3B:2B"
    assert (data.serial_number, data.hostname) == ("AU23200006", "teraflux-01")
    assert data.firmware_version == "2023-12.27"  # ipreport's, ahead of GCMiner "0.5" in version
    assert data.api_version == "1.0" and data.control_board_version == "T0"
    assert data.hashrate is not None and data.hashrate.value == pytest.approx(20.5997671774699)  # MHS 5s
    assert data.uptime == timedelta(seconds=56696)
    assert data.is_mining is True  # without `mode`, from the hash rate
    assert data.errors == []
    alone = fixture_backend().parse_raw({"rpc:version": raw("version")})
    assert alone.firmware_version == "0.5"  # GCMiner's own version when the web is not read


def test_hashboards_from_devs_asccount_ipreport_and_chip_replies() -> None:
    boards = fixture_backend().parse_raw(all_fixtures(), [DataField.HASHBOARDS]).hashboards
    assert [b.position for b in boards] == [0, 1, 2]
    assert [b.hashrate.value for b in boards if b.hashrate] == pytest.approx([6.8, 6.9, 7.0])  # MHS 5s
    assert [b.board_temperature for b in boards] == [28.25, 29.06, 30.12]
    # the temperature reply's board sensors: coolest at the intake, hottest at the exhaust; ID 0 is the
    # control board and makes no hashboard
    assert [(b.intake_temperature, b.outlet_temperature) for b in boards] == [(20.5, 41.5), (21.5, 43.0),
                                                                               (22.0, 47.5)]
    assert [b.serial_number for b in boards] == ["QAHB01230908001X", "QAHB01230908001Y", "QAHB01230908001Z"]
    assert [b.expected_chips for b in boards] == [132] * 3  # asccount: 396 chips on 3 boards
    assert [b.working_chips for b in boards] == [132] * 3  # 3 sampled chips, none failing
    assert [len(b.chips) for b in boards] == [3, 3, 3]
    assert boards[0].frequency == pytest.approx((281.25 + 247.5 + 268.75) / 3, abs=1e-3)
    assert boards[2].voltage == pytest.approx((0.24890037247678265 * 2 + 0.24879926897847326) / 3, abs=1e-3)
    assert boards[1].chips[2].temperature == pytest.approx(48.220855712890625)
    assert boards[0].chips[1].frequency == 247.5 and all(c.working for b in boards for c in b.chips)
    assert all(b.active for b in boards)
    only_rpc = fixture_backend().parse_raw({"rpc:devs": raw("devs"), "rpc:asccount": raw("asccount")},
                                           [DataField.HASHBOARDS]).hashboards
    assert [(b.working_chips, b.serial_number, b.chips) for b in only_rpc] == [(132, None, [])] * 3


def test_fan_psu_mode_led_pools_fixtures() -> None:
    data = fixture_backend().parse_raw(all_fixtures())
    assert data.errors == []
    assert [(f.position, f.rpm) for f in data.fans] == [(0, 7080), (1, 7020), (2, 7100), (3, 7020)]
    assert [(f.position, f.rpm) for f in data.psu_fans] == [(0, 4052.0), (1, 4144.0)]
    assert data.wattage == 58.94  # "58.94W"
    assert data.wattage_limit == 2000 and data.expected_hashrate is not None
    assert data.expected_hashrate.value == 160  # Mode Ths
    assert data.tuning_target is not None
    assert (data.tuning_target.target_watts, data.tuning_target.target_mode) == (2000, "custom")
    assert data.is_mining is True and data.light_flashing is False  # Sleep "off"; LED code 2
    assert data.messages == []  # LED "Normal" is no message
    assert len(data.pools) == 1 and [p.url for p in data.pools[0].pools] == [
        "stratum+tcp://btc.viabtc.io:3333", "stratum+tcp://stratum.slushpool.com:3333",
        "stratum+tcp://stratum.slushpool.com:3333"]
    assert [(p.accepted_shares, p.rejected_shares, p.alive, p.active) for p in data.pools[0].pools] == [
        (10, 1, True, True), (0, 0, False, False), (0, 0, False, False)]
    assert data.efficiency == pytest.approx(58.94 / 20.5997671774699, rel=1e-3)


def test_led_codes_and_an_error_reply() -> None:
    backend = fixture_backend()
    locate = {"LED": [{"Code": 3, "LED1": 1, "LED2": 5, "Msg": "Locate miner"}], "STATUS": [{"STATUS": "S"}]}
    hot = {"LED": [{"Code": 4, "Msg": "Temperature"}], "STATUS": [{"STATUS": "S"}]}
    lit = backend.extract({"web:led": locate})
    assert lit.light_flashing is True and [(m.code, m.severity) for m in lit.messages] == [
        (3, MessageSeverity.INFO)]
    warm = backend.extract({"web:led": hot})
    assert warm.light_flashing is False and [(m.message, m.severity) for m in warm.messages] == [
        ("Temperature", MessageSeverity.ERROR)]
    asleep = backend.extract({"web:mode": {"Mode": [{"Mode": "normal", "Sleep": "on"}], "STATUS": []}})
    assert asleep.is_mining is False
    refused = b'{"STATUS":[{"STATUS":"E","Code":14,"Msg":"Invalid command","Description":"GCMiner-0.5"}],"id":1}'
    bad = backend.parse_raw({"rpc:summary": refused})
    assert bad.hashrate is None and any("Invalid command" in e for e in bad.errors)


def test_model_and_pool_payload() -> None:
    assert model_from_devdetails({"DEVDETAILS": [{"Model": "at1500"}]}) == "AT1500"
    assert model_from_devdetails({"DEVDETAILS": [{"Model": "AX9999"}]}) == "AX9999"  # unknown, kept as said
    assert model_from_devdetails({"DEVDETAILS": []}) is None
    pools = [Pool(url="stratum+tcp://a.example.net:3333", username="w.1", password="")]
    assert pools_payload([PoolGroup(pools=pools)]) == [{"url": "stratum+tcp://a.example.net:3333",
                                                        "user": "w.1", "pass": "x"}]
    with pytest.raises(ValueError, match="one pool group"):
        pools_payload([PoolGroup(pools=pools), PoolGroup(name="b", pools=pools)])


def test_the_login_lock_follows_the_event_loop() -> None:
    """A handle used from successive `asyncio.run` calls must not wait on a lock of a loop that is gone."""
    backend = fixture_backend()

    async def contended() -> asyncio.Lock:
        lock = backend._lock()
        async with lock:
            waiter = asyncio.ensure_future(lock.acquire())  # binds the lock to this loop
            await asyncio.sleep(0)
        await waiter
        lock.release()
        assert backend._lock() is lock  # the same loop shares one lock
        return lock

    assert asyncio.run(contended()) is not asyncio.run(contended())


# ===== identification signals =========================================================================
def _probe(version: dict[str, object] | Exception | None = None, web: HttpReply | None = None) -> Probe:
    return Probe(ip=lo("127.171.0.1"), web=web, rpc={} if version is None else {"version": version})


def test_matches_signals() -> None:
    assert Auradine.matches(_probe(decode_json(raw("version"))))  # GCMiner
    fluxos = {"STATUS": [{"STATUS": "S", "Description": "FluxOS-2024-06.11-d37c5dd"}], "VERSION": [{"API": "1.0"}]}
    assert Auradine.matches(_probe(fluxos))
    page = HttpReply(200, {"content-type": "text/html"}, b"<html><title>Miner UI</title></html>")
    assert Auradine.matches(_probe(MinerConnectionError("refused"), page))
    stock = {"STATUS": [{"STATUS": "S", "Description": "cgminer 1.0.0"}], "VERSION": [{"Type": "Antminer S19"}]}
    assert not Auradine.matches(_probe(stock))
    assert not Auradine.matches(_probe())
    assert backend_for("auradine") is Auradine and Auradine in BACKENDS
    assert SIM_FAMILIES["auradine"] is AuradineSim


# ===== (b) against the simulator over loopback ==========================================================
Start = Callable[..., Awaitable[tuple[SimFleet, Session]]]


@pytest.fixture
def auradines(family_miners: Callable[..., Start]) -> Start:
    """`fleet, session = await auradines(models)`: one simulated miner per model on its own 127.171.N.x block
    (conftest's `family_miners`)."""
    return family_miners(AuradineSim, "127.171", ("AT1500",))


def only(fleet: SimFleet) -> tuple[str, AuradineSim]:
    return only_miner(fleet, AuradineSim)


async def _backend(session: Session, ip: str) -> Auradine:
    return await identified_backend(session, ip, Auradine)


async def test_identify_every_simulated_model(auradines: Start) -> None:
    fleet, session = await auradines(AuradineSim.models)
    for ip, sim in fleet.miners.items():
        info = (await _backend(session, ip)).device
        assert (info.make, info.model, info.firmware) == ("Auradine", sim.model_name, "Stock")
        assert info.hardware.chips_per_board == sim.state.model.chips_per_board


class AuradineWithoutRpc(AuradineSim):
    """A miner whose RPC is switched off: only the web page and the REST API answer."""

    services = tuple(s for s in AuradineSim.services if s.port != 4028)


async def test_identified_by_the_rest_api_when_the_rpc_is_off() -> None:
    model = lookup_model("Auradine", "AT2880")
    assert model is not None
    sim = AuradineWithoutRpc.build(lo("127.171.252.10"), SimulableModel.of(model), random.Random(5))
    async with SimFleet([sim]) as fleet:
        session = Session(settings=TransportSettings(ports=fleet.ports or PortMap(), connect_timeout=0.5,
                                                     read_timeout=1.0))
        try:
            backend = await _backend(session, sim.state.ip)
            assert (backend.device.make, backend.device.model) == ("Auradine", "AT2880")
            assert sim.requests["8080:GET /ipreport"] == 1
            data = await backend.get_data()
            assert data.mac == sim.state.mac and data.hashrate is None  # the hash rate is an RPC read
            assert any("summary" in e for e in data.errors)
            sim.state.password = "changed"  # no login: identification fails with the reason, never raises
            fresh = Session(settings=session.settings)
            found = await identify(sim.state.ip, fresh, timeout=5)
            await fresh.aclose()
            assert found.miner is None and found.error is not None and "refused the login" in found.error
        finally:
            await session.aclose()


async def test_get_data_matches_the_simulator_state(auradines: Start) -> None:
    fleet, session = await auradines(AuradineSim.models)
    for ip, sim in fleet.miners.items():
        assert isinstance(sim, AuradineSim)
        data = await (await _backend(session, ip)).get_data()
        state, inventory = sim.state, sim.inventory()
        assert data.errors == []
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.001)
        assert sum(b.hashrate.value for b in data.hashboards if b.hashrate) == pytest.approx(data.hashrate.value,
                                                                                           rel=0.001)
        assert data.expected_hashrate is not None
        assert data.expected_hashrate.value == pytest.approx(state.model.nominal_ths)
        assert [b.board_temperature for b in data.hashboards] == state.board_temps
        assert [b.serial_number for b in data.hashboards] == state.extra["board_serials"]
        assert [b.working_chips for b in data.hashboards] == [state.model.chips_per_board] * 3
        assert [len(b.chips) for b in data.hashboards] == [state.model.chips_per_board] * 3
        assert {b.frequency for b in data.hashboards} == {sim.chip_mhz}
        assert {b.voltage for b in data.hashboards} == {sim.chip_volts}
        assert [f.rpm for f in data.fans] == state.fan_rpms
        assert [f.rpm for f in data.psu_fans] == state.extra["psu_fans"]
        assert (data.mac, data.hostname, data.serial_number) == (state.mac, state.hostname, state.serial)
        assert data.firmware_version == state.firmware_version == inventory["firmware_version"]
        assert data.wattage == round(state.wattage, 2) and data.wattage_limit == state.model.nominal_watts
        assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 2
        assert [(p.url, p.user) for g in data.pools for p in g.pools] == [
            (p.url, p.username) for g in state.pools for p in g.pools]
        assert data.is_mining is True and data.light_flashing is False and data.messages == []
        assert data.tuning_target is not None and data.tuning_target.target_mode == "normal"
        assert data.control_board_version == "T0"


async def test_get_data_sends_each_command_once_with_one_login(auradines: Start) -> None:
    fleet, session = await auradines()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    sim.requests.clear()
    await backend.get_data()
    assert dict(sim.requests) == {**{f"4028:{c}": 1 for c in RPC}, "8080:POST /token": 1,
                                  **{f"8080:GET /{c}": 1 for c in WEB}}
    assert unanswered(sim) == []
    sim.requests.clear()
    await backend.get_data([DataField.HASHRATE, DataField.WATTAGE])
    assert dict(sim.requests) == {"4028:summary": 1, "8080:GET /psu": 1}  # the token is kept


async def test_the_simulator_counts_what_it_cannot_answer(auradines: Start) -> None:
    fleet, session = await auradines()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    with pytest.raises(MinerAPIError, match="Invalid command"):
        await backend.rpc("stats")
    with pytest.raises(MinerAPIError, match="HTTP 404"):
        await backend.web("network")
    reply = await session.http.request("GET", ip, "/ipreport", port=8080)  # no token
    assert reply.status == 401 and decode_json(reply.body)["STATUS"][0]["STATUS"] == "E"
    assert unanswered(sim) == ["4028:unanswered stats", "8080:unanswered GET /network"]


async def test_a_lapsed_token_is_renewed_once(auradines: Start) -> None:
    fleet, session = await auradines()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    await backend.get_data([DataField.WATTAGE])
    sim.token_seconds = 0.0  # every token given so far has lapsed
    sim.requests.clear()
    data = await backend.get_data([DataField.WATTAGE])
    assert data.wattage is None and data.errors  # renewed once, refused again: an error, not a loop
    assert sim.requests["8080:POST /token"] == 1 and sim.requests["8080:GET /psu"] == 2
    sim.token_seconds = 3600.0
    assert (await backend.get_data([DataField.WATTAGE])).errors == []  # logs in afresh, keeps the token
    sim.state.extra["tokens"].clear()  # as after a reboot: the kept token is unknown
    sim.requests.clear()
    data = await backend.get_data([DataField.WATTAGE])
    assert data.errors == [] and data.wattage == round(sim.state.wattage, 2)
    assert sim.requests["8080:POST /token"] == 1 and sim.requests["8080:GET /psu"] == 2


async def test_configured_credentials_are_tried_and_refusals_reported(auradines: Start) -> None:
    fleet, session = await auradines()
    ip, sim = only(fleet)
    sim.state.password = "farm-secret"
    backend = await _backend(session, ip)
    data = await backend.get_data()
    assert data.hashrate is not None and data.mac is None  # the RPC reads need no login
    assert any("refused the login" in e for e in data.errors)
    with pytest.raises(AuthenticationError):
        await backend.pause()
    assert sim.state.mining is True
    from asicfleet._session import CredentialRule

    session.credentials.add(CredentialRule(family="auradine", username="admin", passwords=["wrong", "farm-secret"]))
    backend._token = None
    assert (await backend.get_data([DataField.MAC])).mac == sim.state.mac


async def test_change_password_keeps_the_miner_readable(auradines: Start) -> None:
    fleet, session = await auradines()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    await backend.get_data([DataField.MAC])
    assert await backend.change_password("n3w-pass") is True
    assert sim.state.password == "n3w-pass" and sim.state.extra["tokens"] == {}  # old tokens ended
    data = await backend.get_data([DataField.MAC])
    assert data.errors == [] and data.mac == sim.state.mac  # logs in with the remembered new password
    assert "n3w-pass" not in repr(session.credentials)
    sim.requests.clear()
    with pytest.raises(ValueError):
        await backend.change_password("")
    assert sim.total_requests == 0


async def test_pause_resume_and_fault_light(auradines: Start) -> None:
    fleet, session = await auradines(("AT2880",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    normal = sim.inventory()["hashrate_ths"]
    assert await backend.pause() is True and sim.state.mining is False
    paused = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE, DataField.WATTAGE])
    assert paused.is_mining is False and paused.hashrate is not None and paused.hashrate.value == 0
    assert paused.wattage == IDLE_WATTS
    assert await backend.resume() is True
    resumed = await backend.get_data([DataField.IS_MINING, DataField.HASHRATE])
    assert resumed.is_mining is True
    assert resumed.hashrate is not None and resumed.hashrate.value == pytest.approx(normal, rel=0.001)
    assert await backend.set_fault_light(True) and sim.state.extra["led_code"] == 3
    lit = await backend.get_data([DataField.LIGHT_FLASHING, DataField.MESSAGES])
    assert lit.light_flashing is True and [m.code for m in lit.messages] == [3]
    assert await backend.set_fault_light(False) and sim.state.extra["led_code"] == 2
    assert (await backend.get_data([DataField.LIGHT_FLASHING])).light_flashing is False


async def test_power_limit(auradines: Start) -> None:
    fleet, session = await auradines()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    before = sim.inventory()["hashrate_ths"]
    assert await backend.set_power_limit(2400) is True
    data = await backend.get_data([DataField.WATTAGE_LIMIT, DataField.HASHRATE, DataField.TUNING_TARGET,
                                   DataField.EXPECTED_HASHRATE])
    assert data.wattage_limit == 2400 == sim.state.power_limit
    assert data.tuning_target is not None and data.tuning_target.target_mode == "custom"
    assert data.hashrate is not None and data.hashrate.value < before
    assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.001)
    assert data.expected_hashrate is not None and data.expected_hashrate.value == pytest.approx(150.0)
    with pytest.raises(MinerAPIError, match="Power must be"):
        await backend.set_power_limit(100)  # the firmware refuses it: an error, and nothing changed
    assert sim.state.power_limit == 2400
    sim.requests.clear()
    with pytest.raises(ValueError):
        await backend.set_power_limit(0)
    assert sim.total_requests == 0


async def test_tuning_by_mode_power_and_hash_rate(auradines: Start) -> None:
    fleet, session = await auradines(("AT2880",))
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    nominal = sim.state.model
    assert await backend.get_tuning_config() == TuningConfig.mode("normal")
    assert await backend.set_tuning_config(TuningConfig.mode("low")) is True
    assert sim.state.extra["mode"] == "eco" and sim.state.power_limit < nominal.nominal_watts
    assert await backend.get_tuning_config() == TuningConfig.mode("low")
    eco = await backend.get_data([DataField.HASHRATE, DataField.TUNING_TARGET])
    assert eco.hashrate is not None and eco.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.001)
    assert eco.tuning_target is not None and eco.tuning_target.target_mode == "eco"
    assert await backend.set_tuning_config(TuningConfig.mode("turbo")) is True  # the firmware's own name
    assert await backend.get_tuning_config() == TuningConfig.mode("high")
    assert await backend.set_tuning_config(TuningConfig.power(3800)) is True
    assert await backend.get_tuning_config() == TuningConfig.power(3800) and sim.state.power_limit == 3800
    assert await backend.set_tuning_config(TuningConfig.hashrate(HashRate(value=200, unit="TH/s"))) is True
    assert sim.state.extra["target_ths"] == 200 and sim.state.extra["mode"] == "custom"
    read = await backend.get_data([DataField.EXPECTED_HASHRATE])
    assert read.expected_hashrate is not None and read.expected_hashrate.value == 200
    sim.requests.clear()
    with pytest.raises(ValueError, match="no mode 'sleepy'"):
        await backend.set_tuning_config(TuningConfig.mode("sleepy"))
    assert sim.total_requests == 0
    with pytest.raises(MinerAPIError, match="Ths must be"):
        await backend.set_tuning_config(TuningConfig.hashrate(HashRate(value=900, unit="TH/s")))
    assert sim.state.extra["target_ths"] == 200


async def test_rollout_controls_apply_and_verify(auradines: Start) -> None:
    """What a rollout does with each control: read the current value, apply, read it back."""
    from fleet.controls import (
        FaultLightControl,
        MiningControl,
        PoolsControl,
        PowerLimitControl,
        RestartControl,
        TuningControl,
    )

    fleet, session = await auradines()
    ip, sim = only(fleet)
    found = await identify(ip, session, timeout=5)
    assert found.miner is not None
    miner = found.miner
    pools = [PoolGroup(pools=[Pool(url="stratum+tcp://c.example.net:3333", username="w.9")])]
    controls = [PowerLimitControl(watts=2600), FaultLightControl(on=True), MiningControl(mining=False),
                MiningControl(mining=True), PoolsControl(groups=pools), TuningControl(config=TuningConfig.mode("low"))]
    for control in controls:
        assert getattr(miner, control.capability) is True, control
        before = await control.read_current(miner)
        assert before is not None and not control.matches(before), control
        sent = time.time()
        await control.apply(miner)
        assert (await control.verify(miner, sent)).state == "verified", control
    assert (sim.state.extra["led_code"], sim.state.extra["mode"], sim.state.mining) == (3, "eco", True)
    assert sim.state.pools == pools
    restart = RestartControl()
    sent = time.time()
    await restart.apply(miner)
    await asyncio.sleep(sim.restart_seconds + 0.5)
    assert (await restart.verify(miner, sent)).state == "verified"


async def test_pools_round_trip(auradines: Start) -> None:
    fleet, session = await auradines()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    new = [PoolGroup(pools=[Pool(url="stratum+tcp://a.example.net:3333", username="w.1", password="secret"),
                            Pool(url="stratum+ssl://b.example.net:443", username="w.1")])]
    assert await backend.set_pools_config(new) is True
    assert sim.state.pools == new  # the password went with the write
    read = await backend.get_pools_config()
    assert [[(p.url, p.username, p.password) for p in g.pools] for g in read] == [
        [("stratum+tcp://a.example.net:3333", "w.1", "x"), ("stratum+ssl://b.example.net:443", "w.1", "x")]]
    data = await backend.get_data([DataField.POOLS])
    assert [p.url for p in data.pools[0].pools] == [p.url for p in new[0].pools]
    sim.requests.clear()
    with pytest.raises(ValueError, match="one pool group"):
        await backend.set_pools_config([*new, PoolGroup(name="b", pools=new[0].pools)])
    with pytest.raises(ValueError, match="one pool group"):
        await backend.set_pools_config([])
    assert sim.total_requests == 0 and sim.state.pools == new


async def test_restart_and_unsupported_controls(auradines: Start) -> None:
    fleet, session = await auradines()
    ip, sim = only(fleet)
    backend = await _backend(session, ip)
    assert await backend.restart() is True
    await asyncio.sleep(0.15)
    down = await backend.get_data([DataField.UPTIME])
    assert down.uptime is None and down.errors
    await asyncio.sleep(sim.restart_seconds + 0.3)
    up = await backend.get_data([DataField.UPTIME, DataField.MAC])
    assert up.uptime is not None and up.uptime.total_seconds() <= 2
    assert up.mac == sim.state.mac  # a fresh token after the reboot
    for control in ("restart", "pause", "resume", "set_fault_light", "set_power_limit", "get_pools_config",
                    "set_pools_config", "get_tuning_config", "set_tuning_config", "change_password"):
        assert Auradine.supports(control), control
    for control in ("read_logs", "factory_reset", "upgrade_firmware", "get_fan_config",
                    "set_fan_config", "get_scaling_config"):
        assert not Auradine.supports(control), control
    with pytest.raises(UnsupportedControlError):
        await backend.read_logs()


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
async def test_fault_modes_yield_errors_without_hanging(auradines: Start, fault: Fault) -> None:
    fleet, session = await auradines()
    ip, _ = only(fleet)
    backend = await _backend(session, ip)
    fleet.set_fault(ip, fault)
    backend._token = None
    started = time.monotonic()
    data = await asyncio.wait_for(backend.get_data(), 10)
    assert time.monotonic() - started < 6
    if fault is Fault.AUTH_FAILURE:  # the RPC reads need no login; every token request is refused
        assert data.hashrate is not None and data.mac is None
        assert any("refused the login" in e for e in data.errors)
        assert [b.working_chips for b in data.hashboards] == [132] * 3  # from devs and asccount alone
    else:
        assert data.errors and data.hashrate is None


async def test_mixed_scan_with_other_families() -> None:
    miners = []
    for i, (kind, make, name) in enumerate([(AuradineSim, "Auradine", "AT1500"),
                                            (AntminerStockSim, "AntMiner", "Antminer S19j Pro"),
                                            (AuradineSim, "Auradine", "AT2880"),
                                            (AvalonSim, AvalonSim.make, AvalonSim.models[0])]):
        model = lookup_model(make, name)
        assert model is not None
        miners.append(kind.build(lo(f"127.171.250.{20 + i}"), SimulableModel.of(model), random.Random(i)))
    async with SimFleet(miners) as fleet:
        factory = MinerFactory.from_subnet(lo("127.171.250.0/24")).with_port_map(fleet.ports or PortMap())
        found = {str(m.ip): m for m in await factory.scan()}
        assert sorted(found) == sorted(fleet.miners)
        for ip, sim in fleet.miners.items():
            assert (found[ip].make, found[ip].model, found[ip].firmware) == (sim.make, sim.model_name, sim.firmware)
            data = await found[ip].get_data()
            assert data.hashrate is not None
            assert data.hashrate.value == pytest.approx(sim.inventory()["hashrate_ths"], rel=0.01)


async def test_generated_fleet_takes_the_family_name() -> None:
    fleet = SimFleet.generate(lo("127.171.251.0/24"), 4, ["auradine"], seed=3)
    assert {type(m) for m in fleet.miners.values()} == {AuradineSim}
    assert {m.model_name for m in fleet.miners.values()} <= set(AuradineSim.models)


# ===== (c) the independent clients against the simulator ===============================================
def unanswered(sim: AuradineSim) -> list[str]:
    """What a client asked that the simulator does not serve (it counts those as `port:unanswered ...`)."""
    return [key for key in sim.requests if ":unanswered " in key]


def _real_ports(fleet: SimFleet) -> None:
    if fleet.ports is not None and fleet.ports.overrides:
        pytest.skip("pyasic and pyasic-rs only speak to the standard ports; needs root to bind port 80")


@pytest.mark.interop
async def test_pyasic_reads_every_model(auradines: Start) -> None:
    """pyasic: RPC version/devdetails ("GCMiner"/"FluxOS") or `GET /` ("Miner UI") identify; the model from
    RPC devdetails; get_data reads RPC summary and devs, and with a token (POST /token on 8080) GET ipreport,
    psu, mode, fan, led and pools. Its MAC is upper case; its wattage an integer."""
    import pyasic  # type: ignore[import-untyped]

    fleet, _ = await auradines(AuradineSim.models)
    _real_ports(fleet)
    for ip, sim in fleet.miners.items():
        miner = await pyasic.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.make, data.model, data.firmware) == (inventory["make"], inventory["model"], "Stock")
        assert data.hashrate is not None
        assert float(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.wattage == int(sim.state.wattage) and data.wattage_limit == sim.state.power_limit
        assert (data.mac, data.fw_ver, data.hostname) == (inventory["mac"], inventory["firmware_version"],
                                                          inventory["hostname"])
        assert [f.speed for f in data.fans] == sim.state.fan_rpms
        assert [b.serial_number for b in data.hashboards] == sim.state.extra["board_serials"]
        assert data.is_mining is True and data.fault_light is False
        assert unanswered(sim) == [] and sim.requests["8080:GET /ipreport"] >= 1


@pytest.mark.interop
async def test_pyasic_rs_reads_every_model(auradines: Start) -> None:
    """pyasic-rs: RPC version/devdetails ("GCMINER"/"FLUXOS") identify; the model from devdetails; get_data
    reads RPC version, summary, devs, asccount, pools and, with its token, GET ipreport, fan, led, mode, psu,
    temperature, voltage, frequency. Make "Auradine", firmware "Auradine Stock"."""
    from pyasic_rs import MinerFactory as RsFactory

    fleet, _ = await auradines(AuradineSim.models)
    _real_ports(fleet)
    factory = RsFactory()
    for ip, sim in fleet.miners.items():
        miner = await factory.get_miner(ip)
        assert miner is not None, ip
        data = await miner.get_data()
        inventory = sim.inventory()
        assert (data.device_info.make, data.device_info.model) == (inventory["make"], inventory["model"])
        assert data.device_info.firmware == "Auradine Stock"
        assert data.hashrate is not None
        assert data.hashrate.value == pytest.approx(inventory["hashrate_ths"], rel=0.01)
        assert data.mac == inventory["mac"] and data.firmware_version == inventory["firmware_version"]
        assert [b.serial_number for b in data.hashboards] == sim.state.extra["board_serials"]
        assert [len(b.chips) for b in data.hashboards] == [sim.state.model.chips_per_board] * 3
        assert data.wattage == pytest.approx(sim.state.wattage, abs=0.01)
        assert data.expected_hashrate is not None
        assert data.expected_hashrate.value == pytest.approx(sim.state.model.nominal_ths)
        assert data.is_mining is True and data.light_flashing is False
        assert unanswered(sim) == [] and sim.requests["8080:GET /temperature"] == 1


@pytest.mark.interop
async def test_interop_controls_change_the_simulator(auradines: Start) -> None:
    """Both clients' controls land in the simulator's state, through the same REST writes ours sends."""
    import pyasic
    from pyasic_rs import MinerFactory as RsFactory

    fleet, session = await auradines()
    _real_ports(fleet)
    ip, sim = only(fleet)
    miner = await pyasic.get_miner(ip)
    assert await miner.fault_light_on() is True and sim.state.extra["led_code"] == 3
    assert await miner.stop_mining() is True and sim.state.mining is False
    assert await miner.resume_mining() is True and sim.state.mining is True
    assert await miner.set_power_limit(2500) is True and sim.state.power_limit == 2500
    rs_miner = await RsFactory().get_miner(ip)
    assert await rs_miner.set_fault_light(False) and sim.state.extra["led_code"] == 2
    assert await rs_miner.pause() and sim.state.mining is False
    assert await rs_miner.resume() and sim.state.mining is True
    assert await rs_miner.set_power_limit(2600.0) and sim.state.power_limit == 2600
    backend = await _backend(session, ip)
    assert (await backend.get_data([DataField.WATTAGE_LIMIT])).wattage_limit == 2600
    assert unanswered(sim) == []
