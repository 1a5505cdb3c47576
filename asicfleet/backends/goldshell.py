"""Goldshell stock firmware: the "cloud-box" web UI's `/mcb/` API behind a JWT, and the RPC on 4028 (no login).

Facts, as pyasic, pyasic-rs and Foreman use these controllers and as published captures show them
(tests/fixtures/goldshell/README.md):

- Identification: the web page is titled `cloud-box`; the RPC program is a BFGMiner derivative
  (`intminer 5.4.2`), whose devices use the `intchains_qomo` driver (older Kadena units: `kdaminer`). The
  model is `GET /mcb/status` -> `model` (`Goldshell-KD5`), which needs no login, as does `firmware` there.
- Login: `GET /user/login?username=admin&password=<hex>&cipher=true` answers `{"JWT Token": ...}`; `<hex>` is
  the password AES-128-CBC-encrypted (key sixteen `!`, zero IV, zero padding), as the stock UI sends it. The
  token goes in `Authorization: Bearer <token>` for every other `/mcb/` path. Default login admin / 123456789.
- Reads: RPC `summary` (`MHS 20s`, MH/s, and `Elapsed`), `devs` (per board: `MHS 20s`, `tstemp-0/1` chip
  channels, `tstemp-2` the board sensor, `fan0..` the unit's fans, `clock`), `devdetails` (`chips-nr`),
  `version` (`API`), `pools`; web `status` (firmware, `mcbversion`: the controller board) and `setting`
  (`name` is the MAC; `ledcontrol`; `powerplans` and `select`, the plan in use; level 3 is sleep).
  The firmware reports no power draw, serial number or hostname: those stay None.
- Controls: `PUT /mcb/setting` with the settings object written back (`select` a plan: pause is the sleep
  plan, resume the stock plan, as pyasic does; `ledcontrol` the LED), `PUT /mcb/restart` (reboots the
  controller), pools by `PUT /mcb/delpool` for each current pool then `PUT /mcb/newpool` for each new one
  (pyasic's way; up to three), `PUT /user/updatepd` (password).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

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
from asicfleet.data import BoardData, DeviceInfo, FanData, HashAlgorithm, HashRate, PoolData, PoolGroupData
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import HttpReply, decode_json

MAKE = Make.GOLDSHELL.value
WEB_MARKER = "cloud-box"
RPC_MARKERS = ("INTMINER", "INTCHAINS_QOMO", "KDAMINER")
LOGIN_KEY = b"!" * 16
SLEEP_LEVEL, STOCK_LEVEL = 3, 0
MAX_POOLS = 3
STATUS, SETTING = "web:status", "web:setting"
DEVS, DETAILS = "rpc:devs", "rpc:devdetails"


# ----- pure parsers: replies in, model values out -----------------------------------------------------
def login_cipher(password: str) -> str:
    """The password as the stock UI sends it with `cipher=true` (AES-128-CBC, key sixteen `!`, zero IV,
    zero padding, hex)."""
    plain = password.encode()
    plain += b"\0" * (-len(plain) % 16)
    encryptor = Cipher(algorithms.AES(LOGIN_KEY), modes.CBC(bytes(16))).encryptor()
    return (encryptor.update(plain) + encryptor.finalize()).hex()


def mhs(value: Any, algo: HashAlgorithm = HashAlgorithm.SHA256) -> HashRate | None:
    """An MH/s figure (every Goldshell reply uses MH/s), as TH/s of the model's algorithm."""
    number = to_float(value)
    return None if number is None else HashRate(value=number, unit="MH/s", algo=algo).into_unit("TH/s")


def _rows(reply: Mapping[str, Any], *sections: str) -> list[dict[str, Any]]:
    """The rows of the first of `sections` the reply has (devdetails answers under `DEVS`, as pyasic reads it)."""
    for section in sections:
        rows = reply.get(section)
        if isinstance(rows, list):
            return [r for r in rows if isinstance(r, dict)]
    raise ValueError(f"reply without {' or '.join(sections)}")


def _sensor(value: Any) -> float | None:
    reading = to_float(value)
    return reading if reading is not None and 0 < reading <= 200 else None


def parse_hashboards(devs: Mapping[str, Any], details: Mapping[str, Any] | None = None,
                     board_count: int | None = None, chips_per_board: int | None = None,
                     algo: HashAlgorithm = HashAlgorithm.SHA256) -> list[BoardData]:
    """Boards from `devs` (by `ID`), with working chips from `devdetails`; slots the model has but the
    firmware does not list are reported inactive."""
    by_id = {int(r["ID"]): r for r in _rows(devs, "DEVS") if to_float(r.get("ID")) is not None}
    chips = {int(r["ID"]): to_float(r.get("chips-nr")) for r in _rows(details, "DEVS", "DEVDETAILS")
             if to_float(r.get("ID")) is not None} if details is not None else {}
    count = bounded_count(max(board_count or 0, max(by_id, default=-1) + 1), MAX_BOARDS)
    boards = []
    for position in range(count):
        row = by_id.get(position)
        if row is None:
            boards.append(BoardData(position=position, expected_chips=chips_per_board, active=False))
            continue
        rate = mhs(row.get("MHS 20s", row.get("MHS av")), algo)
        channels = [t for t in (_sensor(row.get("tstemp-0")), _sensor(row.get("tstemp-1"))) if t is not None]
        working = chips.get(position)
        boards.append(BoardData(
            position=position,
            hashrate=rate,
            board_temperature=_sensor(row.get("tstemp-2")),
            # the two chip channels are not placed at the intake or the outlet: the cooler one stands for the
            # intake side, the warmer for the outlet, as pyasic-rs reads them
            intake_temperature=min(channels) if channels else None,
            outlet_temperature=max(channels) if channels else None,
            expected_chips=chips_per_board,
            working_chips=int(working) if working is not None else None,
            frequency=to_float(row.get("clock")) or None,
            active=bool(rate is not None and rate.value > 0),
        ))
    return boards


def parse_fans(devs: Mapping[str, Any]) -> list[FanData]:
    """`fan0..fanN` of the first `devs` row (every row repeats the unit's fans)."""
    rows = _rows(devs, "DEVS")
    if not rows:
        return []
    fans = sorted((int(k[3:]), to_float(v)) for k, v in rows[0].items() if k.startswith("fan") and k[3:].isdigit())
    return [FanData(position=i, rpm=rpm) for i, rpm in fans]


def parse_pools(reply: Mapping[str, Any]) -> list[PoolGroupData]:
    group = PoolGroupData(name="default", quota=1)
    for row in _rows(reply, "POOLS"):
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


def plan_level(setting: Mapping[str, Any]) -> int | None:
    """The level of the power plan in use (`powerplans[select].level`)."""
    plans, select = setting.get("powerplans"), setting.get("select")
    if not isinstance(plans, list) or not isinstance(select, int) or not 0 <= select < len(plans):
        return None
    level = plans[select].get("level") if isinstance(plans[select], dict) else None
    return int(level) if isinstance(level, int) else None


def parse_is_mining(setting: Mapping[str, Any]) -> bool | None:
    level = plan_level(setting)
    return None if level is None else level != SLEEP_LEVEL


def plan_index(setting: Mapping[str, Any], level: int) -> int:
    """The index in `powerplans` of the plan at `level`."""
    for index, plan in enumerate(setting.get("powerplans") or []):
        if isinstance(plan, dict) and plan.get("level") == level:
            return index
    raise MinerResponseError(f"the settings list no power plan of level {level}")


def model_from_status(status: Any) -> str | None:
    """`status.model` (`Goldshell-KD5`) in the catalogue's spelling; None when absent."""
    raw = status.get("model") if isinstance(status, dict) else None
    if not isinstance(raw, str) or not raw.strip():
        return None
    known = lookup_model(MAKE, raw.strip())
    return known.name if known is not None else raw.strip()


def _names_goldshell(reply: Any) -> bool:
    text = reply_text(reply).upper()
    return any(marker in text for marker in RPC_MARKERS)


class Goldshell(Backend):
    family: ClassVar[str] = "goldshell"
    firmware: ClassVar[str] = "Stock"  # pyasic's name for a maker's own firmware (pyasic-rs: "Goldshell Stock")
    PRIORITY: ClassVar[int] = 60  # a page title and a driver name specific to Goldshell
    RPC_BATCHABLE: ClassVar[bool] = True
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("admin", "123456789"),)

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at(SETTING, "name", parse=parse_mac),
        DataField.FIRMWARE_VERSION: at(STATUS, "firmware", parse=parse_text),
        DataField.API_VERSION: at("rpc:version", "VERSION", 0, "API", parse=parse_text),
        DataField.CONTROL_BOARD_VERSION: at(STATUS, "mcbversion", parse=parse_text),
        DataField.FANS: at(DEVS, parse=parse_fans),
        DataField.UPTIME: at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=to_float),
        DataField.POOLS: at("rpc:pools", parse=parse_pools),
        DataField.IS_MINING: [at(SETTING, parse=parse_is_mining),
                              at("rpc:summary", "SUMMARY", 0, "MHS 20s", parse=lambda v: (to_float(v) or 0) > 0)],
        DataField.LIGHT_FLASHING: at(SETTING, "ledcontrol", parse=lambda v: v if isinstance(v, bool) else None),
        # HASHRATE and HASHBOARDS are resolved in `sources()`: they need the model's algorithm and shape.
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._token: str | None = None
        self._password: str | None = None
        self._username = "admin"

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if probe.web is not None and WEB_MARKER in probe.web.text:
            return True
        return any(isinstance(reply, dict) and _names_goldshell(reply) for reply in probe.rpc.values())

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        """The model from `/mcb/status`, which answers without a login."""
        reply = await session.http.request("GET", probe.ip, "/mcb/status")
        if reply.status != 200:
            return None
        try:
            status = decode_json(reply.body)
        except MinerError:
            return None
        model = model_from_status(status)
        if model is None:
            return None
        probe.learned["firmware_version"] = parse_text(status.get("firmware"))
        return cls.device_info(MAKE, model, cls.firmware)

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = super().sources(wanted)
        algo, hw = self.device.algo, self.device.hardware
        if DataField.HASHRATE in wanted:
            out[DataField.HASHRATE] = [
                at("rpc:summary", "SUMMARY", 0, "MHS 20s", parse=lambda v: mhs(v, algo)),
                at("web:cgminer?cgminercmd=devs", parse=lambda r: _web_total(r, algo)),
            ]
        if DataField.HASHBOARDS in wanted:
            out[DataField.HASHBOARDS] = [
                at((DEVS, DETAILS), parse=lambda r: parse_hashboards(r[DEVS], r[DETAILS], hw.board_count,
                                                                     hw.chips_per_board, algo)),
                at(DEVS, parse=lambda r: parse_hashboards(r, None, hw.board_count, hw.chips_per_board, algo)),
            ]
        return out

    # ----- web transport ----------------------------------------------------------------------
    async def _login_with(self, creds: Credentials) -> str:
        password = creds.password.get_secret_value()
        reply = await self.http("GET", "/user/login", params={
            "username": creds.username, "password": login_cipher(password), "cipher": "true"})
        if reply.status in (401, 403):
            raise AuthenticationError(f"{self.ip}: Goldshell refused the login")
        self._check(reply, "GET /user/login")
        token = dig(reply.json(), ("JWT Token",))
        if not isinstance(token, str) or not token:
            raise AuthenticationError(f"{self.ip}: Goldshell's login answered without a token")
        self._password, self._username = password, creds.username  # changing it needs the current one
        return token

    async def _ensure_token(self) -> str:
        if self._token is None:
            self._token = await self.with_credentials(self._login_with)
        return self._token

    @staticmethod
    def _check(reply: HttpReply, what: str) -> None:
        if not 200 <= reply.status < 300:
            detail = ""
            with contextlib.suppress(MinerError):  # the status says enough when the body is no JSON
                error = dig(decode_json(reply.body), ("error",)) if reply.body.strip().startswith(b"{") else None
                detail = f": {error}" if isinstance(error, str) else ""
            raise MinerAPIError(f"{what}: HTTP {reply.status}{detail}")

    async def request(self, method: str, path: str, **kwargs: Any) -> HttpReply:
        """One `/mcb/` call with the token; a refused token (a reboot, the firmware's token-check race) logs
        in again once."""
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {await self._ensure_token()}"}
            reply = await self.http(method, path, headers=headers, **kwargs)
            if reply.status != 401:
                break
            self._token = None
            if attempt == 1:
                raise AuthenticationError(f"{method} {path}: the token was refused")
        self._check(reply, f"{method} {path}")
        return reply

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = await self.request(method, path, **kwargs)
        return decode_json(reply.body) if reply.body.strip() else None

    async def send(self, command: str) -> Any:
        if command == STATUS:  # needs no login
            reply = await self.http("GET", "/mcb/status")
            self._check(reply, "GET /mcb/status")
            return decode_json(reply.body)
        if command.startswith("web:"):
            route, _, query = command[4:].partition("?")
            params = dict(parse_qsl(query)) if query else None
            return await self.call("GET", f"/mcb/{route}", params=params)
        return await super().send(command)

    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Logs in once before the web reads that need the token go out in parallel; a refused login fails
        only those (the RPC and `status` need none)."""
        locked = [c for c in commands if c.startswith("web:") and c != STATUS]
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
    async def _setting(self) -> dict[str, Any]:
        setting = await self.call("GET", "/mcb/setting")
        if not isinstance(setting, dict):
            raise MinerResponseError(f"{self.ip}: /mcb/setting is not an object")
        return setting

    async def _write_setting(self, **changes: Any) -> bool:
        """The settings object written back whole, with `changes` (the firmware takes no partial object)."""
        setting = await self._setting()
        setting.update(changes)
        await self.request("PUT", "/mcb/setting", json=setting)
        return True

    async def restart(self) -> bool:
        await self.request("PUT", "/mcb/restart")
        return True

    async def pause(self) -> bool:
        setting = await self._setting()
        return await self._write_setting(select=plan_index(setting, SLEEP_LEVEL))

    async def resume(self) -> bool:
        setting = await self._setting()
        return await self._write_setting(select=plan_index(setting, STOCK_LEVEL))

    async def set_fault_light(self, on: bool) -> bool:
        return await self._write_setting(ledcontrol=on)

    async def get_pools_config(self) -> list[PoolGroup]:
        rows = await self.call("GET", "/mcb/pools")
        if not isinstance(rows, list):
            raise MinerResponseError(f"{self.ip}: /mcb/pools is not a list")
        pools = [Pool(url=r["url"], username=str(r.get("user") or ""), password=str(r.get("pass") or "x"))
                 for r in rows if isinstance(r, dict) and parse_text(r.get("url"))]
        return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """One ordered list of up to three pools: every current pool deleted (last first, so the ids of the
        others hold), then each new one added."""
        if len(groups) != 1:
            raise ValueError(f"Goldshell takes one pool group (up to {MAX_POOLS} pools), got {len(groups)} groups")
        pools = groups[0].pools
        if not pools or len(pools) > MAX_POOLS:
            raise ValueError(f"Goldshell takes 1 to {MAX_POOLS} pools, got {len(pools)}")
        current = await self.call("GET", "/mcb/pools")
        for row in reversed(current if isinstance(current, list) else []):
            if isinstance(row, dict):
                await self.request("PUT", "/mcb/delpool", json={
                    "url": row.get("url"), "user": row.get("user"), "pass": row.get("pass"),
                    "dragid": row.get("dragid", 0)})
        for pool in pools:
            await self.request("PUT", "/mcb/newpool", json={"url": pool.url, "user": pool.username,
                                                             "pass": pool.password})
        return True

    async def change_password(self, password: str) -> bool:
        if not password:
            raise ValueError("the new Goldshell password must not be empty")
        await self._ensure_token()
        assert self._password is not None  # set by the login that gave the token
        await self.request("PUT", "/user/updatepd", json={"oldpassword": self._password, "newpassword": password,
                                                          "cfmpassword": password})
        self._password = password
        self.session.credentials.remember(self.ip, self.family, Credentials(username=self._username, password=password))
        return True


def _web_total(reply: Any, algo: HashAlgorithm) -> HashRate | None:
    """The web API's `cgminer?cgminercmd=devs`: the boards' `hashrate` (MH/s) added up."""
    rows = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(rows, list):
        raise ValueError("cgminer devs without data")
    rates = [to_float(r.get("hashrate")) for r in rows if isinstance(r, dict)]
    present = [r for r in rates if r is not None]
    return mhs(sum(present), algo) if present else None
