"""IceRiver stock firmware (KS series: kHeavyHash for Kaspa; AL series: Blake3 for Alephium): its web API.

Facts, as pyasic (its IceRiver backend), asic-rs (its IceRiver firmware crate) and other public clients
use the firmware, and from replies of a KS3M and a KS5L published by their owners:

- Identification: `GET /` is the login page titled `<TITLE>用户界面</TITLE>` ("user interface"). There is
  no CGMiner RPC on 4028. The model is in `POST /user/userpanel` (`post=4`) -> `data.model` on newer
  firmware; older firmware answers `"none"` there and the model is the tail of `data.softver1`
  (`ICM168_3_2_10_ks5L_miner` -> KS5L, `..._ks3m_miner` -> KS3M, `release_KS5miner` -> KS5); AL3 and KS7
  boards name a board code instead (`10306`, `11304`), which the catalogue lists as aliases.
- Login: `POST /user/loginpost` with the form fields `post=6`, `user`, `pwd` (default admin / 12345678)
  answers `{"error": 0, "message": ..., "data": {}}`; a non-zero `error` is a refusal. The firmware sets no
  session cookie: clients log in and then send every call on new connections without one (bitcap-ipr
  does exactly that), so the login holds for the client's address. Every call is a POST of form fields
  under `/user/`, each answering `{"error": 0, "data": {...}, "message": ""}`.
- Reads (one call): `userpanel` `post=4` -> `data`: `mac` (`52-8c-..`), `host`, `softver1` (the firmware
  build), `rtpow` (`15011G`, with `unit` `G`: GH/s of the model's algorithm), `runtime` (`DD:HH:MM:SS`),
  `fans` (RPMs), `boards[]` (`no` from 1, `chipnum`, `freq`, `rtpow`, `intmp` board and `outtmp` chip
  temperatures), `pools[]` (`no`, `addr`, `user`, `connect` 1 / -1, `state` 1 alive, `accepted`,
  `rejected`), `locate` (the locate LED), `powstate`, and the health flags `netstate`, `fanstate`,
  `tempstate`. No power, serial number or control board is reported.
- Controls: `userpanel` `post=5` `locate=1|0` (locate LED), `post=3` (reboot); `machineconfig` `post=1`
  reads the configured `pools` (passwords included), fan `ratio` and work `mode` (1 normal, 0 sleep);
  `post=2` writes the pools (`pool{1..3}address`, `pool{1..3}miner`, `pool{1..3}pwd`) and `post=3`
  the work mode, each with `fanratio` and `fanmode` (`normal` or `sleep`: the work mode, despite the
  name); `systemconfig` `post=2` (`nowpwd`, `newpwd`, `compwd`) changes the web password.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from asicfleet._errors import AuthenticationError, MinerAPIError, MinerResponseError
from asicfleet._session import Session
from asicfleet.backends._base import MAX_BOARDS, Backend, DataField, Probe, Source, at, parse_text, to_float
from asicfleet.config import Credentials, Pool, PoolGroup
from asicfleet.data import (
    BoardData,
    DeviceInfo,
    FanData,
    HashAlgorithm,
    HashRate,
    MessageSeverity,
    MinerData,
    MinerMessage,
    PoolData,
    PoolGroupData,
)
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import HttpReply, decode_json

MAKE = Make.ICERIVER.value
WEB_MARKER = "<TITLE>用户界面</TITLE>"
USERPANEL = "web:userpanel"
MAX_POOLS = 3
# the health flags of userpanel, and what a false one means
HEALTH_FLAGS = (("netstate", "network or pool connection lost"), ("fanstate", "fan fault"),
                ("tempstate", "temperature out of range"))
RATE_UNITS = {"K": "KH/s", "M": "MH/s", "G": "GH/s", "T": "TH/s", "P": "PH/s"}


# ----- pure parsers: replies in, model values out -----------------------------------------------------
def panel(reply: Any) -> dict[str, Any]:
    """The `data` object of a userpanel reply; ValueError when the reply is an error or has none."""
    if not isinstance(reply, dict):
        raise ValueError("reply is not a JSON object")
    if to_float(reply.get("error")) not in (None, 0):
        raise ValueError(f"the firmware answered error {reply.get('error')}: {reply.get('message')}")
    data = reply.get("data")
    if not isinstance(data, dict):
        raise ValueError("reply without a data object")
    return data


def parse_rate(value: Any, unit: Any = None) -> HashRate | None:
    """`15011G`, `5160.37G`, or a bare number in `unit` (`G`), as TH/s; None when absent."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number, suffix = float(value), unit
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        digits = text.rstrip("KMGTPEkmgtpeHh/s ")
        number, suffix = float(digits), text[len(digits):].strip() or unit
    else:
        return None
    prefix = str(suffix or "").strip().upper()[:1]
    if prefix not in RATE_UNITS:
        raise ValueError(f"unknown hash rate unit {suffix!r}")
    return HashRate(value=number, unit=RATE_UNITS[prefix]).into_unit("TH/s")


def parse_hashrate(data: Mapping[str, Any]) -> HashRate | None:
    return parse_rate(data.get("rtpow"), data.get("unit"))


def parse_mac(value: Any) -> str | None:
    """`52-8c-03-36-ec-e7` -> `52:8C:03:36:EC:E7`."""
    text = parse_text(value)
    return text.replace("-", ":").upper() if text is not None else None


def parse_runtime(value: Any) -> int | None:
    """`DD:HH:MM:SS` -> seconds."""
    text = parse_text(value)
    if text is None:
        return None
    days, hours, minutes, seconds = (int(part) for part in text.split(":"))
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_fans(value: Any) -> list[FanData]:
    return [FanData(position=i, rpm=to_float(rpm)) for i, rpm in enumerate(value or [])]


def parse_hashboards(data: Mapping[str, Any], board_count: int | None = None,
                     chips_per_board: int | None = None) -> list[BoardData]:
    """Each reported board at its slot (`no` counts from 1); expected slots the reply lacks stay empty."""
    unit = data.get("unit")
    seen: dict[int, BoardData] = {}
    for raw in data.get("boards") or []:
        if not isinstance(raw, dict) or to_float(raw.get("no")) is None:
            continue
        position = int(to_float(raw["no"]) or 0) - 1
        rate = parse_rate(raw.get("rtpow"), unit)
        chips = to_float(raw.get("chipnum"))
        seen[position] = BoardData(
            position=position,
            hashrate=rate,
            board_temperature=to_float(raw.get("intmp")) or None,
            outlet_temperature=to_float(raw.get("outtmp")) or None,  # the hottest chip side
            expected_chips=chips_per_board,
            working_chips=int(chips) if chips is not None else None,
            frequency=to_float(raw.get("freq")) or None,
            active=bool(raw.get("state")) and rate is not None and rate.value > 0,
        )
    for position in range(min(board_count or 0, MAX_BOARDS)):
        seen.setdefault(position, BoardData(position=position, expected_chips=chips_per_board, active=False))
    return [seen[k] for k in sorted(seen)]


def parse_pools(value: Any) -> list[PoolGroupData]:
    """The three pool slots as one group; empty slots are left out."""
    pools = []
    for raw in value or []:
        if not isinstance(raw, dict) or not parse_text(raw.get("addr")):
            continue
        number = to_float(raw.get("no"))
        accepted, rejected = to_float(raw.get("accepted")), to_float(raw.get("rejected"))
        pools.append(PoolData(
            position=int(number) - 1 if number is not None else None,
            url=parse_text(raw.get("addr")),
            user=parse_text(raw.get("user")),
            accepted_shares=int(accepted) if accepted is not None else None,
            rejected_shares=int(rejected) if rejected is not None else None,
            active=parse_flag(raw.get("connect")),  # true or 1 connected; false or -1 standing by
            alive=parse_flag(raw.get("state")),
        ))
    return [PoolGroupData(name="default", quota=1, pools=pools)]


def parse_flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    number = to_float(value)
    return None if number is None else number == 1


def parse_messages(data: Mapping[str, Any]) -> list[MinerMessage]:
    """A health flag that is false is a warning (the web page shows it red); a missing one says nothing."""
    return [MinerMessage(code=0, message=text, severity=MessageSeverity.WARNING)
            for flag, text in HEALTH_FLAGS if parse_flag(data.get(flag)) is False]


def model_from_panel(data: Mapping[str, Any]) -> str | None:
    """The model: `model` when the firmware fills it, else the tail of `softver1`; the catalogue's name
    when the string is known, the raw string otherwise (never guessed)."""
    raw = parse_text(data.get("model"))
    if raw is None or raw.lower() == "none":
        build = parse_text(data.get("softver1"))
        if build is None:
            return None
        parts = build.split("_")
        raw = parts[-2] if len(parts) > 1 and parts[-1].lower() == "miner" else parts[-1]
        raw = raw[:-5] if raw.lower().endswith("miner") else raw
        if not raw or raw.lower() == "miner":
            return None
        raw = raw.upper()
    known = lookup_model(MAKE, raw)
    return known.name if known is not None else raw


def _retag(rate: HashRate | None, algo: HashAlgorithm) -> HashRate | None:
    return rate.model_copy(update={"algo": algo}) if rate is not None else None


class IceRiver(Backend):
    family: ClassVar[str] = "iceriver"
    firmware: ClassVar[str] = "Stock"  # pyasic's name for a maker's own firmware
    PRIORITY: ClassVar[int] = 60  # a page title no other firmware has
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("admin", "12345678"),)

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at(USERPANEL, "mac", parse=parse_mac),
        DataField.HOSTNAME: at(USERPANEL, "host", parse=parse_text),
        DataField.FIRMWARE_VERSION: at(USERPANEL, "softver1", parse=parse_text),
        DataField.HASHRATE: at(USERPANEL, parse=parse_hashrate),
        DataField.FANS: at(USERPANEL, "fans", parse=parse_fans),
        DataField.UPTIME: at(USERPANEL, "runtime", parse=parse_runtime),
        DataField.POOLS: at(USERPANEL, "pools", parse=parse_pools),
        DataField.MESSAGES: at(USERPANEL, parse=parse_messages),
        DataField.IS_MINING: at(USERPANEL, "powstate", parse=parse_flag),
        DataField.LIGHT_FLASHING: at(USERPANEL, "locate", parse=parse_flag),
        # HASHBOARDS is resolved in `sources()`: it needs the model's board count.
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._logged_in = False
        self._password: str | None = None

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        return probe.web is not None and WEB_MARKER in probe.web.text

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        reader = cls(probe.ip, DeviceInfo(make=MAKE, model="", firmware=cls.firmware), session)
        data = panel(await reader.call("userpanel", {"post": 4}))
        model = model_from_panel(data)
        if model is None:
            return None
        probe.learned["firmware_version"] = parse_text(data.get("softver1"))
        return cls.device_info(MAKE, model, cls.firmware)

    # ----- web transport ----------------------------------------------------------------------
    async def _login_with(self, creds: Credentials) -> None:
        password = creds.password.get_secret_value()
        reply = await self.http("POST", "/user/loginpost", data={"post": 6, "user": creds.username, "pwd": password})
        body = self._json(reply, "POST loginpost")
        if to_float(body.get("error")) != 0:
            raise AuthenticationError(f"{self.ip}: IceRiver refused the login ({body.get('message') or 'error'})")
        self._password = password  # changing it needs the current one

    async def _login(self) -> None:
        await self.with_credentials(self._login_with)
        self._logged_in = True

    @staticmethod
    def _json(reply: HttpReply, what: str) -> dict[str, Any]:
        if reply.status != 200:
            raise MinerAPIError(f"{what}: HTTP {reply.status}")
        body = decode_json(reply.body)
        if not isinstance(body, dict):
            raise MinerResponseError(f"{what}: the reply is not a JSON object")
        return body

    async def call(self, command: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /user/<command>` with form fields, logged in first; logs in again once when the firmware
        has forgotten this client (after a reboot), then returns the reply (`error` 0) or raises."""
        for attempt in range(2):
            if not self._logged_in:
                await self._login()
            reply = self._json(await self.http("POST", f"/user/{command}", data=dict(fields)),
                               f"POST {command}")
            if to_float(reply.get("error")) == 0:
                return reply
            self._logged_in = False  # not logged in (any more), or refused: one fresh login, then give up
            if attempt == 1:
                raise MinerAPIError(f"POST {command}: error {reply.get('error')} ({reply.get('message') or ''})")
        raise AssertionError("unreachable")

    async def send(self, command: str) -> Any:
        if command == USERPANEL:
            return await self.call("userpanel", {"post": 4})
        return await super().send(command)

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = super().sources(wanted)
        out = {name: [Source(s.command, ("data", *s.path), s.parse) if s.command == USERPANEL else s
                      for s in sources] for name, sources in out.items()}
        if DataField.HASHBOARDS in wanted:
            hw = self.device.hardware
            out[DataField.HASHBOARDS] = [at(USERPANEL, "data", parse=lambda d: parse_hashboards(
                d, hw.board_count, hw.chips_per_board))]
        return out

    def finalize(self, data: MinerData, replies: Mapping[str, Any]) -> MinerData:
        """Every rate is of the model's algorithm (kHeavyHash, Blake3), not SHA-256."""
        data = super().finalize(data, replies)
        algo = self.device.algo
        data.hashrate = _retag(data.hashrate, algo)
        data.expected_hashrate = _retag(data.expected_hashrate, algo)
        for board in data.hashboards:
            board.hashrate = _retag(board.hashrate, algo)
            board.expected_hashrate = _retag(board.expected_hashrate, algo)
        return data

    # ----- controls ---------------------------------------------------------------------------
    async def _machine_config(self) -> dict[str, Any]:
        return panel(await self.call("machineconfig", {"post": 1}))

    @staticmethod
    def _config_fields(config: Mapping[str, Any], mining: bool) -> dict[str, Any]:
        """What every machineconfig write carries besides its own change: fan ratio and work mode."""
        return {"fanratio": str(int(to_float(config.get("ratio")) or 0)), "fanmode": "normal" if mining else "sleep"}

    async def restart(self) -> bool:
        await self.call("userpanel", {"post": 3})
        self._logged_in = False  # a reboot forgets every login
        return True

    async def set_fault_light(self, on: bool) -> bool:
        await self.call("userpanel", {"post": 5, "locate": 1 if on else 0})
        return True

    async def _set_mode(self, mining: bool) -> bool:
        config = await self._machine_config()
        fields: dict[str, Any] = {"post": 3, **self._config_fields(config, mining)}
        for number, pool in enumerate(config.get("pools") or [], start=1):
            if isinstance(pool, dict):  # the web page sends the pools along; so do we, unchanged
                fields |= {f"pool{number}address": pool.get("addr") or "", f"pool{number}miner": pool.get("user") or "",
                           f"pool{number}pwd": pool.get("pass") or ""}
        await self.call("machineconfig", fields)
        return True

    async def pause(self) -> bool:
        return await self._set_mode(False)

    async def resume(self) -> bool:
        return await self._set_mode(True)

    async def get_pools_config(self) -> list[PoolGroup]:
        pools = [Pool(url=p["addr"], username=p["user"], password=str(p.get("pass") or "x"))
                 for p in (await self._machine_config()).get("pools") or []
                 if isinstance(p, dict) and parse_text(p.get("addr")) and parse_text(p.get("user"))]
        return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """The firmware has one group of three slots; slots beyond the pools given are emptied."""
        if len(groups) != 1:
            raise ValueError(f"IceRiver has one pool group (three slots), got {len(groups)} groups")
        config = await self._machine_config()
        mining = to_float(config.get("mode")) != 0
        fields: dict[str, Any] = {"post": 2, **self._config_fields(config, mining)}
        pools = groups[0].pools
        for number in range(1, MAX_POOLS + 1):
            pool = pools[number - 1] if number <= len(pools) else None
            fields |= {f"pool{number}address": pool.url if pool else "",
                       f"pool{number}miner": pool.username if pool else "",
                       f"pool{number}pwd": pool.password if pool else ""}
        await self.call("machineconfig", fields)
        return True

    async def change_password(self, password: str) -> bool:
        if not password:
            raise ValueError("the new web password must not be empty")
        if self._password is None:
            await self._login()
        assert self._password is not None
        await self.call("systemconfig", {"post": 2, "nowpwd": self._password, "newpwd": password, "compwd": password})
        self._password = password
        self.session.credentials.remember(self.ip, self.family, Credentials(username="admin", password=password))
        return True


__all__ = ["IceRiver", "model_from_panel", "panel", "parse_hashboards", "parse_rate"]

