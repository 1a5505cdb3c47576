"""Innosilicon stock firmware: `innominer` (a CGMiner build) on 4028 and the DragonMint-derived web API behind a JWT.

Facts, as pyasic and Foreman use these controllers and as Foreman's tests restate their replies
(tests/fixtures/innosilicon/README.md):

- Identification: every RPC reply's `STATUS[0].Description` names the program, `innominer <model>-<version>`
  (pyasic's `INNOMINER` check); the web page names `DragonMint`. The model is web `POST /api/type` ->
  `type` (`T3H+`, `A11 Pro`...), which needs the login.
- Login: `POST /api/auth` with `username` and `password` (default admin / admin) answers `{"jwt": ...}`; the
  token goes in `Authorization: Bearer <jwt>`. Every web call is a POST and answers `success`; a lapsed token
  answers `{"success": false, "token": "expired"}`.
- Reads: RPC `version` (`CGMiner`: the firmware version, `API`), `summary` (`MHS 1m`, MH/s; `Elapsed`), `stats`
  (per board: `Chain ID`, `Num active chips`, `Temp`, `Temp min`, `Temp max`, `MHS av`), `pools`; web `getAll`
  (`all.mac`, `all.power` in W), `overview` (`version.hwver`: the control board), `getErrorDetail` (`code`,
  non-zero on a fault). The firmware reports its fans as one duty percentage, not RPM, so `fans` stays
  empty; it reports no serial number, hostname or power limit (those stay None).
- Controls: `reboot`, pools by `pools` / `updatePools` (`Pool1`, `UserName1`, `Password1` ... three slots, one
  ordered list), `updatePassword` (`user`, `currentPassword`, `newPassword`). The firmware has no pause that
  resumes, no LED and no power limit over this API.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar

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
    dig,
    parse_mac,
    parse_text,
    reply_text,
    to_float,
)
from asicfleet.config import Credentials, Pool, PoolGroup
from asicfleet.data import BoardData, DeviceInfo, HashAlgorithm, HashRate, MinerMessage, PoolData, PoolGroupData
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import HttpReply, decode_json

MAKE = Make.INNOSILICON.value
RPC_MARKER = "INNOMINER"
WEB_MARKER = "DragonMint"
MAX_POOLS = 3
GET_ALL, OVERVIEW, ERRORS = "web:getAll", "web:overview", "web:getErrorDetail"


# ----- pure parsers: replies in, model values out -----------------------------------------------------
def mhs(value: Any, algo: HashAlgorithm = HashAlgorithm.SHA256) -> HashRate | None:
    number = to_float(value)
    return None if number is None else HashRate(value=number, unit="MH/s", algo=algo).into_unit("TH/s")


def board_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-board rows of `stats` (the ones with a `Chain ID`; pool rows follow them)."""
    rows = stats.get("STATS")
    if not isinstance(rows, list):
        raise ValueError("stats reply without a STATS list")
    return [r for r in rows if isinstance(r, dict) and to_float(r.get("Chain ID")) is not None]


def parse_hashboards(stats: Mapping[str, Any], board_count: int | None = None, chips_per_board: int | None = None,
                     algo: HashAlgorithm = HashAlgorithm.SHA256) -> list[BoardData]:
    by_chain = {int(r["Chain ID"]): r for r in board_rows(stats)}
    count = bounded_count(max(board_count or 0, max(by_chain, default=-1) + 1), MAX_BOARDS)
    boards = []
    for position in range(count):
        row = by_chain.get(position)
        if row is None:
            boards.append(BoardData(position=position, expected_chips=chips_per_board, active=False))
            continue
        rate = mhs(row.get("MHS av"), algo)
        chips = to_float(row.get("Num active chips"))
        boards.append(BoardData(
            position=position,
            hashrate=rate,
            board_temperature=to_float(row.get("Temp")) or None,
            # the coolest and the hottest chip (the firmware does not say where its sensors sit)
            intake_temperature=to_float(row.get("Temp min")) or None,
            outlet_temperature=to_float(row.get("Temp max")) or None,
            expected_chips=chips_per_board,
            working_chips=int(chips) if chips is not None else None,
            active=bool((rate is not None and rate.value > 0) or (chips or 0) > 0),
        ))
    return boards


def parse_pools(reply: Mapping[str, Any]) -> list[PoolGroupData]:
    group = PoolGroupData(name="default", quota=1)
    for row in reply.get("POOLS") or []:
        if not isinstance(row, dict):
            continue
        accepted, rejected = to_float(row.get("Accepted")), to_float(row.get("Rejected"))
        group.pools.append(PoolData(
            position=int(row["POOL"]) if to_float(row.get("POOL")) is not None else None,
            url=parse_text(row.get("URL")),
            user=parse_text(row.get("User")),
            accepted_shares=int(accepted) if accepted is not None else None,
            rejected_shares=int(rejected) if rejected is not None else None,
            active=row.get("Stratum Active") if isinstance(row.get("Stratum Active"), bool) else None,
            alive=row.get("Status") == "Alive" if "Status" in row else None,
        ))
    return [group]


def parse_messages(detail: Mapping[str, Any]) -> list[MinerMessage]:
    """`getErrorDetail.code`: 0 when healthy, else the firmware's error code (its meaning is in the maker's
    manual; the code is reported as it is)."""
    code = to_float(detail.get("code"))
    if not code:
        return []
    return [MinerMessage(code=int(code), message=f"Innosilicon error code {int(code)}")]


def parse_total_hash(all_reply: Mapping[str, Any], algo: HashAlgorithm = HashAlgorithm.SHA256) -> HashRate | None:
    """`getAll.all.total_hash`: `Hash Rate H` in H/s, or `Hash Rate` in MH/s on firmwares without it."""
    total = dig(all_reply, ("all", "total_hash"))
    if not isinstance(total, dict):
        raise ValueError("getAll without all.total_hash")
    if to_float(total.get("Hash Rate H")) is not None:
        return HashRate(value=to_float(total["Hash Rate H"]) or 0.0, unit="H/s", algo=algo).into_unit("TH/s")
    return mhs(total.get("Hash Rate"), algo)


def model_from_type(reply: Any) -> str | None:
    """`type.type` (`T3H+`) in the catalogue's spelling; None when absent."""
    raw = reply.get("type") if isinstance(reply, dict) else None
    if not isinstance(raw, str) or not raw.strip():
        return None
    known = lookup_model(MAKE, raw.strip())
    return known.name if known is not None else raw.strip()


def _names_innominer(reply: Any) -> bool:
    return RPC_MARKER in reply_text(reply).upper()


class Innosilicon(Backend):
    family: ClassVar[str] = "innosilicon"
    firmware: ClassVar[str] = "Stock"  # pyasic's name for a maker's own firmware
    PRIORITY: ClassVar[int] = 60  # `innominer` and the DragonMint page are specific
    RPC_BATCHABLE: ClassVar[bool] = True
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("admin", "admin"),)

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: [at(GET_ALL, "all", "mac", parse=parse_mac),
                        at(OVERVIEW, "version", "ethaddr", parse=parse_mac)],
        DataField.FIRMWARE_VERSION: at("rpc:version", "VERSION", 0, "CGMiner", parse=parse_text),
        DataField.API_VERSION: at("rpc:version", "VERSION", 0, "API", parse=parse_text),
        DataField.CONTROL_BOARD_VERSION: at(OVERVIEW, "version", "hwver", parse=parse_text),
        DataField.WATTAGE: at(GET_ALL, "all", "power", parse=to_float),
        DataField.UPTIME: at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=to_float),
        DataField.POOLS: at("rpc:pools", parse=parse_pools),
        DataField.MESSAGES: at(ERRORS, parse=parse_messages),
        DataField.IS_MINING: at("rpc:summary", "SUMMARY", 0, "MHS 1m", parse=lambda v: (to_float(v) or 0) > 0),
        # HASHRATE and HASHBOARDS are resolved in `sources()`: they need the model's algorithm and shape.
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._token: str | None = None
        self._login: Credentials | None = None

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if any(isinstance(reply, dict) and _names_innominer(reply) for reply in probe.rpc.values()):
            return True
        return probe.web is not None and WEB_MARKER in probe.web.text

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        """The model from `POST /api/type`, after a login with the configured or default credentials."""
        backend = cls(probe.ip, DeviceInfo(make=MAKE, model="", firmware=cls.firmware), session)
        reply = await backend.call("type")
        model = model_from_type(reply)
        version = probe.rpc_reply("version")
        if version is not None:
            probe.learned["firmware_version"] = parse_text(dig(version, ("VERSION", 0, "CGMiner")))
        return cls.device_info(MAKE, model, cls.firmware) if model is not None else None

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = super().sources(wanted)
        algo, hw = self.device.algo, self.device.hardware
        if DataField.HASHRATE in wanted:
            out[DataField.HASHRATE] = [at("rpc:summary", "SUMMARY", 0, "MHS 1m", parse=lambda v: mhs(v, algo)),
                                       at(GET_ALL, parse=lambda r: parse_total_hash(r, algo))]
        if DataField.HASHBOARDS in wanted:
            out[DataField.HASHBOARDS] = [at("rpc:stats", parse=lambda r: parse_hashboards(
                r, hw.board_count, hw.chips_per_board, algo))]
        return out

    # ----- web transport ----------------------------------------------------------------------
    async def _auth_with(self, creds: Credentials) -> str:
        reply = await self.http("POST", "/api/auth", data={"username": creds.username,
                                                           "password": creds.password.get_secret_value()})
        body = self._decoded(reply)
        if reply.status in (401, 403) or (isinstance(body, dict) and body.get("success") is False):
            raise AuthenticationError(f"{self.ip}: Innosilicon refused the login")
        self._check(reply, body, "POST /api/auth")
        token = dig(body, ("jwt",))
        if not isinstance(token, str) or not token:
            raise AuthenticationError(f"{self.ip}: Innosilicon's login answered without a token")
        self._login = creds
        return token

    async def _ensure_token(self) -> str:
        if self._token is None:
            self._token = await self.with_credentials(self._auth_with)
        return self._token

    @staticmethod
    def _decoded(reply: HttpReply) -> Any:
        with contextlib.suppress(MinerError):
            return decode_json(reply.body) if reply.body.strip() else None
        return None

    @staticmethod
    def _check(reply: HttpReply, body: Any, what: str) -> None:
        if not 200 <= reply.status < 300:
            raise MinerAPIError(f"{what}: HTTP {reply.status}")
        if not isinstance(body, dict):
            raise MinerResponseError(f"{what}: the reply is not a JSON object")
        if body.get("success") is not True:
            message = body.get("msg") or body.get("message") or "the firmware refused it"
            raise MinerAPIError(f"{what}: {message}")

    async def call(self, command: str, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One `POST /api/<command>` with the token; a lapsed token (or a reboot) logs in again once."""
        what = f"POST /api/{command}"
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {await self._ensure_token()}"}
            reply = await self.http("POST", f"/api/{command}", headers=headers, json=dict(fields or {}))
            body = self._decoded(reply)
            lapsed = reply.status == 401 or (isinstance(body, dict) and body.get("token") == "expired")
            if not lapsed:
                break
            self._token = None
            if attempt == 1:
                raise AuthenticationError(f"{what}: the token was refused")
        self._check(reply, body, what)
        assert isinstance(body, dict)  # _check refuses anything else
        return body

    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            return await self.call(command[4:])
        return await super().send(command)

    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Logs in once before the web reads go out in parallel; a refused login fails only those."""
        locked = [c for c in commands if c.startswith("web:")]
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
        await self.call("reboot")
        self._token = None  # the reboot forgets every token
        return True

    async def get_pools_config(self) -> list[PoolGroup]:
        rows = (await self.call("pools")).get("pools")
        if not isinstance(rows, list):
            raise MinerResponseError(f"{self.ip}: pools without a pools list")
        pools = [Pool(url=r["url"], username=str(r.get("user") or ""), password=str(r.get("pass") or "x"))
                 for r in rows if isinstance(r, dict) and parse_text(r.get("url"))]
        return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """Three pool slots in one ordered list: the slots not given are written empty."""
        if len(groups) != 1:
            raise ValueError(f"Innosilicon takes one pool group (up to {MAX_POOLS} pools), got {len(groups)} groups")
        pools = groups[0].pools
        if not pools or len(pools) > MAX_POOLS:
            raise ValueError(f"Innosilicon takes 1 to {MAX_POOLS} pools, got {len(pools)}")
        fields: dict[str, str] = {}
        for slot in range(1, MAX_POOLS + 1):
            pool = pools[slot - 1] if slot <= len(pools) else None
            fields.update({f"Pool{slot}": pool.url if pool else "", f"UserName{slot}": pool.username if pool else "",
                           f"Password{slot}": pool.password if pool else ""})
        await self.call("updatePools", fields)
        return True

    async def change_password(self, password: str) -> bool:
        if not password:
            raise ValueError("the new Innosilicon password must not be empty")
        await self._ensure_token()
        assert self._login is not None  # set by the login that gave the token
        await self.call("updatePassword", {"user": self._login.username,
                                           "currentPassword": self._login.password.get_secret_value(),
                                           "newPassword": password})
        self._login = Credentials(username=self._login.username, password=password)
        self.session.credentials.remember(self.ip, self.family, self._login)
        return True
