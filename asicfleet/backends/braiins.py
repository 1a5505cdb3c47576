"""Braiins OS (BOS+) on Antminer hardware: the public REST API on port 80, the BOSer RPC on 4028.

Reads and controls go through the REST API (`/api/v1/...`, Braiins OS 25.07 and later): a token
from `POST /api/v1/auth/login` is sent back raw in the `Authorization` header. The CGMiner-style
RPC on 4028 (no authentication) identifies the miner (`version`, `devdetails`) and is the fallback
for the fields it also carries when the REST API refuses us (no such API on older releases, or no
login accepted): hash rate, boards, fans, pools, power, uptime.

Logs, factory reset and firmware upgrade exist in the REST API from 26.04 on; on older releases
those controls raise UnsupportedControlError.

Releases before 25.07 (21.09 to 25.05) have no REST API: they speak GraphQL on `POST /graphql`
(schemas in the asic-rs fixtures, meta/braiins/<release>/schema.graphql), with a session cookie
`session_id` from the `auth { login }` mutation, and LuCI (`/cgi-bin/luci`, form login) for the network
status that holds the MAC before 24.09. Identification reads the firmware version from the public
GraphQL query when `/api/v1/version` does not answer; the backend then reads and controls the miner
over GraphQL, with the RPC as the fallback of the fields it carries. Which fields a release has follows
its schema: MAC over GraphQL from 24.09, serial number, board serials and control board from 25.03;
factory reset from 24.09.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import orjson
from pydantic import ValidationError

from asicfleet._errors import (
    AuthenticationError,
    MinerAPIError,
    MinerError,
    MinerResponseError,
)
from asicfleet._session import Session
from asicfleet.backends._base import (
    Backend,
    DataField,
    Probe,
    Source,
    at,
    dig,
    hashrate_from,
    parse_text,
    reply_text,
    to_float,
)
from asicfleet.config import Credentials, FanConfig, Pool, PoolGroup, ScalingConfig, TemperatureConfig, TuningConfig
from asicfleet.data import (
    BoardData,
    DeviceInfo,
    FanData,
    HashRate,
    MinerData,
    MinerMessage,
    PoolData,
    PoolGroupData,
    TuningCapabilities,
    TuningRange,
    TuningTarget,
)
from asicfleet.data._miner_data import MessageSeverity
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import HttpReply, rpc_call

API = "/api/v1/"
_MINER_STATUS_NORMAL = 2  # MinerStatus NORMAL: mining; 3 is paused, 4 suspended, 1 not started
_TUNER_MODE_HASHRATE = 2
_SAVE_AND_APPLY = 2
# ControlBoardSocFamily of the Braiins OS API
_CONTROL_BOARDS = {1: "CVITek", 2: "BeagleBone Black", 3: "Amlogic", 4: "Xilinx Zynq", 5: "Braiins"}


REST_API_WITH_LOGS = "1.3.0"  # the REST API of Braiins OS 26.04: logs, factory reset, system upgrade
_SINCE_26_04 = ("read_logs", "factory_reset", "upgrade_firmware")
# controls this backend drives over the REST API only (the GraphQL schema has DPS under autotuning and an
# upgrade mutation that needs the image uploaded elsewhere; neither is implemented here)
_NOT_OVER_GRAPHQL = ("upgrade_firmware", "get_scaling_config", "set_scaling_config")


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


class HttpStatusError(MinerAPIError):
    """The REST API answered with an HTTP error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# ----- pure parsers: reply fragments in, model values out ----------------------------------------
def ths_from_ghs(value: Any) -> HashRate | None:
    """`{"gigahash_per_second": x}` -> HashRate in TH/s."""
    return hashrate_from(value.get("gigahash_per_second"), "GH/s") if isinstance(value, dict) else None


def degrees(value: Any) -> float | None:
    return to_float(value.get("degree_c")) if isinstance(value, dict) else None


def parse_mac(value: Any) -> str | None:
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


def parse_api_version(value: Any) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(value.get(k), int) for k in ("major", "minor", "patch")):
        return None
    return f"{value['major']}.{value['minor']}.{value['patch']}"


def parse_tuning_capabilities(tuner: Any) -> TuningCapabilities | None:
    """REST `tuner_constraints`: the power target (watts) and hash rate target (TH/s) ranges."""
    if not isinstance(tuner, dict):
        return None

    def watts(value: Any) -> TuningTarget | None:
        watt = to_float(value.get("watt")) if isinstance(value, dict) else None
        return TuningTarget(target_watts=watt) if watt is not None else None

    def terahash(value: Any) -> TuningTarget | None:
        ths = to_float(value.get("terahash_per_second")) if isinstance(value, dict) else None
        return TuningTarget(target_hashrate=HashRate(value=ths, unit="TH/s")) if ths is not None else None

    def axis(key: str, target: Callable[[Any], TuningTarget | None]) -> TuningRange | None:
        limits = tuner.get(key)
        if not isinstance(limits, dict):
            return None
        return TuningRange(default=target(limits.get("default")), minimum=target(limits.get("min")),
                           maximum=target(limits.get("max")))

    power, hashrate = axis("power_target", watts), axis("hashrate_target", terahash)
    return TuningCapabilities(power=power, hashrate=hashrate) if power or hashrate else None


def parse_control_board(value: Any) -> str | None:
    return _CONTROL_BOARDS.get(value) if isinstance(value, int) else None


def parse_uptime(value: Any) -> timedelta | None:
    seconds = to_float(value)
    return timedelta(seconds=int(seconds)) if seconds is not None else None


def parse_is_mining(status: Any) -> bool | None:
    return status == _MINER_STATUS_NORMAL if isinstance(status, int) else None


def parse_light(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _board_positions(ids: list[Any]) -> list[int]:
    """Slots from board ids: "1","2","3" -> 0,1,2 (S9-era chains 6,7,8 -> 0,1,2); otherwise in order."""
    numbers = [int(i) if isinstance(i, int | str) and str(i).isdigit() else None for i in ids]
    if not numbers or any(n is None for n in numbers):
        return list(range(len(ids)))
    offset = 6 if min(n for n in numbers if n is not None) >= 6 else 1
    return [max(0, (n or 0) - offset) for n in numbers]


def parse_hashboards(boards: Any) -> list[BoardData]:
    """REST `miner/hw/hashboards` -> boards, in slot order."""
    if not isinstance(boards, list):
        raise TypeError("hashboards is not a list")
    entries = [b for b in boards if isinstance(b, dict)]
    out = []
    for position, board in zip(_board_positions([b.get("id") for b in entries]), entries, strict=True):
        stats = board.get("stats") or {}
        hertz = to_float(dig(board, ("current_frequency", "hertz")) if board.get("current_frequency") else None)
        out.append(BoardData(
            position=position,
            hashrate=ths_from_ghs(dig(stats, ("real_hashrate", "last_5s"))),
            expected_hashrate=ths_from_ghs(stats.get("nominal_hashrate")),
            board_temperature=degrees(board.get("board_temp")),
            intake_temperature=degrees(board.get("lowest_inlet_temp")),
            outlet_temperature=degrees(board.get("highest_outlet_temp")),
            working_chips=board.get("chips_count") if isinstance(board.get("chips_count"), int) else None,
            serial_number=board.get("serial_number") or None,
            voltage=to_float(dig(board, ("current_voltage", "volt")) if board.get("current_voltage") else None),
            frequency=round(hertz / 1e6, 3) if hertz is not None else None,
            active=board.get("enabled") if isinstance(board.get("enabled"), bool) else None,
        ))
    return sorted(out, key=lambda b: b.position)


def parse_fans(fans: Any) -> list[FanData]:
    if not isinstance(fans, list):
        raise TypeError("fans is not a list")
    return [FanData(position=f.get("position") if isinstance(f.get("position"), int) else i, rpm=to_float(f.get("rpm")))
            for i, f in enumerate(fans) if isinstance(f, dict)]


def _quota(strategy: Any) -> int:
    value = dig(strategy, ("quota", "value")) if isinstance(strategy, dict) else None
    return value if isinstance(value, int) and value >= 0 else 1


def parse_pools(groups: Any) -> list[PoolGroupData]:
    """REST `pools` (a list of pool groups) -> groups of pools with their share counts."""
    if not isinstance(groups, list):
        raise TypeError("pools is not a list")
    out = []
    for group in groups:
        if not isinstance(group, dict):
            continue
        pools = []
        for index, pool in enumerate(group.get("pools") or []):
            stats = pool.get("stats") or {}
            pools.append(PoolData(position=index, url=pool.get("url"), user=pool.get("user"),
                                  accepted_shares=stats.get("accepted_shares"),
                                  rejected_shares=stats.get("rejected_shares"),
                                  active=pool.get("active"), alive=pool.get("alive")))
        out.append(PoolGroupData(name=group.get("name") or "default", quota=_quota(group.get("strategy")),
                                 pools=pools))
    return out


def parse_messages(errors: Any) -> list[MinerMessage]:
    """REST `miner/errors` -> messages; the firmware's error codes are strings, so `code` stays 0."""
    if not isinstance(errors, list):
        raise TypeError("errors is not a list")
    out = []
    for error in errors:
        if not isinstance(error, dict) or not error.get("message"):
            continue
        stamp = error.get("timestamp")
        when = int(datetime.fromisoformat(stamp).timestamp()) if isinstance(stamp, str) and stamp else None
        out.append(MinerMessage(code=0, message=str(error["message"]), severity=MessageSeverity.ERROR,
                                timestamp=when))
    return out


def parse_tuner_state(mode_state: Any) -> TuningTarget | None:
    """REST `performance/tuner-state` mode_state -> the target the tuner works towards."""
    if not isinstance(mode_state, dict):
        return None
    watt = dig(mode_state, ("powertargetmodestate", "current_target", "watt"))
    if isinstance(watt, int | float):
        return TuningTarget(target_watts=float(watt))
    ths = dig(mode_state, ("hashratetargetmodestate", "current_target", "terahash_per_second"))
    if isinstance(ths, int | float):
        return TuningTarget(target_hashrate=HashRate(value=float(ths), unit="TH/s"))
    return None


def parse_tuner_config(tuner: Any) -> TuningTarget | None:
    """REST `configuration/miner` tuner -> the configured target (power or hash rate per tuner_mode)."""
    if not isinstance(tuner, dict):
        return None
    ths = dig(tuner, ("hashrate_target", "terahash_per_second")) if tuner.get("hashrate_target") else None
    if tuner.get("tuner_mode") == _TUNER_MODE_HASHRATE and isinstance(ths, int | float):
        return TuningTarget(target_hashrate=HashRate(value=float(ths), unit="TH/s"))
    watt = dig(tuner, ("power_target", "watt")) if tuner.get("power_target") else None
    return TuningTarget(target_watts=float(watt)) if isinstance(watt, int | float) else None


# ----- RPC fallbacks ----------------------------------------------------------------------------
def mhs(value: Any) -> HashRate | None:
    return hashrate_from(value, "MH/s")


def rpc_expected_hashrate(devs: Any) -> HashRate | None:
    nominal = [to_float(d.get("Nominal MHS")) for d in devs if isinstance(d, dict)] if isinstance(devs, list) else []
    known = [n for n in nominal if n is not None]
    return hashrate_from(sum(known), "MH/s") if known else None


def rpc_is_mining(devs: Any) -> bool | None:
    if not isinstance(devs, list) or not devs:
        return None
    return any((to_float(d.get("MHS 5s")) or 0.0) > 0 for d in devs if isinstance(d, dict))


def rpc_fans(fans: Any) -> list[FanData]:
    if not isinstance(fans, list):
        raise TypeError("FANS is not a list")
    return [FanData(position=f.get("FAN", i), rpm=to_float(f.get("RPM"))) for i, f in enumerate(fans)
            if isinstance(f, dict)]


def rpc_pools(pools: Any) -> list[PoolGroupData]:
    if not isinstance(pools, list):
        raise TypeError("POOLS is not a list")
    return [PoolGroupData(name="default", quota=1, pools=[
        PoolData(position=p.get("POOL", i), url=p.get("URL"), user=p.get("User"), accepted_shares=p.get("Accepted"),
                 rejected_shares=p.get("Rejected"), active=p.get("Stratum Active"),
                 alive=p.get("Status") == "Alive" if p.get("Status") else None)
        for i, p in enumerate(pools) if isinstance(p, dict)])]


def rpc_hashboards(replies: Mapping[str, Any]) -> list[BoardData]:
    """Boards from RPC `devs` (hash rate), `temps` (board temperature) and `devdetails` (chips...)."""
    devs = [d for d in replies["rpc:devs"].get("DEVS") or [] if isinstance(d, dict)]
    temps = {t.get("ID"): t for t in replies["rpc:temps"].get("TEMPS") or [] if isinstance(t, dict)}
    details = {d.get("ID"): d for d in replies["rpc:devdetails"].get("DEVDETAILS") or [] if isinstance(d, dict)}
    boards = []
    for position, dev in zip(_board_positions([d.get("ID") for d in devs]), devs, strict=True):
        detail = details.get(dev.get("ID"), {})
        boards.append(BoardData(
            position=position, hashrate=mhs(dev.get("MHS 5s")), expected_hashrate=mhs(dev.get("Nominal MHS")),
            board_temperature=to_float(temps.get(dev.get("ID"), {}).get("Board")),
            working_chips=detail.get("Chips") if isinstance(detail.get("Chips"), int) else None,
            voltage=to_float(detail.get("Voltage")), frequency=to_float(detail.get("Frequency")),
            active=dev.get("Enabled") == "Y" if dev.get("Enabled") else None))
    return boards


def model_from_devdetails(reply: Mapping[str, Any] | None) -> str | None:
    """`DEVDETAILS[0].Model` ("Bitmain Antminer S19j Pro") -> the model name."""
    model = dig(reply, ("DEVDETAILS", 0, "Model")) if reply else None
    return canonical_model(model) if isinstance(model, str) and model.strip() else None


def canonical_model(raw: str) -> str:
    """The hardware table's name for a model string the firmware reports, or the string itself."""
    name = raw.strip()
    if name.lower().startswith("bitmain "):
        name = name[len("bitmain "):].strip()
    name = name.replace("S19XP", "S19 XP")
    known = lookup_model(Make.ANTMINER, name)
    return known.name if known is not None else name


# ----- GraphQL (releases before 25.07): queries per release, and their parsers --------------------
GRAPHQL_BEFORE = "25.07"  # the first release with the REST API; every one before it speaks GraphQL
GQL_MAC_SINCE = "24.09"  # `bos { macAddress }`; before, only LuCI's network status has the MAC
GQL_SERIALS_SINCE = "25.03"  # `bos { serialNumber }`, `hwDetails { hbSerialNumber }`, `controlBoardSocFamily`
GQL_FACTORY_RESET_SINCE = "24.09"  # `bos { factoryReset }`
LUCI_LAN = "luci:admin/network/iface_status/lan"

GQL_LOGIN = ("mutation ($username: String!, $password: String!) { auth { login(username: $username,"
              " password: $password) { ... on VoidResult { void } ... on AuthError { message } } } }")
GQL_REBOOT = "mutation { bos { reboot { ... on VoidResult { void } ... on BosError { message } } } }"
GQL_BOSMINER = "mutation { bosminer { %s { ... on VoidResult { void } ... on BosminerError { message } } } }"
GQL_FAULT_LIGHT = "mutation ($enable: Boolean!) { bos { setFaultLight(enable: $enable) { enabled } } }"
GQL_AUTOTUNING = (
    "mutation ($input: AutotuningIn!) { bosminer { config { updateAutotuning(input: $input, apply: true) {"
    " ... on AutotuningOut { autotuning { mode powerTarget hashrateTarget } }"
    " ... on AutotuningError { message } ... on AttributeError { message } } } } }")
GQL_UPDATE_GROUPS = (
    "mutation ($groups: [Group!]!) { bosminer { config { updateGroups(groups: $groups) {"
    " ... on GroupList { groups { id } } ... on GroupListError { message } ... on AttributeError { message } } } } }")
GQL_TEMP_AND_FANS = (
    "mutation ($input: TempAndFansIn!) { bosminer { config { updateTempAndFans(input: $input, apply: true) {"
    " ... on TempAndFansOut { tempControl { mode targetTemp } fanControl { speed } }"
    " ... on TempAndFansError { message } ... on AttributeError { message } } } } }")
GQL_SET_PASSWORD = ("mutation ($password: String) { bos { setPassword(newPassword: $password) {"
                     " ... on VoidResult { void } ... on BosError { message } } } }")
GQL_FACTORY_RESET = "mutation { bos { factoryReset { ... on VoidResult { void } ... on BosError { message } } } }"
GQL_LOG = "query ($target: LogTarget!) { bos { log(target: $target) } }"
# every mutation the controls send (checked against each release's schema by the tests)
GQL_MUTATIONS = (GQL_REBOOT, GQL_BOSMINER % "stop", GQL_BOSMINER % "start", GQL_BOSMINER % "restart",
                 GQL_FAULT_LIGHT, GQL_AUTOTUNING, GQL_UPDATE_GROUPS, GQL_TEMP_AND_FANS, GQL_SET_PASSWORD)
_LUCI_AGENT = "BTC Tools v0.1"  # LuCI on Braiins OS answers API clients only with a user agent it knows


def _session_cookie(header: str) -> str | None:
    """The `session_id` of a Set-Cookie header (GraphQL and LuCI sessions of Braiins OS)."""
    for part in header.replace(",", ";").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "session_id" and value:
            return value
    return None


def graphql_queries(release: str) -> dict[str, str]:
    """The read queries (command key -> document) for a release before 25.07, with what its schema has."""
    since = _release_at_least(release)
    bos_extra = (" macAddress" if since(GQL_MAC_SINCE) else "") + (" serialNumber" if since(GQL_SERIALS_SINCE) else "")
    info_extra = " controlBoardSocFamily" if since(GQL_SERIALS_SINCE) else ""
    board_extra = " hbSerialNumber" if since(GQL_SERIALS_SINCE) else ""
    return {
        "gql:system": (
            f"{{ bos {{ hostname faultLight{bos_extra} info {{ version {{ full }}{info_extra} }}"
            " uptime { durationS } } bosminer { info { workSolver { realHashrate { mhs5S } nominalMhs }"
            " fans { name rpm } summary { power { limitW approxConsumptionW } } } } }"),
        "gql:boards": (
            "{ bosminer { info { workSolver { childSolvers { name realHashrate { mhs5S } nominalMhs"
            f" hwDetails {{ chips frequencyMhz voltageV{board_extra} }}"
            " temperatures { name degreesC } } } } } }"),
        "gql:pools": (
            "{ bosminer { config { ... on BosminerConfig { groups { id name strategy { ... on QuotaStrategy"
            " { quota } } pools { url user } } } } info { poolGroups { name pools { url user status active"
            " shares { acceptedSolutions rejectedSolutions } } } } } }"),
        "gql:tuning": (
            "{ bosminer { config { ... on BosminerConfig { autotuning { mode powerTarget hashrateTarget }"
            " tempControl { mode targetTemp hotTemp dangerousTemp } fanControl { speed minFans } } }"
            " info { summary { power { limitW } } } } }"),
        "gql:metadata": (
            "{ bosminer { metadata { autotuning { powerTarget { default min max }"
            " hashrateTarget { default min max } } } } }"),
        "gql:events": "{ events { appeals { kind timestamp message } } }",
    }


def _release_at_least(release: str) -> Callable[[str], bool]:
    mine = _version_tuple(release)
    return lambda other: mine >= _version_tuple(other)


def _aliased_fields(query: str, prefix: str) -> tuple[str, dict[str, str]]:
    """`{ bos { a } bosminer { b } }` -> (`q0_bos: bos { a } q0_bosminer: bosminer { b }`, {alias: field}):
    the query's top-level fields, aliased so that several queries join into one document."""
    inner = query.strip()
    if not (inner.startswith("{") and inner.endswith("}")):
        raise ValueError(f"not a bare query document: {query[:40]!r}")
    inner = inner[1:-1]
    out: list[str] = []
    fields: dict[str, str] = {}
    depth, index = 0, 0
    while index < len(inner):
        char = inner[index]
        if depth == 0 and (char.isalpha() or char == "_"):
            end = index
            while end < len(inner) and (inner[end].isalnum() or inner[end] == "_"):
                end += 1
            name = inner[index:end]
            fields[prefix + name] = name
            out.append(f"{prefix}{name}: {name}")
            index = end
            continue
        depth += (char == "{") - (char == "}")
        out.append(char)
        index += 1
    return "".join(out).strip(), fields


def release_of(firmware_version: str) -> str | None:
    """`2025-06-25-0-45f356ea-25.05.1-plus` -> "25.05.1"; None when the string has no release part."""
    parts = firmware_version.split("-")
    if len(parts) > 5 and parts[5][:2].isdigit():
        return parts[5]
    return None


def gql_data(reply: Any) -> dict[str, Any]:
    """The `data` of a GraphQL reply; MinerResponseError when the server reports errors."""
    if not isinstance(reply, dict):
        raise MinerResponseError("GraphQL: the reply is not an object")
    errors = reply.get("errors")
    if errors:
        messages = [e.get("message", "?") for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        raise MinerResponseError(f"GraphQL: {'; '.join(map(str, messages)) or errors}")
    data = reply.get("data")
    if not isinstance(data, dict):
        raise MinerResponseError("GraphQL: the reply holds no data")
    return data


def gql_mining(hashrate: Any) -> bool | None:
    mhs_5s = to_float(hashrate)
    return mhs_5s > 0 if mhs_5s is not None else None


def gql_fans(fans: Any) -> list[FanData]:
    if not isinstance(fans, list):
        raise TypeError("fans is not a list")
    out = []
    for index, fan in enumerate(f for f in fans if isinstance(f, dict)):
        name = fan.get("name")
        position = int(name) if isinstance(name, str) and name.isdigit() else index
        out.append(FanData(position=position, rpm=to_float(fan.get("rpm"))))
    return out


def _sensor(name: Any) -> str:
    """Sensor names as the releases spell them: "Board" (22.x, 24.x), "Max Board" (25.03), "MAX_BOARD" (25.05)."""
    return str(name).upper().replace(" ", "_").removeprefix("MAX_") if isinstance(name, str) else ""


def gql_hashboards(solvers: Any) -> list[BoardData]:
    """`workSolver.childSolvers` -> boards in slot order (names "1".."3"; "6".."8" on S9-era chains)."""
    if not isinstance(solvers, list):
        raise TypeError("childSolvers is not a list")
    entries = [b for b in solvers if isinstance(b, dict)]
    boards = []
    for position, solver in zip(_board_positions([b.get("name") for b in entries]), entries, strict=True):
        details: dict[str, Any] = solver["hwDetails"] if isinstance(solver.get("hwDetails"), dict) else {}
        temperatures = {_sensor(t.get("name")): to_float(t.get("degreesC"))
                        for t in solver.get("temperatures") or [] if isinstance(t, dict)}
        hashrate = mhs(dig(solver, ("realHashrate", "mhs5S")) if solver.get("realHashrate") else None)
        chips = details.get("chips")
        boards.append(BoardData(
            position=position, hashrate=hashrate, expected_hashrate=mhs(solver.get("nominalMhs")),
            board_temperature=temperatures.get("BOARD"), intake_temperature=temperatures.get("INLET"),
            outlet_temperature=temperatures.get("OUTLET"),
            working_chips=chips if isinstance(chips, int) else None,
            serial_number=details.get("hbSerialNumber") or None, voltage=to_float(details.get("voltageV")),
            frequency=to_float(details.get("frequencyMhz")),
            active=hashrate.value > 0 if hashrate is not None else None))
    return sorted(boards, key=lambda b: b.position)


_POOL_ALIVE = {"ALIVE", "ACTIVE", "RUNNING"}


def gql_pools(bosminer: Any) -> list[PoolGroupData]:
    """`bosminer { info { poolGroups } config { groups } }`: pools with their shares, quotas from the config."""
    if not isinstance(bosminer, dict):
        raise TypeError("bosminer is not an object")
    configured = dig(bosminer, ("config", "groups"))
    configured = configured if isinstance(configured, list) else []
    out = []
    for index, group in enumerate(g for g in dig(bosminer, ("info", "poolGroups")) or [] if isinstance(g, dict)):
        quota = dig(configured[index], ("strategy", "quota")) if index < len(configured) else None
        pools = []
        for position, pool in enumerate(p for p in group.get("pools") or [] if isinstance(p, dict)):
            shares: dict[str, Any] = pool["shares"] if isinstance(pool.get("shares"), dict) else {}
            status = pool.get("status")
            pools.append(PoolData(position=position, url=pool.get("url"), user=pool.get("user"),
                                  accepted_shares=shares.get("acceptedSolutions"),
                                  rejected_shares=shares.get("rejectedSolutions"), active=pool.get("active"),
                                  alive=str(status).upper() in _POOL_ALIVE if isinstance(status, str) else None))
        out.append(PoolGroupData(name=group.get("name") or "default",
                                 quota=quota if isinstance(quota, int) and quota >= 0 else 1, pools=pools))
    return out


_APPEAL_SEVERITY = {"ERROR": MessageSeverity.ERROR, "WARNING": MessageSeverity.WARNING}


def gql_messages(appeals: Any) -> list[MinerMessage]:
    """`events { appeals }` -> messages (kinds INFO/SUCCESS read as info); timestamps in Unix seconds."""
    if not isinstance(appeals, list):
        raise TypeError("appeals is not a list")
    out = []
    for appeal in appeals:
        if not isinstance(appeal, dict) or not appeal.get("message"):
            continue
        stamp = to_float(appeal.get("timestamp"))
        out.append(MinerMessage(code=0, message=str(appeal["message"]),
                                severity=_APPEAL_SEVERITY.get(str(appeal.get("kind")).upper(), MessageSeverity.INFO),
                                timestamp=int(stamp) if stamp is not None else None))
    return out


def gql_tuning_target(autotuning: Any) -> TuningTarget | None:
    """`config.autotuning` -> the configured target: the hash rate one in HASHRATE_TARGET mode."""
    if not isinstance(autotuning, dict):
        return None
    ths = to_float(autotuning.get("hashrateTarget"))
    if autotuning.get("mode") == "HASHRATE_TARGET" and ths is not None:
        return TuningTarget(target_hashrate=HashRate(value=ths, unit="TH/s"))
    watts = to_float(autotuning.get("powerTarget"))
    return TuningTarget(target_watts=watts) if watts is not None else None


def gql_scaled_target(limit: Any) -> TuningTarget | None:
    """`summary.power.limitW`: the power limit the tuner runs now (DPS may have stepped it down)."""
    watts = to_float(limit)
    return TuningTarget(target_watts=watts) if watts is not None else None


def gql_tuning_capabilities(autotuning: Any) -> TuningCapabilities | None:
    """`metadata.autotuning`: the power (W) and hash rate (TH/s) target ranges."""
    if not isinstance(autotuning, dict):
        return None

    def axis(key: str, target: Callable[[float], TuningTarget]) -> TuningRange | None:
        limits = autotuning.get(key)
        if not isinstance(limits, dict):
            return None
        values = {k: to_float(limits.get(k)) for k in ("default", "min", "max")}
        made = {k: target(v) if v is not None else None for k, v in values.items()}
        return TuningRange(default=made["default"], minimum=made["min"], maximum=made["max"])

    power = axis("powerTarget", lambda w: TuningTarget(target_watts=w))
    hashrate = axis("hashrateTarget", lambda t: TuningTarget(target_hashrate=HashRate(value=t, unit="TH/s")))
    return TuningCapabilities(power=power, hashrate=hashrate) if power or hashrate else None


def graphql_data_sources(release: str) -> dict[DataField, Source | list[Source]]:
    """Where each field is on a release before 25.07: GraphQL first, the RPC as the fallback. A GraphQL
    reply is kept whole (`{"data": ...}`), as the firmware sends it."""
    since = _release_at_least(release)
    system = "gql:system"

    def bos(*path: str, parse: Callable[[Any], Any] | None = None) -> Source:
        return at(system, "data", "bos", *path, parse=parse)

    def miner(*path: str, parse: Callable[[Any], Any] | None = None) -> Source:
        return at(system, "data", "bosminer", "info", *path, parse=parse)

    def tuning(*path: str, parse: Callable[[Any], Any] | None = None) -> Source:
        return at("gql:tuning", "data", "bosminer", *path, parse=parse)

    data: dict[DataField, Source | list[Source]] = {
        DataField.MAC: bos("macAddress", parse=parse_mac) if since(GQL_MAC_SINCE)
        else at(LUCI_LAN, 0, "macaddr", parse=parse_mac),
        DataField.HOSTNAME: bos("hostname"),
        DataField.FIRMWARE_VERSION: bos("info", "version", "full"),
        DataField.API_VERSION: at("rpc:version", "VERSION", 0, "API", parse=str),
        DataField.HASHRATE: [miner("workSolver", "realHashrate", "mhs5S", parse=mhs),
                             at("rpc:summary", "SUMMARY", 0, "MHS 5s", parse=mhs)],
        DataField.EXPECTED_HASHRATE: [miner("workSolver", "nominalMhs", parse=mhs),
                                      at("rpc:devs", "DEVS", parse=rpc_expected_hashrate)],
        DataField.HASHBOARDS: [at("gql:boards", "data", "bosminer", "info", "workSolver", "childSolvers",
                                  parse=gql_hashboards),
                               at(("rpc:devs", "rpc:temps", "rpc:devdetails"), parse=rpc_hashboards)],
        DataField.FANS: [miner("fans", parse=gql_fans),
                         at("rpc:fans", "FANS", parse=rpc_fans)],
        DataField.WATTAGE: [miner("summary", "power", "approxConsumptionW", parse=to_float),
                            at("rpc:tunerstatus", "TUNERSTATUS", 0, "ApproximateMinerPowerConsumption",
                               parse=to_float)],
        DataField.WATTAGE_LIMIT: [tuning("config", "autotuning", "powerTarget", parse=to_float),
                                  at("rpc:tunerstatus", "TUNERSTATUS", 0, "PowerLimit", parse=to_float)],
        DataField.UPTIME: [bos("uptime", "durationS", parse=parse_uptime),
                           at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=parse_uptime)],
        DataField.POOLS: [at("gql:pools", "data", "bosminer", parse=gql_pools),
                          at("rpc:pools", "POOLS", parse=rpc_pools)],
        DataField.MESSAGES: at("gql:events", "data", "events", "appeals", parse=gql_messages),
        DataField.IS_MINING: [miner("workSolver", "realHashrate", "mhs5S", parse=gql_mining),
                              at("rpc:devs", "DEVS", parse=rpc_is_mining)],
        DataField.LIGHT_FLASHING: bos("faultLight", parse=parse_light),
        DataField.TUNING_TARGET: tuning("config", "autotuning", parse=gql_tuning_target),
        DataField.SCALED_TUNING_TARGET: tuning("info", "summary", "power", "limitW",
                                           parse=gql_scaled_target),
        DataField.TUNING_CAPABILITIES: at("gql:metadata", "data", "bosminer", "metadata", "autotuning",
                                          parse=gql_tuning_capabilities),
    }
    if since(GQL_SERIALS_SINCE):
        data[DataField.SERIAL_NUMBER] = bos("serialNumber")
        data[DataField.CONTROL_BOARD_VERSION] = bos("info", "controlBoardSocFamily", parse=parse_text)
    return data


class BraiinsBackend(Backend):
    family: ClassVar[str] = "braiins"
    firmware: ClassVar[str] = "Braiins OS"
    PRIORITY: ClassVar[int] = 20  # "Braiins OS" / BOSer are unambiguous: ahead of the generic Antminer stock
    RPC_BATCHABLE: ClassVar[bool] = True
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("root", ""), ("root", "root"))

    DATA: ClassVar[Mapping[DataField, Source | list[Source]]] = {
        DataField.MAC: [at("web:miner/details", "mac_address", parse=parse_mac),
                        at("web:network", "mac_address", parse=parse_mac)],
        DataField.SERIAL_NUMBER: at("web:miner/details", "serial_number"),
        DataField.HOSTNAME: [at("web:miner/details", "hostname"), at("web:network", "hostname")],
        DataField.FIRMWARE_VERSION: at("web:miner/details", "bos_version", "current"),
        DataField.API_VERSION: [at("web:version", parse=parse_api_version),
                                at("rpc:version", "VERSION", 0, "API", parse=str)],
        DataField.CONTROL_BOARD_VERSION: at("web:miner/details", "control_board_soc_family",
                                            parse=parse_control_board),
        DataField.HASHRATE: [at("web:miner/stats", "miner_stats", "real_hashrate", "last_5s", parse=ths_from_ghs),
                             at("rpc:summary", "SUMMARY", 0, "MHS 5s", parse=mhs)],
        DataField.EXPECTED_HASHRATE: [at("web:miner/details", "sticker_hashrate", parse=ths_from_ghs),
                                      at("rpc:devs", "DEVS", parse=rpc_expected_hashrate)],
        DataField.HASHBOARDS: [at("web:miner/hw/hashboards", "hashboards", parse=parse_hashboards),
                               at(("rpc:devs", "rpc:temps", "rpc:devdetails"), parse=rpc_hashboards)],
        DataField.FANS: [at("web:cooling/state", "fans", parse=parse_fans), at("rpc:fans", "FANS", parse=rpc_fans)],
        DataField.WATTAGE: [at("web:miner/stats", "power_stats", "approximated_consumption", "watt", parse=to_float),
                            at("rpc:tunerstatus", "TUNERSTATUS", 0, "ApproximateMinerPowerConsumption",
                               parse=to_float)],
        DataField.WATTAGE_LIMIT: [at("web:configuration/miner", "tuner", "power_target", "watt", parse=to_float),
                                  at("rpc:tunerstatus", "TUNERSTATUS", 0, "PowerLimit", parse=to_float)],
        DataField.UPTIME: [at("web:miner/details", "system_uptime_s", parse=parse_uptime),
                           at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=parse_uptime)],
        DataField.POOLS: [at("web:pools", parse=parse_pools), at("rpc:pools", "POOLS", parse=rpc_pools)],
        DataField.MESSAGES: at("web:miner/errors", "errors", parse=parse_messages),
        DataField.IS_MINING: [at("web:miner/details", "status", parse=parse_is_mining),
                              at("rpc:devs", "DEVS", parse=rpc_is_mining)],
        DataField.LIGHT_FLASHING: at("web:actions/locate", parse=parse_light),
        # as asic-rs: the target is the configured one, the scaled one what the tuner runs now (DPS may
        # have stepped it down)
        DataField.TUNING_TARGET: [at("web:configuration/miner", "tuner", parse=parse_tuner_config),
                                  at("web:performance/tuner-state", "mode_state", parse=parse_tuner_state)],
        DataField.SCALED_TUNING_TARGET: at("web:performance/tuner-state", "mode_state", parse=parse_tuner_state),
        DataField.TUNING_CAPABILITIES: at("web:configuration/constraints", "tuner_constraints",
                                          parse=parse_tuning_capabilities),
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._token: str | None = None
        self._username = "root"
        self._gql_cookie: str | None = None  # the GraphQL session (releases before 25.07)
        self._luci_cookie: str | None = None  # the LuCI session, for the MAC before 24.09
        self._gql_sources: dict[DataField, Source | list[Source]] | None = None

    @property
    def graphql_release(self) -> str | None:
        """The release, when identification found one before 25.07 (the miner speaks GraphQL, not REST)."""
        release = self.learned.get("graphql_release")
        return release if isinstance(release, str) and release else None

    def adopt(self, fresh: Backend) -> None:
        super().adopt(fresh)
        self._gql_sources = None  # the release may have changed: its fields with it

    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        release = self.graphql_release
        if release is None:
            return super().sources(wanted)
        if self._gql_sources is None:
            self._gql_sources = graphql_data_sources(release)
        out: dict[DataField, list[Source]] = {}
        for name in wanted:
            declared = self._gql_sources.get(name)
            if declared is not None:
                out[name] = [declared] if isinstance(declared, Source) else list(declared)
        return out

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if "Braiins OS" in probe.web_text:
            return True
        text = reply_text(probe.rpc_reply("version")).upper()
        return "BOSMINER" in text or "BOSER" in text

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        """The model from RPC `devdetails`; from GraphQL `modelName` when the RPC cannot tell."""
        model: str | None = None
        rpc_error: MinerError | None = None
        reply = probe.rpc_reply("devdetails")
        if reply is None:
            try:
                reply = await rpc_call(probe.ip, "devdetails", settings=session.settings)
            except MinerError as exc:
                rpc_error = exc
        model = model_from_devdetails(reply)
        if model is None:
            try:
                model = await cls._graphql_model(probe.ip, session)
            except MinerError:
                if rpc_error is not None:
                    raise rpc_error from None
                raise
        if model is None:
            if rpc_error is not None:
                raise rpc_error
            return None
        rest_api = await cls._rest_api_version(probe.ip, session)
        probe.learned["rest_api_version"] = rest_api
        if rest_api is None:  # no REST API: a release before 25.07 answers GraphQL
            version = await cls._graphql_version(probe.ip, session)
            release = release_of(version) if version else None
            if version and release and _version_tuple(release) < _version_tuple(GRAPHQL_BEFORE):
                probe.learned.update({"firmware_version": version, "graphql_release": release})
        return cls.device_info(Make.ANTMINER.value, model, cls.firmware)

    @staticmethod
    async def _rest_api_version(ip: str, session: Session) -> str | None:
        """`GET /api/v1/version` (answered without a login): which release's REST API the miner serves;
        None when it serves none (releases before 25.07) or did not answer."""
        try:
            reply = await session.http.request("GET", ip, API + "version")
        except MinerError:
            return None
        if reply.status != 200:
            return None
        try:
            return parse_api_version(reply.json())
        except (ValueError, MinerError):
            return None

    def unavailable(self) -> dict[str, str]:
        """Every control goes through the REST API (25.07+); logs, factory reset and firmware upgrade came
        with its 1.3.0 (Braiins OS 26.04). Before 25.07 the controls go through GraphQL: there factory reset
        came with 24.09; firmware upgrade and Dynamic Performance Scaling are not driven over GraphQL."""
        release = self.graphql_release
        if release is not None:
            out = {c: f"not driven over the GraphQL API of Braiins OS {release} (the REST API came with 25.07)"
                   for c in _NOT_OVER_GRAPHQL if type(self).supports(c)}
            if _version_tuple(release) < _version_tuple(GQL_FACTORY_RESET_SINCE):
                out["factory_reset"] = f"needs Braiins OS {GQL_FACTORY_RESET_SINCE} or later; this one is {release}"
            return out
        api = self.learned.get("rest_api_version")
        if not isinstance(api, str):
            return {c: "the Braiins OS REST API (25.07 and later) did not answer at identification"
                    for c in self.implemented()}
        if _version_tuple(api) < _version_tuple(REST_API_WITH_LOGS):
            return {c: f"needs Braiins OS 26.04 or later (REST API {REST_API_WITH_LOGS}); this one serves {api}"
                    for c in _SINCE_26_04}
        return {}

    @staticmethod
    async def _graphql_version(ip: str, session: Session) -> str | None:
        """The public `{ bos { info { version { full } } } }` (what asic-rs reads to pick its backend);
        None when the miner does not answer it."""
        try:
            reply = await session.http.request("POST", ip, "/graphql",
                                               json={"query": "{ bos { info { version { full } } } }"})
            if reply.status != 200:
                return None
            full = dig(gql_data(reply.json()), ("bos", "info", "version", "full"))
        except MinerError:
            return None
        return full.strip() if isinstance(full, str) and full.strip() else None

    @staticmethod
    async def _graphql_model(ip: str, session: Session) -> str | None:
        reply = await session.http.request("POST", ip, "/graphql",
                                           json={"query": "{ bosminer { info { modelName } } }"})
        if reply.status != 200:
            return None
        model = dig(reply.json(), ("data", "bosminer", "info", "modelName"))
        return canonical_model(model) if isinstance(model, str) and model.strip() else None

    # ----- REST transport ---------------------------------------------------------------------
    async def _login_with(self, creds: Credentials) -> str:
        reply = await self.http("POST", API + "auth/login",
                                json={"username": creds.username, "password": creds.password.get_secret_value()})
        if reply.status in (401, 403):
            raise AuthenticationError(f"{self.ip}: Braiins OS refused the login of {creds.username!r}")
        self._check(reply, "POST auth/login")
        token = dig(reply.json(), ("token",))
        if not isinstance(token, str) or not token:
            raise MinerResponseError("POST auth/login: the reply holds no token")
        self._username = creds.username
        return token

    async def _ensure_token(self) -> str:
        if self._token is None:
            self._token = await self.with_credentials(self._login_with)
        return self._token

    @staticmethod
    def _check(reply: HttpReply, what: str) -> None:
        if not 200 <= reply.status < 300:
            raise HttpStatusError(f"{what}: HTTP {reply.status}", reply.status)

    async def request(self, method: str, route: str, **kwargs: Any) -> HttpReply:
        """One authenticated REST call; logs in again once when the session has expired."""
        for attempt in range(2):
            token = await self._ensure_token()
            reply = await self.http(method, API + route, headers={"Authorization": token}, **kwargs)
            if reply.status != 401:
                break
            self._token = None  # expired, or the miner rebooted: a fresh login, then one more try
            if attempt == 1:
                raise AuthenticationError(f"{method} {route}: the session token was refused")
        self._check(reply, f"{method} {route}")
        return reply

    async def call(self, method: str, route: str, **kwargs: Any) -> Any:
        reply = await self.request(method, route, **kwargs)
        return reply.json() if reply.body.strip() else None

    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            return await self.call("GET", command[4:])
        if command.startswith("gql:"):
            return {"data": await self.graphql(self._gql_queries()[command])}
        if command.startswith("luci:"):
            return await self._luci_get(command[5:])
        return await super().send(command)

    def _gql_queries(self) -> dict[str, str]:
        return graphql_queries(self.graphql_release or GRAPHQL_BEFORE)

    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Logs in once (per API) before the reads go out in parallel; a refused login fails that API's reads."""
        results: dict[str, Any] = {}
        logins: dict[str, Callable[[], Awaitable[str]]] = {"web:": self._ensure_token, "gql:": self._ensure_gql_session,
                                                           "luci:": self._ensure_luci_session}
        for prefix, login in logins.items():
            keyed = [c for c in commands if c.startswith(prefix)]
            if not keyed:
                continue
            try:
                await login()
            except MinerError as exc:
                results.update({c: exc for c in keyed})
        queries = [c for c in commands if c.startswith("gql:") and c not in results]
        rest = [c for c in commands if c not in results and c not in queries]
        if len(queries) < 2:
            rest += queries
            queries = []
        replies = await asyncio.gather(self._gql_joined(queries), super().send_many(rest))
        for reply in replies:
            results.update(reply)
        return results

    async def _gql_joined(self, keys: Sequence[str]) -> dict[str, Any]:
        """The read queries in one GraphQL request (each top-level field aliased by its query), split back
        into each query's `{"data": ...}`. When the server reports an error, each query goes again alone,
        so a field one of them fails on costs only that query's fields."""
        if not keys:
            return {}
        documents = self._gql_queries()
        aliased = {key: _aliased_fields(documents[key], f"q{index}_") for index, key in enumerate(keys)}
        try:
            data = await self.graphql("{ " + " ".join(body for body, _ in aliased.values()) + " }")
        except MinerResponseError:
            return await Backend.send_many(self, keys)
        except MinerError as exc:
            return {key: exc for key in keys}
        out: dict[str, Any] = {}
        for key, (_, fields) in aliased.items():
            try:
                out[key] = {"data": {name: data[alias] for alias, name in fields.items()}}
            except KeyError:
                out[key] = MinerResponseError(f"GraphQL: the joined reply lacks a field of {key}")
        return out

    # ----- GraphQL and LuCI transport (releases before 25.07) ---------------------------------
    async def _gql_login_with(self, creds: Credentials) -> str:
        reply = await self.http("POST", "/graphql", json={"query": GQL_LOGIN, "variables": {
            "username": creds.username, "password": creds.password.get_secret_value()}})
        self._check(reply, "POST /graphql (login)")
        refusal = dig(gql_data(reply.json()), ("auth", "login", "message"))
        if isinstance(refusal, str):
            raise AuthenticationError(f"{self.ip}: Braiins OS refused the login of {creds.username!r} ({refusal})")
        cookie = _session_cookie(reply.headers.get("set-cookie", ""))
        if cookie is None:
            raise MinerResponseError("POST /graphql (login): no session cookie in the reply")
        self._username = creds.username
        return cookie

    async def _ensure_gql_session(self) -> str:
        if self._gql_cookie is None:
            self._gql_cookie = await self.with_credentials(self._gql_login_with)
        return self._gql_cookie

    async def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One GraphQL request in the session (logged in first); logs in again once when it has expired."""
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = dict(variables)
        for attempt in range(2):
            cookie = await self._ensure_gql_session()
            reply = await self.http("POST", "/graphql", json=body, headers={"Cookie": f"session_id={cookie}"})
            self._check(reply, "POST /graphql")
            decoded = reply.json()
            errors = decoded.get("errors") if isinstance(decoded, dict) else None
            if attempt == 0 and isinstance(errors, list) and any(
                    isinstance(e, dict) and "unauthorized" in str(e.get("message", "")).lower() for e in errors):
                self._gql_cookie = None  # expired, or the miner rebooted: a fresh login, then one more try
                continue
            return gql_data(decoded)
        raise AuthenticationError(f"{self.ip}: the GraphQL session was refused")

    async def _luci_login_with(self, creds: Credentials) -> str:
        reply = await self.http("POST", "/cgi-bin/luci", data={"luci_username": creds.username,
                                                               "luci_password": creds.password.get_secret_value()},
                                headers={"User-Agent": _LUCI_AGENT})
        cookie = _session_cookie(reply.headers.get("set-cookie", ""))
        if reply.status in (401, 403) or (reply.status == 200 and cookie is None):
            raise AuthenticationError(f"{self.ip}: LuCI refused the login of {creds.username!r}")
        self._check(reply, "POST /cgi-bin/luci")
        if cookie is None:
            raise MinerResponseError("POST /cgi-bin/luci: no session cookie in the reply")
        return cookie

    async def _ensure_luci_session(self) -> str:
        if self._luci_cookie is None:
            self._luci_cookie = await self.with_credentials(self._luci_login_with)
        return self._luci_cookie

    async def _luci_get(self, route: str) -> Any:
        for attempt in range(2):
            cookie = await self._ensure_luci_session()
            reply = await self.http("GET", f"/cgi-bin/luci/{route}",
                                    headers={"Cookie": f"session_id={cookie}", "User-Agent": _LUCI_AGENT})
            if reply.status == 403 and attempt == 0:
                self._luci_cookie = None
                continue
            self._check(reply, f"GET /cgi-bin/luci/{route}")
            return reply.json()
        raise AuthenticationError(f"{self.ip}: the LuCI session was refused")

    async def _gql_mutation(self, document: str, place: tuple[str, ...],
                            variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A mutation whose result union carries `message` when the firmware refused it."""
        result = dig(await self.graphql(document, variables), place)
        if not isinstance(result, dict):
            raise MinerResponseError(f"GraphQL {'.'.join(place)}: no result in the reply")
        if isinstance(result.get("message"), str):
            raise MinerAPIError(f"GraphQL {'.'.join(place)}: {result['message']}")
        return result

    def finalize(self, data: MinerData, replies: Mapping[str, Any]) -> MinerData:
        chips = self.device.hardware.chips_per_board
        if chips is not None:
            for board in data.hashboards:
                if board.expected_chips is None:
                    board.expected_chips = chips
        return super().finalize(data, replies)

    async def _optional(self, method: str, route: str, control: str, **kwargs: Any) -> HttpReply:
        """A call to an endpoint newer releases have: HTTP 404 means this release lacks the control."""
        try:
            return await self.request(method, route, **kwargs)
        except HttpStatusError as exc:
            if exc.status in (404, 405, 501):
                raise self._unsupported(f"{control} (needs Braiins OS 26.04 or later)") from None
            raise

    # ----- controls over GraphQL (releases before 25.07) ------------------------------------------
    async def _gql_restart(self) -> bool:
        await self._gql_mutation(GQL_REBOOT, ("bos", "reboot"))
        self._gql_cookie = self._luci_cookie = None  # the reboot ends the sessions
        return True

    async def _gql_pause(self) -> bool:
        await self._gql_mutation(GQL_BOSMINER % "stop", ("bosminer", "stop"))
        return True

    async def _gql_resume(self) -> bool:
        await self._gql_mutation(GQL_BOSMINER % "start", ("bosminer", "start"))
        return True

    async def _gql_set_fault_light(self, on: bool) -> bool:
        result = await self._gql_mutation(GQL_FAULT_LIGHT, ("bos", "setFaultLight"), {"enable": bool(on)})
        return result.get("enabled") is bool(on)

    async def _gql_autotuning(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        result = await self._gql_mutation(GQL_AUTOTUNING, ("bosminer", "config", "updateAutotuning"),
                                          {"input": dict(changes)})
        autotuning = result.get("autotuning")
        if not isinstance(autotuning, dict):
            raise MinerResponseError("GraphQL updateAutotuning: no autotuning in the reply")
        return autotuning

    async def _gql_set_power_limit(self, watts: float) -> bool:
        target = round(watts)
        autotuning = await self._gql_autotuning({"mode": "POWER_TARGET", "powerTarget": target})
        return autotuning.get("powerTarget") == target and autotuning.get("mode") == "POWER_TARGET"

    async def _gql_tuning(self) -> dict[str, Any]:
        config = dig(await self.graphql(self._gql_queries()["gql:tuning"]), ("bosminer", "config"))
        if not isinstance(config, dict):
            raise MinerResponseError("GraphQL bosminer.config: the configuration is not readable")
        return config

    async def _gql_get_tuning_config(self) -> TuningConfig:
        target = gql_tuning_target((await self._gql_tuning()).get("autotuning"))
        if target is None:
            raise MinerResponseError("GraphQL bosminer.config: no autotuning target")
        if target.target_hashrate is not None:
            return TuningConfig.hashrate(target.target_hashrate)
        assert target.target_watts is not None
        return TuningConfig.power(target.target_watts)

    async def _gql_set_tuning_config(self, config: TuningConfig) -> bool:
        if config.target_watts is not None:
            return await self._gql_set_power_limit(config.target_watts)
        if config.target_hashrate is not None:
            ths = round(config.target_hashrate.into_unit("TH/s").value, 3)
            autotuning = await self._gql_autotuning({"mode": "HASHRATE_TARGET", "hashrateTarget": ths})
            return to_float(autotuning.get("hashrateTarget")) == ths and autotuning.get("mode") == "HASHRATE_TARGET"
        raise self._unsupported(f"set_tuning_config with a named mode ({config.target_mode!r})")

    async def _gql_get_pools_config(self) -> list[PoolGroup]:
        """The configured groups; the schema's PoolConfig has the password, but it is not read back (as REST)."""
        groups = dig(await self.graphql(self._gql_queries()["gql:pools"]), ("bosminer", "config", "groups"))
        out = []
        for group in groups if isinstance(groups, list) else []:
            pools = []
            for pool in (group.get("pools") or [])[:3]:
                try:
                    pools.append(Pool(url=pool["url"], username=pool["user"]))
                except (ValidationError, KeyError, TypeError):
                    continue  # a pool our model cannot express (odd scheme): left out rather than guessed
            quota = dig(group, ("strategy", "quota"))
            if pools:
                out.append(PoolGroup(name=group.get("name") or "default",
                                     quota=quota if isinstance(quota, int) and quota >= 0 else 1, pools=pools))
        return out

    async def _gql_set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """`updateGroups`, then a restart of bosminer, which takes the new pools only when it starts."""
        body = [{"name": g.name, "quota": g.quota,
                 "pools": [{"url": p.url, "user": p.username, "password": p.password} for p in g.pools]}
                for g in groups]
        result = await self._gql_mutation(GQL_UPDATE_GROUPS, ("bosminer", "config", "updateGroups"),
                                          {"groups": body})
        await self._gql_mutation(GQL_BOSMINER % "restart", ("bosminer", "restart"))
        written = result.get("groups")
        return isinstance(written, list) and len(written) == len(groups)

    async def _gql_get_fan_config(self) -> FanConfig:
        config = await self._gql_tuning()
        temp, fans = config.get("tempControl") or {}, config.get("fanControl") or {}
        if temp.get("mode") == "MANUAL" and isinstance(fans.get("speed"), int):
            return FanConfig.manual(fans["speed"])
        return FanConfig.auto(target_temp=to_float(temp.get("targetTemp")))

    async def _gql_set_fan_config(self, config: FanConfig) -> bool:
        if config.mode == "manual":
            changes: dict[str, Any] = {"mode": "MANUAL", "speed": config.fan_speed}
        else:
            if config.idle_speed is not None:  # the schema has a minimum fan count, no idle speed
                raise self._unsupported("set_fan_config with an idle speed (not in the GraphQL API before 25.07)")
            changes = {"mode": "AUTO"}
            if config.target_temp is not None:
                changes["targetTemp"] = float(config.target_temp)
        result = await self._gql_mutation(GQL_TEMP_AND_FANS, ("bosminer", "config", "updateTempAndFans"),
                                          {"input": changes})
        return bool(dig(result, ("tempControl", "mode")) == changes["mode"])

    async def _gql_get_temperature_config(self) -> TemperatureConfig:
        temp = (await self._gql_tuning()).get("tempControl") or {}
        hot, danger = to_float(temp.get("hotTemp")), to_float(temp.get("dangerousTemp"))
        if hot is None and danger is None:
            raise MinerResponseError("GraphQL bosminer.config: no hot or dangerous temperature")
        return TemperatureConfig(hot=hot, danger=danger)

    async def _gql_change_password(self, password: str) -> bool:
        await self._gql_mutation(GQL_SET_PASSWORD, ("bos", "setPassword"), {"password": password})
        self.session.credentials.remember(self.ip, self.family, Credentials(username=self._username,
                                                                            password=password))
        return True

    async def _gql_read_logs(self) -> str:
        lines = dig(await self.graphql(GQL_LOG, {"target": "BOSMINER"}), ("bos", "log"))
        if not isinstance(lines, list):
            raise MinerResponseError("GraphQL bos.log: no lines in the reply")
        return "".join(f"{line}\n" for line in lines if isinstance(line, str))

    async def _gql_factory_reset(self) -> bool:
        if "factory_reset" in self.unavailable():
            raise self.refuse("factory_reset")
        await self._gql_mutation(GQL_FACTORY_RESET, ("bos", "factoryReset"))
        self._gql_cookie = self._luci_cookie = None  # the reset reboots the miner and forgets the password
        return True

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        if self.graphql_release is not None:
            return await self._gql_restart()
        await self.request("PUT", "actions/reboot")
        self._token = None  # the reboot ends the session
        return True

    async def pause(self) -> bool:
        if self.graphql_release is not None:
            return await self._gql_pause()
        return await self.call("PUT", "actions/pause") is True

    async def resume(self) -> bool:
        if self.graphql_release is not None:
            return await self._gql_resume()
        return await self.call("PUT", "actions/resume") is True

    async def set_fault_light(self, on: bool) -> bool:
        if self.graphql_release is not None:
            return await self._gql_set_fault_light(on)
        reply = await self.call("PUT", "actions/locate", json=bool(on))
        return reply is bool(on)

    async def set_power_limit(self, watts: float) -> bool:
        if self.graphql_release is not None:
            return await self._gql_set_power_limit(watts)
        target = round(watts)
        reply = await self.call("PUT", "performance/power-target", json={"watt": target})
        return bool(dig(reply, ("watt",)) == target)

    async def get_pools_config(self) -> list[PoolGroup]:
        """Pool groups as configured; the API does not give passwords back, so they read as 'x'."""
        if self.graphql_release is not None:
            return await self._gql_get_pools_config()
        groups = []
        for group in await self.call("GET", "pools") or []:
            pools = []
            for pool in (group.get("pools") or [])[:3]:
                try:
                    pools.append(Pool(url=pool["url"], username=pool["user"]))
                except (ValidationError, KeyError, TypeError):
                    continue  # a pool our model cannot express (odd scheme): left out rather than guessed
            if pools:
                groups.append(PoolGroup(name=group.get("name") or "default", quota=_quota(group.get("strategy")),
                                        pools=pools))
        return groups

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        if self.graphql_release is not None:
            return await self._gql_set_pools_config(groups)
        body = [{"name": g.name, "load_balance_strategy": {"quota": {"value": g.quota}},
                 "pools": [{"url": p.url, "user": p.username, "password": p.password, "enabled": True}
                           for p in g.pools]} for g in groups]
        reply = await self.call("PUT", "pools/batch", json=body)
        return isinstance(reply, list) and len(reply) == len(groups)

    async def get_fan_config(self) -> FanConfig:
        if self.graphql_release is not None:
            return await self._gql_get_fan_config()
        config = await self.call("GET", "configuration/miner") or {}
        mode = dig(config, ("temperature", "mode"))
        if isinstance(mode, dict) and isinstance(mode.get("manual"), dict):
            ratio = to_float(mode["manual"].get("fan_speed_ratio"))
            if ratio is not None:
                return FanConfig.manual(round(ratio * 100))
        if isinstance(mode, dict) and isinstance(mode.get("auto"), dict):
            auto = mode["auto"]
            idle = auto.get("min_fan_speed")
            return FanConfig.auto(target_temp=degrees(auto.get("target_temperature")),
                                  idle_speed=idle if isinstance(idle, int) else None)
        return FanConfig.auto()  # no cooling section: the firmware's default automatic control

    async def set_fan_config(self, config: FanConfig) -> bool:
        if self.graphql_release is not None:
            return await self._gql_set_fan_config(config)
        if config.mode == "manual":
            assert config.fan_speed is not None  # guaranteed by FanConfig's validation
            body: dict[str, Any] = {"manual": {"fan_speed_ratio": round(config.fan_speed / 100.0, 4)}}
        else:
            auto: dict[str, Any] = {}
            if config.target_temp is not None:
                auto["target_temperature"] = {"degree_c": config.target_temp}
            if config.idle_speed is not None:
                auto["min_fan_speed"] = config.idle_speed
            body = {"auto": auto}
        reply = await self.call("PUT", "cooling/mode", json=body)
        return isinstance(reply, dict) and config.mode in reply

    async def get_temperature_config(self) -> TemperatureConfig:
        """Hot and dangerous temperatures of the automatic cooling mode; the firmware's defaults (its
        constraints) while the mode leaves them unset. Braiins OS has no minimum temperature."""
        if self.graphql_release is not None:
            return await self._gql_get_temperature_config()
        config = await self.call("GET", "configuration/miner") or {}
        auto = dig(config, ("temperature", "mode", "auto"))
        auto = auto if isinstance(auto, dict) else {}
        hot, danger = degrees(auto.get("hot_temperature")), degrees(auto.get("dangerous_temperature"))
        if hot is None or danger is None:
            limits = dig(await self.call("GET", "configuration/constraints") or {}, ("cooling_constraints",))
            limits = limits if isinstance(limits, dict) else {}
            hot = hot if hot is not None else degrees(dig(limits, ("hot_temperature", "default")))
            danger = danger if danger is not None else degrees(dig(limits, ("dangerous_temperature", "default")))
        if hot is None and danger is None:
            raise MinerResponseError("GET configuration/miner: no hot or dangerous temperature")
        return TemperatureConfig(hot=hot, danger=danger)

    async def get_tuning_config(self) -> TuningConfig:
        if self.graphql_release is not None:
            return await self._gql_get_tuning_config()
        config = await self.call("GET", "configuration/miner") or {}
        target = parse_tuner_config(config.get("tuner"))
        if target is None:
            raise MinerResponseError("GET configuration/miner: no tuner target in the reply")
        if target.target_hashrate is not None:
            return TuningConfig.hashrate(target.target_hashrate)
        assert target.target_watts is not None
        return TuningConfig.power(target.target_watts)

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        if self.graphql_release is not None:
            return await self._gql_set_tuning_config(config)
        if config.target_watts is not None:
            return await self.set_power_limit(config.target_watts)
        if config.target_hashrate is not None:
            ths = round(config.target_hashrate.into_unit("TH/s").value, 3)
            reply = await self.call("PUT", "performance/hashrate-target", json={"terahash_per_second": ths})
            return to_float(dig(reply, ("terahash_per_second",))) == ths
        raise self._unsupported(f"set_tuning_config with a named mode ({config.target_mode!r})")

    async def _nominal_watts(self) -> float:
        """The default power target: what scaling percentages are percentages of."""
        constraints = await self.call("GET", "configuration/constraints") or {}
        watt = to_float(dig(constraints, ("tuner_constraints", "power_target", "default", "watt")))
        if watt:
            return watt
        known = lookup_model(self.device.make, self.device.model)
        if known is None or known.nominal_watts is None:
            raise MinerResponseError("no default power target to scale against")
        return known.nominal_watts

    async def get_scaling_config(self) -> ScalingConfig:
        """Dynamic Performance Scaling; steps in watts are read as percent of the default power target."""
        if self.graphql_release is not None:
            raise self.refuse("get_scaling_config")
        nominal = await self._nominal_watts()
        config = await self.call("GET", "configuration/miner") or {}
        dps = config.get("dps")
        if not isinstance(dps, dict):  # never configured: the firmware's defaults
            constraints = await self.call("GET", "configuration/constraints") or {}
            defaults = constraints.get("dps_constraints") or {}
            dps = {"power_step": dig(defaults, ("power_step", "default")),
                   "min_power_target": dig(defaults, ("min_power_target", "default")),
                   "shutdown_enabled": dig(defaults, ("shutdown_enabled", "default")),
                   "shutdown_duration": dig(defaults, ("shutdown_duration", "default"))}
        step = to_float(dig(dps, ("power_step", "watt"))) or 0.0
        minimum = to_float(dig(dps, ("min_power_target", "watt"))) or 0.0
        hours = to_float(dig(dps, ("shutdown_duration", "hours")))
        shutdown = dps.get("shutdown_enabled")
        return ScalingConfig(step=min(100, max(1, round(100 * step / nominal))),
                             minimum=min(100, max(0, round(100 * minimum / nominal))),
                             shutdown=shutdown if isinstance(shutdown, bool) else None, shutdown_duration=hours)

    async def set_scaling_config(self, config: ScalingConfig) -> bool:
        if self.graphql_release is not None:
            raise self.refuse("set_scaling_config")
        nominal = await self._nominal_watts()
        body: dict[str, Any] = {
            "enable": True, "save_action": _SAVE_AND_APPLY,
            "target": {"target": {"powertarget": {
                "power_step": {"watt": round(nominal * config.step / 100)},
                "min_power_target": {"watt": round(nominal * config.minimum / 100)}}}},
        }
        if config.shutdown is not None:
            body["enable_shutdown"] = config.shutdown
        if config.shutdown_duration is not None:
            body["shutdown_duration"] = {"hours": round(config.shutdown_duration)}
        reply = await self.call("PUT", "performance/dps", json=body)
        return isinstance(reply, dict)

    async def change_password(self, password: str) -> bool:
        if self.graphql_release is not None:
            return await self._gql_change_password(password)
        await self.request("PUT", "auth/password", json={"password": password})
        self.session.credentials.remember(self.ip, self.family, Credentials(username=self._username,
                                                                            password=password))
        return True

    async def read_logs(self) -> str:
        if self.graphql_release is not None:
            return await self._gql_read_logs()
        reply = await self._optional("GET", "miner/log/bosminer", "read_logs")
        return reply.text

    async def factory_reset(self) -> bool:
        if self.graphql_release is not None:
            return await self._gql_factory_reset()
        await self._optional("PUT", "actions/factory-reset", "factory_reset")
        self._token = None  # the reset reboots the miner and forgets the password
        return True

    async def upgrade_firmware(self, image: bytes, filename: str) -> bool:
        if self.graphql_release is not None:
            raise self.refuse("upgrade_firmware")
        metadata = {"disable_cleanup": False, "discard_settings": False,
                    "hash": hashlib.sha256(image).hexdigest(), "size": len(image)}
        await self._optional("POST", "upgrade/system-upgrade", "upgrade_firmware",
                             data={"metadata": orjson.dumps(metadata).decode()},
                             files={"data": (filename, image, "application/octet-stream")})
        self._token = None  # the miner reboots into the new image
        return True


__all__ = ["BraiinsBackend", "HttpStatusError", "canonical_model", "model_from_devdetails"]

