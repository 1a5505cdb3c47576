"""Auradine Teraflux stock firmware (FluxOS, running Auradine's GCMiner): a CGMiner-style RPC on 4028 and a
token-protected REST API on 8080.

Identification: the replies' `STATUS[0].Description` names `GCMiner-<version>-<hash>` (2022-2023 releases)
or `FluxOS-<version>-<hash>` (2023-2024; the 2.2.0 captures carry only "2.2.0" there), and `version` has a
`GCMiner` field; the web page on port 80 says "Miner UI". The model is `DEVDETAILS[0].Model` of RPC
`devdetails` (`AT1500`, `AT2880`...), or `IPReport[0].model` when the RPC does not answer.

Reads over the RPC need no login: `version`, `summary` (hash rate in MH/s, uptime), `devs` (one row per
hashboard, `ID` from 1), `asccount` (boards and chips), `pools`. The REST API answers `GET /<command>` with
the same STATUS-wrapped JSON; it wants a `Token` header, got from `POST /token` with
`{"command": "token", "user": ..., "password": ...}` (admin/admin by default) as `Token[0].Token`. REST
reads: `ipreport` (MAC, serials, hostname, firmware, control board), `fan`, `led`, `mode` (operating mode,
power and hash rate targets, sleep), `psu` (figures as text with units: `"58.94W"`), and per hashboard and
chip `temperature`, `voltage`, `frequency`.

Writes are `POST /<command>` with a JSON body carrying `command` and the settings: `led` (`code` 3
locates the miner, 2 is the normal pattern), `mode` (`sleep` on/off; `mode` custom with `tune` power and
`power` watts, or `tune` ths and `ths`; or one of the modes `eco`, `normal`, `turbo`), `updatepools` (up
to three pools, one group), `restart`, `password` (`user`, `old`, `new`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import SecretStr

from asicfleet._errors import AuthenticationError, MinerAPIError, MinerError, MinerResponseError
from asicfleet._session import Session
from asicfleet.backends._base import (
    MAX_BOARDS,
    Backend,
    DataField,
    Probe,
    Source,
    at,
    bounded_count,
    first_row,
    hashrate_from,
    parse_mac,
    parse_text,
    reply_text,
    to_float,
)
from asicfleet.config import Credentials, Pool, PoolGroup, TuningConfig
from asicfleet.data import (
    BoardData,
    ChipData,
    DeviceInfo,
    FanData,
    HashRate,
    MessageSeverity,
    MinerMessage,
    PoolData,
    PoolGroupData,
    TuningTarget,
)
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import HttpReply, decode_json, rpc_call
from asicfleet.transport._rpc import check_status

MAKE = Make.AURADINE.value
RPC_MARKERS = ("GCMINER", "FLUXOS")
WEB_MARKER = "Miner UI"
WEB_PORT = 8080
MAX_POOLS = 3  # updatepools takes at most three pools
# LED codes (`led` Code): what the firmware shows on its two LEDs and why
LED_NORMAL, LED_LOCATE = 2, 3
LED_ERRORS = frozenset({1, 4, 7})  # no power, temperature, control board
# operating modes: ours (TuningConfig's low/normal/high) and the firmware's names for them
MODES = {"low": "eco", "normal": "normal", "high": "turbo"}
MODE_NAMES = {firmware: ours for ours, firmware in MODES.items()}


# ----- pure parsers: replies in, model values out -----------------------------------------------------
def number_with_unit(value: Any) -> float | None:
    """`"58.94W"`, `"4052.00 RPM"`, `"245.00V"` or a plain number -> the number."""
    if isinstance(value, str):
        digits = "".join(c for c in value if c.isdigit() or c in ".-")
        return to_float(digits)
    return to_float(value)


def mhs(value: Any) -> HashRate | None:
    return hashrate_from(value, "MH/s")


def ths(value: Any) -> HashRate | None:
    return hashrate_from(value, "TH/s")


def names_auradine(reply: Any) -> bool:
    upper = reply_text(reply).upper()
    return any(marker in upper for marker in RPC_MARKERS)


def model_from_devdetails(reply: Mapping[str, Any] | None) -> str | None:
    """`DEVDETAILS[0].Model` (`AT1500`) in the catalogue's spelling; None when absent."""
    if reply is None:
        return None
    try:
        raw = first_row(reply, "DEVDETAILS").get("Model")
    except ValueError:
        return None
    if not isinstance(raw, str) or not raw.strip():
        return None
    name = raw.strip().upper()
    known = lookup_model(MAKE, name)
    return known.name if known is not None else name


def _by_board(reply: Mapping[str, Any] | None, section: str) -> dict[int, dict[str, Any]]:
    """Rows of a per-board section keyed by board position (`ID` counts hashboards from 1; ID 0 is the
    control board in `temperature`)."""
    rows: dict[int, dict[str, Any]] = {}
    for row in (reply or {}).get(section) or []:
        if isinstance(row, dict) and isinstance(row.get("ID"), int) and row["ID"] >= 1:
            rows[row["ID"] - 1] = row
    return rows


def _readings(rows: Any, key: str) -> dict[int, float]:
    """{chip or sensor ID: value} from a list like `[{"ID": 0, "Temperature": 45.8}, ...]`."""
    found: dict[int, float] = {}
    for row in rows or []:
        if isinstance(row, dict) and isinstance(row.get("ID"), int):
            value = to_float(row.get(key))
            if value is not None:
                found[row["ID"]] = value
    return found


def _mean(values: Iterable[float]) -> float | None:
    present = [v for v in values if v > 0]
    return round(sum(present) / len(present), 3) if present else None


def parse_hashboards(replies: Mapping[str, Any], board_count: int | None = None,
                     chips_per_board: int | None = None) -> list[BoardData]:
    """Boards from `devs` (rate, temperature, enabled), sized by `asccount`, with serials from `ipreport` and
    per-chip temperature, voltage and frequency when those replies are given (keys `rpc:devs`,
    `rpc:asccount`, `web:ipreport`, `web:temperature`, `web:voltage`, `web:frequency`)."""
    devs = _by_board(replies.get("rpc:devs"), "DEVS")
    temps = _by_board(replies.get("web:temperature"), "Temperature")
    volts = _by_board(replies.get("web:voltage"), "Voltage")
    freqs = _by_board(replies.get("web:frequency"), "Frequency")
    count_reply = replies.get("rpc:asccount")
    counted = first_row(count_reply, "ASCCount") if count_reply is not None else {}
    boards_said = to_float(counted.get("BoardCount"))
    chips_said = to_float(counted.get("AsicCount"))
    if boards_said and chips_said:
        chips_per_board = int(chips_said // boards_said)
    serials: list[Any] = []
    if replies.get("web:ipreport") is not None:
        listed = first_row(replies["web:ipreport"], "IPReport").get("HBSerialNo")
        serials = listed if isinstance(listed, list) else []
    count = bounded_count(max([bounded_count(boards_said, MAX_BOARDS), board_count or 0, len(serials),
                               *(p + 1 for p in (*devs, *temps, *volts, *freqs))], default=0), MAX_BOARDS)
    boards = []
    for position in range(count):
        dev = devs.get(position, {})
        sensors = _readings(temps.get(position, {}).get("BoardTemp"), "Temperature")
        chip_temps = _readings(temps.get(position, {}).get("ChipTemp"), "Temperature")
        chip_volts = _readings(volts.get(position, {}).get("ChipVoltage"), "Voltage")
        chip_freqs = _readings(freqs.get(position, {}).get("ChipFrequency"), "Frequency")
        chips = [ChipData(position=chip, temperature=chip_temps.get(chip), voltage=chip_volts.get(chip),
                          frequency=chip_freqs.get(chip),
                          working=any((r.get(chip) or 0) > 0 for r in (chip_temps, chip_volts, chip_freqs)))
                 for chip in sorted({*chip_temps, *chip_volts, *chip_freqs})]
        enabled = dev.get("Enabled") if isinstance(dev.get("Enabled"), bool) else None
        if enabled is False:
            working: int | None = 0
        elif chips and chips_per_board is not None and len(chips) < chips_per_board:
            working = chips_per_board - sum(1 for c in chips if not c.working)  # a sample of the chips
        elif chips:
            working = sum(1 for c in chips if c.working)
        else:
            working = chips_per_board if enabled else None
        serial = serials[position] if position < len(serials) else None
        boards.append(BoardData(
            position=position,
            hashrate=mhs(dev.get("MHS 5s")),
            board_temperature=to_float(dev.get("Temperature")) or _mean(sensors.values()),
            # the board's coolest sensor sits at the air intake, its hottest at the exhaust
            intake_temperature=min(sensors.values()) if sensors else None,
            outlet_temperature=max(sensors.values()) if sensors else None,
            expected_chips=chips_per_board,
            working_chips=working,
            serial_number=parse_text(serial),
            chips=chips,
            voltage=_mean(chip_volts.values()),
            frequency=_mean(chip_freqs.values()),
            active=enabled if enabled is not None else (position in devs or None),
        ))
    return boards


def parse_fans(reply: Mapping[str, Any]) -> list[FanData]:
    fans = []
    for index, fan in enumerate(reply.get("Fan") or []):
        if isinstance(fan, dict):
            position = fan["ID"] - 1 if isinstance(fan.get("ID"), int) and fan["ID"] >= 1 else index
            fans.append(FanData(position=position, rpm=to_float(fan.get("Speed"))))
    return fans


def parse_psu_fans(row: Mapping[str, Any]) -> list[FanData]:
    fans = []
    for key, value in row.items():
        if key.startswith("FanSpeed") and key[8:].isdigit():
            fans.append(FanData(position=int(key[8:]) - 1, rpm=number_with_unit(value)))
    return sorted(fans, key=lambda f: f.position)


def parse_pools(reply: Mapping[str, Any]) -> list[PoolGroupData]:
    """GCMiner has one pool group (failover by priority)."""
    pools = []
    for index, pool in enumerate(reply.get("POOLS") or []):
        if not isinstance(pool, dict):
            continue
        accepted, rejected = to_float(pool.get("Accepted")), to_float(pool.get("Rejected"))
        pools.append(PoolData(
            position=int(pool["POOL"]) if to_float(pool.get("POOL")) is not None else index,
            url=pool.get("URL") or None,
            user=pool.get("User") or None,
            accepted_shares=int(accepted) if accepted is not None else None,
            rejected_shares=int(rejected) if rejected is not None else None,
            active=pool.get("Stratum Active") if isinstance(pool.get("Stratum Active"), bool) else None,
            alive=str(pool["Status"]).lower() == "alive" if "Status" in pool else None,
        ))
    return [PoolGroupData(name="default", quota=1, pools=pools)]


def led_severity(code: int) -> MessageSeverity:
    if code == LED_LOCATE:
        return MessageSeverity.INFO
    return MessageSeverity.ERROR if code in LED_ERRORS else MessageSeverity.WARNING


def parse_messages(led: Mapping[str, Any]) -> list[MinerMessage]:
    """The LED row says what the miner signals: nothing for the normal pattern, else its code and text."""
    code = to_float(led.get("Code"))
    if code is None or int(code) == LED_NORMAL:
        return []
    message = parse_text(led.get("Msg")) or f"LED code {int(code)}"
    return [MinerMessage(code=int(code), message=message, severity=led_severity(int(code)))]


def parse_light(code: Any) -> bool | None:
    number = to_float(code)
    return None if number is None else int(number) == LED_LOCATE


def parse_sleep(value: Any) -> bool | None:
    """`Mode[0].Sleep`: "off" is mining, "on" is asleep."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, str) and value.strip().lower() in ("on", "off"):
        return value.strip().lower() == "off"
    return None


def parse_tuning_target(mode: Mapping[str, Any]) -> TuningTarget:
    name = parse_text(mode.get("Mode"))
    return TuningTarget(target_watts=to_float(mode.get("Power")), target_hashrate=ths(mode.get("Ths")),
                        target_mode=name.lower() if name else None)


def pools_payload(groups: Sequence[PoolGroup]) -> list[dict[str, str]]:
    """The `updatepools` list; refuses what the firmware cannot hold before anything is sent."""
    if len(groups) != 1:
        raise ValueError(f"Auradine miners hold one pool group, got {len(groups)}")
    pools = groups[0].pools
    if not pools:
        raise ValueError("give at least one pool: an Auradine miner without pools does not mine")
    if len(pools) > MAX_POOLS:
        raise ValueError(f"Auradine miners hold at most {MAX_POOLS} pools, got {len(pools)}")
    return [{"url": p.url, "user": p.username, "pass": p.password or "x"} for p in pools]


class HttpStatusError(MinerAPIError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Auradine(Backend):
    family: ClassVar[str] = "auradine"
    firmware: ClassVar[str] = "Stock"  # pyasic calls it "Stock"; pyasic-rs "Auradine Stock"
    PRIORITY: ClassVar[int] = 50  # GCMiner/FluxOS markers are specific
    RPC_BATCHABLE: ClassVar[bool] = False  # no capture shows GCMiner answering joined commands: sent apart
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("admin", "admin"),)

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at("web:ipreport", "IPReport", 0, "mac", parse=parse_mac),
        DataField.SERIAL_NUMBER: at("web:ipreport", "IPReport", 0, "SerialNo", parse=parse_text),
        DataField.HOSTNAME: at("web:ipreport", "IPReport", 0, "hostname", parse=parse_text),
        DataField.FIRMWARE_VERSION: [at("web:ipreport", "IPReport", 0, "version", parse=parse_text),
                                     at("rpc:version", "VERSION", 0, "GCMiner", parse=parse_text)],
        DataField.API_VERSION: at("rpc:version", "VERSION", 0, "API", parse=parse_text),
        DataField.CONTROL_BOARD_VERSION: at("web:ipreport", "IPReport", 0, "InternalType", parse=parse_text),
        DataField.HASHRATE: at("rpc:summary", "SUMMARY", 0, "MHS 5s", parse=mhs),
        DataField.EXPECTED_HASHRATE: at("web:mode", "Mode", 0, "Ths", parse=ths),
        DataField.FANS: at("web:fan", parse=parse_fans),
        DataField.PSU_FANS: at("web:psu", "PSU", 0, parse=parse_psu_fans),
        DataField.WATTAGE: at("web:psu", "PSU", 0, "PowerIn", parse=number_with_unit),
        DataField.WATTAGE_LIMIT: at("web:mode", "Mode", 0, "Power", parse=to_float),
        DataField.UPTIME: at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=to_float),
        DataField.POOLS: at("rpc:pools", parse=parse_pools),
        DataField.MESSAGES: at("web:led", "LED", 0, parse=parse_messages),
        DataField.IS_MINING: [at("web:mode", "Mode", 0, "Sleep", parse=parse_sleep),
                              at("rpc:summary", "SUMMARY", 0, "MHS 5s", parse=lambda v: (to_float(v) or 0) > 0)],
        DataField.LIGHT_FLASHING: at("web:led", "LED", 0, "Code", parse=parse_light),
        DataField.TUNING_TARGET: at("web:mode", "Mode", 0, parse=parse_tuning_target),
        # HASHBOARDS is resolved in `sources()`: it needs the model's board shape.
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._token: str | None = None
        self._login_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if any(isinstance(reply, dict) and names_auradine(reply) for reply in probe.rpc.values()):
            return True
        return probe.web is not None and WEB_MARKER in probe.web.text

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        reply = probe.rpc_reply("devdetails")
        if reply is None:
            try:
                reply = await rpc_call(probe.ip, "devdetails", settings=session.settings)
            except MinerError:
                if probe.web is None or WEB_MARKER not in probe.web.text:
                    raise
                return await cls._identify_by_web(probe.ip, session)  # the RPC is off: ask the REST API
        if not names_auradine(reply) and not names_auradine(probe.rpc_reply("version")):
            return None  # found by its web page, but the RPC is some other firmware's
        model = model_from_devdetails(reply)
        return cls.device_info(MAKE, model, cls.firmware) if model is not None else None

    @classmethod
    async def _identify_by_web(cls, ip: str, session: Session) -> DeviceInfo | None:
        """The model from `ipreport` (a token needed), for a miner whose RPC does not answer."""
        backend = cls(ip, DeviceInfo(make=MAKE, model="", firmware=cls.firmware), session)
        report = first_row(await backend.web("ipreport"), "IPReport")
        model = model_from_devdetails({"DEVDETAILS": [{"Model": report.get("model")}]})
        return cls.device_info(MAKE, model, cls.firmware) if model is not None else None

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = super().sources(wanted)
        if DataField.HASHBOARDS in wanted:
            hw = self.device.hardware
            every = ("rpc:devs", "rpc:asccount", "web:ipreport", "web:temperature", "web:voltage", "web:frequency")
            out[DataField.HASHBOARDS] = [
                at(every, parse=lambda r: parse_hashboards(r, hw.board_count, hw.chips_per_board)),
                at(("rpc:devs", "rpc:asccount"), parse=lambda r: parse_hashboards(r, hw.board_count,
                                                                                   hw.chips_per_board)),
            ]
        return out

    # ----- REST transport ---------------------------------------------------------------------
    async def _login_with(self, creds: Credentials) -> str:
        reply = await self.http("POST", "/token", port=WEB_PORT, json={
            "command": "token", "user": creds.username, "password": creds.password.get_secret_value()})
        try:
            body = reply.json()
        except MinerError:
            body = None
        if reply.status in (401, 403) or (isinstance(body, dict) and _status_of(body) == "E"):
            raise AuthenticationError(f"{self.ip}: Auradine refused the login of {creds.username!r}")
        if reply.status != 200 or not isinstance(body, dict):
            raise MinerResponseError(f"POST /token: HTTP {reply.status}")
        try:
            token = first_row(body, "Token").get("Token")
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise MinerResponseError("POST /token: the reply holds no token")
        return token

    def _lock(self) -> asyncio.Lock:
        """One lock per event loop (a handle may be used from successive `asyncio.run` calls)."""
        loop = asyncio.get_running_loop()
        if self._login_lock is None or self._login_lock[0] is not loop:
            self._login_lock = (loop, asyncio.Lock())
        return self._login_lock[1]

    async def _ensure_token(self) -> str:
        async with self._lock():  # parallel reads share one login
            if self._token is None:
                self._token = await self.with_credentials(self._login_with)
            return self._token

    async def web(self, command: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """`GET /<command>` (or `POST` with `settings`) with the token; logs in again once when it lapsed."""
        for attempt in range(2):
            token = await self._ensure_token()
            if settings is None:
                reply = await self.http("GET", f"/{command}", port=WEB_PORT, headers={"Token": token})
            else:
                reply = await self.http("POST", f"/{command}", port=WEB_PORT, headers={"Token": token},
                                        json={"command": command, **settings})
            if reply.status != 401:
                break
            self._token = None  # expired, or the miner rebooted: a fresh login, then one more try
            if attempt == 1:
                raise AuthenticationError(f"{self.ip}: /{command}: the token was refused")
        return self._checked(reply, command)

    @staticmethod
    def _checked(reply: HttpReply, command: str) -> dict[str, Any]:
        if not 200 <= reply.status < 300:
            raise HttpStatusError(f"/{command}: HTTP {reply.status}", reply.status)
        result: dict[str, Any] = check_status(decode_json(reply.body), f"/{command}")
        return result

    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            return await self.web(command[4:])
        return await super().send(command)

    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Logs in once before the REST reads go out in parallel; a refused login fails them all."""
        web = [c for c in commands if c.startswith("web:")]
        results: dict[str, Any] = {}
        if web:
            try:
                await self._ensure_token()
            except MinerError as exc:
                results.update({c: exc for c in web})
                commands = [c for c in commands if c not in results]
        results.update(await super().send_many(commands))
        return results

    # ----- controls ---------------------------------------------------------------------------
    async def set_fault_light(self, on: bool) -> bool:
        await self.web("led", {"code": LED_LOCATE if on else LED_NORMAL})
        return True

    async def restart(self) -> bool:
        await self.web("restart", {})
        self._token = None  # the reboot ends the token
        return True

    async def pause(self) -> bool:
        await self.web("mode", {"sleep": "on"})
        return True

    async def resume(self) -> bool:
        await self.web("mode", {"sleep": "off"})
        return True

    async def set_power_limit(self, watts: float) -> bool:
        if watts <= 0:
            raise ValueError(f"a power limit must be > 0 W, got {watts}")
        await self.web("mode", {"mode": "custom", "tune": "power", "power": round(watts)})
        return True

    async def get_tuning_config(self) -> TuningConfig:
        """The operating mode: eco/normal/turbo as low/normal/high; a custom mode as its power target (the
        `mode` reply does not say whether a custom mode tunes for power or for hash rate; power is shown)."""
        mode = first_row(await self.web("mode"), "Mode")
        name = str(mode.get("Mode") or "").lower()
        if name in MODE_NAMES:
            return TuningConfig.mode(MODE_NAMES[name])
        watts, rate = to_float(mode.get("Power")), to_float(mode.get("Ths"))
        if watts:
            return TuningConfig.power(watts)
        if rate:
            return TuningConfig.hashrate(HashRate(value=rate, unit="TH/s"))
        raise MinerResponseError(f"{self.ip}: mode {name!r} without a power or hash rate target")

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        """A mode (low/normal/high, or the firmware's eco/normal/turbo), a power target or a hash rate target."""
        if config.target_mode is not None:
            wanted = config.target_mode.lower()
            firmware_name = MODES.get(wanted, wanted if wanted in MODE_NAMES else None)
            if firmware_name is None:
                raise ValueError(f"Auradine has no mode {config.target_mode!r}; it has {', '.join(MODES)}")
            await self.web("mode", {"mode": firmware_name})
            return True
        if config.target_watts is not None:
            return await self.set_power_limit(config.target_watts)
        assert config.target_hashrate is not None
        terahashes = round(config.target_hashrate.into_unit("TH/s").value, 1)
        await self.web("mode", {"mode": "custom", "tune": "ths", "ths": terahashes})
        return True

    async def change_password(self, password: str) -> bool:
        """`POST /password` with the current login as `old`; the new login is remembered for this miner."""
        if not password:
            raise ValueError("give a new password: an empty one is refused")

        async def attempt(creds: Credentials) -> bool:
            token = await self._login_with(creds)  # proves `old` before the change is sent
            reply = await self.http("POST", "/password", port=WEB_PORT, headers={"Token": token}, json={
                "command": "password", "user": creds.username, "old": creds.password.get_secret_value(),
                "new": password})
            self._checked(reply, "password")
            self.session.credentials.remember(self.ip, self.family,
                                              Credentials(username=creds.username, password=SecretStr(password)))
            self._token = None  # the change ends the tokens given under the old password
            return True

        return await self.with_credentials(attempt, remember=False)  # the new login is remembered instead

    async def get_pools_config(self) -> list[PoolGroup]:
        """The configured pools; the reply shows no passwords, so they read as 'x'."""
        reply = await self.rpc("pools")
        pools = [Pool(url=p["URL"], username=p["User"], password="x") for p in reply.get("POOLS") or []
                 if isinstance(p, dict) and p.get("URL") and p.get("User")]
        return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        payload = pools_payload(groups)
        await self.web("updatepools", {"pools": payload})
        return True


def _status_of(body: Mapping[str, Any]) -> str | None:
    status = body.get("STATUS")
    if isinstance(status, list) and status and isinstance(status[0], dict):
        value = status[0].get("STATUS")
        return value if isinstance(value, str) else None
    return None
