"""SealMiner stock firmware (the BDMiner miner program): CGMiner-style RPC on 4028 and a PHP web UI on 80.

Facts, as asic-rs and pyasic-rs use the firmware, and from the replies of an A2 (firmware 2025091001,
BDMiner 4.11.1) that asic-rs publishes:

- Identification: every RPC reply names `bdminer` (`STATUS[0].Description`), and `version` has a `BDMiner`
  field; the web login page is built on Amaze UI (`amazeui`). The model is RPC `devdetails` ->
  `DEVDETAILS[0].Model` (`A2`); without the RPC, web `get_system_info.php` -> `miner_type`.
- Reads (RPC, no login): `version` (API), `summary` (MH/s), `stats` (one row: boards as `<n> ...` keys,
  fans as `<n> Speed`, MAC, control board and its serial, `Firmware` (a date), power supply, `Power Limit`,
  `PM State`, `Mining Mode`), `pools`. The web pages need the `PHPSESSID` cookie that
  `POST /cgi-bin/login.php` (form `username`, `origin_pwd`; default seal / seal) sets: `get_system_info.php`
  (the locate LED as `led`), `get_miner_poolconf.php` (the configured pools, with passwords).
- Controls: `reboot.php` (restart); `led_conf.php` (locate LED); RPC `ascset 0,suspend` (pause) and
  `restart` (the miner program starts hashing again: resume); RPC `ascset 0,powerlimit,{"value":"W"}` (taken
  at once, as pyasic-rs 0.8.6 sends it); `updatepools` takes effect at the next boot, so it is followed by a
  reboot, as asic-rs and pyasic-rs do;
  RPC `ascset 0,workmode,{"mode": ...}` selects a mining mode (`low_power`, `normal`, `high_performance`),
  as pyasic-rs 0.8.6 does (the web's `set_mining_mode.php` with a mode code does the same).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from asicfleet._errors import AuthenticationError, MinerAPIError, MinerError, MinerResponseError
from asicfleet._session import Session
from asicfleet.backends._base import (
    MAX_BOARDS,
    MAX_FANS,
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

MAKE = Make.SEALMINER.value
RPC_MARKER = "BDMINER"
WEB_MARKER = "amazeui"
SYSTEM_INFO, POOLCONF = "web:get_system_info", "web:get_miner_poolconf"
MINING_MODES = {"low_power": 0, "normal": 2, "high_performance": 3}
MODE_NAMES = {"low power": "low_power", "normal": "normal", "high performance": "high_performance"}


# ----- pure parsers: replies in, model values out -----------------------------------------------------
def stats_row(reply: Mapping[str, Any]) -> dict[str, Any]:
    return first_row(reply, "STATS")


def mhs(value: Any) -> HashRate | None:
    return hashrate_from(value, "MH/s")


def parse_hashboards(stats: Mapping[str, Any], chips_per_board: int | None = None) -> list[BoardData]:
    row = stats_row(stats)
    count = bounded_count(row.get("Board Count"), MAX_BOARDS)
    boards = []
    for n in range(count):
        chips, bad = to_float(row.get(f"{n} Chip Count")), to_float(row.get(f"{n} Bad Chip Count")) or 0
        temps = [t for t in (to_float(row.get(f"{n} Temp {k}")) for k in range(4)) if t]
        rate = mhs(row.get(f"{n} MHS(Sample)"))
        tune = row.get(f"{n} Tune Status")
        boards.append(BoardData(
            position=n,
            hashrate=rate,
            expected_hashrate=mhs(row.get(f"{n} MHS(Ideal)")),
            board_temperature=max(temps) if temps else None,
            intake_temperature=temps[0] if temps else None,
            outlet_temperature=temps[-1] if temps else None,
            expected_chips=chips_per_board,
            working_chips=int(chips - bad) if chips is not None else None,
            serial_number=parse_text(row.get(f"{n} SN")),
            frequency=to_float(row.get(f"{n} Freq")) or None,
            tuned=tune.strip().lower().endswith("done") if isinstance(tune, str) else None,
            active=row.get(f"{n} Online") is True,
        ))
    return boards


def parse_fans(stats: Mapping[str, Any]) -> list[FanData]:
    row = stats_row(stats)
    return [FanData(position=i, rpm=to_float(row.get(f"{i} Speed")))
            for i in range(bounded_count(row.get("Fan Count"), MAX_FANS))]


def parse_psu_fans(value: Any) -> list[FanData] | None:
    rpm = to_float(value)
    return [FanData(position=0, rpm=rpm)] if rpm is not None else None


def parse_pools(pools: Mapping[str, Any]) -> list[PoolGroupData]:
    group = PoolGroupData(name="default", quota=1)
    for raw in pools.get("POOLS") or []:
        if not isinstance(raw, dict):
            continue
        accepted, rejected = to_float(raw.get("Accepted")), to_float(raw.get("Rejected"))
        group.pools.append(PoolData(
            position=int(to_float(raw.get("POOL")) or 0),
            url=parse_text(raw.get("URL")),
            user=parse_text(raw.get("User")),
            accepted_shares=int(accepted) if accepted is not None else None,
            rejected_shares=int(rejected) if rejected is not None else None,
            active=raw.get("Stratum Active") if isinstance(raw.get("Stratum Active"), bool) else None,
            alive=raw.get("Status") == "Alive" if "Status" in raw else None,
        ))
    return [group]


def parse_messages(stats: Mapping[str, Any]) -> list[MinerMessage]:
    row = stats_row(stats)
    messages = []
    code = parse_text(row.get("Error Code"))
    if code is not None:
        messages.append(MinerMessage(code=0, message=f"Error code {code}", severity=MessageSeverity.ERROR))
    for n in range(bounded_count(row.get("Board Count"), MAX_BOARDS)):
        bad = int(to_float(row.get(f"{n} Bad Chip Count")) or 0)
        if bad:
            messages.append(MinerMessage(code=0, message=f"board {n}: {bad} bad chip(s)",
                                         severity=MessageSeverity.WARNING))
    return messages


def parse_tuning_target(stats: Mapping[str, Any]) -> TuningTarget | None:
    row = stats_row(stats)
    watts = to_float(row.get("Power Limit"))
    mode = parse_text(row.get("Mining Mode"))
    if watts is None and mode is None:
        return None
    return TuningTarget(target_watts=watts, target_mode=MODE_NAMES.get(mode.lower(), mode) if mode else None)


def model_from_devdetails(reply: Mapping[str, Any] | None) -> str | None:
    try:
        raw = parse_text(first_row(reply or {}, "DEVDETAILS").get("Model"))
    except ValueError:
        return None
    return _catalogued(raw)


def _catalogued(raw: str | None) -> str | None:
    if raw is None:
        return None
    known = lookup_model(MAKE, raw)
    return known.name if known is not None else raw


def _names_bdminer(value: Any) -> bool:
    return RPC_MARKER in reply_text(value).upper()


class SealMiner(Backend):
    family: ClassVar[str] = "sealminer"
    firmware: ClassVar[str] = "Stock"
    PRIORITY: ClassVar[int] = 60  # the BDMiner mark is its own
    RPC_BATCHABLE: ClassVar[bool] = False  # joined `a+b` requests are not known to work on BDMiner
    POOLS_APPLY_AT_REBOOT: ClassVar[bool] = True  # updatepools is stored for the next boot (sent by set_pools_config)
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("seal", "seal"),)

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: [at("rpc:stats", "STATS", 0, "MAC", parse=parse_mac),
                        at(SYSTEM_INFO, "macaddr", parse=parse_mac)],
        DataField.SERIAL_NUMBER: at("rpc:stats", "STATS", 0, "Ctrl Board SN", parse=parse_text),
        DataField.API_VERSION: at("rpc:version", "VERSION", 0, "API", parse=parse_text),
        DataField.FIRMWARE_VERSION: [at("rpc:stats", "STATS", 0, "Firmware", parse=parse_text),
                                     at(SYSTEM_INFO, "firmware_version", parse=parse_text)],
        DataField.CONTROL_BOARD_VERSION: [at("rpc:stats", "STATS", 0, "Ctrl Board", parse=parse_text),
                                          at(SYSTEM_INFO, "ctrl_version", parse=parse_text)],
        # the one-minute average: the published 5 s figure ran 70 % above every longer window
        DataField.HASHRATE: [at("rpc:summary", "SUMMARY", 0, "MHS 1m", parse=mhs),
                             at("rpc:stats", "STATS", 0, "MHS(1m)", parse=mhs)],
        DataField.EXPECTED_HASHRATE: at("rpc:stats", "STATS", 0, "MHS(Rated)", parse=mhs),
        DataField.FANS: at("rpc:stats", parse=parse_fans),
        DataField.PSU_FANS: at("rpc:stats", "STATS", 0, "PSU Fan Speed", parse=parse_psu_fans),
        DataField.WATTAGE: at("rpc:stats", "STATS", 0, "PSU Input Power", parse=to_float),
        DataField.WATTAGE_LIMIT: at("rpc:stats", "STATS", 0, "Power Limit", parse=to_float),
        DataField.UPTIME: at("rpc:stats", "STATS", 0, "System Uptime", parse=to_float),
        DataField.POOLS: at("rpc:pools", parse=parse_pools),
        DataField.MESSAGES: at("rpc:stats", parse=parse_messages),
        DataField.IS_MINING: at("rpc:stats", "STATS", 0, "PM State",
                                parse=lambda v: v == "Running" if isinstance(v, str) else None),
        DataField.LIGHT_FLASHING: at(SYSTEM_INFO, "led", parse=lambda v: v != "off" if isinstance(v, str) else None),
        DataField.TUNING_TARGET: at("rpc:stats", parse=parse_tuning_target),
        # HASHBOARDS is resolved in `sources()`: it needs the model's chip count.
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._cookie: str | None = None

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if any(isinstance(reply, dict) and _names_bdminer(reply) for reply in probe.rpc.values()):
            return True
        return probe.web is not None and WEB_MARKER in probe.web.text.lower()

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        """The model from RPC devdetails; from the web's system info when the RPC does not answer (the
        miner program has not started yet)."""
        model: str | None = None
        try:
            details = await rpc_call(probe.ip, "devdetails", settings=session.settings)
            if _names_bdminer(details):
                model = model_from_devdetails(details)
        except MinerError:
            reader = cls(probe.ip, DeviceInfo(make=MAKE, model="", firmware=cls.firmware), session)
            info = await reader.web("get_system_info")
            if isinstance(info, dict) and str(info.get("brand", "")).lower() == "sealminer":
                model = _catalogued(parse_text(info.get("miner_type")))
        return cls.device_info(MAKE, model, cls.firmware) if model is not None else None

    # ----- web transport ----------------------------------------------------------------------
    async def _login_with(self, creds: Credentials) -> str:
        form = {"username": creds.username, "origin_pwd": creds.password.get_secret_value()}
        reply = await self.http("POST", "/cgi-bin/login.php", data=form, headers={"X-Requested-With": "XMLHttpRequest"})
        cookie = reply.headers.get("set-cookie", "").split(";", 1)[0].strip()
        if reply.status != 200 or "=" not in cookie:
            raise AuthenticationError(f"{self.ip}: SealMiner refused the web login")
        return cookie

    async def _session_cookie(self) -> str:
        if self._cookie is None:
            self._cookie = await self.with_credentials(self._login_with)
        return self._cookie

    async def web(self, page: str, body: Any = None) -> Any:
        """`GET /cgi-bin/<page>.php` (POST with a JSON body), with the session cookie; logs in again once
        when the session has lapsed (a page then redirects to the login page)."""
        for attempt in range(2):
            headers = {"Cookie": await self._session_cookie()}
            method = "GET" if body is None else "POST"
            reply: HttpReply = await self.http(method, f"/cgi-bin/{page}.php", headers=headers,
                                               json=body if body is not None else None)
            if reply.status == 200 and reply.body.strip().startswith(b"{"):
                return decode_json(reply.body)
            if reply.status in (301, 302, 303, 401, 403) and attempt == 0:
                self._cookie = None  # the miner rebooted or the session lapsed
                continue
            raise MinerAPIError(f"{method} {page}.php: HTTP {reply.status}")
        raise AssertionError("unreachable")

    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            return await self.web(command[4:])
        return await super().send(command)

    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Logs in once before web reads go out in parallel; a refused login fails only those."""
        results: dict[str, Any] = {}
        if any(c.startswith("web:") for c in commands):
            try:
                await self._session_cookie()
            except MinerError as exc:
                results.update({c: exc for c in commands if c.startswith("web:")})
                commands = [c for c in commands if c not in results]
        results.update(await super().send_many(commands))
        return results

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = super().sources(wanted)
        if DataField.HASHBOARDS in wanted:
            chips = self.device.hardware.chips_per_board
            out[DataField.HASHBOARDS] = [at("rpc:stats", parse=lambda r: parse_hashboards(r, chips))]
        return out

    # ----- controls ---------------------------------------------------------------------------
    async def _reboot(self) -> None:
        await self.web("reboot")
        self._cookie = None  # a reboot ends the session

    async def restart(self) -> bool:
        await self._reboot()
        return True

    async def pause(self) -> bool:
        await self.rpc("ascset", "0,suspend")
        return True

    async def resume(self) -> bool:
        """`restart` restarts the miner program, which hashes again; skipped when it already runs."""
        state = stats_row(await self.rpc("stats")).get("PM State")
        if state != "Running":
            await self.rpc("restart")
        return True

    async def set_fault_light(self, on: bool) -> bool:
        await self.web("led_conf", {"key": "led", "value": "on" if on else "off"})
        return True

    async def set_power_limit(self, watts: float) -> bool:
        """`ascset 0,powerlimit,...`, taken at once (pyasic-rs 0.8.6 sends no reboot after it; asic-rs before it
        did, so a firmware that waits for the boot shows the old `Power Limit` until then)."""
        if not 0 < watts <= 100_000 or watts != int(watts):
            raise ValueError(f"a SealMiner power limit is whole watts above 0, got {watts}")
        await self.rpc("ascset", "0,powerlimit," + json.dumps({"value": str(int(watts))}, separators=(",", ":")))
        return True

    async def get_tuning_config(self) -> TuningConfig:
        watts = to_float(stats_row(await self.rpc("stats")).get("Power Limit"))
        if watts is None:
            raise MinerResponseError(f"{self.ip}: stats holds no power limit")
        return TuningConfig.power(watts)

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        """A power limit, or a mining mode (`low_power`, `normal`, `high_performance`); no hash rate target."""
        if config.target_watts is not None:
            return await self.set_power_limit(config.target_watts)
        if config.target_mode is not None:
            if config.target_mode not in MINING_MODES:
                raise ValueError(f"SealMiner has no mining mode {config.target_mode!r}; it has {sorted(MINING_MODES)}")
            await self.rpc("ascset", "0,workmode," + json.dumps({"mode": config.target_mode}, separators=(",", ":")))
            return True
        raise ValueError("SealMiner tunes to a power limit or a mining mode, not to a hash rate")

    async def get_pools_config(self) -> list[PoolGroup]:
        reply = await self.web("get_miner_poolconf")
        pools = [Pool(url=p["url"], username=p["user"], password=str(p.get("pass") or "x"))
                 for p in (reply.get("pools") or [] if isinstance(reply, dict) else [])
                 if isinstance(p, dict) and parse_text(p.get("url")) and parse_text(p.get("user"))]
        return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """`updatepools` with one group's pools, then the reboot that applies them."""
        if len(groups) != 1:
            raise ValueError(f"SealMiner has one pool group, got {len(groups)} groups")
        parameter = json.dumps({"pools": [{"url": p.url, "user": p.username, "pass": p.password}
                                          for p in groups[0].pools]})
        await self.rpc("updatepools", parameter)
        await self._reboot()
        return True
