"""Proto Rig running Proto OS: a JSON REST API under `/api/v1/` on port 80, a bearer token for most routes.

Identification: the dashboard page at `/` is titled "Proto OS" (pyasic-rs's signal); `GET
/api/v1/system` (no login needed) gives `system-info.model` ("Rig") and `os.version`.

Login: `POST /api/v1/auth/login {"password"}` returns `{"access_token"}` (a password only; none is set
until the owner sets one, so the default is empty); the token goes in `Authorization: Bearer` for
every other route, and a 401 means log in again.

Reads: `system`, `network` (MAC, host name), `hardware` (per-slot hashboards with their ASIC counts and
serials, fans, PSUs: a Rig is a hot-swappable chassis, so its shape comes from here, not from the
catalogue), `mining` (status, ideal hash rate, power target, uptime), `telemetry?level=miner,
hashboard,psu` (`{value, unit}` figures: hash rate, power, per-board temperatures), `pools`,
`cooling`, `errors`.

Controls: reboot, `mining/stop|start`, `PUT mining/target` (the power target, whole watts), `PUT
cooling` (Auto towards a temperature, or Manual at a speed), `POST pools` (the whole list by
priority), `POST system/locate` (lights the LED for a while; it cannot be turned off early),
`PUT auth/password`, `GET system/logs`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from asicfleet._errors import (
    AuthenticationError,
    MinerAPIError,
    MinerError,
    MinerResponseError,
    UnsupportedControlError,
)
from asicfleet._session import Session
from asicfleet.backends._base import Backend, DataField, Probe, Source, at, dig, hashrate_from, parse_text, to_float
from asicfleet.config import Credentials, FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import (
    BoardData,
    DeviceInfo,
    FanData,
    HashRate,
    MessageSeverity,
    MinerData,
    MinerHardware,
    MinerMessage,
    PoolData,
    PoolGroupData,
    TuningTarget,
)
from asicfleet.hardware import Make
from asicfleet.transport import HttpReply, decode_json

MAKE = Make.PROTO.value
API = "/api/v1/"
WEB_MARKER = "Proto OS"
SYSTEM, NETWORK, HARDWARE, MINING = "web:system", "web:network", "web:hardware", "web:mining"
POOLS, COOLING, ERRORS, TELEMETRY = "web:pools", "web:cooling", "web:errors", "web:telemetry"
TELEMETRY_LEVELS = "miner,hashboard,psu"
PUBLIC = frozenset({SYSTEM})  # the one read that needs no token
MINING_STATES = ("Mining", "DegradedMining")


# ----- parsers ---------------------------------------------------------------------------------------
def measured(value: Any) -> float | None:
    """A telemetry `{value, unit}` figure's number (or a plain number)."""
    return to_float(value.get("value")) if isinstance(value, Mapping) else to_float(value)


def parse_hashrate(value: Any) -> HashRate | None:
    """A telemetry hash rate `{value, unit}`, in TH/s."""
    if not isinstance(value, Mapping):
        return hashrate_from(value, "TH/s")
    unit = str(value.get("unit") or "TH/s")
    return hashrate_from(value.get("value"), unit if unit.endswith("H/s") else "TH/s")


def ghs(value: Any) -> HashRate | None:
    return hashrate_from(value, "GH/s")


def hardware_shape(reply: Any) -> MinerHardware | None:
    """The chassis as `hardware` lists it: populated slots, their ASIC count when all agree, and the fans."""
    boards = dig(reply, ("hardware-info", "hashboards-info"))
    if not isinstance(boards, list) or not boards:
        return None
    counts = {to_float(b.get("mining_asic_count")) for b in boards if isinstance(b, Mapping)}
    per_board = counts.pop() if len(counts) == 1 else None  # mixed boards: no one count per board
    fans = dig(reply, ("hardware-info", "fans-info"))
    return MinerHardware(board_count=len(boards), chips_per_board=int(per_board) if per_board else None,
                         fans=len(fans) if isinstance(fans, list) else None)


def parse_hashboards(replies: Mapping[str, Any]) -> list[BoardData]:
    """One board per populated slot (`hardware`), with its telemetry matched by serial, else by index."""
    hardware = dig(replies[HARDWARE], ("hardware-info", "hashboards-info"))
    telemetry = dig(replies[TELEMETRY], ("hashboards",))
    mining = dig(replies[MINING], ("mining-status",))
    boards_info = hardware if isinstance(hardware, list) else []
    readings = [t for t in telemetry if isinstance(t, Mapping)] if isinstance(telemetry, list) else []
    mining = mining if isinstance(mining, Mapping) else {}
    ideal = to_float(mining.get("ideal_hashrate_ghs"))
    share = ideal / max(1, len(boards_info)) if ideal is not None else None
    mining_now = mining.get("status") in MINING_STATES
    out = []
    for index, info in enumerate(b for b in boards_info if isinstance(b, Mapping)):
        slot = int(to_float(info.get("slot")) or index + 1)
        serial = parse_text(info.get("hb_sn"))
        reading = next((t for t in readings if serial and t.get("serial_number") == serial), None) \
            or next((t for t in readings if to_float(t.get("index")) == slot - 1), None) or {}
        chips = to_float(info.get("mining_asic_count"))
        rate = parse_hashrate(reading.get("hashrate")) if reading else None
        found = reading.get("temperature")
        temperature: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        out.append(BoardData(
            position=slot - 1, hashrate=rate, expected_hashrate=ghs(share) if share is not None else None,
            working_chips=int(chips) if chips is not None else None,
            expected_chips=int(chips) if chips is not None else None, serial_number=serial,
            board_temperature=to_float(temperature.get("average")),
            intake_temperature=to_float(temperature.get("inlet")),
            outlet_temperature=to_float(temperature.get("outlet")), voltage=measured(reading.get("voltage")),
            active=(rate.value > 0) if rate is not None else mining_now,
        ))
    return out


def parse_fans(fans: Any) -> list[FanData]:
    if not isinstance(fans, list):
        return []
    return [FanData(position=int(to_float(f.get("slot")) or i + 1) - 1, rpm=to_float(f.get("rpm")))
            for i, f in enumerate(fans) if isinstance(f, Mapping)]


def parse_pools(pools: Any) -> list[PoolGroupData]:
    if not isinstance(pools, list):
        return []
    rows = sorted((p for p in pools if isinstance(p, Mapping) and parse_text(p.get("url"))),
                  key=lambda p: to_float(p.get("priority")) or 0)
    out = []
    for position, row in enumerate(rows):
        accepted, rejected = to_float(row.get("accepted")), to_float(row.get("rejected"))
        status = str(row.get("connection_status") or row.get("status") or "")
        out.append(PoolData(position=position, url=str(row["url"]).strip(), user=parse_text(row.get("user")),
                            active=status == "Active", alive=status == "Active" if status else None,
                            accepted_shares=int(accepted) if accepted is not None else None,
                            rejected_shares=int(rejected) if rejected is not None else None))
    return [PoolGroupData(name="default", quota=1, pools=out)] if out else []


def parse_messages(errors: Any) -> list[MinerMessage]:
    """`errors`: `{source, slot, error_code, message, timestamp}` per active fault."""
    if not isinstance(errors, list):
        return []
    out = []
    for item in errors:
        if not isinstance(item, Mapping):
            continue
        code = str(item.get("error_code") or "").strip()
        where = f"{item.get('source') or 'rig'} {item.get('slot', '')}".strip()
        text = str(item.get("message") or "error")
        out.append(MinerMessage(message=f"{where}: {text}" + (f" ({code})" if code and not code.isdigit() else ""),
                                code=int(code) if code.isdigit() else 0, severity=MessageSeverity.ERROR,
                                timestamp=int(stamp) if (stamp := to_float(item.get("timestamp"))) else None))
    return out


def parse_uptime(value: Any) -> timedelta | None:
    seconds = to_float(value)
    return timedelta(seconds=int(seconds)) if seconds is not None else None


def fan_config_of(status: Mapping[str, Any]) -> FanConfig:
    if status.get("fan_mode") == "Manual":
        return FanConfig.manual(int(to_float(status.get("speed_percentage")) or 0))
    return FanConfig.auto(target_temp=to_float(status.get("target_temperature_c")))


def fan_payload(config: FanConfig) -> dict[str, Any]:
    if config.mode == "manual":
        return {"mode": "Manual", "speed_percentage": config.fan_speed}
    if config.idle_speed is not None:
        raise UnsupportedControlError("Proto OS's automatic cooling takes a target temperature only, no minimum speed")
    if config.target_temp is None:
        raise ValueError("Proto OS's automatic cooling needs a target temperature")
    return {"mode": "Auto", "target_temperature_c": config.target_temp}


class Proto(Backend):
    family: ClassVar[str] = "proto"
    firmware: ClassVar[str] = "Stock"  # pyasic-rs: "Proto Stock"
    PRIORITY: ClassVar[int] = 65
    RPC_BATCHABLE: ClassVar[bool] = False  # no RPC
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("", ""),)  # no password until one is set
    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at(NETWORK, "network-info", "mac", parse=lambda v: parse_text(v) and str(v).upper()),
        DataField.SERIAL_NUMBER: [at(HARDWARE, "hardware-info", "cb-info", "serial_number", parse=parse_text),
                                  at(SYSTEM, "system-info", "cb_sn", parse=parse_text)],
        DataField.HOSTNAME: [at(NETWORK, "network-info", "hostname", parse=parse_text),
                             at(SYSTEM, "system-info", "os", "hostname", parse=parse_text)],
        DataField.FIRMWARE_VERSION: at(SYSTEM, "system-info", "os", "version", parse=parse_text),
        DataField.API_VERSION: at(SYSTEM, "system-info", "web_server", "version", parse=parse_text),
        DataField.CONTROL_BOARD_VERSION: at(SYSTEM, "system-info", "board", parse=parse_text),
        DataField.HASHRATE: [at(TELEMETRY, "miner", "hashrate", parse=parse_hashrate),
                             at(MINING, "mining-status", "hashrate_ghs", parse=ghs)],
        DataField.EXPECTED_HASHRATE: at(MINING, "mining-status", "ideal_hashrate_ghs", parse=ghs),
        DataField.HASHBOARDS: at((HARDWARE, TELEMETRY, MINING), parse=parse_hashboards),
        DataField.FANS: at(COOLING, "cooling-status", "fans", parse=parse_fans),
        DataField.WATTAGE: [at(TELEMETRY, "miner", "power", parse=measured),
                            at(MINING, "mining-status", "power_usage_watts", parse=to_float)],
        DataField.WATTAGE_LIMIT: at(MINING, "mining-status", "power_target_watts", parse=to_float),
        DataField.UPTIME: [at(MINING, "mining-status", "reboot_uptime_s", parse=parse_uptime),
                           at(SYSTEM, "system-info", "uptime_seconds", parse=parse_uptime)],
        DataField.POOLS: at(POOLS, "pools", parse=parse_pools),
        DataField.MESSAGES: at(ERRORS, parse=parse_messages),
        DataField.IS_MINING: at(MINING, "mining-status", "status",
                                parse=lambda v: v in MINING_STATES if isinstance(v, str) else None),
        DataField.TUNING_TARGET: at(MINING, "mining-status", "power_target_watts",
                                    parse=lambda v: TuningTarget(target_watts=w) if (w := to_float(v)) else None),
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._token: str | None = None

    def finalize(self, data: MinerData, replies: Mapping[str, Any]) -> MinerData:
        """A Rig is a hot-swappable chassis, so the catalogue holds no shape for it: the expected hardware
        (and with it the expected chips) is what this unit's `hardware` reply lists."""
        data = super().finalize(data, replies)
        if data.device_info.hardware.total_chips is None:
            shape = hardware_shape(replies.get(HARDWARE))
            if shape is not None:
                data.device_info = data.device_info.model_copy(update={"hardware": shape})
        return data

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        return probe.web is not None and WEB_MARKER in probe.web.text

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        reply = await session.http.request("GET", probe.ip, API + "system")
        info = dig(_json(reply, "GET system"), ("system-info",))
        if not isinstance(info, Mapping):
            return None
        model = parse_text(info.get("model"))
        if version := parse_text(dig(info, ("os", "version"))):
            probe.learned["firmware_version"] = version
        return cls.device_info(MAKE, model, cls.firmware) if model else None

    # ----- transport --------------------------------------------------------------------------
    async def _login_with(self, creds: Credentials) -> str:
        reply = await self.http("POST", API + "auth/login", json={"password": creds.password.get_secret_value()})
        if reply.status in (400, 401, 403):
            raise AuthenticationError(f"{self.ip}: Proto OS refused the password (HTTP {reply.status})")
        token = dig(_json(reply, "POST auth/login"), ("access_token",))
        if not isinstance(token, str) or not token:
            raise MinerResponseError("POST auth/login: no access_token in the reply")
        return token

    async def _ensure_token(self) -> str:
        if self._token is None:
            self._token = await self.with_credentials(self._login_with)
        return self._token

    async def request(self, method: str, route: str, *, locked: bool = True, **kwargs: Any) -> Any:
        """One API call, its JSON decoded; a `locked` route carries the token and logs in again once on a 401."""
        for _ in range(2 if locked else 1):
            headers = {"Authorization": f"Bearer {await self._ensure_token()}"} if locked else None
            reply = await self.http(method, API + route, headers=headers, **kwargs)
            if reply.status != 401 or not locked:
                return _json(reply, f"{method} {route}")
            self._token = None  # lapsed, or the rig rebooted
        raise AuthenticationError(f"{method} {route}: the token was refused")

    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            route = command[4:]
            params = {"level": TELEMETRY_LEVELS} if command == TELEMETRY else None
            return await self.request("GET", route, locked=command not in PUBLIC, params=params)
        return await super().send(command)

    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Logs in once before the reads that need the token go out in parallel; a refused login fails
        only those (`system` needs none)."""
        locked = [c for c in commands if c not in PUBLIC]
        results: dict[str, Any] = {}
        if locked:
            try:
                await self._ensure_token()
            except MinerError as exc:
                results.update({c: exc for c in locked})
                commands = [c for c in commands if c not in results]
        results.update(await super().send_many(commands))
        return results

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        await self.request("POST", "system/reboot")
        self._token = None  # the reboot forgets every token
        return True

    async def pause(self) -> bool:
        await self.request("POST", "mining/stop")
        return True

    async def resume(self) -> bool:
        await self.request("POST", "mining/start")
        return True

    async def set_fault_light(self, on: bool) -> bool:
        """`locate` lights the LED for a while; it turns itself off and cannot be turned off early."""
        if not on:
            raise UnsupportedControlError("Proto OS's locate LED turns itself off; it cannot be turned off early")
        await self.request("POST", "system/locate")
        return True

    async def set_power_limit(self, watts: float) -> bool:
        await self.request("PUT", "mining/target", json={"power_target_watts": round(watts)})
        return True

    async def power_limit_held(self, watts: float) -> float:
        return float(round(watts))  # the target is whole watts

    async def change_password(self, password: str) -> bool:
        await self.request("PUT", "auth/password", json={"password": password})
        self._token = None  # the change ends every session
        self.session.credentials.remember(self.ip, self.family, Credentials(username="", password=password))
        return True

    async def read_logs(self) -> str:
        content = dig(await self.request("GET", "system/logs"), ("logs", "content"))
        if isinstance(content, list):
            return "\n".join(str(line) for line in content)
        return content if isinstance(content, str) else ""

    async def get_pools_config(self) -> list[PoolGroup]:
        """The pools by priority; the API never shows their passwords (read as "")."""
        rows = dig(await self.request("GET", "pools"), ("pools",))
        groups = parse_pools(rows)
        pools = [Pool(url=p.url, username=p.user or "", password="") for g in groups for p in g.pools if p.url]
        return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        pools = [pool for group in groups for pool in group.pools]
        if not pools:
            raise ValueError("Proto OS needs at least one pool")
        payload = [{"name": f"Pool {i + 1}", "url": p.url, "username": p.username, "password": p.password,
                    "priority": i} for i, p in enumerate(pools)]
        await self.request("POST", "pools", json=payload)
        return True

    async def get_fan_config(self) -> FanConfig:
        status = dig(await self.request("GET", "cooling"), ("cooling-status",))
        if not isinstance(status, Mapping):
            raise MinerResponseError(f"{self.ip}: GET cooling holds no cooling-status")
        return fan_config_of(status)

    async def set_fan_config(self, config: FanConfig) -> bool:
        await self.request("PUT", "cooling", json=fan_payload(config))
        return True

    async def get_tuning_config(self) -> TuningConfig:
        watts = to_float(dig(await self.request("GET", "mining/target"), ("power_target_watts",)))
        if not watts:
            raise MinerResponseError(f"{self.ip}: GET mining/target holds no power_target_watts")
        return TuningConfig.power(watts)

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        if config.target_watts is None:
            raise UnsupportedControlError("Proto OS tunes to a power target only")
        return await self.set_power_limit(config.target_watts)


def _json(reply: HttpReply, what: str) -> Any:
    if reply.status in (401, 403):
        raise AuthenticationError(f"{what}: HTTP {reply.status}")
    if not 200 <= reply.status < 300:
        detail = ""
        try:
            body = decode_json(reply.body)
            detail = f": {body.get('error')}" if isinstance(body, dict) and body.get("error") else ""
        except MinerError:
            pass
        raise MinerAPIError(f"{what}: HTTP {reply.status}{detail}")
    return decode_json(reply.body)


__all__ = ["Proto", "fan_config_of", "parse_hashboards", "parse_messages", "parse_pools"]
