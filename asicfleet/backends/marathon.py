"""Marathon's MaraFW (code name KaonSu) on Antminer hardware: a JSON web API under `/kaonsu/v1/` behind
HTTP digest auth in the stock Antminer realm ("antMiner Configuration", root/root), and a CGMiner-style
RPC on 4028 whose replies name `KAONSU`.

Identification, cheapest signal first: the RPC `version` reply names KAONSU (or MARAFW) and carries the
model in `VERSION[0].Model`; a 401 on `GET /` that also sends an `Algorithm: MD5` header is how asic-rs
recognises the web server. When the RPC is off (refused) and the web shows only the stock realm, one
`GET /kaonsu/v1/overview` with the login tells MaraFW (a JSON object naming the model) from stock
(a 404 page): a stock Antminer whose RPC answers, or times out, never costs that request.

Reads (one request each, sent in parallel after the first has learned the digest challenge): `brief`
(hash rate in TH/s, nominal rate in GH/s, estimated power, status, uptime), `overview` (MAC, firmware
version, control board, model), `network_config` (hostname), `hashboards` (per board: GH/s, PCB and chip
temperatures, chips, serial), `fans`, `pools`, `event_chart` (the firmware's event flags), `locate_miner`
(the fault light) and `miner_config` (work mode, power target, pools, fan settings).

Controls: `miner_config` is read and written back whole with the one setting changed (pools and pool
groups, work mode `Sleep` for pause, `Auto`/`PowerTarget` for a power limit, the fan override); `locate_miner`
with `{"blinking": bool}`; `maintenance` with `{"type": "reboot"}`. Resume puts back the work mode the
miner had before it slept, read from the configuration history (`log?type=miner_config_history`).
No MaraFW version is known to lack any of these, so the controls do not depend on the version.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import httpx

from asicfleet._errors import (
    AuthenticationError,
    MinerAPIError,
    MinerError,
    MinerResponseError,
    MinerTimeoutError,
    UnsupportedControlError,
)
from asicfleet._session import Session
from asicfleet.backends._base import (
    Backend,
    DataField,
    Probe,
    Source,
    at,
    first_row,
    hashrate_from,
    parse_mac,
    parse_text,
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
from asicfleet.transport import HttpReply, decode_json

MAKE = Make.ANTMINER.value
REALM_PREFIX = 'realm="antMiner'
RPC_MARKERS = ("KAONSU", "MARAFW")
API_ROOT = "/kaonsu/v1/"
MAX_GROUPS = 3  # the web UI has three pool groups
SLEEP = "Sleep"
WORK_MODES = ("Auto", "Fixed", "Stock", "Sleep")
SEVERITIES = {"error": MessageSeverity.ERROR, "warning": MessageSeverity.WARNING, "info": MessageSeverity.INFO}


# ----- pure parsers: replies in, model values out -----------------------------------------------------
def names_marathon(value: Any) -> bool:
    text = str(value).upper()
    return any(marker in text for marker in RPC_MARKERS)


def model_from_name(raw: Any) -> str | None:
    """`Antminer S19 Pro` (as MaraFW writes it) in the hardware table's spelling; None when blank."""
    name = parse_text(raw)
    if name is None:
        return None
    known = lookup_model(MAKE, name)
    return known.name if known is not None else name


def model_from_version(reply: Mapping[str, Any] | None) -> str | None:
    """`VERSION[0].Model` of the RPC `version` reply."""
    if reply is None:
        return None
    try:
        return model_from_name(first_row(reply, "VERSION").get("Model"))
    except ValueError:
        return None


def ths(value: Any) -> HashRate | None:
    return hashrate_from(value, "TH/s")


def ghs(value: Any) -> HashRate | None:
    return hashrate_from(value, "GH/s")


def _mean(values: Any) -> float | None:
    readings = [to_float(v) for v in values] if isinstance(values, list) else []
    present = [r for r in readings if r]
    return round(sum(present) / len(present), 2) if present else None


def parse_hashboards(reply: Mapping[str, Any], chips_per_board: int | None = None) -> list[BoardData]:
    """`hashboards.hashboards[]`: GH/s figures, PCB sensors (their mean is the board temperature) and chip
    sensors (the lowest the intake side, the highest the outlet side)."""
    boards = []
    for row in reply.get("hashboards") or []:
        if not isinstance(row, dict) or to_float(row.get("index")) is None:
            continue
        rate = ghs(row.get("hashrate_average"))
        chips = to_float(row.get("asic_num"))
        chip_temps = [t for t in (to_float(v) for v in row.get("temperature_chip") or []) if t]
        boards.append(BoardData(
            position=int(row["index"]),
            hashrate=rate,
            expected_hashrate=ghs(row.get("hashrate_ideal")),
            board_temperature=_mean(row.get("temperature_pcb")),
            intake_temperature=min(chip_temps) if chip_temps else None,
            outlet_temperature=max(chip_temps) if chip_temps else None,
            expected_chips=chips_per_board,
            working_chips=int(chips) if chips is not None else None,
            serial_number=parse_text(row.get("serial_number")),
            voltage=to_float(row.get("voltage")),
            frequency=to_float(row.get("frequency_avg")) or None,
            active=bool((rate is not None and rate.value > 0) or (chips or 0) > 0),
        ))
    return sorted(boards, key=lambda b: b.position)


def parse_fans(reply: Mapping[str, Any]) -> list[FanData]:
    return [FanData(position=i, rpm=to_float(fan.get("current_speed")))
            for i, fan in enumerate(reply.get("fans") or []) if isinstance(fan, dict)]


def parse_pools(reply: Any) -> list[PoolGroupData]:
    """The `pools` list (one row per configured pool) as one group; the active pool is the alive one with the
    best (lowest) priority, as both pyasic and asic-rs decide it."""
    rows = [p for p in reply if isinstance(p, dict)] if isinstance(reply, list) else []
    alive = [p for p in rows if p.get("status") == "Alive" and to_float(p.get("priority")) is not None]
    active = min(alive, key=lambda p: to_float(p.get("priority")) or 0).get("index") if alive else None
    pools = []
    for row in rows:
        accepted, rejected = to_float(row.get("accepted")), to_float(row.get("rejected"))
        index = to_float(row.get("index"))
        pools.append(PoolData(
            position=int(index) if index is not None else None,
            url=parse_text(row.get("url")),
            user=parse_text(row.get("user")),
            accepted_shares=int(accepted) if accepted is not None else None,
            rejected_shares=int(rejected) if rejected is not None else None,
            active=row.get("index") == active if active is not None else False,
            alive=row.get("status") == "Alive" if "status" in row else None,
        ))
    return [PoolGroupData(name="default", quota=1, pools=pools)]


def parse_messages(flags: Any) -> list[MinerMessage]:
    """`event_chart.event_flags[]`: `{level, message, timestamp}`."""
    messages = []
    for flag in flags if isinstance(flags, list) else []:
        if not isinstance(flag, dict) or not parse_text(flag.get("message")):
            continue
        stamp = to_float(flag.get("timestamp"))
        messages.append(MinerMessage(
            code=int(to_float(flag.get("code")) or 0), message=str(flag["message"]).strip(),
            severity=SEVERITIES.get(str(flag.get("level", "")).lower(), MessageSeverity.INFO),
            timestamp=int(stamp) if stamp is not None else None))
    return messages


def section(value: Any, key: str) -> dict[str, Any]:
    """`value[key]` when it is an object, else an empty one (a build without that section)."""
    inner = value.get(key) if isinstance(value, Mapping) else None
    return inner if isinstance(inner, dict) else {}


def work_mode(config: Mapping[str, Any]) -> str | None:
    mode = config.get("mode")
    return parse_text(mode.get("work-mode-selector")) if isinstance(mode, dict) else None


def parse_wattage_limit(config: Mapping[str, Any]) -> float | None:
    """The power target of the Auto (concorde) mode, when that mode tunes to a power target."""
    concorde = section(section(config, "mode"), "concorde")
    if work_mode(config) != "Auto" or concorde.get("mode-select") not in (None, "PowerTarget"):
        return None
    return to_float(concorde.get("power-target"))


def parse_tuning_target(config: Mapping[str, Any]) -> TuningTarget | None:
    selector = work_mode(config)
    if selector is None:
        return None
    concorde = section(section(config, "mode"), "concorde")
    if selector == "Auto" and concorde.get("mode-select") == "Hashrate":
        target = to_float(concorde.get("hash-target"))
        return TuningTarget(target_mode=selector,
                            target_hashrate=HashRate(value=target, unit="TH/s") if target is not None else None)
    return TuningTarget(target_mode=selector, target_watts=parse_wattage_limit(config))


def fan_config_from(config: Mapping[str, Any]) -> FanConfig:
    advance = section(config, "advance-config")
    if advance.get("override-fan-control") is True:
        return FanConfig.manual(int(to_float(advance.get("fan-fixed-percent")) or 100))
    return FanConfig.auto()


def pool_groups_from(config: Mapping[str, Any]) -> list[PoolGroup]:
    """`miner_config` pools by their `gid`, named and weighted by `pool-group` (a pool without a gid is group
    0, as pyasic writes them); groups without a pool are left out (a PoolGroup needs one)."""
    names: dict[int, tuple[str, int]] = {}
    for group in config.get("pool-group") or []:
        if isinstance(group, dict) and to_float(group.get("gid")) is not None:
            names[int(group["gid"])] = (str(group.get("alias") or ""), int(to_float(group.get("percent")) or 0))
    pools: dict[int, list[Pool]] = {}
    for pool in config.get("pools") or []:
        if isinstance(pool, dict) and parse_text(pool.get("url")) and parse_text(pool.get("user")):
            gid = int(to_float(pool.get("gid")) or 0)
            pools.setdefault(gid, []).append(Pool(url=pool["url"], username=pool["user"],
                                                  password=str(pool.get("pass") or "")))
    groups = []
    for gid in sorted(pools):
        name, percent = names.get(gid, ("default" if gid == 0 else f"group {gid}", 100 if len(pools) == 1 else 0))
        groups.append(PoolGroup(name=name or "default", quota=percent or 1, pools=pools[gid][:3]))
    return groups


def group_percents(groups: Sequence[PoolGroup]) -> list[int]:
    """Quotas as the whole percentages MaraFW stores, summing to 100 (largest remainders take the rest)."""
    total = sum(g.quota for g in groups)
    if total <= 0:
        raise ValueError("MaraFW pool groups need a quota above 0")
    percents = [g.quota * 100 // total for g in groups]
    order = sorted(range(len(groups)), key=lambda i: (-(groups[i].quota * 100 % total), i))
    for i in order[: 100 - sum(percents)]:
        percents[i] += 1
    return percents


def pools_payload(groups: Sequence[PoolGroup]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(`pool-group`, `pools`) for miner_config; validated before anything is sent."""
    if not groups:
        raise ValueError("give at least one pool group: a MaraFW miner without pools does not mine")
    if len(groups) > MAX_GROUPS:
        raise ValueError(f"MaraFW takes at most {MAX_GROUPS} pool groups, got {len(groups)}")
    if any(g.quota <= 0 for g in groups):
        raise ValueError("every MaraFW pool group needs a quota above 0")
    percents = group_percents(groups)
    pool_group = [{"gid": gid, "alias": g.name, "percent": percents[gid]} for gid, g in enumerate(groups)]
    pools = [{"url": p.url, "user": p.username, "pass": p.password, "gid": gid}
             for gid, g in enumerate(groups) for p in g.pools]
    return pool_group, pools


def mode_before_sleep(history: Any) -> str | None:
    """The newest `Mode.WorkModeSelector` change into Sleep in the configuration history: the mode it left."""
    entries = history if isinstance(history, list) else []
    for entry in reversed(entries):
        for changes in (entry.values() if isinstance(entry, dict) else []):
            for change in reversed(changes) if isinstance(changes, list) else []:
                if not isinstance(change, dict) or str(change.get("type", "")).lower() != "update":
                    continue
                path = change.get("path")
                if not (isinstance(path, list) and [str(p).lower() for p in path] == ["mode", "workmodeselector"]):
                    continue
                if change.get("to") == SLEEP and change.get("from") in WORK_MODES and change.get("from") != SLEEP:
                    return str(change["from"])
    return None


class Marathon(Backend):
    family: ClassVar[str] = "marathon"
    firmware: ClassVar[str] = "MaraFW"  # pyasic's name (MinerFirmware.MARATHON); pyasic-rs says "Marathon"
    PRIORITY: ClassVar[int] = 45  # ahead of the stock realm it shares
    RPC_BATCHABLE: ClassVar[bool] = False  # reads go to the web API; the RPC only identifies
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("root", "root"),)

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at("web:overview", "mac", parse=parse_mac),
        DataField.HOSTNAME: at("web:network_config", "hostname", parse=parse_text),
        DataField.FIRMWARE_VERSION: at("web:overview", "version_firmware", parse=parse_text),
        DataField.API_VERSION: at("rpc:version", "VERSION", 0, "API", parse=parse_text),
        DataField.CONTROL_BOARD_VERSION: at("web:overview", "control_board", parse=parse_text),
        DataField.HASHRATE: at("web:brief", "hashrate_realtime", parse=ths),
        DataField.EXPECTED_HASHRATE: at("web:brief", "hashrate_ideal", parse=ghs),
        DataField.FANS: at("web:fans", parse=parse_fans),
        DataField.WATTAGE: at("web:brief", "power_consumption_estimated", parse=to_float),
        DataField.WATTAGE_LIMIT: at("web:miner_config", parse=parse_wattage_limit),
        DataField.UPTIME: at("web:brief", "elapsed", parse=to_float),
        DataField.POOLS: at("web:pools", parse=parse_pools),
        DataField.MESSAGES: at("web:event_chart", "event_flags", parse=parse_messages),
        DataField.IS_MINING: at("web:brief", "status", parse=lambda s: s == "Mining" if isinstance(s, str) else None),
        DataField.LIGHT_FLASHING: at("web:locate_miner", "blinking",
                                     parse=lambda v: v if isinstance(v, bool) else None),
        DataField.TUNING_TARGET: at("web:miner_config", parse=parse_tuning_target),
        # HASHBOARDS is resolved in `sources()`: it needs the model's chips per board.
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._digest: dict[tuple[str, str], httpx.DigestAuth] = {}
        self._challenge_known = False

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        version = probe.rpc.get("version")
        if isinstance(version, dict):
            return names_marathon(version)  # an answering RPC that does not name MaraFW is something else
        web = probe.web
        if web is None or web.status != 401:
            return False
        if "MD5" in web.headers.get("algorithm", "").upper():
            return True  # asic-rs's web signal
        # only the stock realm: worth a request in identify() when the RPC is off (refused), not when it timed
        # out (a sick or overloaded host, where every extra request costs a stock miner its deadline)
        return not isinstance(version, MinerTimeoutError) and REALM_PREFIX in web.headers.get("www-authenticate", "")

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        model = model_from_version(probe.rpc_reply("version"))
        if model is None:  # the RPC did not answer: the web API names the model, or answers 404 (stock)
            reader = cls(probe.ip, DeviceInfo(make=MAKE, model="unknown", firmware=cls.firmware), session)
            try:
                overview = await reader.send("web:overview")
            except MinerError:
                return None
            model = model_from_name(overview.get("model")) if isinstance(overview, dict) else None
        return cls.device_info(MAKE, model, cls.firmware) if model is not None else None

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = super().sources(wanted)
        if DataField.HASHBOARDS in wanted:
            chips = self.device.hardware.chips_per_board
            out[DataField.HASHBOARDS] = [at("web:hashboards", parse=lambda r: parse_hashboards(r, chips))]
        return out

    # ----- sending ----------------------------------------------------------------------------
    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """The first web call learns the digest challenge alone; the others then go in parallel."""
        web = sorted(c for c in commands if c.startswith("web:"))
        if len(web) < 2 or self._challenge_known:
            return await super().send_many(commands)

        async def web_calls() -> dict[str, Any]:
            first = await super(Marathon, self).send_many(web[:1])
            return first | await super(Marathon, self).send_many(web[1:])

        rest = [c for c in commands if c not in web]
        web_replies, rest_replies = await asyncio.gather(web_calls(), super().send_many(rest))
        return web_replies | rest_replies

    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            return await self.web("GET", command[4:])
        return await super().send(command)

    def _auth(self, creds: Credentials) -> httpx.DigestAuth:
        key = (creds.username, creds.password.get_secret_value())
        if key not in self._digest:
            self._digest[key] = httpx.DigestAuth(*key)
        return self._digest[key]

    async def web(self, method: str, endpoint: str, body: Any = None) -> Any:
        """`/kaonsu/v1/<endpoint>` with digest auth, trying the candidate logins; the decoded JSON reply."""
        path = API_ROOT + endpoint

        async def attempt(creds: Credentials) -> HttpReply:
            kwargs: dict[str, Any] = {"json": body} if body is not None else {}
            reply = await self.http(method, path, auth=self._auth(creds), **kwargs)
            if reply.status == 401:
                raise AuthenticationError(f"{self.ip}: {path} refused the login for {creds.username!r}")
            self._challenge_known = True
            if reply.status != 200:
                raise MinerAPIError(f"{self.ip}: {method} {path} answered HTTP {reply.status}")
            return reply

        reply = await self.with_credentials(attempt)
        return decode_json(reply.body)

    async def _config(self) -> dict[str, Any]:
        config = await self.web("GET", "miner_config")
        if not isinstance(config, dict):
            raise MinerResponseError(f"{self.ip}: miner_config did not answer a JSON object")
        return config

    async def _change_config(self, change: Callable[[dict[str, Any]], None]) -> bool:
        """Read-modify-write of miner_config: the whole configuration goes back with one setting changed."""
        config = copy.deepcopy(await self._config())
        change(config)
        reply = await self.web("POST", "miner_config", config)
        if isinstance(reply, dict) and reply.get("error") is True:
            raise MinerAPIError(f"{self.ip}: miner_config refused: {reply.get('msg') or 'no reason given'}")
        return True

    @staticmethod
    def _mode(config: dict[str, Any]) -> dict[str, Any]:
        mode = config.get("mode")
        if not isinstance(mode, dict):
            mode = config["mode"] = {}
        return mode

    def _set_mode(self, selector: str, **concorde: Any) -> Callable[[dict[str, Any]], None]:
        def change(config: dict[str, Any]) -> None:
            mode = self._mode(config)
            mode["work-mode-selector"] = selector
            if concorde:
                mode["concorde"] = {**section(mode, "concorde"), **concorde}
        return change

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        await self.web("POST", "maintenance", {"type": "reboot"})
        return True

    async def pause(self) -> bool:
        return await self._change_config(self._set_mode(SLEEP))

    async def resume(self) -> bool:
        """Back to the work mode the miner had before it slept (the configuration history says), else Auto."""
        config = await self._config()
        if work_mode(config) != SLEEP:
            return True
        try:
            previous = mode_before_sleep(await self.web("GET", "log?type=miner_config_history"))
        except MinerAPIError:
            previous = None  # a build without the history: Auto, as pyasic resumes
        return await self._change_config(self._set_mode(previous or "Auto"))

    async def set_fault_light(self, on: bool) -> bool:
        reply = await self.web("POST", "locate_miner", {"blinking": on})
        if not isinstance(reply, dict) or reply.get("blinking") is not on:
            raise MinerAPIError(f"{self.ip}: locate_miner answered {reply!r}, expected blinking {on}")
        return True

    async def set_power_limit(self, watts: float) -> bool:
        if watts <= 0:
            raise ValueError(f"a power limit must be > 0 W, got {watts}")
        target = {"mode-select": "PowerTarget", "power-target": round(watts)}
        return await self._change_config(self._set_mode("Auto", **target))

    async def power_limit_held(self, watts: float) -> float:
        """MaraFW stores the power target in whole watts."""
        return float(round(watts))

    async def get_tuning_config(self) -> TuningConfig:
        target = parse_tuning_target(await self._config())
        if target is None or target.target_mode is None:
            raise MinerResponseError(f"{self.ip}: miner_config holds no work mode")
        if target.target_mode == "Auto" and target.target_watts is not None:
            return TuningConfig.power(target.target_watts)
        if target.target_mode == "Auto" and target.target_hashrate is not None:
            return TuningConfig.hashrate(target.target_hashrate)
        return TuningConfig.mode(target.target_mode)

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        """A power target or a hash rate target (the Auto mode), or the Stock mode by name."""
        if config.target_watts is not None:
            return await self.set_power_limit(config.target_watts)
        if config.target_hashrate is not None:
            target = config.target_hashrate.into_unit("TH/s").value
            if target <= 0:
                raise ValueError(f"a hash rate target must be > 0, got {config.target_hashrate}")
            return await self._change_config(self._set_mode("Auto", **{"mode-select": "Hashrate",
                                                                        "hash-target": round(target)}))
        assert config.target_mode is not None
        if config.target_mode != "Stock":
            raise ValueError(f"MaraFW takes the mode 'Stock' by name (or a power or hash rate target), "
                             f"not {config.target_mode!r}; pause() puts it to Sleep")
        return await self._change_config(self._set_mode("Stock"))

    async def get_pools_config(self) -> list[PoolGroup]:
        return pool_groups_from(await self._config())

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        pool_group, pools = pools_payload(groups)  # validates before anything is sent

        def change(config: dict[str, Any]) -> None:
            config["pool-group"] = pool_group
            config["pools"] = pools

        return await self._change_config(change)

    async def get_fan_config(self) -> FanConfig:
        return fan_config_from(await self._config())

    async def set_fan_config(self, config: FanConfig) -> bool:
        if config.target_temp is not None or config.idle_speed is not None:
            raise UnsupportedControlError("MaraFW overrides the fans with a fixed percentage or leaves them to "
                                          "the firmware; it has no fan target temperature or idle speed")

        def change(conf: dict[str, Any]) -> None:
            advance, general = section(conf, "advance-config"), section(conf, "general-config")
            conf["general-config"] = {**general, "environment-profile": general.get("environment-profile",
                                                                                    "AirCooling")}
            conf["advance-config"] = {**advance, "override-fan-control": config.mode == "manual",
                                      "fan-fixed-percent": config.fan_speed if config.mode == "manual" else 0}

        return await self._change_config(change)
