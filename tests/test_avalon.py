"""Canaan AvalonMiner (stock firmware): parsers on the captured replies, the simulator over loopback, controls,
faults, and the independent clients pyasic / pyasic-rs against the simulator. Loopback range: 127.84.0.0/16."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from typing import Any

import pytest

from asicfleet._errors import AuthenticationError, MinerError, UnsupportedControlError
from asicfleet._session import CredentialRule, Session
from asicfleet.backends import Probe, backend_for
from asicfleet.backends.avalon import (
    AvalonBackend,
    AvalonStats,
    ascset_accepted,
    ascset_options,
    expand_stats_reply,
    model_from_version,
    parse_bracket_fields,
    parse_mac,
)
from asicfleet.config import FanConfig, Pool, PoolGroup, ScalingConfig, TuningConfig
from asicfleet.data import DeviceInfo, HashRate
from asicfleet.discovery._identify import identify as discover
from asicfleet.sim import Fault, SimFleet
from asicfleet.sim.avalon import AvalonSim
from asicfleet.transport import HttpReply, PortMap, TransportSettings, decode_json, rpc_call, rpc_multi
from asicfleet.transport._rpc import check_status
from tests.conftest import FleetFactory, fixture_bytes, lo

FAMILY = "avalonminer"


def fixture(name: str) -> bytes:
    return fixture_bytes(FAMILY, name)


def fixture_json(name: str) -> Any:
    return json.loads(fixture(name))


def backend_for_model(model: str, ip: str = lo("127.84.0.1"), session: Session | None = None) -> AvalonBackend:
    return AvalonBackend(ip, AvalonBackend.device_info("AvalonMiner", model, "Stock"), session or Session())


def ths(rate: HashRate | None) -> float:
    assert rate is not None
    return rate.into_unit("TH/s").value


# ======================================================================================================
# parsers on the captured replies
# ======================================================================================================
class TestFieldStrings:
    def test_a_series_stats_parse_as_the_capture_says(self) -> None:
        assert expand_stats_reply(fixture_json("avalon_a_stats.json")) == fixture_json("avalon_a_stats_parsed.json")

    def test_summary_layout_stats_parse_as_the_capture_says(self) -> None:
        assert expand_stats_reply(fixture_json("stats.json")) == fixture_json("stats_parsed.json")

    def test_litestats_summary_parses_to_the_expected_fields(self) -> None:
        expected = fixture_json("litestats_parsed.json")
        fields = expected["STATS"][0]["MM ID0:Summary"]["STATS"]
        text = " ".join(f"{k}[{' '.join(map(str, v)) if isinstance(v, list) else v}]" for k, v in fields.items())
        raw = {"STATUS": expected["STATUS"], "STATS": [{"MM ID0:Summary": "'STATS':{" + text + "}"}], "id": 1}
        assert expand_stats_reply(raw) == expected

    def test_empty_field_strings_parse_to_empty_sections(self) -> None:
        expected = fixture_json("stats_empty_parsed.json")
        entry = {**expected["STATS"][0], "MM ID0:Summary": "", "HBinfo": ""}
        assert expand_stats_reply({**expected, "STATS": [entry]}) == expected

    def test_value_conversions(self) -> None:
        fields = parse_bracket_fields("A[12] B[1.50] C[ 1  2 3] D[2.7%] E[] F[0x08.0] Nonce Mask[25] "
                                      "SYSTEMSTATU[Work: In Work, Hash Board: 3 ] G[-1] H[1_000]")
        assert fields == {"A": 12, "B": 1.5, "C": [1, 2, 3], "D": "2.7%", "F": "0x08.0", "Mask": 25,
                          "SYSTEMSTATU": "Work: In Work, Hash Board: 3", "G": -1.0, "H": "1_000"}


class TestAvalon1246Capture:
    """avalon_a_stats.json: an A1246 (`Ver[1246-83-...]`), three boards of 120 chips, mining."""

    def data(self) -> Any:
        return backend_for_model("Avalon 1246").parse_raw({"rpc:estats": fixture("avalon_a_stats.json")})

    def test_boards_and_chips(self) -> None:
        data = self.data()
        assert data.errors == []
        assert [round(ths(b.hashrate), 5) for b in data.hashboards] == [26.90701, 26.02506, 26.72456]
        assert [b.board_temperature for b in data.hashboards] == [66.0, 65.0, 64.0]  # MTavg
        assert [b.working_chips for b in data.hashboards] == [120, 120, 120]  # every MW entry > 0
        assert [b.expected_chips for b in data.hashboards] == [120, 120, 120]
        assert [b.frequency for b in data.hashboards] == [502.0, 502.0, 502.0]  # mean of SF0 472..532
        chip = data.hashboards[1].chips[0]
        assert (chip.temperature, chip.voltage, chip.working) == (64.0, 0.309, True)  # PVT_T1, PVT_V1, MW1
        assert data.hashboards[2].chips[-1].temperature == 64.0
        assert data.total_chips == 360
        assert data.average_temperature == 65.0

    def test_device_figures(self) -> None:
        data = self.data()
        assert round(ths(data.expected_hashrate), 5) == 83.92304  # GHSmm
        assert [f.rpm for f in data.fans] == [5344, 5392, 5349, 5309]
        assert data.wattage == 3504  # PS[6], the PSU's input
        assert data.wattage_limit == 3200  # MPO
        assert data.uptime is not None and data.uptime.total_seconds() == 24684
        assert data.is_mining is True  # SYSTEMSTATU "In Work"
        assert data.light_flashing is False  # Led[0]
        assert data.tuning_target is not None and data.tuning_target.target_mode == "normal"  # WORKMODE[1]
        assert data.messages == []  # ECMM[0], ECHU[0 0 0]


class TestAvalonQCaptures:
    """The Avalon Q captures: version, summary, devs, pools, stats (summary layout), idle (soft-off)."""

    def data(self, **raw: str) -> Any:
        backend = backend_for_model("Avalon Q")
        return backend.parse_raw({key: fixture(name) for key, name in raw.items()})

    def test_version_fields(self) -> None:
        data = self.data(**{"rpc:version": "version.json"})
        assert data.mac == "AA:BB:CC:DD:EE:FF"
        assert data.serial_number == "01234567890123456789012345678901"
        assert data.firmware_version == "25052801_14a19a2"  # LVERSION (no VERSION key on this series)
        assert data.api_version == "3.7"
        assert data.control_board_version == "Q_MM1v1_X1"

    def test_summary_devs_and_pools(self) -> None:
        data = self.data(**{"rpc:summary": "summary.json", "rpc:pools": "pools.json"})
        assert ths(data.hashrate) == 0.0  # MHS 1m 0.0: the miner is in standby
        assert data.uptime is not None and data.uptime.total_seconds() == 37714
        [group] = data.pools
        [pool] = group.pools
        assert (pool.url, pool.user, pool.accepted_shares, pool.rejected_shares, pool.active, pool.alive) == (
            "stratum+tcp://pool.example.com:4444", "worker1", 890, 2, True, True)
        devs = self.data(**{"rpc:devs": "devs.json"})
        assert ths(devs.hashrate) == 0.0  # DEVS MHS 1m, the fallback source

    def test_stats_summary_layout(self) -> None:
        data = self.data(**{"rpc:stats": "stats.json"})
        assert data.errors == []
        [board] = data.hashboards
        assert round(ths(board.hashrate), 5) == 44.49941  # MGHS
        assert (board.intake_temperature, board.outlet_temperature) == (27.0, 27.0)  # HBITemp, HBOTemp
        assert board.board_temperature is None  # TAvg[0]: not measured while idle
        assert board.working_chips == 160 and board.expected_chips == 160  # HBinfo HB0 MW0
        assert (board.chips[0].temperature, board.chips[0].voltage) == (58.0, 0.282)
        assert board.frequency == 287.25  # mean of SF0 258 276 297 318
        assert round(ths(data.expected_hashrate), 5) == 55.03279
        assert [f.rpm for f in data.fans] == [0, 0, 0, 0]
        assert data.wattage == 146  # PS[6]: standby draw
        assert data.wattage_limit == 800
        assert data.is_mining is False  # "Work: In Idle"
        assert data.light_flashing is None  # this series has no Led field
        assert data.tuning_target is not None and data.tuning_target.target_mode == "low"
        assert data.uptime is not None and data.uptime.total_seconds() == 37819  # STATS[0].Elapsed

    def test_litestats(self) -> None:
        data = self.data(**{"rpc:litestats": "litestats.json"})
        [board] = data.hashboards
        assert round(ths(board.hashrate), 5) == 44.35083
        assert board.chips == [] and board.working_chips is None  # litestats carries no HBinfo
        assert data.wattage == 146 and data.wattage_limit == 800

    def test_litestats_parsed_figures(self) -> None:
        data = backend_for_model("Avalon Q").parse_raw({"rpc:litestats": fixture_json("litestats_parsed.json")})
        [board] = data.hashboards
        assert round(ths(board.hashrate), 4) == 93.8974
        assert (board.intake_temperature, board.outlet_temperature) == (75.0, 77.0)
        assert [f.rpm for f in data.fans] == [2671, 2665, 2661, 2679]
        assert data.wattage == 1670 and data.wattage_limit == 1600
        assert round(ths(data.expected_hashrate), 5) == 96.78571

    def test_empty_stats(self) -> None:
        raw = fixture_json("stats_empty_parsed.json")
        data = backend_for_model("Avalon Q").parse_raw({"rpc:stats": raw})
        assert data.hashboards == [] and data.fans == [] and data.wattage is None
        assert data.uptime is not None and data.uptime.total_seconds() == 117245

    def test_other_replies(self) -> None:
        check = check_status(decode_json(fixture("check.json")), "check")
        assert check["CHECK"][0] == {"Access": "N", "Exists": "N"}
        coin = check_status(decode_json(fixture("coin.json")), "coin")
        assert coin["COIN"][0]["Hash Method"] == "sha256"
        config = check_status(decode_json(fixture("config.json")), "config")
        assert config["CONFIG"][0]["Device Code"] == "AVALON"
        details = decode_json(fixture("devdetails.json"))
        assert AvalonBackend.matches(Probe(ip=lo("127.84.0.1"), rpc={"devdetails": details}))

    def test_ascset_replies(self) -> None:
        assert ascset_accepted(decode_json(fixture("ascset_softoff.json")))
        assert ascset_accepted(decode_json(fixture("ascset_softon.json")))
        assert ascset_accepted(decode_json(fixture("ascset_workmode.json")))
        help_reply = decode_json(fixture("ascset_help.json"))
        assert not ascset_accepted(help_reply)  # an info listing, not a change
        options = ascset_options(help_reply)
        assert {"softoff", "softon", "workmode", "worklevel", "fan-spd", "reboot"} <= set(options)
        refused = {"STATUS": [{"STATUS": "E", "Code": 120, "Msg": "ASC 0 set failed: Unknown option: x"}]}
        assert not ascset_accepted(refused)


class TestIdentification:
    def test_models_from_version(self) -> None:
        assert model_from_version({"PROD": "AvalonMiner 1246-83", "MODEL": "1246-83"}) == "Avalon 1246"
        assert model_from_version({"PROD": "AvalonMiner 1466-116", "MODEL": "1466-116"}) == "Avalon A1466"
        assert model_from_version({"PROD": "AvalonMiner 1366-109"}) == "Avalon 1366"
        assert model_from_version(fixture_json("version.json")["VERSION"][0]) == "Avalon Q"
        assert model_from_version({"PROD": "Avalon Nano3s", "MODEL": "Nano3s"}) == "Avalon Nano3s"
        assert model_from_version({"PROD": "AvalonMiner 1566-194", "MODEL": "1566-194"}) == "Avalon 1566"
        assert model_from_version({}) is None

    def test_matches(self) -> None:
        version = fixture_json("version.json")
        assert AvalonBackend.matches(Probe(ip=lo("127.84.0.1"), rpc={"version": version}))
        bmminer = {"STATUS": [{"STATUS": "S"}], "VERSION": [{"BMMiner": "2.0.0", "Type": "Antminer S19"}]}
        assert not AvalonBackend.matches(Probe(ip=lo("127.84.0.1"), rpc={"version": bmminer}))
        web = HttpReply(200, {}, b"<title>Avalon Device</title>")
        assert AvalonBackend.matches(Probe(ip=lo("127.84.0.1"), web=web, rpc={"version": MinerError("refused")}))
        braiins = HttpReply(200, {}, b"<title>Braiins OS</title>")
        assert not AvalonBackend.matches(Probe(ip=lo("127.84.0.1"), web=braiins))

    async def test_identify_from_probe(self) -> None:
        probe = Probe(ip=lo("127.84.0.1"), rpc={"version": fixture_json("version.json")})
        device = await AvalonBackend.identify(probe, Session())
        assert device is not None
        assert (device.make, device.model, device.firmware) == ("AvalonMiner", "Avalon Q", "Stock")
        assert device.hardware.total_chips == 160

    def test_mac_forms(self) -> None:
        assert parse_mac("b4a2eb3526c3") == "B4:A2:EB:35:26:C3"
        assert parse_mac("AA:BB:CC:DD:EE:FF") == "AA:BB:CC:DD:EE:FF"
        assert parse_mac("nonsense") is None

    def test_registered(self) -> None:
        assert backend_for("avalon") is AvalonBackend
        assert AvalonBackend.supports("pause") and AvalonBackend.supports("set_pools_config")
        assert not AvalonBackend.supports("get_fan_config") and not AvalonBackend.supports("set_scaling_config")


# ======================================================================================================
# the simulator over loopback
# ======================================================================================================
MODELS = ("Avalon 1246", "Avalon 1366", "Avalon A1466")


def quick(fleet: SimFleet, **overrides: Any) -> Session:
    settings = {"connect_timeout": 1.0, "read_timeout": 2.0, **overrides}
    return Session(settings=TransportSettings(ports=fleet.ports or PortMap(), **settings))


async def start_models(sim_fleet: FleetFactory, subnet: str, ports: PortMap | None = None
                       ) -> tuple[SimFleet, dict[str, AvalonSim]]:
    """Three simulated miners, one of each model (the seed is chosen so; asserted)."""
    fleet = await sim_fleet(subnet, 3, ["avalon"], seed=2, ports=ports)
    by_model: dict[str, AvalonSim] = {}
    for miner in fleet.miners.values():
        assert isinstance(miner, AvalonSim)
        miner.restart_seconds = 0.3
        by_model[miner.state.model.name] = miner
    assert sorted(by_model) == sorted(MODELS)
    return fleet, by_model


async def backend_of(miner: AvalonSim, session: Session) -> AvalonBackend:
    found = await discover(miner.state.ip, session, timeout=5)
    assert found.miner is not None, found.error
    backend = found.miner.backend
    assert isinstance(backend, AvalonBackend)
    return backend


async def wait_back(miner: AvalonSim, session: Session, deadline: float = 5.0) -> None:
    """Polls until the rebooted miner answers again."""
    stop = time.monotonic() + deadline
    await asyncio.sleep(0.1)
    while time.monotonic() < stop:
        try:
            await rpc_call(miner.state.ip, "summary", settings=session.settings)
            return
        except MinerError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{miner.state.ip} did not come back within {deadline}s")


class TestSimulatedMiners:
    async def test_identify_and_read_every_model(self, sim_fleet: FleetFactory) -> None:
        fleet, miners = await start_models(sim_fleet, lo("127.84.10.0/24"))
        session = quick(fleet)
        for name, miner in miners.items():
            backend = await backend_of(miner, session)
            inventory = miner.inventory()
            assert (backend.device.make, backend.device.model, backend.device.firmware) == (
                inventory["make"], inventory["model"], inventory["firmware"]) == ("AvalonMiner", name, "Stock")
            miner.requests.clear()
            data = await backend.get_data()
            state = miner.state
            assert data.errors == []
            assert ths(data.hashrate) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
            assert sum(ths(b.hashrate) for b in data.hashboards) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
            assert data.wattage == pytest.approx(inventory["wattage"], abs=1)
            assert data.wattage_limit == state.power_limit
            assert [f.rpm for f in data.fans] == state.fan_rpms
            assert (data.mac, data.serial_number) == (inventory["mac"], inventory["serial"])
            assert data.firmware_version == inventory["firmware_version"]
            assert data.hostname is None  # the Avalon API does not report one
            assert [(p.url, p.user) for p in data.pools[0].pools] == [
                (p.url, p.username) for p in state.pools[0].pools]
            assert len(data.hashboards) == state.model.boards
            assert all(b.working_chips == b.expected_chips == state.model.chips_per_board for b in data.hashboards)
            assert [b.board_temperature for b in data.hashboards] == [
                round(sum(t) / len(t)) for t in (
                    [round(state.board_temps[i] + o) for o in miner.chip_temp_offsets[i]]
                    for i in range(state.model.boards))]
            assert data.uptime is not None and abs(data.uptime.total_seconds() - state.uptime) <= 2
            assert (data.is_mining, data.light_flashing) == (True, False)
            assert data.tuning_target is not None and data.tuning_target.target_mode == "normal"
            # one joined request: each command exactly once
            assert dict(miner.requests) == {"4028:estats": 1, "4028:pools": 1, "4028:summary": 1, "4028:version": 1}

    async def test_web_page_identifies(self, sim_fleet: FleetFactory) -> None:
        fleet = await sim_fleet(lo("127.84.11.0/24"), 1, ["avalon"])
        miner = next(iter(fleet.miners.values()))
        session = quick(fleet)
        page = await session.http.request("GET", miner.state.ip, "/")
        assert page.status == 200 and "Avalon" in page.text
        assert AvalonBackend.matches(Probe(ip=miner.state.ip, web=page))
        missing = await session.http.request("GET", miner.state.ip, "/cgi-bin/nothing")
        assert missing.status == 404
        await session.aclose()

    async def test_joined_writes_are_refused(self, sim_fleet: FleetFactory) -> None:
        fleet = await sim_fleet(lo("127.84.12.0/24"), 1, ["avalon"])
        miner = next(iter(fleet.miners.values()))
        replies = await rpc_multi(miner.state.ip, ["summary", "ascset"], settings=quick(fleet).settings)
        assert "SUMMARY" in replies["summary"]  # type: ignore[operator]
        assert isinstance(replies["ascset"], MinerError) and "Access denied" in str(replies["ascset"])
        assert miner.state.fault_light is False


class TestControls:
    async def test_light_power_and_mode(self, sim_fleet: FleetFactory) -> None:
        fleet, miners = await start_models(sim_fleet, lo("127.84.20.0/24"))
        miner = miners["Avalon 1246"]
        session = quick(fleet)
        backend = await backend_of(miner, session)
        before = await backend.get_data()

        assert await backend.set_fault_light(True)
        assert (await backend.get_data()).light_flashing is True
        assert await backend.set_fault_light(False)
        assert (await backend.get_data()).light_flashing is False

        cap = 2800.0
        assert await backend.set_power_limit(cap)
        capped = await backend.get_data()
        assert capped.wattage_limit == cap
        assert capped.wattage is not None and capped.wattage * 0.91 <= cap + 2  # PSU output within the cap
        assert ths(capped.hashrate) < ths(before.hashrate)
        assert capped.pools == before.pools  # unrelated settings untouched
        assert capped.tuning_target == before.tuning_target

        assert await backend.set_tuning_config(TuningConfig.mode("low"))
        assert await backend.get_tuning_config() == TuningConfig.mode("low")
        low = await backend.get_data()
        assert low.wattage_limit == cap and low.pools == before.pools
        assert await backend.set_tuning_config(TuningConfig.power(3300))
        assert (await backend.get_data()).wattage_limit == 3300
        with pytest.raises(ValueError):
            await backend.set_tuning_config(TuningConfig.mode("turbo"))
        with pytest.raises(UnsupportedControlError):
            await backend.set_tuning_config(TuningConfig.hashrate({"value": 80, "unit": "TH/s"}))

    async def test_fans(self, sim_fleet: FleetFactory) -> None:
        fleet, miners = await start_models(sim_fleet, lo("127.84.21.0/24"))
        miner = miners["Avalon 1366"]
        session = quick(fleet)
        backend = await backend_of(miner, session)
        auto_rpms = list(miner.base_fan_rpms)
        assert [f.rpm for f in (await backend.get_data()).fans] == auto_rpms
        assert await backend.set_fan_config(FanConfig.manual(36))
        stats = AvalonStats(await backend.rpc("estats"))
        assert stats.fields["FanR"] == "36%"
        assert [f.rpm for f in (await backend.get_data()).fans] == [round(r * 36 / 72) for r in auto_rpms]
        assert await backend.set_fan_config(FanConfig.auto(target_temp=70))
        stats = AvalonStats(await backend.rpc("estats"))
        assert (stats.fields["FanR"], stats.fields["TarT"]) == ("72%", 70)
        with pytest.raises(UnsupportedControlError):
            await backend.get_fan_config()

    @pytest.mark.parametrize("model", ["Avalon 1246", "Avalon A1466"])
    async def test_pause_and_resume(self, sim_fleet: FleetFactory, model: str) -> None:
        """The A1466 answers softoff with `set OK` and softon with nothing; both forms are understood."""
        subnet = lo("127.84.22.0/24") if model == "Avalon 1246" else lo("127.84.23.0/24")
        fleet, miners = await start_models(sim_fleet, subnet)
        miner = miners[model]
        session = quick(fleet)
        backend = await backend_of(miner, session)
        assert await backend.pause()
        paused = await backend.get_data()
        assert paused.is_mining is False and ths(paused.hashrate) == 0.0
        assert all(f.rpm == 0 for f in paused.fans)
        assert await backend.resume()
        resumed = await backend.get_data()
        assert resumed.is_mining is True
        assert ths(resumed.hashrate) == pytest.approx(miner.inventory()["hashrate_ths"], rel=0.01)

    async def test_pools_and_restart(self, sim_fleet: FleetFactory) -> None:
        fleet, miners = await start_models(sim_fleet, lo("127.84.24.0/24"))
        miner = miners["Avalon A1466"]
        session = quick(fleet)
        backend = await backend_of(miner, session)
        assert await backend.set_power_limit(3000)
        new = PoolGroup(name="default", quota=1, pools=[
            Pool(url="stratum+tcp://new.example.org:3333", username="acct.w1", password="p1"),
            Pool(url="stratum+ssl://new2.example.org:4444", username="acct.w2", password="p2"),
        ])
        assert await backend.set_pools_config([new])  # writes the slots, then reboots to apply them
        await wait_back(miner, session)
        assert await backend.get_pools_config() == [new]
        after = await backend.get_data()
        assert [p.url for p in after.pools[0].pools] == [p.url for p in new.pools]
        assert after.wattage_limit == 3000  # unrelated settings survive the reboot
        assert after.uptime is not None and after.uptime.total_seconds() < 5
        with pytest.raises(ValueError):
            await backend.set_pools_config([new, new])

    async def test_restart(self, sim_fleet: FleetFactory) -> None:
        fleet, miners = await start_models(sim_fleet, lo("127.84.25.0/24"))
        miner = miners["Avalon 1246"]
        session = quick(fleet)
        backend = await backend_of(miner, session)
        assert (await backend.get_data()).uptime.total_seconds() > 3600  # type: ignore[union-attr]
        assert await backend.restart()
        await wait_back(miner, session)
        assert (await backend.get_data()).uptime.total_seconds() < 5  # type: ignore[union-attr]

    async def test_credentials(self, sim_fleet: FleetFactory) -> None:
        fleet, miners = await start_models(sim_fleet, lo("127.84.26.0/24"))
        miner = miners["Avalon 1366"]
        session = quick(fleet)
        session.credentials.add(CredentialRule(family="avalon", username="root", passwords=["wrong"]))
        backend = await backend_of(miner, session)
        group = PoolGroup(pools=[Pool(url="stratum+tcp://a.example.org:3333", username="u1")])
        assert await backend.set_pools_config([group])  # "wrong" refused, then the default root/root
        await wait_back(miner, session)
        [written] = await backend.get_pools_config()
        # slot 0 replaced; slot 1 keeps its pool (the API cannot empty a slot)
        assert [p.url for p in written.pools] == ["stratum+tcp://a.example.org:3333",
                                                  "stratum+tcp://backup.example.com:3333"]

        miner.fault = Fault.AUTH_FAILURE
        before = list(miner.pool_slots)
        with pytest.raises(AuthenticationError):
            await backend.set_pools_config([PoolGroup(pools=[Pool(url="stratum+tcp://b.example.org:1", username="x")])])
        assert miner.pool_slots == before and miner.pending_slots is None

    async def test_unsupported_controls(self, sim_fleet: FleetFactory) -> None:
        fleet = await sim_fleet(lo("127.84.27.0/24"), 1, ["avalon"])
        miner = next(iter(fleet.miners.values()))
        backend = await backend_of(miner, quick(fleet))  # type: ignore[arg-type]
        for call in (backend.get_fan_config(), backend.get_scaling_config(),
                     backend.set_scaling_config(ScalingConfig(step=5, minimum=50)), backend.change_password("x"),
                     backend.read_logs(), backend.factory_reset(), backend.upgrade_firmware(b"", "fw.bin")):
            with pytest.raises(UnsupportedControlError):
                await call


class TestFaults:
    @pytest.mark.parametrize("fault", [Fault.SLOW, Fault.HUNG, Fault.MALFORMED, Fault.TRUNCATED, Fault.OVERSIZED,
                                       Fault.RESET])
    async def test_fault_gives_an_error_quickly(self, sim_fleet: FleetFactory, fault: Fault) -> None:
        fleet = await sim_fleet(lo("127.84.30.0/24"), 1, ["avalon"])
        miner = next(iter(fleet.miners.values()))
        assert isinstance(miner, AvalonSim)
        session = quick(fleet, read_timeout=0.5, max_reply_bytes=1024 * 1024)
        backend = await backend_of(miner, session)
        miner.fault, miner.slow_seconds, miner.oversized_bytes = fault, 1.5, 2 * 1024 * 1024
        started = time.monotonic()
        data = await asyncio.wait_for(backend.get_data(), 10)
        assert data.errors, f"{fault} gave no error"
        assert data.hashrate is None
        assert time.monotonic() - started < 5
        with pytest.raises(MinerError):
            await asyncio.wait_for(backend.set_fault_light(True), 10)


# ======================================================================================================
# the independent clients against the simulator (real ports)
# ======================================================================================================
def model_code(text: str | None) -> str | None:
    found = re.search(r"\d{4}", text or "")
    return found.group(0) if found else None


@pytest.mark.interop
class TestReferenceClients:
    async def test_pyasic_reads_every_model(self, sim_fleet: FleetFactory) -> None:
        """pyasic knows the A1246 by model; the 1366 and A1466 it reads as `AvalonUnknown` (no model)."""
        if os.geteuid() != 0:
            pytest.fail("the interop tests need the real ports (80, 4028): run them as root")
        import pyasic  # type: ignore[import-untyped]
        from pyasic.device.algorithm.sha256 import SHA256Algo  # type: ignore[import-untyped]

        _, miners = await start_models(sim_fleet, lo("127.84.40.0/24"), ports=PortMap())
        for name, miner in miners.items():
            inventory = miner.inventory()
            # pyasic warns "Partially supported miner found" for the models it has no class for
            with pytest.warns(UserWarning) if name != "Avalon 1246" else contextlib.nullcontext():
                client = await pyasic.get_miner(inventory["ip"])
            assert client is not None, f"pyasic did not identify {name}"
            assert (client.make, client.firmware) == ("AvalonMiner", "Stock")
            if name == "Avalon 1246":
                assert model_code(str(client.raw_model)) == "1246"
            else:
                assert client.raw_model is None
            data = await client.get_data()
            assert data.hashrate is not None
            assert float(data.hashrate.into(SHA256Algo.unit.TH)) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
            assert data.mac == inventory["mac"]

    async def test_pyasic_rs_reads_every_model(self, sim_fleet: FleetFactory) -> None:
        """pyasic-rs names the firmware "AvalonMiner Stock" and the make "Avalonminer"."""
        if os.geteuid() != 0:
            pytest.fail("the interop tests need the real ports (80, 4028): run them as root")
        from pyasic_rs import MinerFactory

        _, miners = await start_models(sim_fleet, lo("127.84.41.0/24"), ports=PortMap())
        for name, miner in miners.items():
            inventory = miner.inventory()
            client = await MinerFactory().get_miner(inventory["ip"])
            assert client is not None, f"pyasic-rs did not identify {name}"
            assert str(client.make).lower() == inventory["make"].lower()
            assert "Stock" in str(client.firmware)
            assert model_code(str(client.model)) == model_code(name)
            data = await client.get_data()
            assert data.hashrate is not None
            assert float(data.hashrate.value) == pytest.approx(inventory["hashrate_ths"], rel=0.01)
            assert str(data.hashrate.unit).upper().startswith(("TH", "TERA"))


def test_device_info_shape() -> None:
    device = AvalonBackend.device_info("AvalonMiner", "Avalon A1466", "Stock")
    assert isinstance(device, DeviceInfo)
    assert (device.hardware.board_count, device.hardware.chips_per_board) == (3, 176)
