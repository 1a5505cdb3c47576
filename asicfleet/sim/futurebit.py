"""Simulated FutureBit Apollo (Apollo BTC and Apollo II) running the Apollo OS stack (apolloapi v2).

What listens: port 80, the Next.js web UI, whose `GET /` answers `308 Permanent Redirect` to `/overview`;
port 5000, the Apollo API, GraphQL over `POST /api/graphql` (Apollo Server: a JSON `{"query",
"variables"}` body, a `{"data", "errors"}` reply). The schema is the one in
`shared/fixtures/asic-rs/meta/futurebit/v2/schema.graphql`: every action group (`Auth`, `Miner`, `Mcu`,
`Pool`, `Settings`, `Logs`) is a field of `Query`; `Mutation` has none, so a `mutation { Miner {...} }`
fails validation (HTTP 400). Actions marked `@auth` need `Authorization: Bearer <accessToken>` from
`Auth.login(input: {password})`; without it the action is null with an UNAUTHENTICATED error (HTTP 200).
`Miner.stats` and `Miner.online` need no login. Nothing listens on 4028: the Apollo II's miner
(`apollo-miner`) has no CGMiner-style API, the API reads the stats file it writes.

The GraphQL subset understood: one operation (`query`/`mutation`, named or not, with variable
definitions), nested selections, arguments (variables, strings, numbers, booleans, enums, objects,
lists). Unknown fields are validation errors, as the real server reports them.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from asicfleet.config import Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner

API_PORT = 5000
MINER_VERSION = "2.0.5"  # what `versions.miner` reports
MODES: dict[str, float] = {"eco": 0.75, "balanced": 0.9, "turbo": 1.0}  # share of the turbo hash rate
_MODE_WATTS: dict[str, float] = {"eco": 0.62, "balanced": 0.8, "turbo": 1.0}
STAT_VERSIONS = {"Apollo": "v1", "Apollo II": "v2"}  # the stats file's generation per model
_UNAUTHENTICATED = "You must be authenticated to access this resource"


# ----- a small GraphQL reader: enough of the language for what clients send ---------------------------
class GraphQLSyntaxError(ValueError):
    pass


@dataclass
class Selection:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    children: list[Selection] = field(default_factory=list)


@dataclass
class Operation:
    kind: str  # "query" or "mutation"
    selections: list[Selection]


_TOKEN = re.compile(r'\s+|,|#[^\n]*|(?P<punct>\.\.\.|[{}()\[\]:!$=@])|(?P<string>"(?:[^"\\]|\\.)*")'
                    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[_A-Za-z][_0-9A-Za-z]*)")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise GraphQLSyntaxError(f'Syntax Error: Unexpected character: "{text[position]}".')
        position = match.end()
        kind = match.lastgroup
        if kind is not None:
            out.append((kind, match.group(kind)))
    return out


class _Parser:
    def __init__(self, text: str, variables: dict[str, Any]) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.variables = variables

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("eof", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "eof" or (value is not None and token[1] != value):
            raise GraphQLSyntaxError(f"Syntax Error: Expected {value or 'a token'}, found {token[1] or '<EOF>'}.")
        self.at += 1
        return token

    def operation(self) -> Operation:
        kind = "query"
        if self.peek() in (("name", "query"), ("name", "mutation"), ("name", "subscription")):
            kind = self.take()[1]
            if self.peek()[0] == "name":
                self.take()
            if self.peek()[1] == "(":  # variable definitions: their values arrive in `variables`
                depth = 0
                while True:
                    value = self.take()[1]
                    depth += {"(": 1, ")": -1}.get(value, 0)
                    if depth == 0:
                        break
        selections = self.selection_set()
        if self.peek()[0] != "eof":
            raise GraphQLSyntaxError("Syntax Error: only one operation per document is understood here.")
        return Operation(kind, selections)

    def selection_set(self) -> list[Selection]:
        self.take("{")
        out = []
        while self.peek()[1] != "}":
            kind, name = self.take()
            if kind != "name":
                raise GraphQLSyntaxError(f"Syntax Error: Expected Name, found {name}.")
            if self.peek()[1] == ":":  # an alias: the reply keeps the field's own name here
                self.take(":")
                name = self.take()[1]
            selection = Selection(name)
            if self.peek()[1] == "(":
                self.take("(")
                while self.peek()[1] != ")":
                    argument = self.take()[1]
                    self.take(":")
                    selection.arguments[argument] = self.value()
                self.take(")")
            if self.peek()[1] == "{":
                selection.children = self.selection_set()
            out.append(selection)
        self.take("}")
        return out

    def value(self) -> Any:
        kind, text = self.take()
        if text == "$":
            return self.variables.get(self.take()[1])
        if kind == "string":
            decoded: str = orjson.loads(text.encode())
            return decoded
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if text == "{":
            obj = {}
            while self.peek()[1] != "}":
                key = self.take()[1]
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        if text == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
            self.take("]")
            return items
        return {"true": True, "false": False, "null": None}.get(text, text)  # an enum value stays a string


def parse_operation(text: str, variables: dict[str, Any] | None = None) -> Operation:
    return _Parser(text, variables or {}).operation()


class _Invalid(Exception):
    """A selection of a field the schema does not have (a validation error: nothing is executed)."""


def project(value: Any, selections: list[Selection], type_name: str) -> Any:
    """`value` (a resolved dict tree) cut down to what was selected."""
    if value is None or not selections:
        return value
    if isinstance(value, list):
        return [project(item, selections, type_name) for item in value]
    out = {}
    for selection in selections:
        if selection.name == "__typename":
            out["__typename"] = type_name
            continue
        if not isinstance(value, dict) or selection.name not in value:
            raise _Invalid(f'Cannot query field "{selection.name}" on type "{type_name}".')
        out[selection.name] = project(value[selection.name], selection.children, selection.name)
    return out


# ----- the miner --------------------------------------------------------------------------------
_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/>\
<meta name="viewport" content="width=device-width, initial-scale=1"/><title>Apollo Web Dashboard</title>\
<link rel="icon" href="/favicon.ico"/><script src="/_next/static/chunks/webpack-4f1b7c9a2e3d5086.js" async="">\
</script></head><body><div id="__next"></div></body></html>"""

Action = Callable[[dict[str, Any]], dict[str, Any]]


class FutureBitSim(SimMiner):
    family: ClassVar[str] = "futurebit"
    make: ClassVar[str] = "FutureBit"
    firmware: ClassVar[str] = "Stock"  # pyasic-rs: "FutureBit Stock"
    models: ClassVar[tuple[str, ...]] = ("Apollo II", "Apollo")
    services: ClassVar[tuple[Service, ...]] = (Service(80, "http"), Service(API_PORT, "http"))
    http_server_header: ClassVar[str | None] = None  # Next.js and Express name no server
    default_username: ClassVar[str] = "futurebit"  # the login takes a password only
    default_password: ClassVar[str] = "futurebit123"  # what clients assume after the setup

    @classmethod
    def serves(cls, model: MinerModel) -> bool:
        return model.make == cls.make and model.name in STAT_VERSIONS

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return MINER_VERSION

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        s.hostname = "futurebit-apollo-2" if model.name == "Apollo II" else "futurebit-apollo"
        primary = s.pools[0].pools[0]
        s.extra.update(
            tokens=set(), mode="turbo", pending_mode="turbo", turbo_ths=s.hashrate_ths, turbo_watts=s.wattage,
            fan_low=40, fan_high=60, voltage=60.0, frequency=50, power_led_off=False,
            board_uid="".join(rng.choice("0123456789ABCDEF") for _ in range(24)),
            pools=[{"id": 1, "enabled": True, "donation": 0, "url": primary.url, "username": primary.username,
                    "password": primary.password, "proxy": None, "index": 0}],
            running_pool=primary, log=[f"{time.strftime('%Y-%m-%d %H:%M:%S')} miner started"],
        )
        s.serial = s.extra["board_uid"]
        return miner

    # ----- HTTP -------------------------------------------------------------------------------
    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if request.port == API_PORT:
            if (request.method, request.path) == ("POST", "/api/graphql"):
                return self._graphql(request)
            return HttpResponse(status=404, body=f"Cannot {request.method} {request.path}".encode(),
                                content_type="text/html; charset=utf-8")
        if request.method == "GET" and request.path == "/":
            return HttpResponse(status=308, body=b"/overview", headers={"Location": "/overview",
                                "Refresh": "0;url=/overview"}, content_type="text/plain")
        if request.method == "GET" and request.path in ("/overview", "/login", "/setup"):
            return HttpResponse.html(_PAGE)
        return HttpResponse.html("<!DOCTYPE html><title>404: This page could not be found.</title>", status=404)

    def _graphql(self, request: HttpRequest) -> HttpResponse:
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _errors(400, "GraphQL operations must contain a non-empty `query` or a `persistedQuery` "
                                "extension.", "BAD_REQUEST")
        variables = body.get("variables") if isinstance(body.get("variables"), dict) else {}
        try:
            operation = parse_operation(body["query"], variables)
        except GraphQLSyntaxError as exc:
            return _errors(400, str(exc), "GRAPHQL_PARSE_FAILED")
        if operation.kind != "query":
            root = operation.kind.capitalize()
            fields = [s.name for s in operation.selections if s.name != "_"]
            if fields:
                return _errors(400, f'Cannot query field "{fields[0]}" on type "{root}".', "GRAPHQL_VALIDATION_FAILED")
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        authed = token in self.state.extra["tokens"] and not self.auth_refused()
        data: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        try:
            for group in operation.selections:
                data[group.name] = self._group(group, authed, errors)
        except _Invalid as exc:
            return _errors(400, str(exc), "GRAPHQL_VALIDATION_FAILED")
        reply: dict[str, Any] = {"data": data}
        if errors:
            reply = {"errors": errors, "data": data}
        return HttpResponse.of_json(reply)

    def _group(self, group: Selection, authed: bool, errors: list[dict[str, Any]]) -> Any:
        actions = self._actions().get(group.name)
        if actions is None:
            raise _Invalid(f'Cannot query field "{group.name}" on type "Query".')
        out: dict[str, Any] = {}
        for selection in group.children:
            entry = actions.get(selection.name)
            if entry is None:
                raise _Invalid(f'Cannot query field "{selection.name}" on type "{group.name}Actions".')
            protected, action = entry
            if protected and not authed:
                errors.append({"message": _UNAUTHENTICATED, "locations": [],
                               "path": [group.name, selection.name], "extensions": {"code": "UNAUTHENTICATED"}})
                return None  # a non-null output: the null reaches the group
            out[selection.name] = project(action(selection.arguments), selection.children, selection.name)
        return out

    def _actions(self) -> dict[str, dict[str, tuple[bool, Action]]]:
        """group -> action -> (needs a login, what it does)."""
        return {
            "Auth": {"login": (False, self._login), "status": (False, lambda a: _ok({"status": "done"})),
                     "changePassword": (True, self._change_password)},
            "Miner": {"stats": (False, lambda a: _ok({"stats": [self.stats()], "ckpool": None})),
                      "online": (False, lambda a: _ok({"online": {"timestamp": _now(), "status": self._online()}})),
                      "start": (True, lambda a: self._set_mining(True)),
                      "stop": (True, lambda a: self._set_mining(False)),
                      "restart": (True, lambda a: self._restart_miner()),
                      "resetBlockFoundFlag": (True, lambda a: {"error": None})},
            "Mcu": {"stats": (True, lambda a: _ok({"stats": self.mcu_stats()})),
                    "reboot": (True, lambda a: self._reboot()), "shutdown": (True, lambda a: {"error": None}),
                    "version": (True, lambda a: {"result": "2.0.5", "error": None})},
            "Pool": {"list": (True, lambda a: _ok({"pools": self.state.extra["pools"]})),
                     "updateAll": (True, self._update_pools)},
            "Settings": {"read": (True, lambda a: _ok({"settings": self.settings()})),
                         "update": (True, self._update_settings)},
            "Logs": {"read": (True, self._read_log)},
        }

    # ----- actions ----------------------------------------------------------------------------
    def _login(self, arguments: dict[str, Any]) -> dict[str, Any]:
        password = (arguments.get("input") or {}).get("password")
        if self.auth_refused() or password != self.state.password:
            return {"result": None, "error": _error("Invalid password")}
        token = "eyJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(24)
        self.state.extra["tokens"].add(token)
        return _ok({"accessToken": token})

    def _change_password(self, arguments: dict[str, Any]) -> dict[str, Any]:
        password = (arguments.get("input") or {}).get("password")
        if not isinstance(password, str) or not password:
            return {"error": _error("Password is required")}
        self.state.password = password
        return {"error": None}

    def _online(self) -> str:
        if self.state.mining and time.time() >= self.state.boot_time:
            return "online"
        return "offline"

    def _set_mining(self, on: bool) -> dict[str, Any]:
        self.state.mining = on
        self._log("miner started" if on else "miner stopped")
        return {"error": None}

    def _restart_miner(self) -> dict[str, Any]:
        """`systemctl restart apollo-miner`: the miner rereads its configuration; the uptime starts again."""
        extra = self.state.extra
        enabled = sorted((p for p in extra["pools"] if p["enabled"]), key=lambda p: p["index"])
        if enabled:
            first = enabled[0]
            extra["running_pool"] = Pool(url=first["url"], username=first["username"] or "",
                                         password=first["password"] or "")
        extra["mode"] = extra["pending_mode"]
        share = MODES.get(extra["mode"], 1.0)
        self.state.hashrate_ths = round(extra["turbo_ths"] * share, 6)
        self.state.wattage = round(extra["turbo_watts"] * _MODE_WATTS.get(extra["mode"], 1.0), 1)
        self.state.mining = True
        self.state.boot_time = time.time()
        self._log("miner restarted")
        return {"error": None}

    def _reboot(self) -> dict[str, Any]:
        self.state.extra["tokens"] = set()
        self.restart()
        self._restart_miner()
        self.state.boot_time = time.time() + self.restart_seconds
        return {"error": None}

    def _update_pools(self, arguments: dict[str, Any]) -> dict[str, Any]:
        items = (arguments.get("input") or {}).get("pools")
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("url"), str)
                                                  and isinstance(i.get("index"), int) for i in items):
            return {"result": None, "error": _error("Failed to update all pools: invalid input")}
        pools = [{"id": n + 1, "enabled": bool(i.get("enabled", True)), "donation": i.get("donation") or 0,
                  "url": i["url"], "username": i.get("username"), "password": i.get("password"),
                  "proxy": i.get("proxy"), "index": i["index"]} for n, i in enumerate(items)]
        self.state.extra["pools"] = pools
        self.state.pools = [PoolGroup(name="default", quota=1, pools=[
            Pool(url=p["url"], username=p["username"] or "", password=p["password"] or "")
            for p in sorted(pools, key=lambda p: p["index"]) if p["enabled"]])]
        return _ok({"pools": pools})

    def settings(self) -> dict[str, Any]:
        extra = self.state.extra
        return {"id": 1, "agree": True, "createdAt": _now(), "minerMode": extra["pending_mode"],
                "voltage": extra["voltage"], "frequency": extra["frequency"], "fan": None,
                "fan_low": extra["fan_low"], "fan_high": extra["fan_high"], "apiAllow": True,
                "customApproval": False, "connectedWifi": None, "leftSidebarVisibility": True,
                "leftSidebarExtended": True, "rightSidebarVisibility": True, "temperatureUnit": "c",
                "powerLedOff": extra["power_led_off"], "nodeRpcPassword": None, "nodeEnableTor": False,
                "nodeUserConf": None, "nodeEnableSoloMining": False, "nodeMaxConnections": 64,
                "nodeAllowLan": False, "btcsig": None, "startdiff": None, "nodeSoftware": "core_28_1"}

    def _update_settings(self, arguments: dict[str, Any]) -> dict[str, Any]:
        update = arguments.get("input") or {}
        extra = self.state.extra
        mode = update.get("minerMode")
        if mode is not None and mode not in (*MODES, "custom"):
            return {"result": None, "error": _error(f'Value "{mode}" does not exist in "MinerMode" enum.')}
        if mode is not None:
            extra["pending_mode"] = mode  # the miner takes it at its next start
        for key, name in (("voltage", "voltage"), ("frequency", "frequency"), ("fan_low", "fan_low"),
                          ("fan_high", "fan_high"), ("powerLedOff", "power_led_off")):
            if update.get(key) is not None:
                extra[name] = update[key]
        return _ok({"settings": self.settings()})

    def _read_log(self, arguments: dict[str, Any]) -> dict[str, Any]:
        lines = (arguments.get("input") or {}).get("lines") or 100
        return _ok({"content": "\n".join(self.state.extra["log"][-int(lines):]), "timestamp": _now()})

    def _log(self, text: str) -> None:
        log: list[str] = self.state.extra["log"]
        log.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}")
        del log[:-200]

    # ----- what the stats file and the MCU report ---------------------------------------------
    def stats(self) -> dict[str, Any]:
        """One entry of `Miner.stats.result.stats`: the miner's stats file as the API reshapes it."""
        s, extra = self.state, self.state.extra
        ghs = round(s.live_hashrate_ths * 1000, 4)
        watts = s.wattage if s.mining else 0.0
        chips = s.model.chips_per_board
        temp = s.board_temps[0]
        pool: Pool = extra["running_pool"]
        interval = {"name": "30 sec", "interval": 30, "bySol": ghs, "byDiff": ghs, "byPool": ghs, "byJobs": ghs,
                    "solutions": 1200.0, "errors": 2.0, "errorRate": 0.16, "chipSpeed": round(ghs / chips, 3),
                    "chipRestarts": 0}
        uptime = s.uptime
        return {
            "uuid": extra["board_uid"], "version": STAT_VERSIONS.get(s.model.name, "v2"), "date": _now(),
            "comport": "/dev/ttyS1", "statVersion": "1.3", "versions": {
                "miner": s.firmware_version, "minerDate": "2024-05-01", "minerDebug": "0", "mspVer": "0x0304"},
            "master": {"upTime": uptime, "diff": 8192, "boards": 1, "errorSpi": 0, "osc": extra["frequency"],
                       "hwAddr": s.mac.lower(), "boardsI": round(watts / 12, 2), "boardsW": watts,
                       "wattPerGHs": round(watts / ghs, 4) if ghs else 0.0,
                       "intervals": {k: {**interval, "name": k, "interval": int(k[4:])}
                                     for k in ("int_30", "int_300", "int_900", "int_3600", "int_0")}},
            "pool": {"host": pool.host, "port": pool.port, "userName": pool.username, "diff": 8192.0,
                     "intervals": {"int_0": {"name": "0", "interval": 0, "jobs": 900, "cleanFlags": 20,
                                             "sharesSent": float(s.accepted + s.rejected),
                                             "sharesAccepted": float(s.accepted), "sharesRejected": float(s.rejected),
                                             "solutionsAccepted": float(s.accepted), "minRespTime": 0.02,
                                             "avgRespTime": 0.05, "maxRespTime": 0.4, "shareLoss": 0.0,
                                             "poolTotal": float(s.accepted), "inService": 1 if s.mining else 0,
                                             "subscribeError": 0, "diffChanges": 1, "reconnections": 0,
                                             "reconnectionsOnErrors": 0, "defaultJobShares": 0,
                                             "staleJobShares": 0, "duplicateShares": 0, "lowDifficultyShares": 0,
                                             "pwcSharesSent": 0, "pwcSharesDropped": 0, "bigDiffShares": 0,
                                             "belowTargetShare": 0, "pwcRestart": 0, "statOverflow": 0}}},
            "fans": {"int_0": {"rpm": list(s.fan_rpms)}},
            "temperature": {"count": 1.0, "min": temp, "avr": temp, "max": temp},
            "slots": {"int_0": {"revision": 2, "spiNum": 1, "spiLen": 44, "pwrNum": 1, "pwrLen": 4, "btcNum": chips,
                                "specVoltage": 8, "chips": chips, "pwrOn": 1 if s.mining else 0, "pwrOnTarget": 1,
                                "revAdc": 0, "temperature": temp, "temperature1": round(temp - 4.5, 1), "ocp": 60.0,
                                "heaterErr": 0, "heaterErrNum": 0, "inOHOsc": 0, "ohOscNum": 0, "ohOscTime": 0,
                                "overheats": 0, "overheatsTime": 0, "lowCurrRst": 0, "currents": [int(watts * 4)],
                                "brokenPwc": 0, "solutions": 1200.0, "errors": 2.0, "ghs": ghs, "errorRate": 0.16,
                                "chipRestarts": 0, "wattPerGHs": round(watts / ghs, 4) if ghs else 0.0,
                                "tmpAlert": {"alertLo": 0, "alertHi": 0, "numWrite": 0}, "osc": extra["frequency"],
                                "oscStopChip": ""}},
            "slaves": [{"id": 0, "uid": extra["board_uid"], "ver": "0x20", "rx": 1200, "err": 0.0, "time": uptime,
                        "ping": 12}],
        }

    def mcu_stats(self) -> dict[str, Any]:
        s = self.state
        return {"timestamp": _now(), "hostname": s.hostname, "operatingSystem": "Armbian 23.8.1 bookworm",
                "uptime": str(s.uptime), "loadAverage": "0.42 0.51 0.48", "architecture": "aarch64",
                "temperature": 48, "minerTemperature": s.board_temps[0], "minerFanSpeed": s.fan_rpms[0],
                "bfgminerLog": None, "activeWifi": None,
                "network": [{"name": "miner", "address": "", "mac": "00:00:00:00:00:00"},
                            {"name": "eth0", "address": s.ip, "mac": s.mac.lower()}],
                "memory": {"total": 3.8, "available": 2.1, "used": 1.7, "cache": 0.9, "swap": 0.0},
                "cpu": {"threads": 4, "usedPercent": 18.5},
                "disks": [{"total": 1863.0, "used": 612.4, "mountPoint": "/media/nvme"}]}


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    return {"result": result, "error": None}


def _error(message: str) -> dict[str, Any]:
    return {"message": message, "path": None, "type": None, "severity": None, "reasons": None}


def _errors(status: int, message: str, code: str) -> HttpResponse:
    return HttpResponse(status=status, body=orjson.dumps({"errors": [{"message": message,
                                                                       "extensions": {"code": code}}]}))


def _now() -> str:
    return str(int(time.time() * 1000))


__all__ = ["API_PORT", "MINER_VERSION", "MODES", "FutureBitSim", "Operation", "Selection", "parse_operation",
           "project"]
