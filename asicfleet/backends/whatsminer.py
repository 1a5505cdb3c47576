"""Whatsminer (MicroBT) stock firmware, "BTMiner": the RPC API on 4028 and API v3 on 4433.

Three API generations exist and each firmware serves the ones of its age:
- v1 (API "whatsminer v1.x", firmware before mid 2022) and v2 (API 2.0.x): CGMiner-style JSON on 4028
  (`summary`, `devs`, `pools`, `devdetails`) next to btminer's own commands (`get_version`,
  `get_miner_info`, `get_psu`, `get_error_code`, `status`) that answer in a flat form
  (`{"STATUS": "S", "Code": 131, "Msg": {...}}`) and cannot be joined with `+`.
  Writes are encrypted: `get_token` gives salt/newsalt/time, the key is the md5-crypt of the admin
  password with the salt, the request `{"enc": 1, "data": base64(AES-256-ECB(sha256(key), json))}`.
- v3 (firmware from 2024-11 on): length-prefixed JSON on 4433 (`get.device.info`,
  `get.miner.status`), writes signed with a token derived from the account password and a salt.
  Those firmwares still answer the 4028 API, so `get_version` there tells the generation apart.

Firmware name: pyasic calls it "Stock" (StockFirmware), pyasic-rs "WhatsMiner Stock"; we say "Stock".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from passlib.hash import md5_crypt as md5_crypt_hash  # libpass, the maintained passlib
from pydantic import SecretStr

from asicfleet._errors import (
    AuthenticationError,
    MinerAPIError,
    MinerConnectionError,
    MinerError,
    MinerResponseError,
    MinerTimeoutError,
)
from asicfleet._session import Session
from asicfleet.backends._base import (
    MAX_LISTED,
    Backend,
    DataField,
    Probe,
    Source,
    at,
    bounded_count,
    hashrate_from,
    reply_text,
    to_float,
)
from asicfleet.config import Credentials, Pool, PoolGroup, TuningConfig
from asicfleet.data import (
    BoardData,
    DeviceInfo,
    FanData,
    HashRate,
    MessageSeverity,
    MinerData,
    MinerMessage,
    PoolData,
    PoolGroupData,
    TuningTarget,
)
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import (
    TransportSettings,
    close_quietly,
    decode_json,
    open_tcp,
    read_exact_capped,
    rpc_call,
    rpc_raw,
)

ApiGeneration = Literal["v1", "v2", "v3"]

V3_PORT = 4433
V3_FIRST_FIRMWARE_DATE = 20241101  # firmware built on or after this date speaks API v3 (as pyasic/pyasic-rs decide)

# ----- md5-crypt, AES and the two token schemes ---------------------------------------------------
def md5_crypt(password: str, salt: str) -> str:
    """The FreeBSD MD5 crypt (`$1$salt$hash`) of `password`; btminer keys its write API with it.
    As crypt(3), only the salt's first 8 characters count; a salt outside crypt's alphabet
    (`./0-9A-Za-z`) raises ValueError."""
    return str(md5_crypt_hash.using(salt=salt[:8]).hash(password))


def crypt_hash(password: str, salt: str) -> str:
    """Only the hash part of `md5_crypt` (what btminer calls host_passwd_md5 / host_sign)."""
    return md5_crypt(password, salt).rsplit("$", 1)[1]


def aes_key(secret: str | bytes) -> bytes:
    """AES-256 key: the SHA-256 of the secret (a crypt hash string for v2, a token digest for v3)."""
    return hashlib.sha256(secret.encode() if isinstance(secret, str) else secret).digest()


def aes_encrypt(key: bytes, plain: bytes) -> str:
    """AES-256-ECB with zero padding, base64 without line breaks (btminer's envelope)."""
    padded = plain + b"\x00" * (-len(plain) % 16)
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def aes_decrypt(key: bytes, text: str) -> bytes:
    """Inverse of `aes_encrypt`; raises ValueError on bad base64 or a length that is not whole blocks."""
    try:
        raw = base64.b64decode(text, validate=False)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not base64: {exc}") from None
    if not raw or len(raw) % 16:
        raise ValueError("ciphertext is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    return (decryptor.update(raw) + decryptor.finalize()).rstrip(b"\x00")


def v2_token(password: str, salt: str, issued: str, newsalt: str) -> tuple[str, str]:
    """(host_passwd_md5, host_sign) for a `get_token` answer: the AES secret and the request's token."""
    host_passwd = crypt_hash(password, salt)
    return host_passwd, crypt_hash(host_passwd + issued, newsalt)


def v3_token(command: str, password: str, salt: str, timestamp: int) -> tuple[str, bytes]:
    """(token, digest) signing an API v3 write: sha256(cmd+password+salt+ts), base64, first 8 chars.

    The raw digest is also the AES key of an encrypted parameter (`set.miner.pools`).
    """
    digest = hashlib.sha256(f"{command}{password}{salt}{timestamp}".encode()).digest()
    return base64.b64encode(digest).decode()[:8], digest


# ----- identification helpers -----------------------------------------------------------------------
_MODEL = re.compile(r"^\s*(M\d{2}[A-Z]?\+{0,2})(?:[_.\s-]?V[A-Z]{0,2}\d+)?", re.IGNORECASE)


def whatsminer_model(reported: str) -> str:
    """The table's model from the firmware's string: 'M50S_VJ40', 'M50S.VJ40', 'M31SV10' -> 'M50S', 'M31S'.

    The part after the base model is the board revision (chip bin); it is dropped when the family itself
    is catalogued, and kept (as the catalogue spells that bin) when only the bins are.
    """
    match = _MODEL.match(reported)
    family = match.group(1).upper() if match else reported.strip()
    if lookup_model(Make.WHATSMINER, family) is None:
        # a family catalogued only by its chip bins (M31S V40...): the bin's own row, when there is one
        known = lookup_model(Make.WHATSMINER, reported)
        if known is not None:
            return known.name
    return family


def firmware_date(fw_ver: Any) -> int | None:
    """20240624 from '20240624.18.REL'; None when the version does not start with a date."""
    head = str(fw_ver or "").strip("'\" ").split(".", 1)[0]
    return int(head) if len(head) == 8 and head.isdigit() else None


def api_generation(get_version: Mapping[str, Any]) -> ApiGeneration:
    """Which API a firmware speaks, from its `get_version` reply."""
    msg = get_version.get("Msg")
    msg = msg if isinstance(msg, dict) else {}
    date = firmware_date(msg.get("fw_ver"))
    if date is not None and date >= V3_FIRST_FIRMWARE_DATE:
        return "v3"
    api = str(msg.get("api_ver", "")).lower().replace("whatsminer", "").strip().lstrip("v")
    return "v1" if api.startswith("1.") else "v2"


# ----- API v3 transport ------------------------------------------------------------------------------
V3_AUTH_CODE = -4  # a write whose account/token the miner refuses
_V2_AUTH_CODES = frozenset({23, 135, 137})  # undecipherable request / token check failed / bad base64
_V2_WRITE_DISABLED = 45  # "permission denied": the write API is switched off (WhatsMinerTool)
_V3_ACCOUNTS = ("super", "user", "admin")


def v3_frame(request: Mapping[str, Any]) -> bytes:
    body = orjson.dumps(request)
    return struct.pack("<I", len(body)) + body


async def v3_request(ip: str, request: Mapping[str, Any], *, settings: TransportSettings) -> dict[str, Any]:
    """One API v3 exchange on 4433: a little-endian u32 length and JSON, each way. Checks `code`."""
    command = str(request.get("cmd"))
    reader, writer = await open_tcp(ip, settings.ports(V3_PORT), settings.connect_timeout)
    try:
        writer.write(v3_frame(request))
        await writer.drain()
        async with asyncio.timeout(settings.read_timeout):
            (length,) = struct.unpack("<I", await reader.readexactly(4))
            body = await read_exact_capped(reader, length, settings.max_reply_bytes,
                                           budget=settings.reply_budget_bytes, what=f"{command}: reply")
    except TimeoutError:
        raise MinerTimeoutError(f"{command}: no complete reply within {settings.read_timeout:g}s") from None
    except asyncio.IncompleteReadError as exc:
        raise MinerResponseError(f"{command}: reply cut short ({len(exc.partial)} bytes)") from None
    except OSError as exc:
        raise MinerConnectionError(f"{command}: {exc.strerror or exc}") from None
    finally:
        await close_quietly(writer)
    reply = decode_json(body)
    if not isinstance(reply, dict):
        raise MinerResponseError(f"{command}: expected a JSON object, got {type(reply).__name__}")
    code = reply.get("code")
    if code != 0:
        message = reply.get("msg") if isinstance(reply.get("msg"), str) else "error"
        error = AuthenticationError if code == V3_AUTH_CODE else MinerAPIError
        raise error(f"{command}: {message} (code {code})")
    return reply


# ----- command keys --------------------------------------------------------------------------------
SUMMARY, DEVS, POOLS = "rpc:summary", "rpc:devs", "rpc:pools"
GET_VERSION, GET_MINER_INFO, GET_PSU = "rpc:get_version", "rpc:get_miner_info", "rpc:get_psu"
GET_ERROR_CODE, STATUS = "rpc:get_error_code", "rpc:status"
V3_INFO = "v3:get.device.info"
V3_SUMMARY, V3_POOLS, V3_EDEVS = "v3:get.miner.status|summary", "v3:get.miner.status|pools", "v3:get.miner.status|edevs"
_JOINABLE = frozenset({"summary", "devs", "edevs", "pools", "devdetails"})  # btminer joins only CGMiner-style ones


# ----- pure parsers ---------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    text = str(value).strip().strip("'") if value is not None else ""
    return text or None


def _mac(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if text else None


def _api_version(value: Any) -> str | None:
    text = _text(value)
    return text.lower().replace("whatsminer", "").strip().lstrip("v") if text else None


def _ths(value: Any) -> HashRate | None:
    return hashrate_from(value, "TH/s")


def _ghs(value: Any) -> HashRate | None:
    number = to_float(value)
    return hashrate_from(number, "GH/s") if number else None  # 0 means "unknown" on these firmwares


def _seconds(value: Any) -> timedelta | None:
    number = to_float(value)
    return timedelta(seconds=int(number)) if number is not None and number >= 0 else None


def _watts(value: Any) -> float | None:
    number = to_float(value)
    return number if number is not None and number >= 0 else None  # -1 is "not measured"


def _first_mhs(entry: Mapping[str, Any], keys: Sequence[str]) -> HashRate | None:
    for key in keys:
        rate = hashrate_from(entry.get(key), "MH/s")
        if rate is not None:
            return rate
    return None


def _summary_hashrate(summary: Mapping[str, Any]) -> HashRate | None:
    """The current rate: 'HS RT' (real time, MH/s) where given, else the shortest average reported."""
    return _first_mhs(summary, ("HS RT", "MHS 5s", "MHS 1m", "MHS 5m", "MHS av"))


def _summary_fans(summary: Mapping[str, Any]) -> list[FanData] | None:
    fans = [FanData(position=i, rpm=rpm) for i, key in enumerate(("Fan Speed In", "Fan Speed Out"))
            if (rpm := to_float(summary.get(key))) is not None]
    return fans or None


def _one_psu_fan(value: Any) -> list[FanData] | None:
    rpm = to_float(value)
    return [FanData(position=0, rpm=rpm)] if rpm is not None else None


def _v2_boards(devs: Sequence[Mapping[str, Any]]) -> list[BoardData]:
    boards = []
    for index, dev in enumerate(devs):
        position = dev.get("ASC", dev.get("Slot", index))
        rate = _first_mhs(dev, ("MHS 1m", "MHS 5s", "MHS av"))
        boards.append(BoardData(
            position=int(position),
            hashrate=rate,
            expected_hashrate=_ghs(dev.get("Factory GHS")),
            board_temperature=to_float(dev.get("Temperature")),
            intake_temperature=to_float(dev.get("Chip Temp Min")),
            outlet_temperature=to_float(dev.get("Chip Temp Max")),
            working_chips=int(chips) if (chips := to_float(dev.get("Effective Chips"))) is not None else None,
            serial_number=_text(dev.get("PCB SN")),
            frequency=to_float(dev.get("Chip Frequency", dev.get("Frequency"))),
            active=str(dev.get("Status", "Alive")) == "Alive" and rate is not None and rate.value > 0,
        ))
    return boards


def _v2_pools(entries: Sequence[Mapping[str, Any]]) -> list[PoolGroupData]:
    pools = [PoolData(
        position=index,
        url=_text(entry.get("URL")),
        user=_text(entry.get("User")),
        accepted_shares=int(a) if (a := to_float(entry.get("Accepted"))) is not None else None,
        rejected_shares=int(r) if (r := to_float(entry.get("Rejected"))) is not None else None,
        active=bool(entry["Stratum Active"]) if "Stratum Active" in entry else None,
        alive=str(entry["Status"]).lower() == "alive" if "Status" in entry else None,
    ) for index, entry in enumerate(entries)]
    return [PoolGroupData(name="default", quota=1, pools=pools)]


# Descriptions of btminer error codes, by exact code first and then by the code's hundred.
_ERROR_TEXT: dict[int, str] = {
    110: "intake fan speed error", 111: "exhaust fan speed error",
    120: "intake fan speed deviates too much", 121: "exhaust fan speed deviates too much",
    130: "intake fan speed far off target", 131: "exhaust fan speed far off target",
    140: "fan speed too high",
    200: "no power supply found", 201: "power supply and configuration do not match",
    202: "power supply output voltage error", 203: "power supply protecting: environment too hot",
    206: "power supply output voltage error", 218: "power supply input voltage too low",
    264: "power supply transfer error", 265: "power supply unknown error", 266: "power supply unknown error",
    267: "power supply watchdog protection", 270: "power supply input over-voltage warning",
    329: "control board temperature sensor error", 350: "board 0 temperature too high",
    351: "board 1 temperature too high", 352: "board 2 temperature too high",
    530: "board 0 not found", 531: "board 1 not found", 532: "board 2 not found",
    600: "environment temperature too high", 610: "environment too hot for high performance mode",
    2010: "all pools are disabled", 2020: "pool 0 connection failed", 2021: "pool 1 connection failed",
    2022: "pool 2 connection failed", 2030: "high reject rate on the pool",
}
_ERROR_AREA = {1: "fan", 2: "power supply", 3: "temperature", 4: "hash board", 5: "hash board",
               6: "environment", 7: "control board", 8: "firmware check", 20: "pool", 21: "pool"}


def error_text(code: int) -> str:
    """A short description of a btminer error code (own wording; an area when the code is not listed)."""
    if code in _ERROR_TEXT:
        return _ERROR_TEXT[code]
    area = _ERROR_AREA.get(code // 100)
    return f"{area} error" if area else "error"


def _error_time(value: Any) -> int | None:
    """Unix seconds from the firmware's 'YYYY-mm-dd HH:MM:SS' (taken as UTC, as the miners keep UTC)."""
    try:
        return int(datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None


def _coded_messages(entries: Iterable[Any]) -> list[MinerMessage]:
    """`[{"218": "2024-06-15 10:30:00"}, ...]` (v2) or with a `reason` (v3), or bare codes, to messages."""
    messages: list[MinerMessage] = []
    for entry in entries:
        items = entry.items() if isinstance(entry, dict) else [(entry, None)]
        reason = _text(entry.get("reason")) if isinstance(entry, dict) else None
        for key, when in items:
            if key == "reason" or not str(key).strip().isdigit():
                continue
            code = int(str(key).strip())
            messages.append(MinerMessage(code=code, message=reason or error_text(code),
                                         severity=MessageSeverity.ERROR, timestamp=_error_time(when)))
    return messages


def _summary_messages(summary: Mapping[str, Any]) -> list[MinerMessage]:
    """Older firmware lists errors in the summary: 'Error Code Count' and 'Error Code 0..n-1'."""
    count = bounded_count(summary.get("Error Code Count"), MAX_LISTED)
    codes = [to_float(summary.get(f"Error Code {i}")) for i in range(count)]
    return _coded_messages(int(c) for c in codes if c is not None)


def _v2_is_mining(status: Mapping[str, Any]) -> bool | None:
    for key in ("mineroff", "btmineroff"):  # v2 says 'mineroff', v1 'btmineroff'
        if key in status:
            return str(status[key]).lower() != "true"
    return None


_MODES = {"low": "low", "normal": "normal", "high": "high", "0": "low", "1": "normal", "2": "high"}


def _tuning(mode: Any, limit: Any) -> TuningTarget | None:
    """Low/High power modes are presets; in Normal mode the power limit is the target."""
    named = _MODES.get(str(mode).strip().lower()) if mode is not None else None
    if named in ("low", "high"):
        return TuningTarget(target_mode=named)
    watts = to_float(limit)
    if watts is not None and watts > 0:
        return TuningTarget(target_watts=watts)
    return TuningTarget(target_mode=named) if named else None


def _v2_tuning(summary: Mapping[str, Any]) -> TuningTarget | None:
    return _tuning(summary.get("Power Mode"), summary.get("Power Limit"))


def _v3_msg(reply: Any, *path: str) -> Any:
    value = reply.get("msg") if isinstance(reply, dict) else None
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    return value


def _v3_boards(replies: Mapping[str, Any]) -> list[BoardData]:
    """Boards from edevs, with serials from get.device.info and board temperatures from the summary."""
    edevs = _v3_msg(replies[V3_EDEVS], "edevs") or []
    miner = _v3_msg(replies.get(V3_INFO), "miner") or {}
    board_temps = _v3_msg(replies.get(V3_SUMMARY), "summary", "board-temperature") or []
    boards = []
    for index, dev in enumerate(edevs):
        position = int(to_float(dev.get("id")) or index)
        rate = _ths(dev.get("hash-realtime", dev.get("hash-average")))
        boards.append(BoardData(
            position=position,
            hashrate=rate,
            expected_hashrate=_ths(dev.get("factory-hash")),
            board_temperature=to_float(board_temps[position]) if position < len(board_temps) else None,
            intake_temperature=to_float(dev.get("chip-temp-min")),
            outlet_temperature=to_float(dev.get("chip-temp-max")),
            working_chips=int(chips) if (chips := to_float(dev.get("effective-chips"))) is not None else None,
            serial_number=_text(miner.get(f"pcbsn{position}")),
            frequency=to_float(dev.get("freq")),
            active=str(dev.get("status", "alive")).lower() == "alive" and rate is not None and rate.value > 0,
        ))
    return boards


def _v3_fans(summary: Mapping[str, Any]) -> list[FanData] | None:
    fans = [FanData(position=i, rpm=rpm) for i, key in enumerate(("fan-speed-in", "fan-speed-out"))
            if (rpm := to_float(summary.get(key))) is not None]
    return fans or None


def _v3_pools(entries: Sequence[Mapping[str, Any]]) -> list[PoolGroupData]:
    pools = [PoolData(
        position=int(p) if (p := to_float(entry.get("pool-priority"))) is not None else index,
        url=_text(entry.get("url")),
        user=_text(entry.get("account")),
        active=bool(entry["stratum-active"]) if "stratum-active" in entry else None,
        alive=str(entry["status"]).lower() == "alive" if "status" in entry else None,
    ) for index, entry in enumerate(entries)]
    return [PoolGroupData(name="default", quota=1, pools=pools)]


def _v3_tuning(replies: Mapping[str, Any]) -> TuningTarget | None:
    return _tuning(_v3_msg(replies[V3_INFO], "power", "mode"), _v3_msg(replies[V3_SUMMARY], "summary", "power-limit"))


def _summary(*path: str, parse: Any = None) -> Source:
    return at(SUMMARY, "SUMMARY", 0, *path, parse=parse)


def _v3_summary(*path: str, parse: Any = None) -> Source:
    return at(V3_SUMMARY, "msg", "summary", *path, parse=parse)


# Where each field lives, per API generation (first source is what get_data sends; later ones are fallbacks).
_SHARED_V1_V2: dict[DataField, Source | Sequence[Source]] = {
    DataField.FIRMWARE_VERSION: [at(GET_VERSION, "Msg", "fw_ver", parse=_text),
                                 _summary("Firmware Version", parse=_text)],
    DataField.API_VERSION: at(GET_VERSION, "Msg", "api_ver", parse=_api_version),
    DataField.HASHRATE: _summary(parse=_summary_hashrate),
    DataField.EXPECTED_HASHRATE: _summary("Factory GHS", parse=_ghs),
    DataField.HASHBOARDS: at(DEVS, "DEVS", parse=_v2_boards),
    DataField.FANS: _summary(parse=_summary_fans),
    DataField.WATTAGE: [_summary("Power", parse=_watts), _summary("Power_RT", parse=_watts)],
    DataField.WATTAGE_LIMIT: [_summary("Power Limit", parse=_watts),
                              at(STATUS, "Msg", "power_limit_set", parse=_watts)],
    DataField.UPTIME: _summary("Elapsed", parse=_seconds),
    # the inlet sensor: the coolant's temperature on hydro models (kept for those only, see finalize)
    DataField.FLUID_TEMPERATURE: _summary("Env Temp", parse=to_float),
    DataField.POOLS: at(POOLS, "POOLS", parse=_v2_pools),
    DataField.IS_MINING: at(STATUS, "Msg", parse=_v2_is_mining),
    DataField.TUNING_TARGET: _summary(parse=_v2_tuning),
}
V1_DATA: dict[DataField, Source | Sequence[Source]] = {
    **_SHARED_V1_V2,
    DataField.MAC: _summary("MAC", parse=_mac),
    DataField.CONTROL_BOARD_VERSION: _summary("CB Platform", parse=_text),
    DataField.PSU_FANS: [_summary("Power Fanspeed", parse=_one_psu_fan),
                         at(GET_PSU, "Msg", "fan_speed", parse=_one_psu_fan)],
    DataField.MESSAGES: _summary(parse=_summary_messages),
}
V2_DATA: dict[DataField, Source | Sequence[Source]] = {
    **_SHARED_V1_V2,
    DataField.MAC: [at(GET_MINER_INFO, "Msg", "mac", parse=_mac), _summary("MAC", parse=_mac)],
    DataField.SERIAL_NUMBER: at(GET_MINER_INFO, "Msg", "minersn", parse=_text),
    DataField.HOSTNAME: at(GET_MINER_INFO, "Msg", "hostname", parse=_text),
    DataField.CONTROL_BOARD_VERSION: [at(GET_VERSION, "Msg", "platform", parse=_text),
                                      _summary("CB Platform", parse=_text)],
    DataField.PSU_FANS: [at(GET_PSU, "Msg", "fan_speed", parse=_one_psu_fan),
                         _summary("Power Fanspeed", parse=_one_psu_fan)],
    DataField.MESSAGES: [at(GET_ERROR_CODE, "Msg", "error_code", parse=_coded_messages),
                         _summary(parse=_summary_messages)],
    DataField.LIGHT_FLASHING: at(GET_MINER_INFO, "Msg", "ledstat", parse=lambda v: str(v) != "auto"),
}
V3_DATA: dict[DataField, Source | Sequence[Source]] = {
    DataField.MAC: at(V3_INFO, "msg", "network", "mac", parse=_mac),
    DataField.SERIAL_NUMBER: at(V3_INFO, "msg", "miner", "miner-sn", parse=_text),
    DataField.HOSTNAME: at(V3_INFO, "msg", "network", "hostname", parse=_text),
    DataField.FIRMWARE_VERSION: at(V3_INFO, "msg", "system", "fwversion", parse=_text),
    DataField.API_VERSION: at(V3_INFO, "msg", "system", "api", parse=_text),
    DataField.CONTROL_BOARD_VERSION: [at(V3_INFO, "msg", "system", "control-board-version", parse=_text),
                                      at(V3_INFO, "msg", "system", "platform", parse=_text)],
    DataField.HASHRATE: _v3_summary("hash-realtime", parse=_ths),
    DataField.EXPECTED_HASHRATE: _v3_summary("factory-hash", parse=lambda v: _ths(v) if to_float(v) else None),
    DataField.HASHBOARDS: [Source((V3_EDEVS, V3_INFO, V3_SUMMARY), parse=_v3_boards),
                           Source((V3_EDEVS, V3_INFO), parse=_v3_boards), Source((V3_EDEVS,), parse=_v3_boards)],
    DataField.FANS: _v3_summary(parse=_v3_fans),
    DataField.PSU_FANS: at(V3_INFO, "msg", "power", "fanspeed", parse=_one_psu_fan),
    DataField.WATTAGE: _v3_summary("power-realtime", parse=_watts),
    DataField.WATTAGE_LIMIT: _v3_summary("power-limit", parse=_watts),
    DataField.UPTIME: _v3_summary("elapsed", parse=_seconds),
    DataField.FLUID_TEMPERATURE: _v3_summary("environment-temperature", parse=to_float),
    DataField.POOLS: at(V3_POOLS, "msg", "pools", parse=_v3_pools),
    DataField.MESSAGES: at(V3_INFO, "msg", "error-code", parse=_coded_messages),
    DataField.IS_MINING: at(V3_INFO, "msg", "miner", "working", parse=lambda v: str(v).lower() == "true"),
    DataField.LIGHT_FLASHING: at(V3_INFO, "msg", "system", "ledstatus", parse=lambda v: str(v) != "auto"),
    DataField.TUNING_TARGET: Source((V3_INFO, V3_SUMMARY), parse=_v3_tuning),
}
_DATA_BY_API: dict[ApiGeneration, Mapping[DataField, Source | Sequence[Source]]] = {
    "v1": V1_DATA, "v2": V2_DATA, "v3": V3_DATA}


def _pool_groups(entries: Iterable[tuple[Any, Any]]) -> list[PoolGroup]:
    """Pool settings from (url, user) pairs; the API never reveals pool passwords, so they read as 'x'."""
    pools = [Pool(url=str(url), username=str(user)) for url, user in entries if _text(url) and _text(user)]
    return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []


class WhatsMinerBackend(Backend):
    """Whatsminer stock firmware (BTMiner), API v1/v2 on 4028 and v3 on 4433, picked per miner.

    The generation is read once per handle from `get_version` (its firmware date), which every
    generation answers on 4028; the first `get_data` carries that request.
    """

    family = "whatsminer"
    firmware = "Stock"
    PRIORITY = 50  # a 307-to-https web root and btminer's flat 'invalid cmd' are specific signals
    DATA = V2_DATA
    DEFAULT_CREDENTIALS = (("admin", "admin"), ("super", "super"))  # v2 API password; v3 'super' account

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None, *,
                 api: ApiGeneration | None = None) -> None:
        super().__init__(ip, device, session)
        self.api: ApiGeneration | None = api
        self._v3_salt: str | None = None

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        web = probe.web
        if web is not None:
            location = web.headers.get("location", "")
            if (web.status == 307 and location.lower().startswith("https://")) or "/cgi-bin/luci" in web.text:
                return True
        reply = probe.rpc.get("version")
        text = (str(reply) if isinstance(reply, Exception) else reply_text(reply)) if reply else ""
        # btminer refuses `version` in its own flat form: {"STATUS":"E","Code":14,"Msg":"invalid cmd"}
        return bool(re.search(r"btminer|bitmicro|whatsminer|invalid cmd \(code 14\)", text, re.IGNORECASE))

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        settings = session.settings
        try:
            version = await rpc_call(probe.ip, "get_version", settings=settings)
        except MinerError:
            return None
        msg = version.get("Msg")
        if not isinstance(msg, dict) or "fw_ver" not in msg:
            return None  # not btminer
        probe.learned["api"] = api_generation(version)
        firmware_version = str(msg.get("fw_ver") or "").strip("'\" ")
        if firmware_version:
            probe.learned["firmware_version"] = firmware_version
        reported: Any = None
        if probe.learned["api"] == "v3":
            with contextlib.suppress(MinerError, LookupError, TypeError):
                info = await v3_request(probe.ip, {"cmd": "get.device.info", "param": "miner"}, settings=settings)
                reported = info["msg"]["miner"]["type"]
        if not reported:  # v1/v2, or a v3 firmware whose 4433 did not answer: 4028 still knows the model
            with contextlib.suppress(MinerError, LookupError, TypeError):
                details = await rpc_call(probe.ip, "devdetails", settings=settings)
                reported = details["DEVDETAILS"][0]["Model"]
        model = whatsminer_model(str(reported)) if reported else "Unknown"
        return cls.device_info(Make.WHATSMINER.value, model, cls.firmware)

    @classmethod
    def from_identification(cls, ip: str, device: DeviceInfo, session: Session,
                            learned: Mapping[str, Any]) -> WhatsMinerBackend:
        api = learned.get("api")
        backend = cls(ip, device, session, api=api if api in ("v1", "v2", "v3") else None)
        backend.learned = dict(learned)
        return backend

    def adopt(self, fresh: Backend) -> None:
        super().adopt(fresh)
        if isinstance(fresh, WhatsMinerBackend) and fresh.api is not None:
            self.api = fresh.api
            self._v3_salt = None

    def unavailable(self) -> dict[str, str]:
        """API v3 (firmware from 2024-11) has no password change we can make; the older APIs have."""
        if self.api == "v3":
            return {"change_password": "Whatsminer API v3 (firmware from 2024-11 on) has no password change "
                                       f"over the API; this one runs {self.firmware_version or 'API v3'}"}
        if self.api is None:
            return {"change_password": "the firmware's API generation was not identified"}
        return {}

    # ----- sending ----------------------------------------------------------------------------
    async def v3(self, command: str, param: Any = None) -> dict[str, Any]:
        request: dict[str, Any] = {"cmd": command}
        if param is not None:
            request["param"] = param
        return await v3_request(self.ip, request, settings=self.session.settings)

    async def send(self, command: str) -> Any:
        if command.startswith("v3:"):
            name, _, param = command[3:].partition("|")
            return await self.v3(name, param or None)
        return await super().send(command)

    def joinable(self, command: str) -> bool:
        """The CGMiner-style reads join (`summary+devs+pools`); btminer's own commands go one by one."""
        return command.startswith("rpc:") and command[4:] in _JOINABLE

    async def detect_api(self) -> tuple[ApiGeneration, dict[str, Any]]:
        """The API generation (cached), with the `get_version` reply when it was read just now."""
        if self.api is not None:
            return self.api, {}
        version = await self.rpc("get_version")
        self.api = api_generation(version)
        return self.api, {GET_VERSION: version}

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        table = _DATA_BY_API[self.api or "v2"]
        out: dict[DataField, list[Source]] = {}
        for name in wanted:
            declared = table.get(name)
            if declared is not None:
                out[name] = [declared] if isinstance(declared, Source) else list(declared)
        return out

    async def get_data(self, fields: Iterable[DataField] | None = None,
                       exclude: Iterable[DataField] = ()) -> MinerData:
        excluded = set(exclude)
        wanted = [f for f in (fields if fields is not None else DataField) if f not in excluded]
        try:
            _, replies = await self.detect_api()
        except MinerError as exc:
            return self.extract({GET_VERSION: exc}, wanted)
        pending = sorted(self.commands_for(wanted) - replies.keys())
        replies.update(await self.send_many(pending))
        return self.extract(replies, wanted)

    def extract(self, replies: Mapping[str, Any], wanted: Iterable[DataField] | None = None) -> MinerData:
        if self.api is None:  # parsing captured replies: the replies say which generation they are
            version = replies.get(GET_VERSION)
            if any(key.startswith("v3:") for key in replies):
                self.api = "v3"
            elif isinstance(version, dict):
                self.api = api_generation(version)
        return super().extract(replies, wanted)

    def finalize(self, data: MinerData, replies: Mapping[str, Any]) -> MinerData:
        """Boards the firmware did not list are added as inactive; expected chips come from the table."""
        hardware = self.device.hardware
        listed = {board.position for board in data.hashboards}
        if hardware.board_count and data.hashboards:
            data.hashboards.extend(BoardData(position=i, active=False)
                                   for i in range(hardware.board_count) if i not in listed)
            data.hashboards.sort(key=lambda board: board.position)
        for board in data.hashboards:
            if board.expected_chips is None:
                board.expected_chips = hardware.chips_per_board
        return super().finalize(data, replies)

    # ----- writes -----------------------------------------------------------------------------
    async def _v2_write_once(self, creds: Credentials, command: str, **params: Any) -> dict[str, Any]:
        """One encrypted btminer write on 4028 with one login, decrypting the answer; raises on a refusal."""
        token = (await self.rpc("get_token")).get("Msg")
        if not isinstance(token, dict) or not {"salt", "newsalt", "time"} <= token.keys():
            raise MinerResponseError(f"get_token: unexpected reply {token!r}")
        try:
            secret, sign = v2_token(creds.password.get_secret_value(), str(token["salt"]), str(token["time"]),
                                    str(token["newsalt"]))
        except ValueError as exc:  # a salt no crypt(3) accepts
            raise MinerResponseError(f"get_token: {exc}") from exc
        key = aes_key(secret)
        body = orjson.dumps({"cmd": command, **params, "token": sign})
        payload = orjson.dumps({"enc": 1, "data": aes_encrypt(key, body)})
        reply = decode_json(await rpc_raw(self.ip, command, settings=self.session.settings, payload=payload))
        if isinstance(reply, dict) and isinstance(reply.get("enc"), str):
            try:
                reply = orjson.loads(aes_decrypt(key, reply["enc"]))
            except (ValueError, orjson.JSONDecodeError) as exc:
                raise MinerResponseError(f"{command}: undecipherable reply ({exc})") from None
        if not isinstance(reply, dict):
            raise MinerResponseError(f"{command}: expected a JSON object")
        if reply.get("STATUS") not in ("S", "I"):
            code, message = reply.get("Code"), reply.get("Msg", "error")
            if code in _V2_AUTH_CODES:
                raise AuthenticationError(f"{command}: refused the API password ({message}, code {code})")
            hint = " (the write API is off: enable it with WhatsMinerTool)" if code == _V2_WRITE_DISABLED else ""
            raise MinerAPIError(f"{command}: {message} (code {code}){hint}")
        return reply

    async def _v2_write(self, command: str, **params: Any) -> dict[str, Any]:
        return await self.with_credentials(lambda creds: self._v2_write_once(creds, command, **params))

    async def _v3_write(self, command: str, param: Any = None) -> dict[str, Any]:
        """One signed API v3 write on 4433 (`set.miner.pools` carries its parameter encrypted)."""
        if self._v3_salt is None:
            salt = _v3_msg(await self.v3("get.device.info", "salt"), "salt")
            if not isinstance(salt, str):
                raise MinerResponseError("get.device.info: no salt in the reply")
            self._v3_salt = salt
        salt = self._v3_salt

        async def attempt(creds: Credentials) -> dict[str, Any]:
            account = creds.username if creds.username in _V3_ACCOUNTS else "super"
            stamp = int(time.time())
            token, digest = v3_token(command, creds.password.get_secret_value(), salt, stamp)
            request: dict[str, Any] = {"cmd": command, "ts": stamp, "account": account, "token": token}
            if param is not None:
                request["param"] = aes_encrypt(digest, orjson.dumps(param)) if command == "set.miner.pools" else param
            return await v3_request(self.ip, request, settings=self.session.settings)

        return await self.with_credentials(attempt, first=lambda c: c.username == "super")  # the v3 write account

    async def _read(self, *commands: str) -> dict[str, Any]:
        """Reads `commands` (keys as in DATA), raising the first failure."""
        replies = await self.send_many(commands)
        for key in commands:
            if isinstance(replies.get(key), BaseException):
                raise replies[key]
        return replies

    # ----- controls -------------------------------------------------------------------------
    async def restart(self) -> bool:
        """Reboots the miner (it answers first, then drops off the network for a while)."""
        api, _ = await self.detect_api()
        if api == "v3":
            await self._v3_write("set.system.reboot")
        else:
            await self._v2_write("reboot")
        return True

    async def pause(self) -> bool:
        api, _ = await self.detect_api()
        if api == "v3":
            await self._v3_write("set.miner.service", "stop")
        else:
            await self._v2_write("power_off", respbefore="true")
        return True

    async def resume(self) -> bool:
        api, _ = await self.detect_api()
        if api == "v3":
            await self._v3_write("set.miner.service", "start")
        else:
            await self._v2_write("power_on")
        return True

    async def set_fault_light(self, on: bool) -> bool:
        """On: the red LED blinks (1 s period); off: the LED returns to showing the miner's state."""
        api, _ = await self.detect_api()
        blink = {"color": "red", "period": 1000, "duration": 500, "start": 0}
        if api == "v3":
            await self._v3_write("set.system.led", [blink] if on else "auto")
        elif on:
            await self._v2_write("set_led", **blink)
        else:
            await self._v2_write("set_led", param="auto")
        return True

    async def set_power_limit(self, watts: float) -> bool:
        if watts <= 0:
            raise ValueError(f"a power limit must be positive, not {watts}")
        api, _ = await self.detect_api()
        if api == "v3":
            await self._v3_write("set.miner.power_limit", int(watts))
        else:
            await self._v2_write("adjust_power_limit", power_limit=str(int(watts)))
        return True

    async def change_password(self, password: str) -> bool:
        """Changes the API (admin) password; btminer takes at most 8 letters, digits or underscores."""
        if not re.fullmatch(r"\w{1,8}", password, re.ASCII):
            raise ValueError("a Whatsminer API password is 1 to 8 letters, digits or underscores")
        api, _ = await self.detect_api()
        if api == "v3":
            raise self._unsupported("change_password over API v3")
        used: list[Credentials] = []

        async def from_old(creds: Credentials) -> dict[str, Any]:
            used.append(creds)
            return await self._v2_write_once(creds, "update_pwd", old=creds.password.get_secret_value(), new=password)

        await self.with_credentials(from_old)
        new = Credentials(username=used[-1].username, password=SecretStr(password))
        self.session.credentials.remember(self.ip, self.family, new)
        return True

    async def factory_reset(self) -> bool:
        """Restores factory settings (pools, power mode, LED) and reboots."""
        api, _ = await self.detect_api()
        if api == "v3":
            await self._v3_write("set.system.factory_reset")
        else:
            await self._v2_write("factory_reset")
        return True

    async def get_pools_config(self) -> list[PoolGroup]:
        api, _ = await self.detect_api()
        if api == "v3":
            entries = _v3_msg((await self._read(V3_POOLS))[V3_POOLS], "pools") or []
            return _pool_groups((e.get("url"), e.get("account")) for e in entries)
        entries = (await self._read(POOLS))[POOLS].get("POOLS", [])
        return _pool_groups((e.get("URL"), e.get("User")) for e in entries)

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """Whatsminers hold one group of up to three pools, tried in order."""
        if len(groups) != 1:
            raise ValueError(f"a Whatsminer takes exactly one pool group, not {len(groups)}")
        pools = groups[0].pools
        api, _ = await self.detect_api()
        if api == "v3":
            await self._v3_write("set.miner.pools", [
                {"pool": p.url, "worker": p.username, "passwd": p.password} for p in pools])
            return True
        params: dict[str, str] = {}
        for number in (1, 2, 3):
            pool = pools[number - 1] if number <= len(pools) else None
            params[f"pool{number}"] = pool.url if pool else ""
            params[f"worker{number}"] = pool.username if pool else ""
            params[f"passwd{number}"] = pool.password if pool else ""
        await self._v2_write("update_pools", **params)
        return True

    async def get_tuning_config(self) -> TuningConfig:
        api, _ = await self.detect_api()
        if api == "v3":
            target = _v3_tuning(await self._read(V3_INFO, V3_SUMMARY))
        else:
            target = _v2_tuning((await self._read(SUMMARY))[SUMMARY]["SUMMARY"][0])
        if target is None:
            raise MinerResponseError("the miner reports neither a power mode nor a power limit")
        if target.target_watts is not None:
            return TuningConfig.power(target.target_watts)
        return TuningConfig.mode(target.target_mode or "normal")

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        """A power target sets the power limit in Normal mode; modes 'low'/'normal'/'high' pick the preset."""
        if config.target_hashrate is not None:
            raise self._unsupported("set_tuning_config with a hash rate target")
        api, _ = await self.detect_api()
        if config.target_watts is not None:
            await self.set_power_limit(config.target_watts)
            mode = "normal"
        else:
            mode = str(config.target_mode).lower()
            if mode not in ("low", "normal", "high"):
                raise ValueError(f"Whatsminer power modes are low, normal and high, not {config.target_mode!r}")
        if api == "v3":
            await self._v3_write("set.miner.power_mode", mode)
        else:
            await self._v2_write(f"set_{mode}_power")
        return True
