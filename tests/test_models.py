"""Data and config models: units, validation, JSON round trips and schemas."""

from __future__ import annotations

from datetime import timedelta
from ipaddress import IPv4Address

import pytest
from pydantic import BaseModel, ValidationError

from asicfleet import (
    BoardData,
    DeviceInfo,
    FanConfig,
    HashRate,
    HashRateUnit,
    MinerData,
    Pool,
    PoolGroup,
    ScalingConfig,
    TuningConfig,
)
from asicfleet.data import MinerMessage, PoolData, PoolGroupData
from tests.conftest import lo


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
