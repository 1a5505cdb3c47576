"""FutureBit Apollo (Apollo BTC, Apollo II) on the Apollo OS stack: a GraphQL API on port 5000, no RPC.

Identification: the web UI on port 80 answers `GET /` with a 308 redirect to `/overview` (pyasic-rs's
signal); the Apollo API (`POST :5000/api/graphql`) then gives `Miner.stats`, which needs no login:
its stats `version` is the board generation ("v1": Apollo BTC, "v2": Apollo II) and `versions.miner`
the miner's version. Nothing listens on 4028: the Apollo's miner has no CGMiner-style API.

Reads: `Miner.stats` (hash rate in GH/s `slots.int_0.ghs`, `master.boardsW`, `master.upTime`, fans,
the board's temperatures and chips, the running pool) and `Miner.online` need no login; `Mcu.stats`
(host name, MACs) and `Settings.read` (the miner mode) need the bearer token that `Auth.login(input:
{password})` returns (the login takes a password only). Every action group is a field of `Query`,
mutations included in practice: the schema's `Mutation` type has no fields, so the controls are sent
as queries.

Controls: `Miner.stop` / `Miner.start` (pause, resume), `Miner.restart` (the miner service, not the
whole node: an Apollo II is also a Bitcoin node), `Pool.list` / `Pool.updateAll` and
`Settings.read` / `Settings.update(minerMode)` (eco, balanced, turbo, custom). The miner reads pools
and mode when it starts, so writing either restarts the miner service. `Auth.changePassword` and
`Logs.read(logType: MINER)`. There is no locate light, power target or fan curve setting beyond the
fan's low/high temperatures, which our FanConfig cannot express.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import orjson

from asicfleet._errors import (
    AuthenticationError,
    MinerAPIError,
    MinerError,
    MinerResponseError,
    UnsupportedControlError,
)
from asicfleet._session import Session
from asicfleet.backends._base import Backend, DataField, Probe, Source, at, dig, hashrate_from, parse_text, to_float
from asicfleet.config import Credentials, Pool, PoolGroup, TuningConfig
from asicfleet.data import BoardData, DeviceInfo, FanData, HashRate, MinerData, PoolData, PoolGroupData, TuningTarget
from asicfleet.hardware import Make
from asicfleet.transport import HttpReply, decode_json

MAKE = Make.FUTUREBIT.value
API_PORT = 5000
GRAPHQL = "/api/graphql"
REDIRECT_TARGET = "/overview"
MODES = ("eco", "balanced", "turbo", "custom")
STATS = "gql:stats"
ONLINE = "gql:online"
MCU = "gql:mcu"
SETTINGS = "gql:settings"
_S0 = ("Miner", "stats", "result", "stats", 0)  # the (only) board's entry
_MODELS = {"v1": "Apollo", "v2": "Apollo II"}

# what each read key asks for, and whether it needs the token
QUERIES: dict[str, tuple[str, bool]] = {
    STATS: ("{ Miner { stats { result { stats { uuid version statVersion versions { miner } "
            "master { upTime boardsW hwAddr intervals { int_30 { bySol byDiff } } } "
            "pool { host port userName intervals { int_0 { sharesAccepted sharesRejected inService } } } "
            "fans { int_0 { rpm } } slots { int_0 { chips pwrOn temperature temperature1 ghs } } "
            "slaves { uid } } } error { message } } } }", False),
    ONLINE: ("{ Miner { online { result { online { status } } error { message } } } }", False),
    MCU: ("{ Mcu { stats { result { stats { hostname network { name mac } } } error { message } } } }", True),
    SETTINGS: ("{ Settings { read { result { settings { minerMode voltage frequency } } error { message } } } }",
               True),
}
_LOGIN = ("query Login($input: AuthLoginInput!) { Auth { login(input: $input) { result { accessToken } "
          "error { message } } } }")


# ----- parsers ---------------------------------------------------------------------------------------
def ghs(value: Any) -> HashRate | None:
    return hashrate_from(value, "GH/s")


def model_from_stats(stats: Mapping[str, Any]) -> str | None:
    """Apollo BTC ("v1") or Apollo II ("v2") from the stats file's generation."""
    return _MODELS.get(str(stats.get("version") or "").lower())


def parse_mac(networks: Any) -> str | None:
    """The first non-zero MAC of the MCU's interfaces (the miner's own interface reports zeros)."""
    if not isinstance(networks, list):
        return None
    for network in networks:
        mac = str(network.get("mac") or "").strip().upper() if isinstance(network, Mapping) else ""
        if mac and mac.replace(":", "").strip("0"):
            return mac
    return None


def parse_hw_addr(value: Any) -> str | None:
    text = parse_text(value)
    return text.upper() if text and text.replace(":", "").strip("0") else None


def parse_fans(rpms: Any) -> list[FanData]:
    values = rpms if isinstance(rpms, list) else [rpms]
    return [FanData(position=i, rpm=rpm) for i, v in enumerate(values) if (rpm := to_float(v)) is not None]


def parse_hashboards(stats: Mapping[str, Any]) -> list[BoardData]:
    slot = dig(stats, ("slots", "int_0"))
    if not isinstance(slot, Mapping):
        return []
    rate = ghs(slot.get("ghs"))
    powered = to_float(slot.get("pwrOn"))
    chips = to_float(slot.get("chips"))
    uid = dig(stats, ("slaves", 0, "uid"))
    return [BoardData(
        position=0, hashrate=rate, working_chips=int(chips) if chips is not None else None,
        board_temperature=to_float(slot.get("temperature")), intake_temperature=to_float(slot.get("temperature")),
        outlet_temperature=to_float(slot.get("temperature1")),
        serial_number=uid if isinstance(uid, str) and uid else None,
        active=(rate.value > 0) if rate is not None else (powered > 0 if powered is not None else None),
    )]


def parse_pools(pool: Any) -> list[PoolGroupData]:
    """The pool the miner runs (it mines on the first enabled pool only)."""
    if not isinstance(pool, Mapping) or not parse_text(pool.get("host")):
        return []
    counters = dig(pool, ("intervals", "int_0"))
    counters = counters if isinstance(counters, Mapping) else {}
    in_service = to_float(counters.get("inService"))
    host = str(pool["host"]).strip()
    url = host if "://" in host else f"stratum+tcp://{host}:{pool.get('port')}"
    accepted, rejected = to_float(counters.get("sharesAccepted")), to_float(counters.get("sharesRejected"))
    return [PoolGroupData(name="default", quota=1, pools=[PoolData(
        position=0, url=url, user=parse_text(pool.get("userName")), active=True,
        alive=in_service > 0 if in_service is not None else None,
        accepted_shares=int(accepted) if accepted is not None else None,
        rejected_shares=int(rejected) if rejected is not None else None,
    )])]


def parse_uptime(value: Any) -> timedelta | None:
    seconds = to_float(value)
    return timedelta(seconds=int(seconds)) if seconds is not None else None


def parse_online(status: Any) -> bool | None:
    return status == "online" if isinstance(status, str) else None


def parse_mode(mode: Any) -> TuningTarget | None:
    return TuningTarget(target_mode=mode) if isinstance(mode, str) and mode else None


def graphql_data(reply: HttpReply, what: str) -> dict[str, Any]:
    """The `data` of a GraphQL reply; AuthenticationError when a field needed the login."""
    try:
        body = decode_json(reply.body)
    except MinerError:
        if reply.status != 200:
            raise MinerAPIError(f"{what}: HTTP {reply.status}") from None
        raise
    if not isinstance(body, dict):
        raise MinerResponseError(f"{what}: expected a JSON object, got {type(body).__name__}")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        codes = {dig(e, ("extensions", "code")) for e in errors}
        message = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
        if "UNAUTHENTICATED" in codes:
            raise AuthenticationError(f"{what}: {message}")
        raise MinerAPIError(f"{what}: {message}")
    if reply.status != 200 or not isinstance(body.get("data"), dict):
        raise MinerAPIError(f"{what}: HTTP {reply.status} without data")
    data: dict[str, Any] = body["data"]
    return data


def action_error(data: Mapping[str, Any], *path: str) -> None:
    """Raises the `error.message` an Apollo action answered with, if any."""
    message = dig(data, (*path, "error", "message"))
    if isinstance(message, str) and message:
        raise MinerAPIError(f"{'.'.join(path)}: {message}")


class FutureBit(Backend):
    family: ClassVar[str] = "futurebit"
    firmware: ClassVar[str] = "Stock"  # pyasic-rs: "FutureBit Stock"
    PRIORITY: ClassVar[int] = 70  # the 308 to /overview is specific; needs no page text
    RPC_BATCHABLE: ClassVar[bool] = False  # no RPC at all
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("futurebit", "futurebit123"),)
    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: [at(MCU, "Mcu", "stats", "result", "stats", "network", parse=parse_mac),
                        at(STATS, *_S0, "master", "hwAddr", parse=parse_hw_addr)],
        DataField.HOSTNAME: at(MCU, "Mcu", "stats", "result", "stats", "hostname", parse=parse_text),
        DataField.SERIAL_NUMBER: at(STATS, *_S0, "slaves", 0, "uid", parse=parse_text),
        DataField.FIRMWARE_VERSION: at(STATS, *_S0, "versions", "miner", parse=parse_text),
        DataField.API_VERSION: at(STATS, *_S0, "statVersion", parse=parse_text),
        DataField.CONTROL_BOARD_VERSION: at(STATS, *_S0, "version", parse=parse_text),
        DataField.HASHRATE: at(STATS, *_S0, "slots", "int_0", "ghs", parse=ghs),
        DataField.HASHBOARDS: at(STATS, *_S0, parse=parse_hashboards),
        DataField.FANS: at(STATS, *_S0, "fans", "int_0", "rpm", parse=parse_fans),
        DataField.WATTAGE: at(STATS, *_S0, "master", "boardsW", parse=to_float),
        DataField.UPTIME: at(STATS, *_S0, "master", "upTime", parse=parse_uptime),
        DataField.POOLS: at(STATS, *_S0, "pool", parse=parse_pools),
        DataField.IS_MINING: at(ONLINE, "Miner", "online", "result", "online", "status", parse=parse_online),
        DataField.TUNING_TARGET: at(SETTINGS, "Settings", "read", "result", "settings", "minerMode",
                                    parse=parse_mode),
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._token: str | None = None

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        web = probe.web
        if web is None or web.status != 308:
            return False
        location = next((v for k, v in web.headers.items() if k.lower() == "location"), "")
        return location.rstrip("/").endswith(REDIRECT_TARGET)

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        query = QUERIES[STATS][0]
        reply = await session.http.request("POST", probe.ip, GRAPHQL, port=API_PORT, json={"query": query})
        stats = dig(graphql_data(reply, "Miner.stats"), _S0)
        if not isinstance(stats, dict):
            return None
        model = model_from_stats(stats)
        if version := parse_text(dig(stats, ("versions", "miner"))):
            probe.learned["firmware_version"] = version
        return cls.device_info(MAKE, model, cls.firmware) if model else None

    # ----- GraphQL transport -------------------------------------------------------------------
    async def graphql(self, query: str, variables: dict[str, Any] | None = None, *,
                      token: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, **({"variables": variables} if variables else {})}
        headers = {"Authorization": f"Bearer {token}"} if token else None
        reply = await self.http("POST", GRAPHQL, port=API_PORT, content=orjson.dumps(body),
                                headers={"Content-Type": "application/json", **(headers or {})})
        return graphql_data(reply, query.split("{", 2)[1].strip() or "graphql")

    async def _login_with(self, creds: Credentials) -> str:
        data = await self.graphql(_LOGIN, {"input": {"password": creds.password.get_secret_value()}})
        message = dig(data, ("Auth", "login", "error", "message"))
        if isinstance(message, str) and message:
            raise AuthenticationError(f"{self.ip}: the Apollo refused the password ({message})")
        token = dig(data, ("Auth", "login", "result", "accessToken"))
        if not isinstance(token, str) or not token:
            raise MinerResponseError("Auth.login: no access token in the reply")
        return token

    async def _ensure_token(self) -> str:
        if self._token is None:
            self._token = await self.with_credentials(self._login_with)
        return self._token

    async def call(self, query: str, variables: dict[str, Any] | None = None, *, locked: bool = True
                   ) -> dict[str, Any]:
        """A query; a `locked` one carries the token and logs in again once when the token was refused."""
        if not locked:
            return await self.graphql(query, variables)
        for attempt in range(2):
            try:
                return await self.graphql(query, variables, token=await self._ensure_token())
            except AuthenticationError:
                self._token = None  # lapsed, or the API restarted: log in again, then one more try
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    async def send(self, command: str) -> Any:
        if command in QUERIES:
            query, locked = QUERIES[command]
            return await self.call(query, locked=locked)
        return await super().send(command)

    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Logs in once before the reads that need the token go out in parallel; a refused login fails
        only those (`Miner.stats` and `Miner.online` need none)."""
        locked = [c for c in commands if QUERIES.get(c, ("", False))[1]]
        results: dict[str, Any] = {}
        if locked:
            try:
                await self._ensure_token()
            except MinerError as exc:
                results.update({c: exc for c in locked})
                commands = [c for c in commands if c not in results]
        results.update(await super().send_many(commands))
        return results

    async def _action(self, group: str, action: str, arguments: str = "", variables: dict[str, Any] | None = None,
                      result: str = "") -> dict[str, Any]:
        """Runs `group.action`, raising its `error.message`."""
        header = "query Action($input: " + arguments + ")" if arguments else ""
        call = f"{action}(input: $input)" if arguments else action
        selection = f"result {{ {result} }} error {{ message }}" if result else "error { message }"
        data = await self.call(f"{header} {{ {group} {{ {call} {{ {selection} }} }} }}", variables)
        action_error(data, group, action)
        return data

    def finalize(self, data: MinerData, replies: Mapping[str, Any]) -> MinerData:
        data = super().finalize(data, replies)
        per_board = self.device.hardware.chips_per_board
        for board in data.hashboards:
            if board.expected_chips is None and per_board is not None:
                board.expected_chips = per_board
        return data

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        await self._action("Miner", "restart")
        return True

    async def pause(self) -> bool:
        await self._action("Miner", "stop")
        return True

    async def resume(self) -> bool:
        await self._action("Miner", "start")
        return True

    async def change_password(self, password: str) -> bool:
        await self._action("Auth", "changePassword", "AuthChangePasswordInput!", {"input": {"password": password}})
        self._token = None
        self.session.credentials.remember(self.ip, self.family, Credentials(username="futurebit", password=password))
        return True

    async def read_logs(self) -> str:
        data = await self._action("Logs", "read", "LogReadInput!", {"input": {"logType": "MINER", "lines": 500}},
                                  result="content")
        content = dig(data, ("Logs", "read", "result", "content"))
        return content if isinstance(content, str) else ""

    async def get_pools_config(self) -> list[PoolGroup]:
        """The pools in the miner's order; disabled ones are left out (the miner does not use them)."""
        data = await self._action("Pool", "list", result="pools { id enabled url username password index }")
        rows = dig(data, ("Pool", "list", "result", "pools"))
        rows = sorted((r for r in rows if isinstance(r, dict) and r.get("enabled")), key=lambda r: r.get("index", 0)) \
            if isinstance(rows, list) else []
        pools = [Pool(url=r["url"], username=str(r.get("username") or ""), password=str(r.get("password") or ""))
                 for r in rows]
        return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """Replaces the pool list (the miner mines on the first, the others wait), then restarts the miner
        service, which reads its pools when it starts."""
        pools = [pool for group in groups for pool in group.pools]
        if len(groups) != 1 or not pools:
            raise ValueError(f"the Apollo takes one group of pools, got {len(groups)} group(s) with "
                             f"{len(pools)} pool(s)")
        items = [{"index": i, "enabled": True, "donation": 0, "url": p.url, "username": p.username,
                  "password": p.password} for i, p in enumerate(pools)]
        await self._action("Pool", "updateAll", "PoolUpdateAllInput!", {"input": {"pools": items}},
                           result="pools { id }")
        return await self.restart()

    async def get_tuning_config(self) -> TuningConfig:
        data = await self._action("Settings", "read", result="settings { minerMode }")
        mode = dig(data, ("Settings", "read", "result", "settings", "minerMode"))
        if not isinstance(mode, str):
            raise MinerResponseError(f"{self.ip}: Settings.read holds no minerMode")
        return TuningConfig.mode(mode)

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        """The miner mode (eco, balanced, turbo; custom keeps the stored voltage and frequency), applied
        by restarting the miner service."""
        if config.target_mode is None or config.target_mode not in MODES:
            raise UnsupportedControlError(f"the Apollo tunes by mode ({', '.join(MODES)}), not by a power or "
                                          "hash rate target")
        await self._action("Settings", "update", "SettingsUpdateInput!", {"input": {"minerMode": config.target_mode}},
                           result="settings { minerMode }")
        return await self.restart()


__all__ = ["FutureBit", "model_from_stats", "parse_hashboards", "parse_mac", "parse_pools"]
