"""Data and config models: units, validation, JSON round trips and schemas."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from datetime import timedelta
from ipaddress import IPv4Address

import pytest
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from asicfleet import (
    BoardData,
    DeviceInfo,
    FanConfig,
    HashRate,
    HashRateUnit,
    MinerData,
    MinerFactory,
    Pool,
    PoolGroup,
    ScalingConfig,
    TuningConfig,
)
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.whatsminer import whatsminer_model
from asicfleet.data import HashAlgorithm, MinerMessage, PoolData, PoolGroupData
from asicfleet.discovery import ScanRecord, scan_and_collect
from asicfleet.hardware import Cooling, Make, SimulableModel, catalogue, lookup_model
from asicfleet.hardware._models import _key
from asicfleet.sim import SIM_FAMILIES, SimFleet
from asicfleet.sim._fleet import lookup_any_make, servable_models
from asicfleet.sim.antminer import AntminerStockSim
from orchestrator import render
from orchestrator.cli import app
from tests.conftest import FIXTURES, FleetFactory, lo


class Snapshot(BaseModel):
    hashrate: HashRate


def test_hashrate_inside_another_model_as_in_the_guide() -> None:
    snapshot = Snapshot.model_validate({"hashrate": {"value": 100.0, "unit": "TH/s", "algo": "SHA256"}})
    assert snapshot.hashrate.value == 100.0
    assert snapshot.hashrate.unit is HashRateUnit.TH
    assert snapshot.model_dump(mode="json") == {"hashrate": {"value": 100.0, "unit": "TH/s", "algo": "SHA256"}}


@pytest.mark.parametrize(("text", "unit"), [("TH/s", HashRateUnit.TH), ("th", HashRateUnit.TH),
                                            ("GH/s", HashRateUnit.GH), ("MH", HashRateUnit.MH),
                                            ("H/s", HashRateUnit.H), ("PetaHash", HashRateUnit.PH)])
def test_unit_spellings(text: str, unit: HashRateUnit) -> None:
    assert HashRateUnit.parse(text) is unit


def test_unit_conversion_is_exact() -> None:
    rate = HashRate(value=95_000_000, unit="MH/s")  # type: ignore[arg-type]
    assert rate.into_unit("TH/s").value == pytest.approx(95.0)
    assert rate.into_unit(HashRateUnit.PH).value == pytest.approx(0.095)
    assert (HashRate(value=1, unit="TH/s") + HashRate(value=500, unit="GH/s")).value == pytest.approx(1.5)  # type: ignore[arg-type]


def test_bad_unit_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown hash rate unit"):
        HashRate.model_validate({"value": 1, "unit": "furlongs"})


def _sample_data() -> MinerData:
    return MinerData(
        ip=IPv4Address(lo("127.77.0.5")),
        mac="02:AA:BB:CC:DD:EE",
        device_info=DeviceInfo(make="AntMiner", model="Antminer S19 Pro", firmware="Stock"),
        hashrate=HashRate(value=110.0),
        hashboards=[BoardData(position=i, hashrate=HashRate(value=36.6), board_temperature=60.0 + i,
                              working_chips=114) for i in range(3)],
        wattage=3250.0,
        uptime=timedelta(hours=5),
        pools=[PoolGroupData(pools=[PoolData(position=0, url="stratum+tcp://p:3333", user="u", active=True)])],
        messages=[MinerMessage(code=1, message="fan lost")],
    )


def test_minerdata_json_round_trip_and_derived_fields() -> None:
    data = _sample_data()
    again = MinerData.model_validate_json(data.model_dump_json())
    assert again.model_dump(exclude={"timestamp"}) == data.model_dump(exclude={"timestamp"})
    assert data.efficiency == pytest.approx(3250 / 110, abs=1e-3)
    assert data.average_temperature == pytest.approx(61.0)
    assert data.total_chips == 342
    assert data.make == "AntMiner" and data.model == "Antminer S19 Pro"


def test_minerdata_schema_names_every_field() -> None:
    schema = MinerData.model_json_schema(mode="serialization")
    for name in ("ip", "mac", "hashrate", "hashboards", "fans", "psu_fans", "wattage", "wattage_limit", "uptime",
                 "pools", "messages", "is_mining", "light_flashing", "tuning_target", "efficiency", "errors"):
        assert name in schema["properties"], name


def test_fan_config() -> None:
    assert FanConfig.manual(80).fan_speed == 80
    assert FanConfig.auto(target_temp=70).mode == "auto"
    with pytest.raises(ValidationError):
        FanConfig.manual(101)
    with pytest.raises(ValidationError):
        FanConfig.manual(-1)
    with pytest.raises(ValidationError):
        FanConfig.model_validate({"mode": "manual"})
    assert FanConfig.model_validate(FanConfig.manual(55).model_dump()) == FanConfig.manual(55)


def test_pool_group_as_in_the_guide() -> None:
    group = PoolGroup(name="default", quota=1, pools=[
        Pool(url="stratum+tcp://pool.example.com:3333", username="worker.1", password="x")])
    assert group.pools[0].host == "pool.example.com" and group.pools[0].port == 3333
    assert PoolGroup.model_validate_json(group.model_dump_json()) == group
    assert "url" in PoolGroup.model_json_schema()["$defs"]["Pool"]["properties"]


@pytest.mark.parametrize("url", ["http://pool:3333", "pool.example.com:3333", "stratum+tcp://pool",
                                 "stratum+tcp://pool:0", "stratum+tcp://:3333", "stratum+tcp://po ol:3333"])
def test_bad_pool_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="pool URL"):
        Pool(url=url, username="w")


def test_stratum_ssl_and_v2_are_accepted() -> None:
    assert Pool(url="stratum+ssl://pool:443", username="w").port == 443
    assert Pool(url="stratum2+tcp://pool:34254/9awtMD5KQgvRUh2yFbjVeT7b6hjipWcAsQHd6wEhgtDT9soosna",
                username="w").host == "pool"


def test_tuning_config() -> None:
    assert TuningConfig.power(3200.0).target_watts == 3200.0
    assert TuningConfig.hashrate({"value": 100, "unit": "TH/s"}).target_hashrate == HashRate(value=100)
    with pytest.raises(ValidationError):
        TuningConfig.power(0)
    with pytest.raises(ValidationError):
        TuningConfig.power(-5)
    with pytest.raises(ValidationError, match="exactly one"):
        TuningConfig(target_watts=100, target_mode="low")


def test_scaling_config() -> None:
    assert ScalingConfig(step=10, minimum=50).shutdown is None
    with pytest.raises(ValidationError):
        ScalingConfig(step=0, minimum=50)
    with pytest.raises(ValidationError):
        ScalingConfig(step=10, minimum=150)


# ----- the hardware catalogue -----------------------------------------------------------------------
REQUIRED_MAKES = ("AntMiner", "WhatsMiner", "AvalonMiner", "Auradine", "Goldshell", "IceRiver", "Innosilicon",
                  "Elphapex", "Hammer", "VolcMiner", "SealMiner", "FutureBit", "Proto", "Bitaxe", "NerdAxe",
                  "LuckyMiner")


def test_catalogue_is_large_valid_and_covers_every_make() -> None:
    models = catalogue()
    assert len(models) >= 400
    counts = Counter(m.make.value for m in models)
    for make in REQUIRED_MAKES:
        assert counts[make] >= 1, make
    assert counts["WhatsMiner"] >= 400 and counts["AntMiner"] >= 57
    for model in models:
        assert model.name.strip() == model.name and model.name, model
        if model.nominal_ths is not None:
            assert model.nominal_ths > 0 and model.nominal_watts is not None and model.nominal_watts > 0, model
        if model.cooling is not Cooling.AIR:
            assert model.fans in (0, None) or model.make is not Make.ANTMINER, model


def test_every_antminer_and_avalon_row_has_nominal_figures_but_equihash() -> None:
    lacking = [m.name for m in catalogue() if m.make in (Make.ANTMINER, Make.AVALON) and m.nominal_ths is None]
    # Equihash (rated in sol/s, not hashes), and three variants with no maker's rating we could confirm
    assert sorted(lacking) == ["Antminer S19 Pro A", "Antminer S19 XP+", "Antminer S19j+", "Antminer Z15",
                               "Antminer Z15 Pro"]


def test_no_string_names_two_models_of_one_make() -> None:
    seen: dict[tuple[Make, str], str] = {}
    for model in catalogue():
        for text in (model.name, *model.aliases):
            key = (model.make, _key(text))
            assert seen.setdefault(key, model.name) == model.name, (text, seen[key], model.name)


@pytest.mark.parametrize(("make", "reported", "name"), [
    ("AntMiner", "S19JPro", "Antminer S19j Pro"), ("AntMiner", "Antminer S19j Pro (88)", "Antminer S19j Pro"),
    ("AntMiner", "antminer  s21-pro", "Antminer S21 Pro"), ("AntMiner", "ANTMINER S21 XP HYD.", "Antminer S21 XP Hyd."),
    ("WhatsMiner", "M50S_VK30", "M50SVK30"), ("WhatsMiner", "M50S+ VK40", "M50S+VK40"),
    ("WhatsMiner", "m60s_vk40", "M60SVK40"), ("WhatsMiner", "M30SPlusPlusVH10", "M30S++VH10"),
    ("AvalonMiner", "A1466", "Avalon A1466"), ("AvalonMiner", "Q", "Avalon Q"),
    ("Bitaxe", "BM1370", "BM1370"), ("Bitaxe", "Gamma", "BM1370"), ("NerdAxe", "NerdQAxe++", "BM1370"),
    ("IceRiver", "KS5M", "IceRiver KS5M"), ("Goldshell", "KD-BOX-PRO", "Goldshell KD Box Pro"),
    ("LuckyMiner", "LV08", "LuckyMiner LV08"),
])
def test_reported_strings_resolve(make: str, reported: str, name: str) -> None:
    found = lookup_model(make, reported)
    assert found is not None and found.name == name


@pytest.mark.parametrize(("make", "reported"), [("AntMiner", "Antminer S99 Mega"), ("AntMiner", "S19 Pro Max"),
                                                ("WhatsMiner", "M50S+VZ99"), ("NoSuchMake", "S19"),
                                                ("AntMiner", "")])
def test_unknown_strings_are_never_guessed(make: str, reported: str) -> None:
    assert lookup_model(make, reported) is None


_FIXTURE_MAKES = {"antminer": "AntMiner", "braiins": "AntMiner", "epic": "AntMiner", "whatsminer": "WhatsMiner",
                  "avalonminer": "AvalonMiner", "bitaxe": "Bitaxe", "auradine": "Auradine"}
# keys whose value names the miner's model in some firmware's reply (PSU and hashboard models excluded below)
_MODEL_KEYS = {"type", "minertype", "miner_model", "model", "prod", "asicmodel"}
_PART_NUMBER = re.compile(r"^(P\d{2,3}|APW|BHB|Board$)")  # PSUs (P221B, APW121215f), hashboards (BHB56801)
# models with no published rating that we could confirm; the test fails when one gains figures or loses them
_NO_PUBLISHED_FIGURES: set[tuple[str, str]] = set()  # AT1500: 180 TH/s, 2880 W as announced (unconfirmed)


def _fixture_model_strings() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(value: object, make: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if (key.lower() in _MODEL_KEYS and isinstance(item, str) and item.strip()
                        and not _PART_NUMBER.match(item)):
                    found.add((make, item))
                walk(item, make)
        elif isinstance(value, list):
            for item in value:
                walk(item, make)
        elif isinstance(value, str):
            for code in re.findall(r"Ver\[(\d{3,4})-\d+-", value):  # Avalon A-series: Ver[1246-83-...]
                found.add((make, code))

    for path in FIXTURES.rglob("*.json"):
        family = path.relative_to(FIXTURES).parts[0]
        try:
            walk(json.loads(path.read_bytes()), _FIXTURE_MAKES[family])
        except ValueError:
            continue  # a few captures are not JSON (truncated on purpose)
    return found


def test_every_model_string_in_the_captured_replies_resolves() -> None:
    strings = _fixture_model_strings()
    assert {("AntMiner", "Antminer S21"), ("WhatsMiner", "M60S_VK40"), ("Bitaxe", "BM1368")} <= strings
    unresolved = [s for s in strings if lookup_model(*s) is None]
    assert unresolved == []
    for make, text in strings:
        model = lookup_model(make, text)
        assert model is not None and model.hardware.total_chips, (make, text)
    assert {s for s in strings if lookup_model(*s).nominal_ths is None} == _NO_PUBLISHED_FIGURES  # type: ignore[union-attr]


def test_every_model_the_simulator_can_serve_is_complete() -> None:
    for family in SIM_FAMILIES.values():
        served = servable_models(family)
        assert {lookup_any_make(family, n).name for n in family.models} <= {m.name for m in served}  # type: ignore[union-attr]
        for model in served:
            assert model.nominal_ths > 0 and model.boards * model.chips_per_board > 0


def test_models_command_lists_the_catalogue_as_json() -> None:
    result = CliRunner().invoke(app, ["models", "--make", "whatsminer", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == sum(m.make is Make.WHATSMINER for m in catalogue())
    assert set(rows[0]) == {"make", "name", "aliases", "algo", "boards", "chips_per_board", "chip", "fans",
                            "nominal_ths", "nominal_watts", "cooling", "profiles", "source", "note"}
    m66s = next(r for r in rows if r["name"] == "M66S")
    assert m66s["cooling"] == "immersion" and m66s["nominal_ths"] == 298
    table = CliRunner().invoke(app, ["models", "--make", "IceRiver"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "IceRiver KS5M" in table.output
    refused = CliRunner().invoke(app, ["models", "--make", "Acme"])
    assert refused.exit_code != 0 and "unknown make 'Acme'" in refused.output


def test_sim_fleet_from_named_models_and_from_make_weights() -> None:
    fleet = SimFleet.generate(lo("127.141.0.0/24"), 4, ["antminer", "braiins", "whatsminer"],
                              models=["Antminer S21 Pro", "m66s"])
    assert [(m.family, m.state.model.name) for m in fleet.miners.values()] == [
        ("antminer", "Antminer S21 Pro"), ("whatsminer", "M66S")] * 2
    weighted = SimFleet.generate(lo("127.141.1.0/24"), 120, ["antminer", "whatsminer", "avalon", "bitaxe"],
                                 seed=4, weights={"AntMiner": 6, "whatsminer": 3, "AvalonMiner": 1})
    makes = Counter(m.make for m in weighted.miners.values())
    assert set(makes) == {"AntMiner", "WhatsMiner", "AvalonMiner"} and makes["AntMiner"] > makes["AvalonMiner"]
    assert len({m.state.model.name for m in weighted.miners.values()}) > 20  # drawn from the whole catalogue
    for bad, message in (({"models": ["Antminer S99"]}, "unknown model"),
                         ({"models": ["Antminer Z15"]}, "lacks"),
                         ({"weights": {"Goldshell": 1}}, "serves Goldshell"),
                         ({"weights": {"Acme": 1}}, "unknown make")):
        with pytest.raises(ValueError, match=message):
            SimFleet.generate(lo("127.141.2.0/24"), 2, ["antminer", "whatsminer"], **bad)  # type: ignore[arg-type]


async def test_get_data_fills_expected_figures_and_unknown_models_are_reported_once(
        sim_fleet: FleetFactory, caplog: pytest.LogCaptureFixture) -> None:
    names = ["Antminer S21 Pro", "Antminer S19k Pro", "M66S", "M50S++VK30", "M31SV40", "A1466", "BM1370"]
    fleet = await sim_fleet(lo("127.141.3.0/24"), len(names) + 4, ["antminer", "whatsminer", "avalon", "bitaxe"],
                            seed=2)
    unknown = SimulableModel.model_validate({**lookup_model("AntMiner", "S21").model_dump(),  # type: ignore[union-attr]
                                             "name": "Antminer S99 Mega", "aliases": ()})
    served = SimFleet.generate(lo("127.141.4.0/24"), len(names), ["antminer", "whatsminer", "avalon", "bitaxe"],
                               models=names)
    extra = [*served.miners.values(),
             *(AntminerStockSim.build(lo(f"127.141.4.{200 + i}"), unknown, random.Random(i)) for i in range(2))]
    for miner in extra:
        fleet.miners[miner.state.ip] = miner
        await fleet._bind(miner)  # serve them beside the generated ones
    assert fleet.ports is not None
    caplog.set_level("WARNING", logger="asicfleet.discovery._factory")
    seen = 0
    for subnet in (lo("127.141.3.0/24"), lo("127.141.4.0/24")):
        factory = (MinerFactory.from_subnet(subnet).with_port_map(fleet.ports).with_connectivity_timeout_secs(0.5)
                   .with_read_timeout_secs(2).with_identification_timeout_secs(4))
        records = [r async for r in scan_and_collect(factory)]
        await factory.aclose()
        for record in records:
            assert record.data is not None, record.error
            data, sim = record.data, fleet.miners[str(record.ip)]
            known = lookup_model(data.make, data.model)
            seen += 1
            if sim.state.model.name == "Antminer S99 Mega":
                assert known is None and data.model == "Antminer S99 Mega" and data.expected_chips is None  # kept raw
                continue
            assert known is not None, data.model
            # a Whatsminer chip bin reads as its family where the family is catalogued (the bin is dropped)
            assert known.name in (sim.state.model.name, whatsminer_model(sim.state.model.name))
            assert data.expected_hashrate is not None
            # a firmware that rates itself wins (Avalon: its ideal rate; AxeOS: frequency x cores), near the sticker
            assert data.expected_hashrate.value == pytest.approx(known.nominal_ths, rel=0.15)
            assert data.expected_chips == known.hardware.total_chips is not None
        if subnet == lo("127.141.4.0/24"):
            assert factory.last_scan is not None
            assert factory.last_scan.unknown_models == {("AntMiner", "Antminer S99 Mega"): 2}
        else:
            assert factory.last_scan is not None and factory.last_scan.unknown_models == {}
    assert seen == len(fleet.miners)
    warnings = [r for r in caplog.records if "Antminer S99 Mega" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(("options", "message"), [(["--models", "Antminer S99"], "unknown model 'Antminer S99'"),
                                                  (["--weights", "AntMiner=lots"], "needs a number"),
                                                  (["--weights", "Acme=2"], "unknown make 'Acme'")])
def test_sim_command_refuses_bad_models_before_serving(options: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["sim", "--subnet", lo("127.141.5.0/28"), "--count", "2", *options],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2 and message in result.output


_PYASIC_MAKES = {"AntminerModels": "AntMiner", "WhatsminerModels": "WhatsMiner", "AvalonminerModels": "AvalonMiner",
                 "AuradineModels": "Auradine", "BitAxeModels": "Bitaxe", "BraiinsModels": "Braiins",
                 "ElphapexModels": "Elphapex", "GoldshellModels": "Goldshell", "HammerModels": "Hammer",
                 "InnosiliconModels": "Innosilicon", "LuckyMinerModels": "LuckyMiner", "VolcMinerModels": "VolcMiner",
                 "ePICModels": "ePIC"}


def test_every_model_name_pyasic_knows_resolves() -> None:
    models = pytest.importorskip("pyasic.device.models")  # the interop extra, installed by bootstrap and CI
    unresolved = []
    for enum_name, make in _PYASIC_MAKES.items():
        for member in getattr(models, enum_name):
            if lookup_model(make, str(member.value)) is None:
                unresolved.append((make, member.value))
    assert unresolved == []


def test_the_expected_rate_from_the_catalogue_carries_the_models_algorithm_and_the_table_shows_small_rates() -> None:
    device = AntminerStock.device_info("AntMiner", "Antminer L7", "Stock")
    data = AntminerStock("127.0.0.1", device).extract({})  # no reply parsed: only what the catalogue gives
    assert data.expected_hashrate == HashRate(value=0.0095, unit="TH/s", algo=HashAlgorithm.SCRYPT)
    shown = render.row(ScanRecord(ip=IPv4Address("127.0.0.1"), data=data))
    assert shown["expected_ths"] == "0.0095"  # not 0.00
    assert render.row(ScanRecord(ip=IPv4Address("127.0.0.1"), data=data.model_copy(
        update={"hashrate": HashRate(value=123.456)})))["hashrate_ths"] == "123.46"
