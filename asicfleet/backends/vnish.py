"""VNish (the AnthillOS web UI over its "xminer-api") on Antminer hardware: the web API under `/api/v1/`.

Facts, from VNish's OpenAPI specification (1.2.6, 1.2.7, 1.3.4 in shared/fixtures/asic-rs/meta/vnish) and
as pyasic and asic-rs use it:

- Identification: the web page names `AnthillOS`; the RPC on 4028 (bmminer-compatible, kept by VNish)
  names `VNISH`. The model is `GET /api/v1/info` -> `miner` (`Antminer S19`), the version `fw_version`.
- No login for `info`, `status`, `summary` (its login is optional), `perf-summary`, `find-miner`.
  `POST unlock {"pw": password}` returns `{"token": ...}` (403 for a wrong password); the token goes in
  `Authorization: Bearer <token>` for `settings`, `autotune/presets`, `mining/*` and `system/reboot`.
  VNish has no user name: the credential's password is the web password (default `admin`).
- Reads: `info` (MAC, hostname, serial, version, platform = control board, system uptime as `H:MM` or
  `N days, H:MM`), `chains/factory-info` (each board's serial), `summary` (`miner.hr_realtime` and
  per-chain figures in `hr_measure`, GH/s for SHA-256; `power_consumption` in W; fans; pools, the
  firmware's own DevFee pool included), `status` (`miner_state`, `find_miner`: the locate LED),
  `settings` (`miner.overclock.preset`: a preset name, watts or `disabled`; `miner.cooling.mode`).
- Controls: `POST settings {"password": {"current", "pw"}}` changes the web password; `find-miner` toggles the
  locate LED (it takes no body and answers `{"on": bool}`), so the state is read first; `mining/stop` /
  `mining/start` (pause, resume); `system/reboot` (restart); `POST settings {"miner": {"pools": [...]}}` and
  `{"miner": {"cooling": {"mode": ...}}}` (fans); a power limit is the highest preset at or below it, written
  as `miner.overclock.preset` (presets come from `autotune/presets`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from asicfleet._errors import (
    AuthenticationError,
    MinerAPIError,
    MinerError,
    MinerResponseError,
    UnsupportedControlError,
)
from asicfleet._session import Session
from asicfleet.backends._base import (
    MAX_BOARDS,
    Backend,
    DataField,
    Probe,
    Source,
    at,
    bounded_count,
    dig,
    hashrate_from,
    reply_text,
    to_float,
)
from asicfleet.config import Credentials, FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import (
    BoardData,
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

MAKE = Make.ANTMINER.value
API = "/api/v1/"
WEB_MARKER = "AnthillOS"
RPC_MARKER = "VNISH"
INFO, SUMMARY, STATUS, SETTINGS = "web:info", "web:summary", "web:status", "web:settings"
FACTORY = "web:chains/factory-info"  # board serial numbers (its `psu_serial` is the power supply's)
NOT_MINING_STATES = frozenset({"stopped", "shutting-down", "failure"})
_UPTIME = re.compile(r"^\s*(?:(\d+)\s+days?,\s*)?(\d+):(\d{2})\s*$")
MAX_POOLS = 3
FAN_TARGET_RANGE = (20, 90)  # degrees C automatic fan control may hold (`model.cooling`)


# ----- pure parsers: replies in, model values out -----------------------------------------------------
def text(value: Any) -> str | None:
    """A string field; VNish writes `N/A` where it has no value (a serial the EEPROM lacks)."""
    if not isinstance(value, str) or not value.strip() or value.strip().upper() == "N/A":
        return None
    return value.strip()


def parse_mac(value: Any) -> str | None:
    found = text(value)
    return found.upper() if found else None


def parse_uptime(value: Any) -> int | None:
    """`0:06` (hours:minutes) or `10 days, 18:00` -> seconds (to the minute VNish gives)."""
    match = _UPTIME.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    days, hours, minutes = int(match[1] or 0), int(match[2]), int(match[3])
    return (days * 24 + hours) * 3600 + minutes * 60


def rate_unit(summary_or_info: Mapping[str, Any] | None) -> str:
    """`hr_measure` (`GH/s` for SHA-256 models, `MH/s` for scrypt); GH/s when absent or `N/A`."""
    unit = (summary_or_info or {}).get("hr_measure")
    return unit if unit in ("GH/s", "MH/s") else "GH/s"


def ghs(value: Any) -> HashRate | None:
    return hashrate_from(value, "GH/s")


def parse_hashrate(miner: Any) -> HashRate | None:
    """`miner.hr_realtime`, in `hr_measure` units."""
    if not isinstance(miner, dict):
        raise ValueError("summary.miner is not an object")
    return hashrate_from(miner.get("hr_realtime"), rate_unit(miner))


def parse_hashboards(summary: Mapping[str, Any], board_count: int | None = None,
                     chips_per_board: int | None = None,
                     factory: Mapping[str, Any] | None = None) -> list[BoardData]:
    """Boards from `summary.miner.chains` (ids from 1), with serial numbers from `chains/factory-info`
    when given; slots the model has but VNish does not list are reported inactive."""
    serials = {c.get("id"): text(c.get("serial")) for c in (factory or {}).get("chains") or []
               if isinstance(c, dict)}
    chains = dig(summary, ("miner", "chains"))
    if not isinstance(chains, list):
        raise ValueError("summary without miner.chains")
    by_position = {int(c["id"]) - 1: c for c in chains if isinstance(c, dict) and to_float(c.get("id"))}
    count = bounded_count(max(board_count or 0, max(by_position, default=-1) + 1), MAX_BOARDS)
    boards = []
    for position in range(count):
        chain = by_position.get(position)
        if chain is None:
            boards.append(BoardData(position=position, expected_chips=chips_per_board, active=False))
            continue
        rate = ghs(chain.get("hashrate_rt"))
        state = dig(chain, ("status", "state"))
        chip_temps: dict[str, Any] = chain["chip_temp"] if isinstance(chain.get("chip_temp"), dict) else {}
        voltage = to_float(chain.get("voltage"))
        boards.append(BoardData(
            position=position,
            hashrate=rate,
            expected_hashrate=ghs(chain.get("hashrate_ideal")),
            board_temperature=to_float(dig(chain, ("pcb_temp", "max"))) if isinstance(chain.get("pcb_temp"), dict)
            else None,
            # the coolest chip faces the intake, the hottest the outlet (as asic-rs reads them)
            intake_temperature=to_float(chip_temps.get("min")),
            outlet_temperature=to_float(chip_temps.get("max")),
            expected_chips=chips_per_board,
            serial_number=serials.get(chain.get("id")),
            voltage=voltage / 1000 if voltage else None,  # millivolts
            frequency=to_float(chain.get("frequency")) or None,
            active=state == "mining" if isinstance(state, str) else bool(rate and rate.value > 0),
        ))
    return boards


def parse_fans(fans: Any) -> list[FanData]:
    if not isinstance(fans, list):
        raise ValueError("cooling.fans is not a list")
    return [FanData(position=i, rpm=to_float(fan.get("rpm"))) for i, fan in enumerate(fans) if isinstance(fan, dict)]


def parse_pools(pools: Any) -> list[PoolGroupData]:
    """The user's pools, in order; the firmware's own DevFee pool is left out (it is not configured)."""
    if not isinstance(pools, list):
        raise ValueError("miner.pools is not a list")
    group = PoolGroupData(name="default", quota=1)
    for pool in pools:
        if not isinstance(pool, dict) or pool.get("pool_type", "UserPool") != "UserPool":
            continue
        status = pool.get("status")
        accepted, rejected = to_float(pool.get("accepted")), to_float(pool.get("rejected"))
        group.pools.append(PoolData(
            position=len(group.pools),
            url=text(pool.get("url")),
            user=text(pool.get("user")),
            accepted_shares=int(accepted) if accepted is not None else None,
            rejected_shares=int(rejected) if rejected is not None else None,
            active=status == "active" if isinstance(status, str) else None,
            alive=status in ("active", "working", "rejecting") if isinstance(status, str) else None,
        ))
    return [group]


def parse_is_mining(state: Any) -> bool | None:
    return state not in NOT_MINING_STATES if isinstance(state, str) and state else None


def parse_messages(summary: Mapping[str, Any]) -> list[MinerMessage]:
    """A failed miner's description (with its failure code) and every failed chain's."""
    miner = summary.get("miner")
    if not isinstance(miner, dict):
        raise ValueError("summary without miner")
    messages = []
    status: dict[str, Any] = miner["miner_status"] if isinstance(miner.get("miner_status"), dict) else {}
    if status.get("miner_state") == "failure":
        code = to_float(status.get("failure_code"))
        messages.append(MinerMessage(code=int(code or 0), message=str(status.get("description") or "miner failure"),
                                     severity=MessageSeverity.ERROR))
    for chain in miner.get("chains") or []:
        state = dig(chain, ("status", "state")) if isinstance(chain, dict) else None
        if state == "failure":
            description = dig(chain, ("status", "description"))
            messages.append(MinerMessage(message=f"[chain {chain.get('id')}] "
                                                 f"{description if isinstance(description, str) else 'failure'}",
                                         severity=MessageSeverity.ERROR))
    return messages


def preset_watts(name: Any) -> float | None:
    """A preset's power: its name is the watts (`3250`); `disabled` (stock frequency) has none."""
    return float(name) if isinstance(name, str) and name.strip().isdigit() else None


def parse_tuning_target(preset: Any) -> TuningTarget | None:
    if not isinstance(preset, str) or not preset:
        return None
    return TuningTarget(target_watts=preset_watts(preset), target_mode=preset)


def model_from_info(info: Any) -> str | None:
    """`info.miner` (`Antminer S19j Pro`) in the hardware table's spelling."""
    raw = dig(info, ("miner",)) if isinstance(info, dict) else None
    if not isinstance(raw, str) or not raw.strip():
        return None
    name = re.sub(r"\s*\(.*\)\s*$", "", raw).strip()
    known = lookup_model(MAKE, name)
    return known.name if known is not None else name


def preset_for_watts(presets: list[dict[str, Any]], watts: float) -> dict[str, Any]:
    """The highest-power preset at or below `watts`."""
    fitting = [p for p in presets if (preset_watts(p.get("name")) or 0) and (preset_watts(p.get("name")) or 0) <= watts]
    if not fitting:
        powers = [w for w in (preset_watts(p.get("name")) for p in presets) if w]
        raise ValueError(f"no VNish preset draws {watts:g} W or less (the lowest is {min(powers, default=0):g} W)")
    return max(fitting, key=lambda p: preset_watts(p.get("name")) or 0)


def _names_vnish(value: Any) -> bool:
    return RPC_MARKER in reply_text(value).upper()


class VNish(Backend):
    family: ClassVar[str] = "vnish"
    firmware: ClassVar[str] = "VNish"  # as pyasic and pyasic-rs name it
    PRIORITY: ClassVar[int] = 40  # a specific marker; ahead of the generic antMiner realm
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("admin", "admin"),)

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at(INFO, "system", "network_status", "mac", parse=parse_mac),
        DataField.SERIAL_NUMBER: at(INFO, "serial", parse=text),
        DataField.HOSTNAME: at(INFO, "system", "network_status", "hostname", parse=text),
        DataField.FIRMWARE_VERSION: at(INFO, "fw_version", parse=text),
        DataField.API_VERSION: at(INFO, "fw_version", parse=text),  # the web API is versioned with the firmware
        DataField.CONTROL_BOARD_VERSION: at(INFO, "platform", parse=text),
        DataField.HASHRATE: [at(SUMMARY, "miner", parse=parse_hashrate),
                             at("rpc:summary", "SUMMARY", 0, "GHS 5s", parse=ghs)],
        DataField.EXPECTED_HASHRATE: at(SUMMARY, "miner", "hr_nominal",
                                        parse=lambda v: ghs(v) if to_float(v) else None),
        DataField.FANS: at(SUMMARY, "miner", "cooling", "fans", parse=parse_fans),
        DataField.WATTAGE: at(SUMMARY, "miner", "power_consumption", parse=to_float),
        DataField.WATTAGE_LIMIT: at(SETTINGS, "miner", "overclock", "preset", parse=preset_watts),
        DataField.UPTIME: [at(INFO, "system", "uptime", parse=parse_uptime),
                           at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=to_float)],
        DataField.POOLS: at(SUMMARY, "miner", "pools", parse=parse_pools),
        DataField.MESSAGES: at(SUMMARY, parse=parse_messages),
        DataField.IS_MINING: at(STATUS, "miner_state", parse=parse_is_mining),
        DataField.LIGHT_FLASHING: at(STATUS, "find_miner", parse=lambda v: v if isinstance(v, bool) else None),
        DataField.TUNING_TARGET: at(SETTINGS, "miner", "overclock", "preset", parse=parse_tuning_target),
        # HASHBOARDS is resolved in `sources()`: it needs the model's board count.
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._token: str | None = None
        self._password: str | None = None

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if probe.web is not None and WEB_MARKER in probe.web.text:
            return True
        return any(isinstance(reply, dict) and _names_vnish(reply) for reply in probe.rpc.values())

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        """The model from `info.miner`; from RPC `stats` (`Antminer S19 (vnish 1.2.6)`) when the web API
        cannot tell."""
        model: str | None = None
        web_error: MinerError | None = None
        try:
            reply = await session.http.request("GET", probe.ip, API + "info")
            if reply.status == 200:
                model = model_from_info(decode_json(reply.body))
        except MinerError as exc:
            web_error = exc
        if model is None:
            try:
                stats = await rpc_call(probe.ip, "stats", settings=session.settings)
            except MinerError:
                if web_error is not None:
                    raise web_error from None
                return None
            rows = stats.get("STATS")
            kinds = [r.get("Type") for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
            named = next((k for k in kinds if isinstance(k, str) and RPC_MARKER in k.upper()), None)
            model = model_from_info({"miner": named}) if named else None
        return cls.device_info(MAKE, model, cls.firmware) if model is not None else None

    # ----- web transport ----------------------------------------------------------------------
    async def _unlock_with(self, creds: Credentials) -> str:
        reply = await self.http("POST", API + "unlock", json={"pw": creds.password.get_secret_value()})
        if reply.status in (401, 403):
            raise AuthenticationError(f"{self.ip}: VNish refused the web password")
        if reply.status == 429:
            raise MinerAPIError(f"{self.ip}: VNish locked the login after failed attempts; try again later")
        self._check(reply, "POST unlock")
        token = dig(reply.json(), ("token",))
        if not isinstance(token, str) or not token:
            raise MinerResponseError("POST unlock: the reply holds no token")
        self._password = creds.password.get_secret_value()  # changing it needs the current one
        return token

    async def _ensure_token(self) -> str:
        if self._token is None:
            self._token = await self.with_credentials(self._unlock_with)
        return self._token

    @staticmethod
    def _check(reply: HttpReply, what: str) -> None:
        if not 200 <= reply.status < 300:
            detail = ""
            with contextlib.suppress(MinerError):  # the status says enough when the body is no JSON
                err = dig(decode_json(reply.body), ("err",)) if reply.body.strip().startswith(b"{") else None
                detail = f": {err}" if isinstance(err, str) else ""
            raise MinerAPIError(f"{what}: HTTP {reply.status}{detail}")

    async def request(self, method: str, route: str, *, locked: bool, **kwargs: Any) -> HttpReply:
        """One API call; a `locked` route carries the token, and unlocks again once when it has lapsed."""
        for attempt in range(2 if locked else 1):
            headers = {"Authorization": f"Bearer {await self._ensure_token()}"} if locked else None
            reply = await self.http(method, API + route, headers=headers, **kwargs)
            if reply.status != 401 or not locked:
                break
            self._token = None  # expired, or the miner rebooted: unlock again, then one more try
            if attempt == 1:
                raise AuthenticationError(f"{method} {route}: the token was refused")
        self._check(reply, f"{method} {route}")
        return reply

    async def call(self, method: str, route: str, *, locked: bool, **kwargs: Any) -> Any:
        reply = await self.request(method, route, locked=locked, **kwargs)
        return decode_json(reply.body) if reply.body.strip() else None

    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            route = command[4:]
            return await self.call("GET", route, locked=route in ("settings", "autotune/presets"))
        return await super().send(command)

    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Unlocks once before the reads that need a token go out in parallel; a refused unlock fails
        only those (`info`, `summary` and `status` need none)."""
        locked = [c for c in commands if c in (SETTINGS, "web:autotune/presets")]
        results: dict[str, Any] = {}
        if locked:
            try:
                await self._ensure_token()
            except MinerError as exc:
                results.update({c: exc for c in locked})
                commands = [c for c in commands if c not in results]
        results.update(await super().send_many(commands))
        return results

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = super().sources(wanted)
        if DataField.HASHBOARDS in wanted:
            hw = self.device.hardware
            out[DataField.HASHBOARDS] = [
                at((SUMMARY, FACTORY), parse=lambda r: parse_hashboards(r[SUMMARY], hw.board_count,
                                                                        hw.chips_per_board, r[FACTORY])),
                at(SUMMARY, parse=lambda r: parse_hashboards(r, hw.board_count, hw.chips_per_board)),
            ]
        return out

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        await self.request("POST", "system/reboot", locked=True)
        self._token = None  # the reboot forgets every token
        return True

    async def pause(self) -> bool:
        await self.request("POST", "mining/stop", locked=True)
        return True

    async def resume(self) -> bool:
        await self.request("POST", "mining/start", locked=True)
        return True

    async def set_fault_light(self, on: bool) -> bool:
        """`find-miner` toggles the LED: read its state first, toggle only when it differs, check the reply."""
        current = dig(await self.call("GET", "status", locked=False), ("find_miner",))
        if current is on:
            return True
        reply = await self.call("POST", "find-miner", locked=False)
        lit = dig(reply, ("on",)) if isinstance(reply, dict) else None
        if lit is not on:
            raise MinerAPIError(f"{self.ip}: find-miner left the locate LED {'on' if lit else 'off'}")
        return True

    async def get_pools_config(self) -> list[PoolGroup]:
        settings = await self.call("GET", "settings", locked=True)
        pools = dig(settings, ("miner", "pools"))
        if not isinstance(pools, list):
            raise MinerResponseError(f"{self.ip}: settings without miner.pools")
        found = [Pool(url=p["url"], username=str(p.get("user") or ""), password=str(p.get("pass") or "x"))
                 for p in pools if isinstance(p, dict) and text(p.get("url"))]
        return [PoolGroup(name="default", quota=1, pools=found)] if found else []

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """VNish has one ordered list of up to three pools: one group only."""
        if len(groups) != 1:
            raise ValueError(f"VNish takes one pool group (up to {MAX_POOLS} pools), got {len(groups)} groups")
        pools = groups[0].pools
        if not pools or len(pools) > MAX_POOLS:
            raise ValueError(f"VNish takes 1 to {MAX_POOLS} pools, got {len(pools)}")
        body = [{"url": p.url, "user": p.username, "pass": p.password, "order": i} for i, p in enumerate(pools)]
        await self.request("POST", "settings", locked=True, json={"miner": {"pools": body}})
        return True

    async def _presets(self) -> list[dict[str, Any]]:
        reply = await self.call("GET", "autotune/presets", locked=True)
        rows = reply.get("presets") if isinstance(reply, dict) else reply  # older builds wrap the list
        presets = [p for p in rows or [] if isinstance(p, dict) and isinstance(p.get("name"), str)]
        if not presets:
            raise MinerResponseError(f"{self.ip}: VNish listed no autotune presets")
        return presets

    async def _set_preset(self, name: str) -> bool:
        await self.request("POST", "settings", locked=True, json={"miner": {"overclock": {"preset": name}}})
        return True

    async def set_power_limit(self, watts: float) -> bool:
        if watts <= 0:
            raise ValueError(f"a power limit must be > 0 W, got {watts}")
        return await self._set_preset(str(preset_for_watts(await self._presets(), watts)["name"]))

    async def power_limit_held(self, watts: float) -> float:
        held = preset_watts(preset_for_watts(await self._presets(), watts)["name"])
        assert held is not None  # preset_for_watts only picks presets with a power
        return held

    async def get_tuning_config(self) -> TuningConfig:
        preset = dig(await self.call("GET", "settings", locked=True), ("miner", "overclock", "preset"))
        if not isinstance(preset, str) or not preset:
            raise MinerResponseError(f"{self.ip}: settings name no overclock preset")
        return TuningConfig.mode(preset)

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        """A preset by name (`mode`, `disabled` for the stock frequency), or the highest within a power target."""
        if config.target_hashrate is not None:
            raise ValueError("VNish presets are chosen by name or by power, not by hash rate")
        presets = await self._presets()
        if config.target_mode is not None:
            names = [str(p["name"]) for p in presets]
            if config.target_mode not in names:
                raise ValueError(f"VNish has no preset {config.target_mode!r}; it has {', '.join(names)}")
            return await self._set_preset(config.target_mode)
        assert config.target_watts is not None  # exactly one target is set
        return await self._set_preset(str(preset_for_watts(presets, config.target_watts)["name"]))

    async def _cooling_mode(self) -> dict[str, Any]:
        mode = dig(await self.call("GET", "settings", locked=True), ("miner", "cooling", "mode"))
        if not isinstance(mode, dict) or not isinstance(mode.get("name"), str):
            raise MinerResponseError(f"{self.ip}: settings without miner.cooling.mode")
        return mode

    async def get_fan_config(self) -> FanConfig:
        mode = await self._cooling_mode()
        param = to_float(mode.get("param"))
        if mode["name"] == "manual" and param is not None:
            return FanConfig.manual(int(param))
        if mode["name"] == "auto":
            return FanConfig.auto(target_temp=param)
        raise MinerResponseError(f"{self.ip}: fan mode {mode['name']!r} (immersion) has no fan config form")

    async def set_fan_config(self, config: FanConfig) -> bool:
        """Manual: a fixed duty; auto: the temperature the fans hold (the current one unless given; from
        manual fans, a target must be given)."""
        if config.idle_speed is not None:
            raise UnsupportedControlError("VNish has no fan speed for idle hashboards")
        if config.mode == "manual":
            mode: dict[str, Any] = {"name": "manual", "param": config.fan_speed}
        else:
            target = config.target_temp
            if target is None:
                current = await self._cooling_mode()
                target = to_float(current.get("param")) if current["name"] == "auto" else None
            low, high = FAN_TARGET_RANGE
            if target is None:
                raise ValueError("give target_temp: VNish's automatic fans hold a target temperature, and this "
                                 "miner's fans are manual now, so there is no current target to keep")
            if not low <= target <= high:
                raise ValueError(f"VNish automatic fans hold a target of {low}..{high} C, got {target}")
            mode = {"name": "auto", "param": round(target)}
        await self.request("POST", "settings", locked=True, json={"miner": {"cooling": {"mode": mode}}})
        return True

    async def change_password(self, password: str) -> bool:
        """`POST settings {"password": {"current", "pw"}}`; the current one is the password that unlocked."""
        if not password:
            raise ValueError("the new VNish password must not be empty")
        await self._ensure_token()
        assert self._password is not None  # set by the unlock that gave the token
        await self.request("POST", "settings", locked=True,
                           json={"password": {"current": self._password, "pw": password}})
        self._password = password
        self.session.credentials.remember(self.ip, self.family, Credentials(username="admin", password=password))
        return True
