"""Property tests: hostile input never escapes as anything but our documented errors.

Every reply parser (each family's RPC and HTTP JSON, each Whatsminer API generation) gets arbitrary bytes,
arbitrary JSON and the captured real replies with parts replaced: it must return a `MinerData` that
serialises, never raise. The JSON decoder, the RPC status check, identification (`matches`) and the HTTP
reply reader get the same treatment. The target parser, the target set and the chunk planner are checked
against a plain model of sets of addresses: chunks cover exactly the targets, with no overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asicfleet import InvalidTargetError, MinerData, MinerError, MinerResponseError
from asicfleet.backends import BACKENDS, Backend, Probe
from asicfleet.backends._base import MAX_BOARDS, MAX_FANS, MAX_LISTED
from asicfleet.backends.antminer import AntminerStock
from asicfleet.backends.auradine import Auradine
from asicfleet.backends.avalon import AvalonBackend
from asicfleet.backends.bitaxe import Bitaxe
from asicfleet.backends.blackminer import Hammer, VolcMiner
from asicfleet.backends.braiins import LUCI_LAN, BraiinsBackend
from asicfleet.backends.elphapex import Elphapex
from asicfleet.backends.epic import EPic
from asicfleet.backends.futurebit import FutureBit
from asicfleet.backends.goldshell import Goldshell
from asicfleet.backends.hiveon import Hiveon
from asicfleet.backends.iceriver import IceRiver
from asicfleet.backends.innosilicon import Innosilicon
from asicfleet.backends.luxos import LuxOS
from asicfleet.backends.marathon import Marathon
from asicfleet.backends.nerdaxe import NerdAxe
from asicfleet.backends.proto import Proto
from asicfleet.backends.sealminer import SealMiner
from asicfleet.backends.vnish import VNish
from asicfleet.backends.whatsminer import V1_DATA, V3_DATA, WhatsMinerBackend
from asicfleet.discovery import TargetSet, parse_target
from asicfleet.transport import HttpReply, check_status, decode_json, probe_http
from fleet.plan import plan_chunks
from tests.conftest import FIXTURES, fixture_bytes

# ASICFLEET_FUZZ_SCALE=20 runs twenty times as many examples (a longer hunt than CI's)
SCALE = float(os.environ.get("ASICFLEET_FUZZ_SCALE", "1"))


def examples(count: int) -> settings:
    return settings(max_examples=max(1, int(count * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


FUZZ = examples(120)


# ----- strategies --------------------------------------------------------------------------------
def _numbers_as_text() -> st.SearchStrategy[str]:
    return st.one_of(st.integers(-(10**20), 10**20).map(str), st.floats().map(repr),
                     st.sampled_from(["", " ", "-", "1e999", "nan", "inf", "0x1f", "12,5", "٣", "²", "1_000"]))


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=40),
                    _numbers_as_text())
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25)


def to_wire(value: Any) -> bytes:
    """JSON as a firmware might send it: NaN and Infinity literals included (the decoder repairs those)."""
    return json.dumps(value, allow_nan=True).encode()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_paths(item, (*prefix, index)))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """A captured reply with up to four of its parts replaced: a value by any JSON, a string edited
    in place (Avalon and Antminer pack figures into strings such as `PS[0 1209 ...]`), or a key dropped."""
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(document)))
        current: Any = document
        for step in path:
            current = current[step]
        kind = draw(st.sampled_from(["value", "edit", "drop"]))
        if kind == "edit" and isinstance(current, str) and current:
            at = draw(st.integers(0, len(current)))
            cut = draw(st.integers(0, len(current) - at))
            new: Any = current[:at] + draw(st.text(max_size=8)) + current[at + cut:]
        elif kind == "drop" and path:
            parent: Any = document
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent, dict):
                document = _replace(document, path[:-1], {k: v for k, v in parent.items() if k != path[-1]})
                continue
            new = draw(JSON_VALUES)
        else:
            new = draw(JSON_VALUES)
        document = _replace(document, path, new)
    return document


# ----- the parsers under test --------------------------------------------------------------------
@dataclass(frozen=True)
class ParserCase:
    name: str
    make_backend: Callable[[], Backend]
    captures: dict[str, str]  # command key -> fixture path under ../shared/fixtures/asic-rs/responses,
    # or under tests/fixtures when it starts with "local/"
    extra_commands: tuple[str, ...] = ()  # keys read by the backend that no capture covers

    def commands(self) -> list[str]:
        backend = self.make_backend()
        declared = {c for sources in backend.DATA.values()
                    for source in (sources if isinstance(sources, list | tuple) else [sources])
                    for c in source.commands}
        return sorted(declared | set(self.captures) | set(self.extra_commands))

    def seed(self) -> dict[str, Any]:
        return {key: orjson.loads(_capture(path)) for key, path in self.captures.items()}


def _capture(path: str) -> bytes:
    local = path.removeprefix("local/")
    return (LOCAL_FIXTURES / local).read_bytes() if local != path else fixture_bytes(*path.split("/"))


IP = "127.0.0.1"  # never contacted: parsing is pure
LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _whatsminer(api: str) -> Callable[[], Backend]:
    return lambda: WhatsMinerBackend(IP, WhatsMinerBackend.device_info("WhatsMiner", "M50S", "Stock"), api=api)  # type: ignore[arg-type]


def _v3_commands() -> tuple[str, ...]:
    return tuple(sorted({c for s in V3_DATA.values() for src in (s if isinstance(s, list | tuple) else [s])
                         for c in src.commands}))


def _v1_commands() -> tuple[str, ...]:
    return tuple(sorted({c for s in V1_DATA.values() for src in (s if isinstance(s, list | tuple) else [s])
                         for c in src.commands}))


BRAIINS_REST = {"web:actions/locate": "actions_locate", "web:configuration/miner": "configuration_miner",
                "web:cooling/state": "cooling_state", "web:miner/details": "miner_details",
                "web:miner/errors": "miner_errors", "web:miner/hw/hashboards": "miner_hw_hashboards",
                "web:miner/stats": "miner_stats", "web:network": "network",
                "web:performance/tuner-state": "performance_tuner_state", "web:pools": "pools",
                "web:version": "version"}
BRAIINS_GRAPHQL = {"gql:system": "gql_system", "gql:boards": "gql_boards", "gql:pools": "gql_pools",
                   "gql:tuning": "gql_tuning", "gql:events": "gql_events", "rpc:version": "version"}


def _braiins_graphql(release: str) -> Callable[[], Backend]:
    """A Braiins OS backend as identification leaves it for a release before 25.07 (GraphQL)."""
    def build() -> Backend:
        backend = BraiinsBackend(IP, BraiinsBackend.device_info("AntMiner", "Antminer S19 XP", "Braiins OS"))
        backend.learned = {"rest_api_version": None, "graphql_release": release}
        return backend
    return build


CASES = [
    ParserCase("antminer",
               lambda: AntminerStock(IP, AntminerStock.device_info("AntMiner", "Antminer S19 Pro", "Stock")),
               {f"rpc:{n}": f"antminer/v2020/{n}.json" for n in ("version", "summary", "stats", "pools", "devs")}
               | {"web:get_system_info": "antminer/v2020/system_info.json"}),
    ParserCase("auradine", lambda: Auradine(IP, Auradine.device_info("Auradine", "AT1500", "Stock")),
               {f"rpc:{n}": f"auradine/v1/{n}.json" for n in ("version", "summary", "devs", "asccount", "pools")}
               | {f"web:{n}": f"auradine/v1/{n}.json" for n in ("ipreport", "fan", "led", "mode", "psu",
                                                                "temperature", "voltage", "frequency")}),
    ParserCase("avalon-1246",
               lambda: AvalonBackend(IP, AvalonBackend.device_info("AvalonMiner", "Avalon 1246", "Stock")),
               {"rpc:estats": "avalonminer/avalon_a_stats.json", "rpc:version": "avalonminer/version.json",
                "rpc:summary": "avalonminer/summary.json", "rpc:pools": "avalonminer/pools.json",
                "rpc:devs": "avalonminer/devs.json"}),
    ParserCase("avalon-q", lambda: AvalonBackend(IP, AvalonBackend.device_info("AvalonMiner", "Avalon Q", "Stock")),
               {"rpc:stats": "avalonminer/stats.json", "rpc:litestats": "avalonminer/litestats.json",
                "rpc:version": "avalonminer/version.json", "rpc:summary": "avalonminer/summary.json"}),
    ParserCase("bitaxe", lambda: Bitaxe(IP, Bitaxe.device_info("Bitaxe", "BM1368", "AxeOS")),
               {"web:system/info": "bitaxe/v2_0_0/system_info.json"}),
    ParserCase("futurebit", lambda: FutureBit(IP, FutureBit.device_info("FutureBit", "Apollo II", "Stock")),
               {"gql:stats": "local/futurebit/miner_stats.json", "gql:mcu": "local/futurebit/mcu_stats.json"}),
    ParserCase("nerdaxe", lambda: NerdAxe(IP, NerdAxe.device_info("NerdAxe", "NerdQAxe++", "Stock")),
               {"web:system/info": "local/nerdaxe/system_info_nerdqaxe.json"}),
    ParserCase("proto", lambda: Proto(IP, Proto.device_info("Proto", "Rig", "Stock")),
               {f"web:{n}": f"local/proto/{n}.json" for n in ("system", "network", "hardware", "mining", "pools",
                                                               "cooling", "errors", "telemetry")}),
    ParserCase("braiins-25.07", lambda: BraiinsBackend(IP, BraiinsBackend.device_info("AntMiner", "Antminer S19 XP",
                                                                                       "Braiins OS")),
               {key: f"braiins/v25_07/{name}.json" for key, name in BRAIINS_REST.items()}),
    ParserCase("braiins-25.11", lambda: BraiinsBackend(IP, BraiinsBackend.device_info("AntMiner", "Antminer S19 XP",
                                                                                       "Braiins OS")),
               {key: f"braiins/v25_11/{name}.json" for key, name in BRAIINS_REST.items()}),
    ParserCase("epic", lambda: EPic(IP, EPic.device_info("AntMiner", "Antminer S19 XP", "ePIC")),
               {f"web:{route}": f"epic/v1/{name}.json" for route, name in (
                   ("summary", "summary"), ("capabilities", "capabilities"), ("network", "network"),
                   ("temps", "temps"), ("hashrate", "chip_hashrates"), ("temps/chip", "chip_temps"),
                   ("voltages", "chip_voltages"), ("clocks", "chip_clocks"))}),
    ParserCase("elphapex", lambda: Elphapex(IP, Elphapex.device_info("Elphapex", "DG1+", "Stock")),
               {f"web:{n}": f"local/elphapex/dg1plus_{n}.json" for n in ("get_system_info", "summary", "stats",
                                                                         "pools", "get_miner_conf")}
               | {f"web:{n}": f"local/elphapex/dg_home1_{n}.json" for n in ("get_power", "get_blink_status")}),
    ParserCase("hammer", lambda: Hammer(IP, Hammer.device_info("Hammer", "Hammer D10", "Stock")),
               {f"rpc:{n}": f"local/blackminer/hammer_d10_rpc_{n}.json" for n in ("version", "stats", "summary",
                                                                                  "pools")}
               | {"web:get_system_info": "local/blackminer/hammer_d10_web_get_system_info.json",
                  "web:get_miner_conf": "local/blackminer/hammer_d10_web_get_conf.json"}),
    ParserCase("volcminer", lambda: VolcMiner(IP, VolcMiner.device_info("VolcMiner", "VolcMiner D1", "Stock")),
               {f"rpc:{n}": f"local/blackminer/hammer_d10_rpc_{n}.json" for n in ("version", "stats", "summary",
                                                                                  "pools")}),
    # restated replies (tests/fixtures/goldshell and innosilicon, with their READMEs)
    ParserCase("goldshell", lambda: Goldshell(IP, Goldshell.device_info("Goldshell", "Goldshell CK5", "Stock")),
               {f"rpc:{n}": f"local/goldshell/rpc_{n}.json" for n in ("summary", "devs", "devdetails")}
               | {"web:status": "local/goldshell/status.json", "web:setting": "local/goldshell/setting.json",
                  "web:cgminer?cgminercmd=devs": "local/goldshell/cgminer_devs.json"}),
    ParserCase("innosilicon",
               lambda: Innosilicon(IP, Innosilicon.device_info("Innosilicon", "Innosilicon T3H+", "Stock")),
               {f"rpc:{n}": f"local/innosilicon/rpc_{n}.json" for n in ("summary", "stats", "version", "pools")}
               | {"web:getAll": "local/innosilicon/getAll.json", "web:overview": "local/innosilicon/overview.json"},
               ("web:getErrorDetail",)),
    # Braiins OS before 25.07: the GraphQL captures (the 22.08 one with LuCI's network status for the MAC)
    *(ParserCase(f"braiins-{release}-graphql", _braiins_graphql(release),
                 {key: f"braiins/{folder}/{name}.json" for key, name in BRAIINS_GRAPHQL.items()
                  if (FIXTURES / "braiins" / folder / f"{name}.json").exists()}
                 | ({LUCI_LAN: f"braiins/{folder}/web_net_conf.json"} if release == "22.08" else {}),
                 ("gql:metadata",))
      for folder, release in (("v21_09", "22.08"), ("v24_09", "24.09"), ("v25_03", "25.03"), ("v25_05", "25.05.1"))),
    ParserCase("luxos", lambda: LuxOS(IP, LuxOS.device_info("AntMiner", "Antminer S19 XP", "LuxOS")),
               {f"rpc:{n}": f"local/luxos/{n}.json" for n in ("version", "config", "summary", "stats", "pools", "devs",
                                                              "fans", "power", "profiles", "temps", "events")}),
    ParserCase("iceriver", lambda: IceRiver(IP, IceRiver.device_info("IceRiver", "IceRiver KS5L", "Stock")),
               {"web:userpanel": "local/iceriver/userpanel_ks5l.json"}),
    ParserCase("sealminer", lambda: SealMiner(IP, SealMiner.device_info("SealMiner", "A2", "Stock")),
               {f"rpc:{n}": f"local/sealminer/{n}.json" for n in ("version", "summary", "stats", "pools")}
               | {"web:get_system_info": "local/sealminer/get_system_info.json"}),
    # no MaraFW or Hiveon capture was published: their restated replies (tests/fixtures/<family>/README.md)
    ParserCase("marathon", lambda: Marathon(IP, Marathon.device_info("AntMiner", "Antminer S19 XP", "MaraFW")),
               {f"web:{n}": f"local/marathon/{n}.json" for n in ("brief", "overview", "network_config", "hashboards",
                                                                 "fans", "pools", "event_chart", "locate_miner",
                                                                 "miner_config")}
               | {"rpc:version": "local/marathon/rpc_version.json"}),
    ParserCase("hiveon", lambda: Hiveon(IP, Hiveon.device_info("AntMiner", "Antminer S19j Pro", "Hive")),
               {f"rpc:{n}": f"local/hiveon/rpc_{n}.json" for n in ("version", "summary", "stats", "pools")}
               | {f"web:{n}": f"local/hiveon/{n}.json" for n in ("get_system_info", "get_miner_conf")}
               | {"web:blink_status": "local/hiveon/blink_onpageloaded.json"}),
    ParserCase("whatsminer-v1", _whatsminer("v1"),
               {f"rpc:{n}": f"whatsminer/v1/{n}.json" for n in ("summary", "devs", "pools", "get_version",
                                                                 "get_psu", "status")}, _v1_commands()),
    ParserCase("whatsminer-v2", _whatsminer("v2"),
               {f"rpc:{n}": f"whatsminer/v2/{n}.json" for n in ("summary", "devs", "pools", "get_version", "get_psu",
                                                                 "status", "get_miner_info", "get_error_code")}),
    ParserCase("whatsminer-v3", _whatsminer("v3"),
               {"v3:get.device.info": "whatsminer/v3/get_device_info_with_errors.json",
                "v3:get.miner.status|summary": "whatsminer/v3/get_miner_status_summary.json",
                "v3:get.miner.status|pools": "whatsminer/v3/get_miner_status_pools.json",
                "v3:get.miner.status|edevs": "whatsminer/v3/get_miner_status_edevs.json"}, _v3_commands()),
    # no VNish capture was published (asic-rs ships its API spec only): fuzzed from generated replies alone
    ParserCase("vnish", lambda: VNish(IP, VNish.device_info("AntMiner", "Antminer S19", "VNish")), {},
               ("web:chains/factory-info",)),
]
CASE_IDS = [case.name for case in CASES]


def test_every_backend_has_a_fuzz_case() -> None:
    """A family added without a case here would go unfuzzed."""
    fuzzed = {type(case.make_backend()) for case in CASES}
    assert {cls for cls in BACKENDS if cls.DATA} <= fuzzed


def _parses_cleanly(case: ParserCase, raw: dict[str, Any]) -> MinerData:
    data = case.make_backend().parse_raw(raw)
    assert isinstance(data, MinerData)
    json.loads(data.model_dump_json())  # what a scan stores must serialise
    assert all(isinstance(e, str) for e in data.errors)
    return data


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_captures_parse_without_errors_from_parsing(case: ParserCase) -> None:
    """The baseline the mutations start from: the real replies parse, with no parser complaint."""
    data = _parses_cleanly(case, {k: to_wire(v) for k, v in case.seed().items()})
    assert not [e for e in data.errors if "cannot parse" in e], data.errors


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@FUZZ
@given(data=st.data())
def test_any_bytes_give_miner_data(case: ParserCase, data: st.DataObject) -> None:
    raw = data.draw(st.dictionaries(st.sampled_from(case.commands()), st.binary(max_size=512), max_size=6))
    _parses_cleanly(case, raw)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@FUZZ
@given(data=st.data())
def test_any_json_gives_miner_data(case: ParserCase, data: st.DataObject) -> None:
    raw = data.draw(st.dictionaries(st.sampled_from(case.commands()), JSON_VALUES.map(to_wire), max_size=8))
    _parses_cleanly(case, raw)


@pytest.mark.parametrize("case", [c for c in CASES if c.captures], ids=[c.name for c in CASES if c.captures])
@examples(250)
@given(data=st.data())
def test_mutated_captures_give_miner_data(case: ParserCase, data: st.DataObject) -> None:
    seed = case.seed()
    key = data.draw(st.sampled_from(sorted(seed)))
    seed[key] = data.draw(mutated(seed[key]))
    _parses_cleanly(case, {k: to_wire(v) for k, v in seed.items()})


_COUNTING = ("count", "num", "id", "index", "max", "board", "chain", "fan", "chip", "asc", "hb", "slot", "error")
_HUGE = 5000  # unbounded, a parser builds this many boards (a test failure); bounded, at most MAX_BOARDS


def _with_huge(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _HUGE
    return str(_HUGE) if isinstance(value, str) and to_float_text(value) else value


def to_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _counting_paths(document: Any) -> list[tuple[Any, ...]]:
    """The numeric leaves a parser may read as a count or an index: under a key that names one."""
    found = []
    for path in _paths(document):
        leaf: Any = document
        for step in path:
            leaf = leaf[step]
        keys = [str(step).lower() for step in path if isinstance(step, str)]
        if _with_huge(leaf) is not leaf and keys and any(word in keys[-1] for word in _COUNTING):
            found.append(path)
    return found


def _bounded(data: MinerData) -> None:
    assert len(data.hashboards) <= MAX_BOARDS and len(data.fans) <= MAX_FANS, (len(data.hashboards), len(data.fans))
    assert len(data.messages) <= MAX_LISTED + 64


@pytest.mark.parametrize("case", [c for c in CASES if c.captures], ids=[c.name for c in CASES if c.captures])
def test_a_huge_count_or_index_in_a_reply_never_sizes_what_is_built(case: ParserCase) -> None:
    """Counts and indexes come from the miner: `"fan_num": 1e12` or a board `ID` of a billion once made a parser
    build that many fans or boards (a fuzzed Auradine reply grew past 20 GB). Each count-like figure of the
    real replies, one at a time, and all at once, is set huge: what is built stays within the bounds."""
    seed = case.seed()
    _bounded(_parses_cleanly(case, {k: to_wire(_map_leaves(v, _with_huge)) for k, v in seed.items()}))
    for key, document in seed.items():
        for path in _counting_paths(document):
            leaf: Any = document
            for step in path:
                leaf = leaf[step]
            _bounded(_parses_cleanly(case, {**{k: to_wire(v) for k, v in seed.items()},
                                            key: to_wire(_replace(document, path, _with_huge(leaf)))}))


def _map_leaves(value: Any, change: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {k: _map_leaves(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_leaves(v, change) for v in value]
    return change(value)


# ----- transport and identification --------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=4096))
def test_decode_json_raises_only_response_errors(raw: bytes) -> None:
    with contextlib.suppress(MinerResponseError):
        decode_json(raw)


def _exact_in_json(value: Any) -> bool:
    """No NaN (never equal to itself) and no integer beyond 64 bits (orjson reads those as floats)."""
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**64
    if isinstance(value, list):
        return all(_exact_in_json(v) for v in value)
    if isinstance(value, dict):
        return all(_exact_in_json(v) for v in value.values())
    return True


@FUZZ
@given(JSON_VALUES.filter(_exact_in_json), st.sampled_from([b"", b"\x00", b"\n", b" \x00\x00"]))
def test_decode_json_reads_valid_json_exactly(value: Any, tail: bytes) -> None:
    """Repairs never change valid JSON; the NUL that cgminer ends a reply with is dropped."""
    assert decode_json(to_wire(value) + tail) == value


@FUZZ
@given(JSON_VALUES, st.text(max_size=10))
def test_check_status_passes_or_raises_miner_errors(reply: Any, command: str) -> None:
    with contextlib.suppress(MinerError):
        assert check_status(reply, command) is reply


PROBE_REPLIES = st.one_of(st.dictionaries(st.sampled_from(["STATUS", "VERSION", "Msg", "Code", "Description",
                                                              "CGMiner", "BMMiner", "Type", "PROD", "MODEL"]),
                                           JSON_VALUES, max_size=5),
                          st.builds(MinerResponseError, st.text(max_size=30)),
                          JSON_VALUES.filter(lambda v: isinstance(v, dict)))


@FUZZ
@given(status=st.integers(100, 599), headers=st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=4),
       body=st.one_of(st.binary(max_size=1024), st.text(max_size=512).map(str.encode)),
       rpc=st.dictionaries(st.sampled_from(["version", "devdetails", "get_version", "stats"]), PROBE_REPLIES,
                           max_size=3),
       has_web=st.booleans())
def test_matches_never_raises(status: int, headers: dict[str, str], body: bytes, rpc: dict[str, Any],
                              has_web: bool) -> None:
    probe = Probe(ip=IP, web=HttpReply(status, {k.lower(): v for k, v in headers.items()}, body) if has_web else None,
                  rpc=rpc)
    for backend in BACKENDS:
        assert backend.matches(probe) in (True, False)


def _read_http_over_socketpair(reply: bytes) -> HttpReply | MinerError:
    async def exchange() -> HttpReply | MinerError:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            theirs.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=ours)
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(theirs, reply)
            theirs.shutdown(socket.SHUT_WR)
            try:
                return await asyncio.wait_for(probe_http(reader, writer, IP), 5)
            except MinerError as exc:
                return exc
            finally:
                writer.close()
    return asyncio.run(exchange())


HTTP_LIKE = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda status, head, body: b"HTTP/1.1 " + status + b"\r\n" + head + b"\r\n\r\n" + body,
              st.sampled_from([b"200 OK", b"401 Unauthorized", b"307 Temporary Redirect", b"999", b"abc", b""]),
              st.binary(max_size=200), st.binary(max_size=600)),
    st.builds(lambda length, body: b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\n" + body,
              st.sampled_from([b"5", b"-1", b"99999999999999999999", b"x", b"3, 4"]), st.binary(max_size=100)),
    st.builds(lambda chunks: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks,
              st.binary(max_size=300)),
)


@examples(80)
@given(HTTP_LIKE)
def test_http_reader_returns_a_reply_or_a_miner_error(reply: bytes) -> None:
    outcome = _read_http_over_socketpair(reply)
    assert isinstance(outcome, HttpReply | MinerError)
    if isinstance(outcome, HttpReply):
        assert 100 <= outcome.status <= 999


# ----- targets and chunks, against a model of address sets ---------------------------------------
BASE = int(ipaddress.IPv4Address("10.20.0.0"))  # parsing only: nothing is sent anywhere


@FUZZ
@given(st.one_of(st.text(max_size=40), st.text(alphabet="0123456789./-*, ", max_size=40)))
def test_parse_target_raises_only_invalid_target(text: str) -> None:
    try:
        blocks = parse_target(text)
    except InvalidTargetError:
        return
    for block in blocks:
        assert 0 <= block.first <= block.last < 2**32


def _addresses(blocks: Any) -> set[int]:
    return {n for block in blocks for n in range(block.first, block.last + 1)}


@st.composite
def small_targets(draw: st.DrawFn) -> tuple[str, set[int]]:
    """A target expression within 10.20.0.0/20 and the addresses it must denote."""
    kind = draw(st.sampled_from(["cidr", "range", "single", "octets"]))
    if kind == "cidr":
        prefix = draw(st.integers(22, 32))
        size = 1 << (32 - prefix)
        network = BASE + draw(st.integers(0, (1 << 12) // size - 1)) * size
        hosts = set(range(network, network + size)) if prefix >= 31 else set(range(network + 1, network + size - 1))
        return f"{ipaddress.IPv4Address(network)}/{prefix}", hosts
    if kind == "range":
        first = BASE + draw(st.integers(0, 4000))
        last = first + draw(st.integers(0, 95))
        return f"{ipaddress.IPv4Address(first)}-{ipaddress.IPv4Address(last)}", set(range(first, last + 1))
    if kind == "single":
        address = BASE + draw(st.integers(0, 4095))
        return str(ipaddress.IPv4Address(address)), {address}
    third = sorted(draw(st.sets(st.integers(0, 15), min_size=1, max_size=3)))
    low = draw(st.integers(0, 255))
    high = draw(st.integers(low, 255))
    addresses = {BASE + (c << 8) + d for c in third for d in range(low, high + 1)}
    return f"10.20.{','.join(map(str, third))}.{low}-{high}", addresses


@FUZZ
@given(small_targets())
def test_parse_target_denotes_exactly_its_addresses(target: tuple[str, set[int]]) -> None:
    text, expected = target
    assert _addresses(parse_target(text)) == expected


@FUZZ
@given(st.lists(small_targets(), min_size=1, max_size=4), st.lists(small_targets(), max_size=3))
def test_target_set_is_the_union_minus_the_exclusions(targets: list[tuple[str, set[int]]],
                                                      excluded: list[tuple[str, set[int]]]) -> None:
    wanted = set().union(*(a for _, a in targets))
    cut: set[int] = set()
    for text, _ in excluded:  # exclusions take whole CIDRs, network and broadcast included
        cut |= _addresses(parse_target(text, hosts_only=False))
    target_set = TargetSet().add([t for t, _ in targets]).exclude([t for t, _ in excluded])
    got = [int(a) for a in target_set]
    assert got == sorted(wanted - cut)  # ascending, each address once
    assert len(target_set) == len(wanted - cut)


def _disjoint(targets: list[tuple[str, set[int]]]) -> list[tuple[str, set[int]]]:
    kept: list[tuple[str, set[int]]] = []
    seen: set[int] = set()
    for text, addresses in targets:
        if not addresses & seen:
            kept.append((text, addresses))
            seen |= addresses
    return kept


@FUZZ
@given(st.lists(small_targets(), min_size=1, max_size=5).map(_disjoint), st.lists(small_targets(), max_size=2),
       st.integers(20, 32))
def test_chunks_cover_exactly_the_targets_without_overlap(targets: list[tuple[str, set[int]]],
                                                          excluded: list[tuple[str, set[int]]], prefix: int) -> None:
    wanted = set().union(*(a for _, a in targets))
    for text, _ in excluded:
        wanted -= _addresses(parse_target(text, hosts_only=False))
    try:
        chunks = plan_chunks([t for t, _ in targets], exclude=[t for t, _ in excluded], prefix=prefix)
    except InvalidTargetError as exc:
        assert not wanted and "exclusions remove every" in str(exc)
        return
    covered: list[int] = []
    for chunk in chunks:
        first, last = int(ipaddress.IPv4Address(chunk.first)), int(ipaddress.IPv4Address(chunk.last))
        assert chunk.addresses == last - first + 1 > 0
        window = ipaddress.IPv4Network(chunk.label)
        assert window.prefixlen == prefix
        assert int(window.network_address) <= first <= last <= int(window.broadcast_address)
        covered.extend(range(first, last + 1))
    assert len(covered) == len(set(covered))  # no address in two chunks
    assert set(covered) == wanted  # and none missing or extra


@FUZZ
@given(st.lists(small_targets(), min_size=2, max_size=4))
def test_overlapping_targets_are_refused_before_planning(targets: list[tuple[str, set[int]]]) -> None:
    overlap = any(a & b for i, (_, a) in enumerate(targets) for _, b in targets[i + 1:])
    try:
        plan_chunks([t for t, _ in targets])
    except InvalidTargetError as exc:
        assert overlap and "overlap" in str(exc)
    else:
        assert not overlap
