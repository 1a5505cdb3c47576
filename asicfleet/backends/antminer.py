"""Antminer stock firmware: Bitmain's bmminer RPC on 4028 and the digest-protected CGI web API on 80.

Telemetry comes from the RPC (`version`, `summary`, `stats`, `pools`, sent in parallel) and
from CGI scripts behind HTTP digest auth (realm "antMiner Configuration", root/root by default):
`get_system_info` (MAC, serial, hostname, firmware), `get_miner_conf` (pools, fan, work mode),
`get_blink_status` (fault light), `summary` (the firmware's own status messages), `stats` (hashboard
serial numbers) and `miner_type` (control board). Controls are CGI calls; configuration changes are a
read of `get_miner_conf` followed by a complete `set_miner_conf` payload, as the web UI sends it,
so a setter changes only the setting it is given.

The stock firmware reports no power figures (no wattage, no power limit) and has no power target,
hash rate target or power scaling: those controls stay unsupported.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import SecretStr

from asicfleet._errors import AuthenticationError, MinerAPIError, MinerResponseError, UnsupportedControlError
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
from asicfleet.transport._http import MinerDigestAuth

REALM = "antMiner Configuration"
CHALLENGE_FRESH = 60.0  # seconds an identification probe's digest challenge is answered without a new 401
MAKE = Make.ANTMINER.value

# Other firmwares on Antminer hardware name the hardware too; their markers say it is not stock.
FOREIGN_FIRMWARE_MARKERS = ("BOSMINER", "BOSER", "BTMINER", "BITMICRO", "LUXMINER", "HIVEON", "KAONSU", "VNISH",
                            "RWGLR")

# `bitmain-work-mode` / `miner-mode` values and the names we give them.
WORK_MODES: dict[str, int] = {"normal": 0, "sleep": 1, "high": 2, "low": 3}
WORK_MODE_NAMES: dict[int, str] = {v: k for k, v in WORK_MODES.items()}
SLEEP_MODE = WORK_MODES["sleep"]
MAX_POOLS = 3  # the web UI and set_miner_conf take exactly three pool slots


# ----- pure parsers: replies in, model values out -----------------------------------------------------
def model_from_type(value: Any) -> str | None:
    """`Antminer S19 Pro (vnish 1.2)` -> `Antminer S19 Pro`; None when empty."""
    if not isinstance(value, str):
        return None
    name = re.sub(r"\s*\(.*\)\s*$", "", value).strip()
    return name or None


def canonical_model(raw: str) -> str:
    """The hardware table's spelling of a model when it is known, the firmware's otherwise."""
    known = lookup_model(MAKE, raw)
    return known.name if known is not None else raw


def ghs(value: Any) -> HashRate | None:
    """A GH/s figure (number or numeric string, as bmminer writes them) in TH/s."""
    return hashrate_from(value, "GH/s")


def rate_with_unit(value: Any, unit: Any) -> HashRate | None:
    """A figure in the firmware's `rate_unit` (`GH`, `GH/s`, `TH`...), in TH/s; GH when the unit is absent."""
    text = unit if isinstance(unit, str) and unit.strip() else "GH"
    return hashrate_from(value, text if "/" in text else text + "/s")


def stats_row(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The per-device row of an RPC `stats` reply (STATS[0] describes the program, STATS[1] the miner)."""
    rows = stats.get("STATS")
    if not isinstance(rows, list):
        raise ValueError("stats reply without a STATS list")
    for row in rows[1:] + rows[:1]:
        if isinstance(row, dict) and ("fan_num" in row or any(k.startswith("chain_acn") for k in row)):
            return row
    raise ValueError("stats reply without a device row")


def _temperature_list(value: Any) -> list[float]:
    """`"73-45-64-65"` (RPC) or `[73, 45, 64, 65]` (CGI) -> the non-zero readings."""
    items = value.split("-") if isinstance(value, str) else value if isinstance(value, list) else []
    readings = [to_float(item) for item in items]
    return [r for r in readings if r is not None and r != 0]


def _chain_slots(row: Mapping[str, Any], board_count: int | None) -> list[int]:
    """The `chainN` suffixes that hold hashboards: from the first populated one, `board_count` of them."""
    populated = [n for n in range(1, 17) if to_float(row.get(f"chain_acn{n}")) or row.get(f"chain_acs{n}")
                 or to_float(row.get(f"chain_rate{n}"))]
    if board_count is None:
        return populated
    first = populated[0] if populated else 1
    return list(range(first, first + min(board_count, MAX_BOARDS)))


def parse_hashboards(row: Mapping[str, Any], board_count: int | None, chips_per_board: int | None,
                     web_stats: Mapping[str, Any] | None = None) -> list[BoardData]:
    """Hashboards from the RPC stats row; serial numbers and ideal rates from the CGI `stats` when given."""
    unit = row.get("rate_unit")
    chains: dict[int, Mapping[str, Any]] = {}
    web_unit = None
    if web_stats is not None:
        web_unit = web_stats["STATS"][0].get("rate_unit")
        for chain in web_stats["STATS"][0].get("chain", []):
            if isinstance(chain, dict) and isinstance(chain.get("index"), int):
                chains[chain["index"]] = chain
    boards = []
    for position, n in enumerate(_chain_slots(row, board_count)):
        hashrate = rate_with_unit(row.get(f"chain_rate{n}"), unit)
        chips = to_float(row.get(f"chain_acn{n}"))
        # the mean of the PCB sensors, as pyasic and pyasic-rs report it (`tempN` is their maximum)
        pcb = _temperature_list(row.get(f"temp_pcb{n}"))
        board_temp = round(sum(pcb) / len(pcb), 2) if pcb else to_float(row.get(f"temp{n}"))
        web = chains.get(position, {})
        boards.append(BoardData(
            position=position,
            hashrate=hashrate,
            expected_hashrate=rate_with_unit(web.get("rate_ideal"), web_unit) if web else None,
            board_temperature=board_temp,
            expected_chips=chips_per_board,
            working_chips=int(chips) if chips is not None else None,
            frequency=to_float(row.get(f"freq{n}")) or None,
            serial_number=web.get("sn") or None,
            active=bool((hashrate is not None and hashrate.value > 0) or (chips or 0) > 0),
        ))
    return boards


def parse_fans(row: Mapping[str, Any]) -> list[FanData]:
    """`fan1`..`fanN` (N = `fan_num`); a fan reading 0 rpm is reported as such (it has stopped)."""
    count = bounded_count(row.get("fan_num"), MAX_FANS)
    numbers = range(1, count + 1) if count else [n for n in range(1, 9) if f"fan{n}" in row]
    return [FanData(position=i, rpm=to_float(row.get(f"fan{n}"))) for i, n in enumerate(numbers)]


def parse_pools(reply: Mapping[str, Any]) -> list[PoolGroupData]:
    """The RPC `pools` list as the firmware's single pool group."""
    pools = []
    for index, pool in enumerate(reply.get("POOLS") or []):
        accepted, rejected = to_float(pool.get("Accepted")), to_float(pool.get("Rejected"))
        pools.append(PoolData(
            position=int(pool.get("POOL", index)),
            url=pool.get("URL") or None,
            user=pool.get("User") or None,
            accepted_shares=int(accepted) if accepted is not None else None,
            rejected_shares=int(rejected) if rejected is not None else None,
            active=pool.get("Stratum Active") if isinstance(pool.get("Stratum Active"), bool) else None,
            alive=pool.get("Status") == "Alive" if "Status" in pool else None,
        ))
    return [PoolGroupData(name="default", quota=1, pools=pools)]


def parse_messages(status_items: Any) -> list[MinerMessage]:
    """CGI summary `status` entries that are not `s` (success): the firmware's own fault messages."""
    severities = {"e": MessageSeverity.ERROR, "w": MessageSeverity.WARNING}
    messages = []
    for item in status_items if isinstance(status_items, list) else []:
        state = str(item.get("status", "s")).lower()
        if state == "s":
            continue
        code = to_float(item.get("code"))
        text = item.get("msg") or item.get("type") or "unknown fault"
        messages.append(MinerMessage(code=int(code or 0), message=str(text),
                                     severity=severities.get(state, MessageSeverity.INFO)))
    return messages


def work_mode(conf: Mapping[str, Any]) -> int | None:
    """The configured work mode (0 normal, 1 sleep, 2 high, 3 low); None when the firmware has none."""
    value = conf.get("bitmain-work-mode", conf.get("miner-mode"))
    number = to_float(value)
    return int(number) if number is not None else None


def parse_is_mining(conf: Mapping[str, Any]) -> bool | None:
    mode = work_mode(conf)
    return None if mode is None else mode != SLEEP_MODE


def parse_tuning_target(conf: Mapping[str, Any]) -> TuningTarget | None:
    mode = work_mode(conf)
    return None if mode is None else TuningTarget(target_mode=WORK_MODE_NAMES.get(mode, str(mode)))


def fan_config_from_conf(conf: Mapping[str, Any]) -> FanConfig:
    manual = conf.get("bitmain-fan-ctrl")
    if isinstance(manual, str):
        manual = manual.strip().lower() in ("true", "1")
    if manual:
        return FanConfig.manual(int(to_float(conf.get("bitmain-fan-pwm")) or 100))
    return FanConfig.auto()


def pools_from_conf(conf: Mapping[str, Any]) -> list[PoolGroup]:
    """The configured pools (empty slots left out) as one group; no group when none is set."""
    pools = [Pool(url=p["url"], username=p.get("user") or "", password=p.get("pass", ""))
             for p in conf.get("pools") or [] if isinstance(p, dict) and p.get("url")]
    return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []


def browser_payload(conf: Mapping[str, Any]) -> dict[str, Any]:
    """The complete `set_miner_conf` body the web UI sends, carrying the current settings over."""
    payload: dict[str, Any] = {
        "bitmain-fan-ctrl": conf.get("bitmain-fan-ctrl", False),
        "bitmain-fan-pwm": str(conf.get("bitmain-fan-pwm", "100")),
        "freq-level": str(conf.get("bitmain-freq-level", conf.get("freq-level", "100"))),
        "pools": [{"url": p.get("url", ""), "user": p.get("user", ""), "pass": p.get("pass", "")}
                  for p in conf.get("pools") or [] if isinstance(p, dict)],
    }
    mode = work_mode(conf)
    if mode is not None:
        # the 2022 firmware ignores `bitmain-work-mode` on writes; `miner-mode` is what it obeys
        payload["miner-mode"] = mode
    return payload


def pool_slots(groups: list[PoolGroup]) -> list[dict[str, str]]:
    """Groups flattened into the firmware's three pool slots (unused slots blank)."""
    pools = [pool for group in groups for pool in group.pools]
    if len(pools) > MAX_POOLS:
        raise ValueError(f"stock Antminer firmware takes one group of at most {MAX_POOLS} pools, got {len(pools)}")
    slots = [{"url": p.url, "user": p.username, "pass": p.password} for p in pools]
    return slots + [{"url": "", "user": "", "pass": ""}] * (MAX_POOLS - len(slots))


def _is_foreign(text: str) -> bool:
    upper = text.upper()
    return any(marker in upper for marker in FOREIGN_FIRMWARE_MARKERS)


class AntminerStock(Backend):
    family = "antminer"
    firmware = "Stock"  # pyasic calls it "Stock"; pyasic-rs "AntMiner Stock"
    PRIORITY = 150  # generic for the antMiner realm: custom firmwares reusing it are tried first
    DEFAULT_CREDENTIALS = (("root", "root"),)
    RPC_BATCHABLE = False  # stock S19-era firmware is reported to mishandle joined commands: send them apart

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at("web:get_system_info", "macaddr", parse=parse_mac),
        DataField.SERIAL_NUMBER: [at("web:get_system_info", "serinum", parse=parse_text),
                                  at("web:get_system_info", "serial_no", parse=parse_text)],
        DataField.HOSTNAME: at("web:get_system_info", "hostname", parse=parse_text),
        DataField.FIRMWARE_VERSION: [at("web:get_system_info", "system_filesystem_version", parse=parse_text),
                                     at("rpc:version", "VERSION", 0, "CompileTime", parse=parse_text)],
        DataField.API_VERSION: at("rpc:version", "VERSION", 0, "API", parse=parse_text),
        DataField.CONTROL_BOARD_VERSION: at("web:miner_type", "subtype", parse=parse_text),
        # stats carries summary's `GHS 5s` and `Elapsed` too (the same counters: equal in the captured
        # v2020 replies), so a full read needs no `summary`; a read of these fields alone sends it (smaller)
        DataField.HASHRATE: [at("rpc:summary", "SUMMARY", 0, "GHS 5s", parse=ghs),
                             at("rpc:stats", parse=lambda r: ghs(stats_row(r).get("GHS 5s")), same_figure=True)],
        DataField.EXPECTED_HASHRATE: at("rpc:stats", parse=lambda r: rate_with_unit(
            stats_row(r).get("total_rateideal"), stats_row(r).get("rate_unit"))),
        DataField.FANS: at("rpc:stats", parse=lambda r: parse_fans(stats_row(r))),
        DataField.UPTIME: [at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=to_float),
                           at("rpc:stats", parse=lambda r: to_float(stats_row(r).get("Elapsed")), same_figure=True)],
        DataField.POOLS: at("rpc:pools", parse=parse_pools),
        DataField.MESSAGES: at("web:summary", "SUMMARY", 0, "status", parse=parse_messages),
        DataField.IS_MINING: at("web:get_miner_conf", parse=parse_is_mining),
        DataField.LIGHT_FLASHING: at("web:get_blink_status", "blink"),
        DataField.TUNING_TARGET: at("web:get_miner_conf", parse=parse_tuning_target),
        # HASHBOARDS is resolved in `sources()`: it needs the model's board count.
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._digest: dict[tuple[str, str], MinerDigestAuth] = {}
        self._challenge_known = False  # a CGI call has succeeded: the digest auth holds a challenge

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        version = probe.rpc_reply("version")
        version_text = str(version) if version is not None else ""
        if version_text and _is_foreign(version_text):
            return False
        if "ANTMINER" in version_text.upper():
            return True
        web = probe.web
        return web is not None and web.status == 401 and f'realm="{REALM.split()[0]}' in \
            web.headers.get("www-authenticate", "")

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        version = probe.rpc_reply("version") or {}
        rows = version.get("VERSION")
        model = model_from_type(rows[0].get("Type")) if isinstance(rows, list) and rows \
            and isinstance(rows[0], dict) else None
        cls.remember_challenge(probe)
        if model is None:  # RPC off or silent: the web API names the model too
            reader = cls.probe_reader(probe, DeviceInfo(make=MAKE, model="unknown", firmware=cls.firmware), session)
            info = await reader.send("web:get_system_info")
            if _is_foreign(str(info)):
                return None
            model = model_from_type(info.get("minertype")) if isinstance(info, dict) else None
        if model is None:
            return None
        return cls.device_info(MAKE, canonical_model(model), cls.firmware)

    @staticmethod
    def remember_challenge(probe: Probe) -> None:
        """Keeps the digest challenge of the probe's `GET /` 401 in what identification learned: the first
        CGI calls answer it at once instead of each earning a 401 first."""
        web = probe.web
        if web is not None and web.status == 401 and "www-authenticate" in web.headers:
            probe.learned["digest_challenge"] = web.headers["www-authenticate"]
            probe.learned["digest_challenge_at"] = time.monotonic()

    @classmethod
    def probe_reader(cls, probe: Probe, device: DeviceInfo, session: Session) -> AntminerStock:
        """A backend for identification's own CGI calls, answering the probe's challenge."""
        cls.remember_challenge(probe)
        reader = cls(probe.ip, device, session)
        reader.learned.update({k: v for k, v in probe.learned.items() if k.startswith("digest_challenge")})
        return reader

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = super().sources(wanted)
        if DataField.HASHBOARDS in wanted:
            hw = self.device.hardware

            def boards(r: Mapping[str, Any]) -> list[BoardData]:
                return parse_hashboards(stats_row(r["rpc:stats"]), hw.board_count, hw.chips_per_board,
                                        r["web:stats"])

            out[DataField.HASHBOARDS] = [
                at(("rpc:stats", "web:stats"), parse=boards),  # with serial numbers from the web API
                at("rpc:stats", parse=lambda r: parse_hashboards(stats_row(r), hw.board_count,
                                                                 hw.chips_per_board)),
            ]
        return out

    # ----- sending ----------------------------------------------------------------------------
    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Without a challenge (none from identification, no CGI call yet), the first CGI call learns it
        alone; sent together, every one of them would first be answered 401. The RPC commands go meanwhile."""
        web = [c for c in commands if c.startswith("web:")]
        if len(web) < 2 or self._challenge_known or self._fresh_challenge() is not None:
            return await super().send_many(commands)

        async def web_calls() -> dict[str, Any]:
            first = await super(AntminerStock, self).send_many(web[:1])
            return first | await super(AntminerStock, self).send_many(web[1:])

        rest = [c for c in commands if c not in web]
        web_replies, rest_replies = await asyncio.gather(web_calls(), super().send_many(rest))
        return web_replies | rest_replies

    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            reply = await self.web("GET", command[4:])
            return decode_json(reply.body)
        return await super().send(command)

    def _auth(self, creds: Credentials) -> MinerDigestAuth:
        """One digest auth per login, reused: it answers the last challenge without a new 401. The first
        starts from the challenge identification saw (a stale one costs one 401, as without it)."""
        key = (creds.username, creds.password.get_secret_value())
        if key not in self._digest:
            auth = self._digest[key] = MinerDigestAuth(*key)
            challenge = self._fresh_challenge()
            if challenge is not None and auth.learn(challenge):
                self._challenge_known = True
        return self._digest[key]

    def _fresh_challenge(self) -> str | None:
        """The challenge identification saw, while it is recent: an old nonce may be stale by now, and every
        request sent with it at once would then earn a 401 (the first CGI call learns a new one alone instead)."""
        challenge, seen = self.learned.get("digest_challenge"), self.learned.get("digest_challenge_at")
        if isinstance(challenge, str) and isinstance(seen, float) and time.monotonic() - seen < CHALLENGE_FRESH:
            return challenge
        return None

    async def web(self, method: str, cgi: str, **kwargs: Any) -> HttpReply:
        """`/cgi-bin/<cgi>.cgi` with digest auth, trying the candidate logins; errors for non-200 replies."""
        path = f"/cgi-bin/{cgi}.cgi"

        async def attempt(creds: Credentials) -> HttpReply:
            reply = await self.http(method, path, auth=self._auth(creds), **kwargs)
            if reply.status == 401:
                raise AuthenticationError(f"{self.ip}: {path} refused the login for {creds.username!r}")
            self._challenge_known = True
            if reply.status != 200:
                raise MinerAPIError(f"{self.ip}: {method} {path} answered HTTP {reply.status}")
            return reply

        return await self.with_credentials(attempt)

    async def web_json(self, method: str, cgi: str, **kwargs: Any) -> dict[str, Any]:
        reply = decode_json((await self.web(method, cgi, **kwargs)).body)
        if not isinstance(reply, dict):
            raise MinerResponseError(f"{self.ip}: {cgi}.cgi did not answer a JSON object")
        return reply

    async def _set_conf(self, change: Callable[[dict[str, Any]], None]) -> bool:
        """Read-modify-write of the miner configuration, as the web UI does it."""
        payload = browser_payload(await self.web_json("GET", "get_miner_conf"))
        change(payload)
        reply = await self.web_json("POST", "set_miner_conf", json=payload)
        if reply.get("stats") != "success":
            raise MinerAPIError(f"{self.ip}: set_miner_conf refused ({reply.get('code')}: {reply.get('msg')})")
        return True

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        await self.web("POST", "reboot")
        return True

    async def pause(self) -> bool:
        return await self._set_conf(lambda p: p.__setitem__("miner-mode", SLEEP_MODE))

    async def resume(self) -> bool:
        return await self._set_conf(lambda p: p.__setitem__("miner-mode", WORK_MODES["normal"]))

    async def set_fault_light(self, on: bool) -> bool:
        reply = await self.web_json("POST", "blink", json={"blink": "true" if on else "false"})
        expected = "B000" if on else "B100"
        if reply.get("code") != expected:
            raise MinerAPIError(f"{self.ip}: blink answered {reply.get('code')!r}, expected {expected}")
        return True

    async def get_pools_config(self) -> list[PoolGroup]:
        return pools_from_conf(await self.web_json("GET", "get_miner_conf"))

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        slots = pool_slots(groups)  # validates before anything is sent
        return await self._set_conf(lambda p: p.__setitem__("pools", slots))

    async def get_fan_config(self) -> FanConfig:
        return fan_config_from_conf(await self.web_json("GET", "get_miner_conf"))

    async def set_fan_config(self, config: FanConfig) -> bool:
        if config.target_temp is not None or config.idle_speed is not None:
            raise UnsupportedControlError("stock Antminer firmware has no fan target temperature or idle speed; "
                                          "use FanConfig.auto() or FanConfig.manual(speed)")

        def change(payload: dict[str, Any]) -> None:
            payload["bitmain-fan-ctrl"] = config.mode == "manual"
            if config.fan_speed is not None:
                payload["bitmain-fan-pwm"] = str(config.fan_speed)

        return await self._set_conf(change)

    async def get_tuning_config(self) -> TuningConfig:
        mode = work_mode(await self.web_json("GET", "get_miner_conf"))
        if mode is None:
            raise MinerResponseError(f"{self.ip}: get_miner_conf holds no work mode")
        return TuningConfig.mode(WORK_MODE_NAMES.get(mode, str(mode)))

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        if config.target_mode is None:
            raise UnsupportedControlError("stock Antminer firmware tunes by work mode only "
                                          f"({', '.join(WORK_MODES)}), not by power or hash rate targets")
        mode = WORK_MODES.get(config.target_mode.strip().lower())
        if mode is None:
            raise ValueError(f"unknown Antminer work mode {config.target_mode!r}; known: {', '.join(WORK_MODES)}")
        return await self._set_conf(lambda p: p.__setitem__("miner-mode", mode))

    async def change_password(self, password: str) -> bool:
        async def attempt(creds: Credentials) -> bool:
            body = {"curPwd": creds.password.get_secret_value(), "newPwd": password, "confirmPwd": password}
            reply = await self.http("POST", "/cgi-bin/passwd.cgi", auth=self._auth(creds), json=body)
            if reply.status == 401:
                raise AuthenticationError(f"{self.ip}: passwd.cgi refused the login for {creds.username!r}")
            answer = decode_json(reply.body) if reply.status == 200 else {}
            if not isinstance(answer, dict) or answer.get("stats") != "success":
                raise MinerAPIError(f"{self.ip}: password change refused (HTTP {reply.status}, {answer})")
            new_login = Credentials(username=creds.username, password=SecretStr(password))
            self.session.credentials.remember(self.ip, self.family, new_login)
            return True

        return await self.with_credentials(attempt, remember=False)  # the new login is remembered instead

    async def read_logs(self) -> str:
        return (await self.web("GET", "log")).text

    async def factory_reset(self) -> bool:
        await self.web("POST", "reset_conf")
        return True

    async def upgrade_firmware(self, image: bytes, filename: str) -> bool:
        reply = await self.web_json("POST", "upgrade",
                                    files={"firmware": (filename, image, "application/octet-stream")})
        if reply.get("stats") != "success" or reply.get("code") != "U000":
            raise MinerAPIError(f"{self.ip}: firmware upload refused ({reply.get('code')}: {reply.get('msg')})")
        return True
